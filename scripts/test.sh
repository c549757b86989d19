#!/usr/bin/env bash
# Installs what the tests need and runs them, twice:
#  1. .venv: numpy 1.26.4, setuptools < 74, TensorFlow: the whole suite,
#     fidelity against TensorFlow included (needs ../shared/i3d);
#  2. .venv-numpy2: numpy 2 and the newest setuptools, no TensorFlow
#     (OpenCV 4.11 as in .venv): the suite again (the TensorFlow tests
#     skip), which checks that
#     chainercv_i3d.chainer_compat makes chainer 7.8.1 work there (as on the
#     GPU machines);
#  3. .venv-cuda: CuPy 14.2 for CUDA 13 with the NVRTC and CUDA runtime
#     (headers) wheels only, numpy 2 (constraints/cuda_compile.txt): only
#     tests/cuda_compile_tests, which compile every CUDA kernel of the GPU
#     path (the project's, chainer's and ChainerMN's) with NVRTC for sm_90
#     as CuPy would, with no GPU, driver or cuBLAS;
#  4. the Sphinx site, built in .venv with warnings as errors
#     (scripts/build_docs.sh).
# Exits non-zero when any test fails or the site has a warning.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh .venv tf,test,docs -c constraints/runtime.txt
.venv/bin/python -m pytest -ra tests
# OpenCV pinned as in .venv: the TV-L1 comparisons need the reference 4.11.
bash scripts/install.sh .venv-numpy2 test "numpy>=2" "setuptools>=82" \
    "opencv-contrib-python-headless==4.11.0.86"
.venv-numpy2/bin/python -c "import numpy, setuptools; print('numpy', numpy.__version__, 'setuptools', setuptools.__version__)"
.venv-numpy2/bin/python -m pytest -ra tests
bash scripts/install.sh .venv-cuda "" -c constraints/cuda_compile.txt \
    cupy-cuda13x nvidia-cuda-nvrtc nvidia-cuda-runtime pytest mpi4py mpich
.venv-cuda/bin/python -m pytest -ra tests/cuda_compile_tests
bash scripts/build_docs.sh .venv/bin/python
