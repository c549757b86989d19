import itertools

import chainer
import numpy
import pytest

from chainercv_i3d.functions.tf_same_padding import max_pooling_nd_same
from chainercv_i3d.functions.tf_same_padding import MaxPool3dSame
from chainercv_i3d.functions.tf_same_padding import max_pooling_nd_same_chainer
from chainercv_i3d.functions.tf_same_padding import same_padding
from chainercv_i3d.functions.cpu.max_pool import max_pool_padded
from chainercv_i3d.functions.cpu.max_pool import CPUMaxPool3D


def tf_same_output_and_padding(n, k, s):
    # TensorFlow's documented rule, written independently of the code.
    out = (n + s - 1) // s
    total = max(0, (out - 1) * s + k - n)
    return out, total // 2, total - total // 2


@pytest.mark.parametrize('n,k,s', list(itertools.product(
    range(1, 30), (1, 2, 3, 7), (1, 2))))
def test_same_padding_matches_tf_rule(n, k, s):
    out, before, after = tf_same_output_and_padding(n, k, s)
    assert same_padding(n, k, s) == (before, after)
    assert (n + before + after - k) // s + 1 == out


def test_same_padding_is_asymmetric_on_even_frames():
    # The stem on 64 frames: the case static "same" padding gets wrong.
    assert same_padding(64, 7, 2) == (2, 3)
    assert same_padding(79, 7, 2) == (3, 3)
    assert same_padding(224, 3, 2) == (0, 1)


def brute_force_max_pool(x, ksize, stride):
    # Windows over the unpadded input, clipped to its bounds (TF ignores
    # padding in max pools).
    n, c = x.shape[:2]
    starts, outs = [], []
    for size, k, s in zip(x.shape[2:], ksize, stride):
        out, before, _ = tf_same_output_and_padding(size, k, s)
        outs.append(out)
        starts.append([i * s - before for i in range(out)])
    y = numpy.empty((n, c) + tuple(outs), x.dtype)
    for idx in itertools.product(*[range(o) for o in outs]):
        window = tuple(
            slice(max(st[i], 0), max(st[i] + k, 0))
            for st, i, k in zip(starts, idx, ksize))
        y[(Ellipsis,) + idx] = x[(slice(None), slice(None)) + window].max(
            axis=(2, 3, 4))
    return y


@pytest.mark.parametrize('shape,ksize,stride', [
    ((2, 3, 5, 8, 7), (3, 3, 3), (1, 1, 1)),
    ((1, 2, 6, 9, 10), (1, 3, 3), (1, 2, 2)),
    ((1, 2, 7, 7, 6), (3, 3, 3), (2, 2, 2)),
    ((1, 1, 3, 5, 4), (2, 2, 2), (2, 2, 2)),
])
def test_max_pool_same_ignores_padding(shape, ksize, stride):
    # All-negative input: zero padding would win wherever a window overlaps
    # the border, so this catches anything but -inf padding.
    x = -numpy.random.RandomState(0).uniform(1, 2, shape).astype('f')
    y = max_pooling_nd_same(x, ksize, stride)
    numpy.testing.assert_array_equal(
        y.array, brute_force_max_pool(x, ksize, stride))


def test_max_pool_same_backward():
    x = chainer.Variable(
        numpy.random.RandomState(1).randn(1, 2, 5, 6, 7).astype('f'))
    y = max_pooling_nd_same(x, (3, 3, 3), (2, 2, 2))
    y.grad = numpy.ones_like(y.array)
    y.backward()
    assert x.grad.shape == x.shape
    assert numpy.isfinite(x.grad).all()
    # Each output sends its gradient to exactly one input element.
    assert x.grad.sum() == y.array.size


@pytest.mark.parametrize('shape,ksize,stride', [
    ((2, 3, 5, 8, 7), (3, 3, 3), (1, 1, 1)),
    ((1, 2, 6, 9, 10), (1, 3, 3), (1, 2, 2)),
    ((1, 2, 7, 7, 6), (3, 3, 3), (2, 2, 2)),
    ((1, 3, 3, 5, 4), (2, 2, 2), (2, 2, 2)),
    ((1, 2, 4, 4, 3), (2, 2, 2), (2, 2, 2)),
])
@pytest.mark.parametrize('ties', [False, True])
def test_cpu_max_pool_routes_gradients_as_chainer(shape, ksize, stride,
                                                  ties):
    # The CPU pool (functions.cpu.max_pool) against Chainer's im2col pool: the same
    # values, and each gradient sent to the same input (the first maximum
    # of the window in t, h, w order), even among ties (as the zeros after
    # a ReLU): with three distinct values most windows have several maxima.
    # Integer gradients make every sum exact: bit for bit.
    rng = numpy.random.RandomState(2)
    x = rng.randn(*shape).astype('f')
    if ties:
        x = rng.randint(-1, 2, shape).astype('f')
    grads = []
    for pool in (max_pooling_nd_same, max_pooling_nd_same_chainer):
        v = chainer.Variable(x.copy())
        y = pool(v, ksize, stride)
        if not grads:
            gy = rng.randint(1, 2 ** 10, y.shape).astype('f')
        y.grad = gy
        y.backward()
        grads.append((y.array, v.grad))
    (y, gx), (ref_y, ref_gx) = grads
    assert isinstance(max_pooling_nd_same(x, ksize, stride).creator,
                      CPUMaxPool3D)
    numpy.testing.assert_array_equal(y, ref_y)
    numpy.testing.assert_array_equal(gx, ref_gx)


def test_cpu_max_pool_double_backprop_raises_a_clear_error():
    x = chainer.Variable(
        numpy.random.RandomState(3).randn(1, 2, 3, 4, 4).astype('f'))
    y = max_pooling_nd_same(x, (3, 3, 3), (1, 1, 1))
    gx, = chainer.grad([chainer.functions.sum(y * y)], [x],
                       enable_double_backprop=True)
    with pytest.raises(NotImplementedError, match='double backprop'):
        chainer.functions.sum(gx).backward()


def test_cpu_max_pool_rejects_padding_as_wide_as_the_window():
    x = numpy.zeros((1, 1, 4, 4, 4), 'f')
    with pytest.raises(ValueError, match='smaller than the window'):
        max_pool_padded(x, (2, 2, 2), (1, 1, 1), ((2, 0), (0, 0), (0, 0)))


def test_the_typed_pool_is_the_function_with_its_parameters():
    x = numpy.random.RandomState(3).randn(1, 2, 5, 9, 8).astype(numpy.float32)
    pool = MaxPool3dSame([1, 3, 3], (1, 2, 2))
    assert (pool.ksize, pool.stride) == ((1, 3, 3), (1, 2, 2))
    numpy.testing.assert_array_equal(
        pool(x).array, max_pooling_nd_same(x, (1, 3, 3), (1, 2, 2)).array)
    assert repr(pool) == 'MaxPool3dSame(ksize=(1, 3, 3), stride=(1, 2, 2))'
