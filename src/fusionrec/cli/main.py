"""The ``fusionrec`` command: datasets, models, evaluate, quickstart, train, recommend, serve, features.

Every error is one ``error: ...`` line on stderr with what to do (exit code 2), never a traceback
(:mod:`fusionrec.cli._errors`).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from fusionrec.cli._errors import ErrorHandlingGroup, fail
from fusionrec.cli.models import app as models_app
from fusionrec.errors import FusionRecError

app = typer.Typer(
    name="fusionrec",
    help="Multimodal recommendation: load data, train, evaluate, report, recommend and serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=ErrorHandlingGroup,
)
datasets_app = typer.Typer(help="List, describe and download datasets.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
app.add_typer(models_app, name="models")
console = Console()
err = Console(stderr=True)

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="directory with the datasets (default: $FUSIONREC_DATA_DIR)", envvar="FUSIONREC_DATA_DIR"
    ),
]

# Models of the quickstart (experiment-config model specs): collaborative baselines, then the multimodal fusion
# families and one score-level ensemble; those whose optional dependency is missing are skipped.  Every model ranks
# in its ranking mode (ItemKNN: implicit neighbourhood sums, not predicted ratings; ALS / EASE: binarised data).
# Settings: quick on 2 cores and good on the synthetic data (NDCG@20 checked against nearby values).
QUICKSTART_MODELS: list[dict[str, Any]] = [
    {"name": "MostPopular", "params": {}},
    {"name": "ItemKNN", "params": {"k": 100, "implicit": True}},
    {"name": "EASE", "params": {"reg": 200.0}},
    {"name": "ALS", "params": {"n_factors": 16, "epochs": 15, "reg": 10.0, "binarize": True, "seed": 0}},
    {"name": "BPR", "params": {"n_factors": 32, "epochs": 30, "seed": 0}},
    {"name": "ContentKNN", "params": {"weighting": "none"}},
    {"name": "CEASE", "params": {"reg": 200.0, "side_weight": 5.0}},
    {"name": "HybridMF", "params": {"n_factors": 16, "epochs": 10, "user_features": [], "seed": 0}},
    {"name": "VBPR", "params": {"n_factors": 16, "content_factors": 16, "epochs": 40, "seed": 0}},
    {"name": "DeepFusion", "label": "DeepFusion early", "params": {"fusion": "concat", "epochs": 30, "seed": 0}},
    {"name": "DeepFusion", "label": "DeepFusion late", "params": {"fusion": "late", "epochs": 30, "seed": 0}},
    {"name": "DeepFusion", "label": "DeepFusion attention", "params": {"fusion": "attention", "epochs": 30, "seed": 0}},
    {"name": "GraphFusion", "params": {"n_factors": 32, "epochs": 40, "seed": 0}},
    {
        "name": "ReciprocalRankFusion",
        "label": "RRF(EASE+ContentKNN)",
        "params": {
            "models": [
                {"name": "EASE", "params": {"reg": 200.0}},
                {"name": "ContentKNN", "params": {"weighting": "none"}},
            ],
            "weights": [1.0, 0.5],
        },
    },
]
#: the model of the quickstart's modality ablation (one of QUICKSTART_MODELS; item modalities only)
QUICKSTART_ABLATION = "HybridMF"


def _fail(exc: Exception) -> NoReturn:
    fail(exc)


def _show_version(value: bool) -> None:
    if value:
        from fusionrec._version import __version__

        typer.echo(f"fusionrec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Multimodal recommendation: load data, train, evaluate, report, recommend and serve."""


def _setup() -> None:
    from fusionrec._progress import set_progress

    set_progress(True)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.simplefilter("default")


SHORT = {"Precision": "P", "Recall": "R", "Coverage": "Cov", "HitRate": "HR"}


def _short(key: str) -> str:
    name, _, k = key.partition("@")
    return f"{SHORT.get(name, name)}@{k}" if k else key.replace("_s", " s")


def _metrics_table(rows: list[dict[str, Any]], keys: list[str], title: str) -> Table:
    table = Table(title=title)
    table.add_column("model", style="bold", no_wrap=True)
    for k in keys:
        table.add_column(_short(k), justify="right", no_wrap=True, min_width=len(_short(k)))
    for row in rows:
        table.add_row(row["model"], *[f"{row[k]:.3f}" if isinstance(row.get(k), float) else "–" for k in keys])
    return table


# ---------------------------------------------------------------------- datasets
@datasets_app.command("list")
def datasets_list(data_dir: DataDirOpt = None) -> None:
    """List the datasets fusionrec can load and whether they are present."""
    from fusionrec.config import describe_missing_data_dir
    from fusionrec.data.datasets import list_datasets

    missing = describe_missing_data_dir(data_dir)
    if missing:
        err.print(
            f"note: {missing}; only the built-in and downloaded datasets can be present", markup=False, soft_wrap=True
        )

    table = Table(title="datasets")
    for col in ("name", "present", "description"):
        table.add_column(col)
    for info in list_datasets(data_dir=data_dir):
        d = info if isinstance(info, dict) else vars(info)
        table.add_row(str(d.get("name")), "yes" if d.get("present") else "no", str(d.get("description", "")))
    console.print(table)


@datasets_app.command("info")
def datasets_info(name: str, data_dir: DataDirOpt = None) -> None:
    """Load a dataset and print its size and modalities."""
    _setup()
    from fusionrec.data.datasets import load_dataset

    try:
        ds = load_dataset(name, data_dir=data_dir)
    except FusionRecError as exc:
        _fail(exc)
    console.print_json(json.dumps(ds.summary(), default=str))


@datasets_app.command("fetch")
def datasets_fetch(
    name: str,
    cache_dir: Annotated[Path | None, typer.Option(help="where to store it (default: the user cache dir)")] = None,
) -> None:
    """Download a public dataset into the cache, verifying its sha256."""
    _setup()
    from fusionrec.data.datasets.download import fetch

    try:
        path = fetch(name, cache_dir=cache_dir)
    except FusionRecError as exc:
        _fail(exc)
    console.print(f"[green]ok[/] {name} -> {path}")


@datasets_app.command("export")
def datasets_export(
    out: Annotated[Path, typer.Argument(help="folder to write interactions.csv, items.csv, users.csv, social.csv")],
    users: Annotated[int, typer.Option(help="synthetic users")] = 600,
    items: Annotated[int, typer.Option(help="synthetic items")] = 400,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Write the built-in synthetic dataset as plain files (CSV + PNG images), the shape of a user's own data."""
    _setup()
    from fusionrec.data.datasets import load_dataset
    from fusionrec.data.datasets.synthetic import write_files

    try:
        paths = write_files(load_dataset("synthetic", n_users=users, n_items=items, seed=seed), out)
    except FusionRecError as exc:
        _fail(exc)
    for role, path in paths.items():
        console.print(f"{role:>12}: {path}")


TrackOpt = Annotated[
    bool,
    typer.Option(
        "--track", help="log parameters, metrics, curves and artifacts to MLflow (default store: ./mlruns/mlflow.db)"
    ),
]
TrackingUriOpt = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI (http://host:5000, sqlite:///x.db); implies --track"),
]


# ---------------------------------------------------------------------- evaluate
@app.command()
def evaluate(
    config: Annotated[Path, typer.Argument(help="experiment config (JSON or TOML)")],
    out: Annotated[Path, typer.Option(help="directory for results.json and report.html")] = Path("fusionrec-output"),
    data_dir: DataDirOpt = None,
    track: TrackOpt = False,
    tracking_uri: TrackingUriOpt = None,
) -> None:
    """Run an experiment config: dataset, split, models, metrics -> table, JSON and HTML report."""
    _setup()
    from fusionrec.evaluation.experiment import load_config, run_experiment
    from fusionrec.evaluation.report import write_report

    try:
        cfg = load_config(config)
        result = run_experiment(cfg, data_dir=data_dir, on_event=lambda m: console.log(m))
    except FusionRecError as exc:
        _fail(exc)
    _print_result(result)
    paths = write_report(result, out)
    console.print(f"report: {paths['html']}\nresults: {paths['json']}")
    if track or tracking_uri:
        from fusionrec.tracking import log_experiment

        try:
            run_id = log_experiment(result, paths, tracking_uri=tracking_uri)
        except FusionRecError as exc:
            _fail(exc)
        console.print(f"MLflow run: {run_id}")


# ---------------------------------------------------------------------- tune
@app.command()
def tune(
    config: Annotated[Path, typer.Argument(help="experiment config (JSON or TOML) with a validation part")],
    trials: Annotated[
        int | None, typer.Option("--trials", min=1, help="finished trials per model (default: tune.trials or 20)")
    ] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="seconds per model's search")] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="sqlite:///x.db or x.db (default: OUT/tuning.db), journal:x.log or memory; resumable"),
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="study name prefix (default: the config name)")] = None,
    metric: Annotated[str | None, typer.Option(help="validation metric to maximise (default: ndcg@20)")] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="parallel trials (threads, or Ray tasks with --ray)")] = 1,
    ray: Annotated[str | None, typer.Option("--ray", help="run the trials over Ray: local, auto or HOST:PORT")] = None,
    seed: Annotated[int, typer.Option(help="seed of the TPE sampler")] = 0,
    out: Annotated[Path, typer.Option(help="directory for tuning.json, results.json and report.html")] = Path(
        "fusionrec-output/tune"
    ),
    data_dir: DataDirOpt = None,
    track: TrackOpt = False,
    tracking_uri: TrackingUriOpt = None,
) -> None:
    """Tune the config's models with Optuna (TPE, pruning) on valid, then evaluate the best of each on test."""
    _setup()
    from fusionrec.tuning import tune as run_tune

    try:
        result = run_tune(
            config, trials, timeout, storage, study, metric, jobs, ray, out=out, seed=seed, data_dir=data_dir,
            track=track or tracking_uri is not None, tracking_uri=tracking_uri, on_event=lambda m: console.log(m),
        )  # fmt: skip
    except FusionRecError as exc:
        _fail(exc)
    table = Table(title=f"tuned on valid ({result.metric}), evaluated on test")
    for col in ("model", "trials", "pruned", f"valid {result.metric}", f"test {result.metric}", "best (tuned) values"):
        table.add_column(col, justify="left" if col in ("model", "best (tuned) values") else "right")
    for t in result.models:
        test = t.test.get(result.metric)
        table.add_row(
            t.label, str(len(t.trials)), str(t.n_pruned), f"{t.best_value:.4f}", "–" if test is None else f"{test:.4f}",
            ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t.best_params.items()
                      if k in t.space),
        )  # fmt: skip
    console.print(table)
    _print_result(result.experiment)
    console.print(f"tuning: {result.paths['tuning']}\nreport: {result.paths['html']}\nstorage: {result.storage}")


def _print_result(result: Any) -> None:
    kmax = max(result.config.k)
    rows = result.table()
    keys = [f"{m}@{kmax}" for m in ("Precision", "Recall", "NDCG")]
    fair = (f"CalibrationKL@{kmax}", f"PopularShare@{kmax}", f"NDCGGap@{kmax}")  # "fairness": true / rerank
    keys += [k for k in ("AUC", f"Coverage@{kmax}", *fair, "RMSE", "fit_s") if any(k in r for r in rows)]
    console.print(_metrics_table(rows, [k for k in keys if any(k in r for r in rows)], result.config.name))
    for s in result.significance:
        console.print(
            f"{s['best']} vs {s['other']}: {s['metric']} diff {s['mean_difference']:+.4f}, "
            f"t-test p={s['t_p_value']:.3g}, Wilcoxon p={s['wilcoxon_p_value']:.3g} ({s['n_users']} users)"
        )


# ---------------------------------------------------------------------- quickstart
def _available(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from fusionrec.models.registry import get_model_class

    out = []
    for spec in models:
        try:
            get_model_class(spec["name"])
        except ImportError as exc:
            err.print(f"[yellow]skipped[/] {spec.get('label') or spec['name']}: {exc}")
            continue
        out.append(spec)
    return out


def _ablation_table(rows: list[dict[str, Any]], kmax: int) -> Table:
    table = Table(title=f"modality ablation: {rows[0]['model']} (item modalities)")
    table.add_column("variant", style="bold", no_wrap=True)
    for key in (f"Recall@{kmax}", f"NDCG@{kmax}", "delta"):
        table.add_column("Δ NDCG" if key == "delta" else _short(key), justify="right", no_wrap=True)
    for r in rows:
        if "error" in r:
            table.add_row(r["variant"], "–", "–", f"failed: {r['error']}"[:40])
            continue
        d = r.get("delta")
        table.add_row(
            r["variant"], f"{r[f'Recall@{kmax}']:.3f}", f"{r[f'NDCG@{kmax}']:.3f}", "" if d is None else f"{d:+.3f}"
        )
    return table


@app.command()
def quickstart(
    out: Annotated[Path, typer.Option(help="directory for the report")] = Path("fusionrec-output/quickstart"),
    users: Annotated[int, typer.Option(help="synthetic users")] = 600,
    items: Annotated[int, typer.Option(help="synthetic items")] = 400,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    user: Annotated[str | None, typer.Option(help="raw user id to recommend for (default: the first)")] = None,
    ablation: Annotated[bool, typer.Option(help="run the modality ablation of HybridMF")] = True,
) -> None:
    """The main job on the built-in synthetic dataset: CF baselines beside the multimodal fusion models and an
    ensemble, a modality ablation, an HTML report and recommendations."""
    _setup()
    from fusionrec.data.datasets import load_dataset
    from fusionrec.data.splits import make_split
    from fusionrec.evaluation.ablation import modality_ablation
    from fusionrec.evaluation.experiment import ExperimentConfig, run_experiment
    from fusionrec.evaluation.report import write_report
    from fusionrec.features.pipeline import build_side_info

    console.rule("fusionrec quickstart")
    ds = load_dataset("synthetic", n_users=users, n_items=items, seed=seed)
    summary = ds.summary()
    console.print(
        f"synthetic dataset: {summary['users']} users, {summary['items']} items, {summary['interactions']} "
        f"interactions; item modalities {summary['item_modalities']}; social links {summary['social_links']}"
    )
    split_params = {"ratios": [0.8, 0.1, 0.1], "seed": seed}
    specs = _available(QUICKSTART_MODELS)
    try:
        cfg = ExperimentConfig.from_dict(
            {
                "name": "quickstart (synthetic)",
                "dataset": {"name": "synthetic", "params": {"n_users": users, "n_items": items, "seed": seed}},
                "split": {"strategy": "per_user", "params": split_params},
                "models": specs,
            }
        )
        split = make_split(ds.interactions, "per_user", **split_params)
        console.log("encoding the item and user content (default weight-free encoders)")
        side, _ = build_side_info(ds)
        result = run_experiment(cfg, dataset=ds, split=split, side=side, on_event=lambda m: console.log(m))
        kmax = max(cfg.k)
        abl = next((m for m in specs if m["name"] == QUICKSTART_ABLATION), None)
        if ablation and abl is not None:
            console.log(f"modality ablation of {QUICKSTART_ABLATION}: all, none, each alone, each removed")
            abl_spec = {"name": abl["name"], "params": {**abl.get("params", {}), "user_features": []}}
            result.ablation = modality_ablation(
                abl_spec, ds, split, side=side, k=cfg.k, metrics=("recall", "ndcg"), on_event=lambda m: None
            )
    except FusionRecError as exc:
        _fail(exc)
    _print_result(result)
    if result.ablation:
        console.print(_ablation_table(result.ablation, kmax))
    paths = write_report(result, out)
    console.print(f"report: {paths['html']}")

    best = max(result.models, key=lambda m: m.ranking.metrics[f"NDCG@{kmax}"])
    uid = user if user is not None else ds.user_ids.ids[0]
    try:
        u = int(ds.user_ids.to_index([uid])[0])
    except FusionRecError as exc:
        _fail(exc)
    rec_items, rec_scores = best.model.recommend(u, k=10, seen=split.train.matrix)
    titles = None
    title_mod = ds.item_modalities.get("title") or ds.item_modalities.get("text")
    if title_mod is not None:
        titles, _ = title_mod.align(ds.item_ids)
    table = Table(title=f"top 10 for user {uid} by {best.label}")
    table.add_column("rank", justify="right")
    table.add_column("item")
    table.add_column("score", justify="right")
    if titles is not None:
        table.add_column("title")
    for r, (i, s) in enumerate(zip(rec_items[0], rec_scores[0]), 1):
        if i < 0:
            continue
        row = [str(r), str(ds.item_ids.to_id([i])[0]), f"{s:.3f}"]
        if titles is not None:
            row.append(str(titles[i])[:60])
        table.add_row(*row)
    console.print(table)


@app.command()
def explain(
    bundle: Annotated[Path, typer.Argument(help="bundle directory written by `fusionrec train`")],
    user: Annotated[str, typer.Option("--user", "-u", help="the user's raw id, as in your data")],
    item: Annotated[str, typer.Option("--item", "-i", help="the item's raw id (e.g. one `fusionrec recommend` gave)")],
    n: Annotated[int, typer.Option("--n", min=1, help="history items to cite at most")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print the evidence as JSON instead of the sentence")] = False,
) -> None:
    """Why a bundle recommends ITEM to USER, in words: the history items behind it, shared labels and words, and
    for fusion models each modality's share of the score."""
    from fusionrec.serving.bundle import load_bundle
    from fusionrec.serving.explain import explain_from_bundle

    try:
        out = explain_from_bundle(load_bundle(bundle), user, item, n)
    except FusionRecError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, default=str))
        return
    typer.echo(out["sentence"])


def _mount_optional() -> None:
    """Attach sub-apps from optional modules (features, serving) when they import."""
    try:
        from fusionrec.cli.features import app as features_app
    except ImportError:
        pass
    else:
        app.add_typer(features_app, name="features")
    try:
        from fusionrec.cli.serve import register as register_serving
    except ImportError:
        pass
    else:
        register_serving(app)
    from fusionrec.cli.batch import register as register_batch  # typer only; Ray is imported when used

    register_batch(app)


_mount_optional()


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
