#!/usr/bin/env bash
# Set up (core dependencies + the audio extra) and run the main job on the built-in synthetic dataset:
# train the available models, evaluate them, write an HTML report and print recommendations.
source "$(dirname "$0")/_venv.sh"
python -m pip install -q -e ".[audio]"
fusionrec quickstart "$@"
