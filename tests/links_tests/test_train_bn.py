"""The fused CPU batch norm + ReLU (train_bn) against Chainer's.

Values, both gradients and the running statistics must be those of
``F.relu(L.BatchNormalization(use_gamma=False)(x))`` in training, to float32
rounding; the gradients the derivative of the forward (float64); a
:class:`Unit3D` must run it in training on a CPU, and Chainer's link when
its batch norm is replaced or frozen.
"""

import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest

from chainercv_i3d.links.train_bn import batch_norm_relu
from chainercv_i3d.links.train_bn import TrainBatchNormReLU
from chainercv_i3d.links.unit3d import Unit3D
from chainercv_i3d.testing.gradients import check_backward

SHAPES = [(2, 5, 3, 4, 6), (1, 7, 2, 3, 3), (3, 2, 1, 1, 2), (2, 4, 9)]


def _relative_error(actual, expected):
    return numpy.abs(actual - expected).max() / numpy.abs(expected).max()


def _chainer_bn(channels, beta):
    bn = L.BatchNormalization(channels, decay=0.999, eps=1e-3,
                              use_gamma=False)
    bn.beta.array[...] = beta
    bn.avg_mean[...] = numpy.linspace(-1, 1, channels)
    bn.avg_var[...] = numpy.linspace(0.5, 2, channels)
    bn.cleargrads()
    return bn


@pytest.mark.parametrize('shape', SHAPES)
def test_matches_chainer_values_gradients_and_statistics(shape):
    rng = numpy.random.RandomState(0)
    x = rng.randn(*shape).astype(numpy.float32) * 3 + 1
    beta = rng.randn(shape[1]).astype(numpy.float32)
    gy = rng.randn(*shape).astype(numpy.float32)
    reference_bn, bn = _chainer_bn(shape[1], beta), _chainer_bn(shape[1],
                                                                 beta)

    x_ref = chainer.Variable(x.copy())
    with chainer.using_config('train', True):
        y_ref = F.relu(reference_bn(x_ref))
    y_ref.grad = gy
    y_ref.backward()

    x_var = chainer.Variable(x.copy())
    y = batch_norm_relu(x_var, bn.beta, bn.eps, bn.avg_mean, bn.avg_var,
                        bn.decay)
    assert isinstance(y.creator, TrainBatchNormReLU)
    y.grad = gy
    y.backward()

    assert (y.array > 0).sum() > 0 and (y.array == 0).sum() > 0
    for actual, expected in ((y.array, y_ref.array),
                             (x_var.grad, x_ref.grad),
                             (bn.beta.grad, reference_bn.beta.grad),
                             (bn.avg_mean, reference_bn.avg_mean),
                             (bn.avg_var, reference_bn.avg_var)):
        assert actual.dtype == numpy.float32
        assert _relative_error(actual, expected) < 1e-5


def test_gradients_are_the_derivative():
    rng = numpy.random.RandomState(1)
    x = rng.randn(2, 3, 2, 3, 2)
    beta = rng.randn(3)
    gy = rng.randn(*x.shape)
    check_backward(
        lambda x, beta: batch_norm_relu(x, beta, 1e-3), (x, beta), gy,
        atol=1e-4, rtol=1e-3)


def test_result_does_not_depend_on_channel_grouping(monkeypatch):
    from chainercv_i3d.links import train_bn
    x = numpy.random.RandomState(2).randn(2, 6, 5, 7, 9).astype(
        numpy.float32)
    beta = numpy.zeros(6, numpy.float32)
    results = []
    for elements in (1, 10 ** 9):  # a chunk per channel; one chunk
        monkeypatch.setattr(train_bn, 'CHUNK_ELEMENTS', elements)
        x_var = chainer.Variable(x.copy())
        y = batch_norm_relu(x_var, beta, 1e-3)
        y.grad = numpy.ones_like(x)
        y.backward()
        results.append((y.array, x_var.grad))
    for a, b in zip(*results):
        assert numpy.array_equal(a, b)


def test_unit3d_uses_it_in_training_only_with_its_own_batch_norm():
    unit = Unit3D(2, 3, ksize=1)
    x = numpy.random.RandomState(3).randn(2, 2, 2, 3, 3).astype(
        numpy.float32)
    with chainer.using_config('train', True):
        assert isinstance(unit(x).creator, TrainBatchNormReLU)
        unit.frozen_statistics = True
        assert not isinstance(unit(x).creator, TrainBatchNormReLU)
    unit.frozen_statistics = False
    with chainer.using_config('train', False):
        assert not isinstance(unit(x).creator, TrainBatchNormReLU)


def test_non_numpy_and_bad_beta_raise_value_error():
    x = numpy.zeros((2, 3, 4), numpy.float32)
    with pytest.raises(ValueError, match='one value per channel'):
        batch_norm_relu(x, numpy.zeros(4, numpy.float32), 1e-3)


def test_double_backprop_raises_a_clear_error():
    x = chainer.Variable(numpy.random.RandomState(4).randn(2, 3, 4).astype(
        numpy.float32))
    y = batch_norm_relu(x, numpy.zeros(3, numpy.float32), 1e-3)
    gx, = chainer.grad([F.sum(y)], [x], enable_double_backprop=True)
    with pytest.raises(NotImplementedError, match='double backpropagation'):
        F.sum(gx).backward()
