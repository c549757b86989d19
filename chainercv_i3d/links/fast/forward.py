"""The layers of the fast inference engine and their convolutions and pools.

The same function as the link's Chainer path, computed differently
(:class:`~chainercv_i3d.links.fast.engine.FastEngine` walks the layers):

* activations are kept channels-last, ``(N, T, H, W, C)``, so that every
  convolution is a matrix product over the channels;
* each batch normalization is folded into its convolution (weights scaled
  by ``1 / sqrt(var + eps)``, a bias added), bias and ReLU applied to each
  chunk of the output while it is in the cache;
* the three 1x1x1 convolutions of an Inception block that read the same
  input are one matrix product, split while in the cache
  (:func:`conv_1x1_split`);
* the 3x3x3 convolutions with 64 input channels or more (96% of their
  arithmetic) use Winograd's F(2x2, 3x3) over (height, width), 2.25 times
  fewer multiplications (:mod:`chainercv_i3d.links.fast.winograd`);
* the others, and the stem (7x7x7, stride 2, 3 or 2 channels), are im2col
  products;
* max pools are separable, padding never materialized;
* on a CPU (numpy, float32) the element-wise work is compiled: numba
  kernels fused with single-threaded BLAS products in cache-sized chunks
  run in threads (:mod:`~chainercv_i3d.links.fast.cpu_winograd`,
  :mod:`~chainercv_i3d.links.fast.cpu_im2col`,
  :mod:`~chainercv_i3d.links.fast.cpu_max_pool`,
  :mod:`~chainercv_i3d.links.fast.cpu_layout`;
  :mod:`chainercv_i3d.utils.threads`), and the activations reuse one kept
  buffer (:class:`Workspace`); float16 on numpy (a check of precision) runs
  the array versions below;
* on a GPU, the chunks are large and run in order, products run on cuBLAS
  into contiguous buffers, and the bias and ReLU (and Winograd's transforms)
  are CuPy kernels that write straight into the output, channel slices
  included (:mod:`chainercv_i3d.links.fast.cuda_kernels`).

Without autograd: the link uses the engine in test mode without backprop
(see ``I3D.fast_inference``). Nothing inside the network copies between
host and device.
"""

import chainer
import numpy

from chainercv_i3d.functions.tf_same_padding import same_output_shape
from chainercv_i3d.functions.tf_same_padding import same_padding_nd
from chainercv_i3d.links.fast.cpu_im2col import cpu_conv_im2col
from chainercv_i3d.links.fast.cpu_max_pool import cpu_max_pool_same
from chainercv_i3d.links.fast.cuda_kernels import bias_relu
from chainercv_i3d.links.fast.cuda_kernels import matmul
from chainercv_i3d.links.fast.winograd import winograd_conv
from chainercv_i3d.links.fast.winograd import winograd_weight
from chainercv_i3d.utils.threads import chunk_elements
from chainercv_i3d.utils.threads import run_chunks
from chainercv_i3d.utils.threads import split
from chainercv_i3d.utils.threads import workers

# Fewest input channels for which a 3x3x3 convolution is faster through
# Winograd (products with K = 3 * C) than through im2col (K = 27 * C):
# measured on a 2-core CPU for every 3x3x3 shape of I3D at 64 frames.
WINOGRAD_CHANNELS = 64

# Upper bound of one chunk's im2col or input rows on a CPU, in elements
# (4 MiB).
CHUNK_ELEMENTS = 2 ** 20


def product_bias_relu(a, weight, bias, out):
    """``out = max(a @ weight + bias, 0)``; only the product if ``bias`` is
    None.

    numpy writes the product into ``out`` and adds the bias in place, while
    the chunk is in the cache. cuBLAS writes a contiguous product, and one
    kernel adds the bias and writes it to ``out`` of any strides (a channel
    slice): CuPy would otherwise copy into a strided ``out`` itself.

    Args:
        a: ``(M, K)``.
        weight: ``(K, O)``.
        bias: ``(O,)`` float32 or None.
        out: ``(..., O)`` holding ``M`` rows; on numpy its rows must be
            one strided axis (a view's reshape to ``(M, O)``).

    Returns:
        ``out``.
    """
    xp = chainer.backend.get_array_module(a)
    if xp is numpy:
        rows = out.reshape(-1, out.shape[-1])
        matmul(a, weight, out=rows)
        if bias is not None:
            bias_relu(rows, bias, rows)
        return out
    product = matmul(a, weight).reshape(out.shape)
    if bias is None:
        out[...] = product
        return out
    return bias_relu(product, bias, out)


class FoldedUnit(object):
    """A Unit3D with its batch normalization folded into the convolution.

    Folded in float32 (Winograd's transform in float64), then cast to
    ``dtype``; the bias stays float32.
    """

    def __init__(self, unit, dtype=numpy.float32):
        xp = chainer.backend.get_array_module(unit.conv.W.array)
        bn = unit.bn
        scale = 1 / xp.sqrt(bn.avg_var + bn.eps)
        w = unit.conv.W.array * scale[:, None, None, None, None]
        self.bias = (bn.beta.array - bn.avg_mean * scale).astype(
            numpy.float32)
        self.ksize = unit.ksize
        self.stride = unit.stride
        self.out_channels = w.shape[0]
        self.winograd = self.ksize == (3, 3, 3) \
            and self.stride == (1, 1, 1) and w.shape[1] >= WINOGRAD_CHANNELS
        if self.winograd:
            self.weight = winograd_weight(w, dtype)
        else:
            # (kt * kh * kw * in_c, out_c): rows in the order of the im2col.
            self.weight = xp.ascontiguousarray(
                w.transpose(2, 3, 4, 1, 0).reshape(-1, self.out_channels),
                dtype=dtype)

    def output_shape(self, in_shape):
        """The output shape for a channels-last input of ``in_shape``."""
        return tuple(in_shape[:1]) + same_output_shape(
            in_shape[1:4], self.stride) + (self.out_channels,)

    def __call__(self, x, out=None):
        """ReLU of the convolution plus bias, channels-last, written to
        ``out`` (for example a channel slice) if given."""
        if self.ksize == (1, 1, 1) and self.stride == (1, 1, 1):
            return conv_1x1(x, self.weight, self.bias, out)
        if self.winograd:
            return winograd_conv(x, self.weight, self.bias, out)
        return conv_im2col(x, self.weight, self.ksize, self.stride,
                           self.bias, out)


def _pad(x, pads, value):
    xp = chainer.backend.get_array_module(x)
    if not any(b or a for b, a in pads):
        return x
    return xp.pad(x, ((0, 0),) + tuple(pads) + ((0, 0),), mode='constant',
                  constant_values=value)


def conv_1x1(x, weight, bias, out=None):
    """A 1x1x1 convolution, channels-last, then bias and ReLU: one product
    per block of rows.

    Args:
        x: ``(N, T, H, W, C)``.
        weight: ``(C, O)``, of the dtype of ``x``.
        bias: ``(O,)`` float32, or None (no bias, no ReLU).
        out: ``(N, T, H, W, O)`` to write to; a new array if None.

    Returns:
        ``(N, T, H, W, O)``.
    """
    xp = chainer.backend.get_array_module(x)
    rows = x.reshape(-1, x.shape[-1])
    if out is None:
        out = xp.empty(x.shape[:4] + (weight.shape[1],), dtype=x.dtype)
    y = out.reshape(rows.shape[0], weight.shape[1])  # a view
    pieces = max(workers(), -(-(rows.size + y.size)
                              // chunk_elements(CHUNK_ELEMENTS)))

    def block(r0, r1):
        product_bias_relu(rows[r0:r1], weight, bias, y[r0:r1])

    run_chunks(block, split(rows.shape[0], pieces))
    return out


def conv_1x1_split(x, weight, bias, outs):
    """:func:`conv_1x1` with its output channels split among ``outs``.

    On a CPU each block of rows is multiplied once into a small array, and
    its columns are copied to the outputs while in the cache (no pass over
    a merged output); on a GPU, one merged product and a copy per output.

    Args:
        x: ``(N, T, H, W, C)``, C-contiguous.
        weight: ``(C, O)``.
        bias: ``(O,)`` float32, or None (no bias, no ReLU).
        outs (list): ``(N, T, H, W, O_k)`` arrays, ``sum(O_k) = O``, whose
            rows are one strided axis (channel slices are).
    """
    xp = chainer.backend.get_array_module(x)
    bounds = numpy.cumsum([0] + [o.shape[-1] for o in outs])
    if xp is not numpy:
        merged = conv_1x1(x, weight, bias)
        for o, a, b in zip(outs, bounds[:-1], bounds[1:]):
            o[...] = merged[..., a:b]
        return
    rows = x.reshape(-1, x.shape[-1])
    targets = [o.reshape(rows.shape[0], o.shape[-1]) for o in outs]  # views
    pieces = max(workers(), -(-(rows.size + rows.shape[0] * weight.shape[1])
                              // chunk_elements(CHUNK_ELEMENTS)))

    def block(r0, r1):
        product = product_bias_relu(
            rows[r0:r1], weight, bias,
            numpy.empty((r1 - r0, weight.shape[1]), x.dtype))
        for target, a, b in zip(targets, bounds[:-1], bounds[1:]):
            target[r0:r1] = product[:, a:b]

    run_chunks(block, split(rows.shape[0], pieces))


def conv_im2col(x, weight, ksize, stride, bias, out=None):
    """Any SAME convolution, channels-last (in I3D: the stem, 7x7x7 with
    stride 2 on 3 or 2 channels, and the 3x3x3 ones on few channels).

    With few channels the full im2col (K = kt * kh * kw * C, 1029 for the
    stem) is small per output row and makes one well-shaped product per
    chunk of output rows. It is copied from a strided view of the padded
    input: for an output position and a (dt, dh) tap, the kw * C values are
    contiguous.

    Args:
        x: ``(N, T, H, W, C)``.
        weight: ``(kt * kh * kw * C, O)`` from :class:`FoldedUnit`.
        ksize (tuple of int): ``(kt, kh, kw)``.
        stride (tuple of int): ``(st, sh, sw)``.
        bias: ``(O,)`` float32 added, followed by ReLU, on every chunk of
            the output; None: neither.
        out: ``(N, T', H', W', O)`` to write to; a new array if None.

    Returns:
        ``(N, T', H', W', O)``, ``T' = ceil(T / st)`` and so on.
    """
    xp = chainer.backend.get_array_module(x)
    if xp is numpy and x.dtype != numpy.float16:  # compiled, on a CPU
        return cpu_conv_im2col(x, weight, ksize, stride, bias, out)
    n, t, h, w, c = x.shape
    kt, kh, kw = ksize
    st, sh, sw = stride
    out_t, out_h, out_w = same_output_shape((t, h, w), stride)
    x = xp.ascontiguousarray(_pad(x, same_padding_nd((t, h, w), ksize, stride),
                                  0))
    _, tp, hp, wp, _ = x.shape
    e = x.itemsize
    view = xp.lib.stride_tricks.as_strided(
        x, shape=(n, out_t, out_h, out_w, kt, kh, kw * c),
        strides=(tp * hp * wp * c * e, st * hp * wp * c * e, sh * wp * c * e,
                 sw * c * e, hp * wp * c * e, wp * c * e, e))
    y = out if out is not None else xp.empty(
        (n, out_t, out_h, out_w, weight.shape[1]), dtype=x.dtype)
    rows = max(1, chunk_elements(CHUNK_ELEMENTS) // (out_w * weight.shape[0]))
    if rows < out_h:  # a CPU: chunks of rows of one frame
        chunks = [(i, f, f + 1, r0, min(r0 + rows, out_h)) for i in range(n)
                  for f in range(out_t) for r0 in range(0, out_h, rows)]
    else:  # large chunks (a GPU): whole frames
        frames = rows // out_h
        chunks = [(i, f, min(f + frames, out_t), 0, out_h) for i in range(n)
                  for f in range(0, out_t, frames)]

    def chunk(i, f0, f1, r0, r1):
        cols = xp.ascontiguousarray(view[i, f0:f1, r0:r1])
        product_bias_relu(cols.reshape(-1, weight.shape[0]), weight, bias,
                          y[i, f0:f1, r0:r1])

    run_chunks(chunk, chunks)
    return y


def max_pool_same(x, ksize, stride, out=None):
    """TensorFlow's SAME max pool, channels-last, written to ``out`` (a
    contiguous array of the output's shape) if given.

    Separable (a running maximum along one axis at a time), in chunks of
    output frames. Padding is never materialized: a window's taps outside
    the input are skipped, as a padding of -inf would be.
    """
    xp = chainer.backend.get_array_module(x)
    if xp is numpy and x.dtype != numpy.float16:  # compiled, on a CPU
        return cpu_max_pool_same(x, ksize, stride, out)
    n, t, h, w, c = x.shape
    kt, kh, kw = ksize
    st, sh, sw = stride
    (pt, _), (ph, _), (pw, _) = same_padding_nd((t, h, w), ksize, stride)
    out_t, out_h, out_w = same_output_shape((t, h, w), stride)
    y = out if out is not None else xp.empty((n, out_t, out_h, out_w, c),
                                             dtype=x.dtype)
    frames = max(1, chunk_elements(CHUNK_ELEMENTS) // (h * w * c))

    def chunk(i, o0, o1):
        pooled = _max_along(x[i], 0, kt, st, o0 * st - pt, o1 - o0)
        pooled = _max_along(pooled, 1, kh, sh, -ph, out_h)
        y[i, o0:o1] = _max_along(pooled, 2, kw, sw, -pw, out_w)

    run_chunks(chunk, [(i, o0, min(o0 + frames, out_t)) for i in range(n)
                       for o0 in range(0, out_t, frames)])
    return y


def _max_along(x, axis, k, stride, first, count):
    """``y[j] = max(x[first + j * stride + d] for d < k)`` along ``axis``,
    for ``j < count``, skipping indices outside ``x`` (``first`` is
    negative where the window starts in the padding)."""
    xp = chainer.backend.get_array_module(x)
    shape = list(x.shape)
    size, shape[axis] = shape[axis], count
    y = xp.full(shape, -numpy.inf, dtype=x.dtype)
    for d in range(k):
        # Outputs j whose tap first + j * stride + d lies in [0, size).
        lo = max(0, -(-(-first - d) // stride))
        hi = min(count, (size - 1 - first - d) // stride + 1)
        if hi > lo:
            start = first + lo * stride + d
            source = _slice(x, axis, start, start + (hi - lo - 1) * stride + 1,
                            stride)
            target = _slice(y, axis, lo, hi, 1)
            xp.maximum(target, source, out=target)
    return y


def _slice(x, axis, start, stop, step):
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop, step)
    return x[tuple(index)]


class FastInception(object):
    """An InceptionBlock with its three 1x1x1 input convolutions merged."""

    def __init__(self, block, dtype=numpy.float32):
        xp = chainer.backend.get_array_module(block.branch0.conv.W.array)
        units = [FoldedUnit(block.branch0, dtype),
                 FoldedUnit(block.branch1_reduce, dtype),
                 FoldedUnit(block.branch2_reduce, dtype)]
        self.split = numpy.cumsum([u.out_channels for u in units])[:-1]
        self.weight = xp.concatenate([u.weight for u in units], axis=1)
        self.bias = xp.concatenate([u.bias for u in units])
        self.branches = [FoldedUnit(block.branch1, dtype),
                         FoldedUnit(block.branch2, dtype),
                         FoldedUnit(block.branch3, dtype)]
        self.out_channels = block.out_channels
        self.pool = block.pool3

    def output_shape(self, in_shape):
        """The output shape for a channels-last input of ``in_shape``."""
        return tuple(in_shape[:4]) + (self.out_channels,)

    def scratch_shapes(self, in_shape):
        """``{name: shape}`` of the block's temporaries for a channels-last
        input of ``in_shape``: the inputs of branch1 and branch2, and of
        branch3 (the pooled input)."""
        c0, r1 = (int(s) for s in self.split)
        positions = tuple(in_shape[:4])
        return {'reduced 1': positions + (r1 - c0,),
                'reduced 2': positions + (self.weight.shape[1] - r1,),
                'pooled': tuple(in_shape)}

    def __call__(self, x, out=None, scratch=None):
        """Each branch writes straight into its channels of the output
        (``out`` if given); the two reduced inputs and the pooled input go
        to the arrays of ``scratch`` (``{name: array}`` of
        :meth:`scratch_shapes`) if given."""
        xp = chainer.backend.get_array_module(x)
        y = out if out is not None else xp.empty(self.output_shape(x.shape),
                                                 dtype=x.dtype)
        if scratch is None:
            scratch = {key: xp.empty(shape, x.dtype) if key != 'pooled'
                       else None
                       for key, shape in self.scratch_shapes(x.shape).items()}
        c0 = int(self.split[0])
        reduced = [scratch['reduced 1'], scratch['reduced 2']]
        pooled = scratch['pooled']
        # branch0 straight into its channels, the reduced inputs of
        # branch1 and branch2 into arrays of their own (contiguous).
        conv_1x1_split(x, self.weight, self.bias, [y[..., :c0]] + reduced)
        inputs = reduced + [max_pool_same(x, self.pool.ksize, self.pool.stride,
                                          pooled)]
        start = c0
        for unit, branch_input in zip(self.branches, inputs):
            stop = start + unit.out_channels
            unit(branch_input, out=y[..., start:stop])
            start = stop
        return y


class Workspace(object):
    """One host buffer that the activations of a forward on a CPU reuse.

    A new numpy array of more than 32 MiB is memory the kernel maps anew
    and faults in at its first touch (glibc serves it with ``mmap`` and
    unmaps it when freed): measured here, writing I3D's stem output into a
    new array instead of a kept one took 1.68 against 1.45 s for a 4x64
    batch, and a whole 1x64 forward 1.07 against 1.02 s. The engine places
    each layer's output at the other end of this buffer from the layer's
    input (an Inception block's temporaries between them), so a forward
    touches no new memory after the first of its size; CuPy's memory pool
    does the same on a GPU. Its size is the largest input + output +
    temporaries of one layer: what fresh arrays would hold at the same
    moment, so the peak memory of a forward does not grow (it is kept
    between forwards: :meth:`clear` frees it).

    Args:
        max_bytes (int): The largest buffer kept; a forward that needs more
            runs on fresh arrays.
    """

    def __init__(self, max_bytes=2 ** 31):
        self.max_bytes = max_bytes
        self._buffer = None

    def reserve(self, nbytes):
        """Makes the buffer at least ``nbytes`` long; returns False (and
        keeps nothing new) if that is more than ``max_bytes``."""
        if nbytes > self.max_bytes:
            return False
        if self._buffer is None or self._buffer.size < nbytes:
            self._buffer = None  # freed before the larger one
            self._buffer = numpy.empty(nbytes, numpy.uint8)
        return True

    def array(self, offset, shape, dtype):
        """A view of ``shape`` and ``dtype`` at byte ``offset``."""
        size = int(numpy.prod(shape)) * numpy.dtype(dtype).itemsize
        return self._buffer[offset:offset + size].view(dtype).reshape(shape)

    @property
    def nbytes(self):
        """Bytes held."""
        return 0 if self._buffer is None else self._buffer.size

    def clear(self):
        """Frees the buffer."""
        self._buffer = None
