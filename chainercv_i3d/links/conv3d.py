"""The convolution of :class:`~chainercv_i3d.links.Unit3D` with autograd.

TensorFlow's SAME padding (computed from the input at run time) and a 3D
convolution without bias, differentiable: what training and the Chainer
path of the link run.
"""

import chainer.functions as F

from chainercv_i3d.links.tf_same_padding import pad_spatial
from chainercv_i3d.links.tf_same_padding import same_padding_nd


def conv3d_same(x, W, stride):
    """3D convolution with TensorFlow's SAME padding and no bias.

    Args:
        x (chainer.Variable or array): Input ``(N, C, T, H, W)``.
        W (chainer.Variable or array): Weight ``(out_C, C, kt, kh, kw)``.
        stride (tuple of int): ``(st, sh, sw)``.

    Returns:
        chainer.Variable: ``(N, out_C, ceil(T / st), ceil(H / sh),
        ceil(W / sw))``.
    """
    pads = same_padding_nd(x.shape[2:], W.shape[2:], stride)
    if all(before == after for before, after in pads):
        pad = tuple(before for before, _ in pads)
    else:
        # The convolution pads symmetrically only: pad here, exactly.
        x = pad_spatial(x, pads, 0)
        pad = 0
    return F.convolution_nd(x, W, stride=stride, pad=pad)
