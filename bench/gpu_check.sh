#!/usr/bin/env bash
# The GPU checks in one go, for a CUDA machine that has torch but maybe not this project's other
# dependencies: the CUDA tests (tests/test_gpu.py), the full-step benchmark, the profile of an
# eager step.
#
#   bash bench/gpu_check.sh [BENCH_SECONDS]
#
# Wheels in .whl/ (if any) are installed to /tmp/site first, and the package is put on the path
# through links, so nothing is built there. Logs and gpu_bench.json go to $OUT (or ./gpu-out).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-$PWD/gpu-out}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
if ! python3 -c "import pixelpilot.vlm" 2>/dev/null; then
    mkdir -p /tmp/pp/pixelpilot
    for d in agent vlm tools scenarios; do ln -sfn "$PWD/$d" "/tmp/pp/pixelpilot/$d"; done
    export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}/tmp/pp"
fi
{
    nvidia-smi -L
    python3 -c "import sys, torch, transformers, llguidance; print(sys.version.split()[0], \
'torch', torch.__version__, 'transformers', transformers.__version__, \
'llguidance', llguidance.__version__)"
} 2>&1 | tee "$out/versions.txt"
timeout 240 python3 -m pytest -q -p no:cacheprovider --noconftest tests/test_gpu.py 2>&1 \
    | tee "$out/gpu_tests.log"
python3 bench/gpu_bench.py --max-seconds "${1:-270}" 2>&1 | tee "$out/gpu_bench.log"
timeout 120 python3 bench/gpu_profile.py 2>&1 | tee "$out/gpu_profile.log"
