#!/usr/bin/env bash
# Preprocess every public PSG dataset whose raw folder is present into the harmonized HDF5 format.
#
#   RAW_SHHS=/data/nsrr/shhs RAW_MASS=/data/mass OUT=/data/h5 WORKERS=16 bash preprocess.sh
#   bash preprocess.sh --shard 3/10          # machine 3 of 10: every 10th recording of each dataset
#   bash preprocess.sh --shard auto          # a task of an array job (SLURM: cluster/preprocess.sbatch)
#   python -m preprocess --manifest "$OUT"   # once all shards have finished (shared OUT): build manifests
#                                            # (an unsharded run rebuilds its dataset's manifest itself)
#
# A dataset runs when its RAW_<NAME> folder is set and exists (or RAW_ROOT/<name> exists); the rest
# are listed as "not found". Re-running resumes: recordings whose .h5 is complete are skipped, and a
# killed run leaves no half-written file under a final name. Shards may run at the same time on
# different hosts sharing OUT. Each dataset's log is in $OUT/<name>/preprocess.log (a shard's in
# $OUT/<name>/preprocess.shard-I-of-N.log); the summary at the end has one line per dataset (done/skipped/failed).
# Exit status 1 when any dataset had a failed recording or could not run.
#
# Variables (all optional; environment or edit here):
#   OUT       output root; files go to $OUT/<dataset>/<recording>.h5         (default ./data/h5)
#   WORKERS   parallel processes per dataset                                  (default: all cores)
#   SHARD     i/n or auto: process only shard i of n (1-based; auto = from the array job's
#             SLURM_ARRAY_TASK_* / SGE_TASK_* variables); same as --shard   (default: all)
#   DTYPE     float16 | float32 on-disk signal type                           (default float16)
#   CHAIN     antialiased | published signal chain, recorded in every file     (default antialiased;
#             published = the chain the official LPSGM weights were trained on, to fine-tune them)
#   RAW_ROOT  optional: a folder holding one subfolder per dataset, named as below (abc, mass, mnc ...)
#   RAW_<NAME> the raw folder of one dataset, laid out as its public release (`python -m preprocess
#             --list` shows the expected layout):
RAW_ABC="${RAW_ABC:-}"                      # NSRR abc/            (polysomnography/edfs, annotations-events-nsrr)
RAW_APPLES="${RAW_APPLES:-}"                # NSRR apples/
RAW_CCSHS="${RAW_CCSHS:-}"                  # NSRR ccshs/
RAW_CFS="${RAW_CFS:-}"                      # NSRR cfs/
RAW_CHAT="${RAW_CHAT:-}"                    # NSRR chat/
RAW_HOMEPAP="${RAW_HOMEPAP:-}"              # NSRR homepap/
RAW_MESA="${RAW_MESA:-}"                    # NSRR mesa/
RAW_MROS="${RAW_MROS:-}"                    # NSRR mros/
RAW_NCHSDB="${RAW_NCHSDB:-}"                # NSRR nchsdb/
RAW_PATS="${RAW_PATS:-}"                    # NSRR pats/
RAW_SHHS="${RAW_SHHS:-}"                    # NSRR shhs/
RAW_WSC="${RAW_WSC:-}"                      # NSRR wsc/
RAW_STAGES="${RAW_STAGES:-}"                # NSRR stages/         (STAGES PSGs/<SITE>/<ID>.edf + .csv)
RAW_DCSM="${RAW_DCSM:-}"                    # DCSM (ERDA)
RAW_DODH="${RAW_DODH:-}"                    # Dreem DOD-H (.h5)
RAW_DODO="${RAW_DODO:-}"                    # Dreem DOD-O (.h5)
RAW_HMC="${RAW_HMC:-}"                      # PhysioNet hmc-sleep-staging
RAW_ISRUC="${RAW_ISRUC:-}"                  # ISRUC-Sleep
RAW_SVUH="${RAW_SVUH:-}"                    # PhysioNet ucddb (St Vincent's)
RAW_PHYSIONET2018="${RAW_PHYSIONET2018:-}"  # PhysioNet challenge-2018 training/
RAW_SLEEPEDF="${RAW_SLEEPEDF:-}"            # PhysioNet sleep-edfx
RAW_BOAS="${RAW_BOAS:-}"                    # OpenNeuro ds005555 (BIDS)
RAW_GENERIC="${RAW_GENERIC:-}"              # your own folder of scored EDFs (see `python -m preprocess --list`)
RAW_MASS="${RAW_MASS:-}"                    # MASS root holding SS1/ and SS3/ (used by mass_ss1 and mass_ss3)
RAW_MASS_SS1="${RAW_MASS_SS1:-$RAW_MASS}"   #   or one folder per subset
RAW_MASS_SS3="${RAW_MASS_SS3:-$RAW_MASS}"
RAW_MNC="${RAW_MNC:-}"                      # NSRR mnc/ root: cnc/ dhc/ fhc/ ihc/ khc/ ssc/ + cohorts_deid.xlsx
RAW_MNC_CNC="${RAW_MNC_CNC:-$RAW_MNC}"      #   or one folder per cohort
RAW_MNC_DHC="${RAW_MNC_DHC:-$RAW_MNC}"
RAW_MNC_FHC="${RAW_MNC_FHC:-$RAW_MNC}"
RAW_MNC_IHC="${RAW_MNC_IHC:-$RAW_MNC}"
RAW_MNC_KHC="${RAW_MNC_KHC:-$RAW_MNC}"
RAW_MNC_SSC="${RAW_MNC_SSC:-$RAW_MNC}"
OUT="${OUT:-./data/h5}"
WORKERS="${WORKERS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}"
SHARD="${SHARD:-}"
DTYPE="${DTYPE:-float16}"
CHAIN="${CHAIN:-antialiased}"
RAW_ROOT="${RAW_ROOT:-}"
PYTHON="${PYTHON:-python3}"

set -euo pipefail
cd "$(dirname "$0")"

DATASETS=(abc apples ccshs cfs chat homepap mesa mros nchsdb pats shhs wsc stages
          dcsm dodh dodo hmc isruc svuh physionet2018 sleepedf boas generic mass_ss1 mass_ss3
          mnc-cnc mnc-dhc mnc-fhc mnc-ihc mnc-khc mnc-ssc)

while [[ $# -gt 0 ]]; do
  case "$1" in
    --shard) SHARD="$2"; shift 2 ;;
    --shard=*) SHARD="${1#*=}"; shift ;;
    -h|--help) sed -n '2,/^RAW_ABC=/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "unknown argument: $1 (use --shard i/n|auto; everything else is set by variables)" >&2; exit 2 ;;
  esac
done

shard_args=()
[[ -n "$SHARD" ]] && shard_args=(--shard "$SHARD")

summary=()
status=0
for name in "${DATASETS[@]}"; do
  var="RAW_$(echo "$name" | tr '[:lower:]-' '[:upper:]_')"
  src="${!var:-}"
  if [[ -z "$src" && -n "$RAW_ROOT" ]]; then
    for cand in "$RAW_ROOT/$name" "$RAW_ROOT/${name%%[-_]*}"; do   # RAW_ROOT/mnc serves every mnc-*
      if [[ -d "$cand" ]]; then src="$cand"; break; fi
    done
  fi
  if [[ -z "$src" || ! -d "$src" ]]; then
    summary+=("$name: not found (${var}=${src:-unset})")
    continue
  fi
  echo "== $name  src=$src  out=$OUT  workers=$WORKERS ${SHARD:+shard=$SHARD}"
  log="$(mktemp)"
  set +e
  "$PYTHON" -m preprocess "$name" --src "$src" --dst "$OUT" --workers "$WORKERS" --dtype "$DTYPE" \
    --chain "$CHAIN" --no-progress ${shard_args[@]+"${shard_args[@]}"} 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  line="$(grep -E "^$name: [0-9]+ done" "$log" | tail -n 1 || true)"
  rm -f "$log"
  if [[ $rc -ne 0 ]]; then status=1; fi
  summary+=("${line:-$name: did not run (exit $rc)}")
done

echo
echo "== summary (${SHARD:+shard $SHARD, }output $OUT)"
for line in "${summary[@]}"; do echo "  $line"; done
exit $status
