#!/usr/bin/env bash
# One-go GPU check for issues 13 and 23 (~8 min on one warm GPU; never needed by CI). From the repository root:
#     bash bench/gpu_check.sh 2>&1 | tee gpu_check.txt
# Prints one line per check: NCCL init under torchrun, DDP with TWO processes training on the real
# HDF5 loader (bench/ddp_loader_check.py: NCCL with a GPU per rank, else gloo sharing GPU 0), bf16
# training throughput at batch 32 and 256 (synthetic batches), whole-night inference end to end
# from a SIMULATED 8-h EDF (fp32 and --precision bf16) and from its harmonized HDF5 (model only).
# Timeouts allow for a cold host (first CUDA context, cuDNN autotuning, page cache empty).
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
run 180 torchrun --standalone --nproc_per_node=1 bench/nccl_check.py

step "DDP, two processes, real HDF5 loader (simulated files), bf16"
run 420 torchrun --standalone --nproc_per_node=2 bench/ddp_loader_check.py --steps 30 --workers 4 --cache "$CACHE/loader"

step "bf16 training throughput, synthetic 9-channel windows"
for B in 32 256; do
  run 300 python bench/train_throughput.py --model lpsgm --batch-size "$B" --bf16 --device cuda --steps 30 --warmup 5
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
run 420 python bench/inference_speed.py --device cuda --configs 6:10,6:1,1:10 --no-yasa --no-launches --cache "$CACHE"

step "inference.py whole process on the GPU: fp32, --precision bf16 and tf32 (stage agreement vs fp32)"
EDF=$(ls "$CACHE"/night_8h_seed*/SIM0001.edf | head -1)
for P in fp32 bf16 tf32; do
  /usr/bin/time -f "gpu_inference precision=$P wall_s=%e cpu_s=%U+%S peak_rss_kb=%M" \
    timeout 300 python inference.py "$EDF" --device cuda --precision "$P" --out "$CACHE/gpu_$P" --overwrite \
    --formats csv --no-progress > /dev/null || echo "FAILED: inference.py --precision $P"
done
python - "$CACHE" <<'PY'
import csv, sys
from pathlib import Path
def stages(p):
    f = next(Path(p).glob("*.hypnogram.csv"))
    return [r[2] for r in csv.reader(l for l in open(f) if not l.startswith("#"))][1:]
ref = stages(f"{sys.argv[1]}/gpu_fp32")
for p in ("bf16", "tf32"):
    s = stages(f"{sys.argv[1]}/gpu_{p}")
    print(f"gpu_inference precision={p} stage_agreement_vs_fp32={sum(a == b for a, b in zip(ref, s)) / len(ref):.4f} epochs={len(ref)}")
PY

step "batch of 3 nights: file k+1 read and chained on a CPU thread while the GPU stages file k (prefetch)"
timeout 600 python - "$EDF" "$CACHE" <<'PY' || echo "FAILED: prefetch batch"
import shutil, sys, time
from pathlib import Path
sys.path.insert(0, ".")
import numpy as np
from staging import Stager, stage
src, cache = Path(sys.argv[1]), Path(sys.argv[2]) / "prefetch_in"
cache.mkdir(exist_ok=True)
for k in range(3):
    if not (cache / f"n{k}.edf").exists():
        shutil.copy(src, cache / f"n{k}.edf")
stager = Stager(device="cuda")
res = {}
for ahead in (False, True, False, True):  # twice each: the first pass warms the page cache and cuDNN
    t0 = time.perf_counter()
    results, code = stage([cache], out=cache.parent / f"prefetch_out_{ahead}", stager=stager, overwrite=True,
                          formats=["csv"], echo=lambda s: None, progress_bar=False, prefetch=ahead)
    res[ahead] = (time.perf_counter() - t0, [r.night.probabilities for r in results])
    assert code == 0
same = all(np.array_equal(a, b) for a, b in zip(res[True][1], res[False][1]))
print(f"gpu_batch nights=3 wall_s_plain={res[False][0]:.1f} wall_s_prefetch={res[True][0]:.1f} identical={same}")
PY

step "inference from HDF5 (model only; best/median of 3)"
run 300 python bench/inference_speed.py --device cuda --from-preprocessed "$CACHE/night_8h.h5" --cache "$CACHE" \
  --weights "$CACHE/random_lpsgm_n6_seed0.safetensors"
echo "## done"
