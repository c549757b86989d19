"""The compiled channels-last im2col convolution against Chainer's.

``cpu_conv_im2col`` must give ``F.convolution_nd`` on the TensorFlow-SAME
padded input (plus bias, then ReLU) on odd and even sizes, batches, channel
slices in and out, and chunks of every shape (small chunk bounds force
several rows and frame groups per layer).
"""

import chainer
import chainer.functions as F
import numpy
import pytest

from chainercv_i3d.functions.tf_same_padding import same_padding_nd
from chainercv_i3d.links.fast import cpu_im2col
from chainercv_i3d.links.fast import forward as fast_inference
from chainercv_i3d.utils import threads as parallel


def reference(x, W, b, stride):
    """ReLU(conv(SAME-pad(x)) + b) (no bias, no ReLU if b is None), NCTHW
    float64 in, channels-last out."""
    pads = same_padding_nd(x.shape[2:], W.shape[2:], stride)
    padded = numpy.pad(x, ((0, 0), (0, 0)) + pads)
    with chainer.no_backprop_mode():
        y = F.convolution_nd(padded, W, stride=stride).array
    if b is not None:
        y = numpy.maximum(y + b[None, :, None, None, None], 0)
    return y.transpose(0, 2, 3, 4, 1)


def weight_rows(W):
    """(O, C, kt, kh, kw) -> (kt * kh * kw * C, O), the im2col's rows."""
    return numpy.ascontiguousarray(
        W.transpose(2, 3, 4, 1, 0).reshape(-1, W.shape[0]))


CASES = [
    # in_c, out_c, ksize, stride, (N, T, H, W)
    (3, 8, (7, 7, 7), (2, 2, 2), (1, 9, 15, 13)),    # stem, odd sizes
    (3, 8, (7, 7, 7), (2, 2, 2), (2, 10, 16, 16)),   # stem, even, batch 2
    (2, 5, (7, 7, 7), (2, 2, 2), (1, 3, 5, 4)),      # kernel beyond input
    (16, 12, (3, 3, 3), (1, 1, 1), (2, 5, 7, 6)),    # few channels
    (5, 4, (3, 3, 3), (1, 1, 1), (1, 1, 1, 1)),      # one pixel
    (4, 6, (1, 3, 3), (1, 2, 2), (1, 4, 9, 7)),      # mixed kernel, stride
]


@pytest.mark.parametrize('threads', [False, True], ids=['serial', 'threads'])
@pytest.mark.parametrize('small_chunks', [False, True],
                         ids=['chunks', 'small_chunks'])
@pytest.mark.parametrize('in_c,out_c,ksize,stride,shape', CASES)
def test_matches_chainer(monkeypatch, threads, small_chunks, in_c, out_c,
                         ksize, stride, shape):
    if small_chunks:
        monkeypatch.setattr(cpu_im2col, 'CHUNK_POSITIONS', 3)
        monkeypatch.setattr(cpu_im2col, 'CHUNK_ELEMENTS', 2000)
        monkeypatch.setattr(cpu_im2col, 'STRIDED_CHUNK_ELEMENTS', 2000)
    assert_matches_chainer(0, in_c, out_c, ksize, stride, shape, threads)


def assert_matches_chainer(seed, in_c, out_c, ksize, stride, shape, threads):
    """cpu_conv_im2col on a random input and weights equals Chainer's
    convolution (``shape`` is (N, T, H, W))."""
    rng = numpy.random.RandomState(seed)
    x = rng.normal(0, 1, (shape[0], in_c) + shape[1:])
    W = rng.normal(0, 0.1, (out_c, in_c) + ksize)
    b = rng.normal(0, 0.1, out_c).astype(numpy.float32)
    expected = reference(x, W, b, stride)
    x32 = numpy.ascontiguousarray(x.transpose(0, 2, 3, 4, 1), numpy.float32)
    weight = weight_rows(W).astype(numpy.float32)
    with parallel.cpu_chunks(numpy) if threads else _nothing():
        y = cpu_im2col.cpu_conv_im2col(x32, weight, ksize, stride, b)
    assert y.shape == expected.shape
    numpy.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('bias', [True, False], ids=['bias', 'no_bias'])
def test_channel_slices_in_and_out(bias):
    rng = numpy.random.RandomState(1)
    in_c, out_c, ksize, stride = 6, 5, (3, 3, 3), (1, 1, 1)
    merged = rng.normal(0, 1, (2, 4, 7, 5, in_c + 7))
    x = merged[..., 3:3 + in_c]  # a slice of a merged 1x1 output
    W = rng.normal(0, 0.1, (out_c, in_c) + ksize)
    b = rng.normal(0, 0.1, out_c).astype(numpy.float32) if bias else None
    expected = reference(x.transpose(0, 4, 1, 2, 3), W, b, stride)
    big = numpy.full(expected.shape[:4] + (out_c + 4,), 7, numpy.float32)
    out = big[..., 1:1 + out_c]
    with parallel.cpu_chunks(numpy):
        y = cpu_im2col.cpu_conv_im2col(merged.astype(numpy.float32)[
            ..., 3:3 + in_c], weight_rows(W).astype(numpy.float32), ksize,
            stride, b, out=out)
    assert y is out
    numpy.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert (big[..., :1] == 7).all() and (big[..., 1 + out_c:] == 7).all()


def test_float64():
    rng = numpy.random.RandomState(2)
    x = rng.normal(0, 1, (1, 3, 9, 11, 10))
    W = rng.normal(0, 0.1, (4, 3, 7, 7, 7))
    b = rng.normal(0, 0.1, 4).astype(numpy.float32)
    y = cpu_im2col.cpu_conv_im2col(
        numpy.ascontiguousarray(x.transpose(0, 2, 3, 4, 1)), weight_rows(W),
        (7, 7, 7), (2, 2, 2), b)
    assert y.dtype == numpy.float64
    numpy.testing.assert_allclose(y, reference(x, W, b, (2, 2, 2)),
                                  rtol=1e-6, atol=1e-6)


def test_forward_dispatch_and_float16_path():
    # On numpy float32 the fast path's conv_im2col is the compiled one;
    # float16 still runs the numpy im2col, within float16's precision.
    rng = numpy.random.RandomState(3)
    x = rng.normal(0, 1, (1, 7, 9, 8, 3)).astype(numpy.float32)
    W = rng.normal(0, 0.1, (6, 3, 7, 7, 7))
    weight = weight_rows(W).astype(numpy.float32)
    b = rng.normal(0, 0.1, 6).astype(numpy.float32)
    with parallel.cpu_chunks(numpy):
        compiled = cpu_im2col.cpu_conv_im2col(x, weight, (7, 7, 7),
                                              (2, 2, 2), b)
        dispatched = fast_inference.conv_im2col(x, weight, (7, 7, 7),
                                                (2, 2, 2), b)
        half = fast_inference.conv_im2col(
            x.astype(numpy.float16), weight.astype(numpy.float16),
            (7, 7, 7), (2, 2, 2), b)
    numpy.testing.assert_array_equal(dispatched, compiled)
    assert half.dtype == numpy.float16
    numpy.testing.assert_allclose(half, compiled, rtol=2e-2, atol=2e-2)


STRIDED_CASES = [
    # in_c, out_c, ksize, stride, (N, T, H, W): the input-frame path
    (3, 8, (7, 7, 7), (2, 2, 2), (1, 1, 9, 8)),      # one frame
    (3, 8, (7, 7, 7), (2, 2, 2), (1, 2, 7, 9)),
    (3, 8, (7, 7, 7), (2, 2, 2), (2, 5, 8, 8)),      # batch 2
    (3, 8, (7, 7, 7), (2, 2, 2), (1, 9, 6, 7)),      # odd T
    (3, 8, (7, 7, 7), (2, 2, 2), (1, 64, 5, 6)),
    (3, 8, (7, 7, 7), (2, 2, 2), (1, 79, 4, 5)),     # odd T, long
    (2, 4, (7, 7, 7), (2, 2, 2), (2, 3, 2, 3)),      # kernel beyond input
    (3, 5, (5, 3, 3), (3, 1, 2), (1, 11, 6, 5)),     # three tap classes
    (3, 5, (1, 3, 3), (2, 2, 2), (1, 5, 6, 5)),      # a class with no tap
]


@pytest.mark.parametrize('threads', [False, True], ids=['serial', 'threads'])
@pytest.mark.parametrize('small_chunks', [False, True],
                         ids=['chunks', 'small_chunks'])
@pytest.mark.parametrize('in_c,out_c,ksize,stride,shape', STRIDED_CASES)
def test_input_frame_path(monkeypatch, threads, small_chunks, in_c, out_c,
                          ksize, stride, shape):
    # Also the frame-group path on the same input: both give Chainer's.
    if small_chunks:
        monkeypatch.setattr(cpu_im2col, 'STRIDED_CHUNK_POSITIONS', 3)
    for per_input_frame in (True, False):
        monkeypatch.setattr(cpu_im2col, 'PER_INPUT_FRAME', per_input_frame)
        assert_matches_chainer(4, in_c, out_c, ksize, stride, shape, threads)


@pytest.mark.parametrize('bias', [True, False], ids=['bias', 'no_bias'])
def test_input_frame_path_channel_slice_out(bias):
    rng = numpy.random.RandomState(5)
    in_c, out_c, ksize, stride = 3, 6, (7, 7, 7), (2, 2, 2)
    x = rng.normal(0, 1, (2, 9, 7, 6, in_c))
    W = rng.normal(0, 0.1, (out_c, in_c) + ksize)
    b = rng.normal(0, 0.1, out_c).astype(numpy.float32) if bias else None
    expected = reference(x.transpose(0, 4, 1, 2, 3), W, b, stride)
    big = numpy.full(expected.shape[:4] + (out_c + 5,), 7, numpy.float32)
    out = big[..., 2:2 + out_c]
    with parallel.cpu_chunks(numpy):
        y = cpu_im2col.cpu_conv_im2col(
            x.astype(numpy.float32), weight_rows(W).astype(numpy.float32),
            ksize, stride, b, out=out)
    assert y is out
    numpy.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert (big[..., :2] == 7).all() and (big[..., 2 + out_c:] == 7).all()


class _nothing(object):
    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False
