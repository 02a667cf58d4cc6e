#!/bin/bash
# The standing GPU checks in one call (docs/benchmarks.md records the figures):
#  1. benchmarks.gpu_path: the trainable's GPU step (bf16, channels-last, fused AdamW), eager and compiled;
#  2. a short `ray-diffnas search --gpus-per-trial` run (graph searcher, mnist 16 px, ASHA);
#  3. the mnist 16 px table build (`build-table --gpus-per-trial 0.1`), stopped with Ctrl-C (SIGINT) at its
#     time limit so that it writes the partial table: what it costs per architecture on one card.
# Run from the repository root: bash benchmarks/gpu_checks.sh
# Env: PY (python), SITE_TAR (a .tar.xz of packages the machine's Python lacks, unpacked onto PYTHONPATH),
# T_* (time limits, seconds), N_SEARCH, G_SEARCH / G_BUILD (GPUs per trial), OUT (where results are copied).
set -u
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
t0=$(date +%s)
stamp() { echo "=== $1 at +$(( $(date +%s) - t0 )) s ($(date -u +%H:%M:%S))"; }
if [ -n "${SITE_TAR:-}" ]; then
  mkdir -p /tmp/site && tar -xJf "$SITE_TAR" -C /tmp/site && export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
stamp setup
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
nproc; free -g | head -2; df -h /dev/shm /tmp | tail -2
$PY -c "import torch, ray, torch_geometric, sys; print(sys.version.split()[0], 'torch', torch.__version__, 'ray', ray.__version__, 'pyg', torch_geometric.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"

stamp gpu_path
timeout -k 10 "${T_PATH:-90}" $PY -m benchmarks.gpu_path --output "$OUT/gpu_path.json" 2>&1 | tail -25
stamp gpu_path_compile
timeout -k 10 "${T_COMPILE:-120}" $PY -m benchmarks.gpu_path --compile --output "$OUT/gpu_path_compile.json" 2>&1 | tail -25

stamp search
timeout -s INT -k 30 "${T_SEARCH:-150}" $PY -m ray_diffnas search --dataset mnist --searcher graph \
  --num-samples "${N_SEARCH:-8}" --gpus-per-trial "${G_SEARCH:-0.25}" --cpus-per-trial 2 --seed 0 --output /tmp/gpu_search 2>&1 | tail -45
for f in results.parquet summary.json report.html; do cp /tmp/gpu_search/$f "$OUT/search_$f" 2>/dev/null; done

stamp build_table
timeout -s INT -k 60 "${T_BUILD:-200}" $PY -m ray_diffnas build-table --dataset mnist --space unet-bench \
  --gpus-per-trial "${G_BUILD:-0.1}" --cpus-per-trial 1 --output /tmp/table-mnist16 2>&1 | tail -30
cp /tmp/table-mnist16/table.parquet "$OUT/table-mnist16-partial.parquet" 2>/dev/null
$PY - <<'PY'
import pyarrow.parquet as pq
t = pq.read_table("/tmp/table-mnist16/table.parquet")
meta = {k.decode(): v.decode()[:300] for k, v in (t.schema.metadata or {}).items()}
print({k: meta[k] for k in meta if k != "pandas"})
df = t.to_pandas()
done = df[df["status"] == "completed"] if "status" in df else df
print("rows", len(df), "completed", len(done))
if len(done):
    print("train_seconds: mean %.1f median %.1f sum %.0f" % (done.train_seconds.mean(), done.train_seconds.median(), done.train_seconds.sum()))
    print(done.sort_values("rfid_final")[["arch_key", "rfid_final", "latency_ms", "params_m", "train_seconds"]].head(8).to_string())
PY
stamp end
