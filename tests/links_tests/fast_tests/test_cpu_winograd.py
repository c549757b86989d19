"""The fast path's Winograd convolution on a CPU (numba kernels) against a
direct convolution and against the numpy passes it replaces."""

import chainercv_i3d  # NOQA: before chainer
import chainer.functions as F
import numpy
import pytest

from chainercv_i3d.links.fast import cpu_winograd
from chainercv_i3d.links.fast import winograd
from chainercv_i3d.utils.threads import cpu_chunks


def _direct(x, w, bias):
    """Float64 ``F.convolution_nd`` of NTHWC ``x``, padded by one, then
    bias and ReLU."""
    y = F.convolution_nd(x.transpose(0, 4, 1, 2, 3).astype(numpy.float64),
                         w.astype(numpy.float64), pad=1).array
    if bias is not None:
        y = numpy.maximum(y + bias[None, :, None, None, None], 0)
    return y.transpose(0, 2, 3, 4, 1)


def _numpy_passes(x, u, bias):
    """The numpy implementation (what float16 still runs)."""
    previous = winograd.USE_NUMBA
    winograd.USE_NUMBA = False
    try:
        return winograd.winograd_conv(numpy.ascontiguousarray(x), u, bias)
    finally:
        winograd.USE_NUMBA = previous


@pytest.mark.parametrize('shape', [
    (2, 1, 7, 7, 8, 5), (2, 2, 9, 13, 16, 12), (2, 5, 9, 13, 7, 9),
    (1, 5, 30, 31, 16, 8), (1, 3, 8, 8, 4, 4)])
@pytest.mark.parametrize('slice_in', [False, True])
@pytest.mark.parametrize('slice_out', [False, True])
@pytest.mark.parametrize('relu', [False, True])
@pytest.mark.parametrize('threads', [False, True])
def test_matches_direct(shape, slice_in, slice_out, relu, threads):
    n, t, h, w, c, o = shape
    rng = numpy.random.RandomState(sum(shape))
    # A channel slice of a larger array as input (as Inception blocks
    # pass) and as output.
    merged = rng.randn(n, t, h, w, c + 5).astype(numpy.float32)
    x = merged[..., 3:3 + c] if slice_in else \
        numpy.ascontiguousarray(merged[..., :c])
    weight = rng.randn(o, c, 3, 3, 3).astype(numpy.float32)
    bias = rng.randn(o).astype(numpy.float32) if relu else None
    u = winograd.winograd_weight(weight)
    canvas = numpy.full((n, t, h, w, o + 7), 7, numpy.float32)
    out = canvas[..., 2:2 + o] if slice_out else None
    if threads:
        with cpu_chunks(numpy):
            y = winograd.winograd_conv(x, u, bias, out)
    else:
        y = winograd.winograd_conv(x, u, bias, out)
    if slice_out:
        assert y is out
        assert (canvas[..., :2] == 7).all()
        assert (canvas[..., 2 + o:] == 7).all()
    expected = _direct(x, weight, bias)
    scale = numpy.abs(expected).max()
    assert numpy.abs(y - expected).max() <= 1e-6 * scale
    # The same transforms in the same order: equal to the numpy passes up
    # to the products' summation order.
    assert numpy.abs(y - _numpy_passes(x, u, bias)).max() <= 1e-6 * scale


@pytest.mark.parametrize('stack_below', [0, 10 ** 9])
def test_both_layouts(monkeypatch, stack_below):
    """Per-frame views and stacked tiles, in several chunks of rows and
    frames."""
    monkeypatch.setattr(cpu_winograd, 'STACK_BELOW_TILES', stack_below)
    monkeypatch.setattr(cpu_winograd, 'CHUNK_ELEMENTS', 2 ** 12)
    monkeypatch.setattr(cpu_winograd, 'PRODUCT_TILES', 8)
    rng = numpy.random.RandomState(1)
    x = rng.randn(2, 6, 11, 10, 6).astype(numpy.float32)
    weight = rng.randn(9, 6, 3, 3, 3).astype(numpy.float32)
    bias = rng.randn(9).astype(numpy.float32)
    with cpu_chunks(numpy):
        assert len(cpu_winograd._chunks(x.shape, 9)) > 4
        y = winograd.winograd_conv(x, winograd.winograd_weight(weight), bias)
    expected = _direct(x, weight, bias)
    assert numpy.abs(y - expected).max() <= 1e-6 * numpy.abs(expected).max()


def test_read_only_input():
    rng = numpy.random.RandomState(2)
    x = rng.randn(1, 2, 5, 5, 4).astype(numpy.float32)
    x.flags.writeable = False
    weight = rng.randn(3, 4, 3, 3, 3).astype(numpy.float32)
    y = winograd.winograd_conv(x, winograd.winograd_weight(weight), None)
    expected = _direct(x, weight, None)
    assert numpy.abs(y - expected).max() <= 1e-6 * numpy.abs(expected).max()
