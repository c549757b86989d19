"""TensorFlow's ``padding='SAME'``, computed at run time on every axis.

TensorFlow pads so that ``out = ceil(in / stride)`` and puts the odd element of
the padding at the end. It depends on the input size, so it cannot be fixed
when a layer is built: the earlier ports that did (symmetric ``k // 2``) drift
from the original on odd frame counts such as 79 or 251.
"""

import chainer.functions as F

from chainercv_i3d.functions.cpu.max_pool import max_pool_padded
from chainercv_i3d.functions.dispatch import on_numpy


def same_output_size(in_size, stride):
    """Returns TensorFlow's SAME output length, ``ceil(in_size / stride)``."""
    return -(-in_size // stride)


def same_output_shape(spatial, stride):
    """Returns TensorFlow's SAME output shape, :func:`same_output_size` per
    axis of ``spatial``, as a tuple."""
    return tuple(same_output_size(n, s) for n, s in zip(spatial, stride))


def same_padding(in_size, ksize, stride):
    """Returns TensorFlow's SAME padding ``(before, after)`` for one axis.

    Args:
        in_size (int): Length of the input along the axis.
        ksize (int): Kernel size along the axis.
        stride (int): Stride along the axis.

    Returns:
        tuple of int: ``(before, after)``; ``after - before`` is 0 or 1.

    >>> same_padding(79, 7, 2)
    (3, 3)
    >>> same_padding(64, 7, 2)
    (2, 3)
    """
    out_size = same_output_size(in_size, stride)
    total = max((out_size - 1) * stride + ksize - in_size, 0)
    return total // 2, total - total // 2


def same_padding_nd(shape, ksize, stride):
    """Returns the SAME padding of each spatial axis of an N-d input.

    Args:
        shape (tuple of int): Spatial shape of the input (without N and C).
        ksize (tuple of int): Kernel size per axis.
        stride (tuple of int): Stride per axis.

    Returns:
        tuple of tuple of int: ``(before, after)`` per axis.
    """
    return tuple(same_padding(n, k, s) for n, k, s in zip(shape, ksize, stride))


def pad_spatial(x, pads, value):
    """Pads the axes after N and C of ``x`` by ``pads`` with ``value``.

    Args:
        x (chainer.Variable or array): Input of shape ``(N, C, ...)``.
        pads (tuple of tuple of int): ``(before, after)`` per spatial axis.
        value (float): The constant to pad with.

    Returns:
        chainer.Variable or array: The padded input (``x`` itself when
        nothing is padded).
    """
    if not any(before or after for before, after in pads):
        return x
    return F.pad(x, ((0, 0), (0, 0)) + tuple(pads), 'constant',
                 constant_values=value)


def max_pooling_nd_same(x, ksize, stride):
    """Max pooling with TensorFlow's SAME padding.

    TensorFlow ignores padded elements in a max pool; padding with ``-inf``
    does the same (SAME padding never makes a window of padding only, so no
    output is ``-inf``). On a CPU (numpy) it runs
    :mod:`chainercv_i3d.functions.cpu.max_pool` (separable, threaded; the same
    values and gradients); on a GPU, :func:`max_pooling_nd_same_chainer`.

    Args:
        x (chainer.Variable or array): Input of shape ``(N, C, ...)``.
        ksize (tuple of int): Window size per spatial axis.
        stride (tuple of int): Stride per spatial axis.

    Returns:
        chainer.Variable: Output of spatial shape ``ceil(in / stride)``.
    """
    if x.ndim == 5 and on_numpy(x):
        return max_pool_padded(x, ksize, stride,
                               same_padding_nd(x.shape[2:], ksize, stride))
    return max_pooling_nd_same_chainer(x, ksize, stride)


def max_pooling_nd_same_chainer(x, ksize, stride):
    """:func:`max_pooling_nd_same` with Chainer's ``F.max_pooling_nd`` on an
    input padded with ``-inf``, on any device (the GPU path, and the
    reference of the CPU one)."""
    pads = same_padding_nd(x.shape[2:], ksize, stride)
    x = pad_spatial(x, pads, -float('inf'))
    return F.max_pooling_nd(x, ksize, stride, pad=0, cover_all=False)


class MaxPool3dSame(object):
    """A max pool with TensorFlow's SAME padding, as a layer of a network.

    Its window and stride are attributes, so that whoever walks the network
    (the fast inference engine, the FLOP counter, a converter) reads them
    instead of decoding a ``functools.partial``.

    Args:
        ksize (tuple of int): Window ``(kt, kh, kw)``.
        stride (tuple of int): Stride ``(st, sh, sw)``.

    >>> MaxPool3dSame((1, 3, 3), (1, 2, 2))
    MaxPool3dSame(ksize=(1, 3, 3), stride=(1, 2, 2))
    """

    def __init__(self, ksize, stride):
        self.ksize = tuple(int(k) for k in ksize)
        self.stride = tuple(int(s) for s in stride)

    def __call__(self, x):
        """:func:`max_pooling_nd_same` of ``x`` ``(N, C, T, H, W)``."""
        return max_pooling_nd_same(x, self.ksize, self.stride)

    def __repr__(self):
        return 'MaxPool3dSame(ksize={}, stride={})'.format(self.ksize,
                                                          self.stride)
