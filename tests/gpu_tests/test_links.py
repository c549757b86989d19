"""I3D on a GPU: the reference and fast paths against each other and the
CPU, the predictor with ``device='gpu'``, no host round trips in the fast
path, and a memory pool that stops growing.

Every comparison of logits goes through
:func:`chainercv_i3d.testing.assertions.assert_close_finite` against the
reference path's logits computed on the CPU with numpy: it fails on NaN,
infinities, empty arrays, different shapes and all-zero references.
"""

import chainer
import numpy
import pytest

from chainercv_i3d.architecture import min_input_size
from chainercv_i3d.links import I3D
from chainercv_i3d.links.fast import engine as fast_engine
from chainercv_i3d.links import I3DPredictor
from chainercv_i3d.testing.assertions import assert_close_finite

pytestmark = [pytest.mark.gpu]

N_CLASS = 400


def logits_of(model, x):
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        return model(x).array


def random_model(seed, fast):
    numpy.random.seed(seed)
    return I3D(n_class=N_CLASS, modality='rgb', fast_inference=fast)


@pytest.fixture(scope='module')
def clip():
    """Two random clips of the smallest size the head takes (9 x 193)."""
    t, h, w = min_input_size()
    return numpy.random.RandomState(0).uniform(
        -1, 1, (2, 3, t, h, w)).astype(numpy.float32)


@pytest.fixture(scope='module')
def cpu_logits(clip):
    """The reference path's logits on the CPU (the exactness tests' base)."""
    logits = logits_of(random_model(0, fast=False), clip)
    assert isinstance(logits, numpy.ndarray)
    assert logits.shape == (len(clip), N_CLASS)
    return logits


def assert_logits_close(got, expected, name='logits'):
    """Within 1e-4 of the largest |expected| logit, all finite, same
    shape, the reference not all zeros."""
    assert_close_finite(got, expected, rtol=0, atol_scale=1e-4, name=name)


@pytest.mark.parametrize('fast', [False, True], ids=['reference', 'fast'])
def test_gpu_logits_equal_the_cpu_reference(cupy, gpu, clip, cpu_logits,
                                            fast):
    model = random_model(0, fast)
    model.to_device(gpu)
    got = logits_of(model, cupy.asarray(clip))
    assert isinstance(got, cupy.ndarray)
    assert_logits_close(cupy.asnumpy(got), cpu_logits)


def test_fast_path_equals_the_reference_on_the_gpu(cupy, gpu, clip,
                                                   cpu_logits):
    """Each against the CPU's numpy logits too: two GPU paths wrong the
    same way would agree with each other."""
    models = [random_model(0, fast) for fast in (False, True)]
    for model in models:
        model.to_device(gpu)
    x = cupy.asarray(clip)
    reference, fast = (cupy.asnumpy(logits_of(m, x)) for m in models)
    assert_logits_close(reference, cpu_logits, 'GPU reference path')
    assert_logits_close(fast, cpu_logits, 'GPU fast path')
    assert_logits_close(fast, reference, 'GPU fast against GPU reference')


def test_fast_path_stays_on_the_device(cupy, gpu, clip, cpu_logits,
                                      monkeypatch):
    """After the first call (weights folded once), a forward neither copies
    numpy arrays up nor results down, nor synchronizes, apart from its one
    check that the weights did not change (skipped here, as they did not):
    no per-layer round trips."""
    import cupyx
    model = random_model(0, fast=True)
    model.to_device(gpu)
    x = cupy.asarray(clip)
    logits_of(model, x)  # folds the weights
    cupy.cuda.get_current_stream().synchronize()
    transfers = []

    def counting(name):
        function = getattr(cupy, name)

        def wrapped(a, *args, **kwargs):
            if name == 'asnumpy' or isinstance(a, numpy.ndarray):
                transfers.append(name)
            return function(a, *args, **kwargs)
        monkeypatch.setattr(cupy, name, wrapped)
    for name in ('asnumpy', 'asarray', 'array'):
        counting(name)
    # The counters count: an empty list below is not a counter that missed.
    cupy.asnumpy(cupy.asarray(numpy.zeros(1, numpy.float32)))
    assert transfers == ['asarray', 'asnumpy']
    del transfers[:]
    monkeypatch.setattr(fast_engine, '_all_equal', lambda saved, now: True)
    with cupyx.allow_synchronize(False):  # .get(), bool(), int() would raise
        logits = logits_of(model, x)
    monkeypatch.undo()
    assert isinstance(logits, cupy.ndarray)
    assert transfers == []
    assert_logits_close(cupy.asnumpy(logits), cpu_logits)


def test_memory_pool_stops_growing_over_repeated_forwards(cupy, gpu, clip):
    """A long evaluation must not grow the pool clip after clip."""
    model = random_model(0, fast=True)
    model.to_device(gpu)
    pool = cupy.get_default_memory_pool()
    x = cupy.asarray(clip)
    held = []
    for _ in range(6):
        logits_of(model, x)
        cupy.cuda.get_current_stream().synchronize()
        held.append(pool.total_bytes())
    # The first forwards size the pool; after them it holds steady. (A
    # pool that holds nothing was not used: CuPy allocated elsewhere.)
    assert held[0] > 0, held
    assert held[-1] <= held[2], held


def test_predictor_on_the_gpu_equals_the_cpu(cupy, clip, tmp_path):
    numpy.random.seed(0)
    path = str(tmp_path / 'rgb.npz')
    chainer.serializers.save_npz(path, I3D(n_class=N_CLASS, modality='rgb'))
    inputs = {'rgb': clip}
    on_gpu = I3DPredictor(rgb_model=path, device='gpu')
    assert on_gpu.device.xp is cupy
    on_cpu = I3DPredictor(rgb_model=path, device='cpu')
    gpu_logits = on_gpu.logits(inputs)['rgb']
    assert isinstance(gpu_logits, numpy.ndarray)
    cpu_logits = on_cpu.logits(inputs)['rgb']
    assert isinstance(cpu_logits, numpy.ndarray)
    assert on_cpu.device.xp is numpy
    assert_logits_close(gpu_logits, cpu_logits)
