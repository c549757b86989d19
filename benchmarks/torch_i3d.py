"""I3D in PyTorch on the weights of a Chainer link, for the benchmarks.

What users would otherwise run: ``torch.nn.functional.conv3d`` (cuDNN on a
GPU, oneDNN on a CPU), batch normalization, ReLU, TensorFlow's SAME padding
and -inf padding for the max pools, as DeepMind's graph computes them. The
benchmarks check its logits against the link's before they time it.
PyTorch is imported inside the functions: nothing else needs it.

TF32: on a GPU PyTorch's default lets cuDNN convolve float32 in TF32
(``torch.backends.cudnn.allow_tf32`` is True; cuBLAS's matrix products are
strict unless ``torch.backends.cuda.matmul.allow_tf32``), while CuPy is
strict float32 unless ``CUPY_TF32=1``. :func:`prepare_device` sets both
flags explicitly (:func:`set_tf32`): strict float32 unless asked for TF32.
On a CPU they do not apply and are left alone.
"""

import chainer
import numpy

from chainercv_i3d.links.inception_block import InceptionBlock
from chainercv_i3d.functions.tf_same_padding import same_padding_nd
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


def tf32_flags():
    """PyTorch's TF32 flags as they are now: ``{'cudnn_allow_tf32',
    'matmul_allow_tf32', 'float32_matmul_precision'}``."""
    import torch
    return {'cudnn_allow_tf32': bool(torch.backends.cudnn.allow_tf32),
            'matmul_allow_tf32': bool(torch.backends.cuda.matmul.allow_tf32),
            'float32_matmul_precision': torch.get_float32_matmul_precision()}


def set_tf32(enabled):
    """Lets PyTorch use TF32 for float32 (``enabled``) or not, in cuDNN's
    convolutions (``torch.backends.cudnn.allow_tf32``) and cuBLAS's matrix
    products (``torch.backends.cuda.matmul.allow_tf32``) both; returns the
    flags read back (:func:`tf32_flags`)."""
    import torch
    torch.backends.cudnn.allow_tf32 = bool(enabled)
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    flags = tf32_flags()
    if flags['cudnn_allow_tf32'] != bool(enabled) or \
            flags['matmul_allow_tf32'] != bool(enabled):
        raise RuntimeError('PyTorch did not take TF32={}: {}'.format(
            bool(enabled), flags))
    return flags


def tf32_setting(device, tf32):
    """What a result records for PyTorch's TF32 on ``device``: ``tf32``
    (a bool) on CUDA, ``'not applicable'`` on a CPU."""
    import torch
    return bool(tf32) if torch.device(device).type == 'cuda' \
        else 'not applicable'


def prepare_device(device, tf32=False):
    """Makes a CUDA ``device`` current, with cuDNN choosing its fastest
    algorithm per shape (``cudnn.benchmark``), as users run PyTorch, and
    TF32 on or off (:func:`set_tf32`: off unless ``tf32``, not PyTorch's
    default). On a CPU nothing is set."""
    import torch
    device = torch.device(device)
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise RuntimeError('PyTorch sees no CUDA GPU for {} (a CPU-only '
                               'PyTorch, or no driver)'.format(device))
        torch.backends.cudnn.benchmark = True
        set_tf32(tf32)
        torch.cuda.set_device(device)
    return device


def torch_forward(model, device='cpu', dtype='float32', tf32=False):
    """A function ``x (numpy NCTHW) -> logits (numpy (N, n_class))``
    computing ``model`` (an I3D link) with PyTorch on ``device`` (on a GPU
    with cuDNN autotuning, and TF32 for float32 only if ``tf32``: see
    :func:`prepare_device`)."""
    import torch
    import torch.nn.functional as F
    device = prepare_device(device, tf32)
    dtype = getattr(torch, dtype)
    steps = []
    for name in model.layer_names[:model.layer_names.index('mixed_5c') + 1]:
        layer = getattr(model, name)
        if isinstance(layer, Unit3D):
            steps.append(torch_unit(layer, device, dtype))
        elif isinstance(layer, InceptionBlock):
            steps.append(_torch_inception(layer, device, dtype))
        else:  # a MaxPool3dSame
            steps.append(_pool_step(layer.ksize, layer.stride))
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


def torch_train_step(model, device='cpu', channels_last=True, tf32=False):
    """A function ``(x, label) -> loss`` that runs one training forward and
    backward of ``model`` (an I3D link) with PyTorch's autograd on its
    weights: batch normalization on the batch's statistics (running
    statistics updated, decay and eps of the link), dropout before the
    logits, softmax cross entropy; the gradients land in ``.grad`` of the
    returned function's ``parameters``.

    Args:
        model (I3D): The link whose weights are copied (trainable tensors).
        device (str): A torch device (CUDA: cuDNN autotuning on, see
            :func:`prepare_device`).
        channels_last (bool): Keep activations in ``channels_last_3d``
            (oneDNN's preferred layout on a CPU).
        tf32 (bool): On CUDA, let float32 convolutions and matrix products
            use TF32 (default: strict float32). Ignored on a CPU.

    Returns:
        callable: ``step(x, label)``, ``x`` a numpy NCTHW float32 array and
        ``label`` a numpy int array; returns the loss as a float.
    """
    import torch
    import torch.nn.functional as F
    device = prepare_device(device, tf32)
    memory_format = torch.channels_last_3d if channels_last \
        else torch.contiguous_format
    parameters = []

    def trainable(array, weight=False):
        array = chainer.backend.CpuDevice().send(array)
        t = torch.as_tensor(numpy.array(array)).to(device)
        if weight:
            t = t.contiguous(memory_format=memory_format)
        t.requires_grad_(True)
        parameters.append(t)
        return t

    def unit_step(unit):
        weight = trainable(unit.conv.W.array, weight=True)
        beta = trainable(unit.bn.beta.array)
        mean = torch.as_tensor(numpy.array(unit.bn.avg_mean)).to(device)
        var = torch.as_tensor(numpy.array(unit.bn.avg_var)).to(device)
        # Chainer's decay d keeps d of the old statistic; torch's momentum
        # is the share of the new one.
        momentum, eps = 1 - unit.bn.decay, unit.bn.eps

        def run(h):
            h = _pad_same(h, unit.ksize, unit.stride, 0)
            h = F.conv3d(h, weight, stride=unit.stride)
            h = F.batch_norm(h, mean, var, None, beta, True, momentum, eps)
            return F.relu(h)
        return run

    def inception_step(block):
        branches = [(pool, [unit_step(getattr(block, name))
                            for name in names]) for pool, names in BRANCHES]

        def run(h):
            outputs = []
            for pool, units in branches:
                branch = _max_pool_same(h, (3, 3, 3), (1, 1, 1)) if pool \
                    else h
                for unit in units:
                    branch = unit(branch)
                outputs.append(branch)
            return torch.cat(outputs, dim=1)
        return run

    steps = []
    for name in model.layer_names[:model.layer_names.index('mixed_5c') + 1]:
        layer = getattr(model, name)
        if isinstance(layer, Unit3D):
            steps.append(unit_step(layer))
        elif isinstance(layer, InceptionBlock):
            steps.append(inception_step(layer))
        else:  # a MaxPool3dSame
            steps.append(_pool_step(layer.ksize, layer.stride))
    logit_w = trainable(model.logits.conv.W.array)
    logit_b = trainable(model.logits.conv.b.array)
    dropout_ratio = model.logits.dropout_ratio

    def step(x, label):
        for p in parameters:
            p.grad = None
        h = torch.as_tensor(x).to(device).contiguous(
            memory_format=memory_format)
        for s in steps:
            h = s(h)
        h = F.avg_pool3d(h, (2, 7, 7), stride=1)
        h = F.dropout(h, dropout_ratio, training=True)
        logits = F.conv3d(h, logit_w, logit_b).mean(dim=(2, 3, 4))
        target = torch.as_tensor(label).to(device).long()
        loss = F.cross_entropy(logits, target)
        loss.backward()
        return float(loss.detach())
    step.parameters = parameters
    return step
