#!/usr/bin/env bash
# The sequential benchmark's converged-quality run on one CUDA GPU (both libraries train there; fit times on the
# 2 CPU cores are in benchmarks/results/sequential.md).  Every (dataset, RecBole model, learning rate) runs as its
# own process in parallel with fusionrec's rows; `sequential.py --merge` then keeps, per dataset and model, the
# learning rate with the best valid NDCG@10.  Rows with more fusionrec epochs are a separate, equal-compute file.
#
#   FUSIONREC_DATA_DIR=<data> OUT=<folder> RECBOLE_PYTHON=<python with recbole> bash benchmarks/sequential_gpu.sh
#
# Env: EPOCHS (50), LONG_EPOCHS (200), LIMIT_S (per process, 420), LRS ("0.001 0.005"), DATASETS, DEVICE (cuda).
set -u
shopt -s nullglob
cd "$(dirname "$0")/.."
E=${EPOCHS:-50}; LONG=${LONG_EPOCHS:-200}; LIMIT=${LIMIT_S:-420}; LRS=${LRS:-"0.001 0.005"}
PY=${PYTHON:-python3}; RB=${RECBOLE_PYTHON:-$PY}
R="$OUT/r"; mkdir -p "$R"
OURS="fusionrec SASRec,fusionrec SASRec+content,fusionrec GRU4Rec,fusionrec CNNLSTM,fusionrec EASE"
run() { timeout "$LIMIT" "$PY" benchmarks/sequential.py --device "${DEVICE:-cuda}" --threads 2 --recbole-python "$RB" "$@"; }
for ds in ${DATASETS:-ml-100k ml-latest-small}; do
  run --datasets "$ds" --epochs "$E" --lrs "${LRS// /,}" --skip "RecBole SASRec,RecBole GRU4Rec,fusionrec CNNLSTM" \
    --out "$R/ours_$ds.json" >"$R/ours_$ds.log" 2>&1 &
  run --datasets "$ds" --epochs "$LONG" --lrs "${LRS// /,}" \
    --skip "RecBole SASRec,RecBole GRU4Rec,fusionrec CNNLSTM,fusionrec EASE" \
    --out "$R/long_$ds.json" >"$R/long_$ds.log" 2>&1 &
  for m in SASRec GRU4Rec; do
    other=$([ "$m" = SASRec ] && echo GRU4Rec || echo SASRec)
    for lr in $LRS; do
      run --datasets "$ds" --epochs "$E" --lrs "$lr" --skip "$OURS,RecBole $other" \
        --out "$R/recbole_${ds}_${m}_$lr.json" >"$R/recbole_${ds}_${m}_$lr.log" 2>&1 &
    done
  done
done
wait
main=("$R"/ours_*.json "$R"/recbole_*.json); long=("$R"/long_*.json)
[ ${#main[@]} -gt 0 ] && "$PY" benchmarks/sequential.py --merge "${main[@]}" --out "$OUT/merged.json" >"$OUT/table.md" 2>&1
[ ${#long[@]} -gt 0 ] && "$PY" benchmarks/sequential.py --merge "${long[@]}" --out "$OUT/long.json" >"$OUT/long_table.md" 2>&1
tar czf "$OUT/runs.tgz" -C "$OUT" r
cat "$OUT"/*table.md 2>/dev/null; for f in "$R"/*.log; do echo "== $f"; tail -n 4 "$f"; done
