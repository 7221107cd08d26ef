#!/usr/bin/env bash
# Diagnosis from PSG (narcolepsy on MNC, OSA and depression on APPLES, ...): subject-wise stratified
# K-fold cross-validation of classifiers fine-tuned from LPSGM, for every TASK x STRATEGY below
# (every run also reports the linear probe on frozen subject features). From the repository root:
#
#   DATA=/data/h5 INIT=weights/lpsgm-small-demo.safetensors bash nar_cls/run_nar.sh
#   DATA=/data/h5 TASKS="osa depression" STRATEGIES="partial full joint" \
#     SUBJECT_TABLE=apples=/data/apples/datasets/apples-harmonized-dataset-0.1.0.csv,/data/apples/datasets/apples-dataset-0.1.0.csv \
#     bash nar_cls/run_nar.sh
#
# Variables (environment; defaults in brackets):
#   DATA         harmonized root written by `python -m preprocess mnc-... --dst DATA`   [data/h5]
#   DATASETS     dataset folders under DATA to use, space separated; empty = all         []
#   INIT         backbone checkpoint: ours (NAME.safetensors + NAME.json) or official .pth
#                (used by partial, full and joint)       [weights/lpsgm-small-demo.safetensors]
#   MODEL        architecture preset for scratch (lpsgm, lpsgm-small, lpsgm-6)          [lpsgm]
#   TASKS        any of: 3class merge_NT1 normal_vs_abnormal osa depression
#                                                         [3class merge_NT1 normal_vs_abnormal]
#   STRATEGIES   any of: partial full joint scratch                                    [partial full]
#   SUBJECT_TABLE  NSRR subject table(s), DATASET=FILE[,FILE2] (osa, depression)       []
#   AHI_CUTS     osa: AHI thresholds in events/h (30; "5 15 30" = 4 AASM classes)      [30]
#   STAGE_WEIGHT joint: weight of the staging loss                                    [0.5]
#   CHANNELS     canonical channels to use, space separated; empty = all               []
#   FOLDS        number of cross-validation folds                                      [5]
#   EPOCHS       training epochs per fold                                              [30]
#   BATCH_SIZE   windows per step                                                      [32]
#   LR           head learning rate (and backbone's for scratch)                       [1e-3]
#   BACKBONE_LR  backbone learning rate for full / joint (--lr-backbone)               [1e-5]
#   SUBJECT_AGG  subject prediction: mean (of window probabilities) or vote            [mean]
#   SELECT       validation criterion of the best epoch: loss, auc or bacc             [loss]
#   SEED         split and training seed                                               [0]
#   WORKERS      DataLoader workers                                                    [4]
#   OUT          results root: one run folder OUT/TASK_STRATEGY per pair               [runs/nar]
#   EXTRA        extra arguments for `python -m nar_cls` (e.g. "--head-hidden 128")    []
#
# Results: OUT/TASK_STRATEGY/metrics.json (pooled + per fold), predictions.csv (one row per
# subject), fold_K/ (metrics.json, predictions.csv, windows.csv, history.csv, model files).
# also linear-probe results (probe_predictions.csv, "linear_probe" in metrics.json), explanations.csv
# and excluded.csv. Frozen-backbone embeddings of partial runs are cached in OUT/features_TASK.npz.
set -euo pipefail

DATA=${DATA:-data/h5}
DATASETS=${DATASETS:-}
INIT=${INIT:-weights/lpsgm-small-demo.safetensors}
MODEL=${MODEL:-lpsgm}
TASKS=${TASKS:-"3class merge_NT1 normal_vs_abnormal"}
STRATEGIES=${STRATEGIES:-"partial full"}
SUBJECT_TABLE=${SUBJECT_TABLE:-}
AHI_CUTS=${AHI_CUTS:-30}
STAGE_WEIGHT=${STAGE_WEIGHT:-0.5}
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

common=(--data "$DATA" --folds "$FOLDS" --epochs "$EPOCHS" --batch-size "$BATCH_SIZE" --lr-head "$LR"
        --lr-backbone "$BACKBONE_LR" --subject-agg "$SUBJECT_AGG" --select "$SELECT" --seed "$SEED"
        --workers "$WORKERS" --stage-weight "$STAGE_WEIGHT")
# shellcheck disable=SC2206
if [[ -n "$DATASETS" ]]; then common+=(--datasets $DATASETS); fi
# shellcheck disable=SC2206
if [[ -n "$CHANNELS" ]]; then common+=(--channels $CHANNELS); fi
if [[ -n "$SUBJECT_TABLE" ]]; then common+=(--subject-table "$SUBJECT_TABLE"); fi

for task in $TASKS; do
  for strategy in $STRATEGIES; do
    run=(--task "$task" --strategy "$strategy" --out "$OUT/${task}_${strategy}")
    # shellcheck disable=SC2206
    if [[ "$task" == osa ]]; then run+=(--ahi-cuts $AHI_CUTS); fi
    case "$strategy" in
      scratch) run+=(--model "$MODEL") ;;
      partial) run+=(--init "$INIT" --feature-cache "$OUT/features_${task}.npz") ;;
      *)       run+=(--init "$INIT") ;;
    esac
    echo "== $task / $strategy -> $OUT/${task}_${strategy}"
    # shellcheck disable=SC2086
    python -m nar_cls "${common[@]}" "${run[@]}" $EXTRA
  done
done
