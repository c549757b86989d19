"""A numerical check of a function's backward pass, for tests.

``chainer.gradient_check`` imports ``chainer.testing``, which imports
``pkg_resources``, gone from setuptools 82 on (the numpy 2 test environment
and the GPU machines): this does the same check without it.
"""

import chainer
import numpy


def check_backward(function, inputs, grad_output, eps=1e-3, atol=1e-5,
                   rtol=1e-4, seed=0):
    """Checks the gradients of ``function`` against a central difference.

    As ``chainer.gradient_check.check_backward``: along one random
    direction ``d`` of the inputs, the analytic directional derivative
    ``sum_i <grad_i, d_i>`` of ``<function(inputs), grad_output>`` must
    equal ``(f(x + eps d) - f(x - eps d)) / (2 eps)``.

    Args:
        function (callable): ``function(*variables) -> chainer.Variable``.
        inputs (tuple of numpy.ndarray): float64 inputs.
        grad_output (numpy.ndarray): The output's gradient.
        eps (float): Step of the difference.
        atol (float): Absolute tolerance.
        rtol (float): Relative tolerance.
        seed (int): Seed of the direction.

    Raises:
        AssertionError: The two derivatives differ.
    """
    rng = numpy.random.RandomState(seed)
    directions = [rng.uniform(-1, 1, x.shape) for x in inputs]
    variables = [chainer.Variable(x.copy()) for x in inputs]
    y = function(*variables)
    y.grad = grad_output.copy()
    y.backward()
    analytic = sum(float((v.grad * d).sum())
                   for v, d in zip(variables, directions))

    def along(step):
        shifted = [chainer.Variable(x + step * d)
                   for x, d in zip(inputs, directions)]
        with chainer.no_backprop_mode():
            return float((function(*shifted).array * grad_output).sum())

    numeric = (along(eps) - along(-eps)) / (2 * eps)
    assert abs(analytic - numeric) <= atol + rtol * abs(numeric), (
        'gradients differ along a random direction: analytic {}, numeric '
        '{}'.format(analytic, numeric))
