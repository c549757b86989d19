"""The max pool of training on a CPU: separable, threaded, with its backward.

The same function as ``F.max_pooling_nd`` on an input padded with ``-inf``
(``cover_all=False``), with the same gradient: Chainer builds
the im2col of every window (27 copies of the input for a 3x3x3 pool) and
sends each output's gradient to the first maximum of its window in
(t, h, w) order; here the maximum is taken along one axis at a time (w,
then h, then t) and the backward goes through the three stages in reverse,
each sending the gradient to the first of its taps that equals the stage's
maximum. The first maximum along t, then h, then w is the first in (t, h, w)
order, so even ties (the zeros after a ReLU) route as Chainer routes them.
The outputs are identical; an input that is the maximum of several windows
sums their gradients in another order (a float32 rounding apart).

Padding is never materialized: a window's taps outside the input are
skipped, as taps of ``-inf`` would be. The work runs in threads over chunks
of channels (:mod:`chainercv_i3d.links.parallel`), each chunk doing all its
stages while it is in the cache. The stage outputs are recomputed in the
backward rather than kept.
"""

import chainer
import numpy

from chainercv_i3d.links.parallel import chunk_elements
from chainercv_i3d.links.parallel import cpu_chunks
from chainercv_i3d.links.parallel import require_numpy
from chainercv_i3d.links.parallel import run_chunks
from chainercv_i3d.links.parallel import split
from chainercv_i3d.links.parallel import workers

# Upper bound of the input of one chunk on a CPU, in elements (2 MiB).
CHUNK_ELEMENTS = 2 ** 19


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
    return TrainMaxPool3D(ksize, stride, pads).apply((x,))[0]


class TrainMaxPool3D(chainer.function_node.FunctionNode):
    """``F.max_pooling_nd(pad(x, pads, -inf), ksize, stride)``, separable."""

    def __init__(self, ksize, stride, pads):
        self.ksize = tuple(int(k) for k in ksize)
        self.stride = tuple(int(s) for s in stride)
        self.pads = tuple((int(b), int(a)) for b, a in pads)

    def check_type_forward(self, in_types):
        chainer.utils.type_check._argname(in_types, ('x',))
        x_type, = in_types
        chainer.utils.type_check.expect(x_type.dtype.kind == 'f',
                                        x_type.ndim == 5)

    def forward(self, inputs):
        x, = inputs
        require_numpy((x,), 'the training max pool of '
                      'chainercv_i3d.links.train_pool',
                      'chainer.functions.max_pooling_nd')
        self._check(x.shape)
        self.retain_inputs((0,))
        y = numpy.empty(x.shape[:2] + self._out_size(x.shape), x.dtype)

        def chunk(c0, c1):
            y[:, c0:c1] = self._stages(x[:, c0:c1])[-1]

        _run_over_channels(chunk, x.shape)
        return y,

    def backward(self, indexes, grad_outputs):
        x, = self.get_retained_inputs()
        return TrainMaxPool3DGrad(self).apply((x, grad_outputs[0]))

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

    def _stage_axes(self, shape):
        """``(axis, k, s, first, count)`` per stage, in the order run: w,
        then h, then t (axes counted from the end); windows of 1 with
        stride 1 skipped."""
        out = self._out_size(shape)
        return [(i - 3, self.ksize[i], self.stride[i], -self.pads[i][0],
                 out[i]) for i in (2, 1, 0)
                if self.ksize[i] > 1 or self.stride[i] > 1]

    def _stages(self, x):
        """``[x, output of each stage...]`` of a chunk of channels."""
        outputs = [x]
        for axis, k, s, first, count in self._stage_axes(x.shape):
            outputs.append(_max_along(outputs[-1], axis, k, s, first, count))
        return outputs


class TrainMaxPool3DGrad(chainer.function_node.FunctionNode):
    """The gradient of :class:`TrainMaxPool3D` with respect to ``x``."""

    def __init__(self, pool):
        self.pool = pool

    def forward(self, inputs):
        x, gy = inputs
        gx = numpy.empty_like(x)
        pool = self.pool
        axes = pool._stage_axes(x.shape)

        def chunk(c0, c1):
            stages = pool._stages(x[:, c0:c1])
            g = gy[:, c0:c1]
            for (axis, k, s, first, _), source, result in zip(
                    reversed(axes), reversed(stages[:-1]),
                    reversed(stages[1:])):
                g = _max_along_grad(source, result, g, axis, k, s, first)
            gx[:, c0:c1] = g

        _run_over_channels(chunk, x.shape)
        return gx,

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'double backpropagation through the training max pool of '
            'chainercv_i3d.links.train_pool is not implemented; use '
            'chainer.functions.max_pooling_nd for it')


def _run_over_channels(chunk, shape):
    """Calls ``chunk(c0, c1)`` over ranges of channels, in threads."""
    c = shape[1]
    elements = int(numpy.prod(shape))
    with cpu_chunks(numpy):
        pieces = max(workers(),
                     -(-elements // chunk_elements(CHUNK_ELEMENTS)))
        run_chunks(chunk, split(c, pieces))


def _taps(size, k, stride, first, count):
    """``(d, lo, hi, start)`` per tap ``d`` of a window: outputs ``lo:hi``
    read inputs ``start, start + stride, ...`` (``first + j * stride + d``
    for output ``j``, inside ``[0, size)``)."""
    taps = []
    for d in range(k):
        lo = max(0, -(-(-first - d) // stride))
        hi = min(count, (size - 1 - first - d) // stride + 1)
        if hi > lo:
            taps.append((d, lo, hi, first + lo * stride + d))
    return taps


def _slice(x, axis, start, stop, step=1):
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop, step)
    return x[tuple(index)]


def _max_along(x, axis, k, stride, first, count):
    """``y[j] = max(x[first + j * stride + d] for d < k)`` along ``axis``
    for ``j < count``, taps outside ``x`` skipped."""
    shape = list(x.shape)
    size, shape[axis] = shape[axis], count
    y = numpy.full(shape, -numpy.inf, dtype=x.dtype)
    for d, lo, hi, start in _taps(size, k, stride, first, count):
        source = _slice(x, axis, start, start + (hi - lo - 1) * stride + 1,
                        stride)
        target = _slice(y, axis, lo, hi)
        numpy.maximum(target, source, out=target)
    return y


def _max_along_grad(x, y, gy, axis, k, stride, first):
    """The gradient of :func:`_max_along` with respect to ``x``: each
    ``gy[j]`` goes to the first tap of window ``j`` equal to ``y[j]``.

    ``rest`` holds the gradients not yet delivered: a tap that reaches the
    maximum takes its output's rest and leaves 0 (``g - g``, exactly), so
    later taps equal to the maximum take nothing.
    """
    gx = numpy.zeros(x.shape, dtype=gy.dtype)
    rest = gy.copy()
    taps = _taps(x.shape[axis], k, stride, first, y.shape[axis])
    for i, (d, lo, hi, start) in enumerate(taps):
        stop = start + (hi - lo - 1) * stride + 1
        rest_part = _slice(rest, axis, lo, hi)
        taken = numpy.equal(_slice(x, axis, start, stop, stride),
                            _slice(y, axis, lo, hi))
        taken = numpy.multiply(rest_part, taken, out=numpy.empty_like(
            rest_part))
        target = _slice(gx, axis, start, stop, stride)
        target += taken
        if i + 1 < len(taps):
            rest_part -= taken
    return gx
