#!/usr/bin/env bash
# Set up the benchmark environment: everything the tests use plus the peers fusionrec is compared with
# (benchmark extras only, never runtime dependencies). Then run any benchmarks/<name>.py with .venv/bin/python.
source "$(dirname "$0")/_venv.sh"
python -m pip install -q "torch==2.13.0"
python -m pip install -q "setuptools>=77.0.3,<81" wheel
python -m pip install -q -e ".[dev,deep,text,audio,video,serve,image,peers]"
python -m pip install -q --no-deps "aisfx==0.1.2"
# LightFM 1.17 ships no wheel and its setup.py only builds through the legacy (non-PEP 517) path
python -m pip install -q --no-use-pep517 --no-build-isolation "lightfm==1.17"
python -c "import surprise, implicit, cornac, myfm, lightfm; print('peers ready')"
