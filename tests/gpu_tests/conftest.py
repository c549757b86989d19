"""The GPU tier: one fixture that gives CuPy with a GPU, or skips.

Every test here is marked ``gpu`` and needs CuPy, a CUDA driver and a GPU
that chainer can use; without them each test skips and says which is
missing. ``pytest -m gpu tests/gpu_tests`` runs the tier
(``scripts/gpu_check.sh`` does, on a GPU machine).
"""

import pytest

import chainercv_i3d  # NOQA: patches the environment before chainer loads

import chainer

from chainercv_i3d.chainer_compat import cuda_unavailable_reason


def gpu_missing_reason():
    """Why this process cannot run the GPU tier; None when it can."""
    try:
        import cupy
    except ImportError as e:
        return 'CuPy is not importable ({}): pip install ' \
            '"chainercv_i3d[gpu]"'.format(e)
    reason = cuda_unavailable_reason()
    if reason is not None:
        return reason
    try:
        n_gpus = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as e:
        return 'no GPU: CuPy cannot reach a CUDA driver ({})'.format(e)
    if n_gpus == 0:
        return 'no GPU: CuPy sees none'
    return None


@pytest.fixture(scope='session')
def cupy():
    """CuPy, with GPU 0 current, or a skip naming what is missing."""
    reason = gpu_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    import cupy
    cupy.cuda.Device(0).use()
    return cupy


@pytest.fixture(scope='session')
def gpu(cupy):
    """chainer's device for GPU 0."""
    return chainer.get_device('@cupy:0')
