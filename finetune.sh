#!/usr/bin/env bash
# Fine-tune LPSGM on one dataset with subject-wise K-fold cross-validation.
#
#   DATASET=hmc INIT=weights/ched32_seqed64_ch9_seql20_block4.pth bash finetune.sh          # all folds
#   DATASET=hmc FOLDS=5 FOLD=2 STRATEGY=partial INIT=runs/lpsgm/best bash finetune.sh      # one fold
#   DATASET=hmc STRATEGY=scratch bash finetune.sh                                          # no pretraining
#   NPROC=4 DATASET=hmc INIT=... bash finetune.sh                                          # 4 GPUs per fold
#
# Each fold writes $OUT/fold$k/{config.json, metrics.json, predictions.csv, best.*, last.*}; the
# script ends with the mean test metrics over the folds that are done.
# Defaults follow the reference finetune.sh: 5 folds, 20 % of the training subjects as inner
# validation, batch 32, AdamW lr 1e-4 / weight decay 1e-4, 100 epochs with 15 warmup epochs,
# cosine to 1e-8 (MIN_LR_RATIO=1e-4), gradient clipping 1, seed 20010613, N=4 pretrained weights.
set -euo pipefail
cd "$(dirname "$0")"

DATA=${DATA:-data/h5}                 # harmonized root(s)
DATASET=${DATASET:?set DATASET to the dataset folder to fine-tune on}
INIT=${INIT:-weights/ched32_seqed64_ch9_seql20_block4.pth}   # ours (NAME.safetensors) or official .pth
STRATEGY=${STRATEGY:-full}            # full | partial (head only) | scratch
MODEL=${MODEL:-lpsgm}                 # architecture for STRATEGY=scratch
FOLDS=${FOLDS:-5}
FOLD=${FOLD:-}                        # one fold; empty = all folds in turn
OUT=${OUT:-runs/finetune/$DATASET/$STRATEGY}
BATCH_SIZE=${BATCH_SIZE:-32}
LR_BACKBONE=${LR_BACKBONE:-1e-4}
LR_HEAD=${LR_HEAD:-1e-4}
WEIGHT_DECAY=${WEIGHT_DECAY:-1e-4}
MIN_LR_RATIO=${MIN_LR_RATIO:-1e-4}
EPOCHS=${EPOCHS:-100}
WARMUP_EPOCHS=${WARMUP_EPOCHS:-15}
VAL_FRACTION=${VAL_FRACTION:-0.2}
WORKERS=${WORKERS:-8}
SEED=${SEED:-20010613}
NPROC=${NPROC:-1}

if [ "$STRATEGY" = scratch ]; then init=(--model "$MODEL"); else init=(--init "$INIT"); fi
folds=$(seq 0 $((FOLDS - 1)))
[ -n "$FOLD" ] && folds=$FOLD
launch=(python)
[ "$NPROC" -gt 1 ] && launch=(torchrun --standalone --nproc_per_node "$NPROC")

for k in $folds; do
    "${launch[@]}" finetune.py --data $DATA --dataset "$DATASET" "${init[@]}" --strategy "$STRATEGY" \
        --folds "$FOLDS" --fold "$k" --out "$OUT/fold$k" --batch-size "$BATCH_SIZE" \
        --lr-backbone "$LR_BACKBONE" --lr-head "$LR_HEAD" --weight-decay "$WEIGHT_DECAY" \
        --min-lr-ratio "$MIN_LR_RATIO" --epochs "$EPOCHS" --warmup-epochs "$WARMUP_EPOCHS" \
        --val-fraction "$VAL_FRACTION" --workers "$WORKERS" --seed "$SEED" "$@"
done

python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
runs = sorted(Path(sys.argv[1]).glob("fold*/metrics.json"))
if runs:
    tests = [json.loads(p.read_text())["test"] for p in runs]
    vals = {k: [t[k] for t in tests if t.get(k) is not None] for k in ("accuracy", "macro_f1", "kappa")}
    mean = {k: sum(v) / len(v) for k, v in vals.items() if v}
    print(f"{len(runs)} fold(s): " + ", ".join(f"{k} {v:.4f}" for k, v in mean.items()))
PY
