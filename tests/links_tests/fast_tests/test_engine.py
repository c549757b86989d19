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
from chainercv_i3d.links.fast.engine import workspace_plan


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
        buffer = model.fast.workspace._buffer
        second = [h.array for h in model(x)]
    assert held > 0
    assert model.fast.workspace._buffer is buffer  # the same, not a new one
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


@pytest.mark.parametrize('shape', [(1, 3, 64, 224, 224), (2, 3, 9, 33, 47)])
def test_the_workspace_plan_never_overlaps_what_a_layer_reads_and_writes(
        shape):
    model = I3D(n_class=2)
    folded = model.fast.folded(model)
    layers = [folded.get(n, getattr(model, n)) for n in model.layer_names]
    total, placements = workspace_plan(layers, shape, 'float32')
    n, c, t, h, w = shape
    read = (0, n * t * h * w * c * 4)  # the clip, channels-last
    largest = 0
    for (offset, out_shape), scratch in placements:
        written = [(offset, offset + 4 * int(numpy.prod(out_shape)))] + [
            (o, o + 4 * int(numpy.prod(s))) for o, s in scratch.values()]
        regions = [read] + written
        for a, (s0, e0) in enumerate(regions):
            assert 0 <= s0 < e0 <= total
            for s1, e1 in regions[a + 1:]:
                assert e0 <= s1 or e1 <= s0  # disjoint
        largest = max(largest, sum(e - s for s, e in regions))
        read = written[0]
    # As long as the most one layer holds at once (pages rounded up).
    assert largest <= total <= largest + 4096 * 8
    assert len(placements) == model.layer_names.index('mixed_5c') + 1


def test_a_forward_larger_than_the_limit_runs_on_fresh_arrays():
    model = TinyI3D(n_class=2, fast_inference=True)
    model.fast.workspace.max_bytes = 1000
    x = numpy.zeros((1, 3, 4, 16, 16), numpy.float32)
    run(model, x)
    assert model.fast.workspace.nbytes == 0
    model.fast.workspace.max_bytes = 2 ** 30
    run(model, x)
    assert model.fast.workspace.nbytes > 0
