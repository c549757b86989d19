"""A three-layer network with I3D's interface, to check training in seconds.

The training machinery (ranks, accumulation, resume, schedules, fine-tuning
a head, frozen layers) does not depend on the network's depth; with the full
I3D a single update takes seconds on a CPU. ``train_i3d.py --arch tiny``
trains this one instead: the same Unit3D, max pool and Logits layers, few
channels, any input of at least 3 x 4 x 4. It is built by I3D's own
constructor (only the layers and what the weights imply differ), and its
typed layers run on the same fast inference engine.
"""

import types

from chainercv_i3d.functions.average_pool import SpatialMean
from chainercv_i3d.functions.tf_same_padding import MaxPool3dSame
from chainercv_i3d.label_names import numbered_label_names
from chainercv_i3d.links.i3d import I3D
from chainercv_i3d.links.logits import Logits
from chainercv_i3d.links.logits import Softmax
from chainercv_i3d.links.unit3d import Unit3D
from chainercv_i3d.presets import DEEPMIND_KINETICS


class TinyI3D(I3D):
    """Unit3D(8) - max pool - Unit3D(16) - spatial mean - Logits.

    Args:
        n_class (int): Number of classes.
        modality (str): ``'rgb'`` or ``'flow'``.
        pretrained_model (str): An ``.npz`` of a TinyI3D, or None.
        dropout_ratio (float): Dropout before the logits (train mode).
        initialW (callable): Initializer of the convolution weights.
        fast_inference (bool): In test mode without backprop, compute with
            the fast inference engine (``model.fast``); off by default, so
            that the tests of training run the Chainer path they check.
    """

    def __init__(self, n_class=2, modality='rgb', pretrained_model=None,
                 dropout_ratio=0.5, initialW=None, fast_inference=False):
        super(TinyI3D, self).__init__(n_class, modality, pretrained_model,
                                      dropout_ratio, initialW, fast_inference)

    @staticmethod
    def _resolve(pretrained_model, n_class, modality):
        # An .npz of a TinyI3D, or random weights: no model table.
        return types.SimpleNamespace(
            n_class=n_class, modality=modality, path=pretrained_model,
            preset=DEEPMIND_KINETICS.replace(
                label_names=numbered_label_names(n_class)))

    def _add_layers(self, initialW, dropout_ratio):
        self.conv1 = Unit3D(self.in_channels, 8, 3, (1, 2, 2), initialW)
        self.pool1 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.conv2 = Unit3D(8, 16, 3, 1, initialW)
        self.avgpool = SpatialMean()
        self.logits = Logits(16, self.n_class, dropout_ratio, initialW)
        self.prob = Softmax()

    def _check_input(self, x):
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                'TinyI3D({!r}) takes (N, {}, T, H, W) input, got shape '
                '{}'.format(self.modality, self.in_channels, tuple(x.shape)))
