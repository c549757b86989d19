"""im2col convolutions of training on a CPU, for large kernels and strides.

The forward and the weight gradient of ``F.convolution_nd`` on an input
padded with zeros, for any kernel, stride and padding; written for I3D's
stem (7x7x7, stride 2, 3 -> 64 channels), whose input needs no gradient.

The work runs in chunks of a few output rows (all channels and output
frames, or a group of frames for long clips): a numba kernel writes the
chunk's im2col straight from the input (each input row it reads padded
once, in a small buffer), then single-threaded BLAS makes the products. The
chunks run in threads (:mod:`chainercv_i3d.utils.threads`: those of the
caller's :func:`cpu_chunks` when it has one, else of the functions' own),
each with its own buffers; in the forward each thread pulls the next chunk
when done, in the weight gradient each sums a fixed run of chunks (so that
the rounding is the same in every run).

A chunk's im2col holds, for its output rows, the 2D im2col (taps ``(c, dh,
dw)``) of every input frame its output frames read, frame after frame. The
kernel taps ``(dt, c, dh, dw)`` of output frame ``t`` then meet a window of
consecutive input frames: a window of that one im2col, which the product
reads in place. Each input frame is copied once per chunk instead of once
per temporal tap (``kt / st`` = 3.5 times fewer copies for the stem), and
taps in the temporal padding (whole frames of zeros) are left out of the
products (9% of the stem's work on 16 frames).

The layouts are those OpenBLAS runs fastest here (measured, one thread):
the forward's im2col is ``(positions, taps)``, its product ``(positions,
O)`` transposed into ``y``; the weight gradient's im2col is ``(taps,
positions)``, times ``gy``'s rows transposed.
"""

import contextlib
import threading

import numba
import numpy

from chainercv_i3d.utils.threads import chunk_elements
from chainercv_i3d.utils.threads import cpu_chunks
from chainercv_i3d.utils.threads import run_chunks
from chainercv_i3d.utils.threads import split
from chainercv_i3d.utils.threads import workers

# Upper bound of one chunk's im2col on a CPU, in elements (4 MiB float32;
# measured as fast as 8 MiB on 16 frames, faster on 64); a chunk holds at
# least the input frames of one output frame.
CHUNK_ELEMENTS = 2 ** 20
# Output positions (whole output rows) a chunk aims at: the products run
# fastest with a few hundred (measured with 64 output channels).
CHUNK_POSITIONS = 448
# Chunks per thread that small layers are cut into, at least.
MIN_CHUNKS_PER_THREAD = 4
# The forward's kernel copies the taps along w in runs of this many values
# (one vector move; :func:`_fill_position_rows` spells out its 8 loads).
COPY_RUN = 8


def im2col_correlate(x, W, stride, pads):
    """``F.convolution_nd(pad(x, pads), W, stride)`` on numpy arrays.

    Args:
        x (numpy.ndarray): Input ``(N, C, T, H, W)``, float32 or float64.
        W (numpy.ndarray): Weight ``(O, C, kt, kh, kw)``, of ``x``'s dtype.
        stride (tuple of int): ``(st, sh, sw)``.
        pads (tuple of tuple of int): ``(before, after)`` zeros per spatial
            axis.

    Returns:
        numpy.ndarray: ``y`` ``(N, O, T', H', W')``, ``T' = (T + before +
        after - kt) // st + 1`` and so on.

    Raises:
        ValueError: On arrays that are not float32/float64 numpy arrays of
            one dtype, shapes that do not match, a bad stride or padding,
            or a kernel larger than the padded input.
    """
    _check_input(x, stride, pads)
    if not isinstance(W, numpy.ndarray) or W.dtype != x.dtype:
        raise ValueError('W must be a numpy array of x\'s dtype {}, got '
                         '{} {}'.format(x.dtype, type(W).__name__,
                                        getattr(W, 'dtype', None)))
    _check_weight_shape(x.shape, W.shape, pads, 'W.shape')
    x = numpy.ascontiguousarray(x)
    y = numpy.empty((x.shape[0], W.shape[0]) + _output_size(
        x.shape, W.shape, stride, pads), x.dtype)
    weight = _weight_taps(W)
    with _threads():
        plan = _Plan(x.shape, W.shape, stride, pads)

        def work(next_task):
            cols = numpy.empty(plan.max_positions * plan.max_row_length,
                               x.dtype)
            product = numpy.empty(plan.max_positions * plan.o, x.dtype)
            for i, t0, t1, r0, r1 in iter(next_task, None):
                _correlate_chunk(plan, x[i], weight, y[i], t0, t1, r0, r1,
                                 cols, product)

        _run_pulling_tasks(work, plan.tasks())
    return y


def im2col_weight_grad(x, gy, w_shape, stride, pads):
    """The gradient of :func:`im2col_correlate` with respect to ``W``.

    Args:
        x (numpy.ndarray): Input ``(N, C, T, H, W)``, float32 or float64.
        gy (numpy.ndarray): Gradient of the output ``(N, O, T', H', W')``,
            of ``x``'s dtype.
        w_shape (tuple of int): ``(O, C, kt, kh, kw)``.
        stride (tuple of int): ``(st, sh, sw)``.
        pads (tuple of tuple of int): ``(before, after)`` zeros per spatial
            axis.

    Returns:
        numpy.ndarray: ``gW`` ``(O, C, kt, kh, kw)``, of ``x``'s dtype.

    Raises:
        ValueError: As :func:`im2col_correlate`, and on a ``gy`` that is not
            a numpy array of the output's shape and ``x``'s dtype.
    """
    _check_input(x, stride, pads)
    w_shape = tuple(int(s) for s in w_shape)
    _check_weight_shape(x.shape, w_shape, pads, 'w_shape')
    expected = (x.shape[0], w_shape[0]) + _output_size(
        x.shape, w_shape, stride, pads)
    if not isinstance(gy, numpy.ndarray) or gy.dtype != x.dtype \
            or gy.shape != expected:
        raise ValueError(
            'gy must be a numpy array of shape {} and dtype {} (the '
            'output of this convolution), got {} {} {}'.format(
                expected, x.dtype, type(gy).__name__,
                getattr(gy, 'dtype', None), getattr(gy, 'shape', None)))
    x = numpy.ascontiguousarray(x)
    gy = numpy.ascontiguousarray(gy)
    with _threads():
        plan = _Plan(x.shape, w_shape, stride, pads)
        tasks = plan.tasks()
        # Each thread sums a fixed run of chunks, and the runs' sums are
        # added in order: the same rounding in every run (chunks pulled as
        # threads come free would make a resumed training differ).
        groups = split(len(tasks), workers())
        partials = [None] * len(groups)

        def work(group, k0, k1):
            cols = numpy.empty(plan.max_positions * plan.max_frames_in
                               * plan.taps, x.dtype)
            total = numpy.zeros((plan.kt * plan.taps, plan.o), x.dtype)
            product = numpy.empty_like(total)
            for i, t0, t1, r0, r1 in tasks[k0:k1]:
                _weight_grad_chunk(plan, x[i], gy[i], total, t0, t1, r0, r1,
                                   cols, product)
            partials[group] = total

        run_chunks(work, [(g,) + bounds for g, bounds in enumerate(groups)])
        total = numpy.zeros((plan.kt * plan.taps, plan.o), x.dtype)
        for partial in partials:
            total += partial
    return _weight_from_taps(total, w_shape)


def _threads():
    """:func:`cpu_chunks` unless the caller is already in it with threads:
    nested, it would see BLAS's one thread and run the chunks in order."""
    if workers() > 1:
        return contextlib.nullcontext()
    return cpu_chunks(numpy)


def _check_input(x, stride, pads):
    """Raises ValueError unless ``x`` is a float 5D numpy array and
    ``stride`` and ``pads`` are 3 positive ints and 3 pairs of ints >= 0."""
    if not isinstance(x, numpy.ndarray) or x.ndim != 5 \
            or x.dtype not in (numpy.float32, numpy.float64) \
            or x.shape[1] < 1:
        raise ValueError(
            'x must be a float32 or float64 numpy array (N, C, T, H, W) '
            'with C >= 1, got {} {} {}'.format(
                type(x).__name__, getattr(x, 'dtype', None),
                getattr(x, 'shape', None)))
    try:
        stride_ok = len(stride) == 3 and min(stride) >= 1
        pads_ok = len(pads) == 3 and all(
            len(p) == 2 and min(p) >= 0 for p in pads)
    except TypeError:
        stride_ok = pads_ok = False
    if not stride_ok or not pads_ok:
        raise ValueError(
            'stride must be 3 positive ints and pads 3 (before, after) '
            'pairs of ints >= 0, got stride={} pads={}'.format(stride, pads))


def _check_weight_shape(x_shape, w_shape, pads, name):
    """Raises ValueError unless ``w_shape`` is ``(O, C, kt, kh, kw)`` with
    ``x``'s ``C`` and a kernel within the padded input."""
    padded = tuple(n + b + a for n, (b, a) in zip(x_shape[2:], pads))
    if len(w_shape) != 5 or w_shape[1] != x_shape[1] \
            or min(w_shape[2:]) < 1 \
            or any(k > p for k, p in zip(w_shape[2:], padded)):
        raise ValueError(
            '{} must be (O, C, kt, kh, kw) with C = {} (x\'s channels) '
            'and a kernel of at least 1 and at most the padded input {}, '
            'got {}'.format(name, x_shape[1], padded, tuple(w_shape)))


def _output_size(x_shape, w_shape, stride, pads):
    """``(T', H', W')`` of the convolution."""
    return tuple((n + b + a - k) // s + 1 for n, k, s, (b, a) in zip(
        x_shape[2:], w_shape[2:], stride, pads))


class _Plan(object):
    """The sizes of one convolution and of its chunks ``(sample i, output
    frames t0:t1, output rows r0:r1)``, each with all output columns."""

    def __init__(self, x_shape, w_shape, stride, pads):
        self.n, self.c, self.t_in, self.h_in, self.w_in = x_shape
        self.o, _, self.kt, self.kh, self.kw = w_shape
        self.stride = tuple(int(s) for s in stride)
        self.pads = tuple((int(b), int(a)) for b, a in pads)
        self.out_size = _output_size(x_shape, w_shape, self.stride,
                                     self.pads)
        # Taps of one input frame: (c, dh, dw).
        self.taps = self.c * self.kh * self.kw
        t_out, h_out, w_out = self.out_size
        self.rows = max(1, min(h_out, CHUNK_POSITIONS // w_out))
        # As many output frames as keep their input frames' im2col within
        # the budget.
        st = self.stride[0]
        frames_in = chunk_elements(CHUNK_ELEMENTS) // (
            self.taps * self.rows * w_out)
        self.frames = max(1, min(t_out, (frames_in - self.kt) // st + 1))
        # Small layers: smaller chunks (fewer frames first, they share
        # input frames less), until every thread has a few.
        while len(self.tasks()) < MIN_CHUNKS_PER_THREAD * workers() \
                and self.frames * self.rows > 1:
            if self.frames > 1:
                self.frames = -(-self.frames // 2)
            else:
                self.rows = -(-self.rows // 2)
        self.max_positions = self.rows * w_out
        self.max_frames_in = min(self.t_in, (self.frames - 1) * st + self.kt)
        # The forward's rows end with room for a last copy run's overflow.
        self.max_row_length = self.row_length(self.max_frames_in)

    def tasks(self):
        """Every chunk ``(i, t0, t1, r0, r1)``."""
        t_out, h_out, _ = self.out_size
        return [(i, t0, min(t0 + self.frames, t_out), r0,
                 min(r0 + self.rows, h_out))
                for i in range(self.n)
                for t0 in range(0, t_out, self.frames)
                for r0 in range(0, h_out, self.rows)]

    def input_frames(self, t0, t1):
        """``[f0, f1)``: the input frames output frames ``t0:t1`` read."""
        st, pt = self.stride[0], self.pads[0][0]
        f0 = max(0, t0 * st - pt)
        return f0, max(f0, min(self.t_in, (t1 - 1) * st - pt + self.kt))

    def frame_taps(self, t):
        """``[dt0, dt1)``: output frame ``t``'s temporal taps inside the
        input (empty when it sees only padding)."""
        first = t * self.stride[0] - self.pads[0][0]
        dt0 = min(self.kt, max(0, -first))
        return dt0, max(dt0, min(self.kt, self.t_in - first))

    def row_length(self, frames):
        """Values per row of the forward's im2col of ``frames`` input
        frames: their taps and room for the last copy run's overflow."""
        return frames * self.taps + _overflow(self.kw)

    def kernel_args(self, f0, f1, r0, r1):
        """The arguments of the im2col kernels for one chunk."""
        return (f0, f1, r0, r1, self.stride[1], self.stride[2],
                self.pads[1][0], self.pads[2][0], self.kh, self.kw,
                self.out_size[2])


def _correlate_chunk(plan, x, weight, y, t0, t1, r0, r1, cols, product):
    """``y[:, t0:t1, r0:r1]`` of one sample ``x``, a product per output
    frame from the chunk's im2col."""
    f0, f1 = plan.input_frames(t0, t1)
    positions = (r1 - r0) * plan.out_size[2]
    taps = plan.taps
    row_length = plan.row_length(f1 - f0)
    cols = cols[:positions * row_length].reshape(positions, row_length)
    if f1 > f0:
        _fill_position_rows(x, *plan.kernel_args(f0, f1, r0, r1), cols)
    product = product[:positions * plan.o].reshape(positions, plan.o)
    for t in range(t0, t1):
        dt0, dt1 = plan.frame_taps(t)
        if dt1 == dt0:
            y[:, t, r0:r1] = 0
            continue
        j0 = t * plan.stride[0] - plan.pads[0][0] + dt0 - f0
        numpy.matmul(cols[:, j0 * taps:(j0 + dt1 - dt0) * taps],
                     weight[dt0 * taps:dt1 * taps], out=product)
        y[:, t, r0:r1] = product.T.reshape(y[:, t, r0:r1].shape)


def _weight_grad_chunk(plan, x, gy, total, t0, t1, r0, r1, cols, product):
    """Adds the chunk's ``gW`` (as :func:`_weight_taps` lays it out) to
    ``total``, a product per output frame (in ``product``, of
    ``total``'s shape)."""
    f0, f1 = plan.input_frames(t0, t1)
    if f1 == f0:
        return
    positions = (r1 - r0) * plan.out_size[2]
    taps = plan.taps
    cols = cols[:(f1 - f0) * taps * positions].reshape(-1, positions)
    _fill_tap_rows(x, *plan.kernel_args(f0, f1, r0, r1), cols)
    for t in range(t0, t1):
        dt0, dt1 = plan.frame_taps(t)
        if dt1 == dt0:
            continue
        j0 = t * plan.stride[0] - plan.pads[0][0] + dt0 - f0
        g = gy[:, t, r0:r1].reshape(plan.o, positions)
        rows = slice(dt0 * taps, dt1 * taps)
        numpy.matmul(cols[j0 * taps:(j0 + dt1 - dt0) * taps], g.T,
                     out=product[rows])
        total[rows] += product[rows]


def _weight_taps(W):
    """``(kt * C * kh * kw, O)``: ``W`` with its taps in the im2col's order
    ``(dt, c, dh, dw)``."""
    o, c, kt, kh, kw = W.shape
    return numpy.ascontiguousarray(
        W.transpose(2, 1, 3, 4, 0).reshape(kt * c * kh * kw, o))


def _weight_from_taps(taps, w_shape):
    """The inverse of :func:`_weight_taps`: ``(O, C, kt, kh, kw)``."""
    o, c, kt, kh, kw = w_shape
    return numpy.ascontiguousarray(
        taps.reshape(kt, c, kh, kw, o).transpose(4, 1, 0, 2, 3))


def _overflow(kw):
    """Values a copy of ``kw`` taps in whole runs writes past them."""
    return -(-kw // COPY_RUN) * COPY_RUN - kw


def _run_pulling_tasks(work, tasks):
    """Runs ``work(next_task)`` in each of :func:`workers` threads; every
    thread pulls chunks from one queue until ``next_task()`` returns
    ``None``, so a busy core takes fewer chunks while each thread keeps its
    own buffers. Returns what each ``work`` returned."""
    lock = threading.Lock()
    queue = iter(tasks)

    def next_task():
        with lock:
            return next(queue, None)

    results = [None] * workers()

    def run(index):
        results[index] = work(next_task)

    run_chunks(run, [(index,) for index in range(len(results))])
    return results


@numba.njit(nogil=True, cache=True)
def _padded_rows(x, f0, f1, ih0, pw, phases, out):
    """``out[(j * C + c) * R + i, q, m]``: the value of input frame ``f0 +
    j``, channel ``c``, row ``ih0 + i`` (``R`` rows per frame and channel)
    at column ``m * phases + q - pw``; zero outside the input. With
    ``phases`` the stride along w, tap ``dw`` of consecutive output columns
    is then a contiguous run of phase ``dw % phases``."""
    c_in, _, h_in, w_in = x.shape
    rows = out.shape[0] // ((f1 - f0) * c_in)
    length = out.shape[2]
    for j in range(f1 - f0):
        for c in range(c_in):
            for i in range(rows):
                dst = out[(j * c_in + c) * rows + i]
                ih = ih0 + i
                if not 0 <= ih < h_in:
                    dst[:] = 0
                    continue
                src = x[c, f0 + j, ih]
                for q in range(phases):
                    # Columns [lo, hi) of this phase lie inside the input.
                    lo = min(length, max(0, -((q - pw) // phases)))
                    hi = max(lo, min(length,
                                     (w_in - 1 + pw - q) // phases + 1))
                    first = lo * phases + q - pw
                    dst[q, :lo] = 0
                    dst[q, hi:] = 0
                    # Views indexed from 0: no negative-index wrap-around
                    # in the loop, which LLVM then vectorizes.
                    inside = dst[q, lo:hi]
                    if phases == 1:
                        # A unit stride numba knows: a plain vector copy.
                        run = src[first:first + hi - lo]
                        for m in range(hi - lo):
                            inside[m] = run[m]
                    else:
                        every = src[first:first + (hi - lo) * phases:phases]
                        for m in range(hi - lo):
                            inside[m] = every[m]


@numba.njit(nogil=True, cache=True)
def _fill_position_rows(x, f0, f1, r0, r1, sh, sw, ph, pw, kh, kw, w_out,
                        cols):
    """``cols[p, (j * C + c) * kh * kw + dh * kw + dw]``: what tap ``(c,
    dh, dw)`` of output position ``p`` (row ``r0 + p // w_out``) meets in
    input frame ``f0 + j`` of ``x`` ``(C, T, H, W)``, zero in the padding.
    The values after the taps in each row of ``cols`` are overwritten."""
    c_in = x.shape[0]
    run = -(-kw // COPY_RUN) * COPY_RUN
    rows = (r1 - r0 - 1) * sh + kh
    planes = (f1 - f0) * c_in
    padded = numpy.empty((planes * rows, 1, (w_out - 1) * sw + run),
                         x.dtype)
    _padded_rows(x, f0, f1, r0 * sh - ph, pw, 1, padded)
    # Unsigned indices: numba then adds no wrap-around of negative ones,
    # and LLVM turns each run of 8 loads, then 8 stores, into one vector
    # move. Each run copies up to 7 values too many, which the next run
    # (or the end of the row) overwrites.
    src = padded.ravel()
    dst = cols.ravel()
    u = (numba.uint64(0), numba.uint64(1), numba.uint64(2), numba.uint64(3),
         numba.uint64(4), numba.uint64(5), numba.uint64(6), numba.uint64(7),
         numba.uint64(8))
    u_kw = numba.uint64(kw)
    row_length = numba.uint64(padded.shape[2])
    cols_length = numba.uint64(cols.shape[1])
    for r in range(r1 - r0):
        for w in range(w_out):
            d = numba.uint64(r * w_out + w) * cols_length
            for plane in range(planes):
                for dh in range(kh):
                    s = numba.uint64(plane * rows + r * sh + dh) \
                        * row_length + numba.uint64(w * sw)
                    e = u[0]
                    while e < u_kw:
                        v0 = src[s + e]
                        v1 = src[s + e + u[1]]
                        v2 = src[s + e + u[2]]
                        v3 = src[s + e + u[3]]
                        v4 = src[s + e + u[4]]
                        v5 = src[s + e + u[5]]
                        v6 = src[s + e + u[6]]
                        v7 = src[s + e + u[7]]
                        dst[d + e] = v0
                        dst[d + e + u[1]] = v1
                        dst[d + e + u[2]] = v2
                        dst[d + e + u[3]] = v3
                        dst[d + e + u[4]] = v4
                        dst[d + e + u[5]] = v5
                        dst[d + e + u[6]] = v6
                        dst[d + e + u[7]] = v7
                        e += u[8]
                    d += u_kw


@numba.njit(nogil=True, cache=True)
def _fill_tap_rows(x, f0, f1, r0, r1, sh, sw, ph, pw, kh, kw, w_out, cols):
    """The transpose of :func:`_fill_position_rows`: ``cols[(j * C + c) *
    kh * kw + dh * kw + dw, p]``, with nothing after the taps."""
    c_in = x.shape[0]
    rows = (r1 - r0 - 1) * sh + kh
    planes = (f1 - f0) * c_in
    padded = numpy.empty((planes * rows, sw, w_out + (kw - 1) // sw),
                         x.dtype)
    _padded_rows(x, f0, f1, r0 * sh - ph, pw, sw, padded)
    for plane in range(planes):
        for dh in range(kh):
            for dw in range(kw):
                out = cols[(plane * kh + dh) * kw + dw]
                for r in range(r1 - r0):
                    src = padded[plane * rows + r * sh + dh, dw % sw,
                                 dw // sw:dw // sw + w_out]
                    dst = out[r * w_out:(r + 1) * w_out]
                    for w in range(w_out):
                        dst[w] = src[w]
