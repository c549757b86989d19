"""DeepMind's I3D as data: its layers, and the arrays its weights are made of.

The link (:class:`chainercv_i3d.links.I3D`) is built from this table, and the
converters of :mod:`chainercv_i3d.pretrained` map checkpoints onto
:func:`npz_array_shapes` without building a link, so both follow one
description of the network.

This module is a leaf: it imports nothing of the package but other leaves.
"""

import numpy

from chainercv_i3d.modality import MODALITY_CHANNELS

# DeepMind's network, layer by layer (names are its endpoint names in lower
# case). 'unit': (out_channels, ksize, stride); 'pool': max pool (ksize,
# stride); 'mixed': the channels of the six convs of an InceptionBlock, in
# the order of BRANCH_NAMES.
LAYERS = (
    ('conv3d_1a_7x7', 'unit', (64, 7, 2)),
    ('maxpool3d_2a_3x3', 'pool', ((1, 3, 3), (1, 2, 2))),
    ('conv3d_2b_1x1', 'unit', (64, 1, 1)),
    ('conv3d_2c_3x3', 'unit', (192, 3, 1)),
    ('maxpool3d_3a_3x3', 'pool', ((1, 3, 3), (1, 2, 2))),
    ('mixed_3b', 'mixed', (64, 96, 128, 16, 32, 32)),
    ('mixed_3c', 'mixed', (128, 128, 192, 32, 96, 64)),
    ('maxpool3d_4a_3x3', 'pool', ((3, 3, 3), (2, 2, 2))),
    ('mixed_4b', 'mixed', (192, 96, 208, 16, 48, 64)),
    ('mixed_4c', 'mixed', (160, 112, 224, 24, 64, 64)),
    ('mixed_4d', 'mixed', (128, 128, 256, 24, 64, 64)),
    ('mixed_4e', 'mixed', (112, 144, 288, 32, 64, 64)),
    ('mixed_4f', 'mixed', (256, 160, 320, 32, 128, 128)),
    ('maxpool3d_5a_2x2', 'pool', ((2, 2, 2), (2, 2, 2))),
    ('mixed_5b', 'mixed', (256, 160, 320, 32, 128, 128)),
    ('mixed_5c', 'mixed', (384, 192, 384, 48, 128, 128)),
)
HEAD_LAYERS = ('avgpool', 'logits', 'prob')
# The head's VALID average pool over (time, height, width) of mixed_5c.
AVGPOOL_KSIZE = (2, 7, 7)

# The six units of an Inception block, in the order of a 'mixed' row's
# channels: (name, the branch whose output it takes or None for the block's
# input, kernel size). branch3 takes the block's input after a 3x3x3 max
# pool of stride 1, which keeps its size and channels.
BRANCHES = (
    ('branch0', None, 1),
    ('branch1_reduce', None, 1),
    ('branch1', 'branch1_reduce', 3),
    ('branch2_reduce', None, 1),
    ('branch2', 'branch2_reduce', 3),
    ('branch3', None, 1),
)
BRANCH_NAMES = tuple(name for name, _, _ in BRANCHES)
# The branches whose outputs are concatenated, in order.
OUTPUT_BRANCHES = ('branch0', 'branch1', 'branch2', 'branch3')

# Sonnet's BatchNorm defaults, which DeepMind's checkpoints were trained with.
BN_EPS = 1e-3
BN_DECAY = 0.999

# The persistent of chainer's BatchNormalization counting the batches its
# statistics were averaged over: a 0-d integer array in an npz, 0 in a link
# that was never trained.
BN_COUNT = 'bn/N'


def _layer_stride(kind, args):
    if kind == 'unit':
        return (args[2],) * 3
    if kind == 'pool':
        return args[1]
    return (1, 1, 1)


def _total_strides():
    total = numpy.ones(3, dtype=int)
    for _, kind, args in LAYERS:
        total *= _layer_stride(kind, args)
    return total


def min_input_size():
    """Returns the smallest ``(T, H, W)`` for which the head can run.

    SAME layers give ``ceil(in / stride)``, so ``mixed_5c`` has at least
    ``k`` elements on an axis iff the input has more than ``(k - 1) * S``,
    ``S`` the product of the strides on that axis (8 in time, 32 in space).
    """
    return tuple(int((k - 1) * s + 1)
                 for k, s in zip(AVGPOOL_KSIZE, _total_strides()))


def max_frame_size():
    """Returns the largest ``H`` and ``W`` for which the head can run (224).

    DeepMind's head squeezes the spatial axes after its 7x7 VALID pool, so
    ``mixed_5c`` must be exactly 7x7: at most ``7 * 32`` pixels.
    """
    return int(AVGPOOL_KSIZE[1] * _total_strides()[1])


def mixed_out_channels(channels):
    """Returns the output channels of a 'mixed' row (its branches summed)."""
    by_name = dict(zip(BRANCH_NAMES, channels))
    return sum(by_name[name] for name in OUTPUT_BRANCHES)


def units(modality):
    """Lists every conv + batch-norm unit of the network, in order.

    Args:
        modality (str): ``'rgb'`` or ``'flow'`` (the input channels).

    Returns:
        list of tuple: ``(path, in_channels, out_channels, ksize, stride)``
        with ``path`` the unit's place in the link (``'conv3d_1a_7x7'``,
        ``'mixed_5b/branch2'``) and ``ksize``, ``stride`` ints (cubes).

    Raises:
        ValueError: ``modality`` is unknown.
    """
    if modality not in MODALITY_CHANNELS:
        raise ValueError('modality must be one of {}, not {!r}'.format(
            sorted(MODALITY_CHANNELS), modality))
    found = []
    channels = MODALITY_CHANNELS[modality]
    for name, kind, args in LAYERS:
        if kind == 'unit':
            out_channels, ksize, stride = args
            found.append((name, channels, out_channels, ksize, stride))
            channels = out_channels
        elif kind == 'mixed':
            by_name = dict(zip(BRANCH_NAMES, args))
            for branch, source, ksize in BRANCHES:
                in_channels = channels if source is None else by_name[source]
                found.append((name + '/' + branch, in_channels,
                              by_name[branch], ksize, 1))
            channels = mixed_out_channels(args)
    return found


def feature_channels():
    """Returns the channels of ``mixed_5c`` (and of ``avgpool``): 1024."""
    return mixed_out_channels(LAYERS[-1][2])


def npz_array_shapes(n_class, modality):
    """Lists the arrays of an I3D's weights as ``save_npz`` writes them.

    The keys and shapes are exactly those of
    ``chainer.serializers.save_npz(path, I3D(n_class, modality))``: per unit
    ``<path>/conv/W`` (out, in, k, k, k), ``<path>/bn/beta``,
    ``<path>/bn/avg_mean``, ``<path>/bn/avg_var`` (out,) and the 0-d
    :data:`BN_COUNT`; then ``logits/conv/W`` (n_class, 1024, 1, 1, 1) and
    ``logits/conv/b`` (n_class,). All are float32 but the counts, which are
    integers.

    Args:
        n_class (int): Number of classes.
        modality (str): ``'rgb'`` or ``'flow'``.

    Returns:
        dict: ``{npz key: shape tuple}``, in the order of the network.

    Raises:
        ValueError: ``n_class`` is not a positive int, or ``modality`` is
            unknown.
    """
    if isinstance(n_class, bool) or not isinstance(n_class, int) \
            or n_class < 1:
        raise ValueError('n_class must be a positive int, not {!r}'.format(
            n_class))
    shapes = {}
    for path, in_channels, out_channels, ksize, _ in units(modality):
        shapes[path + '/conv/W'] = (out_channels, in_channels) + (ksize,) * 3
        for statistic in ('beta', 'avg_mean', 'avg_var'):
            shapes[path + '/bn/' + statistic] = (out_channels,)
        shapes[path + '/' + BN_COUNT] = ()
    shapes['logits/conv/W'] = (n_class, feature_channels(), 1, 1, 1)
    shapes['logits/conv/b'] = (n_class,)
    return shapes


def is_bn_count(key):
    """Whether the npz key ``key`` is a batch-norm count (:data:`BN_COUNT`)."""
    return key == BN_COUNT or key.endswith('/' + BN_COUNT)
