#!/usr/bin/env bash
# Set up the benchmark environment: everything the tests use plus the peers fusionrec is compared with
# (benchmark extras only, never runtime dependencies). Then run any benchmarks/<name>.py with .venv/bin/python.
source "$(dirname "$0")/_venv.sh"
python -m pip install -q "torch==2.13.0"
python -m pip install -q "setuptools>=77.0.3,<81" wheel
python -m pip install -q -e ".[dev,deep,text,audio,video,serve,image,peers]"
python -m pip install -q --no-deps "aisfx==0.1.2"
# LightFM 1.17 ships no wheel, and its setup.py sets __builtins__.__LIGHTFM_SETUP__, which fails when a PEP 517
# backend runs it (__builtins__ is then a dict); current pip has no legacy path. Build the checksummed sdist
# with that one line patched.
if ! python -c "import lightfm" 2>/dev/null; then
  tmp=$(mktemp -d)
  curl -sSL -o "$tmp/lightfm-1.17.tar.gz" \
    "https://files.pythonhosted.org/packages/1f/96/5ec230f5c27811534af0faaa8525f11c1000ee1c24c8a82c0546d0724aea/lightfm-1.17.tar.gz"
  echo "2b77ada182ccd768a8d7643ab3cfcd8b6e855db09087f7cc7329bd63316697a8  $tmp/lightfm-1.17.tar.gz" | sha256sum -c -
  tar -xzf "$tmp/lightfm-1.17.tar.gz" -C "$tmp"
  sed -i 's/^__builtins__.__LIGHTFM_SETUP__ = True/import builtins\nbuiltins.__LIGHTFM_SETUP__ = True/' "$tmp/lightfm-1.17/setup.py"
  python -m pip install -q --no-build-isolation "$tmp/lightfm-1.17"
  rm -rf "$tmp"
fi
python -c "import surprise, implicit, cornac, myfm, lightfm; print('peers ready')"
