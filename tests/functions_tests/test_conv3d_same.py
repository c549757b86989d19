"""The CPU training convolution (cpu_conv3d) against Chainer's.

``conv3d_same`` runs :mod:`chainercv_i3d.functions.cpu.conv3d` on numpy arrays;
its values and both gradients must be Chainer's ``F.convolution_nd`` on the
same SAME-padded input (``conv3d_same_chainer``) to float32 rounding, for
every kernel and stride of I3D, on odd and even sizes (asymmetric padding),
batches and channel counts; and the gradients must be the derivative of the
forward (``check_backward`` in float64).
"""

import chainer
import chainer.functions as F
import numpy
import pytest

from chainercv_i3d.functions.conv3d_same import conv3d_same
from chainercv_i3d.functions.conv3d_same import conv3d_same_chainer
from chainercv_i3d.functions.tf_same_padding import same_padding_nd
from chainercv_i3d.functions.cpu.conv3d import conv3d_padded
from chainercv_i3d.functions.cpu.conv3d import CPUConv3D
from chainercv_i3d.testing.gradients import check_backward

# (x shape, out channels, ksize, stride): I3D's stem on RGB and flow, its
# 1x1x1 and 3x3x3 convolutions; odd and even T, H, W.
CASES = [
    ((2, 3, 9, 12, 11), 5, (7, 7, 7), (2, 2, 2)),
    ((1, 2, 8, 10, 13), 4, (7, 7, 7), (2, 2, 2)),
    ((1, 3, 4, 7, 6), 3, (7, 7, 7), (2, 2, 2)),  # kernel wider than input
    ((2, 6, 5, 7, 8), 4, (1, 1, 1), (1, 1, 1)),
    ((1, 7, 3, 4, 5), 9, (1, 1, 1), (1, 1, 1)),
    ((2, 6, 5, 7, 8), 4, (3, 3, 3), (1, 1, 1)),
    ((1, 5, 4, 6, 9), 7, (3, 3, 3), (1, 1, 1)),
    ((1, 4, 2, 2, 1), 3, (3, 3, 3), (1, 1, 1)),
]


def _relative_error(actual, expected):
    return numpy.abs(actual - expected).max() / numpy.abs(expected).max()


def _run(conv, x, W, stride, gy):
    x, W = chainer.Variable(x.copy()), chainer.Variable(W.copy())
    y = conv(x, W, stride)
    y.grad = gy
    y.backward()
    return y, x.grad, W.grad


@pytest.mark.parametrize('shape,out_channels,ksize,stride', CASES)
def test_matches_chainer_values_and_gradients(shape, out_channels, ksize,
                                              stride):
    rng = numpy.random.RandomState(0)
    x = rng.randn(*shape).astype(numpy.float32)
    W = rng.randn(out_channels, shape[1], *ksize).astype(numpy.float32)
    reference = conv3d_same_chainer(x, W, stride)
    gy = rng.randn(*reference.shape).astype(numpy.float32)
    y, gx, gw = _run(conv3d_same, x, W, stride, gy)
    assert isinstance(y.creator, CPUConv3D)
    ref_y, ref_gx, ref_gw = _run(conv3d_same_chainer, x, W, stride, gy)
    assert y.shape == ref_y.shape
    # float32 rounding of sums of up to a few thousand products.
    for actual, expected in ((y.array, ref_y.array), (gx, ref_gx),
                             (gw, ref_gw)):
        assert actual.dtype == numpy.float32
        assert _relative_error(actual, expected) < 1e-5


@pytest.mark.parametrize('shape,out_channels,ksize,stride', [
    ((1, 2, 5, 6, 5), 2, (7, 7, 7), (2, 2, 2)),
    ((2, 3, 3, 4, 5), 2, (1, 1, 1), (1, 1, 1)),
    ((1, 2, 3, 4, 5), 3, (3, 3, 3), (1, 1, 1)),
    ((1, 2, 2, 5, 4), 2, (2, 3, 1), (1, 2, 1)),
])
def test_gradients_are_the_derivative(shape, out_channels, ksize, stride):
    rng = numpy.random.RandomState(1)
    x = rng.randn(*shape)
    W = rng.randn(out_channels, shape[1], *ksize)
    pads = same_padding_nd(shape[2:], ksize, stride)
    gy = rng.randn(*conv3d_padded(x, W, stride, pads).shape)
    check_backward(
        lambda x, W: conv3d_padded(x, W, stride, pads), (x, W), gy,
        atol=1e-6, rtol=1e-5)


def test_padding_wider_than_kernel_matches_chainer():
    # Any (before, after), not only SAME: a padding of k crops gy in gx.
    rng = numpy.random.RandomState(2)
    x = rng.randn(1, 2, 3, 4, 5).astype(numpy.float32)
    W = rng.randn(3, 2, 3, 1, 3).astype(numpy.float32)
    pads = ((3, 0), (0, 2), (1, 4))
    xv, wv = chainer.Variable(x), chainer.Variable(W)
    y = conv3d_padded(xv, wv, (1, 1, 1), pads)
    gy = rng.randn(*y.shape).astype(numpy.float32)
    y.grad = gy
    y.backward()
    xr, wr = chainer.Variable(x), chainer.Variable(W)
    ref = F.convolution_nd(F.pad(xr, ((0, 0), (0, 0)) + pads, 'constant'),
                           wr)
    ref.grad = gy
    ref.backward()
    assert _relative_error(y.array, ref.array) < 1e-5
    assert _relative_error(xv.grad, xr.grad) < 1e-5
    assert _relative_error(wv.grad, wr.grad) < 1e-5


def test_input_without_gradient_gets_none():
    rng = numpy.random.RandomState(3)
    W = chainer.Variable(rng.randn(2, 3, 7, 7, 7).astype(numpy.float32))
    y = conv3d_same(rng.randn(1, 3, 4, 6, 6).astype(numpy.float32), W,
                    (2, 2, 2))
    F.sum(y).backward()
    assert W.grad is not None and numpy.abs(W.grad).sum() > 0


def test_double_backprop_raises_a_clear_error():
    rng = numpy.random.RandomState(4)
    x = chainer.Variable(rng.randn(1, 2, 3, 3, 3).astype(numpy.float32))
    W = chainer.Variable(rng.randn(2, 2, 3, 3, 3).astype(numpy.float32))
    y = conv3d_same(x, W, (1, 1, 1))
    gx, = chainer.grad([F.sum(y * y)], [x], enable_double_backprop=True)
    with pytest.raises(NotImplementedError, match='double backprop'):
        F.sum(gx).backward()


def test_bad_pads_raise_value_error():
    x = numpy.zeros((1, 2, 3, 3, 3), numpy.float32)
    W = numpy.zeros((2, 2, 3, 3, 3), numpy.float32)
    with pytest.raises(ValueError, match='pads'):
        conv3d_padded(x, W, (1, 1, 1), ((-1, 0), (0, 0), (0, 0)))
    with pytest.raises(ValueError, match='larger than the padded input'):
        conv3d_padded(x[:, :, :2], W, (1, 1, 1), ((0, 0), (0, 0), (0, 0)))


@pytest.mark.parametrize('shape,out_channels', [
    ((2, 6, 5, 7, 8), 4), ((1, 5, 4, 6, 9), 7), ((1, 4, 2, 2, 1), 3)])
def test_winograd_path_matches_chainer(monkeypatch, shape, out_channels):
    # 3x3x3 SAME convolutions (and both their gradients) on large frames
    # run Winograd's algorithm (functions.cpu.winograd): force it on these small
    # ones, and count that they do.
    from chainercv_i3d.functions.cpu import conv3d as cpu_conv3d
    monkeypatch.setattr(cpu_conv3d, 'WINOGRAD_MIN_PIXELS', 0)
    calls = []
    for name in ('winograd_correlate', 'winograd_input_grad',
                 'winograd_weight_grad'):
        function = getattr(cpu_conv3d, name)
        monkeypatch.setattr(cpu_conv3d, name, lambda *args, f=function,
                            n=name: calls.append(n) or f(*args))
    rng = numpy.random.RandomState(5)
    x = rng.randn(*shape).astype(numpy.float32)
    W = rng.randn(out_channels, shape[1], 3, 3, 3).astype(numpy.float32)
    reference = conv3d_same_chainer(x, W, (1, 1, 1))
    gy = rng.randn(*reference.shape).astype(numpy.float32)
    y, gx, gw = _run(conv3d_same, x, W, (1, 1, 1), gy)
    ref_y, ref_gx, ref_gw = _run(conv3d_same_chainer, x, W, (1, 1, 1), gy)
    for actual, expected in ((y.array, ref_y.array), (gx, ref_gx),
                             (gw, ref_gw)):
        assert _relative_error(actual, expected) < 1e-5
    assert sorted(calls) == ['winograd_correlate', 'winograd_input_grad',
                             'winograd_weight_grad']


@pytest.mark.parametrize('size,winograd', [((10, 10), True), ((7, 7), False),
                                           ((5, 20), True)])
def test_winograd_runs_on_frames_of_at_least_min_pixels(monkeypatch, size,
                                                         winograd):
    from chainercv_i3d.functions.cpu import conv3d as cpu_conv3d
    calls = []
    function = cpu_conv3d.winograd_correlate
    monkeypatch.setattr(cpu_conv3d, 'winograd_correlate',
                        lambda *args: calls.append(1) or function(*args))
    x = numpy.zeros((1, 2, 2) + size, numpy.float32)
    W = numpy.zeros((3, 2, 3, 3, 3), numpy.float32)
    conv3d_same(x, W, (1, 1, 1))
    assert bool(calls) == winograd
    assert (size[0] * size[1] >= cpu_conv3d.WINOGRAD_MIN_PIXELS) == winograd
