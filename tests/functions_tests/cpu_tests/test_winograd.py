"""Winograd's 3x3x3 convolution of training (cpu_winograd) against
Chainer's ``F.convolution_nd(x, W, pad=1)``: the values and both gradients,
in float64 (to its rounding: the transforms are exact up to it) and float32,
on odd, even and single-pixel sizes, and however the work is cut into
chunks."""

import chainer
import chainer.functions as F
import numpy
import pytest

from chainercv_i3d.functions.cpu import winograd as cpu_winograd
from chainercv_i3d.utils.threads import cpu_chunks
from chainercv_i3d.links.fast.winograd import winograd_weight

SHAPES = [(2, 3, 5, 7, 9), (1, 5, 3, 6, 6), (2, 4, 1, 1, 1), (1, 2, 4, 2, 3),
          (1, 3, 2, 1, 5)]


def _chainer(x, W, gy):
    x, W = chainer.Variable(x), chainer.Variable(W)
    y = F.convolution_nd(x, W, pad=1)
    y.grad = gy
    y.backward()
    return y.array, x.grad, W.grad


def _winograd(x, W, gy):
    with cpu_chunks(numpy):
        return (cpu_winograd.winograd_correlate(x, W),
                cpu_winograd.winograd_input_grad(W, gy),
                cpu_winograd.winograd_weight_grad(x, gy))


def _inputs(shape, out_channels, dtype, seed=0):
    rng = numpy.random.RandomState(seed)
    x = rng.randn(*shape).astype(dtype)
    W = rng.randn(out_channels, shape[1], 3, 3, 3).astype(dtype)
    gy = rng.randn(shape[0], out_channels, *shape[2:]).astype(dtype)
    return x, W, gy


def _relative_error(actual, expected):
    return numpy.abs(actual - expected).max() / numpy.abs(expected).max()


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('dtype,tolerance', [(numpy.float64, 1e-13),
                                             (numpy.float32, 1e-5)])
def test_values_and_gradients_match_chainer(shape, dtype, tolerance):
    x, W, gy = _inputs(shape, 4, dtype)
    for actual, expected in zip(_winograd(x, W, gy), _chainer(x, W, gy)):
        assert actual.dtype == dtype
        assert actual.shape == expected.shape
        assert _relative_error(actual, expected) < tolerance


@pytest.mark.parametrize('chunk_elements', [1, 3000, 40000])
def test_any_chunking_gives_the_same_result(monkeypatch, chunk_elements):
    # Chunks of single rows of tiles, of several rows and frames, and
    # whole samples: the tile-row bands and the one-frame borders in time
    # of every chunk must fit together.
    x, W, gy = _inputs((2, 3, 5, 9, 11), 4, numpy.float64, seed=1)
    expected = _winograd(x, W, gy)
    monkeypatch.setattr(cpu_winograd, 'CHUNK_ELEMENTS', chunk_elements)
    with cpu_chunks(numpy):
        chunks = cpu_winograd._chunks(x.shape, 4)
    assert len(chunks) > 1
    for actual, reference in zip(_winograd(x, W, gy), expected):
        assert _relative_error(actual, reference) < 1e-13


def test_chunks_cover_every_output_once():
    shape = (2, 3, 7, 13, 5)
    with cpu_chunks(numpy):
        chunks = cpu_winograd._chunks(shape, 6)
    covered = numpy.zeros((2, 7, 7), int)  # sample, frame, row of tiles
    for i, t0, t1, th0, th1 in chunks:
        covered[i, t0:t1, th0:th1] += 1
    assert (covered == 1).all()


def test_weight_tiles_are_the_fast_paths_transform():
    # The inference path's transform (tensordot in float64), laid out as
    # rows of output channels.
    W = numpy.random.RandomState(2).randn(5, 3, 3, 3, 3).astype(numpy.float32)
    with cpu_chunks(numpy):
        u = cpu_winograd.weight_tiles(W, flip=False)
    expected = winograd_weight(W).transpose(0, 2, 1)
    numpy.testing.assert_allclose(u, expected, rtol=1e-6, atol=1e-7)


def test_flipped_weight_tiles_transform_the_kernel_of_gx():
    W = numpy.random.RandomState(3).randn(5, 3, 3, 3, 3)
    flipped = numpy.ascontiguousarray(
        W.transpose(1, 0, 2, 3, 4)[:, :, ::-1, ::-1, ::-1])
    with cpu_chunks(numpy):
        numpy.testing.assert_array_equal(
            cpu_winograd.weight_tiles(W, flip=True),
            cpu_winograd.weight_tiles(flipped, flip=False))
