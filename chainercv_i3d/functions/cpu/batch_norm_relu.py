"""Batch normalization with batch statistics and ReLU, fused, on a CPU.

In training, :class:`~chainercv_i3d.links.Unit3D` normalizes with the
statistics of the batch, adds ``beta`` (DeepMind's batch norm has no scale)
and applies a ReLU. Chainer runs that as two nodes: ``BatchNormalization``
(a dozen whole-array numpy passes on one core, keeping its input) and
``ReLU`` (keeping its output). Here it is one node of two numba kernels,
run in threads over chunks of channels:

* the forward reads a channel once for its sum and sum of squares and once
  more to write ``relu((x - mean) * inv_std + beta)``;
* the backward reads ``x`` and ``gy`` once for the two sums of the masked
  ``gy`` (``gbeta`` and ``ggamma``) and once more to write ``gx``.

Only the input is kept: the ReLU's mask is recomputed in the backward from
the same float32 operations as the forward's, so it is the forward's
exactly, and recomputing it is free (the backward needs ``x_hat`` anyway;
reading a kept byte mask instead measured up to 15% slower). Inputs whose
channels are each contiguous, such as the channel slices that Chainer's
concat passes back as gradients, are read in place, not copied.

The function is Chainer's (``F.relu(F.batch_normalization(x, 1, beta))``)
to float32 rounding, and the running statistics are updated with
``L.BatchNormalization``'s formula (decay, unbiased variance ``m / (m -
1)``). The sums are float64, each taken over its own channel's rows in a
fixed order (64 partial sums, one per position modulo 64, then added in
order), so the results do not depend on the thread count or on how
channels are grouped. The sums of the forward are of ``x`` minus the
channel's first value, so that the variance keeps its precision when the
mean is far from zero.
"""

import chainer
import numba
import numpy

from chainercv_i3d.functions.dispatch import require_numpy
from chainercv_i3d.utils.threads import cpu_chunks
from chainercv_i3d.utils.threads import run_chunks
from chainercv_i3d.utils.threads import split

# Upper bound of one chunk of the input, in elements (1 MiB of float32);
# an input of at most this size runs in this thread.
CHUNK_ELEMENTS = 2 ** 18
# Partial sums per channel: a block of the row is added element-wise to
# them, a loop that compiles to vector instructions (a single running sum
# would not: without fastmath the compiler keeps the order of the adds).
LANES = 64


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
        ValueError: On arrays that are not numpy, a ``beta`` that does not
            have one value per channel, or an ``x`` with no values in a
            channel.
    """
    return CPUBatchNormReLU(eps, running_mean, running_var,
                              decay).apply((x, beta))[0]


class CPUBatchNormReLU(chainer.function_node.FunctionNode):
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
                      'chainercv_i3d.functions.cpu.batch_norm_relu',
                      'chainer.links.BatchNormalization')
        if beta.shape != (x.shape[1],):
            raise ValueError(
                'beta must have one value per channel of x: x {} beta '
                '{}'.format(x.shape, beta.shape))
        if x.size == 0:
            raise ValueError(
                'x must have at least one value per channel to take its '
                'batch statistics, got shape {}'.format(x.shape))
        self.retain_inputs((0, 1))
        x_flat, x_strides = _channel_rows(x)
        beta = numpy.ascontiguousarray(beta)
        self.mean = numpy.empty(x.shape[1], x.dtype)
        self.inv_std = numpy.empty(x.shape[1], x.dtype)
        var = numpy.empty(x.shape[1], x.dtype)
        y = numpy.empty(x.shape, x.dtype)
        y_rows = _rows(y)

        def chunk(c0, c1):
            _normalize_relu_channels(x_flat, x_strides, beta, self.eps, c0,
                                     c1, self.mean, var, self.inv_std,
                                     y_rows)

        _run_over_channels(chunk, y_rows.shape)
        if self.running_mean is not None:
            self._update_running_statistics(var, y_rows.shape[0]
                                            * y_rows.shape[2])
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
        return CPUBatchNormReLUGrad(self.mean, self.inv_std).apply(
            (x, beta, grad_outputs[0]))


class CPUBatchNormReLUGrad(chainer.function_node.FunctionNode):
    """The gradients of :class:`CPUBatchNormReLU`: ``gx`` and
    ``gbeta``."""

    def __init__(self, mean, inv_std):
        self.mean = mean
        self.inv_std = inv_std

    def forward(self, inputs):
        x, beta, gy = inputs
        x_flat, x_strides = _channel_rows(x)
        gy_flat, gy_strides = _channel_rows(gy)
        beta = numpy.ascontiguousarray(beta)
        gx = numpy.empty(x.shape, x.dtype)
        gx_rows = _rows(gx)
        gbeta = numpy.empty(beta.shape, beta.dtype)

        def chunk(c0, c1):
            _batch_norm_relu_grad_channels(
                x_flat, x_strides, beta, gy_flat, gy_strides, self.mean,
                self.inv_std, c0, c1, gbeta, gx_rows)

        _run_over_channels(chunk, gx_rows.shape)
        return gx, gbeta

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            'double backpropagation through the fused batch norm of '
            'chainercv_i3d.functions.cpu.batch_norm_relu is not implemented; use '
            'chainer.links.BatchNormalization for it')


def _rows(x):
    """``(N, C, rest)`` view of the C-contiguous ``x``."""
    return x.reshape(x.shape[0], x.shape[1], -1)


def _channel_rows(a):
    """The values of ``a`` ``(N, C, ...)`` as a flat array in which the
    values of channel ``c`` of sample ``i`` are the ``rest`` (the product of
    ``a.shape[2:]``) from ``i * sample_stride + c * channel_stride`` on.

    A channel slice of a larger array (the gradients Chainer's concat passes
    back) needs no copy: a copy is made only when a channel's values are
    not contiguous in memory.

    Returns:
        tuple: ``flat`` (1-d view or copy) and ``(sample_stride,
        channel_stride)``, in elements.
    """
    rows = a.reshape(a.shape[0], a.shape[1], -1)  # a view where possible
    n, c, rest = rows.shape
    if (rest > 1 and rows.strides[2] != a.itemsize) \
            or any(s < 0 or s % a.itemsize for s in rows.strides[:2]):
        rows = numpy.ascontiguousarray(rows)
    sample_stride, channel_stride = (s // a.itemsize
                                     for s in rows.strides[:2])
    # From the first value to the last: memory of ``a`` only.
    span = (n - 1) * sample_stride + (c - 1) * channel_stride + rest
    flat = numpy.lib.stride_tricks.as_strided(
        rows, (span,), (a.itemsize,), writeable=False)
    return flat, (sample_stride, channel_stride)


def _run_over_channels(chunk, shape):
    """``chunk(c0, c1)`` over groups of channels, in threads when there is
    more than one group."""
    n, c, rest = shape
    pieces = -(-n * c * rest // CHUNK_ELEMENTS)
    if pieces <= 1:
        # Setting up the threads (about 70 us) would cost more than the
        # kernel saves on a small array.
        chunk(0, c)
        return
    with cpu_chunks(numpy):
        run_chunks(chunk, split(c, pieces))


@numba.njit(nogil=True, cache=True)
def _row(flat, strides, i, c, rest):
    """The values of channel ``c`` of sample ``i`` (see
    :func:`_channel_rows`)."""
    start = i * strides[0] + c * strides[1]
    return flat[start:start + rest]


@numba.njit(nogil=True, cache=True)
def _normalize_relu_channels(x, x_strides, beta, eps, c0, c1, mean, var,
                             inv_std, y):
    """The forward on channels ``[c0, c1)``: writes their ``mean``, biased
    ``var``, ``inv_std`` (``x``'s dtype) and ``y`` ``(N, C, R)`` from ``x``
    given as by :func:`_channel_rows`."""
    n, _, r = y.shape
    m = n * r
    whole = r - r % LANES
    sums = numpy.empty(LANES)
    squares = numpy.empty(LANES)
    for c in range(c0, c1):
        # Sums of x - shift: no cancellation in the variance when the mean
        # is large, since the shift (a value of the channel) is near it.
        shift = numpy.float64(_row(x, x_strides, 0, c, r)[0])
        sums[:] = 0.
        squares[:] = 0.
        for i in range(n):
            row = _row(x, x_strides, i, c, r)
            # Whole blocks (a loop of constant length: vectorized), then the
            # rest.
            for j in range(0, whole, LANES):
                for k in range(LANES):
                    d = row[j + k] - shift
                    sums[k] += d
                    squares[k] += d * d
            for k in range(r - whole):
                d = row[whole + k] - shift
                sums[k] += d
                squares[k] += d * d
        shifted_mean = sums.sum() / m
        variance = max(squares.sum() / m - shifted_mean * shifted_mean, 0.)
        mean[c] = shift + shifted_mean
        var[c] = variance
        inv_std[c] = 1. / numpy.sqrt(variance + eps)
        for i in range(n):
            _write_normalize_relu(_row(x, x_strides, i, c, r), mean[c],
                                  inv_std[c], beta[c], y[i, c])


@numba.njit(nogil=True, cache=True)
def _write_normalize_relu(x, mean, inv_std, beta, y):
    """``y = relu((x - mean) * inv_std + beta)`` on a row, in ``x``'s
    dtype: the backward's mask repeats these operations."""
    zero = _zero(x)
    for j in range(x.size):
        t = (x[j] - mean) * inv_std + beta
        # Not max(t, 0): a NaN stays NaN, as with numpy.maximum.
        y[j] = zero if t <= 0 else t


@numba.njit(nogil=True, cache=True)
def _zero(x):
    """0 in ``x``'s dtype (a literal 0 would make the selects float64)."""
    return numpy.zeros(1, x.dtype)[0]


@numba.njit(nogil=True, cache=True)
def _batch_norm_relu_grad_channels(x, x_strides, beta, gy, gy_strides, mean,
                                   inv_std, c0, c1, gbeta, gx):
    """The backward on channels ``[c0, c1)``: writes their ``gbeta`` and
    ``gx`` ``(N, C, R)`` (Chainer's ``inv_std * (g - (x_hat * ggamma +
    gbeta) / m)``, with ``g`` the ``gy`` where the forward's ReLU passed),
    from ``x`` and ``gy`` given as by :func:`_channel_rows`."""
    n, _, r = gx.shape
    m = n * r
    whole = r - r % LANES
    zero = _zero(x)
    sums = numpy.empty(LANES)
    products = numpy.empty(LANES)
    # ggamma / m and gbeta / m, rounded to x's dtype.
    coefficients = numpy.empty(2, x.dtype)
    for c in range(c0, c1):
        mu, s, b = mean[c], inv_std[c], beta[c]
        sums[:] = 0.
        products[:] = 0.
        for i in range(n):
            x_row = _row(x, x_strides, i, c, r)
            gy_row = _row(gy, gy_strides, i, c, r)
            for j in range(0, whole, LANES):
                for k in range(LANES):
                    x_hat = (x_row[j + k] - mu) * s
                    # The forward's ReLU input, recomputed identically.
                    g = gy_row[j + k] if x_hat + b > 0 else zero
                    sums[k] += g
                    products[k] += numpy.float64(g) * x_hat
            for k in range(r - whole):
                x_hat = (x_row[whole + k] - mu) * s
                g = gy_row[whole + k] if x_hat + b > 0 else zero
                sums[k] += g
                products[k] += numpy.float64(g) * x_hat
        gbeta[c] = sums.sum()
        coefficients[0] = products.sum() / m
        coefficients[1] = sums.sum() / m
        for i in range(n):
            _write_gx(_row(x, x_strides, i, c, r),
                      _row(gy, gy_strides, i, c, r), mu, s, b,
                      coefficients[0], coefficients[1], gx[i, c])


@numba.njit(nogil=True, cache=True)
def _write_gx(x, gy, mean, inv_std, beta, ggamma_m, gbeta_m, gx):
    """``gx`` on a row from its channel's ``ggamma / m`` and ``gbeta / m``,
    in ``x``'s dtype."""
    zero = _zero(x)
    for j in range(x.size):
        x_hat = (x[j] - mean) * inv_std
        g = gy[j] if x_hat + beta > 0 else zero
        gx[j] = (g - (x_hat * ggamma_m + gbeta_m)) * inv_std
