"""The fused CPU batch norm + ReLU (cpu_bn) against Chainer's.

Values, both gradients and the running statistics must be those of
``F.relu(L.BatchNormalization(use_gamma=False)(x))`` in training, to float32
(or float64) rounding, for batches of 1 and more, rows shorter and longer
than the kernels' blocks of partial sums, and channels of two values; the
gradients the derivative of the forward (float64); the backward's ReLU mask
the forward's exactly; the results independent of the threads and of how
channels are grouped; a :class:`Unit3D` must run it in training on a CPU,
and Chainer's link when its batch norm is replaced or frozen.
"""

import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest
import threadpoolctl

from chainercv_i3d.functions.cpu import batch_norm_relu as cpu_bn
from chainercv_i3d.functions.cpu.batch_norm_relu import batch_norm_relu
from chainercv_i3d.functions.cpu.batch_norm_relu import CPUBatchNormReLU
from chainercv_i3d.links.unit3d import Unit3D
from chainercv_i3d.testing.gradients import check_backward

SHAPES = [(2, 5, 3, 4, 6), (1, 7, 2, 3, 3), (3, 2, 1, 1, 2), (2, 4, 9),
          # A channel of two values; one row, and three, of 2 * LANES + 3.
          (1, 3, 2), (1, 2, 2 * cpu_bn.LANES + 3),
          (3, 3, 1, 2 * cpu_bn.LANES + 3),
          # Rows of exactly one block; odd sizes in a batch of 3.
          (3, 2, cpu_bn.LANES), (3, 4, 3, 5, 7)]
# Relative error allowed against Chainer: a few roundings of the dtype.
TOLERANCE = {numpy.float32: 1e-5, numpy.float64: 1e-12}


def _relative_error(actual, expected, scale=None):
    """The largest difference over ``scale`` (by default the largest
    ``expected``)."""
    if scale is None:
        scale = numpy.abs(expected).max()
    return numpy.abs(actual - expected).max() / scale


def _gx_scale(x, gy, eps):
    """The largest term of ``gx = inv_std * (g - (x_hat * ggamma + gbeta) /
    m)``: where the terms cancel (two values a channel), ``gx`` is far
    smaller than them and than their rounding errors."""
    axes = (0,) + tuple(range(2, x.ndim))
    inv_std = 1 / numpy.sqrt(x.astype(numpy.float64).var(axis=axes) + eps)
    return (numpy.abs(gy).max(axis=axes) * inv_std).max()


def _chainer_bn(channels, beta, dtype=numpy.float32):
    bn = L.BatchNormalization(channels, decay=0.999, eps=1e-3, dtype=dtype,
                              use_gamma=False)
    bn.beta.array[...] = beta
    bn.avg_mean[...] = numpy.linspace(-1, 1, channels)
    bn.avg_var[...] = numpy.linspace(0.5, 2, channels)
    bn.cleargrads()
    return bn


def _run_chainer(bn, x, gy):
    """``y``, ``gx`` of ``F.relu(bn(x))`` in training (``bn`` updated)."""
    x_var = chainer.Variable(x.copy())
    with chainer.using_config('train', True):
        y = F.relu(bn(x_var))
    y.grad = gy
    y.backward()
    return y.array, x_var.grad


def _run_fused(bn, x, gy):
    """``y``, ``gx`` of :func:`batch_norm_relu` with ``bn``'s parameters
    and statistics (``bn`` updated)."""
    x_var = chainer.Variable(x)
    y = batch_norm_relu(x_var, bn.beta, bn.eps, bn.avg_mean, bn.avg_var,
                        bn.decay)
    assert isinstance(y.creator, CPUBatchNormReLU)
    y.grad = gy
    y.backward()
    return y.array, x_var.grad


def _compare_with_chainer(x, beta, gy, tolerance=None):
    dtype = x.dtype.type
    tolerance = tolerance or TOLERANCE[dtype]
    reference_bn = _chainer_bn(x.shape[1], beta, dtype)
    bn = _chainer_bn(x.shape[1], beta, dtype)
    y_ref, gx_ref = _run_chainer(reference_bn, x, gy)
    y, gx = _run_fused(bn, x, gy)

    assert (y > 0).sum() > 0 and (y == 0).sum() > 0
    for actual, expected, scale in (
            (y, y_ref, None), (gx, gx_ref, _gx_scale(x, gy, bn.eps)),
            (bn.beta.grad, reference_bn.beta.grad, None),
            (bn.avg_mean, reference_bn.avg_mean, None),
            (bn.avg_var, reference_bn.avg_var, None)):
        assert actual.dtype == dtype
        assert actual.shape == expected.shape
        assert _relative_error(actual, expected, scale) < tolerance


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('shape', SHAPES)
def test_matches_chainer_values_gradients_and_statistics(shape, dtype):
    rng = numpy.random.RandomState(0)
    x = (rng.randn(*shape) * 3 + 1).astype(dtype)
    beta = rng.randn(shape[1]).astype(dtype)
    gy = rng.randn(*shape).astype(dtype)
    _compare_with_chainer(x, beta, gy)


def test_matches_chainer_on_a_non_contiguous_input():
    rng = numpy.random.RandomState(5)
    x = numpy.asfortranarray(rng.randn(2, 3, 4, 5, 6).astype(numpy.float32))
    assert not x.flags.c_contiguous
    _compare_with_chainer(x, rng.randn(3).astype(numpy.float32),
                          rng.randn(*x.shape).astype(numpy.float32))


@pytest.mark.parametrize('view', [
    # Chainer's concat passes back gradients that are channel slices of one
    # array: read in place.
    lambda a: a[:, 2:6],
    # Steps within a channel and reversed channels: copied.
    lambda a: a[:, 1:5, :, :, ::2], lambda a: a[:, 5:1:-1]])
def test_views_give_the_results_of_their_copies(view):
    rng = numpy.random.RandomState(10)
    x = view(rng.randn(3, 7, 2, 3, 10).astype(numpy.float32))
    gy = view(rng.randn(3, 7, 2, 3, 10).astype(numpy.float32))
    assert not x.flags.c_contiguous and not gy.flags.c_contiguous
    beta = rng.randn(4).astype(numpy.float32)
    results = []
    for x_in, gy_in in ((x, gy), (x.copy(), gy.copy())):
        x_var, beta_var = chainer.Variable(x_in), chainer.Variable(beta)
        y = batch_norm_relu(x_var, beta_var, 1e-3)
        y.grad = gy_in
        y.backward()
        results.append((y.array, x_var.grad, beta_var.grad))
    for a, b in zip(*results):
        assert numpy.array_equal(a, b)


def test_statistics_keep_their_precision_far_from_zero():
    # A mean 1e7 times the deviation: E[x^2] - E[x]^2 in float64 would lose
    # about 1e-2 of the variance (y off by 5e-3); sums of x - shift lose
    # nothing. The rounding of the mean itself (1e7 * 2 ** -52, 2e-9 of a
    # deviation) bounds how well any two implementations agree.
    rng = numpy.random.RandomState(6)
    x = 1e7 + rng.randn(2, 3, 200)
    beta = rng.randn(3)
    _compare_with_chainer(x, beta, rng.randn(*x.shape), tolerance=1e-7)


def test_a_constant_channel_normalizes_to_beta():
    x = numpy.full((2, 2, 3, 5), 0.1, numpy.float32)
    x[:, 1] = numpy.random.RandomState(7).randn(2, 3, 5)
    beta = numpy.array([0.25, -0.5], numpy.float32)
    y = batch_norm_relu(x, beta, 1e-3)
    assert numpy.array_equal(y.array[:, 0], numpy.full((2, 3, 5), 0.25,
                                                       numpy.float32))


@pytest.mark.parametrize('shape', [(2, 3, 2, 3, 2), (1, 2, 2),
                                   (3, 2, cpu_bn.LANES + 5)])
def test_gradients_are_the_derivative(shape):
    rng = numpy.random.RandomState(1)
    x = rng.randn(*shape)
    beta = rng.randn(shape[1])
    gy = rng.randn(*x.shape)
    check_backward(
        lambda x, beta: batch_norm_relu(x, beta, 1e-3), (x, beta), gy,
        atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_backward_mask_is_the_forwards(dtype):
    # Many ReLU inputs exactly 0: x takes few values, and beta is minus
    # one of them normalized (beta does not change the statistics). A
    # backward whose ReLU input differs from the forward's by a rounding
    # (float64, reordered operations) or whose test differs (>= 0) passes
    # some of them. Integer gradients sum exactly: gbeta is the sum of gy
    # over y > 0 only if the masks agree, element for element; gx, where
    # a wrong mask would be off by inv_std * |gy| >= inv_std.
    rng = numpy.random.RandomState(8)
    shape = (3, 4, 5, 2 * cpu_bn.LANES + 1)
    x = (rng.randint(-5, 6, shape) * 0.37).astype(dtype)
    node = CPUBatchNormReLU(1e-3, None, None, 0.9)
    node.apply((x, numpy.zeros(shape[1], dtype)))
    x_hat = (x - node.mean[:, None, None]) * node.inv_std[:, None, None]
    beta = chainer.Variable(-x_hat[0, :, 0, 0])
    assert ((x_hat + beta.array[:, None, None]) == 0).mean() > 0.05

    x = chainer.Variable(x)
    y = batch_norm_relu(x, beta, 1e-3)
    gy = rng.randint(-1000, 1000, shape).astype(dtype)
    y.grad = gy
    y.backward()
    g = numpy.where(y.array > 0, gy, 0)
    gbeta = g.sum(axis=(0, 2, 3))
    assert numpy.array_equal(beta.grad, gbeta)
    m = x.size // shape[1]
    ggamma = (g * x_hat).sum(axis=(0, 2, 3))
    gx = (g - (x_hat * ggamma[:, None, None] + gbeta[:, None, None]) / m) \
        * node.inv_std[:, None, None]
    assert numpy.abs(x.grad - gx).max() < 0.01 * node.inv_std.min()


def _forward_backward(x, beta):
    x_var = chainer.Variable(x.copy())
    y = batch_norm_relu(x_var, beta, 1e-3)
    y.grad = numpy.cos(numpy.arange(x.size)).reshape(x.shape).astype(
        x.dtype)
    y.backward()
    return y.array, x_var.grad


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_result_does_not_depend_on_channel_grouping(monkeypatch, dtype):
    x = numpy.random.RandomState(2).randn(3, 6, 5, 7, 9).astype(dtype)
    beta = numpy.zeros(6, dtype)
    results = []
    for elements in (1, 500, 10 ** 9):  # a chunk per channel ... one chunk
        monkeypatch.setattr(cpu_bn, 'CHUNK_ELEMENTS', elements)
        results.append(_forward_backward(x, beta))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert numpy.array_equal(a, b)


def test_result_does_not_depend_on_the_thread_count(monkeypatch):
    # cpu_chunks runs as many threads as BLAS would use.
    monkeypatch.setattr(cpu_bn, 'CHUNK_ELEMENTS', 100)
    x = numpy.random.RandomState(9).randn(2, 5, 3, 70).astype(numpy.float32)
    beta = numpy.zeros(5, numpy.float32)
    threaded = _forward_backward(x, beta)
    with threadpoolctl.threadpool_limits(limits=1, user_api='blas'):
        one_thread = _forward_backward(x, beta)
    for a, b in zip(threaded, one_thread):
        assert numpy.array_equal(a, b)


def test_unit3d_uses_it_in_training_only_with_its_own_batch_norm():
    unit = Unit3D(2, 3, ksize=1)
    x = numpy.random.RandomState(3).randn(2, 2, 2, 3, 3).astype(
        numpy.float32)
    with chainer.using_config('train', True):
        assert isinstance(unit(x).creator, CPUBatchNormReLU)
        unit.frozen_statistics = True
        assert not isinstance(unit(x).creator, CPUBatchNormReLU)
    unit.frozen_statistics = False
    with chainer.using_config('train', False):
        assert not isinstance(unit(x).creator, CPUBatchNormReLU)


def test_non_numpy_and_bad_beta_raise_value_error():
    x = numpy.zeros((2, 3, 4), numpy.float32)
    with pytest.raises(ValueError, match='one value per channel'):
        batch_norm_relu(x, numpy.zeros(4, numpy.float32), 1e-3)


def test_an_empty_batch_raises_value_error():
    x = numpy.zeros((0, 3, 4), numpy.float32)
    with pytest.raises(ValueError, match='at least one value per channel'):
        batch_norm_relu(x, numpy.zeros(3, numpy.float32), 1e-3)


def test_double_backprop_raises_a_clear_error():
    x = chainer.Variable(numpy.random.RandomState(4).randn(2, 3, 4).astype(
        numpy.float32))
    y = batch_norm_relu(x, numpy.zeros(3, numpy.float32), 1e-3)
    gx, = chainer.grad([F.sum(y)], [x], enable_double_backprop=True)
    with pytest.raises(NotImplementedError, match='double backpropagation'):
        F.sum(gx).backward()
