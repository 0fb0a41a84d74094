#!/usr/bin/env bash
# Issue 13's GPU check, as one prepared script for a lent GPU machine (a few minutes on an H200).
#
#   here:   maturin build --release --out dist            (the wheel the device installs)
#   device: bash benches/gpu_generate.sh [OUT]            (carry dist/; OUT defaults to $OUT or .)
#
# It installs the carried wheel without dependencies into the device's Python (torch and
# transformers must be there, or reachable from the package index), then runs the variable-length
# workload on a ~1B-parameter Llama shape with random weights (16 layers x 2048, V = 32,000) at
# batch 32 and 128, and the fixed-length workload at batch 32 for comparison with the earlier
# figures. Tables go to OUT/gpu_generate.md; paste them into benches/RESULTS.md with the date.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-.}}"
PY="${PYTHON:-python3}"
"$PY" -m pip install --quiet --no-deps --force-reinstall dist/tradeoff-*.whl
"$PY" -c "import torch, transformers, tradeoff; print(torch.__version__, transformers.__version__, tradeoff.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
lscpu | grep -E "Model name|^CPU\(s\)" || true
cd benches
{
    for batch in 32 128; do
        "$PY" generate_vs_hf.py --device cuda --dtype bfloat16 --hidden 2048 --layers 16 \
            --batch-size "$batch" --new-tokens 256 --prompt-tokens 64 --shards 2 --repeats 3
        echo
    done
    "$PY" generate_vs_hf.py --workload fixed --device cuda --dtype bfloat16 --batch-size 32 \
        --new-tokens 128
} 2>&1 | grep -v -i warning | tee "$OUT/gpu_generate.md"
