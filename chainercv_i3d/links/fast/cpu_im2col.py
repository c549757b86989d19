"""The fast path's im2col convolution on a CPU, channels-last, compiled.

Any TensorFlow-SAME convolution of a ``(N, T, H, W, C)`` input (in I3D: the
stem, 7x7x7 with stride 2 on 3 channels, and the 3x3x3 ones on fewer than
64 channels), with the result and arguments of
:func:`chainercv_i3d.links.fast.forward.conv_im2col`.

The work runs in chunks of a few output rows times a group of output
frames. A numba kernel writes the chunk's im2col straight from the input
(SAME padding by bounds: spatial taps outside the input are written as
zeros, no padded copy of the input is made): for each output position, the
2D im2col (taps ``(dh, dw, c)``, ``kw * C`` contiguous values per ``dh``)
of every input frame the chunk's output frames read, frame after frame.
The taps ``(dt, dh, dw, c)`` of output frame ``t`` are then a window of
consecutive input frames in each position's row: single-threaded BLAS reads
that window in place (a strided view with a leading dimension), so each
input frame is copied once per chunk instead of ``kt / st`` times (3.5 for
the stem), and the taps in the temporal padding are left out of the
products (with the matching rows of the weight). The product is written
straight into ``out`` (a channel slice is fine), then bias and ReLU are
applied while the chunk is in the cache. Chunks run in the threads of
:func:`chainercv_i3d.utils.threads.run_chunks`, each thread with its own
im2col buffer.

With a temporal stride (the stem) the work instead goes input frame by
input frame (:func:`_conv_per_input_frame`): one product per input frame
by its temporal taps' weights side by side, added into the output frames
(the stem at 1x64, 2 cores: 0.337 s against 0.356 s by frame groups).
"""

import threading

import numba
from numba import uintp
import numpy

from chainercv_i3d.functions.tf_same_padding import same_output_shape
from chainercv_i3d.functions.tf_same_padding import same_padding_nd
from chainercv_i3d.utils.threads import run_chunks
from chainercv_i3d.utils.threads import workers

# Output positions (whole output rows) a chunk aims at: BLAS runs the
# products fastest with a few hundred rows (measured on the stem at 1x64,
# 2 cores: 448 as fast as 896, 224 3% slower, 112 10%; and on the 3x3x3
# layers of 16 to 48 channels).
CHUNK_POSITIONS = 448
# Upper bound of one chunk's im2col, in elements (4 MiB float32, one
# buffer per thread); a chunk holds at least the input frames of one output
# frame. With stride 1 a smaller im2col stays in the cache (32 -> 96
# channels at 32x28x28: 0.0235 s with 2 ** 20, 0.0261 with 2 ** 22).
CHUNK_ELEMENTS = 2 ** 20
# The bound with a temporal stride (the stem, 16 MiB float32): more output
# frames per chunk copy each input frame fewer times (the stem at 1x64 took
# 0.394 s with 2 ** 20, 0.377 with 2 ** 21, 0.373 with 2 ** 22, 0.369 with
# 2 ** 23; 2 cores, one run).
STRIDED_CHUNK_ELEMENTS = 2 ** 22
# With a temporal stride: convolve input frame by input frame
# (:func:`_conv_per_input_frame`) rather than by groups of output frames.
PER_INPUT_FRAME = True
# Output positions (whole output rows) of such a chunk (the stem at 1x64,
# 2 cores, min of 4: 448 0.345 s, 896 0.337 s, 1344 0.356 s, 1792 0.384 s).
STRIDED_CHUNK_POSITIONS = 896
# Chunks per thread that small layers are cut into, at least (so that the
# threads finish together; 2 measured faster than 4 on the 3x3x3 layers at
# 8x7x7 and 16x14x14).
MIN_CHUNKS_PER_THREAD = 2
# The im2col kernel copies in blocks of this many values (8 loads, then 8
# stores: one vector move); its buffer has this much room at the end.
COPY_RUN = 8
# Values of a 64-byte cache line (float32); the im2col's rows start on one.
CACHE_LINE = 16

_local = threading.local()


def cpu_conv_im2col(x, weight, ksize, stride, bias, out=None):
    """A SAME convolution, channels-last, on numpy arrays, then bias + ReLU.

    Args:
        x: ``(N, T, H, W, C)`` float32 or float64, any strides (a channel
            slice is copied once, contiguous).
        weight: ``(kt * kh * kw * C, O)``, rows in the order ``(dt, dh, dw,
            c)``, of ``x``'s dtype.
        ksize (tuple of int): ``(kt, kh, kw)``.
        stride (tuple of int): ``(st, sh, sw)``.
        bias: ``(O,)`` float32 added, followed by ReLU; None: neither.
        out: ``(N, T', H', W', O)`` to write to (its last axis contiguous,
            for example a channel slice); a new array if None.

    Returns:
        ``(N, T', H', W', O)``, ``T' = ceil(T / st)`` and so on.
    """
    n, t, h, w, c = x.shape
    kt, kh, kw = (int(k) for k in ksize)
    st, sh, sw = (int(s) for s in stride)
    o = weight.shape[1]
    (pt, _), (ph, _), (pw, _) = same_padding_nd((t, h, w), ksize, stride)
    out_t, out_h, out_w = same_output_shape((t, h, w), stride)
    x = numpy.ascontiguousarray(x)
    weight = numpy.ascontiguousarray(weight, dtype=x.dtype)
    if bias is not None:
        bias = numpy.ascontiguousarray(bias, dtype=numpy.float32)
    shape = (n, out_t, out_h, out_w, o)
    if out is None:
        y = numpy.empty(shape, x.dtype)
    elif _rows_mergeable(out):
        y = out
    else:  # strides BLAS cannot write: through a contiguous array
        y = numpy.empty(shape, x.dtype)
    taps = kh * kw * c
    if st > 1 and PER_INPUT_FRAME:
        _conv_per_input_frame(x, weight, (kt, kh, kw), (st, sh, sw),
                              (pt, ph, pw), bias, y)
        if out is not None and y is not out:
            out[...] = y
            return out
        return y

    rows = max(1, min(out_h, CHUNK_POSITIONS // out_w))
    # Output frames per chunk: as many as the im2col bound allows.
    bound = STRIDED_CHUNK_ELEMENTS if st > 1 else CHUNK_ELEMENTS
    frames = 1
    while frames < out_t and rows * out_w * taps * (
            frames * st + kt) <= bound:
        frames += 1
    pieces = -(-out_t // frames) * -(-out_h // rows) * n
    want = workers() * MIN_CHUNKS_PER_THREAD if workers() > 1 else 1
    while pieces < want and (frames > 1 or rows > 1):
        if frames > 1:
            frames = -(-frames // 2)
        else:
            rows = -(-rows // 2)
        pieces = -(-out_t // frames) * -(-out_h // rows) * n
    chunks = [(i, f0, min(f0 + frames, out_t), r0, min(r0 + rows, out_h))
              for i in range(n) for f0 in range(0, out_t, frames)
              for r0 in range(0, out_h, rows)]

    def chunk(i, t0, t1, r0, r1):
        f_lo = max(0, t0 * st - pt)
        f_hi = min(t, (t1 - 1) * st - pt + kt)
        nf = f_hi - f_lo
        positions = (r1 - r0) * out_w
        row = _row_length(nf * taps)
        buf = _buffer(positions * row + COPY_RUN, x.dtype)
        cols = buf[:positions * row].reshape(positions, row)
        _fill_cols(x[i], buf, row, f_lo, f_hi, r0, r1, out_w, sh, sw,
                   ph, pw, kh, kw)
        for to in range(t0, t1):
            first = to * st - pt
            d0 = max(0, -first)
            d1 = min(kt, t - first)
            a = cols[:, (first + d0 - f_lo) * taps:(first + d1 - f_lo) * taps]
            target = y[i, to, r0:r1].reshape(positions, o)  # a view
            numpy.matmul(a, weight[d0 * taps:d1 * taps], out=target)
        if bias is not None:
            _bias_relu(y[i, t0:t1, r0:r1], bias)

    run_chunks(chunk, chunks)
    if out is not None and y is not out:
        out[...] = y
        return out
    return y


def _conv_per_input_frame(x, weight, ksize, stride, pads, bias, y):
    """The strided convolution (the stem) input frame by input frame,
    written into ``y`` ``(N, T', H', W', O)`` (rows mergeable).

    Input frame ``f`` is read by the output frames ``t = (f + pt - dt) /
    st`` of one parity class of temporal taps ``dt = r, r + st, ...``
    (``r = (f + pt) % st``). Each chunk (a sample times a block of output
    rows) builds the frame's 2D im2col once, multiplies it once by that
    class's weights side by side (``(taps, n_r * O)``: a better shaped
    product than ``(taps * kt, O)``, with operands that stay in L2) and adds
    each tap's block into its output frame's rows of ``y``, which get bias
    and ReLU after their last input frame. Every input frame is copied and
    multiplied once per chunk: no overlap between frame groups."""
    n, t, h, w, c = x.shape
    kt, kh, kw = ksize
    st, sh, sw = stride
    pt, ph, pw = pads
    _, out_t, out_h, out_w, o = y.shape
    taps = kh * kw * c
    # The weights of each parity class, side by side: column block j is
    # the temporal tap dt = r + j * st.
    classes = []
    for r in range(st):
        dts = range(r, kt, st)
        classes.append(numpy.ascontiguousarray(numpy.concatenate(
            [weight[dt * taps:(dt + 1) * taps] for dt in dts], axis=1))
            if len(dts) else None)
    widest = -(-kt // st) * o
    has_bias = bias is not None
    bias_arr = bias if has_bias else numpy.zeros(o, numpy.float32)

    rows = max(1, min(out_h, STRIDED_CHUNK_POSITIONS // out_w))
    pieces = -(-out_h // rows) * n
    want = workers() * MIN_CHUNKS_PER_THREAD if workers() > 1 else 1
    while pieces < want and rows > 1:
        rows = -(-rows // 2)
        pieces = -(-out_h // rows) * n
    chunks = [(i, r0, min(r0 + rows, out_h))
              for i in range(n) for r0 in range(0, out_h, rows)]
    row = _row_length(taps)

    def chunk(i, r0, r1):
        positions = (r1 - r0) * out_w
        buf = _buffer(positions * row + COPY_RUN, x.dtype)
        cols = buf[:positions * row].reshape(positions, row)[:, :taps]
        zbuf = _buffer(positions * widest, x.dtype, 'products')
        xi = x[i]
        yi = y[i, :, r0:r1]
        _fill_cols(xi, buf, row, 0, 1, r0, r1, out_w, sh, sw, ph, pw, kh,
                   kw)
        for f in range(t):
            r = (f + pt) % st
            base = (f + pt - r) // st  # the output frame of tap j = 0
            j0 = max(0, base - out_t + 1)
            j1 = min(-(-(kt - r) // st), base + 1)
            j1 = max(j0, j1)  # no taps in this class (kt < st)
            z = zbuf[:positions * (j1 - j0) * o].reshape(
                positions, (j1 - j0) * o)
            if j1 > j0:
                numpy.matmul(cols, classes[r][:, j0 * o:j1 * o], out=z)
            _accumulate_fill(z, yi, base - j0, j1 - j0, f, t, st, pt, kt,
                             bias_arr, has_bias, xi, buf, row, r0, r1,
                             out_w, sh, sw, ph, pw, kh, kw)

    run_chunks(chunk, chunks)


@numba.njit(nogil=True, cache=True)
def _accumulate_fill(z, y, t_first, count, f, t, st, pt, kt, bias, has_bias,
                     x, cf, row, r0, r1, out_w, sh, sw, ph, pw, kh, kw):
    """Adds the products ``z`` ``(P, count * O)`` of input frame ``f`` into
    the output frames ``t_first, t_first - 1, ...`` of ``y`` ``(T', R,
    W', O)`` (the chunk's rows): written on their first input frame, added
    after, then bias + ReLU on their last; then writes the im2col of input
    frame ``f + 1`` into ``cf`` (as :func:`_fill_cols`), if there is one."""
    _, nr, nw, o = y.shape
    for j in range(count):
        to = t_first - j
        first = f == max(0, to * st - pt)
        last = f == min(t - 1, to * st - pt + kt - 1)
        off = j * o
        p = 0
        for a in range(nr):
            for b in range(nw):
                v = y[to, a, b]
                zp = z[p]
                if first:
                    for k in range(o):
                        v[k] = zp[off + k]
                else:
                    for k in range(o):
                        v[k] += zp[off + k]
                if last and has_bias:
                    for k in range(o):
                        s = v[k] + bias[k]
                        v[k] = s if s > 0 else 0
                p += 1
    if f + 1 < t:
        _fill_cols(x, cf, row, f + 1, f + 2, r0, r1, out_w, sh, sw, ph, pw,
                   kh, kw)


def _row_length(length):
    """A position's row in the im2col: ``length`` plus ``COPY_RUN`` values
    of room (a copy's overshoot) rounded up to an odd number of cache
    lines (``CACHE_LINE`` values), so that BLAS packing a
    column of the window does not hit the same cache sets row after row
    (a leading dimension of 4608 floats, 16 -> 32 channels, was slow)."""
    lines = -(-(length + COPY_RUN) // CACHE_LINE)
    return (lines + 1 - lines % 2) * CACHE_LINE


def _rows_mergeable(out):
    """Whether ``out[i, t, r0:r1]`` reshapes to ``(positions, O)`` as a
    view with a unit stride along O (what BLAS writes)."""
    s = out.strides
    return s[4] == out.itemsize and s[2] == out.shape[3] * s[3] \
        and s[3] % out.itemsize == 0 and s[3] >= out.shape[4] * s[4]


def _buffer(size, dtype, name='buffer'):
    """This thread's buffer ``name`` of at least ``size`` elements (kept: a
    new large array per chunk would cost its page faults every time)."""
    buf = getattr(_local, name, None)
    if buf is None or buf.dtype != dtype or buf.size < size:
        raw = numpy.empty(size + CACHE_LINE, dtype)
        # Starting on a cache line, as the rows of the im2col then do.
        skip = (-raw.ctypes.data % (CACHE_LINE * 4)) // raw.itemsize
        buf = raw[skip:skip + size]
        setattr(_local, name, buf)
    return buf[:size]


@numba.njit(nogil=True, cache=True)
def _copy_run(dst, d, src, s, count):
    """``dst[d:d + count] = src[s:s + count]`` in blocks of ``COPY_RUN``
    values, each loaded before it is stored, the last block running up to
    ``COPY_RUN - 1`` values past the end in both arrays (the caller leaves
    room and overwrites them). Unsigned indices: numba wraps signed ones
    around (a test per access), which made the copy twice as slow."""
    for b in range(0, count, 8):
        i = uintp(s + b)
        o = uintp(d + b)
        v0 = src[i]
        v1 = src[i + uintp(1)]
        v2 = src[i + uintp(2)]
        v3 = src[i + uintp(3)]
        v4 = src[i + uintp(4)]
        v5 = src[i + uintp(5)]
        v6 = src[i + uintp(6)]
        v7 = src[i + uintp(7)]
        dst[o] = v0
        dst[o + uintp(1)] = v1
        dst[o + uintp(2)] = v2
        dst[o + uintp(3)] = v3
        dst[o + uintp(4)] = v4
        dst[o + uintp(5)] = v5
        dst[o + uintp(6)] = v6
        dst[o + uintp(7)] = v7


@numba.njit(nogil=True, cache=True)
def _zero_run(dst, d, count):
    """``dst[d:d + count] = 0``, as :func:`_copy_run` (overshooting)."""
    for j in range(uintp(d), uintp(d + (count + 7) // 8 * 8)):
        dst[j] = 0


@numba.njit(nogil=True, cache=True)
def _fill_cols(x, cf, row, f_lo, f_hi, r0, r1, out_w, sh, sw, ph, pw, kh,
               kw):
    """Writes the chunk's im2col into the flat buffer ``cf``: ``cf[p * row
    + (f - f_lo) * taps + (dh * kw + dw) * C + c]`` = the input ``x[f, r *
    sh - ph + dh, ow * sw - pw + dw, c]`` (0 outside it) for the output
    positions ``p = (r - r0) * out_w + ow``, ``r0 <= r < r1``, and the input
    frames ``f_lo <= f < f_hi``. ``x`` ``(T, H, W, C)`` is C-contiguous;
    ``cf`` has ``COPY_RUN`` values of room after the last row.

    Frame by frame (the input rows a frame's positions read stay in the
    cache: measured 5% faster on the stem than position by position). A
    run's last block overshoots into the next run of its frame, written
    after it, or into the room that ends each row (``_row_length``)."""
    _, height, width, c = x.shape
    xf = x.ravel()
    run = kw * c
    taps = kh * run
    frame = height * width * c
    size = xf.size
    for f in range(f_lo, f_hi):
        p = 0
        for r in range(r0, r1):
            ih0 = r * sh - ph
            for ow in range(out_w):
                iw0 = ow * sw - pw
                lead = max(0, -iw0) * c  # zeros before the left edge
                end = min(kw, width - iw0) * c  # and after the right edge
                dst0 = p * row + (f - f_lo) * taps
                for dh in range(kh):
                    ih = ih0 + dh
                    dst = dst0 + dh * run
                    if ih < 0 or ih >= height:
                        _zero_run(cf, dst, run)
                        continue
                    src = f * frame + (ih * width + iw0) * c
                    if lead > 0:
                        _zero_run(cf, dst, lead)
                    if src + lead + (end - lead + 7) // 8 * 8 <= size:
                        _copy_run(cf, dst + lead, xf, src + lead, end - lead)
                    else:  # the input's last values: no reading past it
                        for j in range(lead, end):
                            cf[uintp(dst + j)] = xf[uintp(src + j)]
                    if end < run:
                        _zero_run(cf, dst + end, run - end)
                p += 1


@numba.njit(nogil=True, cache=True)
def _bias_relu(y, bias):
    """``y = max(y + bias, 0)`` in place, ``y`` ``(T, H, W, O)`` with a
    unit stride along O."""
    nt, nh, nw, o = y.shape
    for a in range(nt):
        for b in range(nh):
            for d in range(nw):
                v = y[a, b, d]
                for k in range(o):
                    s = v[k] + bias[k]
                    v[k] = s if s > 0 else 0
