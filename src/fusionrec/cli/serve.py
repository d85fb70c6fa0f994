"""The serving commands: ``fusionrec train`` (dataset or split file -> serving bundle), ``fusionrec recommend BUNDLE
--user ID``, ``fusionrec serve BUNDLE`` (uvicorn) and ``fusionrec forget BUNDLE USER...`` (the right to be
forgotten), over the library functions of :mod:`fusionrec.serving.cli`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from fusionrec.cli._errors import fail
from fusionrec.serving.cli import forget_users, recommend_from_bundle, train_bundle

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


def _privacy_spent(path: Path) -> tuple[float, float] | None:
    """``(epsilon, delta)`` of a bundle whose model was trained with DP-SGD (:mod:`fusionrec.models.private`:
    such models expose ``privacy_spent_``), else ``None``."""
    from fusionrec.models.private import PrivacyReport
    from fusionrec.serving.bundle import load_bundle

    model = load_bundle(path).model
    if not isinstance(model, PrivacyReport):  # the model class cannot train privately
        return None
    spent = model.privacy_spent_
    if not math.isfinite(float(spent[0])):  # not trained privately
        return None
    return float(spent[0]), float(spent[1])


def _parse_rerank(text: str) -> dict[str, Any]:
    """``--rerank`` JSON -> a :func:`fusionrec.rerank.from_spec` spec (a ConfigError that says what to write)."""
    from fusionrec.errors import ConfigError

    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"--rerank takes a JSON object such as '{{\"calibrate\": 0.3}}', got {text!r} ({exc})"
        ) from None
    if not isinstance(spec, dict):
        raise ConfigError(f"--rerank takes a JSON object such as '{{\"calibrate\": 0.3}}', got {text!r}")
    return spec


def register(app: typer.Typer) -> None:
    """Add the ``train``, ``recommend``, ``serve`` and ``forget`` commands to the ``fusionrec`` CLI."""

    @app.command("train")
    def train(
        source: Annotated[
            str | None,
            typer.Argument(help="dataset name (ml-latest-small), benchmark split or split file; or use --interactions"),
        ] = None,
        model: Annotated[str, typer.Option("--model", "-m", help="registered model name, e.g. ALS")] = "ALS",
        out: Annotated[Path, typer.Option("--out", "-o", help="bundle directory to write")] = Path("bundles/model"),
        param: Annotated[
            list[str] | None, typer.Option("--param", "-p", help="hyper-parameter name=value (JSON value), repeatable")
        ] = None,
        interactions: Annotated[
            Path | None,
            typer.Option(help="your behaviour log (CSV, TSV, Parquet, JSON lines): user, item[, rating][, timestamp]"),
        ] = None,
        items: Annotated[
            Path | None, typer.Option(help="item table: id + content columns (text, image path, categories, numbers)")
        ] = None,
        users: Annotated[Path | None, typer.Option(help="user table: id + profile columns")] = None,
        social: Annotated[Path | None, typer.Option(help="social links: user, friend[, weight]")] = None,
        column_type: Annotated[
            list[str] | None,
            typer.Option(
                "--column-type",
                help="declare an item column's kind: col=text|image|audio|categorical|numeric|ignore (repeatable)",
            ),
        ] = None,
        title_column: Annotated[
            str | None,
            typer.Option(
                "--title-column",
                help="text column shown as the item title (default: title or name, else the shortest text column)",
            ),
        ] = None,
        data_dir: Annotated[
            Path | None, typer.Option("--data-dir", envvar="FUSIONREC_DATA_DIR", help="datasets directory")
        ] = None,
        implicit: Annotated[bool, typer.Option(help="binarize ratings to implicit feedback")] = False,
        track: Annotated[
            bool, typer.Option("--track", help="log parameters, curves and the bundle to MLflow (./mlruns/mlflow.db)")
        ] = False,
        tracking_uri: Annotated[
            str | None, typer.Option("--tracking-uri", help="MLflow tracking URI; implies --track")
        ] = None,
    ) -> None:
        """Fit a model and write a serving bundle (model + id maps + content features and encoders + metadata)."""
        from rich.console import Console

        from fusionrec._progress import set_progress
        from fusionrec.errors import ConfigError, FusionRecError

        set_progress(True)
        try:
            options: dict[str, Any] = {}
            if column_type:
                kinds = {}
                for spec in column_type:
                    col, sep, kind = spec.partition("=")
                    if not sep or not col or not kind:
                        raise ConfigError(f"--column-type {spec!r} must look like column=kind (e.g. blurb=text)")
                    kinds[col] = kind
                options["item_types"] = kinds
            files = {"interactions": interactions, "items": items, "users": users, "social": social}
            path = train_bundle(
                source,
                model,
                out,
                params=_parse_params(param),
                data_dir=data_dir,
                implicit=implicit,
                files=files,
                file_options=options,
                title_column=title_column,
                on_read=lambda lines: Console(highlight=False, soft_wrap=True).print("\n".join(lines), markup=False),
            )
        except FusionRecError as exc:
            fail(exc)
        Console().print(f"[green]bundle written[/] {path}")
        spent = _privacy_spent(path)
        if spent is not None:
            Console().print(
                f"differential privacy: epsilon {spent[0]:.3g}, delta {spent[1]:.3g} (per interaction record)"
            )
        if track or tracking_uri:
            from fusionrec.serving.bundle import load_bundle
            from fusionrec.tracking import log_bundle

            try:
                run_id = log_bundle(
                    path, model=load_bundle(path).model, source=source or str(interactions), tracking_uri=tracking_uri
                )
            except FusionRecError as exc:
                fail(exc)
            Console().print(f"MLflow run: {run_id}")

    @app.command("recommend")
    def recommend(
        bundle: Annotated[Path, typer.Argument(help="bundle directory written by `fusionrec train`")],
        user: Annotated[str, typer.Option("--user", "-u", help="the user's raw id, as in your data (e.g. 42 or fan)")],
        k: Annotated[int, typer.Option("--k", "-k", min=1, help="number of items")] = 10,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
        rerank: Annotated[
            str | None,
            typer.Option(
                "--rerank",
                help='re-rank the top 100, e.g. \'{"calibrate": 0.3}\', \'{"diversify": 0.3, "max_share": 0.4}\' '
                "(fusionrec.rerank.from_spec; groups = the catalogue's genres)",
            ),
        ] = None,
    ) -> None:
        """Recommend items for a user of a bundle, by the user's raw id (items they have are excluded)."""
        from rich.console import Console
        from rich.table import Table

        from fusionrec.errors import FusionRecError
        from fusionrec.serving.bundle import load_bundle

        try:
            spec = _parse_rerank(rerank) if rerank else None
            rows = recommend_from_bundle(load_bundle(bundle), user, k, rerank=spec)
        except FusionRecError as exc:
            fail(exc)
        if as_json:
            typer.echo(json.dumps({"user": user, "items": rows}, ensure_ascii=False))
            return
        table = Table(title=f"top {k} for user {user}")
        for col, justify in (("rank", "right"), ("item", "left"), ("score", "right"), ("title", "left")):
            if col != "title" or any("title" in r for r in rows):
                table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for r in rows:
            cells = [str(r["rank"]), str(r["item"]), f"{r['score']:.4f}"]
            table.add_row(*cells, *([r.get("title", "")] if len(table.columns) == 4 else []))
        Console().print(table)

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
        content_root: Annotated[
            Path | None,
            typer.Option(
                envvar="FUSIONREC_SERVE_CONTENT_ROOT",
                help="folder that posted image/audio paths must lie in (and where uploads go); unset: no file content",
            ),
        ] = None,
        private: Annotated[
            bool,
            typer.Option(
                "--private",
                help="reads need the API key too (users, histories, profiles, recommendations, explanations)",
            ),
        ] = False,
    ) -> None:
        """Serve a bundle over HTTP (uvicorn)."""
        import os

        import uvicorn
        from rich.console import Console

        from fusionrec.errors import FusionRecError
        from fusionrec.serving.bundle import load_bundle
        from fusionrec.serving.settings import ENV_PREFIX, ServingSettings

        # validate now (clear errors before uvicorn starts), then hand over through the environment so that
        # every worker process builds the same app
        if private and not api_key:
            fail("--private needs an API key for the reads: pass --api-key KEY or set FUSIONREC_SERVE_API_KEY")
        if workers < 1:
            fail(f"--workers must be at least 1, got {workers}")
        try:
            loaded = load_bundle(bundle)  # checksums, format version, model: refuse a bad bundle here
            overrides: dict[str, Any] = {"read_requires_key": True} if private else {}
            settings = ServingSettings.from_env(
                bundle_path=bundle,
                store_url=store,
                api_key=api_key,
                index=index,
                retrain_interval_s=retrain_every,
                compute_threads=threads,
                content_root=content_root,
                **overrides,
            )
        except FusionRecError as exc:
            fail(exc)
        os.environ[ENV_PREFIX + "BUNDLE_PATH"] = str(settings.bundle_path)
        os.environ[ENV_PREFIX + "STORE_URL"] = settings.resolved_store_url
        os.environ[ENV_PREFIX + "INDEX"] = settings.index
        os.environ[ENV_PREFIX + "RETRAIN_INTERVAL_S"] = str(settings.retrain_interval_s)
        os.environ[ENV_PREFIX + "COMPUTE_THREADS"] = str(settings.compute_threads)
        if settings.api_key:
            os.environ[ENV_PREFIX + "API_KEY"] = settings.api_key
        if settings.read_requires_key:
            os.environ[ENV_PREFIX + "READ_REQUIRES_KEY"] = "1"
        if settings.api_key:  # a keyed server keeps users' histories and profiles behind the key
            os.environ[ENV_PREFIX + "USER_READS_REQUIRE_KEY"] = "1"
        if settings.content_root is not None:
            os.environ[ENV_PREFIX + "CONTENT_ROOT"] = str(settings.content_root.resolve())
        Console().print(
            f"serving [bold]{bundle}[/] ({loaded.model_name}, {len(loaded.user_ids)} users, {len(loaded.item_ids)} "
            f"items) on http://{host}:{port}  (API docs: http://{host}:{port}/docs; Ctrl+C stops)"
            + ("; reads need the API key (--private)" if settings.read_requires_key else "")
            + (
                "; user reads and writes need the API key"
                if settings.api_key and not settings.read_requires_key
                else ""
            )
        )
        del loaded
        uvicorn.run(
            "fusionrec.serving.asgi:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )

    @app.command("forget")
    def forget(
        bundle: Annotated[Path, typer.Argument(help="bundle directory of the service (written by `fusionrec train`)")],
        users: Annotated[list[str], typer.Argument(help="raw user ids to forget")],
        store: Annotated[
            str | None, typer.Option(help="sqlite:///events.db or postgresql://... (default: beside the bundle)")
        ] = None,
        retrain: Annotated[
            bool, typer.Option("--retrain", help="then refit the bundle from the store, without the users")
        ] = False,
        missing_ok: Annotated[bool, typer.Option("--missing-ok", help="unknown users are not an error")] = False,
    ) -> None:
        """Forget users: delete their events and profile from the store, and drop them from the served model
        (running servers at their next sync, restarted ones at start); --retrain also rewrites the bundle."""
        from fusionrec.errors import FusionRecError

        try:
            forgotten, unknown = forget_users(bundle, list(users), store=store, retrain=retrain)
        except FusionRecError as exc:
            fail(exc)
        for user in forgotten:
            typer.echo(f"forgotten: {user}")
        if retrain and forgotten:
            typer.echo(f"bundle retrained without them: {bundle}")
        elif forgotten:
            typer.echo("the bundle on disk keeps their training rows (hidden by the store) until the next retrain")
        if unknown and not missing_ok:
            fail(f"unknown user(s) {unknown}: nothing to forget (never known, or forgotten already); see --missing-ok")
