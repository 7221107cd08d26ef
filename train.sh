#!/usr/bin/env bash
# Train LPSGM on harmonized HDF5 datasets (output of preprocess.sh).
#
# Every setting below is a variable with a default; override any of them from the environment,
# and pass extra train.py options after the script name:
#
#   bash train.sh                                                  # 1 GPU (or CPU)
#   NPROC=8 bash train.sh                                          # 8 GPUs on this node
#   NNODES=4 NPROC=8 RDZV_ENDPOINT=node0:29500 bash train.sh       # on each of 4 nodes (SLURM: cluster/train.sbatch)
#   bash train.sh                                                  # again: continues an interrupted run exactly
#
# Elastic by default: every launch goes through torchrun with --max-restarts (a failed worker restarts
# all of them from the last checkpoint) and train.py gets --resume (a fresh OUT simply starts; to start
# over, use a new OUT). A checkpoint is written every CKPT_MINUTES of training, the most work a failure
# loses. GLOBAL_BATCH_SIZE windows per step are split over all processes (NNODES x NPROC must divide it);
# N processes train exactly as one process at that batch (docs/cluster.md).
#
# Defaults reproduce the paper's training recipe where it is known (reference train.sh/trainer):
# LPSGM with N=4 transformer blocks (MODEL=lpsgm-6 for the released inference model), windows of
# 20 epochs, AdamW lr 1e-4 / weight decay 1e-4, 25 epochs with 10 warmup epochs and cosine decay
# to eta_min=1e-8 (MIN_LR_RATIO=1e-4; unlike the reference, the first warmup step is not LR 0),
# gradient clipping at 1, dropout 0.1, 10 % of each dataset's subjects for validation, seed
# 20010613. The reference used nn.DataParallel with a batch of 32 windows in total (GLOBAL_BATCH_SIZE);
# a larger global batch scales the peak LR by LR_SCALING (sqrt: LR x sqrt(G/32), docs/cluster.md).
# Class weights are computed from the training manifests (the reference hard-coded them).
set -euo pipefail
cd "$(dirname "$0")"

DATA=${DATA:-data/h5}                 # harmonized root(s), space separated
DATASETS=${DATASETS:-}                # dataset folders to use (empty = all found)
OUT=${OUT:-runs/lpsgm}                # run folder: best.*, last.*, state.pt, metrics.jsonl, tb/
MODEL=${MODEL:-lpsgm}                 # lpsgm (N=4) | lpsgm-small (N=1) | lpsgm-6
GLOBAL_BATCH_SIZE=${GLOBAL_BATCH_SIZE:-32}   # windows per step over all processes
BATCH_SIZE=${BATCH_SIZE:-}            # or: windows per step per process (instead of GLOBAL_BATCH_SIZE)
LR=${LR:-1e-4}                        # peak LR at global batch 32
LR_SCALING=${LR_SCALING:-sqrt}        # none | sqrt | linear: peak LR = LR x (G/32)^(0 | 1/2 | 1)
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
CKPT_MINUTES=${CKPT_MINUTES:-10}      # checkpoint after this many minutes of training (lost work on failure)
WORKERS=${WORKERS:-8}                 # DataLoader workers per process
SEED=${SEED:-20010613}

NPROC=${NPROC:-1}                     # processes (GPUs) per node
NNODES=${NNODES:-1}
RDZV_ENDPOINT=${RDZV_ENDPOINT:-localhost:29500}   # host:port of one node every node reaches (multi-node)
RUN_ID=${RUN_ID:-lpsgm}               # rendezvous id shared by all nodes of one job
MAX_RESTARTS=${MAX_RESTARTS:-3}       # elastic restarts of the whole worker group after a failure
PYTHON=${PYTHON:-python}

args=(--data $DATA --out "$OUT" --model "$MODEL" --lr "$LR" --lr-scaling "$LR_SCALING"
      --weight-decay "$WEIGHT_DECAY" --min-lr-ratio "$MIN_LR_RATIO" --epochs "$EPOCHS"
      --warmup-epochs "$WARMUP_EPOCHS" --grad-clip "$GRAD_CLIP" --val-fraction "$VAL_FRACTION"
      --mixing "$MIXING" --temperature "$TEMPERATURE" --channel-dropout "$CHANNEL_DROPOUT"
      --wake-margin "$WAKE_MARGIN" --eval-every "$EVAL_EVERY" --ckpt-minutes "$CKPT_MINUTES"
      --workers "$WORKERS" --seed "$SEED" --resume)
if [ -n "$BATCH_SIZE" ]; then args+=(--batch-size "$BATCH_SIZE"); else args+=(--global-batch-size "$GLOBAL_BATCH_SIZE"); fi
[ -n "$DATASETS" ] && args+=(--datasets $DATASETS)
[ -n "$MAX_STEPS" ] && args+=(--max-steps "$MAX_STEPS")

if [ "$NNODES" -gt 1 ]; then
    launch=(--nnodes "$NNODES" --rdzv_backend c10d --rdzv_endpoint "$RDZV_ENDPOINT" --rdzv_id "$RUN_ID")
else
    launch=(--standalone)
fi
exec "$PYTHON" -m torch.distributed.run "${launch[@]}" --nproc_per_node "$NPROC" --max-restarts "$MAX_RESTARTS" \
    train.py "${args[@]}" "$@"
