import chainer
import chainer.functions as F
import numpy
import pytest

from chainercv_i3d.functions.tf_same_padding import same_padding_nd
from chainercv_i3d.functions.cpu.max_pool import max_pool_padded
from chainercv_i3d.functions.cpu.max_pool import CPUMaxPool3D

# The pools of I3D (window, stride) on small inputs, odd and even sizes,
# with TensorFlow's SAME padding as the model pads them: MaxPool3d_2a and
# 3a (1x3x3 stride 1, 2, 2), 4a (3x3x3 stride 2), 5a (2x2x2 stride 2) and
# the Inception blocks' 3x3x3 stride 1.
I3D_POOLS = [
    ((2, 3, 4, 10, 9), (1, 3, 3), (1, 2, 2)),
    ((1, 2, 3, 9, 34), (1, 3, 3), (1, 2, 2)),
    ((2, 3, 3, 7, 8), (1, 3, 3), (1, 2, 2)),
    ((2, 3, 5, 8, 7), (3, 3, 3), (2, 2, 2)),
    ((2, 3, 4, 6, 6), (3, 3, 3), (2, 2, 2)),
    ((1, 2, 5, 8, 9), (3, 3, 3), (2, 2, 2)),
    ((2, 3, 4, 7, 6), (2, 2, 2), (2, 2, 2)),
    ((2, 3, 3, 5, 5), (2, 2, 2), (2, 2, 2)),
    ((2, 3, 4, 6, 5), (3, 3, 3), (1, 1, 1)),
    ((2, 3, 2, 7, 7), (3, 3, 3), (1, 1, 1)),
    ((2, 2, 1, 1, 2), (3, 3, 3), (1, 1, 1)),
]

# Other windows and strides (the loops that are not unrolled), explicit
# paddings, a window of more than 256 taps (a 16-bit index), and empty
# axes (windows of padding only).
OTHER_POOLS = [
    ((2, 2, 5, 9, 11), (2, 4, 5), (1, 3, 2), ((1, 0), (2, 1), (0, 4))),
    ((1, 2, 4, 5, 6), (3, 3, 3), (3, 1, 3), ((0, 2), (1, 1), (2, 0))),
    ((1, 2, 3, 6, 7), (1, 1, 1), (1, 2, 3), ((0, 0), (0, 0), (0, 0))),
    ((1, 2, 7, 7, 7), (7, 7, 7), (2, 2, 2), ((3, 3), (3, 3), (3, 3))),
    ((1, 2, 0, 3, 3), (2, 2, 2), (1, 1, 1), ((1, 1), (0, 1), (1, 0))),
    ((1, 2, 3, 0, 4), (2, 2, 2), (1, 2, 1), ((1, 0), (1, 1), (0, 1))),
]


def _inputs(shape, kind, dtype, rng):
    """Inputs with few ties (normal), many (ReLU: half are 0; three values:
    most windows have several maxima), or with ``NaN`` and ``-inf``."""
    if kind == 'normal':
        x = rng.randn(*shape)
    elif kind == 'relu':
        x = numpy.maximum(rng.randn(*shape), 0)
    elif kind == 'three_values':
        x = rng.randint(-1, 2, shape)
    else:
        x = rng.randint(-1, 2, shape).astype('d')
        x[rng.rand(*shape) < 0.3] = -numpy.inf
        x[rng.rand(*shape) < 0.05] = numpy.nan
    return x.astype(dtype)


def _forward_backward(pool, x, gy_seed):
    """``(y, gx)`` of ``pool`` on ``x``, with integer gradients (every sum
    exact, so gradients compare bit for bit)."""
    v = chainer.Variable(x.copy())
    y = pool(v)
    gy = numpy.random.RandomState(gy_seed).randint(1, 2 ** 10, y.shape)
    y.grad = gy.astype(x.dtype)
    y.backward()
    return y.array, v.grad


def _chainer_pool(ksize, stride, pads):
    def pool(x):
        x = F.pad(x, ((0, 0), (0, 0)) + tuple(pads), 'constant',
                  constant_values=-numpy.inf)
        return F.max_pooling_nd(x, ksize, stride, pad=0, cover_all=False)
    return pool


def _assert_same_as_chainer(x, ksize, stride, pads):
    y, gx = _forward_backward(
        lambda v: max_pool_padded(v, ksize, stride, pads), x, 0)
    ref_y, ref_gx = _forward_backward(_chainer_pool(ksize, stride, pads),
                                      x, 0)
    assert y.dtype == x.dtype and gx.dtype == x.dtype
    numpy.testing.assert_array_equal(y, ref_y)
    numpy.testing.assert_array_equal(gx, ref_gx)


@pytest.mark.parametrize('shape,ksize,stride', I3D_POOLS)
@pytest.mark.parametrize('kind', ['normal', 'relu', 'three_values'])
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_i3d_pools_match_chainer(shape, ksize, stride, kind, dtype):
    x = _inputs(shape, kind, dtype, numpy.random.RandomState(1))
    _assert_same_as_chainer(x, ksize, stride,
                            same_padding_nd(shape[2:], ksize, stride))


@pytest.mark.parametrize('shape,ksize,stride,pads', OTHER_POOLS)
@pytest.mark.parametrize('kind', ['normal', 'three_values'])
def test_other_windows_match_chainer(shape, ksize, stride, pads, kind):
    x = _inputs(shape, kind, numpy.float32, numpy.random.RandomState(2))
    _assert_same_as_chainer(x, ksize, stride, pads)


@pytest.mark.parametrize('shape,ksize,stride', I3D_POOLS[::2])
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_nan_and_minus_inf_route_as_chainer(shape, ksize, stride, dtype):
    # Chainer's argmax: the first NaN of a window wins; a window of -inf
    # only picks its first tap (its gradient is lost when that is padding).
    x = _inputs(shape, 'nan_inf', dtype, numpy.random.RandomState(3))
    _assert_same_as_chainer(x, ksize, stride,
                            same_padding_nd(shape[2:], ksize, stride))


def _first_maxima(x, ksize, stride, pads):
    """Per output, the input index of the first maximum of its window in
    (t, h, w) order, by a plain scan of the ``-inf`` padded input (no
    ``NaN``); ``None`` when every tap is ``-inf`` padding."""
    padded = numpy.pad(x, ((0, 0), (0, 0)) + tuple(pads),
                       constant_values=-numpy.inf)
    out = [(n + b + a - k) // s + 1 for n, k, s, (b, a)
           in zip(x.shape[2:], ksize, stride, pads)]
    maxima = {}
    for n, c, ot, oh, ow in numpy.ndindex(*(x.shape[:2] + tuple(out))):
        best, where = None, None
        for dt, dh, dw in numpy.ndindex(*ksize):
            t, h, w = (o * s + d for o, s, d in zip(
                (ot, oh, ow), stride, (dt, dh, dw)))
            if best is None or padded[n, c, t, h, w] > best:
                best, where = padded[n, c, t, h, w], (t, h, w)
        where = tuple(i - b for i, (b, _) in zip(where, pads))
        inside = all(0 <= i < size for i, size in zip(where, x.shape[2:]))
        maxima[n, c, ot, oh, ow] = (n, c) + where if inside else None
    return maxima


@pytest.mark.parametrize('shape,ksize,stride', I3D_POOLS[:2] + I3D_POOLS[-3:])
def test_each_gradient_goes_to_the_first_maximum(shape, ksize, stride):
    # Ties everywhere (three values): every output's gradient, a distinct
    # power of two, must land whole on its window's first maximum.
    rng = numpy.random.RandomState(4)
    x = rng.randint(-1, 2, shape).astype(numpy.float64)
    pads = same_padding_nd(shape[2:], ksize, stride)
    v = chainer.Variable(x)
    y = max_pool_padded(v, ksize, stride, pads)
    gy = 2.0 ** numpy.arange(y.size).reshape(y.shape)
    y.grad = gy
    y.backward()
    expected = numpy.zeros_like(x)
    for o, where in _first_maxima(x, ksize, stride, pads).items():
        numpy.testing.assert_array_equal(y.array[o], x[where])
        expected[where] += gy[o]
    numpy.testing.assert_array_equal(v.grad, expected)


def test_empty_batch_gives_empty_output_and_gradient():
    # Chainer's pool refuses an empty input; this one pools it.
    x = numpy.zeros((0, 2, 4, 5, 5), 'f')
    y, gx = _forward_backward(
        lambda v: max_pool_padded(v, (3, 3, 3), (1, 1, 1), ((1, 1),) * 3),
        x, 0)
    assert y.shape == (0, 2, 4, 5, 5) and y.dtype == x.dtype
    assert gx.shape == x.shape and gx.dtype == x.dtype


def test_keeps_a_byte_index_per_output_and_no_input():
    x = numpy.random.RandomState(5).randn(2, 3, 4, 6, 5).astype('f')
    y = max_pool_padded(x, (3, 3, 3), (1, 1, 1), ((1, 1),) * 3)
    node = y.creator
    assert isinstance(node, CPUMaxPool3D)
    assert node.argmax.dtype == numpy.uint8
    assert node.argmax.shape == y.shape
    assert node.get_retained_inputs() == ()


def test_non_contiguous_input_matches_a_contiguous_copy():
    x = numpy.random.RandomState(6).randn(3, 2, 7, 6, 5).astype('f')
    x = x.transpose(1, 0, 2, 3, 4)
    pads = ((1, 1),) * 3
    y, gx = _forward_backward(
        lambda v: max_pool_padded(v, (3, 3, 3), (1, 1, 1), pads), x, 7)
    ref_y, ref_gx = _forward_backward(
        lambda v: max_pool_padded(v, (3, 3, 3), (1, 1, 1), pads),
        numpy.ascontiguousarray(x), 7)
    numpy.testing.assert_array_equal(y, ref_y)
    numpy.testing.assert_array_equal(gx, ref_gx)


@pytest.mark.parametrize('ksize,stride,pads', [
    ((2, 2, 2), (1, 1, 1), ((2, 0), (0, 0), (0, 0))),
    ((2, 2, 2), (1, 1, 1), ((0, 0), (0, 0), (0, -1))),
    ((2, 0, 2), (1, 1, 1), ((0, 0), (0, 0), (0, 0))),
    ((2, 2, 2), (1, 0, 1), ((0, 0), (0, 0), (0, 0))),
    ((2, 2, 6), (1, 1, 1), ((0, 0), (0, 0), (0, 0))),
])
def test_rejects_windows_that_do_not_fit(ksize, stride, pads):
    x = numpy.zeros((1, 1, 4, 4, 4), 'f')
    with pytest.raises(ValueError, match='does not fit an input'):
        max_pool_padded(x, ksize, stride, pads)


@pytest.mark.parametrize('x', [
    numpy.zeros((1, 1, 4, 4), 'f'),
    numpy.zeros((1, 1, 4, 4, 4), 'i'),
])
def test_rejects_inputs_other_than_5d_floats(x):
    with pytest.raises(chainer.utils.type_check.InvalidType):
        max_pool_padded(x, (2, 2, 2), (1, 1, 1), ((0, 0),) * 3)


def test_rejects_arrays_other_than_numpy():
    node = CPUMaxPool3D((2, 2, 2), (1, 1, 1), ((0, 0),) * 3)
    with pytest.raises(ValueError, match='numpy arrays only'):
        node.forward((numpy.zeros((1, 1, 4, 4, 4), 'f').tolist(),))
