"""The im2col convolution of training (im2col) against Chainer's.

``im2col_correlate`` must equal ``F.convolution_nd`` on the zero-padded
input, and ``im2col_weight_grad`` Chainer's gradient of it with respect to
the weight, to float rounding, for I3D's stem at small sizes and other
kernels, strides and paddings: odd sizes, taps that meet only padding,
output frames that see only padding, kernels wider than one copy run, and
chunks that split the output's frames and rows.
"""

import chainer
import chainer.functions as F
import numpy
import pytest

from chainercv_i3d.functions.cpu import im2col
from chainercv_i3d.utils.threads import cpu_chunks
from chainercv_i3d.utils.threads import workers
from chainercv_i3d.functions.cpu.im2col import im2col_correlate
from chainercv_i3d.functions.cpu.im2col import im2col_weight_grad

# (x shape, W shape, stride, pads)
CASES = [
    # I3D's stem (Conv3d_1a_7x7) on a small clip, TF SAME padding.
    ((2, 3, 9, 23, 23), (4, 3, 7, 7, 7), (2, 2, 2), ((2, 3),) * 3),
    ((1, 2, 6, 9, 8), (3, 2, 2, 3, 1), (2, 3, 1), ((0, 4), (1, 0), (2, 2))),
    ((2, 5, 3, 4, 6), (3, 5, 1, 1, 1), (1, 1, 1), ((0, 0),) * 3),
    ((2, 4, 5, 7, 6), (3, 4, 3, 3, 3), (1, 1, 1), ((1, 1),) * 3),
    # A kernel wider than one copy run along w, strided along w only.
    ((1, 2, 3, 4, 13), (2, 2, 1, 2, 9), (1, 1, 2), ((0, 0), (1, 1), (4, 3))),
    # Padding wider than the kernel: whole output frames of padding.
    ((1, 2, 2, 5, 5), (2, 2, 2, 2, 2), (1, 1, 1), ((3, 3), (0, 1), (1, 0))),
    ((1, 1, 4, 3, 3), (1, 1, 4, 3, 3), (3, 1, 1), ((0, 0),) * 3),
]
TOLERANCE = {numpy.float32: 1e-5, numpy.float64: 1e-12}


def _case_arrays(case, dtype, seed=0):
    x_shape, w_shape, stride, pads = case
    rng = numpy.random.RandomState(seed)
    x = rng.randn(*x_shape).astype(dtype)
    W = rng.randn(*w_shape).astype(dtype)
    return x, W


def _chainer_forward_and_weight_grad(x, W, stride, pads, gy=None):
    padded = numpy.pad(x, ((0, 0), (0, 0)) + tuple(pads))
    w_var = chainer.Variable(W.copy())
    y = F.convolution_nd(padded, w_var, stride=stride, pad=0)
    if gy is None:
        return y.array, None
    y.grad = gy
    y.backward()
    return y.array, w_var.grad


def _relative_error(actual, expected):
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    return numpy.abs(actual - expected).max() / numpy.abs(expected).max()


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
@pytest.mark.parametrize('case', CASES)
def test_matches_chainer_forward_and_weight_grad(case, dtype):
    _, w_shape, stride, pads = case
    x, W = _case_arrays(case, dtype)
    y_ref, _ = _chainer_forward_and_weight_grad(x, W, stride, pads)
    gy = numpy.random.RandomState(1).randn(*y_ref.shape).astype(dtype)
    _, gw_ref = _chainer_forward_and_weight_grad(x, W, stride, pads, gy)

    y = im2col_correlate(x, W, stride, pads)
    gw = im2col_weight_grad(x, gy, w_shape, stride, pads)

    assert _relative_error(y, y_ref) <= TOLERANCE[dtype]
    assert _relative_error(gw, gw_ref) <= TOLERANCE[dtype]


@pytest.mark.parametrize('positions,elements', [(1, 1), (23, 2 ** 12)])
def test_chunks_that_split_frames_and_rows(monkeypatch, positions,
                                           elements):
    # Chunks of one output row and one output frame, then of a few rows
    # and frames: every chunk boundary and frame window is crossed.
    monkeypatch.setattr(im2col, 'CHUNK_POSITIONS', positions)
    monkeypatch.setattr(im2col, 'CHUNK_ELEMENTS', elements)
    case = CASES[0]
    _, w_shape, stride, pads = case
    x, W = _case_arrays(case, numpy.float64, seed=2)
    y_ref, _ = _chainer_forward_and_weight_grad(x, W, stride, pads)
    gy = numpy.random.RandomState(3).randn(*y_ref.shape)
    _, gw_ref = _chainer_forward_and_weight_grad(x, W, stride, pads, gy)

    assert _relative_error(im2col_correlate(x, W, stride, pads),
                           y_ref) <= 1e-12
    assert _relative_error(im2col_weight_grad(x, gy, w_shape, stride, pads),
                           gw_ref) <= 1e-12


def test_non_contiguous_inputs():
    case = CASES[3]
    _, w_shape, stride, pads = case
    x, W = _case_arrays(case, numpy.float64)
    # The same values through views with other strides.
    x_view = numpy.asfortranarray(x)
    w_view = numpy.asfortranarray(W)
    y_ref, _ = _chainer_forward_and_weight_grad(x, W, stride, pads)
    gy = numpy.random.RandomState(1).randn(*y_ref.shape)
    _, gw_ref = _chainer_forward_and_weight_grad(x, W, stride, pads, gy)

    assert _relative_error(im2col_correlate(x_view, w_view, stride, pads),
                           y_ref) <= 1e-12
    assert _relative_error(im2col_weight_grad(
        x_view, numpy.asfortranarray(gy), w_shape, stride, pads),
        gw_ref) <= 1e-12


def test_keeps_the_threads_of_an_enclosing_cpu_chunks(monkeypatch):
    # Called from a training node already inside cpu_chunks, the chunks
    # must still run in all its threads (a nested cpu_chunks would see
    # BLAS limited to one thread).
    threads_used = []
    run_chunks = im2col.run_chunks

    def recording_run_chunks(function, chunks):
        threads_used.append(len(chunks))
        return run_chunks(function, chunks)

    monkeypatch.setattr(im2col, 'run_chunks', recording_run_chunks)
    x, W = _case_arrays(CASES[0], numpy.float32)
    _, _, stride, pads = CASES[0]
    alone = im2col_correlate(x, W, stride, pads)
    with cpu_chunks(numpy):
        threads = workers()
        inside = im2col_correlate(x, W, stride, pads)

    assert threads_used == [threads, threads]
    numpy.testing.assert_array_equal(inside, alone)


def test_empty_batch_and_no_output_channels():
    x, W = _case_arrays(CASES[1], numpy.float32)
    _, w_shape, stride, pads = CASES[1]
    y = im2col_correlate(x, W, stride, pads)

    empty_batch = im2col_correlate(x[:0], W, stride, pads)
    no_channels = im2col_correlate(x, W[:0], stride, pads)
    gw = im2col_weight_grad(x[:0], y[:0], w_shape, stride, pads)

    assert empty_batch.shape == (0,) + y.shape[1:]
    assert no_channels.shape == (y.shape[0], 0) + y.shape[2:]
    assert gw.shape == w_shape and gw.dtype == x.dtype and not gw.any()


def test_bad_inputs_raise_value_error():
    x, W = _case_arrays(CASES[3], numpy.float32)
    stride, pads = (1, 1, 1), ((1, 1),) * 3
    gy = numpy.zeros((2, 3, 5, 7, 6), numpy.float32)
    bad_calls = {
        'x must': lambda: im2col_correlate(x[0], W, stride, pads),
        'float32 or float64': lambda: im2col_correlate(
            x.astype(numpy.int32), W, stride, pads),
        "x's dtype": lambda: im2col_correlate(
            x, W.astype(numpy.float64), stride, pads),
        'C = 4': lambda: im2col_correlate(x, W[:, :2], stride, pads),
        'padded input': lambda: im2col_correlate(
            x, numpy.zeros((3, 4, 8, 3, 3), numpy.float32), stride, pads),
        'stride must': lambda: im2col_correlate(x, W, (1, 0, 1), pads),
        'pairs': lambda: im2col_correlate(x, W, stride, ((1, -1),) * 3),
        'gy must': lambda: im2col_weight_grad(
            x, gy[:, :, :4], W.shape, stride, pads),
        'dtype float32': lambda: im2col_weight_grad(
            x, gy.astype(numpy.float64), W.shape, stride, pads),
        'w_shape must': lambda: im2col_weight_grad(
            x, gy, (3, 4, 3, 3), stride, pads),
    }
    for message, call in bad_calls.items():
        with pytest.raises(ValueError, match=message):
            call()
