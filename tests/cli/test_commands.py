"""The command line of issue 11: --version, models list/info, recommend by raw id, serve --private, one-line errors
for bad inputs of every command, and data directories that do not exist."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fusionrec.cli.main import app

runner = CliRunner()

LOG = "user,item,rating\n1,10,5\n1,11,3\n2,10,4\nfan,12,5\n2,12,1\n3,11,2\n3,13,4\n"


def one_error_line(out: Any, *, after_read: bool = False) -> str:
    """The output is exactly one ``error: ...`` line (no traceback, no wrapped continuation); with ``after_read``
    it may follow the lines in which ``fusionrec train`` says what it read (they start with ``read ``)."""
    lines = [line for line in out.output.splitlines() if line.strip()]
    if after_read and lines and lines[0].startswith("read "):
        errors = [j for j, line in enumerate(lines) if line.startswith("error: ")]
        lines = lines[errors[0] :] if errors else lines
    assert len(lines) == 1, out.output
    assert lines[0].startswith("error: "), out.output
    assert "Traceback" not in out.output
    return str(lines[0])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle trained on a log whose user ids mix integers and the word 'fan' (the README walk-through)."""
    from fusionrec.serving.cli import train_bundle

    root = tmp_path_factory.mktemp("cli")
    (root / "log.csv").write_text(LOG)
    return train_bundle(None, "ItemKNN", root / "b", files={"interactions": root / "log.csv"})


def test_version() -> None:
    from fusionrec import __version__

    out = runner.invoke(app, ["--version"])
    assert out.exit_code == 0 and out.output.strip() == f"fusionrec {__version__}"


def test_models_list_and_info() -> None:
    out = runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    rows = {line.split("│")[1].strip(): line for line in out.output.splitlines() if line.count("│") > 4}
    assert {"ALS", "EASE", "HybridMF", "VBPR", "ContentKNN", "WeightedBlend"} <= set(rows)
    assert "matrix factorisation" in rows["ALS"] and "multimodal fusion" in rows["HybridMF"]
    assert "items, users" in rows["ContentKNN"]  # cold start of both kinds
    assert "social" in rows["TrustSVD"] and "sequential" in rows["SASRec"]
    from fusionrec.cli.models import model_family
    from fusionrec.models.registry import MODELS

    no_family = sorted(n for n, path in MODELS.items() if model_family(path.partition(":")[0]) == "other")
    assert not no_family, f"add the module of {no_family} to fusionrec.cli.models.FAMILIES"
    info = runner.invoke(app, ["models", "info", "ALS"], env={"COLUMNS": "200"})
    assert info.exit_code == 0, info.output
    n_factors = next(line for line in info.output.splitlines() if "n_factors" in line)
    assert "64" in n_factors and "an integer in [2, inf)" in n_factors
    assert "one of 'cg', 'cholesky'" in info.output  # a declared constraint (Options)


def test_models_info_of_an_unknown_model_is_one_line() -> None:
    out = runner.invoke(app, ["models", "info", "ASL"])
    assert out.exit_code == 2
    assert "unknown model 'ASL'" in one_error_line(out)


def test_describe_model_reads_the_declared_constraints() -> None:
    from fusionrec.cli.models import describe_model

    info = describe_model("EASE")
    params = {name: (default, allowed) for name, default, allowed in info.params}
    assert params["reg"] == ("500.0", "a number in (0, inf)")  # default and declared constraint
    assert params["binarize"] == ("True", "a bool")
    assert info.family == "linear autoencoder" and not info.uses_content


def test_recommend_takes_raw_ids(bundle: Path) -> None:
    """`recommend --user fan` over integer and word ids (a raw id used to give "invalid literal for int()")."""
    out = runner.invoke(app, ["recommend", str(bundle), "--user", "fan", "-k", "3", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["user"] == "fan" and 1 <= len(data["items"]) <= 3
    assert 12 not in [r["item"] for r in data["items"]]  # its own item is excluded
    table = runner.invoke(app, ["recommend", str(bundle), "--user", "1"])
    assert table.exit_code == 0 and "top 10 for user 1" in table.output
    for raw in ("01", " 1", "nobody"):  # distinct ids never merge with user 1
        bad = runner.invoke(app, ["recommend", str(bundle), "--user", raw])
        assert bad.exit_code == 2
        assert f"unknown user {raw!r}" in one_error_line(bad)


class FakeUvicorn:
    def __init__(self) -> None:
        self.env: dict[str, str] = {}

    def run(self, *args: Any, **kwargs: Any) -> None:
        self.env = {k: v for k, v in os.environ.items() if k.startswith("FUSIONREC_SERVE_")}


@pytest.fixture
def fake_uvicorn(monkeypatch: pytest.MonkeyPatch) -> FakeUvicorn:
    import uvicorn

    from fusionrec.serving.settings import ENV_PREFIX

    for name in ("BUNDLE_PATH", "STORE_URL", "INDEX", "RETRAIN_INTERVAL_S", "COMPUTE_THREADS", "API_KEY"):
        monkeypatch.setenv(ENV_PREFIX + name, "")  # restored (removed) after the test: serve writes them
    for name in ("CONTENT_ROOT", "READ_REQUIRES_KEY", "API_KEY"):
        monkeypatch.setenv(ENV_PREFIX + name, "")
        monkeypatch.delenv(ENV_PREFIX + name)
    fake = FakeUvicorn()
    monkeypatch.setattr(uvicorn, "run", fake.run)
    return fake


def test_serve_private_requires_the_key_for_reads(bundle: Path, fake_uvicorn: FakeUvicorn, tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    store = f"sqlite:///{tmp_path / 'events.db'}"
    out = runner.invoke(app, ["serve", str(bundle), "--private", "--store", store])
    assert out.exit_code == 2 and "--private needs an API key" in one_error_line(out)
    out = runner.invoke(app, ["serve", str(bundle), "--private", "--api-key", "k3y", "--store", store])
    assert out.exit_code == 0, out.output
    assert fake_uvicorn.env["FUSIONREC_SERVE_READ_REQUIRES_KEY"] == "1"
    assert fake_uvicorn.env["FUSIONREC_SERVE_API_KEY"] == "k3y"
    assert "reads need the API key" in out.output and "http://127.0.0.1:8000" in out.output

    from fusionrec.serving.settings import ServingSettings

    settings = ServingSettings.from_env(fake_uvicorn.env)
    assert settings.read_requires_key and settings.api_key == "k3y"


def test_bad_inputs_give_one_line_errors(bundle: Path, tmp_path: Path, fake_uvicorn: FakeUvicorn) -> None:
    """train / evaluate / serve / datasets / features with bad inputs: one `error:` line each, exit code != 0."""
    bad_log = tmp_path / "bad.csv"
    bad_log.write_text("user,item,rating\n1,10,5\n1,11,1e40\n")
    bad_config = tmp_path / "c.json"
    bad_config.write_text(json.dumps({"dataset": "synthetic", "split": "random", "models": ["ALS"], "metrics": ["x"]}))
    cases = {
        ("train", "--interactions", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "o")): "does not exist",
        ("train", "--interactions", str(bad_log), "-o", str(tmp_path / "o")): "rating value(s) beyond",
        ("train", "synthetic", "-m", "ALS", "-p", "n_factors=0", "-o", str(tmp_path / "o")): "n_factors=0",
        ("evaluate", str(tmp_path / "nope.json")): "does not exist",
        ("evaluate", str(bad_config)): "unknown ranking metric",
        ("serve", str(tmp_path)): "not a serving bundle",
        ("serve", str(bundle), "--index", "fast"): "index must be",
        ("serve", str(bundle), "--threads", "0"): "compute_threads",
        ("datasets", "fetch", "nope"): "unknown dataset archive",
        ("datasets", "info", "nope"): "unknown dataset",
        ("features", "extract", "nosuch", "-o", str(tmp_path / "f.npy")): "unknown dataset",
    }
    for args, expected in cases.items():
        out = runner.invoke(app, list(args))
        assert out.exit_code != 0, (args, out.output)
        assert expected in one_error_line(out), (args, out.output)


def test_an_unexpected_error_is_one_line_unless_debugging(monkeypatch: pytest.MonkeyPatch) -> None:
    import fusionrec.cli.models as models_cli

    def boom(name: str) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(models_cli, "describe_model", boom)
    out = runner.invoke(app, ["models", "info", "ALS"])
    assert out.exit_code == 2
    line = one_error_line(out)
    assert "unexpected RuntimeError: boom" in line and "FUSIONREC_DEBUG=1" in line
    debug = runner.invoke(app, ["models", "info", "ALS"], env={"FUSIONREC_DEBUG": "1"})
    assert isinstance(debug.exception, RuntimeError)


def test_a_data_directory_that_does_not_exist_is_named(tmp_path: Path) -> None:
    """Not "no data directory is set" (issue 11): through --data-dir, the environment, and an experiment config."""
    missing = tmp_path / "no-such-dir"
    out = runner.invoke(app, ["datasets", "info", "ml-100k", "--data-dir", str(missing)])
    assert f"the data directory {missing} does not exist" in one_error_line(out)
    out = runner.invoke(app, ["datasets", "info", "ml-100k"], env={"FUSIONREC_DATA_DIR": str(missing)})
    assert f"the data directory {missing}" in one_error_line(out) and "does not exist" in out.output
    cfg = tmp_path / "bench.json"
    cfg.write_text(json.dumps({"dataset": {}, "split": {"benchmark": "ml-100k.random811"}, "models": ["MostPopular"]}))
    out = runner.invoke(app, ["evaluate", str(cfg), "--data-dir", str(missing)])
    line = one_error_line(out)
    assert f"the data directory {missing} does not exist" in line and "no data directory is set" not in line


def test_recommend_with_word_item_ids(tmp_path: Path) -> None:
    """Item ids that are words (a user's own catalogue) come back as written."""
    from fusionrec.serving.cli import train_bundle

    (tmp_path / "log.csv").write_text("user,item\nu1,apple\nu1,pear\nu2,apple\nu2,plum\nu3,pear\nu3,plum\n")
    path = train_bundle(None, "MostPopular", tmp_path / "b", files={"interactions": tmp_path / "log.csv"})
    out = runner.invoke(app, ["recommend", str(path), "--user", "u1", "--json"])
    assert out.exit_code == 0, out.output
    assert [r["item"] for r in json.loads(out.output)["items"]] == ["plum"]


def test_train_takes_what_each_model_reads_from_own_files(tmp_path: Path) -> None:
    """A social model trains from a log plus --social alone (no content), a sequence model from a timed log alone,
    and a content model without --items says which option gives it what it lacks."""
    log = tmp_path / "log.csv"
    rows = [f"u{u},i{(u + k) % 12},1,{1000 * u + k}" for u in range(20) for k in range(5)]
    log.write_text("user,item,rating,timestamp\n" + "\n".join(rows) + "\n")
    social = tmp_path / "social.csv"
    social.write_text("user,friend\n" + "\n".join(f"u{u},u{(u + 1) % 20}" for u in range(20)) + "\n")
    base = ["train", "--interactions", str(log)]
    out = runner.invoke(
        app, [*base, "--social", str(social), "-m", "SocialBPR", "-p", "epochs=2", "-o", str(tmp_path / "s")]
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(app, [*base, "-m", "SASRec", "-p", "epochs=1", "-o", str(tmp_path / "q")])
    assert out.exit_code == 0, out.output
    for model, lacks in (("SocialMF", "needs trust links"), ("CEASE", "needs item features")):
        out = runner.invoke(app, [*base, "-m", model, "-o", str(tmp_path / model)])
        assert out.exit_code != 0, out.output
        line = one_error_line(out, after_read=True)
        assert lacks in line and "--social FILE" in line and "--items FILE" in line, out.output
