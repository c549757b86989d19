import chainercv_i3d  # NOQA: patches the environment before chainer loads

import chainer
import chainer.links as L
import numpy
import pytest

from chainercv_i3d.links import count_flops
from chainercv_i3d.links import I3D
from chainercv_i3d.links import Unit3D
from chainercv_i3d.links.flops import layer_flops


@pytest.fixture(scope='module')
def model():
    return I3D(n_class=7)


@pytest.fixture(autouse=True)
def restore_pick(model):
    yield
    model.pick = 'logits'


def measured_flops(model, x, last):
    """2 * multiply-adds of every conv, from the shapes the model returns.

    Independent of ``count_flops``: the output sizes are the ones the network
    actually produced, not ones derived from strides.
    """
    names = model.layer_names[:model.layer_names.index(last) + 1]
    model.pick = names
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        outputs = dict(zip(names, model(x)))
    total = 0
    for name in names:
        layer = getattr(model, name)
        if not isinstance(layer, chainer.Link):
            continue  # pools, softmax
        if name == 'logits':
            # The logits conv runs on avgpool's (N, C, T') as (N, C, T', 1, 1).
            out_size = numpy.prod(outputs['avgpool'].shape[2:])
        else:
            # Every conv of a Unit3D or an Inception block has the size of
            # the layer's output (the branches are concatenated).
            out_size = numpy.prod(outputs[name].shape[2:])
        for link in layer.links():
            if isinstance(link, L.ConvolutionND):
                total += 2 * x.shape[0] * link.W.size * int(out_size)
    return total


@pytest.mark.slow
@pytest.mark.parametrize('shape', [(1, 3, 9, 193, 193), (2, 3, 10, 200, 195)])
@pytest.mark.parametrize('last', ['conv3d_2c_3x3', 'mixed_4f', 'logits'])
def test_count_flops_matches_the_run_network(model, shape, last):
    x = numpy.zeros(shape, dtype=numpy.float32)
    expected = measured_flops(model, x, last)
    model.pick = last
    assert count_flops(model, shape) == expected


def test_count_flops_counts_up_to_the_last_picked_layer(model):
    shape = (1, 3, 64, 224, 224)
    model.pick = 'mixed_5c'
    backbone = count_flops(model, shape)
    model.pick = ('conv3d_1a_7x7', 'mixed_5c')
    assert count_flops(model, shape) == backbone
    model.pick = 'prob'
    # The logits conv: 1024 -> 7 channels at each of 7 time steps.
    assert count_flops(model, shape) == backbone + 2 * 1024 * 7 * 7


def test_count_flops_is_in_the_published_ballpark():
    # The "108 GFLOPs" commonly quoted for I3D on 64 x 224 x 224 (X3D,
    # SlowFast tables) counts multiply-adds, as fvcore does; we count 2 FLOPs
    # per multiply-add, and convolutions only: 111.2 G multiply-adds, within
    # 3% of it. The loose range still catches a wrong stride or channel
    # count, which moves the total by far more.
    flops = count_flops(I3D(n_class=400), (1, 3, 64, 224, 224))
    assert 100e9 < flops / 2 < 120e9


def test_count_flops_is_linear_in_batch(model):
    one = count_flops(model, (1, 3, 16, 224, 224))
    assert count_flops(model, (3, 3, 16, 224, 224)) == 3 * one


@pytest.mark.parametrize('shape', [(1, 2, 16, 224, 224), (3, 16, 224, 224)])
def test_count_flops_rejects_a_wrong_shape(model, shape):
    with pytest.raises(ValueError, match='takes'):
        count_flops(model, shape)


def test_count_flops_rejects_an_input_too_small_for_the_head(model):
    with pytest.raises(ValueError, match='average pool'):
        count_flops(model, (1, 3, 8, 224, 224))
    model.pick = 'mixed_5c'
    assert count_flops(model, (1, 3, 8, 224, 224)) > 0


def test_layer_flops_of_a_lone_unit():
    # The benchmarks count single convolutions this way.
    unit = Unit3D(5, 8, ksize=3, stride=2)
    x = numpy.zeros((2, 5, 7, 9, 10), dtype=numpy.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        out_shape = unit(x).shape
    flops, shape = layer_flops('conv', unit, x.shape)
    assert shape == out_shape
    assert flops == 2 * 2 * unit.conv.W.size * int(numpy.prod(out_shape[2:]))


def test_layer_flops_refuses_an_unknown_layer():
    with pytest.raises(TypeError, match="layer 'lstm'"):
        layer_flops('lstm', object(), (1, 3, 8, 8, 8))
