import chainer
import chainer.functions as F

from chainercv_i3d.functions.tf_same_padding import MaxPool3dSame
from chainercv_i3d.links.unit3d import Unit3D


class InceptionBlock(chainer.Chain):
    """An inflated Inception-v1 block (DeepMind's ``Mixed_*``).

    Four branches, concatenated on channels in this order:

    * ``branch0``: 1x1x1 conv;
    * ``branch1_reduce`` then ``branch1``: 1x1x1 conv, 3x3x3 conv;
    * ``branch2_reduce`` then ``branch2``: 1x1x1 conv, 3x3x3 conv;
    * a 3x3x3 max pool with stride 1 then ``branch3``: 1x1x1 conv.

    Every conv is a :class:`Unit3D` (conv, batch norm, ReLU).

    Args:
        in_channels (int): Number of input channels.
        channels (tuple of int): Output channels of ``branch0``,
            ``branch1_reduce``, ``branch1``, ``branch2_reduce``, ``branch2``,
            ``branch3``: the six numbers DeepMind's code gives per block.
        initialW (callable): Initializer of the convolution weights.
    """

    def __init__(self, in_channels, channels, initialW=None):
        super(InceptionBlock, self).__init__()
        c0, c1_reduce, c1, c2_reduce, c2, c3 = channels
        self.out_channels = c0 + c1 + c2 + c3
        with self.init_scope():
            self.branch0 = Unit3D(in_channels, c0, 1, initialW=initialW)
            self.branch1_reduce = Unit3D(
                in_channels, c1_reduce, 1, initialW=initialW)
            self.branch1 = Unit3D(c1_reduce, c1, 3, initialW=initialW)
            self.branch2_reduce = Unit3D(
                in_channels, c2_reduce, 1, initialW=initialW)
            self.branch2 = Unit3D(c2_reduce, c2, 3, initialW=initialW)
            self.branch3 = Unit3D(in_channels, c3, 1, initialW=initialW)
        # Not a link: no parameters (the fast engine reads its window).
        self.pool3 = MaxPool3dSame((3, 3, 3), (1, 1, 1))

    def forward(self, x):
        h0 = self.branch0(x)
        h1 = self.branch1(self.branch1_reduce(x))
        h2 = self.branch2(self.branch2_reduce(x))
        h3 = self.branch3(self.pool3(x))
        return F.concat((h0, h1, h2, h3), axis=1)
