#!/usr/bin/env bash
# bench.gpu in one shot on a lent GPU machine (PyTorch and a CPU onnxruntime, no Triton, no network).
# Run from the repository root through the device tool, carrying the six graphs (git ignores them;
# ~16 MB in all, `nox -s models` builds them):
#   carry:   triton/model_repository/<model>/1/model.onnx for upscale, upscale_fidelity, enhance,
#            style_comic, style_aged, background_remove
#   command: bash bench/gpu_device.sh            (timeout_s 540; extra arguments go to bench.gpu)
# It needs numpy, onnx, onnxruntime, torch with CUDA, and onnx2torch with a torchvision that matches
# torch; nothing is installed or vendored: what is missing is printed, and bench.gpu --device gpu
# stops with the reason rather than time the CPU. Figures: $OUT/gpu.txt and $OUT/gpu.json.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-out}"
mkdir -p "$out"
export PYTHONPATH="functions:.${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi"
python - <<'EOF'
import importlib

for name in ("numpy", "onnx", "onnxruntime", "torch", "torchvision", "onnx2torch"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}")
    except Exception as e:  # a torchvision built for another torch fails here, not at find_spec
        print(f"{name}: NOT USABLE ({type(e).__name__}: {e})")
EOF

missing=0
for model in upscale upscale_fidelity enhance style_comic style_aged background_remove; do
  f="triton/model_repository/$model/1/model.onnx"
  if [ -f "$f" ]; then du -h "$f"; else echo "$f is missing: carry it"; missing=1; fi
done
[ "$missing" = 0 ] || exit 2

timeout "${GPU_BENCH_TIMEOUT_S:-500}" python -m bench.gpu --device gpu --max-seconds "${MAX_SECONDS:-45}" \
  --json "$out/gpu.json" "$@" 2>&1 | tee "$out/gpu.txt"
exit "${PIPESTATUS[0]}"
