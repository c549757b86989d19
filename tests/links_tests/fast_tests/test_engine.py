"""The engine a link owns (``model.fast``): its dtype, its dispatch by layer
type, and any network of typed layers (TinyI3D as well as I3D)."""

import chainercv_i3d  # NOQA: before chainer

import chainer
import numpy
import pytest

from chainercv_i3d.links import count_flops
from chainercv_i3d.links import I3D
from chainercv_i3d.links import TinyI3D
from chainercv_i3d.links.fast import FastEngine


def run(model, x):
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        return model(x).array


def test_tiny_i3d_runs_on_the_engine_as_on_chainer():
    numpy.random.seed(0)
    model = TinyI3D(n_class=3)
    x = numpy.random.RandomState(1).uniform(
        -1, 1, (2, 3, 5, 9, 11)).astype(numpy.float32)
    model.pick = ('conv2', 'avgpool', 'logits', 'prob')
    assert not model.fast_inference  # training tests check the Chainer path
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        reference = [h.array for h in model(x)]
        model.fast_inference = True
        fast = [h.array for h in model(x)]
    for expected, got in zip(reference, fast):
        assert got.shape == expected.shape
        numpy.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_tiny_i3d_shares_i3d_construction():
    model = TinyI3D(n_class=4, modality='flow')
    assert isinstance(model.fast, FastEngine)
    assert (model.n_class, model.in_channels, model.frozen_upto) == (4, 2,
                                                                      None)
    assert model.layer_names == ['conv1', 'pool1', 'conv2', 'avgpool',
                                 'logits', 'prob']
    assert model.label_names[0] == 'class_0'
    assert count_flops(TinyI3D(n_class=2), (1, 3, 4, 8, 8)) > 0


def test_an_unknown_layer_is_refused_by_name():
    model = TinyI3D(n_class=2, fast_inference=True)
    with model.init_scope():
        model.replace_layer('avgpool', lambda x: x.mean(axis=(3, 4)))
    x = numpy.zeros((1, 3, 4, 8, 8), numpy.float32)
    with pytest.raises(ValueError, match='cannot compute layer avgpool'):
        run(model, x)


def test_each_link_owns_its_engine():
    first, second = I3D(n_class=2), I3D(n_class=2)
    first.fast.dtype = 'float16'
    assert second.fast.dtype == numpy.float32
    assert first.fast.dtype == numpy.float16
