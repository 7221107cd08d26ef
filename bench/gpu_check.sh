#!/usr/bin/env bash
# One-go GPU check for issue 13 (~5 min on one GPU; never needed by CI). Run from the repository root:
#     bash bench/gpu_check.sh 2>&1 | tee gpu_check.txt
# Prints one line per check: NCCL init under torchrun, bf16 training throughput at batch 32 and 256
# (synthetic batches, with GPU utilisation, launches and syncs per step), whole-night inference end
# to end from a SIMULATED 8-h EDF and from its harmonized HDF5 (model only).
set -u
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
CACHE=${CACHE:-/tmp/lpsgm_bench}
mkdir -p "$CACHE"
step() { echo "## $*"; }
run() { timeout "$1" "${@:2}" || echo "FAILED (rc=$?): ${*:2}"; }

python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('torch', torch.__version__, torch.cuda.get_device_name())" || exit 1
nvidia-smi --query-gpu=name,memory.total,utilization.gpu --format=csv,noheader || true

step "NCCL init (torchrun, 1 GPU)"
run 60 torchrun --standalone --nproc_per_node=1 bench/nccl_check.py

step "bf16 training throughput, synthetic 9-channel windows"
for B in 32 256; do
  run 120 python bench/train_throughput.py --model lpsgm --batch-size "$B" --bf16 --device cuda --steps 30 --warmup 5
done

step "simulated 8-h night: EDF + harmonized HDF5"
python - "$CACHE" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, ".")
sys.path.insert(0, "bench")
from inference_speed import simulated_night
from preprocess.core.edf import EdfReader
from preprocess.core.hdf5 import write_recording
from preprocess.core.pipeline import load_montage
from staging.montage import auto_channel_map
cache = Path(sys.argv[1])
edf, _ = simulated_night(cache, 8.0)
h5 = cache / "night_8h.h5"
if not h5.exists():
    m = load_montage(EdfReader(str(edf)), auto_channel_map(), name=edf.name)
    n = m.signals.shape[1] // 3000
    x = m.signals[:, : n * 3000].reshape(len(m.channels), n, 3000).transpose(1, 0, 2)
    write_recording(h5, x, m.channels, None, dataset="SIM", subject="s0", recording="night")
print("edf", edf, "h5", h5)
PY

step "inference end to end (EDF -> outputs), N=6 and N=1"
run 240 python bench/inference_speed.py --device cuda --configs 6:10,6:1,1:10 --no-yasa --no-launches --cache "$CACHE"

step "inference from HDF5 (model only; best/median of 3)"
run 120 python bench/inference_speed.py --device cuda --from-preprocessed "$CACHE/night_8h.h5" --cache "$CACHE" \
  --weights "$CACHE/random_lpsgm_n6_seed0.safetensors"
echo "## done"
