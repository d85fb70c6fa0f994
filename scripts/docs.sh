#!/usr/bin/env bash
# Build the documentation site into site/ strictly (any warning fails), with every tutorial executed (a failing one
# breaks the build), then check it: offline (no external scripts, styles or fonts) and, when Chromium is installed,
# in headless Chromium at desktop and phone widths (screenshots in site-check/).
#
#   bash scripts/docs.sh                 # build + checks
#   python -m http.server -d site 8001   # then browse http://127.0.0.1:8001 (search needs the site served)
#
# Environment: FUSIONREC_DOCS_CACHE=true reuses the executed tutorials of an unchanged source (local iteration);
# DOCS_BROWSER=0 skips the browser check; CHROMIUM=/path/to/chromium names the browser.
source "$(dirname "$0")/_venv.sh"
# the docs extra (MkDocs Material, mkdocstrings, mkdocs-jupyter) and what the tutorials and generated pages import:
# serving (the endpoint table, the CSV-to-served-model tutorial), Optuna (tuning), librosa (the synthetic audio)
python -m pip install -q "setuptools>=77.0.3,<81" wheel
python -m pip install -q -e ".[docs,serve,tune,audio]"
export NO_MKDOCS_2_WARNING=1
mkdocs build --strict "$@"
python scripts/docs_check.py static site
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ "${DOCS_BROWSER:-1}" != 0 ] && [ -n "$CHROMIUM" ]; then
  python scripts/docs_check.py browser site --chromium "$CHROMIUM" --out site-check
else
  echo "docs: headless Chromium not found (or DOCS_BROWSER=0): browser check skipped" >&2
fi
