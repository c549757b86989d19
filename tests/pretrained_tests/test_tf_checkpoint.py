"""The converter on random checkpoints with the exact official layouts.

Golden numbers come from ``chainercv_i3d/testing/tf_reference.py``: TensorFlow ops reading
the checkpoint directly, sharing no code with the link or the converter.
"""

import os
import shutil

import chainer
import numpy
import pytest

from chainercv_i3d.architecture import is_bn_count
from chainercv_i3d.label_names import kinetics400_label_names
from chainercv_i3d.label_names import kinetics600_label_names
from chainercv_i3d.links import I3D
from chainercv_i3d.links import min_input_size
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.pretrained import CheckpointError
from chainercv_i3d.pretrained import describe_npz
from chainercv_i3d.pretrained import model_arrays
from chainercv_i3d.pretrained.npz_weights import PRESET_KEY
from chainercv_i3d.pretrained.tf_checkpoint import detect_layout
from chainercv_i3d.pretrained.tf_checkpoint import npz_arrays_from_tensors
from chainercv_i3d.testing.tf_reference import deepmind_tensors_of_link
from chainercv_i3d.testing.tf_reference import tf_i3d_endpoints
from chainercv_i3d.testing.tf_reference import write_random_checkpoint
from tests.conftest import run_script

OFFICIAL = {
    # name: (scope, modality, n_class, ignored optimizer slots)
    'rgb_imagenet': ('RGB/inception_i3d/', 'rgb', 400, 0),
    'rgb_scratch': ('RGB/inception_i3d/', 'rgb', 400, 0),
    'flow_imagenet': ('Flow/inception_i3d/', 'flow', 400, 0),
    'flow_scratch': ('Flow/inception_i3d/', 'flow', 400, 0),
    'rgb_scratch_kin600': ('', 'rgb', 600, 116),
}
# (batch, frames, height, width): odd and even frames and sizes, a batch of
# two; the last one is too small for the head and checks mixed_5c only.
INPUTS = [(2, 9, 197, 203), (1, 10, 224, 194), (1, 4, 40, 33)]


@pytest.fixture(scope='module')
def converted(tf, shared_i3d, tmp_path_factory):
    """Random official-layout checkpoints and their converted npz files."""
    out = {}
    for i, name in enumerate(OFFICIAL):
        folder = tmp_path_factory.mktemp(name)
        prefix = str(folder / 'model.ckpt')
        tensors = write_random_checkpoint(
            os.path.join(shared_i3d, 'checkpoint_index', name + '.ckpt.index'),
            prefix, seed=i)
        npz = str(folder / (name + '.npz'))
        result = run_script('tfckpt2npz.py', folder, npz)
        out[name] = (prefix, tensors, npz, result)
    return out


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(OFFICIAL))
def test_converter_reports_what_it_converted(converted, name):
    _, tensors, npz, result = converted[name]
    assert result.returncode == 0, result.stderr
    scope, modality, n_class, n_ignored = OFFICIAL[name]
    assert 'modality:   {}'.format(modality) in result.stdout
    assert 'classes:    {}'.format(n_class) in result.stdout
    assert '230 converted, {} optimizer slots ignored'.format(
        n_ignored) in result.stdout
    assert len(tensors) == 230 + n_ignored
    model = I3D(pretrained_model=npz)
    assert (model.modality, model.n_class) == (modality, n_class)


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(OFFICIAL))
def test_converted_arrays_equal_the_checkpoint(converted, name):
    _, tensors, npz, _ = converted[name]
    scope = OFFICIAL[name][0]
    model = I3D(pretrained_model=npz)
    w = tensors[scope + 'Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w']
    numpy.testing.assert_array_equal(
        model.mixed_5b.branch2.conv.W.array, w.transpose(4, 3, 0, 1, 2))
    var = tensors[scope + 'Mixed_4e/Branch_1/Conv3d_0b_3x3/batch_norm/'
                  'moving_variance']
    numpy.testing.assert_array_equal(
        model.mixed_4e.branch1.bn.avg_var, var.reshape(-1))
    numpy.testing.assert_array_equal(
        model.logits.conv.b.array,
        tensors[scope + 'Logits/Conv3d_0c_1x1/conv_3d/b'])


def compare_endpoints(model, tensors, scope, shape, seed):
    """Returns {endpoint: max |chainer - tf| / max(1, max |tf|)}."""
    x = numpy.random.RandomState(seed).uniform(-1, 1, shape).astype('f')
    head = all(n >= m for n, m in zip(shape[2:], min_input_size()))
    reference = tf_i3d_endpoints(tensors, scope, x, head=head)
    names = list(reference)
    model.pick = names
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        outputs = model(x)
    errors = {}
    for name, out in zip(names, outputs):
        assert out.shape == reference[name].shape, name
        scale = max(1.0, float(numpy.abs(reference[name]).max()))
        errors[name] = float(numpy.abs(out.array - reference[name]).max()) \
            / scale
    return errors


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize('fast', [False, True], ids=['reference', 'fast'])
@pytest.mark.parametrize('name', ['rgb_imagenet', 'flow_imagenet',
                                  'rgb_scratch_kin600'])
@pytest.mark.parametrize('batch,frames,height,width', INPUTS)
def test_every_endpoint_matches_tensorflow(converted, fidelity_report, name,
                                           batch, frames, height, width,
                                           fast):
    _, tensors, npz, _ = converted[name]
    scope, modality, _, _ = OFFICIAL[name]
    model = I3D(pretrained_model=npz, fast_inference=fast)
    shape = (batch, model.in_channels, frames, height, width)
    errors = compare_endpoints(model, tensors, scope, shape, seed=batch)
    worst = max(errors, key=errors.get)
    fidelity_report(
        '{:<9} random {:<18} input {}: max relative error {:.2e} '
        '(at {})'.format('fast' if fast else 'reference', name, shape,
                         errors[worst], worst))
    assert errors[worst] < 2e-5, errors


def failing_conversion(checkpoint, tmp_path):
    result = run_script('tfckpt2npz.py', checkpoint, tmp_path / 'out.npz')
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / 'out.npz').exists()
    return result.stderr


@pytest.mark.slow
def test_refuses_a_missing_checkpoint(tmp_path):
    message = failing_conversion(tmp_path / 'nothing' / 'model.ckpt',
                                 tmp_path)
    assert 'no TensorFlow checkpoint there' in message


@pytest.mark.tf
@pytest.mark.slow
def test_refuses_a_checkpoint_of_another_network(tf, tmp_path):
    prefix = str(tmp_path / 'other' / 'model.ckpt')
    os.makedirs(os.path.dirname(prefix))
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=['resnet/conv1/w'],
                      shape_and_slices=[''],
                      tensors=[tf.zeros([3, 3, 3, 8])])
    assert 'not an I3D checkpoint' in failing_conversion(prefix, tmp_path)


@pytest.mark.tf
@pytest.mark.slow
def test_refuses_a_truncated_data_file(converted, tmp_path):
    prefix = converted['rgb_imagenet'][0]
    copy = str(tmp_path / 'model.ckpt')
    shutil.copy(prefix + '.index', copy + '.index')
    with open(prefix + '.data-00000-of-00001', 'rb') as f:
        data = f.read()
    with open(copy + '.data-00000-of-00001', 'wb') as f:
        f.write(data[:len(data) // 2])
    message = failing_conversion(copy, tmp_path)
    assert 'truncated or corrupt' in message or 'not a readable' in message


@pytest.mark.tf
@pytest.mark.slow
def test_refuses_unknown_and_missing_tensors(tf, converted, tmp_path):
    _, tensors, _, _ = converted['flow_imagenet']
    extra = dict(tensors)
    extra['Flow/inception_i3d/Mixed_6a/conv_3d/w'] = numpy.zeros(3, 'f')
    missing = dict(tensors)
    del missing['Flow/inception_i3d/Mixed_4c/Branch_0/Conv3d_0a_1x1/'
                'batch_norm/beta']
    for label, content, expected in (
            ('extra', extra, 'Flow/inception_i3d/Mixed_6a/conv_3d/w'),
            ('missing', missing, 'Mixed_4c/Branch_0/Conv3d_0a_1x1/'
             'batch_norm/beta')):
        prefix = str(tmp_path / label / 'model.ckpt')
        os.makedirs(os.path.dirname(prefix))
        names = sorted(content)
        tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                          shape_and_slices=[''] * len(names),
                          tensors=[tf.constant(content[n]) for n in names])
        assert expected in failing_conversion(prefix, tmp_path)


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(OFFICIAL))
def test_converted_npz_is_what_save_npz_writes_plus_the_preset(
        converted, tmp_path, name):
    _, _, npz, _ = converted[name]
    _, modality, n_class, _ = OFFICIAL[name]
    fresh = str(tmp_path / 'fresh.npz')
    chainer.serializers.save_npz(fresh, I3D(n_class=n_class,
                                            modality=modality))
    with numpy.load(npz) as ours, numpy.load(fresh) as theirs:
        assert sorted(ours.files) == sorted(theirs.files + [PRESET_KEY])
        for key in theirs.files:
            assert ours[key].shape == theirs[key].shape, key
            assert ours[key].dtype == theirs[key].dtype, key
            if is_bn_count(key):
                assert ours[key] == theirs[key], key
    preset = describe_npz(npz)['preset']
    assert preset == DEEPMIND_KINETICS.replace(label_names={
        400: kinetics400_label_names, 600: kinetics600_label_names}[n_class])
    assert I3D(pretrained_model=npz).label_names == preset.label_names


def link_as_checkpoint(n_class=5, modality='flow',
                       scope='Flow/inception_i3d/'):
    """A random link, and its arrays laid out as DeepMind's checkpoint."""
    numpy.random.seed(0)
    model = I3D(n_class=n_class, modality=modality)
    for _, param in model.namedparams():
        param.array[...] = numpy.random.uniform(-1, 1, param.shape)
    return model, deepmind_tensors_of_link(model, scope)


def test_conversion_gives_the_links_own_arrays():
    model, tensors = link_as_checkpoint()
    layout = detect_layout(tensors)
    assert layout == {'prefix': 'Flow/inception_i3d/', 'modality': 'flow',
                      'n_class': 5}
    arrays, used, ignored = npz_arrays_from_tensors(tensors, layout)
    expected = model_arrays(model)
    assert sorted(arrays) == sorted(expected)
    for key, value in expected.items():
        assert arrays[key].dtype == value.dtype, key
        numpy.testing.assert_array_equal(arrays[key], value, err_msg=key)
    assert used == sorted(tensors) and ignored == []


def test_conversion_ignores_optimizer_slots_only():
    _, tensors = link_as_checkpoint()
    slot = 'Flow/inception_i3d/Mixed_3b/Branch_0/Conv3d_0a_1x1/conv_3d/w/' \
        'Momentum'
    tensors[slot] = numpy.zeros(3, 'f')
    tensors['global_step'] = numpy.zeros((), 'i')
    _, _, ignored = npz_arrays_from_tensors(tensors, detect_layout(tensors))
    assert ignored == sorted([slot, 'global_step'])


@pytest.mark.parametrize('change,message', [
    ('missing', 'the checkpoint has no tensor Flow/inception_i3d/Mixed_4c/'
     'Branch_0/Conv3d_0a_1x1/batch_norm/beta \\(for the npz array '
     'mixed_4c/branch0/bn/beta\\)'),
    ('extra', '1 checkpoint tensor\\(s\\) have no place in I3D, first: '
     'Flow/inception_i3d/Mixed_6a/conv_3d/w'),
    ('shape', 'tensor Flow/inception_i3d/Mixed_5c/Branch_3/Conv3d_0b_1x1/'
     'conv_3d/w has shape'),
])
def test_conversion_is_total(change, message):
    _, tensors = link_as_checkpoint()
    scope = 'Flow/inception_i3d/'
    if change == 'missing':
        del tensors[scope + 'Mixed_4c/Branch_0/Conv3d_0a_1x1/batch_norm/beta']
    elif change == 'extra':
        tensors[scope + 'Mixed_6a/conv_3d/w'] = numpy.zeros(3, 'f')
    else:
        name = scope + 'Mixed_5c/Branch_3/Conv3d_0b_1x1/conv_3d/w'
        tensors[name] = tensors[name][..., :-1]
    with pytest.raises(CheckpointError, match=message) as info:
        npz_arrays_from_tensors(tensors, detect_layout(tensors))
    assert '\n' not in str(info.value)


@pytest.mark.parametrize('out, says', [
    ('.', '{out} is a folder; give a file name in it'),
    ('a_file/out.npz', 'cannot write {out}: {blocker} is a file, not a '
     'folder')])
def test_an_output_path_that_cannot_be_a_file_is_refused_first(tmp_path,
                                                              out, says):
    """Refused with the arguments, before the checkpoint is read."""
    (tmp_path / 'a_file').write_text('')
    out = tmp_path / out
    result = run_script('tfckpt2npz.py', tmp_path / 'no_checkpoint', out)
    assert result.returncode == 2
    assert says.format(out=out, blocker=tmp_path / 'a_file') in \
        result.stderr.strip().splitlines()[-1]
