"""Batch normalization with batch statistics and ReLU, fused, on a CPU.

In training, :class:`~chainercv_i3d.links.Unit3D` normalizes with the
statistics of the batch, adds ``beta`` (DeepMind's batch norm has no scale)
and applies a ReLU. Chainer runs that as two nodes: ``BatchNormalization``
(a dozen whole-array numpy passes on one core, keeping its input) and
``ReLU`` (keeping its output). Here it is one node, computed in threads over
chunks of channels, each chunk's passes running while it is in the cache;
only the input is kept: the ReLU's mask is recomputed in the backward from
the same float32 operations, so it is the forward's exactly.

The function is Chainer's (``F.relu(F.batch_normalization(x, 1, beta))``)
to float32 rounding, and the running statistics are updated with
``L.BatchNormalization``'s formula (decay, unbiased variance ``m / (m -
1)``). Every channel's sums are taken over its own rows, so the results do
not depend on the thread count or on how channels are grouped.
"""

import chainer
import numpy

from chainercv_i3d.links.parallel import cpu_chunks
from chainercv_i3d.links.parallel import require_numpy
from chainercv_i3d.links.parallel import run_chunks
from chainercv_i3d.links.parallel import split

# Upper bound of one chunk of the input, in elements (1 MiB).
CHUNK_ELEMENTS = 2 ** 18


def batch_norm_relu(x, beta, eps, running_mean=None, running_var=None,
                    decay=0.9):
    """``relu(batch_normalization(x, gamma=1, beta))`` with the batch's
    statistics, on numpy arrays; updates the running statistics in place.

    Args:
        x (chainer.Variable or numpy.ndarray): ``(N, C, ...)``, at least 3
            dimensions; statistics per channel (axis 1).
        beta (chainer.Variable or numpy.ndarray): ``(C,)`` offset.
        eps (float): Added to the variance.
        running_mean (numpy.ndarray): ``(C,)`` updated in place as
            ``L.BatchNormalization`` does, or None.
        running_var (numpy.ndarray): ``(C,)`` likewise (unbiased variance).
        decay (float): Decay of the running statistics.

    Returns:
        chainer.Variable: Same shape as ``x``.

    Raises:
        ValueError: On arrays that are not numpy, or a ``beta`` that does
            not have one value per channel.
    """
    return TrainBatchNormReLU(eps, running_mean, running_var,
                              decay).apply((x, beta))[0]


class TrainBatchNormReLU(chainer.function_node.FunctionNode):
    """Batch normalization (batch statistics, no scale) then ReLU."""

    def __init__(self, eps, running_mean, running_var, decay):
        self.eps = float(eps)
        self.running_mean = running_mean
        self.running_var = running_var
        self.decay = float(decay)

    def check_type_forward(self, in_types):
        chainer.utils.type_check._argname(in_types, ('x', 'beta'))
        x_type, beta_type = in_types
        chainer.utils.type_check.expect(
            x_type.dtype.kind == 'f', beta_type.dtype == x_type.dtype,
            x_type.ndim >= 3, beta_type.ndim == 1)

    def forward(self, inputs):
        x, beta = inputs
        require_numpy(inputs, 'the fused batch norm of '
                      'chainercv_i3d.links.train_bn',
                      'chainer.links.BatchNormalization')
        if beta.shape != (x.shape[1],):
            raise ValueError(
                'beta must have one value per channel of x: x {} beta '
                '{}'.format(x.shape, beta.shape))
        self.retain_inputs((0, 1))
        rows = _rows(x)
        m = rows.shape[0] * rows.shape[2]
        self.mean = numpy.empty(x.shape[1], x.dtype)
        self.inv_std = numpy.empty(x.shape[1], x.dtype)
        var = numpy.empty(x.shape[1], x.dtype)
        y = numpy.empty_like(x)
        y_rows = _rows(y)

        def chunk(c0, c1):
            xs = rows[:, c0:c1]
            mean = _channel_sum(xs) / x.dtype.type(m)
            centered = xs - mean[:, None]
            var[c0:c1] = _channel_sum(numpy.square(centered)) \
                / x.dtype.type(m)
            inv_std = numpy.reciprocal(numpy.sqrt(var[c0:c1] + self.eps,
                                                  dtype=x.dtype))
            self.mean[c0:c1], self.inv_std[c0:c1] = mean, inv_std
            _normalize_relu(xs, mean, inv_std, beta[c0:c1], y_rows[:, c0:c1])

        _run_over_channels(chunk, rows.shape)
        if self.running_mean is not None:
            self._update_running_statistics(var, m)
        return y,

    def _update_running_statistics(self, var, m):
        # L.BatchNormalization's update, operation for operation.
        adjust = m / max(m - 1., 1.)
        self.running_mean *= self.decay
        self.running_mean += (1 - self.decay) * self.mean
        self.running_var *= self.decay
        self.running_var += (1 - self.decay) * adjust * var

    def backward(self, indexes, grad_outputs):
        x, beta = self.get_retained_inputs()
        return TrainBatchNormReLUGrad(self.mean, self.inv_std).apply(
            (x, beta, grad_outputs[0]))


class TrainBatchNormReLUGrad(chainer.function_node.FunctionNode):
    """The gradients of :class:`TrainBatchNormReLU`: ``gx`` and
    ``gbeta``."""

    def __init__(self, mean, inv_std):
        self.mean = mean
        self.inv_std = inv_std

    def forward(self, inputs):
        x, beta, gy = inputs
        rows, gy_rows = _rows(x), _rows(gy)
        m = rows.shape[0] * rows.shape[2]
        gx = numpy.empty_like(x)
        gx_rows = _rows(gx)
        gbeta = numpy.empty_like(beta)

        def chunk(c0, c1):
            mean = self.mean[c0:c1, None]
            inv_std = self.inv_std[c0:c1, None]
            x_hat = (rows[:, c0:c1] - mean) * inv_std
            # The forward's ReLU input, recomputed identically: its mask.
            g = numpy.where(x_hat + beta[c0:c1, None] > 0,
                            gy_rows[:, c0:c1], x.dtype.type(0))
            gbeta[c0:c1] = _channel_sum(g)
            ggamma = _channel_sum(g * x_hat)
            # Chainer's gx: inv_std * (g - (x_hat * ggamma + gbeta) / m).
            x_hat *= ggamma[:, None]
            x_hat += gbeta[c0:c1, None]
            x_hat *= x.dtype.type(1. / m)
            numpy.subtract(g, x_hat, out=g)
            numpy.multiply(g, inv_std, out=gx_rows[:, c0:c1])

        _run_over_channels(chunk, rows.shape)
        return gx, gbeta

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'double backpropagation through the fused batch norm of '
            'chainercv_i3d.links.train_bn is not implemented; use '
            'chainer.links.BatchNormalization for it')


def _rows(x):
    """``(N, C, rest)`` view of ``x``."""
    return x.reshape(x.shape[0], x.shape[1], -1)


def _channel_sum(a):
    """``(C,)`` sums of ``a`` ``(N, C, rest)``: each sample's row summed on
    its own (numpy's pairwise sum), then the samples in order, so that a
    channel's sum does not depend on the other channels of the chunk."""
    sums = a[0].sum(axis=-1)
    for i in range(1, a.shape[0]):
        sums += a[i].sum(axis=-1)
    return sums


def _normalize_relu(xs, mean, inv_std, beta, out):
    numpy.subtract(xs, mean[:, None], out=out)
    out *= inv_std[:, None]
    out += beta[:, None]
    numpy.maximum(out, 0, out=out)


def _run_over_channels(chunk, shape):
    """``chunk(c0, c1)`` over groups of channels, in threads."""
    n, c, rest = shape
    with cpu_chunks(numpy):
        pieces = max(2, -(-n * c * rest // CHUNK_ELEMENTS))
        run_chunks(chunk, split(c, pieces))
