"""I3D in PyTorch on the weights of a Chainer link, for the benchmarks.

What users would otherwise run: ``torch.nn.functional.conv3d`` (cuDNN on a
GPU, oneDNN on a CPU), batch normalization, ReLU, TensorFlow's SAME padding
and -inf padding for the max pools, as DeepMind's graph computes them. The
benchmarks check its logits against the link's before they time it.
PyTorch is imported inside the functions: nothing else needs it.
"""

import chainer
import numpy

from chainercv_i3d.links.inception_block import InceptionBlock
from chainercv_i3d.links.tf_same_padding import same_padding_nd
from chainercv_i3d.links.unit3d import Unit3D

# Per branch of an Inception block, in the order of its output channels:
# (whether a 3x3x3 max pool comes first, its units).
BRANCHES = ((False, ('branch0',)), (False, ('branch1_reduce', 'branch1')),
            (False, ('branch2_reduce', 'branch2')), (True, ('branch3',)))


def torch_unit(unit, device, dtype):
    """``h -> relu(bn(conv(pad_same(h))))`` for one Unit3D (NCTHW)."""
    import torch
    import torch.nn.functional as F

    def tensor(array):
        array = chainer.backend.CpuDevice().send(array)
        return torch.as_tensor(array).to(device, dtype)

    weight = tensor(unit.conv.W.array).contiguous(
        memory_format=torch.channels_last_3d)
    mean, var = tensor(unit.bn.avg_mean), tensor(unit.bn.avg_var)
    beta, eps = tensor(unit.bn.beta.array), unit.bn.eps

    def run(h):
        h = _pad_same(h, unit.ksize, unit.stride, 0)
        h = F.conv3d(h, weight, stride=unit.stride)
        h = F.batch_norm(h, mean, var, None, beta, False, 0.0, eps)
        return F.relu(h)
    return run


def _pad_same(h, ksize, stride, value):
    import torch.nn.functional as F
    pads = same_padding_nd(tuple(h.shape[2:]), ksize, stride)
    # F.pad lists (before, after) from the last axis to the first.
    flat = [p for before_after in reversed(pads) for p in before_after]
    return F.pad(h, flat, value=value) if any(flat) else h


def _max_pool_same(h, ksize, stride):
    import torch.nn.functional as F
    return F.max_pool3d(_pad_same(h, ksize, stride, -numpy.inf), ksize,
                        stride)


def torch_forward(model, device='cpu', dtype='float32'):
    """A function ``x (numpy NCTHW) -> logits (numpy (N, n_class))``
    computing ``model`` (an I3D link) with PyTorch on ``device``."""
    import torch
    import torch.nn.functional as F
    dtype = getattr(torch, dtype)
    steps = []
    for name in model.layer_names[:model.layer_names.index('mixed_5c') + 1]:
        layer = getattr(model, name)
        if isinstance(layer, Unit3D):
            steps.append(torch_unit(layer, device, dtype))
        elif isinstance(layer, InceptionBlock):
            steps.append(_torch_inception(layer, device, dtype))
        else:  # a max pool
            steps.append(_pool_step(layer.keywords['ksize'],
                                    layer.keywords['stride']))
    conv = model.logits.conv
    logit_w, logit_b = (
        torch.as_tensor(chainer.backend.CpuDevice().send(a)).to(device, dtype)
        for a in (conv.W.array, conv.b.array))

    @torch.inference_mode()
    def run(x):
        h = torch.as_tensor(x).to(device, dtype).contiguous(
            memory_format=torch.channels_last_3d)
        for step in steps:
            h = step(h)
        h = F.avg_pool3d(h, (2, 7, 7), stride=1)  # mixed_5c is 7x7
        h = F.conv3d(h, logit_w, logit_b)
        logits = h.mean(dim=(2, 3, 4))
        return logits.float().cpu().numpy()
    return run


def _pool_step(ksize, stride):
    return lambda h: _max_pool_same(h, ksize, stride)


def _torch_inception(block, device, dtype):
    import torch
    branches = [(pool, [torch_unit(getattr(block, name), device, dtype)
                        for name in names]) for pool, names in BRANCHES]

    def run(h):
        outputs = []
        for pool, units in branches:
            branch = _max_pool_same(h, (3, 3, 3), (1, 1, 1)) if pool else h
            for unit in units:
                branch = unit(branch)
            outputs.append(branch)
        return torch.cat(outputs, dim=1)
    return run
