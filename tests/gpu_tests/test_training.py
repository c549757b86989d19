"""Training on a GPU: one update of TinyI3D, and I3D's gradient, equal the
CPU's (whose convolutions are chainercv_i3d's own GEMM nodes; on a GPU
chainer's F.convolution_nd with im2col and cuBLAS, or cuDNN).

Every comparison goes through :mod:`chainercv_i3d.testing.assertions`: it
fails on NaN, infinities, empty arrays, different shapes and all-zero
references (``tests/test_gpu_assertions.py`` proves it, and the gradient
comparison, on the CPU).
"""

import chainer
import chainer.functions as F
import numpy
import pytest

from chainercv_i3d.architecture import min_input_size
from chainercv_i3d.links import I3D
from chainercv_i3d.links import TinyI3D
from chainercv_i3d.testing.assertions import as_numpy
from chainercv_i3d.testing.assertions import assert_close_finite
from chainercv_i3d.testing.assertions import assert_model_gradients_match
from chainercv_i3d.training.trainer import clip_loss

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
    return float(as_numpy(loss.array))


def params_on_cpu(model):
    return {name: as_numpy(p.array).copy()
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
    before = params_on_cpu(models[0])
    cpu_loss = train_step(models[0], x, label)
    gpu_loss = train_step(models[1], cupy.asarray(x), cupy.asarray(label))
    assert_close_finite(gpu_loss, cpu_loss, rtol=1e-5, name='loss')
    cpu_params, gpu_params = (params_on_cpu(m) for m in models)
    assert cpu_params and set(cpu_params) == set(gpu_params)
    for name, value in cpu_params.items():
        # The update moved every parameter: equal parameters are not equal
        # updates when nothing was updated.
        assert numpy.abs(value - before[name]).max() > 0, name
        assert_close_finite(gpu_params[name], value, rtol=1e-4, atol=1e-5,
                            name=name)
        assert_close_finite(gpu_params[name] - before[name],
                            value - before[name], rtol=0, atol_scale=1e-2,
                            name='update of ' + name)
    for a, b, name in (
            (models[0].conv1.bn.avg_mean, models[1].conv1.bn.avg_mean,
             'conv1 avg_mean'),
            (models[0].conv2.bn.avg_var, models[1].conv2.bn.avg_var,
             'conv2 avg_var')):
        assert_close_finite(b, a, rtol=1e-4, atol=1e-6, name=name)


@pytest.mark.parametrize('labels', [
    numpy.array([[1, 0, 1], [0, 0, 0], [0, 1, 1]], numpy.int32),
    numpy.array([2, 0, 1], numpy.int32)])
def test_the_sigmoid_loss_on_the_gpu_equals_the_cpu(cupy, gpu, labels):
    logits = numpy.random.RandomState(0).normal(size=(3, 3)).astype(
        numpy.float32)
    cpu_loss, cpu_hits = clip_loss(chainer.Variable(logits), labels,
                                   'sigmoid')
    gpu_loss, gpu_hits = clip_loss(chainer.Variable(cupy.asarray(logits)),
                                   cupy.asarray(labels), 'sigmoid')
    assert_close_finite(gpu_loss.array, cpu_loss.array, rtol=1e-6,
                        name='loss')
    assert int(gpu_hits) == int(cpu_hits)


@pytest.mark.slow
def test_i3d_gradient_on_the_gpu_equals_the_cpu(cupy, gpu):
    """The gradient of every parameter, cleared before the backward (a
    fresh parameter's gradient is NaN), against the CPU's: the comparison
    ``tests/test_gpu_assertions.py`` runs on the CPU."""
    t, h, w = min_input_size()
    rng = numpy.random.RandomState(1)
    x = rng.uniform(-1, 1, (2, 3, t, h, w)).astype(numpy.float32)
    label = numpy.array([3, 7], numpy.int32)

    def make_model():
        numpy.random.seed(0)
        return I3D(n_class=10, modality='rgb', dropout_ratio=0)

    errors = assert_model_gradients_match(make_model, x, label, gpu,
                                          reference_device='@numpy',
                                          atol_scale=1e-3)
    assert len(errors) == len(list(make_model().params()))
