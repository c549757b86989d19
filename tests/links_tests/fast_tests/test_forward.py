"""The fast path's pieces against Chainer's functions, one at a time.

The whole network is compared with TensorFlow in the fidelity tests; these
pin each piece down on odd shapes, batches, strided outputs and threads.
"""


import chainer
import chainer.functions as F
import numpy
import pytest

from chainercv_i3d.links.fast import forward as fast_inference
from chainercv_i3d.links import I3D
from chainercv_i3d.utils import threads as parallel
from chainercv_i3d.links.inception_block import InceptionBlock
from chainercv_i3d.functions.tf_same_padding import same_padding_nd
from chainercv_i3d.links.unit3d import Unit3D
from chainercv_i3d.links.fast.winograd import winograd_conv
from chainercv_i3d.links.fast.winograd import winograd_weight


def randomize_batch_norms(link, rng):
    for bn in link.links():
        if isinstance(bn, chainer.links.BatchNormalization):
            bn.avg_mean[...] = rng.normal(0, 0.1, bn.avg_mean.shape)
            bn.avg_var[...] = rng.uniform(0.5, 1.5, bn.avg_var.shape)
            bn.beta.array[...] = rng.normal(0, 0.1, bn.beta.shape)


def chainer_output(link, x):
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        return link(x).array


def channels_last(x):
    return numpy.ascontiguousarray(x.transpose(0, 2, 3, 4, 1))


def channels_first(x):
    return x.transpose(0, 4, 1, 2, 3)


def unit_and_input(rng, in_c, out_c, ksize, stride, shape):
    unit = Unit3D(in_c, out_c, ksize=ksize, stride=stride)
    unit.conv.W.array[...] = rng.normal(0, 0.1, unit.conv.W.shape)
    randomize_batch_norms(unit, rng)
    x = rng.normal(0, 1, (shape[0], in_c) + shape[1:]).astype(numpy.float32)
    return unit, x


@pytest.mark.parametrize('threads', [False, True], ids=['serial', 'threads'])
@pytest.mark.parametrize('in_c,out_c,ksize,stride,shape', [
    (64, 7, (3, 3, 3), (1, 1, 1), (2, 5, 7, 9)),   # Winograd, odd sizes
    (80, 8, (3, 3, 3), (1, 1, 1), (1, 4, 14, 14)),  # Winograd, even sizes
    (64, 4, (3, 3, 3), (1, 1, 1), (1, 1, 1, 1)),   # Winograd, one pixel
    (16, 8, (3, 3, 3), (1, 1, 1), (1, 4, 7, 6)),   # few channels: im2col
    (6, 5, (1, 1, 1), (1, 1, 1), (2, 3, 5, 4)),    # a matrix product
    (3, 8, (7, 7, 7), (2, 2, 2), (2, 9, 17, 16)),  # the stem, im2col
    (2, 3, (2, 3, 1), (1, 2, 1), (1, 4, 6, 5)),    # any other, im2col
])
def test_folded_unit_equals_the_chainer_unit(in_c, out_c, ksize, stride,
                                             shape, threads):
    rng = numpy.random.RandomState(0)
    unit, x = unit_and_input(rng, in_c, out_c, ksize, stride, shape)
    expected = chainer_output(unit, x)
    with parallel.cpu_chunks(numpy if threads else None):
        folded = fast_inference.FoldedUnit(unit)
        y = folded(channels_last(x))
    assert folded.winograd == (ksize == (3, 3, 3) and in_c >= 64)
    numpy.testing.assert_allclose(channels_first(y), expected, rtol=1e-5,
                                  atol=1e-5 * numpy.abs(expected).max())


@pytest.mark.parametrize('ksize,in_c', [
    ((1, 1, 1), 4), ((3, 3, 3), 64), ((3, 3, 3), 4), ((7, 7, 7), 3)])
def test_folded_unit_writes_into_a_channel_slice(ksize, in_c):
    rng = numpy.random.RandomState(1)
    stride = (2, 2, 2) if ksize == (7, 7, 7) else (1, 1, 1)
    unit, x = unit_and_input(rng, in_c, 6, ksize, stride, (1, 5, 8, 7))
    expected = channels_last(chainer_output(unit, x))
    out = numpy.full(expected.shape[:4] + (10,), 7, dtype=numpy.float32)
    folded = fast_inference.FoldedUnit(unit)
    returned = folded(channels_last(x), out=out[..., 3:9])
    assert numpy.shares_memory(returned, out)
    numpy.testing.assert_allclose(out[..., 3:9], expected, rtol=1e-5,
                                  atol=1e-5 * numpy.abs(expected).max())
    assert (out[..., :3] == 7).all() and (out[..., 9:] == 7).all()


def test_winograd_is_as_exact_as_a_direct_float32_convolution():
    # Large channel counts, where rounding adds up: the float64 direct
    # convolution is the truth; Winograd may not be worse than float32
    # direct (Chainer's) by more than a small factor.
    rng = numpy.random.RandomState(2)
    x = numpy.abs(rng.normal(0, 1, (1, 192, 3, 8, 8)))
    w = rng.normal(0, 0.05, (64, 192, 3, 3, 3))
    truth = F.convolution_nd(x, w, pad=1).array
    direct = F.convolution_nd(x.astype(numpy.float32), w.astype(numpy.float32),
                              pad=1).array
    winograd = channels_first(winograd_conv(
        channels_last(x.astype(numpy.float32)),
        winograd_weight(w.astype(numpy.float32)), None))
    direct_error = numpy.abs(direct - truth).max()
    winograd_error = numpy.abs(winograd - truth).max()
    assert winograd_error < 2 * direct_error, (winograd_error, direct_error)


@pytest.mark.parametrize('shape,ksize,stride', [
    ((2, 9, 14, 13, 5), (3, 3, 3), (1, 1, 1)),
    ((1, 8, 15, 16, 4), (1, 3, 3), (1, 2, 2)),
    ((1, 7, 7, 7, 3), (2, 2, 2), (2, 2, 2)),
    ((1, 5, 9, 9, 2), (3, 3, 3), (2, 2, 2)),
    ((1, 1, 1, 1, 3), (3, 3, 3), (1, 1, 1)),
])
def test_max_pool_equals_a_pool_over_minus_infinity_padding(shape, ksize,
                                                            stride):
    rng = numpy.random.RandomState(3)
    x = rng.normal(0, 1, shape).astype(numpy.float32)
    pads = same_padding_nd(shape[1:4], ksize, stride)
    padded = numpy.pad(x, ((0, 0),) + tuple(pads) + ((0, 0),),
                       constant_values=-numpy.inf)
    expected = F.max_pooling_nd(channels_first(padded), ksize, stride, pad=0,
                                cover_all=False).array
    with parallel.cpu_chunks(numpy):
        y = fast_inference.max_pool_same(x, ksize, stride)
    numpy.testing.assert_array_equal(channels_first(y), expected)


def test_inception_block_equals_the_chainer_block():
    rng = numpy.random.RandomState(4)
    block = InceptionBlock(12, (5, 64, 6, 3, 7, 2))  # Winograd and im2col
    for unit in block.links():
        if isinstance(unit, Unit3D):
            unit.conv.W.array[...] = rng.normal(0, 0.2, unit.conv.W.shape)
    randomize_batch_norms(block, rng)
    x = rng.normal(0, 1, (2, 12, 5, 9, 8)).astype(numpy.float32)
    expected = chainer_output(block, x)
    with parallel.cpu_chunks(numpy):
        y = fast_inference.FastInception(block)(channels_last(x))
    numpy.testing.assert_allclose(channels_first(y), expected, rtol=1e-5,
                                  atol=1e-5 * numpy.abs(expected).max())


@pytest.mark.parametrize('with_bias', [True, False])
def test_a_split_1x1_product_writes_each_part_where_it_is_asked(with_bias):
    rng = numpy.random.RandomState(11)
    x = rng.randn(2, 3, 5, 4, 7).astype(numpy.float32)
    weight = rng.randn(7, 9).astype(numpy.float32)
    bias = rng.randn(9).astype(numpy.float32) if with_bias else None
    expected = fast_inference.conv_1x1(x, weight, bias)
    y = numpy.full((2, 3, 5, 4, 6), 7, numpy.float32)  # 2 channels spare
    second = numpy.empty((2, 3, 5, 4, 3), numpy.float32)
    third = numpy.empty((2, 3, 5, 4, 2), numpy.float32)
    with parallel.cpu_chunks(numpy):
        fast_inference.conv_1x1_split(x, weight, bias,
                                      [y[..., :4], second, third])
    numpy.testing.assert_array_equal(y[..., :4], expected[..., :4])
    numpy.testing.assert_array_equal(second, expected[..., 4:7])
    numpy.testing.assert_array_equal(third, expected[..., 7:])
    assert (y[..., 4:] == 7).all()  # untouched


@pytest.fixture(scope='module')
def small_i3d():
    model = I3D(n_class=5)
    model.pick = 'mixed_3c'
    randomize_batch_norms(model, numpy.random.RandomState(5))
    return model


def both_paths(model, x):
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        model.fast_inference = True
        fast = model(x).array
        model.fast_inference = False
        reference = model(x).array
    model.fast_inference = True
    return fast, reference


def test_folded_weights_are_kept_between_calls(small_i3d):
    x = numpy.random.RandomState(6).uniform(
        -1, 1, (1, 3, 4, 24, 24)).astype(numpy.float32)
    both_paths(small_i3d, x)
    first = small_i3d.fast.folded(small_i3d)
    assert small_i3d.fast.folded(small_i3d) is first


@pytest.mark.parametrize('change', ['weight', 'variance', 'beta', 'eps'])
def test_changed_weights_are_folded_again(small_i3d, change):
    x = numpy.random.RandomState(7).uniform(
        -1, 1, (1, 3, 4, 24, 24)).astype(numpy.float32)
    before, _ = both_paths(small_i3d, x)
    unit = small_i3d.mixed_3b.branch1  # a Winograd convolution
    if change == 'weight':
        unit.conv.W.array[0] *= -2  # in place: the array is the same object
    elif change == 'variance':
        unit.bn.avg_var[...] *= 4
    elif change == 'beta':
        unit.bn.beta.array[...] += 1
    else:
        unit.bn.eps = 0.5
    fast, reference = both_paths(small_i3d, x)
    assert numpy.abs(fast - before).max() > 1e-3
    numpy.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-5)
