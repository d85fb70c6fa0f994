#!/usr/bin/env bash
# Set up everything the tests use (torch CPU first, then the optional extras) and run the test suite.
# Real-data tests run when FUSIONREC_DATA_DIR points at the shared datasets; they skip otherwise.
source "$(dirname "$0")/_venv.sh"
# torch first, pinned to the CPU build on this machine's disk (a bare 'torch' can pull a multi-GB CUDA build)
python -m pip install -q "torch==2.13.0"
python -m pip install -q "setuptools>=77.0.3,<81" wheel
python -m pip install -q -e ".[dev,deep,text,audio,video,serve,image]"
# tuning and tracking (issue 14): optuna, mlflow
python -m pip install -q -e ".[tune,track]"
# Ray for fusionrec.distributed (issue 14): tests/distributed start a local cluster, skip without it
python -m pip install -q -e ".[distributed]"
# private and federated training (issue 13): opacus; Flower without its stale pins (old fastapi/typer, ray==2.55)
python -m pip install -q -e ".[privacy,federated]"
python -m pip install -q --no-deps "flwr==1.42.0"
# the offline aiSFX audio embedding declares stale pins; its real needs (torch, librosa) are installed above
python -m pip install -q --no-deps "aisfx==0.1.2"
python -m pytest -n "${PYTEST_WORKERS:-2}" "$@"
