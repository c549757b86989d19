"""The GPU tests' comparisons, proved on the CPU (no GPU has run them):
:func:`assert_close_finite` refuses what ``assert_allclose`` lets through,
and the gradient comparison of ``tests/gpu_tests/test_training.py`` fails on
a perturbed model and on a backward without ``cleargrads()``."""

import chainer
import numpy
import pytest

from chainercv_i3d.links import TinyI3D
from chainercv_i3d.testing.assertions import assert_close_finite
from chainercv_i3d.testing.assertions import assert_model_gradients_match
from chainercv_i3d.testing.assertions import model_gradients

REFERENCE = numpy.array([[1.0, -2.0, 3.0], [0.5, 0.0, -4.0]], numpy.float32)


def test_close_values_pass_and_the_largest_difference_comes_back():
    got = REFERENCE + numpy.float32(1e-4)
    assert assert_close_finite(got, REFERENCE, atol_scale=1e-4) == \
        pytest.approx(1e-4, rel=1e-3)
    assert assert_close_finite(REFERENCE, REFERENCE) == 0  # exact


def test_a_value_out_of_tolerance_fails():
    got = REFERENCE.copy()
    got[1, 2] += 0.01
    with pytest.raises(AssertionError, match=r'1 of 6 .*index \(1, 2\)'):
        assert_close_finite(got, REFERENCE, atol_scale=1e-3)
    with pytest.raises(AssertionError, match='out of tolerance'):
        assert_close_finite(got, REFERENCE, rtol=1e-3)


@pytest.mark.parametrize('bad', [numpy.nan, numpy.inf, -numpy.inf])
@pytest.mark.parametrize('where', ['result', 'reference', 'both'])
def test_non_finite_values_fail(bad, where):
    """``assert_allclose(nan, nan, atol=nan)`` passes; this does not."""
    tainted = REFERENCE.copy()
    tainted[0, 1] = bad
    got = tainted if where in ('result', 'both') else REFERENCE
    expected = tainted if where in ('reference', 'both') else REFERENCE
    numpy.testing.assert_allclose(tainted, tainted)  # what it replaces
    with pytest.raises(AssertionError, match='non-finite'):
        assert_close_finite(got, expected, atol_scale=1e-3)


def test_all_nan_with_a_nan_tolerance_fails():
    """The old gradient test's comparison: NaN against NaN within a
    tolerance computed from NaN."""
    nan = numpy.full((3, 4), numpy.nan, numpy.float32)
    numpy.testing.assert_allclose(nan, nan, rtol=0,
                                  atol=1e-3 * numpy.abs(nan).max())
    with pytest.raises(AssertionError, match='non-finite'):
        assert_close_finite(nan, nan, atol_scale=1e-3)


@pytest.mark.parametrize('shape', [(0,), (2, 0, 3)])
def test_empty_arrays_fail(shape):
    empty = numpy.zeros(shape, numpy.float32)
    numpy.testing.assert_allclose(empty, empty)
    with pytest.raises(AssertionError, match='empty'):
        assert_close_finite(empty, empty, atol_scale=1)


@pytest.mark.parametrize('got_shape, expected_shape', [
    ((1, 400), (400,)),     # broadcasts
    ((400,), (1, 400)),
    ((3, 1), (3, 4)),        # broadcasts
    ((2, 3), (3, 2)),
    ((), (5,)),              # a scalar broadcasts to anything
])
def test_shapes_must_be_equal(got_shape, expected_shape):
    with pytest.raises(AssertionError, match='shape'):
        assert_close_finite(numpy.ones(got_shape), numpy.ones(expected_shape),
                            atol_scale=1)


def test_an_all_zero_reference_fails():
    zeros = numpy.zeros((2, 3), numpy.float32)
    with pytest.raises(AssertionError, match='all zeros'):
        assert_close_finite(zeros, zeros, atol_scale=1e-3)
    with pytest.raises(AssertionError, match='all zeros'):
        assert_close_finite(numpy.ones((2, 3)), zeros, atol=10)


@pytest.mark.parametrize('kwargs', [{'rtol': numpy.nan},
                                    {'atol_scale': -1}, {'atol': numpy.inf}])
def test_bad_tolerances_are_refused(kwargs):
    with pytest.raises(ValueError):
        assert_close_finite(REFERENCE, REFERENCE, **kwargs)


def test_variables_and_scalars_are_compared():
    assert_close_finite(chainer.Variable(REFERENCE), REFERENCE)
    assert_close_finite(2.0, 2.0 + 1e-7, rtol=1e-6)
    with pytest.raises(AssertionError):
        assert_close_finite(2.0, 2.1, rtol=1e-6)


# ------------------------------------------- the gradient comparison


def tiny_model(perturb=0.0):
    """What the GPU gradient test builds, small: the same weights at each
    call; ``perturb`` is added to one weight of the first convolution."""
    def make():
        numpy.random.seed(0)
        model = TinyI3D(n_class=3, dropout_ratio=0)
        model.conv1.conv.W.array[0, 0, 0, 0, 0] += perturb
        return model
    return make


@pytest.fixture(scope='module')
def batch():
    rng = numpy.random.RandomState(1)
    x = rng.uniform(-1, 1, (2, 3, 6, 16, 16)).astype(numpy.float32)
    return x, numpy.array([0, 2], numpy.int32)


def test_the_gradients_are_finite_and_not_zero(batch):
    grads, loss = model_gradients(tiny_model()(), *batch, '@numpy')
    assert numpy.isfinite(loss)
    assert grads and all(numpy.isfinite(g).all() and numpy.abs(g).max() > 0
                         for g in grads.values())


def test_the_gradient_comparison_passes_against_itself(batch):
    errors = assert_model_gradients_match(tiny_model(), *batch, '@numpy')
    assert set(errors) == {name for name, _ in
                           tiny_model()().namedparams()}
    assert max(errors.values()) == 0  # the same computation, bit for bit


def test_the_gradient_comparison_fails_on_a_perturbed_copy(batch):
    with pytest.raises(AssertionError, match='gradient of|loss'):
        assert_model_gradients_match(
            tiny_model(perturb=0.5), *batch, '@numpy',
            make_reference_model=tiny_model())


def test_a_backward_without_cleargrads_is_caught(batch, monkeypatch):
    """The old test's bug: no ``cleargrads()``, so every gradient is the
    NaN chainer fills a fresh parameter's gradient with, plus the
    gradient; the comparison now says so instead of passing."""
    model = tiny_model()()
    assert all(numpy.isnan(p.grad).all() for p in model.params())
    monkeypatch.setattr(chainer.Link, 'cleargrads', lambda self: None)
    with pytest.raises(AssertionError, match='non-finite'):
        assert_model_gradients_match(tiny_model(), *batch, '@numpy')


# ------------------- the GPU tests' own code, rehearsed with numpy as CuPy


class NumpyAsCupy(object):
    """The part of CuPy those tests call, done by numpy: their code runs
    here, with the CPU standing in for the device."""
    ndarray = numpy.ndarray
    asarray = staticmethod(numpy.asarray)
    asnumpy = staticmethod(numpy.asarray)
    full = staticmethod(numpy.full)
    isnan = staticmethod(numpy.isnan)
    tensordot = staticmethod(numpy.tensordot)


def test_the_tiny_i3d_update_test_runs_with_numpy_as_the_device():
    from tests.gpu_tests.test_training import \
        test_tiny_i3d_update_on_the_gpu_equals_the_cpu as update_test
    update_test(NumpyAsCupy(), chainer.get_device('@numpy'))


def test_the_winograd_and_tensordot_tests_run_with_numpy_as_the_device():
    from tests.gpu_tests import test_arrays
    test_arrays.test_tensordot_matches_numpy(NumpyAsCupy(), (4, 3),
                                             (5, 6, 7, 3, 3), (1, 3))
    test_arrays.test_winograd_weight_on_cupy_is_numpy_s(NumpyAsCupy())
    test_arrays.test_winograd_conv_on_cupy_is_numpy_s(NumpyAsCupy(),
                                                      (1, 4, 7, 9, 64))
