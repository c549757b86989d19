#!/usr/bin/env bash
# GPU checks of the tvl1_xp flow backend in one command (under 5 minutes,
# no internet): its gpu tests (CUDA kernels against the array code, GPU flow
# against numpy), then error to OpenCV and speed on the GPU.
#
#   scripts/flow_gpu_check.sh [REFERENCE_DIR] [REPORT_DIR]
#
# REFERENCE_DIR (default benchmarks/flow_reference): gray frames and OpenCV
# flows made beforehand on a CPU machine with opencv-contrib, e.g.
#   python benchmarks/benchmark_flow.py --pairs 4 --no_full --backends tvl1 \
#       --gpu none --save_reference benchmarks/flow_reference
# REPORT_DIR (default $OUT when set, else flow_gpu_report): env.txt,
# pytest.txt, benchmark.txt and benchmark.json (EPE to OpenCV, iterations,
# pairs/s on the reference pairs and on each case played as a 250-frame
# clip).
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
REFERENCE_DIR=${1:-benchmarks/flow_reference}
REPORT_DIR=${2:-${OUT:-flow_gpu_report}}
mkdir -p "$REPORT_DIR"

{
    nvidia-smi
    "$PYTHON" -c 'import cupy, numpy, cv2; print("cupy", cupy.__version__, "numpy", numpy.__version__, "cv2", cv2.__version__); print(cupy.cuda.runtime.getDeviceProperties(0)["name"])'
} > "$REPORT_DIR/env.txt" 2>&1

timeout 150 "$PYTHON" -m pytest -q -rs -m gpu tests/flow_tests/test_tvl1_xp.py \
    > "$REPORT_DIR/pytest.txt" 2>&1
echo "pytest exit status $?" >> "$REPORT_DIR/pytest.txt"

timeout 120 "$PYTHON" benchmarks/benchmark_flow.py \
    --load_reference "$REFERENCE_DIR" --backends '' --gpu 0 \
    --throughput_frames 250 --json "$REPORT_DIR/benchmark.json" \
    > "$REPORT_DIR/benchmark.txt" 2>&1
echo "benchmark exit status $?" >> "$REPORT_DIR/benchmark.txt"

tail -n 3 "$REPORT_DIR/pytest.txt"
cat "$REPORT_DIR/benchmark.txt"
