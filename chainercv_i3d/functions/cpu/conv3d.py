"""The padded 3D convolution of training on a CPU, as threaded GEMMs.

The same function as ``F.convolution_nd`` on an explicitly padded input (and
the same gradients, to float32 rounding). Activations stay NCTHW, the
layout of the rest of the graph, and the work runs in chunks in threads
with single-threaded BLAS (:mod:`chainercv_i3d.utils.threads`), one of
three ways by the kernel:

* 3x3x3 with stride 1 and one voxel of padding (most of I3D's arithmetic)
  on frames of ``WINOGRAD_MIN_PIXELS`` or more: Winograd's algorithm, for
  the output and both gradients (:mod:`chainercv_i3d.functions.cpu.winograd`);
* 1x1x1: a plain product per sample, with no copy;
* any other (the stem, the 3x3x3 on small frames): im2col chunks written by
  a kernel, and their products (:mod:`chainercv_i3d.functions.cpu.im2col`).
  Chainer instead builds the im2col of the whole batch (27 to 343 times the
  input) and makes one product.

``gx`` of a convolution with stride 1 is itself a convolution: of ``gy``
with the kernel flipped and its channel axes swapped, padded by ``k - 1 -
before`` and ``k - 1 - after``; it runs through the forward. Strided
convolutions (in I3D only the stem, whose input needs no gradient in
training) take ``gx`` from Chainer's deconvolution.

Double backpropagation is not implemented (nothing in training needs it):
it raises ``NotImplementedError``.
"""

import chainer
import chainer.functions as F
import numpy

from chainercv_i3d.functions.dispatch import require_numpy
from chainercv_i3d.utils.threads import chunk_elements
from chainercv_i3d.utils.threads import cpu_chunks
from chainercv_i3d.utils.threads import run_chunks
from chainercv_i3d.utils.threads import split
from chainercv_i3d.utils.threads import workers
from chainercv_i3d.functions.cpu.im2col import im2col_correlate
from chainercv_i3d.functions.cpu.im2col import im2col_weight_grad
from chainercv_i3d.functions.cpu.winograd import winograd_correlate
from chainercv_i3d.functions.cpu.winograd import winograd_input_grad
from chainercv_i3d.functions.cpu.winograd import winograd_weight_grad

# Upper bound of one chunk of a 1x1x1 convolution (input and output) on a
# CPU, in elements (4 MiB).
CHUNK_ELEMENTS = 2 ** 20
# Smallest frame (H * W) a 3x3x3 convolution runs Winograd's algorithm on:
# forward and both gradients measured 1.2 to 1.5 times faster than
# functions.cpu.im2col on I3D's 14x14 frames, no faster on its 7x7 ones (too few
# positions for the weight's transforms and gW's short products to pay).
WINOGRAD_MIN_PIXELS = 10 * 10


def conv3d_padded(x, W, stride, pads):
    """3D convolution of ``x`` padded with zeros by ``pads``, no bias, on the
    CPU (numpy arrays), with its gradients.

    Args:
        x (chainer.Variable or numpy.ndarray): Input ``(N, C, T, H, W)``.
        W (chainer.Variable or numpy.ndarray): Weight
            ``(O, C, kt, kh, kw)``.
        stride (tuple of int): ``(st, sh, sw)``.
        pads (tuple of tuple of int): ``(before, after)`` zeros per spatial
            axis (TensorFlow's SAME padding is one choice).

    Returns:
        chainer.Variable: ``(N, O, T', H', W')``, ``T' = (T + before + after
        - kt) // st + 1`` and so on.

    Raises:
        ValueError: On arrays that are not numpy, shapes that do not match
            or a kernel larger than the padded input.
    """
    return CPUConv3D(stride, pads).apply((x, W))[0]


class CPUConv3D(chainer.function_node.FunctionNode):
    """``F.convolution_nd(pad(x, pads), W, stride)`` as threaded GEMMs."""

    def __init__(self, stride, pads):
        self.stride = tuple(int(s) for s in stride)
        self.pads = tuple((int(b), int(a)) for b, a in pads)

    def check_type_forward(self, in_types):
        chainer.utils.type_check._argname(in_types, ('x', 'W'))
        x_type, w_type = in_types
        chainer.utils.type_check.expect(
            x_type.dtype.kind == 'f', w_type.dtype == x_type.dtype,
            x_type.ndim == 5, w_type.ndim == 5,
            x_type.shape[1] == w_type.shape[1])

    def forward(self, inputs):
        x, W = inputs
        require_numpy(inputs, 'the CPU convolution of '
                      'chainercv_i3d.functions.cpu.conv3d',
                      'chainer.functions.convolution_nd')
        if len(self.stride) != 3 or len(self.pads) != 3 \
                or min(self.stride) < 1 \
                or min(min(p) for p in self.pads) < 0:
            raise ValueError(
                'stride must be 3 positive ints and pads 3 (before, after) '
                'pairs >= 0, got stride={} pads={}'.format(
                    self.stride, self.pads))
        padded = [n + b + a for n, (b, a) in zip(x.shape[2:], self.pads)]
        if any(k > p for k, p in zip(W.shape[2:], padded)):
            raise ValueError(
                'kernel {} is larger than the padded input {}'.format(
                    W.shape[2:], tuple(padded)))
        self.retain_inputs((0, 1))
        return correlate(x, W, self.stride, self.pads),

    def backward(self, indexes, grad_outputs):
        x, W = self.get_retained_inputs()
        gy, = grad_outputs
        grads = CPUConv3DGrad(self.stride, self.pads, 0 in indexes,
                                1 in indexes).apply((x, W, gy))
        grads = list(grads)
        return tuple(grads.pop(0) if i in indexes else None for i in (0, 1))


class CPUConv3DGrad(chainer.function_node.FunctionNode):
    """The gradients of :class:`CPUConv3D`: ``gx`` and/or ``gW``."""

    def __init__(self, stride, pads, need_x, need_w):
        self.stride = stride
        self.pads = pads
        self.need_x = need_x
        self.need_w = need_w

    def forward(self, inputs):
        x, W, gy = inputs
        outputs = []
        if self.need_x:
            outputs.append(input_grad(x.shape, W, gy, self.stride, self.pads))
        if self.need_w:
            outputs.append(weight_grad(x, gy, W.shape, self.stride,
                                       self.pads))
        return tuple(outputs)

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'double backpropagation through the CPU convolution of '
            'chainercv_i3d.functions.cpu.conv3d is not implemented; use '
            'chainer.functions.convolution_nd for it')


def correlate(x, W, stride, pads):
    """The forward computation on arrays: ``(N, O, T', H', W')``."""
    n, c = x.shape[:2]
    o, ksize = W.shape[0], W.shape[2:]
    w2 = W.reshape(o, -1)
    with cpu_chunks(numpy):
        if _is_winograd(ksize, stride, pads, x.shape):
            return winograd_correlate(x, W)
        if not _is_pointwise(ksize, stride, pads):
            return im2col_correlate(x, W, stride, pads)
        # A 1x1x1 convolution keeps the spatial shape.
        y = numpy.empty((n, o) + x.shape[2:], dtype=x.dtype)
        for i in range(n):
            _pointwise(x[i].reshape(c, -1), w2, y[i].reshape(o, -1))
    return y


def weight_grad(x, gy, w_shape, stride, pads):
    """``gW`` on arrays; of a 1x1x1 convolution, ``sum gy @ x^T`` over
    chunks of positions."""
    n, c = x.shape[:2]
    o, ksize = w_shape[0], w_shape[2:]
    k = int(numpy.prod(w_shape[1:]))
    with cpu_chunks(numpy):
        if _is_winograd(ksize, stride, pads, x.shape):
            return winograd_weight_grad(x, gy)
        if not _is_pointwise(ksize, stride, pads):
            return im2col_weight_grad(x, gy, w_shape, stride, pads)
        rows = [(x[i].reshape(c, -1), gy[i].reshape(o, -1))
                for i in range(n)]
        tasks = [(i, p0, p1) for i in range(n)
                 for p0, p1 in split(rows[i][0].shape[1], workers())]

        def product(i, p0, p1):
            return numpy.matmul(rows[i][1][:, p0:p1], rows[i][0][:, p0:p1].T)
        partials = [None] * workers()

        def accumulate(group, t0, t1):
            total = numpy.zeros((o, k), dtype=x.dtype)
            for task in tasks[t0:t1]:
                total += product(*task)
            partials[group] = total

        groups = split(len(tasks), workers())
        run_chunks(accumulate, [(g,) + bounds
                                for g, bounds in enumerate(groups)])
        gw = sum(p for p in partials if p is not None)
    return gw.reshape(w_shape)


def input_grad(x_shape, W, gy, stride, pads):
    """``gx`` on arrays, of shape ``x_shape``."""
    ksize = W.shape[2:]
    if _is_winograd(ksize, stride, pads, x_shape):
        with cpu_chunks(numpy):
            return winograd_input_grad(W, gy)
    if stride != (1, 1, 1):
        return _strided_input_grad(x_shape, W, gy, stride, pads)
    # Stride 1: correlate gy with the flipped, transposed kernel.
    flipped = numpy.ascontiguousarray(
        W.transpose(1, 0, 2, 3, 4)[:, :, ::-1, ::-1, ::-1])
    # gx[j] = sum_d gy[j + d - (k - 1 - before)] W'[d]: gy padded by
    # k - 1 - before and k - 1 - after; a negative padding (a padding wider
    # than the kernel) crops gy instead.
    grad_pads = [(k - 1 - before, k - 1 - after)
                 for k, (before, after) in zip(ksize, pads)]
    gy = gy[(slice(None), slice(None)) + tuple(
        slice(max(-b, 0), m - max(-a, 0))
        for (b, a), m in zip(grad_pads, gy.shape[2:]))]
    grad_pads = tuple((max(b, 0), max(a, 0)) for b, a in grad_pads)
    gx = correlate(gy, flipped, (1, 1, 1), grad_pads)
    assert gx.shape == tuple(x_shape)
    return gx


def _strided_input_grad(x_shape, W, gy, stride, pads):
    # Chainer's own transposed convolution, then the padding cut away.
    padded = tuple(n + b + a for n, (b, a) in zip(x_shape[2:], pads))
    gx = F.deconvolution_nd(gy, W, stride=stride, outsize=padded).array
    return gx[(slice(None), slice(None)) + tuple(
        slice(b, b + n) for (b, _), n in zip(pads, x_shape[2:]))]


def _is_pointwise(ksize, stride, pads):
    return tuple(ksize) == (1, 1, 1) and tuple(stride) == (1, 1, 1) \
        and not any(b or a for b, a in pads)


def _is_winograd(ksize, stride, pads, x_shape):
    # A 3x3x3 SAME convolution with stride 1 (:mod:`chainercv_i3d.functions.cpu.winograd`) on
    # large enough frames.
    return tuple(ksize) == (3, 3, 3) and tuple(stride) == (1, 1, 1) \
        and tuple(pads) == ((1, 1),) * 3 \
        and x_shape[3] * x_shape[4] >= WINOGRAD_MIN_PIXELS


def _pointwise(rows, w2, y):
    """``y = w2 @ rows`` in column chunks, in threads."""
    pieces = max(workers(), -(-(rows.size + y.size) //
                              chunk_elements(CHUNK_ELEMENTS)))
    run_chunks(lambda p0, p1: numpy.matmul(w2, rows[:, p0:p1],
                                           out=y[:, p0:p1]),
               split(rows.shape[1], pieces))
