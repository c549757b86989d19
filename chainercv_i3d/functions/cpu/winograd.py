"""The 3x3x3 convolutions of training on a CPU, by Winograd's algorithm.

A 3x3x3 convolution with stride 1 and one voxel of zero padding on every
side (I3D's 3x3x3 units under TensorFlow's SAME rule: 70% of the network's
arithmetic) is computed, with both of its gradients, as Winograd's
F(2x2, 3x3) over (height, width) and a direct sum over the three time taps
(the algorithm of :mod:`chainercv_i3d.links.fast.winograd`; Lavin and Gray,
CVPR 2016):

* forward: for each of the 16 elements ``e`` of a 4x4 tile and each output
  frame, ``m_e = U_e @ V_e`` with ``U_e`` the transformed weight ``(O, 3 *
  C)`` and ``V_e`` the transformed input tiles ``(3 * C, tiles)`` of the
  three input frames the output frame reads; the output is ``A^T m A`` per
  tile;
* ``gx``: the same convolution of ``gy`` with the kernel flipped and its
  channel axes swapped;
* ``gW``: ``dU_e = sum Gy_e @ V_e^T`` with ``Gy = A gy A^T`` per 2x2 tile of
  ``gy``, then ``gW = G^T dU G``: the transposes of the forward's steps.

Every product is 2.25 times smaller than the im2col product it replaces.
Activations stay NCTHW. A chunk's input tiles are laid out frame by frame
and, within a frame, channel by channel: the rows (tap, channel) of an
output frame are then consecutive, a view, with no copy per time tap (for
``gW`` channel by channel, then frame by frame: a window of frames of every
channel is a view). The transforms are numba kernels (compiled once,
cached on disk) that read and write whole rows; each chunk (rows of tiles
over a run of frames) runs its transforms and single-threaded BLAS
products in one thread, the chunks in threads
(:mod:`chainercv_i3d.utils.threads`).
"""

import numba
import numpy

from chainercv_i3d.functions.winograd_f23 import IN_TILE
from chainercv_i3d.functions.winograd_f23 import OUT_TILE
from chainercv_i3d.utils.threads import chunk_elements
from chainercv_i3d.utils.threads import run_chunks
from chainercv_i3d.utils.threads import split
from chainercv_i3d.utils.threads import spread_evenly
from chainercv_i3d.utils.threads import workers

# Upper bound of one chunk's transformed tiles (input and products), in
# elements (32 MiB in float32; 16 and 64 MiB measured no faster).
CHUNK_ELEMENTS = 8 * 2 ** 20
TILE_ELEMENTS = IN_TILE * IN_TILE
# Tiles of one frame a chunk's products span at least (when the frames
# have them): the products' width.
PRODUCT_TILES = 128
PAGE_BYTES = 4096
CACHE_LINE_BYTES = 64


def winograd_correlate(x, W):
    """``F.convolution_nd(x, W, pad=1)`` for a 3x3x3 ``W``, on arrays.

    Args:
        x (numpy.ndarray): ``(N, C, T, H, W)``, float32 or float64.
        W (numpy.ndarray): ``(O, C, 3, 3, 3)``, of the dtype of ``x``.

    Returns:
        numpy.ndarray: ``(N, O, T, H, W)``.
    """
    return _correlate_tiles(x, weight_tiles(W, flip=False))


def winograd_input_grad(W, gy):
    """``gx`` of :func:`winograd_correlate`: the convolution of ``gy`` with
    the kernel flipped and its channel axes swapped.

    Args:
        W (numpy.ndarray): ``(O, C, 3, 3, 3)``.
        gy (numpy.ndarray): ``(N, O, T, H, W)``, of the dtype of ``W``.

    Returns:
        numpy.ndarray: ``(N, C, T, H, W)``.
    """
    return _correlate_tiles(gy, weight_tiles(W, flip=True))


def winograd_weight_grad(x, gy):
    """``gW`` of :func:`winograd_correlate`.

    Args:
        x (numpy.ndarray): ``(N, C, T, H, W)``.
        gy (numpy.ndarray): ``(N, O, T, H, W)``, of the dtype of ``x``.

    Returns:
        numpy.ndarray: ``(O, C, 3, 3, 3)``.

    ``dU_e`` sums ``Gy_e @ V_e^T`` over every output frame: for each time
    tap one product over all the frames of a chunk, its tiles laid out
    channel by channel (a frame window of every channel's tiles is then a
    view). Each thread sums its chunks, and the partial sums are added in a
    fixed order, so the result does not depend on timing.
    """
    o, c = gy.shape[1], x.shape[1]
    tasks = _chunks(x.shape, o)
    groups = split(len(tasks), workers())
    partials = [None] * len(groups)

    def accumulate(group, k0, k1):
        total = _tile_planes((o, 3 * c), x.dtype)
        total[...] = 0
        for i, t0, t1, th0, th1 in tasks[k0:k1]:
            nt = t1 - t0
            v = _input_tiles(x[i], t0, t1, th0, th1, channels_first=True)
            g = _grad_tiles(gy[i, :, t0:t1], th0, th1)
            for e in range(TILE_ELEMENTS):
                g_rows = g[e].reshape(o, -1)
                for dt in range(3):
                    v_rows = v[e, :, dt:dt + nt].reshape(c, -1)
                    total[e, :, dt * c:(dt + 1) * c] += numpy.matmul(
                        g_rows, v_rows.T)
        partials[group] = total

    run_chunks(accumulate, [(g,) + bounds for g, bounds in enumerate(groups)])
    du = partials[0]
    for partial in partials[1:]:
        du += partial
    gw = numpy.empty((o, c, 3, 3, 3), dtype=x.dtype)
    run_chunks(lambda o0, o1: _weight_from_tiles_kernel(du, o0, o1, gw),
               split(o, workers()))
    return gw


def weight_tiles(W, flip):
    """``U``: ``(16, O, 3 * C)``, ``G w G^T`` of each (time tap, input
    channel) of each output channel, columns ordered (tap, channel).

    Args:
        W (numpy.ndarray): ``(O, C, 3, 3, 3)``.
        flip (bool): Transform instead the kernel of ``gx``: flipped along
            every axis, its channel axes swapped (``(C, O, 3, 3, 3)``).

    Returns:
        numpy.ndarray: ``(16, O, 3 * C)`` (``(16, C, 3 * O)`` with
        ``flip``), of the dtype of ``W``.
    """
    o, c = W.shape[:2]
    if flip:
        o, c = c, o
    u = _tile_planes((o, 3 * c), W.dtype)
    run_chunks(lambda r0, r1: _weight_tiles_kernel(W, flip, r0, r1, u),
               split(o, workers()))
    return u


def _correlate_tiles(x, u):
    """The convolution of ``x`` by the transformed weight ``u``."""
    n, _, t, h, w = x.shape
    o = u.shape[1]
    y = numpy.empty((n, o, t, h, w), dtype=x.dtype)

    def chunk(i, t0, t1, th0, th1):
        v = _time_tap_rows(_input_tiles(x[i], t0, t1, th0, th1))
        m = _tile_planes((t1 - t0, o, v.shape[3]), x.dtype)
        for e in range(TILE_ELEMENTS):
            numpy.matmul(u[e], v[e], out=m[e])
        _output_tiles_kernel(m, th0, y[i, :, t0:t1])

    run_chunks(chunk, _chunks(x.shape, o))
    return y


def _chunks(x_shape, out_channels):
    """``[(sample, t0, t1, th0, th1)]``: output frames ``t0:t1``, rows of
    tiles ``th0:th1``.

    A chunk's tiles (input and products) stay within ``CHUNK_ELEMENTS``. It
    takes rows enough for ``PRODUCT_TILES`` tiles (its products' width),
    then as many frames as fit (every chunk transforms one input frame more
    on each side), then more rows if every frame fits. The chunks are nearly
    equal, and as many as a multiple of the threads unless they are single
    rows.
    """
    n, c, t, h, w = x_shape
    tiles_h, tiles_w = _tiles(h), _tiles(w)
    budget = max(1, chunk_elements(CHUNK_ELEMENTS) //
                 (TILE_ELEMENTS * tiles_w * (c + out_channels)))
    rows = min(tiles_h, -(-PRODUCT_TILES // tiles_w))
    frames = max(1, min(t, budget // rows))
    if frames == t:
        rows = max(rows, min(tiles_h, budget // t))
    frame_groups = split(t, -(-t // frames))
    bands = spread_evenly(-(-tiles_h // rows), n * len(frame_groups), tiles_h)
    return [(i, t0, t1, th0, th1) for i in range(n)
            for t0, t1 in frame_groups
            for th0, th1 in split(tiles_h, bands)]


def _tiles(size):
    return -(-size // OUT_TILE)


def _tile_planes(shape, dtype):
    """An empty ``(16,) + shape`` array of 16 contiguous planes, one per
    tile element, whose starts lie in 16 different cache sets.

    The kernels read or write the 16 planes at the same offset together;
    planes a multiple of 4 KiB apart would all map to the same cache set
    and evict one another (measured: the output transform ran 3 to 4 times
    slower).
    """
    itemsize = numpy.dtype(dtype).itemsize
    plane = int(numpy.prod(shape)) * itemsize
    stride = -(-plane // PAGE_BYTES) * PAGE_BYTES + CACHE_LINE_BYTES
    flat = numpy.empty(TILE_ELEMENTS * stride // itemsize, dtype)
    strides = (stride,) + tuple(
        int(numpy.prod(shape[i + 1:])) * itemsize for i in range(len(shape)))
    return numpy.lib.stride_tricks.as_strided(
        flat, (TILE_ELEMENTS,) + tuple(shape), strides)


def _input_tiles(x, t0, t1, th0, th1, channels_first=False):
    """``V``: ``(16, t1 - t0 + 2, C, tiles)``, the transformed tiles in rows
    ``th0:th1`` of the input frames ``t0 - 1 .. t1`` of one sample ``x``
    ``(C, T, H, W)`` (frames outside it are zeros); ``(16, C, t1 - t0 + 2,
    tiles)`` with ``channels_first``."""
    c, w = x.shape[0], x.shape[3]
    shape = (TILE_ELEMENTS, t1 - t0 + 2, c, (th1 - th0) * _tiles(w))
    if channels_first:
        v = _tile_planes((shape[2], shape[1], shape[3]), x.dtype)
        _input_tiles_kernel(x, t0 - 1, th0, v.transpose(0, 2, 1, 3))
    else:
        v = _tile_planes(shape[1:], x.dtype)
        _input_tiles_kernel(x, t0 - 1, th0, v)
    return v


def _time_tap_rows(v):
    """``(16, nt, 3 * C, tiles)`` view of ``V`` ``(16, nt + 2, C, tiles)``:
    output frame ``f`` reads input frames ``f, f + 1, f + 2`` of ``V``,
    which lie one after the other: its rows (tap, channel) are a view."""
    e, frames, c, p = v.shape
    return numpy.lib.stride_tricks.as_strided(
        v, shape=(e, frames - 2, 3 * c, p), strides=v.strides,
        writeable=False)


def _grad_tiles(gy, th0, th1):
    """``Gy = A gy A^T`` per 2x2 tile in rows ``th0:th1`` of ``gy`` ``(O,
    nt, H, W)``: ``(16, O, nt, tiles)``."""
    o, nt, _, w = gy.shape
    g = _tile_planes((o, nt, (th1 - th0) * _tiles(w)), gy.dtype)
    _grad_tiles_kernel(gy, th0, g)
    return g


# The kernels below spell out B^T, A^T and A of F(2, 3) (their coefficients
# are 0 and +-1: additions and subtractions only):
#   B^T d = (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
#   A^T m = (m0 + m1 + m2, m1 - m2 - m3)
#   A g   = (g0, g0 + g1, g0 - g1, -g1)
# Rows are split into their even and odd columns first, so that every loop
# over the tiles of a row reads and writes consecutive elements (numba then
# vectorizes it).

@numba.njit(nogil=True, cache=True)
def _input_tiles_kernel(x, first, th0, v):
    """``v[i * 4 + j, f, c, p]``: element (i, j) of ``B^T d B`` for the
    tile ``p`` (from tile row ``th0`` on) of input frame ``first + f`` of
    channel ``c`` (zeros outside the input: the padding)."""
    c_count, t_count = x.shape[:2]
    for f in range(v.shape[1]):
        ti = first + f
        for c in range(c_count):
            if 0 <= ti < t_count:
                _frame_tiles(x[c, ti], th0, v[:, f, c])
            else:
                v[:, f, c] = 0


@numba.njit(nogil=True)
def _frame_tiles(frame, th0, tiles):
    """``tiles[i * 4 + j, p]``: ``B^T d B`` of every tile ``p`` in the rows
    of tiles from ``th0`` on of one frame (H, W), padded by one zero on
    each side."""
    h, w = frame.shape
    tiles_w = (w + 1) // 2
    th1 = th0 + tiles.shape[1] // tiles_w
    # Padded column q of a row (input column q - 1) is even[q // 2] or
    # odd[q // 2]; one more of each for the last tile.
    even = numpy.zeros((4, tiles_w + 1), dtype=frame.dtype)
    odd = numpy.zeros((4, tiles_w + 1), dtype=frame.dtype)
    rows_even = numpy.empty((4, tiles_w + 1), dtype=frame.dtype)
    rows_odd = numpy.empty((4, tiles_w + 1), dtype=frame.dtype)
    for th in range(th0, th1):
        for k in range(4):
            r = 2 * th - 1 + k
            even[k, :] = 0
            odd[k, :] = 0
            if 0 <= r < h:
                for q in range(1, w + 1, 2):
                    odd[k, q // 2] = frame[r, q - 1]
                for q in range(2, w + 1, 2):
                    even[k, q // 2] = frame[r, q - 1]
        for q in range(tiles_w + 1):
            rows_even[0, q] = even[0, q] - even[2, q]
            rows_even[1, q] = even[1, q] + even[2, q]
            rows_even[2, q] = even[2, q] - even[1, q]
            rows_even[3, q] = even[1, q] - even[3, q]
            rows_odd[0, q] = odd[0, q] - odd[2, q]
            rows_odd[1, q] = odd[1, q] + odd[2, q]
            rows_odd[2, q] = odd[2, q] - odd[1, q]
            rows_odd[3, q] = odd[1, q] - odd[3, q]
        p0 = (th - th0) * tiles_w
        for i in range(4):
            for tw in range(tiles_w):
                a0 = rows_even[i, tw]
                a1 = rows_odd[i, tw]
                a2 = rows_even[i, tw + 1]
                a3 = rows_odd[i, tw + 1]
                tiles[i * 4, p0 + tw] = a0 - a2
                tiles[i * 4 + 1, p0 + tw] = a1 + a2
                tiles[i * 4 + 2, p0 + tw] = a2 - a1
                tiles[i * 4 + 3, p0 + tw] = a1 - a3


@numba.njit(nogil=True, cache=True)
def _output_tiles_kernel(m, th0, y):
    """``y[o, f]`` ``(O, nt, H, W)`` from ``A^T m A`` of every tile of
    ``m`` ``(16, nt, O, tiles)``, tiles in rows from ``th0`` on, cropped to
    (H, W)."""
    _, nt, o_count, p_count = m.shape
    h, w = y.shape[2], y.shape[3]
    tiles_w = (w + 1) // 2
    th1 = th0 + p_count // tiles_w
    rows = numpy.empty((2, 4, tiles_w), dtype=m.dtype)
    out = numpy.empty((2, 2 * tiles_w), dtype=m.dtype)
    for f in range(nt):
        for o in range(o_count):
            for th in range(th0, th1):
                p0 = (th - th0) * tiles_w
                for j in range(4):
                    for tw in range(tiles_w):
                        p = p0 + tw
                        rows[0, j, tw] = m[j, f, o, p] + m[4 + j, f, o, p] \
                            + m[8 + j, f, o, p]
                        rows[1, j, tw] = m[4 + j, f, o, p] \
                            - m[8 + j, f, o, p] - m[12 + j, f, o, p]
                for a in range(2):
                    for tw in range(tiles_w):
                        out[a, 2 * tw] = rows[a, 0, tw] + rows[a, 1, tw] \
                            + rows[a, 2, tw]
                        out[a, 2 * tw + 1] = rows[a, 1, tw] - rows[a, 2, tw] \
                            - rows[a, 3, tw]
                y[o, f, 2 * th] = out[0, :w]
                if 2 * th + 1 < h:
                    y[o, f, 2 * th + 1] = out[1, :w]


@numba.njit(nogil=True, cache=True)
def _grad_tiles_kernel(gy, th0, g):
    """``g[k * 4 + l, o, f, p] = (A gy A^T)[k, l]`` of each 2x2 tile ``p``
    (from tile row ``th0`` on) of ``gy`` (zeros past the edges)."""
    o_count, nt = gy.shape[:2]
    for o in range(o_count):
        for f in range(nt):
            _frame_grad_tiles(gy[o, f], th0, g[:, o, f])


@numba.njit(nogil=True)
def _frame_grad_tiles(frame, th0, tiles):
    """``tiles[k * 4 + l, p]``: ``A gy A^T`` of every 2x2 tile ``p`` in the
    rows of tiles from ``th0`` on of one frame of ``gy`` (H, W)."""
    h, w = frame.shape
    tiles_w = (w + 1) // 2
    th1 = th0 + tiles.shape[1] // tiles_w
    # even[a] / odd[a]: the left / right column of row a of each tile.
    even = numpy.zeros((2, tiles_w), dtype=frame.dtype)
    odd = numpy.zeros((2, tiles_w), dtype=frame.dtype)
    rows_even = numpy.empty((4, tiles_w), dtype=frame.dtype)
    rows_odd = numpy.empty((4, tiles_w), dtype=frame.dtype)
    for th in range(th0, th1):
        for a in range(2):
            r = 2 * th + a
            even[a, :] = 0
            odd[a, :] = 0
            if r < h:
                for q in range(0, w, 2):
                    even[a, q // 2] = frame[r, q]
                for q in range(1, w, 2):
                    odd[a, q // 2] = frame[r, q]
        # A over the rows of the tiles, for their left (even) and right
        # (odd) columns, then A over the columns.
        for tw in range(tiles_w):
            rows_even[0, tw] = even[0, tw]
            rows_even[1, tw] = even[0, tw] + even[1, tw]
            rows_even[2, tw] = even[0, tw] - even[1, tw]
            rows_even[3, tw] = -even[1, tw]
            rows_odd[0, tw] = odd[0, tw]
            rows_odd[1, tw] = odd[0, tw] + odd[1, tw]
            rows_odd[2, tw] = odd[0, tw] - odd[1, tw]
            rows_odd[3, tw] = -odd[1, tw]
        p0 = (th - th0) * tiles_w
        for k in range(4):
            for tw in range(tiles_w):
                p = p0 + tw
                tiles[k * 4, p] = rows_even[k, tw]
                tiles[k * 4 + 1, p] = rows_even[k, tw] + rows_odd[k, tw]
                tiles[k * 4 + 2, p] = rows_even[k, tw] - rows_odd[k, tw]
                tiles[k * 4 + 3, p] = -rows_odd[k, tw]


@numba.njit(nogil=True, cache=True)
def _weight_tiles_kernel(w, flip, r0, r1, u):
    """``u[i * 4 + j, r, t * C + c] = (G k G^T)[i, j]`` for rows ``r0:r1``,
    with ``k = w[r, c, t]``, or with ``flip`` the kernel of ``gx``,
    ``k = w[c, r, 2 - t, ::-1, ::-1]``; in float64 (the only rounding is the
    final one). G's rows are (1, 0, 0), (.5, .5, .5), (.5, -.5, .5),
    (0, 0, 1). A row's 16 values go through a small buffer: written
    straight to the 16 planes of ``u`` (the same offset in each), they
    stall on cache conflicts."""
    in_count = u.shape[2] // 3
    tiles = numpy.empty((16, in_count))
    for r in range(r0, r1):
        for t in range(3):
            for c in range(in_count):
                if flip:
                    k = w[c, r, 2 - t]
                    k00, k01, k02 = k[2, 2], k[2, 1], k[2, 0]
                    k10, k11, k12 = k[1, 2], k[1, 1], k[1, 0]
                    k20, k21, k22 = k[0, 2], k[0, 1], k[0, 0]
                else:
                    k = w[r, c, t]
                    k00, k01, k02 = k[0, 0], k[0, 1], k[0, 2]
                    k10, k11, k12 = k[1, 0], k[1, 1], k[1, 2]
                    k20, k21, k22 = k[2, 0], k[2, 1], k[2, 2]
                _tile_of_kernel(
                    numpy.float64(k00), numpy.float64(k01),
                    numpy.float64(k02), numpy.float64(k10),
                    numpy.float64(k11), numpy.float64(k12),
                    numpy.float64(k20), numpy.float64(k21),
                    numpy.float64(k22), tiles, c)
            for e in range(16):
                u[e, r, t * in_count:(t + 1) * in_count] = tiles[e]


@numba.njit(nogil=True, inline='always')
def _tile_of_kernel(k00, k01, k02, k10, k11, k12, k20, k21, k22, out, c):
    """``out[i * 4 + j, c] = (G k G^T)[i, j]`` of one 3x3 kernel."""
    # Row i of G k, then times G^T.
    _times_g_transposed(k00, k01, k02, out, 0, c)
    _times_g_transposed(0.5 * (k00 + k10 + k20), 0.5 * (k01 + k11 + k21),
                        0.5 * (k02 + k12 + k22), out, 1, c)
    _times_g_transposed(0.5 * (k00 - k10 + k20), 0.5 * (k01 - k11 + k21),
                        0.5 * (k02 - k12 + k22), out, 2, c)
    _times_g_transposed(k20, k21, k22, out, 3, c)


@numba.njit(nogil=True, inline='always')
def _times_g_transposed(a, b, d, out, i, c):
    """``out[i * 4 + j, c] = ((a, b, d) G^T)[j]``."""
    out[i * 4, c] = a
    out[i * 4 + 1, c] = 0.5 * (a + b + d)
    out[i * 4 + 2, c] = 0.5 * (a - b + d)
    out[i * 4 + 3, c] = d


@numba.njit(nogil=True, cache=True)
def _weight_from_tiles_kernel(du, o0, o1, gw):
    """``gw[o, c, t] = G^T dU G`` from ``du[i * 4 + j, o, t * C + c]`` for
    output channels ``o0:o1``, in float64."""
    c_count = gw.shape[1]
    d = numpy.empty((4, 4))
    gd = numpy.empty((3, 4))
    for o in range(o0, o1):
        for t in range(3):
            for c in range(c_count):
                col = t * c_count + c
                for e in range(16):
                    d[e // 4, e % 4] = du[e, o, col]
                # G^T d, then (G^T d) G; G^T's rows are (1, .5, .5, 0),
                # (0, .5, -.5, 0), (0, .5, .5, 1).
                for j in range(4):
                    gd[0, j] = d[0, j] + 0.5 * (d[1, j] + d[2, j])
                    gd[1, j] = 0.5 * (d[1, j] - d[2, j])
                    gd[2, j] = 0.5 * (d[1, j] + d[2, j]) + d[3, j]
                for a in range(3):
                    gw[o, c, t, a, 0] = gd[a, 0] + 0.5 * (gd[a, 1]
                                                          + gd[a, 2])
                    gw[o, c, t, a, 1] = 0.5 * (gd[a, 1] - gd[a, 2])
                    gw[o, c, t, a, 2] = 0.5 * (gd[a, 1] + gd[a, 2]) \
                        + gd[a, 3]
