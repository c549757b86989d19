import numpy
import pytest

from chainercv_i3d.flow import dequantize_flow
from chainercv_i3d.flow import quantize_flow


@pytest.mark.parametrize('bound', [20, 10, 2.5])
def test_round_trip_error_is_at_most_half_a_step(bound):
    rng = numpy.random.RandomState(0)
    flow = rng.uniform(-bound, bound, (4, 50, 60, 2)).astype(numpy.float32)
    error = numpy.abs(dequantize_flow(quantize_flow(flow, bound), bound)
                      - flow)
    half_step = bound / 255.  # 0.0784 px for bound 20
    assert error.max() <= half_step + 1e-5
    # The bound is tight: 24000 uniform samples come close to it.
    assert error.max() > 0.95 * half_step


def test_default_bound_is_20():
    flow = numpy.array([-20, -19.9, 0, 19.9, 20], numpy.float32)
    numpy.testing.assert_array_equal(quantize_flow(flow),
                                     quantize_flow(flow, 20))
    assert numpy.abs(dequantize_flow(quantize_flow(flow)) - flow).max() \
        <= 40 / 255 / 2 + 1e-6


def test_truncates_to_bound():
    flow = numpy.array([-1000, -20.5, -20, 20, 20.5, 1000], numpy.float32)
    numpy.testing.assert_array_equal(quantize_flow(flow),
                                     [0, 0, 0, 255, 255, 255])


def test_levels_are_linear_over_the_bound():
    # round((f + 20) * 255 / 40), written out for a few values.
    flow = numpy.array([-20, -10, -0.1, 0.1, 10, 20], numpy.float32)
    expected = [0, 64, 127, 128, 191, 255]  # 63.75, 126.86, 128.14, 191.25
    q = quantize_flow(flow)
    assert q.dtype == numpy.uint8
    numpy.testing.assert_array_equal(q, expected)


def test_quantize_keeps_shape_and_uses_all_levels():
    flow = numpy.linspace(-20, 20, 10000).reshape(50, 100, 2)
    q = quantize_flow(flow)
    assert q.shape == flow.shape and q.dtype == numpy.uint8
    assert numpy.all(numpy.diff(q.ravel().astype(int)) >= 0)
    assert len(numpy.unique(q)) == 256


def test_dequantize_formula():
    q = numpy.arange(256, dtype=numpy.uint8).reshape(16, 16)
    flow = dequantize_flow(q)
    assert flow.dtype == numpy.float32 and flow.shape == (16, 16)
    numpy.testing.assert_allclose(flow, q.astype(numpy.float64) * 40 / 255
                                  - 20, rtol=0, atol=2e-6)
    assert flow[0, 0] == -20 and flow[-1, -1] == 20


def test_quantize_inverts_dequantize():
    q = numpy.arange(256, dtype=numpy.uint8)
    for bound in (20, 7):
        numpy.testing.assert_array_equal(
            quantize_flow(dequantize_flow(q, bound), bound), q)


@pytest.mark.parametrize('bound', [0, -20])
def test_non_positive_bound_raises(bound):
    with pytest.raises(ValueError, match='bound'):
        quantize_flow(numpy.zeros(3), bound)
    with pytest.raises(ValueError, match='bound'):
        dequantize_flow(numpy.zeros(3, numpy.uint8), bound)
