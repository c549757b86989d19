"""Comparisons that cannot pass by accident, for the GPU tests.

``numpy.testing.assert_allclose`` treats NaN as equal to NaN, broadcasts
shapes and passes on empty arrays; a tolerance computed from a NaN
reference is NaN, and ``x <= NaN`` is never checked there. A test of a
device against the CPU can then pass with every value NaN on both sides
(as I3D's gradient did: chainer fills a fresh parameter's gradient with
NaN, and a backward without ``cleargrads()`` adds into it).
:func:`assert_close_finite` refuses each of these; :func:`model_gradients`
and :func:`assert_model_gradients_match` are the gradient comparison the
GPU test runs (device against CPU) and that a CPU test proves (CPU against
a perturbed CPU copy, and without ``cleargrads()``).

Arrays may be numpy or CuPy (anything with ``.get()``); CuPy is not
imported here.
"""

import chainer
import chainer.functions as F
import numpy


def as_numpy(array):
    """``array`` (a Variable, a numpy or CuPy array, a number or a list) as
    a numpy array on the host."""
    if isinstance(array, chainer.Variable):
        array = array.array
    if not isinstance(array, numpy.ndarray) and hasattr(array, 'get'):
        array = array.get()  # CuPy: copied to the host
    return numpy.asarray(array)


def _first_index(mask):
    return tuple(int(i) for i in numpy.argwhere(mask)[0])


def assert_close_finite(actual, expected, rtol=0.0, atol_scale=0.0, atol=0.0,
                        name='values'):
    """Asserts ``|actual - expected| <= atol + atol_scale * max|expected| +
    rtol * |expected|`` elementwise, and that the comparison means something.

    Raises ``AssertionError`` when the shapes differ (no broadcasting), when
    the arrays are empty, when either holds a NaN or an infinity, when the
    reference is all zeros (a result that never got written, or a gradient
    that never flowed, compares equal to it), or when a value is out of
    tolerance.

    Args:
        actual: The result under test (numpy, CuPy, Variable or number).
        expected: The independent reference.
        rtol (float): Relative tolerance, per element.
        atol_scale (float): Absolute tolerance as a share of the largest
            ``|expected|`` (finite: checked before it is used).
        atol (float): Absolute tolerance added to that.
        name (str): What is compared, for the messages.

    Returns:
        float: The largest ``|actual - expected|`` (for reports).
    """
    for what, value in (('rtol', rtol), ('atol_scale', atol_scale),
                        ('atol', atol)):
        if not (numpy.isfinite(value) and value >= 0):
            raise ValueError('{}: {} must be finite and >= 0, got {}'.format(
                name, what, value))
    actual, expected = as_numpy(actual), as_numpy(expected)
    if actual.shape != expected.shape:
        raise AssertionError('{}: shape {} differs from the reference\'s {} '
                             '(no broadcasting)'.format(
                                 name, actual.shape, expected.shape))
    if expected.size == 0:
        raise AssertionError('{}: empty arrays (shape {}): nothing '
                             'compared'.format(name, expected.shape))
    for what, array in (('result', actual), ('reference', expected)):
        if not (numpy.issubdtype(array.dtype, numpy.number)
                or array.dtype == numpy.bool_):
            raise AssertionError('{}: the {} is not numeric (dtype '
                                 '{})'.format(name, what, array.dtype))
        bad = ~numpy.isfinite(array)
        if bad.any():
            raise AssertionError(
                '{}: the {} has {} non-finite value(s) of {} (first {} at '
                'index {})'.format(name, what, int(bad.sum()), array.size,
                                   array[bad][0], _first_index(bad)))
    actual = actual.astype(numpy.float64)
    expected = expected.astype(numpy.float64)
    scale = float(numpy.abs(expected).max())
    if scale == 0:
        raise AssertionError('{}: the reference is all zeros (shape {}): a '
                             'result never written would equal it'.format(
                                 name, expected.shape))
    error = numpy.abs(actual - expected)
    bound = atol + atol_scale * scale + rtol * numpy.abs(expected)
    over = error > bound
    if over.any():
        i = _first_index(error - bound == (error - bound).max())
        raise AssertionError(
            '{}: {} of {} value(s) out of tolerance; max |difference| {:.3e} '
            '(worst at index {}: {!r} against {!r}, allowed {:.3e}); '
            'max|reference| {:.3e}, rtol {}, atol_scale {}, atol {}'.format(
                name, int(over.sum()), error.size, float(error.max()), i,
                float(actual[i]), float(expected[i]), float(bound[i]),
                scale, rtol, atol_scale, atol))
    return float(error.max())


def model_gradients(model, x, label, device):
    """One training forward (softmax cross entropy) and backward of
    ``model`` on ``device``, its gradients cleared first.

    Args:
        model (chainer.Link): Moved to ``device``.
        x (numpy.ndarray): The input, sent to ``device``.
        label (numpy.ndarray): int32 labels, sent to ``device``.
        device: A chainer device specifier (``'@numpy'``, ``'@cupy:0'``).

    Returns:
        tuple: ``({parameter name: gradient as numpy}, loss as float)``.

    Raises:
        AssertionError: A parameter got no gradient.
    """
    device = chainer.get_device(device)
    model.to_device(device)
    model.cleargrads()  # a fresh parameter's gradient is NaN, and adds up
    with chainer.using_config('train', True):
        loss = F.softmax_cross_entropy(model(device.send(x)),
                                       device.send(label))
    loss.backward()
    params = dict(model.namedparams())
    missing = sorted(name for name, p in params.items() if p.grad is None)
    if missing:
        raise AssertionError('no gradient reached {}'.format(
            ', '.join(missing)))
    return ({name: as_numpy(p.grad) for name, p in params.items()},
            float(as_numpy(loss.array)))


def assert_model_gradients_match(make_model, x, label, device,
                                 reference_device='@numpy',
                                 make_reference_model=None, atol_scale=1e-3,
                                 rtol=0.0, loss_rtol=1e-5):
    """The gradients of a model made by ``make_model`` on ``device`` equal
    those of ``make_reference_model`` (default: ``make_model``) on
    ``reference_device``, parameter by parameter, each within
    ``atol_scale`` of its own largest reference value (plus ``rtol``), and
    the losses within ``loss_rtol``; every value finite, no gradient all
    zeros.

    Args:
        make_model (callable): ``() -> chainer.Link``: each call must make
            the same weights (seed inside it).

    Returns:
        dict: ``{parameter name: max |difference|}``.
    """
    make_reference_model = make_reference_model or make_model
    expected, expected_loss = model_gradients(make_reference_model(), x,
                                              label, reference_device)
    actual, actual_loss = model_gradients(make_model(), x, label, device)
    assert_close_finite(actual_loss, expected_loss, rtol=loss_rtol,
                        name='loss')
    if not expected or set(actual) != set(expected):
        raise AssertionError('parameters differ: {} only on the device, {} '
                             'only on the reference'.format(
                                 sorted(set(actual) - set(expected)),
                                 sorted(set(expected) - set(actual))))
    return {name: assert_close_finite(actual[name], expected[name],
                                      rtol=rtol, atol_scale=atol_scale,
                                      name='gradient of ' + name)
            for name in sorted(expected)}
