"""The fast path's 3x3x3 Winograd convolution on a CPU, with numba kernels.

The algorithm of :mod:`chainercv_i3d.links.fast.winograd` (F(2x2, 3x3) over
height and width, a direct sum over the three time taps), in chunks of
(sample, output frames, rows of tiles). Each chunk runs in one thread
(:func:`chainercv_i3d.utils.threads.run_chunks`, single-threaded BLAS):

* one kernel reads the chunk's input straight from ``x`` (any strides but
  the channels'), zeros outside it taking the place of SAME padding, and
  writes the transformed tiles;
* one ``numpy.matmul`` over strided views of the tiles, which numpy runs
  as one BLAS product per tile element (and output frame), no copies;
* one kernel transforms the products back, crops them to the output, adds
  the bias, applies ReLU and writes straight into ``out`` (any strides but
  the channels', for example a channel slice of a larger array).

No pass over the whole input or output: a chunk's tiles and products
(``CHUNK_ELEMENTS``) are written and read back within the shared cache at
best, instead of a pass through memory for each step.

Two layouts of the transformed tiles, per chunk:

* ``views``: ``(16, tiles, frames + 2, C)``: the three input frames an output
  frame reads lie next to each other, so its ``(tiles, 3 * C)`` operand is a
  strided view (leading dimension ``(frames + 2) * C``) that BLAS reads in
  place; one product per tile element and output frame;
* ``stacked``: ``(16, frames, tiles, 3 * C)``: the kernel writes each input
  frame's tiles to the (up to) three output frames that read it; one larger
  product per tile element. Chosen when a frame has few tiles (small
  frames), where per-frame products would be too thin for BLAS.
"""

import numba
import numpy

from chainercv_i3d.utils.threads import chunk_elements
from chainercv_i3d.utils.threads import run_chunks
from chainercv_i3d.utils.threads import split
from chainercv_i3d.utils.threads import spread_evenly

TILE_ELEMENTS = 16
# Upper bound of one chunk's transformed input and products, in elements
# (32 MiB in float32; on the 28x28 and 56x56 layers, 12 MiB measured 10%
# slower, 16 MiB 2 to 5% slower, 64 MiB the same).
CHUNK_ELEMENTS = 8 * 2 ** 20
# Tiles a chunk's products span at least (when the frames have them): the
# products' height for BLAS (64 -> 192 channels at 56x56, one thread: 128
# tiles 0.36 s of products, 256 0.33 s, 512 0.33 s but a slower transform).
PRODUCT_TILES = 256
# Below this many tiles per chunk, the stacked layout (one product over all
# of a chunk's frames) instead of per-frame views (measured: stacked faster
# at 7x7 and 14x14, 16 and 49 tiles a frame, views at 28x28 and 56x56).
STACK_BELOW_TILES = 64
PAGE_BYTES = 4096
CACHE_LINE_BYTES = 64


def winograd_conv_cpu(x, u, bias, y):
    """``y = relu(conv(x) + bias)`` (no bias and ReLU if ``bias`` is None).

    Args:
        x (numpy.ndarray): ``(N, T, H, W, C)`` float32, last axis contiguous
            (other strides arbitrary).
        u (numpy.ndarray): ``(16, 3 * C, O)`` float32 from
            :func:`chainercv_i3d.links.fast.winograd.winograd_weight`.
        bias (numpy.ndarray): ``(O,)`` or None.
        y (numpy.ndarray): ``(N, T, H, W, O)`` float32 to write to, last axis
            contiguous.

    Returns:
        numpy.ndarray: ``y``.
    """
    n, t, h, w, c = x.shape
    o = u.shape[2]
    if y.size == 0:
        return y
    u = numpy.ascontiguousarray(u, numpy.float32)
    xf, xs = _flat(x)
    if not xf.flags.writeable:
        # The kernel's two sources (the input, its own buffer for tiles
        # at the border) must have one numba type.
        xf = xf.copy()
    yf, ys = _flat(y)
    relu = bias is not None
    b = (numpy.ascontiguousarray(bias, numpy.float32) if relu
         else numpy.zeros(o, numpy.float32))
    tiles_w = -(-w // 2)

    def chunk(i, t0, t1, th0, th1, stacked):
        nt = t1 - t0
        p = (th1 - th0) * tiles_w
        if stacked:
            v, vs = _planes(nt * p * 3 * c)
        else:
            v, vs = _planes(p * (nt + 2) * c)
        _input_kernel(xf, i * xs[0], xs[1], xs[2], xs[3], t, h, w, c,
                      t0 - 1, nt + 2, th0, th1, tiles_w, stacked, nt, v, vs)
        m, ms = _planes(nt * p * o)
        if stacked:
            a = _strided(v, (nt * p, 3 * c), (vs, 3 * c, 1))
            product = _strided(m, (nt * p, o), (ms, o, 1))
        else:
            # Output frame f's (tiles, 3 * C) operand starts at frame f of
            # every tile: a view with rows (nt + 2) * C apart.
            a = _strided(v, (nt, p, 3 * c), (vs, c, (nt + 2) * c, 1))
            product = _strided(m, (nt, p, o), (ms, p * o, o, 1))
        # One call, every product a BLAS call in numpy's loop (no copies:
        # the rows of every operand are contiguous), without the GIL.
        u_e = u.reshape((TILE_ELEMENTS,) + (1,) * (a.ndim - 3) + u.shape[1:])
        numpy.matmul(a, u_e, out=product)
        _output_kernel(m, ms, nt, th0, th1, tiles_w, o, b, relu, yf,
                       i * ys[0] + t0 * ys[1], ys[1], ys[2], ys[3], h, w)

    run_chunks(chunk, _chunks(x.shape, o))
    return y


def _chunks(x_shape, o):
    """``[(sample, t0, t1, th0, th1, stacked)]``: output frames ``t0:t1``,
    rows of tiles ``th0:th1``, and the layout.

    Rows enough for ``PRODUCT_TILES`` tiles, then as many frames as fit
    ``CHUNK_ELEMENTS``, then more rows if every frame fits; as many chunks
    as a multiple of the threads unless they are single rows.
    """
    n, t, h, w, c = x_shape
    tiles_h, tiles_w = -(-h // 2), -(-w // 2)
    rows = min(tiles_h, -(-PRODUCT_TILES // tiles_w))
    # Elements per tile and output frame: input tiles (three times over
    # when stacked, once plus the halo frames as views) and products.
    stacked = rows * tiles_w < STACK_BELOW_TILES
    per_tile = TILE_ELEMENTS * ((3 if stacked else 1) * c + o)
    budget = max(1, chunk_elements(CHUNK_ELEMENTS) // (per_tile * tiles_w))
    frames = max(1, min(t, budget // rows))
    if frames == t:
        rows = max(rows, min(tiles_h, budget // t))
    frame_groups = split(t, -(-t // frames))
    bands = spread_evenly(-(-tiles_h // rows), n * len(frame_groups), tiles_h)
    chunks = []
    for i in range(n):
        for t0, t1 in frame_groups:
            for th0, th1 in split(tiles_h, bands):
                stacked = (th1 - th0) * tiles_w < STACK_BELOW_TILES
                chunks.append((i, t0, t1, th0, th1, stacked))
    return chunks


def _flat(a):
    """A 1-D contiguous view of ``a`` from its first element to its last,
    and ``a``'s strides in elements (the kernels index it themselves: a
    contiguous array lets numba vectorize over the channels)."""
    itemsize = a.itemsize
    assert a.strides[-1] == itemsize and min(a.strides) >= 0, a.strides
    extent = 1 + sum((s - 1) * st // itemsize
                     for s, st in zip(a.shape, a.strides))
    flat = numpy.lib.stride_tricks.as_strided(a, (extent,), (itemsize,))
    return flat, tuple(st // itemsize for st in a.strides[:-1])


def _strided(flat, shape, strides):
    """A view of the planes ``flat``: ``(16,) + shape``, ``strides`` in
    elements (the first, the plane stride)."""
    return numpy.lib.stride_tricks.as_strided(
        flat, (TILE_ELEMENTS,) + shape, tuple(st * 4 for st in strides))


def _planes(size):
    """A flat float32 buffer of 16 planes of ``size`` elements, and the
    plane stride: the planes start in 16 different cache sets (planes a
    multiple of 4 KiB apart evict one another when a kernel writes or reads
    all 16 at the same offset: the output transform of training measured
    3-4 times slower)."""
    stride = (-(-size * 4 // PAGE_BYTES) * PAGE_BYTES + CACHE_LINE_BYTES) // 4
    return numpy.empty(TILE_ELEMENTS * stride, numpy.float32), stride


@numba.njit(nogil=True, cache=True)
def _input_kernel(xf, x0, st, sh, sw, t_len, h, w, c, f0, nf, th0, th1,
                  tiles_w, stacked, nt, v, vs):
    """``B^T d B`` of the 4x4 tiles in rows ``th0:th1`` of input frames
    ``f0 .. f0 + nf - 1`` (zeros outside the input) into ``v``: plane ``e``
    at ``e * vs``, laid out ``(tiles, nf, C)``, or ``(nf - 2, tiles, 3 * C)``
    with ``stacked`` (frame ``f`` as time tap ``k`` of output frame
    ``f - k``)."""
    p_len = (th1 - th0) * tiles_w
    d = numpy.zeros(16 * c, numpy.float32)
    for fi in range(nf):
        tf = f0 + fi
        inside_t = 0 <= tf < t_len
        for th in range(th0, th1):
            for tw in range(tiles_w):
                p = (th - th0) * tiles_w + tw
                r0, c0 = 2 * th - 1, 2 * tw - 1
                base = x0 + tf * st + r0 * sh + c0 * sw
                if inside_t and r0 >= 0 and c0 >= 0 and r0 + 3 < h \
                        and c0 + 3 < w:
                    # Inside the input: read it in place.
                    src, at, row, col = xf, base, sh, sw
                else:
                    # The tile, zeros outside the input (SAME padding).
                    for a in range(4):
                        for b in range(4):
                            e = (a * 4 + b) * c
                            if (inside_t and 0 <= r0 + a < h
                                    and 0 <= c0 + b < w):
                                q = base + a * sh + b * sw
                                for k in range(c):
                                    d[e + k] = xf[q + k]
                            else:
                                for k in range(c):
                                    d[e + k] = 0
                    src, at, row, col = d, 0, 4 * c, c
                for tap in range(3):
                    if stacked:
                        f = fi - tap
                        if f < 0 or f >= nt:
                            continue
                        out = (f * p_len + p) * 3 * c + tap * c
                    else:
                        if tap > 0:
                            break
                        out = (p * nf + fi) * c
                    _tile_transform(src, at, row, col, c, v, vs, out)


@numba.njit(nogil=True, cache=True)
def _tile_transform(src, at, row, col, c, v, vs, out):
    """``B^T d B`` of the tile of ``src`` at ``at`` (rows ``row`` and
    columns ``col`` apart, channels contiguous) into the 16 planes of ``v``
    at ``out``. Rows (height) first, then columns, in the order of the
    numpy transform: the same roundings."""
    a1, a2, a3 = at + row, at + 2 * row, at + 3 * row
    for k in range(c):
        d0, d1 = src[at + k], src[at + col + k]
        d2, d3 = src[at + 2 * col + k], src[at + 3 * col + k]
        d4, d5 = src[a1 + k], src[a1 + col + k]
        d6, d7 = src[a1 + 2 * col + k], src[a1 + 3 * col + k]
        d8, d9 = src[a2 + k], src[a2 + col + k]
        d10, d11 = src[a2 + 2 * col + k], src[a2 + 3 * col + k]
        d12, d13 = src[a3 + k], src[a3 + col + k]
        d14, d15 = src[a3 + 2 * col + k], src[a3 + 3 * col + k]
        r00 = d0 - d8
        r01 = d1 - d9
        r02 = d2 - d10
        r03 = d3 - d11
        r10 = d4 + d8
        r11 = d5 + d9
        r12 = d6 + d10
        r13 = d7 + d11
        r20 = d8 - d4
        r21 = d9 - d5
        r22 = d10 - d6
        r23 = d11 - d7
        r30 = d4 - d12
        r31 = d5 - d13
        r32 = d6 - d14
        r33 = d7 - d15
        q = out + k
        v[q] = r00 - r02
        v[vs + q] = r01 + r02
        v[2 * vs + q] = r02 - r01
        v[3 * vs + q] = r01 - r03
        v[4 * vs + q] = r10 - r12
        v[5 * vs + q] = r11 + r12
        v[6 * vs + q] = r12 - r11
        v[7 * vs + q] = r11 - r13
        v[8 * vs + q] = r20 - r22
        v[9 * vs + q] = r21 + r22
        v[10 * vs + q] = r22 - r21
        v[11 * vs + q] = r21 - r23
        v[12 * vs + q] = r30 - r32
        v[13 * vs + q] = r31 + r32
        v[14 * vs + q] = r32 - r31
        v[15 * vs + q] = r31 - r33


@numba.njit(nogil=True, cache=True)
def _output_kernel(m, ms, nt, th0, th1, tiles_w, o, bias, relu, yf, y0, st,
                   sh, sw, h, w):
    """``A^T m A`` of the products ``m`` (plane ``e`` at ``e * ms``, laid
    out ``(nt, tiles, O)``), cropped to ``h, w``, plus ``bias`` then ReLU if
    ``relu``, into the output frames at ``y0`` of ``yf``."""
    p_len = (th1 - th0) * tiles_w
    for f in range(nt):
        for th in range(th0, th1):
            r = 2 * th
            for tw in range(tiles_w):
                col = 2 * tw
                src = (f * p_len + (th - th0) * tiles_w + tw) * o
                dst = y0 + f * st + r * sh + col * sw
                # The last row or column of tiles may stick out.
                cols = sw if col + 1 < w else 0
                rows = sh if r + 1 < h else 0
                # Written last: the full 2x2 when it is inside.
                _tile_output(m, ms, src, o, bias, relu, yf, dst, dst + cols,
                             dst + rows, dst + rows + cols)


@numba.njit(nogil=True, cache=True)
def _tile_output(m, ms, src, o, bias, relu, yf, y00, y01, y10, y11):
    """``A^T m A`` (plus bias, ReLU) of one tile into the pixels at
    ``y00 .. y11`` of ``yf``; a cropped pixel's address repeats that of
    the pixel kept, written after it."""
    zero = numpy.float32(0)
    for k in range(o):
        q = src + k
        m0 = m[q]
        m1 = m[ms + q]
        m2 = m[2 * ms + q]
        m3 = m[3 * ms + q]
        m4 = m[4 * ms + q]
        m5 = m[5 * ms + q]
        m6 = m[6 * ms + q]
        m7 = m[7 * ms + q]
        m8 = m[8 * ms + q]
        m9 = m[9 * ms + q]
        m10 = m[10 * ms + q]
        m11 = m[11 * ms + q]
        m12 = m[12 * ms + q]
        m13 = m[13 * ms + q]
        m14 = m[14 * ms + q]
        m15 = m[15 * ms + q]
        # Rows: A_T = [[1, 1, 1, 0], [0, 1, -1, -1]], in the order of the
        # numpy transform.
        s00 = m0 + m4 + m8
        s01 = m1 + m5 + m9
        s02 = m2 + m6 + m10
        s03 = m3 + m7 + m11
        s10 = m4 - m8 - m12
        s11 = m5 - m9 - m13
        s12 = m6 - m10 - m14
        s13 = m7 - m11 - m15
        v00 = s00 + s01 + s02
        v01 = s01 - s02 - s03
        v10 = s10 + s11 + s12
        v11 = s11 - s12 - s13
        if relu:
            v00 = max(v00 + bias[k], zero)
            v01 = max(v01 + bias[k], zero)
            v10 = max(v10 + bias[k], zero)
            v11 = max(v11 + bias[k], zero)
        yf[y11 + k] = v11
        yf[y10 + k] = v10
        yf[y01 + k] = v01
        yf[y00 + k] = v00
