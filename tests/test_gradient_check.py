"""The numerical gradient check the training-node tests rely on."""

import chainer
import numpy
import pytest

from chainercv_i3d.testing.gradients import check_backward


class _Square(chainer.FunctionNode):
    """x ** 2 with a backward that is right or off by a factor."""

    def __init__(self, factor):
        self.factor = factor

    def forward(self, inputs):
        self.retain_inputs((0,))
        return inputs[0] ** 2,

    def backward(self, indexes, grad_outputs):
        x, = self.get_retained_inputs()
        return self.factor * 2 * x * grad_outputs[0],


def test_a_right_backward_passes_and_a_wrong_one_fails():
    rng = numpy.random.RandomState(0)
    x, gy = rng.randn(3, 4), rng.randn(3, 4)
    check_backward(lambda v: _Square(1.0).apply((v,))[0], (x,), gy)
    with pytest.raises(AssertionError, match='gradients differ'):
        check_backward(lambda v: _Square(1.01).apply((v,))[0], (x,), gy)
