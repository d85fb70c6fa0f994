#!/usr/bin/env bash
# Set up everything the tests use (torch CPU first, then the optional extras) and run the test suite.
# Real-data tests run when FUSIONREC_DATA_DIR points at the shared datasets; they skip otherwise.
source "$(dirname "$0")/_venv.sh"
# torch first, pinned to the CPU build on this machine's disk (a bare 'torch' can pull a multi-GB CUDA build)
python -m pip install -q "torch==2.13.0"
python -m pip install -q "setuptools>=77.0.3,<81" wheel
# every extra in one resolver pass: encoders, deep models, serving, tuning (optuna) and tracking (mlflow),
# Ray (fusionrec.distributed; tests/distributed start a local cluster), private (opacus) and federated training
python -m pip install -q -e ".[dev,deep,text,audio,video,serve,image,tune,track,distributed,privacy,federated]"
# Flower without its stale pins (old fastapi/typer, ray==2.55): what it imports is in the federated extra above
python -m pip install -q --no-deps "flwr==1.42.0"
# the offline aiSFX audio embedding declares stale pins; its real needs (torch, librosa) are installed above
python -m pip install -q --no-deps "aisfx==0.1.2"
# imports run one way: the layer and no-circle contracts of pyproject.toml [tool.importlinter]
lint-imports --no-cache
python -m pytest -n "${PYTEST_WORKERS:-2}" "$@"
