"""The classifier head of I3D: per-step logits averaged over time, and the
softmax layer after it."""

import chainer
import chainer.functions as F
import chainer.links as L


class Logits(chainer.Chain):
    """The classifier: dropout, 1x1x1 conv with bias, mean over time.

    Args:
        in_channels (int): Feature channels (1024).
        n_class (int): Number of classes.
        dropout_ratio (float): Drop probability (train mode only).
        initialW (callable): Initializer of the convolution weight.
    """

    def __init__(self, in_channels, n_class, dropout_ratio, initialW=None):
        super(Logits, self).__init__()
        self.dropout_ratio = dropout_ratio
        with self.init_scope():
            self.conv = L.ConvolutionND(
                3, in_channels, n_class, 1, initialW=initialW)

    def forward(self, x):
        """Maps ``(N, C, T)`` features to ``(N, n_class)`` logits."""
        h = F.dropout(x, self.dropout_ratio)
        h = self.conv(F.reshape(h, h.shape + (1, 1)))
        return F.mean(h, axis=(2, 3, 4))


class Softmax(object):
    """The ``prob`` layer: softmax over the classes of ``(N, n_class)``
    logits."""

    def __call__(self, x):
        return F.softmax(x, axis=1)

    def __repr__(self):
        return 'Softmax()'
