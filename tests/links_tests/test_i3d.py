import chainer
import numpy
import pytest

from chainercv_i3d import architecture
from chainercv_i3d.label_names import kinetics400_label_names
from chainercv_i3d.label_names import numbered_label_names
from chainercv_i3d.links import I3D
from chainercv_i3d.links import max_frame_size
from chainercv_i3d.links import min_input_size
from chainercv_i3d.links import Unit3D
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.pretrained import save_model_npz

ENDPOINTS = [
    'conv3d_1a_7x7', 'maxpool3d_2a_3x3', 'conv3d_2b_1x1', 'conv3d_2c_3x3',
    'maxpool3d_3a_3x3', 'mixed_3b', 'mixed_3c', 'maxpool3d_4a_3x3',
    'mixed_4b', 'mixed_4c', 'mixed_4d', 'mixed_4e', 'mixed_4f',
    'maxpool3d_5a_2x2', 'mixed_5b', 'mixed_5c', 'avgpool', 'logits', 'prob']


def random_input(shape, seed=0):
    return numpy.random.RandomState(seed).uniform(-1, 1, shape).astype('f')


def infer(model, x):
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        return model(x)


@pytest.fixture(scope='module')
def rgb_model():
    return I3D(n_class=7)


def test_layer_names_are_deepminds_endpoints(rgb_model):
    assert rgb_model.layer_names == ENDPOINTS
    assert rgb_model.pick == 'logits'


def test_every_endpoint_shape_on_odd_frames(rgb_model):
    rgb_model.pick = ENDPOINTS
    try:
        outs = infer(rgb_model, random_input((2, 3, 9, 193, 200)))
    finally:
        rgb_model.pick = 'logits'
    shapes = dict(zip(ENDPOINTS, (o.shape for o in outs)))
    # SAME layers give ceil(in / stride): 9 -> 5 -> 3 -> 2 frames.
    assert shapes['conv3d_1a_7x7'] == (2, 64, 5, 97, 100)
    assert shapes['maxpool3d_3a_3x3'] == (2, 192, 5, 25, 25)
    assert shapes['mixed_3c'] == (2, 480, 5, 25, 25)
    assert shapes['maxpool3d_4a_3x3'] == (2, 480, 3, 13, 13)
    assert shapes['mixed_4f'] == (2, 832, 3, 13, 13)
    assert shapes['mixed_5c'] == (2, 1024, 2, 7, 7)
    assert shapes['avgpool'] == (2, 1024, 1)
    assert shapes['logits'] == shapes['prob'] == (2, 7)
    numpy.testing.assert_allclose(outs[-1].array.sum(axis=1), 1, rtol=1e-5)


def test_pick_stops_after_the_last_picked_layer(rgb_model):
    calls = []
    original = rgb_model.mixed_3c.forward
    rgb_model.mixed_3c.forward = lambda x: calls.append(1) or original(x)
    rgb_model.pick = ('conv3d_2b_1x1', 'mixed_3b')
    try:
        conv, mixed = infer(rgb_model, random_input((1, 3, 4, 32, 32)))
    finally:
        rgb_model.pick = 'logits'
        del rgb_model.mixed_3c.forward
    assert conv.shape == (1, 64, 2, 8, 8)
    assert mixed.shape == (1, 256, 2, 4, 4)
    assert calls == []


def test_pick_rejects_unknown_names(rgb_model):
    with pytest.raises(ValueError, match="no layer named 'mixed_6a'"):
        rgb_model.pick = 'mixed_6a'


def test_features_up_to_mixed_5c_take_any_size(rgb_model):
    rgb_model.pick = 'mixed_5c'
    try:
        y = infer(rgb_model, random_input((1, 3, 1, 5, 3)))
    finally:
        rgb_model.pick = 'logits'
    assert y.shape == (1, 1024, 1, 1, 1)


def test_min_input_size():
    assert min_input_size() == (9, 193, 193)


def test_max_frame_size():
    assert max_frame_size() == 224


@pytest.mark.parametrize('shape', [
    (1, 3, 8, 224, 224), (1, 3, 64, 192, 224), (1, 3, 9, 225, 224),
    (1, 3, 9, 224, 256)])
def test_input_outside_the_heads_range_is_refused(rgb_model, shape):
    with pytest.raises(ValueError, match='at least 9 x 193 x 193 and frames '
                       'of at most 224 pixels'):
        infer(rgb_model, numpy.zeros(shape, 'f'))


def test_wrong_channel_count_is_refused():
    model = I3D(n_class=5, modality='flow')
    with pytest.raises(ValueError, match=r"I3D\('flow'\) takes \(N, 2, T"):
        infer(model, numpy.zeros((1, 3, 9, 193, 193), 'f'))


def test_unknown_modality_is_refused():
    with pytest.raises(ValueError, match='modality must be one of'):
        I3D(modality='depth')


def test_test_mode_uses_running_statistics(rgb_model):
    # In test mode a sample's output must not depend on its batch.
    x = random_input((2, 3, 9, 193, 193), seed=3)
    both = infer(rgb_model, x).array
    alone = infer(rgb_model, x[1:]).array
    numpy.testing.assert_allclose(both[1:], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.slow
def test_train_mode_learns_and_updates_statistics():
    model = I3D(n_class=3, dropout_ratio=0.5)
    x = random_input((2, 3, 9, 193, 193), seed=4)
    before = model.conv3d_1a_7x7.bn.avg_mean.copy()
    with chainer.using_config('train', True):
        loss = chainer.functions.softmax_cross_entropy(
            model(x), numpy.array([0, 2], 'i'))
    model.cleargrads()
    loss.backward()
    assert numpy.abs(model.conv3d_1a_7x7.conv.W.grad).sum() > 0
    assert numpy.abs(model.logits.conv.b.grad).sum() > 0
    assert not numpy.array_equal(before, model.conv3d_1a_7x7.bn.avg_mean)


def test_batch_norm_matches_deepmind():
    unit = I3D().conv3d_1a_7x7.bn
    assert unit.eps == 1e-3
    assert unit.gamma is None
    assert 'gamma' not in dict(I3D().conv3d_1a_7x7.namedparams())


def test_pretrained_npz_sets_class_count_and_modality(tmp_path):
    source = I3D(n_class=11, modality='flow')
    path = str(tmp_path / 'flow.npz')
    chainer.serializers.save_npz(path, source)
    model = I3D(pretrained_model=path)
    assert (model.n_class, model.modality) == (11, 'flow')
    numpy.testing.assert_array_equal(
        model.mixed_5c.branch3.conv.W.array,
        source.mixed_5c.branch3.conv.W.array)
    numpy.testing.assert_array_equal(
        model.mixed_4d.branch1.bn.avg_var, source.mixed_4d.branch1.bn.avg_var)


def test_pretrained_npz_conflicts_are_refused(tmp_path):
    path = str(tmp_path / 'flow.npz')
    chainer.serializers.save_npz(path, I3D(n_class=11, modality='flow'))
    with pytest.raises(ValueError, match='n_class must be 11'):
        I3D(n_class=400, pretrained_model=path)
    with pytest.raises(ValueError, match="modality must be 'flow'"):
        I3D(modality='rgb', pretrained_model=path)


@pytest.mark.parametrize('content', [None, b'', b'not a zip'])
def test_missing_or_broken_npz_is_refused(tmp_path, content):
    path = tmp_path / 'broken.npz'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=str(path)):
        I3D(pretrained_model=str(path))


def test_npz_of_another_network_is_refused(tmp_path):
    path = tmp_path / 'other.npz'
    numpy.savez(str(path), W=numpy.zeros(3))
    with pytest.raises(ValueError, match='is not I3D weights'):
        I3D(pretrained_model=str(path))


@pytest.mark.parametrize('n_class,modality', [(400, 'rgb'), (7, 'flow')])
def test_architecture_spec_is_what_save_npz_writes(tmp_path, n_class,
                                                    modality):
    path = str(tmp_path / 'model.npz')
    chainer.serializers.save_npz(path, I3D(n_class=n_class,
                                           modality=modality))
    with numpy.load(path) as npz:
        written = {key: npz[key].shape for key in npz.files}
    spec = architecture.npz_array_shapes(n_class, modality)
    assert sorted(spec) == sorted(written)
    assert spec == written


def test_architecture_spec_matches_the_links_layers():
    model = I3D()
    assert model.layer_names == [name for name, _, _ in architecture.LAYERS] \
        + list(architecture.HEAD_LAYERS)
    block = model.mixed_4b
    assert [name for name, _ in sorted(block.namedlinks(skipself=True))
            if name.count('/') == 1] == sorted(
                '/' + name for name in architecture.BRANCH_NAMES)
    assert block.out_channels == architecture.mixed_out_channels(
        architecture.LAYERS[8][2])
    assert model.conv3d_1a_7x7.bn.eps == architecture.BN_EPS


def test_random_weights_have_numbered_label_names():
    model = I3D(n_class=5)
    assert model.label_names == numbered_label_names(5)
    assert model.preset == DEEPMIND_KINETICS.replace(
        label_names=numbered_label_names(5))


def test_npz_without_a_preset_gets_kinetics_names(tmp_path):
    path = str(tmp_path / 'old.npz')
    chainer.serializers.save_npz(path, I3D(n_class=400))
    model = I3D(pretrained_model=path)
    assert model.label_names == kinetics400_label_names
    assert model.preset.name == DEEPMIND_KINETICS.name


def test_npz_with_a_preset_gives_its_label_names(tmp_path):
    source = I3D(n_class=3, modality='flow')
    preset = DEEPMIND_KINETICS.replace(
        name='three', fps=None, label_names=('run', 'jump', 'swim'))
    path = str(tmp_path / 'three.npz')
    save_model_npz(source, path, preset)
    model = I3D(pretrained_model=path)
    assert model.preset == preset
    assert model.label_names == ('run', 'jump', 'swim')
    numpy.testing.assert_array_equal(model.mixed_5c.branch2.conv.W.array,
                                     source.mixed_5c.branch2.conv.W.array)


def test_replace_head_keeps_the_layer_order_and_the_trunk():
    model = I3D(n_class=5, modality='rgb')
    names = list(model.layer_names)
    trunk = model.mixed_5c.branch0.conv.W.array.copy()
    model.replace_head(3, ('a', 'b', 'c'))
    assert model.layer_names == names
    assert model.n_class == 3 and model.label_names == ('a', 'b', 'c')
    assert model.logits.conv.W.shape == (3, 1024, 1, 1, 1)
    assert numpy.array_equal(model.mixed_5c.branch0.conv.W.array, trunk)
    with pytest.raises(ValueError, match='2 label names for a head of 3'):
        model.replace_head(3, ('a', 'b'))


def test_freeze_runs_the_frozen_layers_as_a_feature_extractor():
    model = I3D(n_class=3, modality='rgb', dropout_ratio=0.0)
    chainer.optimizers.SGD().setup(model)
    model.freeze('mixed_5b')
    assert not model.mixed_5b.update_enabled
    assert model.mixed_5c.update_enabled and model.logits.update_enabled
    x = numpy.random.RandomState(0).uniform(
        -1, 1, (1, 3, 9, 193, 193)).astype(numpy.float32)
    model.cleargrads()
    y = model(x)  # train mode
    chainer.functions.sum(y).backward()
    assert model.mixed_5b.branch0.conv.W.grad is None
    assert model.mixed_5c.branch0.conv.W.grad is not None
    # Frozen statistics everywhere: the same function as test mode.
    for link in model.links():
        if isinstance(link, Unit3D):
            link.frozen_statistics = True
    with chainer.using_config('train', False):
        expected = model(x).array
    numpy.testing.assert_allclose(model(x).array, expected, rtol=1e-3,
                                  atol=1e-4)
    model.freeze(None)
    assert model.mixed_5b.update_enabled and model.frozen_upto is None
