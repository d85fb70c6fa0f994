"""``fusionrec features ...`` commands (a typer sub-app that :mod:`fusionrec.cli.main` mounts as ``features``).

``extract`` encodes a dataset modality (by dataset name) or a list of files and writes the matrix as ``.npy``
(with ``<out>.ids.txt``, one raw id per line in row order) or ``.parquet`` (an ``id`` column then ``f0..f{d-1}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

__all__ = ["app", "write_features"]

app = typer.Typer(help="Extract dense features from dataset modalities or files.", no_args_is_help=True)


@app.callback()
def _features() -> None:
    """Feature extraction commands (keeps ``extract`` a sub-command even while it is the only one)."""


_KIND_BY_SUFFIX = {
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"), "image"),
    **dict.fromkeys((".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"), "audio"),
    **dict.fromkeys((".mp4", ".mkv", ".avi", ".mov", ".webm"), "video"),
    **dict.fromkeys((".txt", ".md"), "text"),
}


def write_features(out: Path, ids: np.ndarray, rows: np.ndarray) -> list[Path]:
    """Write ``rows`` to ``out`` (``.npy`` + ``.ids.txt``, or ``.parquet``); returns the files written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        import pandas as pd

        frame = pd.DataFrame(rows, columns=[f"f{j}" for j in range(rows.shape[1])])
        frame.insert(0, "id", [str(x) for x in ids.tolist()])
        frame.to_parquet(out, index=False)
        return [out]
    if out.suffix != ".npy":
        raise typer.BadParameter("the output must end with .npy or .parquet", param_hint="--output")
    np.save(out, rows.astype(np.float32), allow_pickle=False)
    ids_path = out.with_suffix(".ids.txt")
    ids_path.write_text("".join(f"{x}\n" for x in ids.tolist()))
    return [out, ids_path]


def _modality_from_files(files: list[Path], kind: str | None) -> Any:
    from fusionrec.data import IdMap, Modality

    kinds = {kind or _KIND_BY_SUFFIX.get(f.suffix.lower()) for f in files}
    if None in kinds or len(kinds) != 1:
        raise typer.BadParameter(
            "files must all be of one known kind (image, audio, video, text) or pass --kind", param_hint="FILES"
        )
    k = kinds.pop()
    ids = [f.stem for f in files]
    if len(set(ids)) != len(ids):
        ids = [str(f) for f in files]
    data = [f.read_text(errors="replace") for f in files] if k == "text" else [str(f) for f in files]
    return Modality(k, IdMap(ids), data)  # type: ignore[arg-type]


@app.command("extract")
def extract(
    source: Annotated[list[str], typer.Argument(help="a dataset name (see `fusionrec datasets list`) or files")],
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write: .npy (+ .ids.txt) or .parquet")],
    modality: Annotated[str | None, typer.Option(help="the dataset modality to encode (e.g. title, poster)")] = None,
    encoder: Annotated[str | None, typer.Option(help="encoder name (default: the modality kind's default)")] = None,
    params: Annotated[str, typer.Option(help="encoder parameters as JSON, e.g. '{\"max_features\": 512}'")] = "{}",
    kind: Annotated[str | None, typer.Option(help="kind of the given files when the suffix does not tell")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="data directory (default: $FUSIONREC_DATA_DIR)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not read or write the feature cache")] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="encode over a Ray cluster: local (start one here), auto, or HOST:PORT (needs fusionrec[distributed])",
        ),
    ] = None,
) -> None:
    """Encode a dataset modality or files into a feature matrix with its id order."""
    from fusionrec._progress import set_progress
    from fusionrec.errors import FusionRecError
    from fusionrec.features.pipeline import encode_modality, make_encoder

    set_progress(True)
    try:
        enc_params = json.loads(params)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint="--params") from exc
    try:
        paths = [Path(s) for s in source]
        if len(source) == 1 and not paths[0].exists():
            from fusionrec.data.datasets import load_dataset

            ds = load_dataset(source[0], data_dir=data_dir)
            mods = {**ds.item_modalities, **{f"user:{k}": v for k, v in ds.user_modalities.items()}}
            if modality is None or modality not in mods:
                raise typer.BadParameter(f"choose a modality among {sorted(mods)}", param_hint="--modality")
            mod = mods[modality]
        else:
            missing = [str(p) for p in paths if not p.exists()]
            if missing:
                raise typer.BadParameter(f"files not found: {missing[:5]}", param_hint="SOURCE")
            mod = _modality_from_files(paths, kind)
        enc = make_encoder(encoder, **enc_params) if encoder else None
        if ray is not None:
            from fusionrec.distributed import encode_modality_ray

            feats, report = encode_modality_ray(mod, enc, cache=not no_cache, address=ray)
        else:
            feats, report = encode_modality(mod, enc, cache=not no_cache)
    except FusionRecError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    written = write_features(output, np.asarray(feats.ids.ids), np.asarray(feats.data))
    typer.echo(
        f"{report.summary()}; wrote {', '.join(map(str, written))} ({feats.data.shape[0]} x {feats.data.shape[1]})"
    )
    for f in report.failures[:20]:
        typer.echo(f"failed: {f.item_id}: {f.reason}", err=True)
