#!/usr/bin/env bash
# Usage: scripts/gpu_wheels.sh OUT_DIR
# Prepares, on a machine with internet, what scripts/gpu_check.sh needs on a
# GPU machine without it (CuPy, numpy 2 and PyTorch already there):
#   OUT_DIR/*.whl   chainer 7.8.1 (built here: it ships only an sdist),
#                   mpi4py and MPICH (mpiexec) for the MPI evaluation;
#   OUT_DIR/i3d/    when ../shared/i3d is beside the repository (or
#                   CHAINERCV_I3D_SHARED names it) and .venv has TensorFlow:
#                   the cricket clip, the TensorFlow reference logits and
#                   rgb_tfhub_kinetics400.npz converted here (about 50 MB),
#                   for the fidelity check.
# Wheels are for CPython $PYTHON_VERSION (default 3.12) on x86-64 Linux.
# Set CUPY_WHEEL (e.g. "cupy-cuda12x==14.2.0") to bring CuPy too; its CUDA
# library wheels are not fetched (pip download them by name if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/gpu_wheels.sh OUT_DIR}
python_version=${PYTHON_VERSION:-3.12}
pip="${PIP:-python3 -m pip}"
mkdir -p "$out"
binary=(--only-binary=:all: --python-version "$python_version"
        --implementation cp --platform manylinux_2_28_x86_64
        --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64
        --platform manylinux_2_5_x86_64)
# chainer 7.8.1 is pure Python: one wheel for every Python; its build needs
# setuptools < 82 (constraints/build.txt).
$pip wheel -q --no-deps --build-constraint constraints/build.txt \
    -w "$out" chainer==7.8.1
$pip download -q --no-deps "${binary[@]}" -d "$out" \
    mpi4py==4.1.2 mpich==5.0.2 ${CUPY_WHEEL:+"$CUPY_WHEEL"}
shared=${CHAINERCV_I3D_SHARED:-$(dirname "$PWD")/shared/i3d}
if [ -d "$shared/reference" ] && [ -x .venv/bin/python ] \
        && .venv/bin/python -c 'import tensorflow' 2>/dev/null; then
    mkdir -p "$out/i3d/samples" "$out/i3d/reference"
    cp "$shared"/samples/v_CricketShot_g04_c01_rgb.gif "$out/i3d/samples/"
    cp "$shared"/reference/cricket_rgb.* "$out/i3d/reference/"
    .venv/bin/python examples/i3d/tfckpt2npz.py \
        "$shared/checkpoints/rgb_tfhub_kinetics400" \
        "$out/i3d/rgb_tfhub_kinetics400.npz" >/dev/null
else
    echo "gpu_wheels.sh: no $shared/reference or no TensorFlow in .venv:" \
         "the fidelity check will skip on the GPU machine" >&2
fi
ls -l "$out" "$out"/i3d 2>/dev/null || true
du -sh "$out"
