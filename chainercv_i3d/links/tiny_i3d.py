"""A three-layer network with I3D's interface, to check training in seconds.

The training machinery (ranks, accumulation, resume, schedules, fine-tuning
a head, frozen layers) does not depend on the network's depth; with the full
I3D a single update takes seconds on a CPU. ``train_i3d.py --arch tiny``
trains this one instead: the same Unit3D, max pool and Logits layers, few
channels, any input of at least 3 x 4 x 4.
"""

import functools

import chainer
import chainer.functions as F

from chainercv_i3d.label_names import numbered_label_names
from chainercv_i3d.links.i3d import I3D
from chainercv_i3d.links.i3d import Logits
from chainercv_i3d.links.pickable_sequential_chain import \
    PickableSequentialChain
from chainercv_i3d.functions.tf_same_padding import max_pooling_nd_same
from chainercv_i3d.links.unit3d import Unit3D
from chainercv_i3d.presets import DEEPMIND_KINETICS


def _average_pool_space(x):
    # (N, C, T, H, W) -> (N, C, T): one feature per time step, as I3D's.
    return F.mean(x, axis=(3, 4))


class TinyI3D(I3D):
    """Unit3D(8) - max pool - Unit3D(16) - spatial mean - Logits.

    Args:
        n_class (int): Number of classes.
        modality (str): ``'rgb'`` or ``'flow'``.
        pretrained_model (str): An ``.npz`` of a TinyI3D, or None.
        dropout_ratio (float): Dropout before the logits (train mode).
        initialW (callable): Initializer of the convolution weights.
    """

    def __init__(self, n_class=2, modality='rgb', pretrained_model=None,
                 dropout_ratio=0.5, initialW=None):
        PickableSequentialChain.__init__(self)
        self._set_classes_and_modality(n_class, modality)
        with self.init_scope():
            self.conv1 = Unit3D(self.in_channels, 8, 3, (1, 2, 2), initialW)
            self.pool1 = functools.partial(
                max_pooling_nd_same, ksize=(1, 3, 3), stride=(1, 2, 2))
            self.conv2 = Unit3D(8, 16, 3, 1, initialW)
            self.avgpool = _average_pool_space
            self.logits = Logits(16, n_class, dropout_ratio, initialW)
            self.prob = functools.partial(F.softmax, axis=1)
        self.pick = 'logits'
        self.fast_inference = False  # the fast path knows I3D's layers only
        self.dropout_ratio = dropout_ratio
        self.frozen_upto = None
        self.preset = DEEPMIND_KINETICS.replace(
            label_names=numbered_label_names(n_class))
        if pretrained_model is not None:
            chainer.serializers.load_npz(pretrained_model, self)

    def _check_input(self, x):
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                'TinyI3D({!r}) takes (N, {}, T, H, W) input, got shape '
                '{}'.format(self.modality, self.in_channels, tuple(x.shape)))
