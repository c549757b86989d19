"""The average pools that end a network's trunk, as typed layers.

Each is a plain callable on ``(N, C, T, H, W)`` that returns one feature
per time step, ``(N, C, T')``; its parameters are attributes, so that the
fast inference engine and the FLOP counter read them instead of assuming
I3D's sizes.
"""

import chainer.functions as F


class AveragePoolPerStep(object):
    """I3D's head pool: an average pool of ``ksize`` with stride 1 and no
    padding (VALID), then the two spatial axes (of size 1) dropped.

    Args:
        ksize (tuple of int): Window ``(kt, kh, kw)``: ``(2, 7, 7)`` in
            I3D, whose frames are exactly 7x7 there.

    >>> AveragePoolPerStep((2, 7, 7))
    AveragePoolPerStep(ksize=(2, 7, 7))
    """

    def __init__(self, ksize):
        self.ksize = tuple(int(k) for k in ksize)

    def __call__(self, x):
        """``(N, C, T, kh, kw)`` -> ``(N, C, T - kt + 1)``."""
        h = F.average_pooling_nd(x, self.ksize, stride=1, pad=0)
        return F.reshape(h, h.shape[:3])

    def __repr__(self):
        return 'AveragePoolPerStep(ksize={})'.format(self.ksize)


class SpatialMean(object):
    """The mean over height and width: ``(N, C, T, H, W)`` -> ``(N, C, T)``
    (the head pool of :class:`~chainercv_i3d.links.TinyI3D`, any frame
    size)."""

    def __call__(self, x):
        return F.mean(x, axis=(3, 4))

    def __repr__(self):
        return 'SpatialMean()'
