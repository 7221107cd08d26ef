#!/usr/bin/env bash
# Train LPSGM on harmonized HDF5 datasets (output of preprocess.sh).
#
# Every setting below is a variable with a default; override any of them from the environment,
# and pass extra train.py options after the script name:
#
#   bash train.sh                                                  # 1 GPU (or CPU)
#   NPROC=8 bash train.sh                                          # 8 GPUs on this node
#   NNODES=4 NODE_RANK=0 NPROC=8 RDZV_ENDPOINT=node0:29500 bash train.sh   # on node 0 ...
#   NNODES=4 NODE_RANK=1 NPROC=8 RDZV_ENDPOINT=node0:29500 bash train.sh   # ... and on each other node
#   bash train.sh --resume                                         # continue an interrupted run exactly
#
# Defaults reproduce the paper's training recipe where it is known (reference train.sh/trainer):
# LPSGM with N=4 transformer blocks (MODEL=lpsgm-6 for the released inference model), windows of
# 20 epochs, AdamW lr 1e-4 / weight decay 1e-4, 25 epochs with 10 warmup epochs and cosine decay
# to eta_min=1e-8 (MIN_LR_RATIO=1e-4; unlike the reference, the first warmup step is not LR 0),
# gradient clipping at 1, dropout 0.1, 10 % of each dataset's subjects for validation, seed
# 20010613. The reference used nn.DataParallel with a batch of 32 windows in total; here
# BATCH_SIZE is per process, so keep BATCH_SIZE x NPROC x NNODES = 32 to match it (or scale LR).
# Class weights are computed from the training manifests (the reference hard-coded them).
set -euo pipefail
cd "$(dirname "$0")"

DATA=${DATA:-data/h5}                 # harmonized root(s), space separated
DATASETS=${DATASETS:-}                # dataset folders to use (empty = all found)
OUT=${OUT:-runs/lpsgm}                # run folder: best.*, last.*, state.pt, metrics.jsonl, tb/
MODEL=${MODEL:-lpsgm}                 # lpsgm (N=4) | lpsgm-small (N=1) | lpsgm-6
BATCH_SIZE=${BATCH_SIZE:-32}          # windows per step per process
LR=${LR:-1e-4}
WEIGHT_DECAY=${WEIGHT_DECAY:-1e-4}
MIN_LR_RATIO=${MIN_LR_RATIO:-1e-4}    # 1e-8 / 1e-4 as in the paper
EPOCHS=${EPOCHS:-25}                  # passes over the training windows (or set MAX_STEPS)
WARMUP_EPOCHS=${WARMUP_EPOCHS:-10}
MAX_STEPS=${MAX_STEPS:-}              # overrides EPOCHS when set
GRAD_CLIP=${GRAD_CLIP:-1.0}
VAL_FRACTION=${VAL_FRACTION:-0.1}
MIXING=${MIXING:-proportional}        # proportional | equal | temperature
TEMPERATURE=${TEMPERATURE:-2.0}
CHANNEL_DROPOUT=${CHANNEL_DROPOUT:-0.5}
WAKE_MARGIN=${WAKE_MARGIN:-30}        # minutes of wake kept around sleep; -1 = whole night
EVAL_EVERY=${EVAL_EVERY:-2000}
CKPT_EVERY=${CKPT_EVERY:-2000}
WORKERS=${WORKERS:-8}                 # DataLoader workers per process
SEED=${SEED:-20010613}

NPROC=${NPROC:-1}                     # processes (GPUs) per node
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
RDZV_ENDPOINT=${RDZV_ENDPOINT:-localhost:29500}   # host:port of node 0 (multi-node)
RUN_ID=${RUN_ID:-lpsgm}               # rendezvous id shared by all nodes of one job

args=(--data $DATA --out "$OUT" --model "$MODEL" --batch-size "$BATCH_SIZE" --lr "$LR"
      --weight-decay "$WEIGHT_DECAY" --min-lr-ratio "$MIN_LR_RATIO" --epochs "$EPOCHS"
      --warmup-epochs "$WARMUP_EPOCHS" --grad-clip "$GRAD_CLIP" --val-fraction "$VAL_FRACTION"
      --mixing "$MIXING" --temperature "$TEMPERATURE" --channel-dropout "$CHANNEL_DROPOUT"
      --wake-margin "$WAKE_MARGIN" --eval-every "$EVAL_EVERY" --ckpt-every "$CKPT_EVERY"
      --workers "$WORKERS" --seed "$SEED")
[ -n "$DATASETS" ] && args+=(--datasets $DATASETS)
[ -n "$MAX_STEPS" ] && args+=(--max-steps "$MAX_STEPS")

if [ "$NNODES" -gt 1 ]; then
    exec torchrun --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$NPROC" \
        --rdzv_backend c10d --rdzv_endpoint "$RDZV_ENDPOINT" --rdzv_id "$RUN_ID" \
        train.py "${args[@]}" "$@"
elif [ "$NPROC" -gt 1 ]; then
    exec torchrun --standalone --nproc_per_node "$NPROC" train.py "${args[@]}" "$@"
else
    exec python train.py "${args[@]}" "$@"
fi
