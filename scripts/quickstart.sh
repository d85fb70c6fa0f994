#!/usr/bin/env bash
# One command on a fresh machine: set up, then run the main job on the built-in synthetic dataset — the CF
# baselines (MostPopular, ItemKNN, EASE, ALS, BPR) beside the multimodal fusion models (HybridMF, VBPR, DeepFusion
# early/late/attention, GraphFusion, CEASE) and a rank-fusion ensemble, a modality ablation, an HTML report
# (fusionrec-output/quickstart/report.html) and recommendations.  Options: see `fusionrec quickstart --help`.
source "$(dirname "$0")/_venv.sh"
# torch first and pinned: the CPU build (a bare `pip install torch` would pull a multi-GB CUDA build)
python -m pip install -q "torch==2.13.0"
# the deep extra (DeepFusion, GraphFusion), the audio extra (the synthetic items' audio modality) and the serve
# extra, so that the README's next steps (train on your own files, serve) run in the same environment
python -m pip install -q -e ".[audio,deep,serve]"
fusionrec quickstart "$@"
