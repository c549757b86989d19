"""The converter on random checkpoints with the exact official layouts.

Golden numbers come from ``chainercv_i3d/testing/tf_reference.py``: TensorFlow ops reading
the checkpoint directly, sharing no code with the link or the converter.
"""

import os
import shutil

import chainer
import numpy
import pytest

from chainercv_i3d.links import I3D
from chainercv_i3d.links import min_input_size
from tests.conftest import run_script
from chainercv_i3d.testing.tf_reference import tf_i3d_endpoints
from chainercv_i3d.testing.tf_reference import write_random_checkpoint

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


def test_refuses_a_missing_checkpoint(tmp_path):
    message = failing_conversion(tmp_path / 'nothing' / 'model.ckpt',
                                 tmp_path)
    assert 'no TensorFlow checkpoint there' in message


def test_refuses_a_checkpoint_of_another_network(tf, tmp_path):
    prefix = str(tmp_path / 'other' / 'model.ckpt')
    os.makedirs(os.path.dirname(prefix))
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=['resnet/conv1/w'],
                      shape_and_slices=[''],
                      tensors=[tf.zeros([3, 3, 3, 8])])
    assert 'not an I3D checkpoint' in failing_conversion(prefix, tmp_path)


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
