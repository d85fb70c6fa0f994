#!/usr/bin/env bash
# Set up the benchmark environment: everything the tests use plus the peers fusionrec is compared with
# (benchmark extras only, never runtime dependencies). Then run any benchmarks/<name>.py with .venv/bin/python.
source "$(dirname "$0")/_venv.sh"
python -m pip install -q "torch==2.13.0"
python -m pip install -q "setuptools>=77.0.3,<81" wheel
python -m pip install -q -e ".[dev,deep,text,audio,video,serve,image,tune,track,distributed,privacy,federated,peers]"
python -m pip install -q --no-deps "flwr==1.42.0" "aisfx==0.1.2"
# benchmark-only peers kept out of .venv (they pin what the project cannot): FA*IR for fairness_curve.py
# (--peer-path) and RecBole for sequential.py (--recbole-python; it pins ray 2.6.3, so it gets its own venv)
python -m pip install -q --no-deps --target .bench/fairsearch-lib "fairsearchcore==1.0.4"
if [ ! -x .bench/recbole-venv/bin/python ]; then
  python -m venv .bench/recbole-venv
  .bench/recbole-venv/bin/python -m pip install -q "torch==2.13.0"
  .bench/recbole-venv/bin/python -m pip install -q --no-deps "recbole==1.2.1"
  .bench/recbole-venv/bin/python -m pip install -q numpy scipy pandas tqdm colorlog colorama scikit-learn pyyaml \
    tensorboard texttable psutil tabulate plotly thop
fi
# MMRec (enoche/MMRec, for mmrec_peers.py: FREEDOM, BM3, LGMRec, LATTICE on TikTok) is a research repository, not a
# package: its code is fetched at a pinned commit into .bench/MMRec (never committed) and run in its own venv (it
# pins torch 1.11 / numpy 1.21; it runs on torch 2.13 and current numpy / scipy with the two shims in mmrec_peers.py)
MMREC_COMMIT="e775373b3ab1354a92165b0885ce4ab3dc4d7497"
if [ ! -d .bench/MMRec/src ]; then
  mkdir -p .bench/MMRec
  if ! git clone -q --bare https://github.com/enoche/MMRec .bench/MMRec.git 2>/dev/null; then
    echo "MMRec: could not clone github.com/enoche/MMRec; put its source (commit $MMREC_COMMIT) in .bench/MMRec" >&2
  else
    git --git-dir=.bench/MMRec.git archive "$MMREC_COMMIT" | tar -x -C .bench/MMRec
    rm -rf .bench/MMRec.git
  fi
fi
if [ ! -x .bench/mmrec-venv/bin/python ]; then
  python -m venv .bench/mmrec-venv
  .bench/mmrec-venv/bin/python -m pip install -q "torch==2.13.0"
  .bench/mmrec-venv/bin/python -m pip install -q numpy scipy pandas pyyaml matplotlib
fi
# LightFM 1.17 ships no wheel, and its setup.py sets __builtins__.__LIGHTFM_SETUP__, which fails when a PEP 517
# backend runs it (__builtins__ is then a dict); current pip has no legacy path, and `pip download` of the sdist
# fails too (it prepares the metadata, running that setup.py). So the sdist is taken from the index pip is
# configured with (PIP_INDEX_URL / pip config index-url, else PyPI; then the extra indexes), checked against its
# sha256, and built with that one line patched.
LIGHTFM_SDIST="lightfm-1.17.tar.gz"
LIGHTFM_SHA256="2b77ada182ccd768a8d7643ab3cfcd8b6e855db09087f7cc7329bd63316697a8"
if ! python -c "import lightfm" 2>/dev/null; then
  tmp=$(mktemp -d)
  python - "$LIGHTFM_SDIST" "$tmp" <<'PY'
"""Download an sdist by file name from pip's configured index(es) (PEP 503 simple pages; https or file URLs)."""
import os, re, ssl, subprocess, sys, urllib.parse, urllib.request

name, dest = sys.argv[1], sys.argv[2]
project = name.rsplit("-", 1)[0]


def pip_config(key):
    out = subprocess.run([sys.executable, "-m", "pip", "config", "get", key], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


index = os.environ.get("PIP_INDEX_URL") or pip_config("global.index-url") or "https://pypi.org/simple"
extra = os.environ.get("PIP_EXTRA_INDEX_URL") or pip_config("global.extra-index-url")
cafile = os.environ.get("PIP_CERT") or pip_config("global.cert") or None
context = ssl.create_default_context(cafile=cafile)
for base in [index, *extra.split()]:
    page = base.rstrip("/") + f"/{project}/"
    if page.startswith("file:") and os.path.isdir(urllib.request.url2pathname(urllib.parse.urlsplit(page).path)):
        page += "index.html"  # a simple index on disk: one folder per project
    try:
        with urllib.request.urlopen(page, timeout=60, context=context) as response:
            html = response.read().decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        print(f"  {page}: {exc}", file=sys.stderr)
        continue
    for href in re.findall(r'href="([^"]+)"', html):
        url = urllib.parse.urljoin(page, href.replace("&amp;", "&"))
        if urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1] == name:
            with urllib.request.urlopen(url.split("#")[0], timeout=300, context=context) as response:
                with open(os.path.join(dest, name), "wb") as out:
                    out.write(response.read())
            print(f"  {name} from {base}")
            sys.exit(0)
sys.exit(f"{name} is on none of the configured indexes ({index} {extra}); set PIP_INDEX_URL to one that has it")
PY
  echo "$LIGHTFM_SHA256  $tmp/$LIGHTFM_SDIST" | sha256sum -c -
  tar -xzf "$tmp/$LIGHTFM_SDIST" -C "$tmp"
  sed -i 's/^__builtins__.__LIGHTFM_SETUP__ = True/import builtins\nbuiltins.__LIGHTFM_SETUP__ = True/' "$tmp/lightfm-1.17/setup.py"
  python -m pip install -q --no-build-isolation "$tmp/lightfm-1.17"
  rm -rf "$tmp"
fi
python -c "import surprise, implicit, cornac, myfm, lightfm; print('peers ready')"
