"""``fusionrec train`` (dataset or split file -> serving bundle) and ``fusionrec serve BUNDLE`` (uvicorn)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]


def _parse_params(params: list[str] | None) -> dict[str, Any]:
    from fusionrec.errors import ConfigError

    out: dict[str, Any] = {}
    for p in params or []:
        key, sep, raw = p.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {p!r} must look like name=value (e.g. --param factors=64)")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def train_bundle(
    source: str,
    model: str,
    out: Path,
    *,
    params: dict[str, Any] | None = None,
    data_dir: Path | None = None,
    implicit: bool = False,
) -> Path:
    """Fit ``model`` on a dataset name (all its interactions), a benchmark split name or a split file (its train
    part) and write a serving bundle with the dataset's titles, genres and posters when known."""
    from fusionrec.data.datasets import load_dataset
    from fusionrec.data.datasets.registry import BENCHMARK_SPLITS, load_benchmark_split
    from fusionrec.data.io import load_split_file
    from fusionrec.models.registry import make_model
    from fusionrec.serving.bundle import item_meta_from_dataset, save_bundle

    dataset = None
    if Path(source).is_file():
        train = load_split_file(source).train
    elif source in BENCHMARK_SPLITS:
        train = load_benchmark_split(source, data_dir=data_dir).train
        dataset = load_dataset(BENCHMARK_SPLITS[source], data_dir=data_dir)
    else:
        dataset = load_dataset(source, data_dir=data_dir)
        train = dataset.interactions
    if implicit:
        train = train.binarize()
    fitted = make_model(model, **(params or {})).fit(train)
    meta = item_meta_from_dataset(dataset, train.item_ids) if dataset is not None else None
    return save_bundle(out, fitted, train, meta, extra={"source": source})


def register(app: typer.Typer) -> None:
    """Add the ``train`` and ``serve`` commands to the ``fusionrec`` CLI."""

    @app.command("train")
    def train(
        source: Annotated[str, typer.Argument(help="dataset name (ml-latest-small), benchmark split or split file")],
        model: Annotated[str, typer.Option("--model", "-m", help="registered model name, e.g. ALS")] = "ALS",
        out: Annotated[Path, typer.Option("--out", "-o", help="bundle directory to write")] = Path("bundles/model"),
        param: Annotated[
            list[str] | None, typer.Option("--param", "-p", help="hyper-parameter name=value (JSON value), repeatable")
        ] = None,
        data_dir: Annotated[
            Path | None, typer.Option("--data-dir", envvar="FUSIONREC_DATA_DIR", help="datasets directory")
        ] = None,
        implicit: Annotated[bool, typer.Option(help="binarize ratings to implicit feedback")] = False,
    ) -> None:
        """Fit a model and write a serving bundle (model + id maps + titles/posters + data fingerprint)."""
        from rich.console import Console

        from fusionrec._progress import set_progress
        from fusionrec.errors import FusionRecError

        set_progress(True)
        try:
            path = train_bundle(source, model, out, params=_parse_params(param), data_dir=data_dir, implicit=implicit)
        except FusionRecError as exc:
            Console(stderr=True).print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(code=2) from exc
        Console().print(f"[green]bundle written[/] {path}")

    @app.command("serve")
    def serve(
        bundle: Annotated[Path, typer.Argument(help="bundle directory written by `fusionrec train`")],
        host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port")] = 8000,
        store: Annotated[
            str | None, typer.Option(help="sqlite:///events.db or postgresql://... (default: beside the bundle)")
        ] = None,
        api_key: Annotated[
            str | None, typer.Option(envvar="FUSIONREC_SERVE_API_KEY", help="require X-API-Key for writes")
        ] = None,
        index: Annotated[str, typer.Option(help="auto, exact or ann")] = "auto",
        workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
        retrain_every: Annotated[float, typer.Option(help="retrain every N seconds (0: only on request)")] = 0.0,
        threads: Annotated[int, typer.Option(help="BLAS/OpenMP threads per worker process")] = 1,
    ) -> None:
        """Serve a bundle over HTTP (uvicorn)."""
        import os

        import uvicorn

        from fusionrec.serving.settings import ENV_PREFIX, ServingSettings

        # validate now (clear errors before uvicorn starts), then hand over through the environment so that
        # every worker process builds the same app
        settings = ServingSettings.from_env(
            bundle_path=bundle,
            store_url=store,
            api_key=api_key,
            index=index,
            retrain_interval_s=retrain_every,
            compute_threads=threads,
        )
        os.environ[ENV_PREFIX + "BUNDLE_PATH"] = str(settings.bundle_path)
        os.environ[ENV_PREFIX + "STORE_URL"] = settings.resolved_store_url
        os.environ[ENV_PREFIX + "INDEX"] = settings.index
        os.environ[ENV_PREFIX + "RETRAIN_INTERVAL_S"] = str(settings.retrain_interval_s)
        os.environ[ENV_PREFIX + "COMPUTE_THREADS"] = str(settings.compute_threads)
        if settings.api_key:
            os.environ[ENV_PREFIX + "API_KEY"] = settings.api_key
        uvicorn.run(
            "fusionrec.serving.asgi:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
