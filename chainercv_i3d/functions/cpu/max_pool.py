"""The CPU max pool of training: numba kernels in threads, and its backward.

The same function as ``F.max_pooling_nd`` on an input padded with ``-inf``
(``cover_all=False``), with the same gradient: Chainer builds the im2col of
every window (27 copies of the input for a 3x3x3 pool), takes each window's
``argmax`` (its first maximum in (t, h, w) order; the first ``NaN`` if it
has one) and sends each output's gradient there. Here the forward takes the
maximum along one axis at a time (w, then h, then t), each stage keeping the
first of its taps that reaches the maximum and carrying the winner's tap
index: the first maximum along t, then h, then w is the first in (t, h, w)
order, so even ties (the zeros after a ReLU) route as Chainer routes them.
The forward keeps that index (one byte per output for windows of up to 256
taps, two above) and the backward only scatters each output's gradient
through it. The outputs are identical; an input that is the maximum of
several windows sums their gradients in another order (a float32 rounding
apart).

The forward never materializes the padding: a window's taps outside the
input count as ``-inf``. A window whose every tap is ``-inf`` picks its
first tap, as ``argmax`` does; when that tap is padding its gradient is
dropped, as Chainer drops the gradient of its padding (the backward adds
the gradients into a padded plane, then keeps its inside).

The work runs in threads over chunks of (sample, channel) planes
(:mod:`chainercv_i3d.utils.threads`); each plane goes through all stages
while it is in the cache, and the chunks write disjoint parts of the output
and of the gradient.
"""

import chainer
import numba
import numpy

from chainercv_i3d.functions.dispatch import require_numpy
from chainercv_i3d.utils.threads import chunk_elements
from chainercv_i3d.utils.threads import cpu_chunks
from chainercv_i3d.utils.threads import run_chunks
from chainercv_i3d.utils.threads import split
from chainercv_i3d.utils.threads import workers

# Upper bound of the input of one chunk on a CPU, in elements (2 MiB).
CHUNK_ELEMENTS = 2 ** 19
# Rows shorter than this (elements) pooled with a stride above 1 are pooled
# as with a stride of 1, then subsampled: faster for the 14 and 7 wide rows
# of I3D's MaxPool3d_4a and 5a, slower for the 56 and 28 wide ones of 2a, 3a.
SHORT_ROWS = 16
# Inputs of the frames of one run of the w stage (at least one frame).
GROUP_ELEMENTS = 4096


def max_pool_padded(x, ksize, stride, pads):
    """Max pool of ``x`` padded with ``-inf`` by ``pads`` (numpy arrays).

    Args:
        x (chainer.Variable or numpy.ndarray): Input ``(N, C, T, H, W)``.
        ksize (tuple of int): Window ``(kt, kh, kw)``.
        stride (tuple of int): ``(st, sh, sw)``.
        pads (tuple of tuple of int): ``(before, after)`` per spatial axis,
            each smaller than the window along its axis.

    Returns:
        chainer.Variable: ``(N, C, T', H', W')``, ``T' = (T + before +
        after - kt) // st + 1`` and so on.

    Raises:
        ValueError: On arrays that are not numpy, or a window, stride or
            padding that does not fit the input.
    """
    return CPUMaxPool3D(ksize, stride, pads).apply((x,))[0]


class CPUMaxPool3D(chainer.function_node.FunctionNode):
    """``F.max_pooling_nd(pad(x, pads, -inf), ksize, stride)``, separable.

    The forward keeps ``argmax``: per output, the index of the winning tap
    in its window, ``(dt * kh + dh) * kw + dw``; it retains no input.
    """

    def __init__(self, ksize, stride, pads):
        self.ksize = tuple(int(k) for k in ksize)
        self.stride = tuple(int(s) for s in stride)
        self.pads = tuple((int(b), int(a)) for b, a in pads)
        self.argmax = None
        self._in_shape = None
        self._in_dtype = None

    def check_type_forward(self, in_types):
        chainer.utils.type_check._argname(in_types, ('x',))
        x_type, = in_types
        chainer.utils.type_check.expect(x_type.dtype.kind == 'f',
                                        x_type.ndim == 5)

    def forward(self, inputs):
        x, = inputs
        require_numpy((x,), 'the CPU max pool of '
                      'chainercv_i3d.functions.cpu.max_pool',
                      'chainer.functions.max_pooling_nd')
        self._check(x.shape)
        x = numpy.ascontiguousarray(x)
        y = numpy.empty(x.shape[:2] + self._out_size(x.shape), x.dtype)
        argmax = numpy.empty(y.shape, _index_dtype(self.ksize))
        x_planes, y_planes, arg_planes = (
            _planes(a) for a in (x, y, argmax))
        lowest = x.dtype.type(-numpy.inf)
        geometry = self._geometry()

        def chunk(p0, p1):
            _max_pool_planes(x_planes[p0:p1], y_planes[p0:p1],
                             arg_planes[p0:p1], lowest, *geometry)

        _run_over_planes(chunk, x.shape)
        self.argmax = argmax
        self._in_shape = x.shape
        self._in_dtype = x.dtype
        return y,

    def backward(self, indexes, grad_outputs):
        return CPUMaxPool3DGrad(self).apply(grad_outputs)

    def _check(self, shape):
        for n, k, s, (b, a) in zip(shape[2:], self.ksize, self.stride,
                                   self.pads):
            if k < 1 or s < 1 or not 0 <= b < k or not 0 <= a < k \
                    or n + b + a < k:
                raise ValueError(
                    'a max pool of window {}, stride {} and padding {} does '
                    'not fit an input of spatial shape {}: each padding must '
                    'be smaller than the window and the padded input at least '
                    'as large'.format(self.ksize, self.stride, self.pads,
                                      tuple(shape[2:])))

    def _out_size(self, shape):
        return tuple((n + b + a - k) // s + 1 for n, k, s, (b, a)
                     in zip(shape[2:], self.ksize, self.stride, self.pads))

    def _geometry(self):
        """The kernels' window arguments: ``ksize + stride + befores``."""
        return self.ksize + self.stride + tuple(b for b, _ in self.pads)


class CPUMaxPool3DGrad(chainer.function_node.FunctionNode):
    """The gradient of :class:`CPUMaxPool3D` with respect to ``x``: each
    output's gradient added to the input its window's ``argmax`` names."""

    def __init__(self, pool):
        self.pool = pool

    def forward(self, inputs):
        gy, = inputs
        pool = self.pool
        require_numpy((gy,), 'the gradient of the CPU max pool of '
                      'chainercv_i3d.functions.cpu.max_pool',
                      'chainer.functions.max_pooling_nd')
        gy = numpy.ascontiguousarray(gy, dtype=pool._in_dtype)
        gx = numpy.empty(pool._in_shape, pool._in_dtype)
        gy_planes, arg_planes, gx_planes = (
            _planes(a) for a in (gy, pool.argmax, gx))
        geometry = pool._geometry()

        def chunk(p0, p1):
            _scatter_to_argmax_planes(gy_planes[p0:p1], arg_planes[p0:p1],
                                      gx_planes[p0:p1], *geometry)

        _run_over_planes(chunk, gx.shape)
        return gx,

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'double backpropagation through the CPU max pool of '
            'chainercv_i3d.functions.cpu.max_pool is not implemented; use '
            'chainer.functions.max_pooling_nd for it')


def _index_dtype(ksize):
    """The smallest unsigned type that holds every tap index of a window."""
    return numpy.min_scalar_type(int(numpy.prod(ksize)) - 1)


def _planes(a):
    """``(N * C, T, H, W)`` view of a C-contiguous ``(N, C, T, H, W)``."""
    return a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])


def _run_over_planes(chunk, shape):
    """Calls ``chunk(p0, p1)`` over ranges of (sample, channel) planes, in
    threads: chunks of about ``CHUNK_ELEMENTS`` inputs, as many for each
    thread."""
    planes = shape[0] * shape[1]
    elements = int(numpy.prod(shape))
    with cpu_chunks(numpy):
        rounds = -(-elements // (chunk_elements(CHUNK_ELEMENTS) * workers()))
        run_chunks(chunk, split(planes, workers() * max(1, rounds)))


# Indices cast to unsigned: numba then skips its negative index wraparound
# check, which otherwise keeps LLVM from vectorizing the loops.
_U = numba.types.uintp


@numba.njit(nogil=True, cache=True)
def _max_pool_planes(x, y, argmax, lowest, kt, kh, kw, st, sh, sw,
                     pt, ph, pw):
    """``y[p]``, ``argmax[p]``: the max pool of each plane ``x[p]``
    (``(T, H, W)``), stage by stage, in the cache: w over a few frames,
    h frame by frame, then t (skipped for a window of 1 with stride 1)."""
    planes, t_in, h_in, w_in = x.shape
    t_out, h_out, w_out = y.shape[1:]
    frame_in = h_in * w_in
    frame_out = h_out * w_out
    skip_t = kt == 1 and st == 1
    # Frames per run of the w stage: small frames together (fewer calls),
    # large ones one by one (in the cache).
    group = max(1, min(t_in, GROUP_ELEMENTS // max(1, frame_in)))
    along_w = numpy.empty(group * h_in * w_out, x.dtype)
    along_w_arg = numpy.empty(along_w.size, argmax.dtype)
    # The h stage's output of a whole plane, for the t stage.
    kept = 0 if skip_t else t_in * frame_out
    along_h = numpy.empty(kept, x.dtype)
    along_h_arg = numpy.empty(kept, argmax.dtype)
    # Scratch of _max_of_rows (strided short rows).
    wide = numpy.empty(max(h_in * w_out, t_in * frame_out), x.dtype)
    wide_arg = numpy.empty(wide.size, argmax.dtype)
    x = x.reshape(x.size)
    y = y.reshape(y.size)
    argmax = argmax.reshape(argmax.size)
    for p in range(planes):
        for t in range(t_in):
            if t % group == 0:
                _max_along_w(x, (p * t_in + t) * frame_in,
                             min(group, t_in - t) * h_in, w_in, along_w,
                             along_w_arg, w_out, lowest, kw, sw, pw)
            frame = t % group * h_in * w_out
            if skip_t:
                _max_of_rows(along_w, along_w_arg, frame, h_in, y, argmax,
                             (p * t_out + t) * frame_out, h_out, w_out,
                             lowest, kh, sh, ph, kw, wide, wide_arg)
            else:
                _max_of_rows(along_w, along_w_arg, frame, h_in, along_h,
                             along_h_arg, t * frame_out, h_out, w_out,
                             lowest, kh, sh, ph, kw, wide, wide_arg)
        if not skip_t:
            _max_of_rows(along_h, along_h_arg, 0, t_in, y, argmax,
                         p * t_out * frame_out, t_out, frame_out, lowest,
                         kt, st, pt, kh * kw, wide, wide_arg)


@numba.njit(nogil=True, cache=True)
def _max_along_w(x, x_start, rows, size, y, arg, count, lowest, k, stride,
                 pad):
    """``y[r * count + j]``: the maximum of row ``r`` of ``x`` (``rows`` rows
    of ``size`` from ``x_start``) over taps ``j * stride - pad + d``, ``d <
    k`` (outside the row: ``-inf``); ``arg``: the first ``d`` reaching it.

    The outputs whose taps all lie inside their row run through a
    vectorized loop: over all rows at once when the rows of ``y`` are the
    rows of ``x`` strided (the outputs at the rows' ends, whose taps run
    into the next row, are then redone one by one).
    """
    lo = min(count, -(-pad // stride))
    hi = max(lo, min(count, (size - k + pad) // stride + 1))
    if hi > lo and size == count * stride:
        _max_of_taps(x, x_start - pad, stride, y, arg, lo,
                     (rows - 1) * count + hi, k)
    elif hi > lo:
        for r in range(rows):
            _max_of_taps(x, x_start + r * (size - count * stride) - pad,
                         stride, y, arg, r * count + lo, r * count + hi, k)
    for j in range(lo):
        _max_at_border(x, x_start, rows, size, y, arg, count, j, lowest, k,
                       stride, pad)
    for j in range(hi, count):
        _max_at_border(x, x_start, rows, size, y, arg, count, j, lowest, k,
                       stride, pad)


@numba.njit(nogil=True, cache=True)
def _max_of_taps(x, x_start, stride, y, arg, lo, hi, k):
    """``y[i]``, ``arg[i]`` for ``lo <= i < hi``: the maximum of ``x[x_start
    + i * stride + d]`` over ``d < k`` (all inside ``x``) and the first
    ``d`` reaching it. Windows of 2 and 3 are unrolled, and strides 1 and
    2 passed as constants (inlined, so LLVM vectorizes them)."""
    if k == 3 and stride == 1:
        _max_of_3_taps(x, x_start, 1, y, arg, lo, hi)
    elif k == 3 and stride == 2:
        _max_of_3_taps(x, x_start, 2, y, arg, lo, hi)
    elif k == 3:
        _max_of_3_taps(x, x_start, stride, y, arg, lo, hi)
    elif k == 2 and stride == 2:
        _max_of_2_taps(x, x_start, 2, y, arg, lo, hi)
    elif k == 2:
        _max_of_2_taps(x, x_start, stride, y, arg, lo, hi)
    else:
        for i in range(lo, hi):
            s = x_start + i * stride
            best = x[_U(s)]
            best_d = 0
            for d in range(1, k):
                v = x[_U(s + d)]
                if _beats(v, best):
                    best = v
                    best_d = d
            y[_U(i)] = best
            arg[_U(i)] = best_d


@numba.njit(nogil=True, cache=True, inline='always')
def _max_of_3_taps(x, x_start, stride, y, arg, lo, hi):
    for i in range(lo, hi):
        s = x_start + i * stride
        v0 = x[_U(s)]
        v1 = x[_U(s + 1)]
        v2 = x[_U(s + 2)]
        take1 = _beats(v1, v0)
        v01 = v1 if take1 else v0
        take2 = _beats(v2, v01)
        y[_U(i)] = v2 if take2 else v01
        arg[_U(i)] = 2 if take2 else (1 if take1 else 0)


@numba.njit(nogil=True, cache=True, inline='always')
def _max_of_2_taps(x, x_start, stride, y, arg, lo, hi):
    for i in range(lo, hi):
        s = x_start + i * stride
        v0 = x[_U(s)]
        v1 = x[_U(s + 1)]
        take1 = _beats(v1, v0)
        y[_U(i)] = v1 if take1 else v0
        arg[_U(i)] = 1 if take1 else 0


@numba.njit(nogil=True, cache=True)
def _max_at_border(x, x_start, rows, size, y, arg, count, j, lowest, k,
                   stride, pad):
    """Output ``j`` of every row, as :func:`_max_along_w` defines it, for a
    ``j`` whose window runs outside its row."""
    first = j * stride - pad
    d_lo = max(0, -first)
    d_hi = min(k, size - first)
    for r in range(rows):
        start = x_start + r * size + first
        best = lowest
        best_d = 0
        for d in range(d_lo, d_hi):
            v = x[_U(start + d)]
            if _beats(v, best):
                best = v
                best_d = d
        y[_U(r * count + j)] = best
        arg[_U(r * count + j)] = best_d


@numba.njit(nogil=True, cache=True)
def _max_of_rows(x, x_arg, x_start, size, y, arg, y_start, count, length,
                 lowest, k, stride, pad, weight, wide, wide_arg):
    """Output row ``j < count`` (of ``length``, from ``y_start``): the
    element-wise maximum of the input rows ``j * stride - pad + d`` for ``d
    < k`` (``size`` rows from ``x_start``; rows outside are ``-inf``);
    ``arg``: ``d * weight + x_arg`` of the first row reaching it.

    The rows whose taps all lie inside run through unrolled loops (windows
    of 2 and 3), all at once for a stride of 1 or short rows (``wide``,
    ``wide_arg``: scratch); the others tap by tap.
    """
    lo = min(count, -(-pad // stride))
    hi = max(lo, min(count, (size - k + pad) // stride + 1))
    if k == 2 or k == 3:
        x_first = x_start + (lo * stride - pad) * length
        y_first = y_start + lo * length
        if stride == 1:
            # Consecutive rows: one run over all of them.
            _max_of_inner_rows(x, x_arg, x_first, 0, length, y, arg,
                               y_first, 1, (hi - lo) * length, weight, k)
        elif length < SHORT_ROWS and hi > lo:
            # Every input row's window, as for a stride of 1 (one run,
            # vectorized: short rows one by one are not), then every
            # stride-th row of them.
            wide_rows = (hi - lo - 1) * stride + 1
            _max_of_inner_rows(x, x_arg, x_first, 0, length, wide, wide_arg,
                               0, 1, wide_rows * length, weight, k)
            _copy_rows(wide, wide_arg, stride * length, y, arg, y_first,
                       hi - lo, length)
        else:
            _max_of_inner_rows(x, x_arg, x_first, stride * length, length,
                               y, arg, y_first, hi - lo, length, weight, k)
    else:
        lo = hi = count
    for j in range(count):
        if lo <= j < hi:
            continue
        out = y_start + j * length
        filled = False
        for d in range(k):
            i = j * stride - pad + d
            if not 0 <= i < size:
                continue
            row = x_start + i * length
            if filled:
                _combine_row(x, x_arg, row, y, arg, out, length, d * weight)
            elif d == 0:
                _copy_row(x, x_arg, row, y, arg, out, length)
            else:
                _first_row_after_padding(x, x_arg, row, y, arg, out,
                                         length, d * weight, lowest)
            filled = True
        if not filled:
            # Only along an empty axis: a window of padding only.
            _fill_padding_row(y, arg, out, length, lowest)


@numba.njit(nogil=True, cache=True)
def _max_of_inner_rows(x, x_arg, x_first, x_step, spacing, y, arg, y_first,
                       rows, length, weight, k):
    """``y[y_first + j * length + c]`` for ``j < rows``, ``c < length``: the
    maximum of the ``k`` (2 or 3) taps ``x[x_first + j * x_step + c + d *
    spacing]``; ``arg``: ``d * weight + x_arg`` of the first reaching it."""
    for j in range(rows):
        shift = x_first + j * x_step - (y_first + j * length)
        o_lo = y_first + j * length
        if k == 3:
            for o in range(o_lo, o_lo + length):
                s = o + shift
                v0 = x[_U(s)]
                v1 = x[_U(s + spacing)]
                v2 = x[_U(s + 2 * spacing)]
                take1 = _beats(v1, v0)
                v01 = v1 if take1 else v0
                take2 = _beats(v2, v01)
                y[_U(o)] = v2 if take2 else v01
                arg[_U(o)] = 2 * weight + x_arg[_U(s + 2 * spacing)] \
                    if take2 else (weight + x_arg[_U(s + spacing)] if take1
                                   else x_arg[_U(s)])
        else:
            for o in range(o_lo, o_lo + length):
                s = o + shift
                v0 = x[_U(s)]
                v1 = x[_U(s + spacing)]
                take1 = _beats(v1, v0)
                y[_U(o)] = v1 if take1 else v0
                arg[_U(o)] = weight + x_arg[_U(s + spacing)] if take1 \
                    else x_arg[_U(s)]


@numba.njit(nogil=True, cache=True)
def _copy_rows(x, x_arg, x_step, y, arg, y_first, rows, length):
    """Rows ``j * x_step`` of ``x`` to rows ``j`` of ``y`` from
    ``y_first``."""
    for j in range(rows):
        for c in range(length):
            y[_U(y_first + j * length + c)] = x[_U(j * x_step + c)]
            arg[_U(y_first + j * length + c)] = x_arg[_U(j * x_step + c)]


@numba.njit(nogil=True, cache=True)
def _copy_row(x, x_arg, row, y, arg, out, length):
    for c in range(length):
        y[_U(out + c)] = x[_U(row + c)]
        arg[_U(out + c)] = x_arg[_U(row + c)]


@numba.njit(nogil=True, cache=True)
def _first_row_after_padding(x, x_arg, row, y, arg, out, length, tap,
                             lowest):
    """The first row inside the input, at tap ``tap``, against the padding
    before it: ``-inf`` and index 0, which an all ``-inf`` window keeps."""
    for c in range(length):
        v = x[_U(row + c)]
        take = _beats(v, lowest)
        y[_U(out + c)] = v if take else lowest
        arg[_U(out + c)] = tap + x_arg[_U(row + c)] if take else 0


@numba.njit(nogil=True, cache=True)
def _fill_padding_row(y, arg, out, length, lowest):
    for c in range(length):
        y[out + c] = lowest
        arg[out + c] = 0


@numba.njit(nogil=True, cache=True)
def _combine_row(x, x_arg, row, y, arg, out, length, tap):
    for c in range(length):
        v = x[_U(row + c)]
        best = y[_U(out + c)]
        take = _beats(v, best)
        y[_U(out + c)] = v if take else best
        arg[_U(out + c)] = tap + x_arg[_U(row + c)] if take else \
            arg[_U(out + c)]


@numba.njit(nogil=True, cache=True)
def _beats(v, best):
    """Whether ``v`` replaces the maximum so far, as ``argmax`` decides:
    greater, or the first ``NaN``."""
    return (v > best) | ((v != v) & (best == best))


@numba.njit(nogil=True, cache=True)
def _scatter_to_argmax_planes(gy, argmax, gx, kt, kh, kw, st, sh, sw,
                              pt, ph, pw):
    """``gx[p]``: zeros plus each ``gy[p, o]`` added to the input that
    ``argmax[p, o]`` names (dropped when that is padding).

    The gradients go to a padded plane first, in which every window lies:
    no tap needs a bounds check; its inside is then copied to ``gx[p]``.
    """
    planes, t_in, h_in, w_in = gx.shape
    t_out, h_out, w_out = gy.shape[1:]
    # The padded plane: the extent of the windows (at least the input).
    t_pad = max(t_in + pt, (t_out - 1) * st + kt)
    h_pad = max(h_in + ph, (h_out - 1) * sh + kh)
    w_pad = max(w_in + pw, (w_out - 1) * sw + kw)
    padded = numpy.empty(t_pad * h_pad * w_pad, gx.dtype)
    # The input each tap names, relative to its window's first tap.
    tap_offset = numpy.empty(kt * kh * kw, numpy.int64)
    for dt in range(kt):
        for dh in range(kh):
            for dw in range(kw):
                tap_offset[(dt * kh + dh) * kw + dw] = \
                    (dt * h_pad + dh) * w_pad + dw
    gy = gy.reshape(gy.size)
    argmax = argmax.reshape(argmax.size)
    gx = gx.reshape(gx.size)
    for p in range(planes):
        padded[:] = 0
        for ot in range(t_out):
            for oh in range(h_out):
                first = (ot * st * h_pad + oh * sh) * w_pad
                o = ((p * t_out + ot) * h_out + oh) * w_out
                for ow in range(w_out):
                    padded[_U(first + ow * sw + tap_offset[
                        argmax[_U(o + ow)]])] += gy[_U(o + ow)]
        for t in range(t_in):
            for h in range(h_in):
                row = ((t + pt) * h_pad + h + ph) * w_pad + pw
                out = ((p * t_in + t) * h_in + h) * w_in
                for w in range(w_in):
                    gx[_U(out + w)] = padded[_U(row + w)]
