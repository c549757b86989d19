"""Floating-point operations of one I3D forward pass, counted on paper."""

import numpy

from chainercv_i3d.architecture import BRANCH_NAMES
from chainercv_i3d.functions.average_pool import AveragePoolPerStep
from chainercv_i3d.functions.average_pool import SpatialMean
from chainercv_i3d.functions.tf_same_padding import MaxPool3dSame
from chainercv_i3d.functions.tf_same_padding import same_output_shape
from chainercv_i3d.links.inception_block import InceptionBlock
from chainercv_i3d.links.logits import Logits
from chainercv_i3d.links.logits import Softmax
from chainercv_i3d.links.unit3d import Unit3D


def _conv_flops(n, W_shape, out_spatial):
    # 2 per multiply-add: N * out_channels * prod(out) * in_channels * prod(k).
    return 2 * n * int(numpy.prod(W_shape)) * int(numpy.prod(out_spatial))


def _unit(unit, shape):
    n, _, spatial = shape[0], shape[1], shape[2:]
    out_spatial = same_output_shape(spatial, unit.stride)
    W_shape = unit.conv.W.shape
    return _conv_flops(n, W_shape, out_spatial), \
        (n, W_shape[0]) + out_spatial


def _inception(block, shape):
    # Every branch has stride 1, so each one sees the block's input size
    # (branch3 after a stride-1 SAME pool).
    flops = sum(_unit(getattr(block, name), shape)[0]
                for name in BRANCH_NAMES)
    return flops, (shape[0], block.out_channels) + shape[2:]


def _pool(pool, shape):
    # Max pooling costs comparisons, not multiply-adds: only the shape moves.
    return 0, shape[:2] + same_output_shape(shape[2:], pool.stride)


def _avgpool(ksize, shape):
    # The head's VALID pool leaves (N, C, T'), the spatial axes dropped.
    out = tuple(n - k + 1 for n, k in zip(shape[2:], ksize))
    if min(out) < 1:
        raise ValueError(
            'mixed_5c output of T x H x W = {} is smaller than the {} '
            'average pool of the head: use a larger input or pick a layer '
            'up to mixed_5c'.format(' x '.join(map(str, shape[2:])),
                                    'x'.join(map(str, ksize))))
    return 0, shape[:2] + out[:1]


def _logits(logits, shape):
    # A 1x1x1 conv per time step of the (N, C, T') features; the mean over
    # time and the bias are not counted.
    n, _, t = shape
    W_shape = logits.conv.W.shape
    return _conv_flops(n, W_shape, (t,)), (n, W_shape[0])


def layer_flops(name, layer, shape):
    """Counts the FLOPs of one layer of an I3D, as :func:`count_flops` does.

    Args:
        name (str): The layer's name in ``I3D.layer_names`` (named in the
            error for a layer of unknown kind).
        layer: The layer (``getattr(model, name)``), or any
            :class:`~chainercv_i3d.links.Unit3D` (pass a name that is not
            a head layer's, e.g. ``'conv'``).
        shape (tuple of int): The layer's input shape.

    Returns:
        tuple: ``(flops, output shape)``.

    Raises:
        TypeError: The layer is of a kind that is not counted.
        ValueError: ``shape`` is too small for the head's average pool.
    """
    if isinstance(layer, Unit3D):
        return _unit(layer, shape)
    if isinstance(layer, InceptionBlock):
        return _inception(layer, shape)
    if isinstance(layer, MaxPool3dSame):
        return _pool(layer, shape)
    if isinstance(layer, AveragePoolPerStep):
        return _avgpool(layer.ksize, shape)
    if isinstance(layer, SpatialMean):
        return 0, shape[:3]
    if isinstance(layer, Logits):
        return _logits(layer, shape)
    if isinstance(layer, Softmax):
        return 0, shape
    # Better to fail than to silently miss the cost of a new kind of layer.
    raise TypeError('count_flops does not know how to count layer {!r} '
                    '({})'.format(name, type(layer).__name__))


def count_flops(model, shape):
    """Counts the FLOPs of one forward pass of an I3D, up to its ``pick``.

    Only convolutions are counted, at 2 FLOPs per multiply-add (every
    :class:`~chainercv_i3d.links.Unit3D`, the six of each Inception block and
    the 1x1x1 logits conv per time step); batch normalization, ReLU, pooling
    and softmax, elementwise or comparisons and small next to them, are
    left out. Output shapes are derived from
    the layers with TensorFlow's SAME rule, ``out = ceil(in / stride)``, and
    the head's 2x7x7 VALID pool: nothing is run, so any ``shape`` is cheap.

    Args:
        model (chainercv_i3d.links.I3D): The model; its ``pick`` decides
            the last layer counted.
        shape (tuple of int): Input shape ``(N, C, T, H, W)``.

    Returns:
        int: Floating-point operations of the forward pass.

    Raises:
        ValueError: If ``shape`` does not match the model, or is too small
            for the head when a head layer is picked.

    Example:

        >>> model = I3D(n_class=400)
        >>> count_flops(model, (1, 3, 64, 224, 224)) / 1e9  # GFLOPs
        222.306287616
        >>> model.pick = 'mixed_5c'  # without the head
        >>> count_flops(model, (1, 3, 64, 224, 224)) / 1e9
        222.300553216
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 5 or shape[1] != model.in_channels:
        raise ValueError('I3D({!r}) takes (N, {}, T, H, W) input, got shape '
                         '{}'.format(model.modality, model.in_channels, shape))
    total = 0
    for name in model.layer_names[:model.last_picked_index() + 1]:
        flops, shape = layer_flops(name, getattr(model, name), shape)
        total += flops
    return total
