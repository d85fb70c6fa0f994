"""``fusionrec batch BUNDLE --out top.parquet [--ray ADDRESS]``: top-K of every user (or of listed users) to Parquet.

Mounted by :mod:`fusionrec.cli.main`; without ``--ray`` the shards run in this process (no Ray needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["batch", "register"]


def batch(
    bundle: Annotated[
        Path, typer.Argument(help="bundle directory written by `fusionrec train` (or a model directory)")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Parquet file to write: user, item, rank, score")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="items per user")] = 10,
    users: Annotated[
        Path | None, typer.Option("--users", help="text file with one raw user id per line (default: every user)")
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option("--ray", metavar="ADDRESS", help="shard the users over Ray: local, auto or HOST:PORT"),
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Ray workers (default: the cluster's CPUs)")] = None,
    shards: Annotated[int | None, typer.Option(min=1, help="user shards (default: 4 per worker)")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="users scored at once in a shard")] = 1024,
) -> None:
    """Write the top-K items of every user of a bundle to Parquet (raw ids; items they have are excluded)."""
    import time

    from fusionrec.cli._errors import fail
    from fusionrec.distributed.scoring import ScoringStats, batch_recommend_ray
    from fusionrec.errors import FusionRecError

    wanted: list[str] | None = None
    if users is not None:
        if not users.is_file():
            fail(f"--users {users}: no such file; write one raw user id per line")
        wanted = [line.strip() for line in users.read_text().splitlines() if line.strip()]
    stats = ScoringStats()
    start = time.perf_counter()
    try:
        ids = None
        if wanted is not None:
            ids = _match_ids(bundle, wanted)
        path = batch_recommend_ray(
            bundle,
            ids,
            k,
            out,
            address=ray,
            num_workers=workers,
            num_shards=shards,
            batch_size=batch_size,
            stats=stats,
        )
    except FusionRecError as exc:
        fail(exc)
    where = f"{stats.workers} Ray worker(s)" if ray is not None else "this process"
    typer.echo(
        f"wrote {path}: {stats.rows_written} rows for {stats.users} users in {stats.shards} shard(s) on {where} "
        f"({time.perf_counter() - start:.1f} s)"
    )


def _match_ids(source: Path, wanted: list[str]) -> list[object]:
    """Raw ids of ``source`` matched by their text (``"1"`` finds the integer id 1, as ``fusionrec recommend``)."""
    from fusionrec.errors import UnknownIdError
    from fusionrec.serving.bundle import MANIFEST, load_bundle

    if not (source / MANIFEST).is_file():
        return list(wanted)
    raw = load_bundle(source).user_ids.ids.tolist()
    index = {str(x): x for x in raw}
    unknown = [u for u in wanted if u not in index]
    if unknown:
        raise UnknownIdError(
            f"unknown user(s) {unknown[:5]} ({len(unknown)} in all): the bundle knows {len(raw)} users "
            f"(e.g. {[str(x) for x in raw[:3]]}); list raw ids as in the training data"
        )
    return [index[u] for u in wanted]


def register(app: typer.Typer) -> None:
    """Add the ``batch`` command to the main CLI."""
    app.command("batch")(batch)
