"""CuPy semantics the fast path relies on, against numpy.

The fast path writes an Inception block's branches into channel slices of
one array with ``matmul(..., out=)``, and transforms Winograd weights with
``tensordot``; on a CPU these are numpy's, here CuPy's. Results are
compared with :func:`chainercv_i3d.testing.assertions.assert_close_finite`
(no NaN, no empty array, no broadcast, no all-zero reference passes it).
"""

import numpy
import pytest

from chainercv_i3d.links.fast.winograd import winograd_conv
from chainercv_i3d.links.fast.winograd import winograd_weight
from chainercv_i3d.testing.assertions import assert_close_finite

pytestmark = [pytest.mark.gpu]


def test_matmul_out_into_a_channel_slice_writes_the_slice_only(cupy):
    rng = numpy.random.RandomState(0)
    rows = rng.randn(2 * 3 * 5 * 5, 8).astype(numpy.float32)
    weight = rng.randn(8, 6).astype(numpy.float32)
    base = cupy.full((2, 3, 5, 5, 16), numpy.nan, dtype=numpy.float32)
    view = base[..., 4:10].reshape(-1, 6)  # a view, as conv_1x1 makes it
    assert view.data.ptr == base[..., 4:10].data.ptr
    result = cupy.matmul(cupy.asarray(rows), cupy.asarray(weight), out=view)
    assert result is view
    got = cupy.asnumpy(base)
    assert_close_finite(got[..., 4:10].reshape(-1, 6), rows @ weight,
                        rtol=1e-5, atol=1e-5, name='the slice')
    # The channels around the slice keep their NaN (a sentinel: written
    # values would be finite).
    assert got[..., :4].size and got[..., 10:].size
    assert numpy.isnan(got[..., :4]).all() and numpy.isnan(got[..., 10:]).all()


@pytest.mark.parametrize('shape_a, shape_b, axes', [
    ((4, 3), (5, 6, 7, 3, 3), (1, 3)),       # G times w over its time axis
    ((4, 5, 6, 7, 3), (4, 3), (4, 1)),       # then over the width axis
])
def test_tensordot_matches_numpy(cupy, shape_a, shape_b, axes):
    rng = numpy.random.RandomState(1)
    a, b = rng.randn(*shape_a), rng.randn(*shape_b)
    got = cupy.tensordot(cupy.asarray(a), cupy.asarray(b), axes=axes)
    assert_close_finite(cupy.asnumpy(got), numpy.tensordot(a, b, axes=axes),
                        rtol=1e-12, atol=1e-12)


def test_winograd_weight_on_cupy_is_numpy_s(cupy):
    w = numpy.random.RandomState(2).randn(16, 64, 3, 3, 3).astype(
        numpy.float32)
    got = winograd_weight(cupy.asarray(w))
    assert isinstance(got, cupy.ndarray)
    assert_close_finite(cupy.asnumpy(got), winograd_weight(w), rtol=1e-6,
                        atol=1e-6)


@pytest.mark.parametrize('shape', [(1, 4, 7, 9, 64), (2, 3, 8, 8, 96)])
def test_winograd_conv_on_cupy_is_numpy_s(cupy, shape):
    rng = numpy.random.RandomState(3)
    x = rng.randn(*shape).astype(numpy.float32)
    w = rng.randn(32, shape[-1], 3, 3, 3).astype(numpy.float32) * 0.05
    bias = rng.randn(32).astype(numpy.float32)
    expected = winograd_conv(x, winograd_weight(w), bias)
    out = cupy.full(shape[:4] + (40,), numpy.nan, dtype=numpy.float32)
    got = winograd_conv(cupy.asarray(x), winograd_weight(cupy.asarray(w)),
                        cupy.asarray(bias), out=out[..., 4:36])
    assert isinstance(got, cupy.ndarray)
    assert_close_finite(cupy.asnumpy(got), expected, rtol=1e-4, atol=1e-4)
    # Written into its slice of ``out``, the channels around it untouched.
    assert_close_finite(cupy.asnumpy(out[..., 4:36]), expected, rtol=1e-4,
                        atol=1e-4, name='the slice of out')
    assert bool(cupy.isnan(out[..., :4]).all()) and \
        bool(cupy.isnan(out[..., 36:]).all())
