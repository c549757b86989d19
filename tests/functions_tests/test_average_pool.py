"""The head's typed average pools against Chainer's own functions."""

import chainercv_i3d  # NOQA: before chainer

import chainer.functions as F
import numpy

from chainercv_i3d.functions import AveragePoolPerStep
from chainercv_i3d.functions import SpatialMean


def test_average_pool_per_step_is_a_valid_pool_without_space():
    x = numpy.random.RandomState(0).randn(2, 4, 5, 7, 7).astype(numpy.float32)
    pool = AveragePoolPerStep((2, 7, 7))
    y = pool(x).array
    expected = F.average_pooling_nd(x, (2, 7, 7), 1, 0).array[:, :, :, 0, 0]
    assert y.shape == (2, 4, 4)
    numpy.testing.assert_allclose(y, expected, rtol=1e-6)
    assert pool.ksize == (2, 7, 7)


def test_spatial_mean_keeps_one_value_per_step():
    x = numpy.random.RandomState(1).randn(1, 3, 4, 5, 6).astype(numpy.float32)
    y = SpatialMean()(x).array
    numpy.testing.assert_allclose(y, x.mean(axis=(3, 4)), rtol=1e-6)
