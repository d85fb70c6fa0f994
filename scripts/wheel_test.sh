#!/usr/bin/env bash
# The wheel works on its own: build the sdist and the wheel, `twine check` them, install the wheel (not the checkout)
# into a fresh virtual environment, run `fusionrec quickstart` (small) and a smoke subset of the tests against it.
#
#   bash scripts/wheel_test.sh                 # work directory: $FUSIONREC_WHEEL_DIR or /tmp/fusionrec-wheel-test
#
# The tests are copied (with pyproject.toml for the pytest settings) into a directory that holds no src/, so every
# `import fusionrec` resolves to the installed wheel; the script checks that before running them. pip's cache is
# reused. torch is installed first and pinned (the CPU build; a bare `torch` can pull a multi-GB CUDA build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
WORK="${FUSIONREC_WHEEL_DIR:-/tmp/fusionrec-wheel-test}"
# the smoke subset: the public API, persistence, metrics, ranking, the CLI (its quickstart test is the run above),
# your own files, readable bundle titles, the public API's docstrings and packaging itself
SMOKE=(
  tests/test_packaging.py tests/test_api.py tests/test_ranking.py tests/evaluation/test_metrics.py
  tests/models/test_persistence.py tests/cli/test_cli.py tests/data/test_files.py tests/models/test_baselines.py
  tests/test_docs.py tests/test_readable_output.py
)
log() { echo "wheel_test [$(date +%T)]: $*" >&2; }

rm -rf "$WORK"
mkdir -p "$WORK"

log "building the sdist and the wheel"
"$PY" -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install -q --upgrade pip
"$WORK/tools/bin/python" -m pip install -q build twine
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 || {
  tail -n 40 "$WORK/build.log" >&2
  exit 1
}
"$WORK/tools/bin/python" -m twine check --strict "$WORK"/dist/*
WHEEL="$(ls "$WORK"/dist/fusionrec-*.whl)"
SDIST="$(ls "$WORK"/dist/fusionrec-*.tar.gz)"
log "built $(basename "$WHEEL") and $(basename "$SDIST")"
# the wheel holds the package, its data files and the typing marker, and nothing of the checkout beside it
"$WORK/tools/bin/python" - "$WHEEL" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = {"fusionrec/py.typed", "fusionrec/__main__.py", "fusionrec/serving/web/index.html",
        "fusionrec/evaluation/templates/report.html.j2"}
missing = need - names
stray = sorted(n for n in names if not n.startswith(("fusionrec/", "fusionrec-")))
if missing or stray:
    sys.exit(f"wheel_test: the wheel misses {sorted(missing)} or holds files outside the package: {stray[:10]}")
if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
    sys.exit("wheel_test: the wheel holds no LICENSE")
EOF

log "installing the wheel into a fresh environment"
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q --upgrade pip
"$VPY" -m pip install -q "torch==2.13.0"
# the runtime extras of the quickstart (deep models, the audio modality of the synthetic items, serving) and what the
# smoke tests use
"$VPY" -m pip install -q "${WHEEL}[deep,audio,serve]" "pytest>=8" "hypothesis>=6"

RUN="$WORK/run"
mkdir -p "$RUN"
# the tests, and the checkout files some of them read (the README's examples, the example configs): no source
cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$RUN/"
cp -r "$ROOT/tests" "$RUN/tests"
cp -r "$ROOT/examples" "$RUN/examples"
find "$RUN/tests" -name __pycache__ -prune -exec rm -rf {} +
cd "$RUN"
export FUSIONREC_CACHE_DIR="$RUN/.cache"
"$VPY" - "$WORK/venv" <<'EOF'
import pathlib, sys
import fusionrec
where = pathlib.Path(fusionrec.__file__).resolve()
venv = pathlib.Path(sys.argv[1]).resolve()
if venv not in where.parents or "site-packages" not in where.parts:
    sys.exit(f"wheel_test: fusionrec imports from {where}, not from the installed wheel in {venv}")
print(f"wheel_test: fusionrec {fusionrec.__version__} from {where.parent}", file=sys.stderr)
EOF

log "fusionrec quickstart (small) from the installed console script"
"$WORK/venv/bin/fusionrec" --version
"$WORK/venv/bin/fusionrec" quickstart --users 150 --items 100 --no-ablation --out "$RUN/quickstart" >"$RUN/quickstart.log"
tail -n 16 "$RUN/quickstart.log"
test -s "$RUN/quickstart/report.html" || { log "the quickstart wrote no report"; exit 1; }
"$VPY" -m fusionrec models list >/dev/null

log "smoke tests against the installed wheel: ${SMOKE[*]}"
"$VPY" -m pytest -q -p no:cacheprovider --rootdir "$RUN" -k "not quickstart_runs_end_to_end" "${SMOKE[@]}"
log "ok"
