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


def test_a_second_forward_reuses_the_workspace_and_gives_the_same_outputs():
    numpy.random.seed(2)
    model = I3D(n_class=3)
    model.pick = ('conv3d_1a_7x7', 'mixed_3b', 'mixed_5c')
    x = numpy.random.RandomState(3).uniform(
        -1, 1, (1, 3, 9, 64, 80)).astype(numpy.float32)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        first = [h.array.copy() for h in model(x)]
        held = model.fast.workspace.nbytes
        buffers = dict(model.fast.workspace._buffers)
        second = [h.array for h in model(x)]
    assert held > 0
    # The same buffers, not new ones.
    assert all(model.fast.workspace._buffers[k] is b
               for k, b in buffers.items())
    for a, b in zip(first, second):
        numpy.testing.assert_array_equal(a, b)
    # Returned outputs are copies: a later forward does not change them.
    x2 = x[:, :, ::-1].copy()
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        model(x2)
    numpy.testing.assert_array_equal(second[0], first[0])
    model.fast.forget()
    assert model.fast.workspace.nbytes == 0


def test_a_copied_link_gets_an_engine_of_its_own():
    import copy
    model = I3D(n_class=2)
    model.fast.dtype = 'float16'
    clone = copy.deepcopy(model)
    assert clone.fast is not model.fast
    assert clone.fast.dtype == numpy.float16
