"""The compiled channels-last SAME max pool against Chainer's.

A maximum is exact: ``cpu_max_pool_same`` must equal ``F.max_pooling_nd``
on the input padded with -inf, for each kind of pool in I3D on odd sizes.
"""

import numpy
import pytest

from chainercv_i3d.functions.tf_same_padding import max_pooling_nd_same_chainer
from chainercv_i3d.links.fast import forward as fast_inference
from chainercv_i3d.links.fast.cpu_max_pool import cpu_max_pool_same
from chainercv_i3d.utils import threads as parallel

POOLS = [
    ((1, 3, 3), (1, 2, 2)),   # maxpool3d_2a
    ((3, 3, 3), (2, 2, 2)),   # maxpool3d_3a, 4a
    ((2, 2, 2), (2, 2, 2)),   # maxpool3d_5a
    ((3, 3, 3), (1, 1, 1)),   # branch 3 of every Inception block
]


def expected(x, ksize, stride):
    y = max_pooling_nd_same_chainer(x.transpose(0, 4, 1, 2, 3), ksize,
                                    stride).array
    return y.transpose(0, 2, 3, 4, 1)


@pytest.mark.parametrize('threads', [False, True], ids=['serial', 'threads'])
@pytest.mark.parametrize('shape', [(2, 5, 7, 9, 6), (1, 8, 10, 6, 3),
                                   (1, 1, 1, 1, 4), (1, 9, 13, 11, 17)])
@pytest.mark.parametrize('ksize,stride', POOLS)
def test_matches_chainer(threads, shape, ksize, stride):
    x = numpy.random.RandomState(0).normal(size=shape).astype(numpy.float32)
    with parallel.cpu_chunks(numpy) if threads else _nothing():
        y = cpu_max_pool_same(x, ksize, stride)
    numpy.testing.assert_array_equal(y, expected(x, ksize, stride))


def test_strided_input_out_and_float64():
    rng = numpy.random.RandomState(1)
    merged = rng.normal(size=(2, 5, 7, 6, 11))
    x = merged[..., 2:8]
    big = numpy.zeros((2, 5, 7, 6, 9))
    out = big[..., 1:7]
    with parallel.cpu_chunks(numpy):
        y = cpu_max_pool_same(x, (3, 3, 3), (1, 1, 1), out=out)
    assert y is out
    numpy.testing.assert_array_equal(out, expected(x, (3, 3, 3), (1, 1, 1)))
    assert (big[..., :1] == 0).all() and (big[..., 7:] == 0).all()


def test_forward_dispatch():
    x = numpy.random.RandomState(2).normal(
        size=(1, 7, 9, 5, 8)).astype(numpy.float32)
    with parallel.cpu_chunks(numpy):
        for ksize, stride in POOLS:
            numpy.testing.assert_array_equal(
                fast_inference.max_pool_same(x, ksize, stride),
                cpu_max_pool_same(x, ksize, stride))
            half = fast_inference.max_pool_same(
                x.astype(numpy.float16), ksize, stride)
            numpy.testing.assert_array_equal(
                half, cpu_max_pool_same(x, ksize, stride).astype(
                    numpy.float16))


class _nothing(object):
    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False
