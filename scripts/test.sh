#!/usr/bin/env bash
# Installs what the tests need and runs them, twice:
#  1. .venv: numpy 1.26.4, setuptools < 74, TensorFlow: the whole suite,
#     fidelity against TensorFlow included (needs ../shared/i3d);
#  2. .venv-numpy2: numpy 2 and the newest setuptools, no TensorFlow
#     (OpenCV 4.11 as in .venv): the suite again (the TensorFlow tests
#     skip), which checks that
#     chainercv_i3d.chainer_compat makes chainer 7.8.1 work there (as on the
#     GPU machines);
#  3. the Sphinx site, built in .venv with warnings as errors
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
bash scripts/build_docs.sh .venv/bin/python
