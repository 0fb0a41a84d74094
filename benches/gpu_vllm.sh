#!/usr/bin/env bash
# Issue 14's GPU check (the vllm backend), as one prepared script for a lent GPU machine
# (about 10 minutes on an H200 once the packages are installed). NOT RUN YET.
#
#   here:     maturin build --release --out dist        (the wheel the device installs)
#             pip download "vllm==0.11.0" -d wheelhouse --python-version 3.12 \
#                 --platform manylinux_2_28_x86_64 --only-binary=:all:   (on a machine with
#             network, for the device's Python; the device has none)
#   device:   WHEELHOUSE=/path/to/wheelhouse bash benches/gpu_vllm.sh [OUT]
#
# It makes its own venv (vLLM pins its own torch; the device's Python is left alone), installs
# the carried wheel with the [vllm] extra from $WHEELHOUSE (pip --no-index), falling back to the
# package index, builds a ~1B-parameter Llama shape with random weights, then runs
# benches/vllm_vs_hf.py: exactness (both backends, the paper's seven families at two
# temperatures, against teacher-forced re-scoring) and tokens/s at batch 128 (vLLM native top-p
# 0.9, the vllm backend, the HF backend), each engine in its own process. The table goes to
# OUT/gpu_vllm.md; paste it into benches/RESULTS.md with the date.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-.}}"
WORK="${WORK:-/tmp/tradeoff-vllm-check}"
VENV="${VENV:-/tmp/tradeoff-vllm-venv}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT" "$WORK"
WHEEL="$(ls dist/tradeoff-*.whl | head -n 1)"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
if [ -n "${WHEELHOUSE:-}" ] && [ -d "$WHEELHOUSE" ]; then
    "$VENV/bin/pip" install --quiet --no-index --find-links "$WHEELHOUSE" "${WHEEL}[vllm]" \
        || "$VENV/bin/pip" install --quiet "${WHEEL}[vllm]"
else
    "$VENV/bin/pip" install --quiet "${WHEEL}[vllm]"
fi
P="$VENV/bin/python"
"$P" -c "import torch, transformers, vllm, tradeoff; print('torch', torch.__version__, 'transformers', transformers.__version__, 'vllm', vllm.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
export HF_HUB_OFFLINE=1 PATH="$VENV/bin:$PATH"
# Run from benches/ so that `import tradeoff` is the installed wheel, not the source tree.
cd benches
"$P" vllm_vs_hf.py build "$WORK"
"$P" vllm_vs_hf.py exact "$WORK" --prompts 16 --samples 2 --new-tokens 64
for engine in native tradeoff hf; do
    "$P" vllm_vs_hf.py speed "$WORK" --engine "$engine" --batch-size 128 --new-tokens 128
done
"$P" vllm_vs_hf.py table "$WORK" 2>&1 | tee "$OUT/gpu_vllm.md"
cp "$WORK"/*.json "$OUT"/ 2>/dev/null || true
