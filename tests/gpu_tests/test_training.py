"""Training on a GPU: one update of TinyI3D, and I3D's gradient, equal the
CPU's (whose convolutions are chainercv_i3d's own GEMM nodes; on a GPU
chainer's F.convolution_nd with im2col and cuBLAS, or cuDNN)."""

import chainer
import chainer.functions as F
import numpy
import pytest

from chainercv_i3d.architecture import min_input_size
from chainercv_i3d.links import I3D
from chainercv_i3d.links import TinyI3D

pytestmark = [pytest.mark.gpu]


def train_step(model, x, label, lr=0.1):
    """One MomentumSGD update with softmax cross entropy; returns the loss."""
    optimizer = chainer.optimizers.MomentumSGD(lr=lr)
    optimizer.setup(model)
    with chainer.using_config('train', True):
        loss = F.softmax_cross_entropy(model(x), label)
    model.cleargrads()
    loss.backward()
    optimizer.update()
    return float(chainer.backends.cuda.to_cpu(loss.array))


def params_on_cpu(model):
    return {name: chainer.backends.cuda.to_cpu(p.array)
            for name, p in model.namedparams()}


def test_tiny_i3d_update_on_the_gpu_equals_the_cpu(cupy, gpu):
    rng = numpy.random.RandomState(0)
    x = rng.uniform(-1, 1, (4, 3, 6, 16, 16)).astype(numpy.float32)
    label = rng.randint(0, 2, 4).astype(numpy.int32)
    models = []
    for device in ('@numpy', gpu):
        numpy.random.seed(0)
        model = TinyI3D(n_class=2, dropout_ratio=0)  # no random mask
        model.to_device(device)
        models.append(model)
    cpu_loss = train_step(models[0], x, label)
    gpu_loss = train_step(models[1], cupy.asarray(x), cupy.asarray(label))
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-5)
    cpu_params, gpu_params = (params_on_cpu(m) for m in models)
    assert set(cpu_params) == set(gpu_params)
    for name, value in cpu_params.items():
        numpy.testing.assert_allclose(gpu_params[name], value, rtol=1e-4,
                                      atol=1e-5, err_msg=name)
    for a, b in ((models[0].conv1.bn.avg_mean, models[1].conv1.bn.avg_mean),
                 (models[0].conv2.bn.avg_var, models[1].conv2.bn.avg_var)):
        numpy.testing.assert_allclose(cupy.asnumpy(b), a, rtol=1e-4,
                                      atol=1e-6)


@pytest.mark.slow
def test_i3d_gradient_on_the_gpu_equals_the_cpu(cupy, gpu):
    t, h, w = min_input_size()
    rng = numpy.random.RandomState(1)
    x = rng.uniform(-1, 1, (2, 3, t, h, w)).astype(numpy.float32)
    label = numpy.array([3, 7], numpy.int32)
    grads = []
    for device in ('@numpy', gpu):
        numpy.random.seed(0)
        model = I3D(n_class=10, modality='rgb', dropout_ratio=0)
        model.to_device(device)
        xp = model.xp
        with chainer.using_config('train', True):
            loss = F.softmax_cross_entropy(model(xp.asarray(x)),
                                           xp.asarray(label))
        loss.backward()
        grads.append({name: chainer.backends.cuda.to_cpu(p.grad)
                      for name, p in model.namedparams()})
    cpu, on_gpu = grads
    for name, g in cpu.items():
        scale = max(float(numpy.abs(g).max()), 1e-12)
        numpy.testing.assert_allclose(on_gpu[name], g, rtol=0,
                                      atol=1e-3 * scale, err_msg=name)
