"""Winograd's minimal filtering for the 3x3x3 convolutions of the fast path.

A 3x3x3 convolution with stride 1 and SAME padding (70% of I3D's
arithmetic) is computed as Winograd's F(2x2, 3x3) over (height, width)
(Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
CVPR 2016) and as a direct sum over the three time taps:

* every 4x4 input tile (stride 2) is transformed, ``B^T d B``;
* for each of the 16 tile elements, one matrix product over the stacked
  time taps and input channels, ``(tiles, 3 * C) x (3 * C, O)``;
* every 4x4 product tile is transformed back to 2x2 outputs, ``A^T m A``.

That is 2.25 times fewer multiplications than the direct convolution. The
F(2, 3) transforms have only 0, +-1 and +-1/2 as coefficients, so their
rounding error stays at the level of float32 summation (the fidelity tests
hold the fast path to the same tolerances as the reference path); larger
tiles, F(4x4, 3x3), save more but lose about a digit.

On a CPU, float32 runs the numba kernels of
:mod:`chainercv_i3d.links.fast.cpu_winograd` (padding, transforms, bias and
ReLU fused, in cache-sized chunks in threads); float16 (numpy has no float16
BLAS: it is there to check precision) and arrays with negative strides run
the numpy passes below, each input frame transformed once per pass and the
products batched in threads. On a GPU each chunk of output frames is one
kernel for the transformed, stacked input, 16 cuBLAS products and one kernel
for the output transform, bias and ReLU
(:mod:`chainercv_i3d.links.fast.cuda_kernels`).
"""

import chainer
import numpy

from chainercv_i3d.functions.winograd_f23 import A_T
from chainercv_i3d.functions.winograd_f23 import B_T
from chainercv_i3d.functions.winograd_f23 import G
from chainercv_i3d.functions.winograd_f23 import IN_TILE
from chainercv_i3d.functions.winograd_f23 import OUT_TILE
from chainercv_i3d.links.fast.cpu_winograd import winograd_conv_cpu
from chainercv_i3d.links.fast.cuda_kernels import bias_relu
from chainercv_i3d.links.fast.cuda_kernels import matmul
from chainercv_i3d.links.fast.cuda_kernels import winograd_input_tiles
from chainercv_i3d.links.fast.cuda_kernels import winograd_output
from chainercv_i3d.utils.threads import chunk_elements
from chainercv_i3d.utils.threads import run_chunks
from chainercv_i3d.utils.threads import split
from chainercv_i3d.utils.threads import workers

# Upper bound of the stacked input of one product chunk on a CPU, in
# elements (16 MiB): small enough to stay in the cache while it is multiplied.
CHUNK_ELEMENTS = 4 * 2 ** 20
# Upper bound of the transformed input of one pass, in elements (256 MiB).
PASS_ELEMENTS = 64 * 2 ** 20
# float32 on numpy runs the numba kernels of cpu_winograd (False: the numpy
# passes below, which float16 and odd strides still take).
USE_NUMBA = True


def winograd_weight(w, dtype=None):
    """Transforms folded 3x3x3 weights for :func:`winograd_conv`.

    Args:
        w: ``(O, C, 3, 3, 3)`` float32.
        dtype: Of the result (default that of ``w``).

    Returns:
        ``(16, 3 * C, O)``: for each tile element, the time taps and input
        channels stacked as rows.
    """
    xp = chainer.backend.get_array_module(w)
    g = xp.asarray(G)
    # In float64, so that the only rounding is the final cast.
    u = xp.tensordot(g, w.astype(numpy.float64), axes=(1, 3))  # i o c t w
    u = xp.tensordot(u, g, axes=(4, 1))  # i o c t j
    u = u.transpose(0, 4, 3, 2, 1)  # i j t c o
    out_c, in_c = w.shape[:2]
    return u.reshape(IN_TILE * IN_TILE, 3 * in_c, out_c).astype(
        dtype or w.dtype)


def winograd_conv(x, u, bias, out=None):
    """A 3x3x3 convolution, stride 1, SAME padding, then bias and ReLU.

    Args:
        x: ``(N, T, H, W, C)``, channels-last, float32 or float16.
        u: ``(16, 3 * C, O)`` from :func:`winograd_weight`, of the dtype of
            ``x``.
        bias: ``(O,)`` float32, added and followed by ReLU on every chunk of
            the output while it is in the cache; None: neither.
        out: ``(N, T, H, W, O)`` to write to (for example a channel slice of
            a larger array); a new array if None.

    Returns:
        ``(N, T, H, W, O)``.
    """
    xp = chainer.backend.get_array_module(x)
    n, t, h, w, c = x.shape
    if (xp is numpy and x.dtype == numpy.float32 and USE_NUMBA
            and x.strides[-1] == x.itemsize and min(x.strides) >= 0):
        y = out if out is not None else numpy.empty(
            (n, t, h, w, u.shape[2]), numpy.float32)
        if y.strides[-1] == y.itemsize and min(y.strides) >= 0:
            # Compiled kernels: padding, transforms, bias and ReLU fused.
            return winograd_conv_cpu(x, u, bias, y)
    tiles_h, tiles_w = -(-h // OUT_TILE), -(-w // OUT_TILE)
    # One frame and one pixel of zeros before, enough after to fill the
    # last tile.
    x = xp.pad(x, ((0, 0), (1, 1), (1, tiles_h * OUT_TILE + 1 - h),
                   (1, tiles_w * OUT_TILE + 1 - w), (0, 0)), mode='constant')
    y = out if out is not None else xp.empty((n, t, h, w, u.shape[2]),
                                             dtype=x.dtype)
    if xp is not numpy:
        return _winograd_device(x, u, bias, y)
    per_frame = IN_TILE ** 2 * tiles_h * tiles_w * c  # transformed input
    # Output frames per product chunk (at least one chunk per thread), and
    # per pass, so that the transformed input of a pass stays bounded.
    frames = max(1, min(chunk_elements(CHUNK_ELEMENTS) // (3 * per_frame),
                        -(-t // workers())))
    span = max(frames, PASS_ELEMENTS // per_frame - 2)
    for i in range(n):
        for s0 in range(0, t, span):
            s1 = min(s0 + span, t)
            _winograd_pass(x[i, s0:s1 + 2], u, y[i, s0:s1], frames, bias)
    return y


def _winograd_device(x, u, bias, y):
    """:func:`winograd_conv` on a GPU: per chunk of output frames, one kernel
    for the stacked input tiles, 16 products (2-D products run on cuBLAS
    in the arrays' dtype, float16 on tensor cores; CuPy's batched ones
    compute float16 in float32) and one kernel for the output."""
    xp = chainer.backend.get_array_module(x)
    n, t, h, w, _ = y.shape
    c, o = x.shape[4], u.shape[2]
    tiles_h, tiles_w = -(-h // OUT_TILE), -(-w // OUT_TILE)
    per_frame = IN_TILE ** 2 * tiles_h * tiles_w * max(3 * c, o)
    frames = max(1, chunk_elements(CHUNK_ELEMENTS) // per_frame)
    relu = bias is not None
    if bias is None:
        bias = xp.zeros(o, numpy.float32)
    for i in range(n):
        for t0 in range(0, t, frames):
            t1 = min(t0 + frames, t)
            stacked = winograd_input_tiles(x[i, t0:t1 + 2], t1 - t0, tiles_h,
                                           tiles_w, B_T)
            m = xp.empty(stacked.shape[:2] + (o,), x.dtype)
            for e in range(IN_TILE ** 2):
                xp.matmul(stacked[e], u[e], out=m[e])
            winograd_output(m, bias, y[i, t0:t1], A_T, relu)
    return y


def _winograd_pass(x, u, y, frames, bias):
    """Output frames ``y`` (T, H, W, O) from their padded input frames
    ``x`` (T + 2, Hp, Wp, C): every input frame transformed once, then the
    products and output transforms in chunks of ``frames`` output frames."""
    xp = chainer.backend.get_array_module(x)
    out_t, h, w, _ = y.shape
    tiles_h, tiles_w = -(-h // OUT_TILE), -(-w // OUT_TILE)
    v = xp.empty((IN_TILE ** 2, x.shape[0], tiles_h * tiles_w, x.shape[3]),
                 x.dtype)
    run_chunks(lambda f0, f1: input_transform(x[f0:f1], tiles_h, tiles_w,
                                              v[:, f0:f1]),
               split(x.shape[0], -(-x.shape[0] // frames)))
    run_chunks(lambda t0, t1: _product_and_output(
        v[:, t0:t1 + 2], u, tiles_h, tiles_w, y[t0:t1], bias),
        [(t0, min(t0 + frames, out_t)) for t0 in range(0, out_t, frames)])


def _product_and_output(v, u, tiles_h, tiles_w, y, bias):
    """Output frames ``y`` from their transformed input frames ``v``."""
    out_t = y.shape[0]
    m = matmul(stack_time_taps(v, out_t), u)
    output_transform(m, out_t, tiles_h, tiles_w, y)
    if bias is not None:
        bias_relu(y, bias, y)


def _combine(coefficients, terms, out):
    """``out = sum(c * term)``: an addition or a subtraction for each
    coefficient of +-1 (all of those of ``B_T`` and ``A_T``), a product
    for any other."""
    xp = chainer.backend.get_array_module(out)
    started = False
    for c, term in zip(coefficients, terms):
        if c == 0:
            continue
        if not started:
            xp.multiply(term, c, out=out)
            started = True
        elif c == 1:
            xp.add(out, term, out=out)
        elif c == -1:
            xp.subtract(out, term, out=out)
        else:
            out += c * term


def input_transform(frames, tiles_h, tiles_w, v):
    """``B^T d B`` of every 4x4 tile (tiles overlapping by 2) of ``frames``
    (Tc, Hp, Wp, C), padded, into ``v`` (16, Tc, tiles, C).

    The row transform runs on whole rows before the columns are cut into
    tiles, on half the data a per-tile transform would read.
    """
    xp = chainer.backend.get_array_module(frames)
    tc, _, wp, c = frames.shape
    # rows[i] = sum_k B_T[i, k] * (row k of every tile), over whole rows.
    tile_rows = [frames[:, k:k + OUT_TILE * tiles_h:OUT_TILE]
                 for k in range(IN_TILE)]
    rows = xp.empty((IN_TILE, tc, tiles_h, wp, c), frames.dtype)
    for i in range(IN_TILE):
        _combine(B_T[i], tile_rows, rows[i])
    for i in range(IN_TILE):
        tile_columns = [rows[i, :, :, k:k + OUT_TILE * tiles_w:OUT_TILE]
                        for k in range(IN_TILE)]
        for j in range(IN_TILE):
            _combine(B_T[j], tile_columns,
                     v[i * IN_TILE + j].reshape(tc, tiles_h, tiles_w, c))


def stack_time_taps(v, out_t):
    """(16, out_t + 2, P, C) -> (16, out_t * P, 3 * C): output frame t
    reads input frames t, t + 1, t + 2 (of the padded input)."""
    xp = chainer.backend.get_array_module(v)
    e, _, p, c = v.shape
    stacked = xp.empty((e, out_t, p, 3, c), v.dtype)
    for dt in range(3):
        stacked[:, :, :, dt] = v[:, dt:dt + out_t]
    return stacked.reshape(e, out_t * p, 3 * c)


def output_transform(m, out_t, tiles_h, tiles_w, y):
    """(16, out_t * P, O) -> ``y`` (out_t, H, W, O): ``A^T m A`` of every
    tile, cropped to the output size."""
    xp = chainer.backend.get_array_module(m)
    o = m.shape[-1]
    m = m.reshape(IN_TILE, IN_TILE, out_t, tiles_h, tiles_w, o)
    rows = xp.empty((OUT_TILE, IN_TILE, out_t, tiles_h, tiles_w, o), m.dtype)
    for i in range(OUT_TILE):
        _combine(A_T[i], [m[k] for k in range(IN_TILE)], rows[i])
    h, w = y.shape[1:3]
    if (tiles_h * OUT_TILE, tiles_w * OUT_TILE) == (h, w):
        full = y
    else:
        full = xp.empty((out_t, tiles_h * OUT_TILE, tiles_w * OUT_TILE, o),
                        m.dtype)
    tiled = full.reshape(out_t, tiles_h, OUT_TILE, tiles_w, OUT_TILE, o)
    for i in range(OUT_TILE):
        for j in range(OUT_TILE):
            _combine(A_T[j], [rows[i, k] for k in range(IN_TILE)],
                     tiled[:, :, i, :, j])
    if full is not y:
        y[...] = full[:, :h, :w]
