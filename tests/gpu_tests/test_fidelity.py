"""The real RGB checkpoint on DeepMind's cricket clip, on a GPU, against the
TensorFlow logits in ``../shared/i3d/reference`` (as
tests/test_fidelity_cricket.py does on the CPU).

The converted checkpoint is ``rgb_tfhub_kinetics400.npz`` in the reference
folder (``scripts/gpu_wheels.sh`` puts it there for GPU machines without
TensorFlow), or is converted here when TensorFlow is installed. The
comparisons (:func:`chainercv_i3d.testing.assertions.assert_close_finite`)
fail on NaN, infinities, different shapes and all-zero references.
"""

import importlib.util
import json
import os

import chainer
import numpy
import pytest

from chainercv_i3d.links import I3D
from chainercv_i3d.testing.assertions import assert_close_finite
from chainercv_i3d.utils.sample_clip import read_sample_clip
from tests.conftest import run_script
from tests.test_fidelity_cricket import LOGIT_TOLERANCE

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

NPZ_NAME = 'rgb_tfhub_kinetics400.npz'


@pytest.fixture(scope='module')
def cricket_npz(shared_i3d, tmp_path_factory):
    """The converted real checkpoint: brought along, or converted here."""
    brought = os.path.join(shared_i3d, NPZ_NAME)
    if os.path.isfile(brought):
        return brought
    if importlib.util.find_spec('tensorflow') is None:
        pytest.skip('no {} in {} and no TensorFlow to convert the checkpoint '
                    '(run scripts/gpu_wheels.sh where TensorFlow is)'.format(
                        NPZ_NAME, shared_i3d))
    npz = str(tmp_path_factory.mktemp('cricket_gpu') / NPZ_NAME)
    result = run_script('tfckpt2npz.py', os.path.join(
        shared_i3d, 'checkpoints', 'rgb_tfhub_kinetics400'), npz)
    assert result.returncode == 0, result.stderr
    return npz


@pytest.mark.parametrize('fast', [False, True], ids=['reference', 'fast'])
def test_gpu_logits_match_tensorflow(cupy, gpu, shared_i3d, cricket_npz,
                                     fidelity_report, fast):
    model = I3D(pretrained_model=cricket_npz, fast_inference=fast)
    model.to_device(gpu)
    model.pick = ['mixed_5c', 'logits']
    clip = read_sample_clip(os.path.join(
        shared_i3d, 'samples', 'v_CricketShot_g04_c01_rgb.gif'))
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        mixed_5c, logits = (cupy.asnumpy(h.array)
                            for h in model(cupy.asarray(clip)))
    reference = os.path.join(shared_i3d, 'reference')
    expected = numpy.load(os.path.join(reference, 'cricket_rgb.logits.npy'))
    with open(os.path.join(reference, 'cricket_rgb.endpoints.json')) as f:
        assert list(logits.shape) == json.load(f)['Logits']['shape_NCTHW'][:2]
    # Shapes, finiteness and a non-zero reference first: the report below
    # must not print a NaN or a broadcast difference as a measurement.
    error = assert_close_finite(logits, expected, atol=LOGIT_TOLERANCE,
                                name='logits')
    fidelity_report('GPU {} path, cricket clip: max |logit difference| '
                    '{:.2e} (tolerance {:.0e})'.format(
                        'fast' if fast else 'reference', error,
                        LOGIT_TOLERANCE))
    assert error < LOGIT_TOLERANCE
    assert_close_finite(mixed_5c, numpy.load(os.path.join(
        reference, 'cricket_rgb.mixed_5c.npy')), atol=1e-4, name='mixed_5c')
    assert model.label_names[int(logits[0].argmax())] == 'playing cricket'
