import chainer
import chainer.functions as F
import chainer.links as L

from chainercv_i3d.architecture import BN_DECAY
from chainercv_i3d.architecture import BN_EPS
from chainercv_i3d.functions import batch_norm_relu
from chainercv_i3d.functions import conv3d_same
from chainercv_i3d.functions import on_numpy


def _triple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * 3


class Unit3D(chainer.Chain):
    """3D convolution, batch normalization and ReLU, as DeepMind's ``Unit3D``.

    The convolution has no bias and uses TensorFlow's SAME padding computed
    from the input at run time. The batch normalization has no scale (gamma),
    an offset (beta) and ``eps = 1e-3``; it uses the running statistics when
    ``chainer.config.train`` is False, or always when
    ``frozen_statistics`` is True (fine-tuning with frozen statistics: the
    running statistics are neither used from the batch nor updated).

    Args:
        in_channels (int): Number of input channels.
        out_channels (int): Number of output channels.
        ksize (int or tuple of int): Kernel size ``(kt, kh, kw)``.
        stride (int or tuple of int): Stride ``(st, sh, sw)``.
        initialW (callable): Initializer of the convolution weight.

    Example:

        >>> unit = Unit3D(3, 64, ksize=7, stride=2)
        >>> unit(numpy.zeros((1, 3, 79, 224, 224), 'f')).shape
        (1, 64, 40, 112, 112)
    """

    def __init__(self, in_channels, out_channels, ksize=1, stride=1,
                 initialW=None):
        super(Unit3D, self).__init__()
        self.ksize = _triple(ksize)
        self.stride = _triple(stride)
        with self.init_scope():
            self.conv = L.ConvolutionND(
                3, in_channels, out_channels, self.ksize, self.stride,
                nobias=True, initialW=initialW)
            self.bn = L.BatchNormalization(
                out_channels, decay=BN_DECAY, eps=BN_EPS, use_gamma=False)
        self.frozen_statistics = False

    def forward(self, x):
        h = conv3d_same(x, self.conv.W, self.stride)
        if self.frozen_statistics and chainer.config.train:
            return F.relu(self._normalize_with_running_statistics(h))
        if self._fused_batch_norm_applies(h):
            bn = self.bn
            return batch_norm_relu(h, bn.beta, bn.eps, bn.avg_mean,
                                   bn.avg_var, bn.decay)
        return F.relu(self.bn(h))

    def _fused_batch_norm_applies(self, h):
        # Training on a CPU with this link's own L.BatchNormalization (not a
        # replacement such as ChainerMN's synchronized one): the fused node
        # of functions.cpu.batch_norm_relu computes the same, faster.
        return chainer.config.train \
            and type(self.bn) is L.BatchNormalization \
            and not getattr(chainer.config, 'in_recomputing', False) \
            and on_numpy(h, self.bn.avg_mean)

    def _normalize_with_running_statistics(self, h):
        bn = self.bn
        gamma = bn.xp.ones_like(bn.avg_mean)  # DeepMind's BN has no scale
        return F.fixed_batch_normalization(h, gamma, bn.beta, bn.avg_mean,
                                           bn.avg_var, bn.eps)
