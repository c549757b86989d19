"""The convolution of :class:`~chainercv_i3d.links.Unit3D` with autograd.

TensorFlow's SAME padding (computed from the input at run time) and a 3D
convolution without bias, differentiable: what training and the Chainer
path of the link run. On a CPU (numpy arrays) it runs
:mod:`chainercv_i3d.functions.cpu.conv3d` (threaded GEMMs, its own backward);
on a GPU, ``F.convolution_nd`` (cuDNN).
"""

import chainer.functions as F

from chainercv_i3d.functions.cpu.conv3d import conv3d_padded
from chainercv_i3d.functions.dispatch import on_numpy
from chainercv_i3d.functions.tf_same_padding import pad_spatial
from chainercv_i3d.functions.tf_same_padding import same_padding_nd


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
    if on_numpy(x, W):
        return conv3d_padded(x, W, stride, pads)
    return conv3d_same_chainer(x, W, stride)


def conv3d_same_chainer(x, W, stride):
    """:func:`conv3d_same` with Chainer's ``F.convolution_nd`` on any
    device (the GPU path, and the reference of the CPU one)."""
    pads = same_padding_nd(x.shape[2:], W.shape[2:], stride)
    if all(before == after for before, after in pads):
        pad = tuple(before for before, _ in pads)
    else:
        # The convolution pads symmetrically only: pad here, exactly.
        x = pad_spatial(x, pads, 0)
        pad = 0
    return F.convolution_nd(x, W, stride=stride, pad=pad)

