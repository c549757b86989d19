"""The fast path's SAME max pool on a CPU, channels-last, compiled.

TensorFlow's SAME max pool of a ``(N, T, H, W, C)`` numpy array, with the
result of :func:`chainercv_i3d.links.fast.forward.max_pool_same` (a maximum
is exact: the same values). Separable: for each output frame a numba kernel
takes the maximum over the window's input frames, then along H, then along
W, into two small buffers that stay in the cache; the innermost loop runs
over the contiguous channels. Padding is never materialized: taps outside
the input are skipped, as a padding of -inf would be (a SAME window always
holds at least one input value). Chunks of output frames run in the
threads of :func:`chainercv_i3d.utils.threads.run_chunks`.
"""

import numba
from numba import uintp
import numpy

from chainercv_i3d.functions.tf_same_padding import same_output_shape
from chainercv_i3d.functions.tf_same_padding import same_padding_nd
from chainercv_i3d.utils.threads import run_chunks
from chainercv_i3d.utils.threads import split
from chainercv_i3d.utils.threads import workers

# Chunks per thread, at least (so that the threads finish together; a
# chunk is at least one output frame).
MIN_CHUNKS_PER_THREAD = 4


def cpu_max_pool_same(x, ksize, stride, out=None):
    """TensorFlow's SAME max pool, channels-last, on numpy arrays.

    Args:
        x: ``(N, T, H, W, C)``, any strides (copied contiguous if not).
        ksize (tuple of int): ``(kt, kh, kw)``.
        stride (tuple of int): ``(st, sh, sw)``.
        out: ``(N, T', H', W', C)`` to write to (for example a channel
            slice); a new array if None.

    Returns:
        ``(N, T', H', W', C)``, ``T' = ceil(T / st)`` and so on.
    """
    x = numpy.ascontiguousarray(x)
    n, t, h, w, c = x.shape
    kt, kh, kw = (int(k) for k in ksize)
    st, sh, sw = (int(s) for s in stride)
    (pt, _), (ph, _), (pw, _) = same_padding_nd((t, h, w), ksize, stride)
    out_t, out_h, out_w = same_output_shape((t, h, w), stride)
    shape = (n, out_t, out_h, out_w, c)
    y = out if out is not None and out.flags.c_contiguous else numpy.empty(
        shape, x.dtype)
    pieces = max(1, workers() * MIN_CHUNKS_PER_THREAD // n) \
        if workers() > 1 else 1

    def chunk(i, o0, o1):
        frame = numpy.empty((h, w, c), x.dtype)
        rows = numpy.empty((out_h, w, c), x.dtype)
        _pool_frames(x[i], y[i], o0, o1, kt, kh, kw, st, sh, sw, pt, ph, pw,
                     frame, rows)

    run_chunks(chunk, [(i, o0, o1) for i in range(n)
                       for o0, o1 in split(out_t, pieces)])
    if out is not None and y is not out:
        out[...] = y
        return out
    return y


@numba.njit(nogil=True, cache=True)
def _pool_frames(x, y, o0, o1, kt, kh, kw, st, sh, sw, pt, ph, pw, frame,
                 rows):
    """``y[o]`` for the output frames ``o0 <= o < o1``: the maximum over
    each window's taps within ``x`` ``(T, H, W, C)``; ``frame`` ``(H, W,
    C)`` and ``rows`` ``(H', W, C)`` are scratch. All C-contiguous."""
    t, h, w, c = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    xf = x.ravel()
    yf = y.ravel()
    ff = frame.ravel()
    rf = rows.ravel()
    plane = h * w * c
    line = w * c
    for o in range(o0, o1):
        # Along T: frame = max of the window's input frames.
        first = o * st - pt
        d0 = max(0, -first)
        d1 = min(kt, t - first)
        src = (first + d0) * plane
        for j in range(uintp(plane)):
            ff[j] = xf[uintp(src) + j]
        for d in range(d0 + 1, d1):
            src = (first + d) * plane
            for j in range(uintp(plane)):
                v = xf[uintp(src) + j]
                a = ff[j]
                ff[j] = v if v > a else a
        # Along H: rows[r] = max of the window's lines of frame.
        for r in range(out_h):
            first = r * sh - ph
            d0 = max(0, -first)
            d1 = min(kh, h - first)
            dst = uintp(r * line)
            src = uintp((first + d0) * line)
            for j in range(uintp(line)):
                rf[dst + j] = ff[src + j]
            for d in range(d0 + 1, d1):
                src = uintp((first + d) * line)
                for j in range(uintp(line)):
                    v = ff[src + j]
                    a = rf[dst + j]
                    rf[dst + j] = v if v > a else a
        # Along W: y[o, r, q] = max of the window's pixels of rows[r].
        for r in range(out_h):
            for q in range(out_w):
                first = q * sw - pw
                d0 = max(0, -first)
                d1 = min(kw, w - first)
                dst = uintp(((o * out_h + r) * out_w + q) * c)
                src = uintp(r * line + (first + d0) * c)
                for j in range(uintp(c)):
                    yf[dst + j] = rf[src + j]
                for d in range(d0 + 1, d1):
                    src = uintp(r * line + (first + d) * c)
                    for j in range(uintp(c)):
                        v = rf[src + j]
                        a = yf[dst + j]
                        yf[dst + j] = v if v > a else a
