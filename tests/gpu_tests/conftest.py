"""The GPU tier: every test here is marked ``gpu`` and needs CuPy, a CUDA
driver and a GPU that chainer can use; without them each test skips and
says which is missing (the ``cupy`` fixture of ``tests/conftest.py``).
``pytest -m gpu tests/gpu_tests`` runs the tier (``scripts/gpu_check.sh``
does, on a GPU machine).
"""

import pytest

import chainercv_i3d  # NOQA: patches the environment before chainer loads

import chainer


@pytest.fixture(scope='session')
def gpu(cupy):
    """chainer's device for GPU 0."""
    return chainer.get_device('@cupy:0')
