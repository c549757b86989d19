"""The real RGB checkpoint on DeepMind's cricket clip against TensorFlow.

The reference logits and endpoint statistics in ``../shared/i3d/reference``
were computed with TensorFlow ops straight from the checkpoint.
"""

import json
import os

import chainer
import numpy
import pytest

from chainercv_i3d.links import I3D
from chainercv_i3d.utils.sample_clip import read_sample_clip
from tests.conftest import run_script

pytestmark = pytest.mark.slow  # real checkpoint, TensorFlow graphs

LOGIT_TOLERANCE = 5e-5


@pytest.fixture(scope='module')
def cricket(tf, shared_i3d, tmp_path_factory):
    """The converted real checkpoint, the clip, and the reference folder."""
    out = tmp_path_factory.mktemp('cricket')
    npz = str(out / 'rgb_tfhub_kinetics400.npz')
    result = run_script('tfckpt2npz.py', os.path.join(
        shared_i3d, 'checkpoints', 'rgb_tfhub_kinetics400'), npz)
    assert result.returncode == 0, result.stderr
    clip = os.path.join(shared_i3d, 'samples', 'v_CricketShot_g04_c01_rgb.gif')
    return npz, clip, os.path.join(shared_i3d, 'reference'), out


def test_sample_script_reproduces_tensorflow_logits(cricket, fidelity_report):
    npz, clip, reference, out = cricket
    result = run_script(
        'evaluate_sample.py', clip, '--model', npz, '--top_k', '5',
        '--reference', os.path.join(reference, 'cricket_rgb.logits.npy'),
        '--json', out / 'result.json')
    assert result.returncode == 0, result.stderr
    with open(str(out / 'result.json')) as f:
        summary = json.load(f)
    fidelity_report('evaluate_sample.py (fast path), cricket clip: max '
                    '|logit difference| {:.2e} (tolerance {:.0e}), top-1 {} '
                    '{:.4f}'.format(summary['max_abs_logit_difference'],
                                    LOGIT_TOLERANCE,
                                    summary['top'][0]['name'],
                                    summary['top'][0]['logit']))
    assert summary['max_abs_logit_difference'] < LOGIT_TOLERANCE
    assert summary['top'][0]['name'] == 'playing cricket'
    assert 'Norm of logits: ' in result.stdout
    assert len(result.stdout.split('Top classes and probabilities\n')[1]
               .splitlines()) >= 5


@pytest.mark.parametrize('fast', [False, True], ids=['reference', 'fast'])
def test_every_endpoint_matches_tensorflow_statistics(cricket,
                                                      fidelity_report, fast):
    npz, clip, reference, _ = cricket
    with open(os.path.join(reference, 'cricket_rgb.endpoints.json')) as f:
        stats = json.load(f)
    model = I3D(pretrained_model=npz, fast_inference=fast)
    names = [name.lower() for name in stats]
    model.pick = names
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        outputs = model(read_sample_clip(clip))
    worst = (0.0, '')
    for (tf_name, expected), out in zip(stats.items(), outputs):
        out = out.array
        assert list(out.shape) == expected['shape_NCTHW'], tf_name
        scale = max(1.0, expected['std'])
        for index, value in expected['samples']:
            error = abs(float(out[tuple(index)]) - value) / scale
            worst = max(worst, (error, tf_name))
            assert error < 2e-5, (tf_name, index, out[tuple(index)], value)
        assert abs(out.mean() - expected['mean']) < 1e-5 * scale, tf_name
        assert abs(out.std() - expected['std']) < 1e-5 * scale, tf_name
    numpy.testing.assert_allclose(
        outputs[names.index('mixed_5c')].array,
        numpy.load(os.path.join(reference, 'cricket_rgb.mixed_5c.npy')),
        rtol=0, atol=1e-4)
    logits = outputs[names.index('logits')].array
    logit_error = float(numpy.abs(logits - numpy.load(os.path.join(
        reference, 'cricket_rgb.logits.npy'))).max())
    fidelity_report('{} path, cricket clip: max |logit difference| {:.2e}, '
                    'every endpoint: largest sampled error {:.2e} of the std '
                    '(at {})'.format('fast' if fast else 'reference',
                                     logit_error, *worst))
    assert logit_error < LOGIT_TOLERANCE
