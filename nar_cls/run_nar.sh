#!/usr/bin/env bash
# Narcolepsy diagnosis on MNC: subject-wise stratified K-fold cross-validation of classifiers
# fine-tuned from LPSGM, for every TASK x STRATEGY below. Run from the repository root:
#
#   DATA=/data/h5 INIT=weights/ched32_seqed64_ch9_seql20_block4.pth bash nar_cls/run_nar.sh
#
# Variables (environment; defaults in brackets):
#   DATA         harmonized root written by `python -m preprocess mnc-... --dst DATA`   [data/h5]
#   DATASETS     dataset folders under DATA to use, space separated; empty = all         []
#   INIT         backbone checkpoint: ours (NAME.safetensors + NAME.json) or official .pth
#                (used by partial and full)            [weights/ched32_seqed64_ch9_seql20_block4.pth]
#   MODEL        architecture preset for scratch (lpsgm, lpsgm-small, lpsgm-6)          [lpsgm]
#   TASKS        any of: 3class merge_NT1 normal_vs_abnormal     [3class merge_NT1 normal_vs_abnormal]
#   STRATEGIES   any of: partial full scratch                                          [partial full]
#   CHANNELS     canonical channels to use, space separated; empty = all               []
#   FOLDS        number of cross-validation folds                                      [5]
#   EPOCHS       training epochs per fold                                              [30]
#   BATCH_SIZE   windows per step                                                      [32]
#   LR           head learning rate (and backbone's for scratch)                       [1e-3]
#   BACKBONE_LR  backbone learning rate for full                                       [1e-5]
#   SUBJECT_AGG  subject prediction: mean (of window probabilities) or vote            [mean]
#   SELECT       validation criterion of the best epoch: loss, auc or bacc             [loss]
#   SEED         split and training seed                                               [0]
#   WORKERS      DataLoader workers                                                    [4]
#   OUT          results root: one run folder OUT/TASK_STRATEGY per pair               [runs/nar]
#   EXTRA        extra arguments for `python -m nar_cls` (e.g. "--head-hidden 128")    []
#
# Results: OUT/TASK_STRATEGY/metrics.json (pooled + per fold), predictions.csv (one row per
# subject), fold_K/ (metrics.json, predictions.csv, windows.csv, history.csv, model files).
# The frozen-backbone embeddings of partial runs are cached in OUT/features.npz and shared by the tasks.
set -euo pipefail

DATA=${DATA:-data/h5}
DATASETS=${DATASETS:-}
INIT=${INIT:-weights/ched32_seqed64_ch9_seql20_block4.pth}
MODEL=${MODEL:-lpsgm}
TASKS=${TASKS:-"3class merge_NT1 normal_vs_abnormal"}
STRATEGIES=${STRATEGIES:-"partial full"}
CHANNELS=${CHANNELS:-}
FOLDS=${FOLDS:-5}
EPOCHS=${EPOCHS:-30}
BATCH_SIZE=${BATCH_SIZE:-32}
LR=${LR:-1e-3}
BACKBONE_LR=${BACKBONE_LR:-1e-5}
SUBJECT_AGG=${SUBJECT_AGG:-mean}
SELECT=${SELECT:-loss}
SEED=${SEED:-0}
WORKERS=${WORKERS:-4}
OUT=${OUT:-runs/nar}
EXTRA=${EXTRA:-}

common=(--data "$DATA" --folds "$FOLDS" --epochs "$EPOCHS" --batch-size "$BATCH_SIZE" --lr "$LR"
        --backbone-lr "$BACKBONE_LR" --subject-agg "$SUBJECT_AGG" --select "$SELECT" --seed "$SEED"
        --workers "$WORKERS")
# shellcheck disable=SC2206
if [[ -n "$DATASETS" ]]; then common+=(--datasets $DATASETS); fi
# shellcheck disable=SC2206
if [[ -n "$CHANNELS" ]]; then common+=(--channels $CHANNELS); fi

for task in $TASKS; do
  for strategy in $STRATEGIES; do
    run=(--task "$task" --strategy "$strategy" --out "$OUT/${task}_${strategy}")
    case "$strategy" in
      scratch) run+=(--model "$MODEL") ;;
      partial) run+=(--init "$INIT" --feature-cache "$OUT/features.npz") ;;
      *)       run+=(--init "$INIT") ;;
    esac
    echo "== $task / $strategy -> $OUT/${task}_${strategy}"
    # shellcheck disable=SC2086
    python -m nar_cls "${common[@]}" "${run[@]}" $EXTRA
  done
done
