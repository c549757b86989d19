"""Fine-tuning the real I3D's head, then using the result everywhere a model
is taken (slow: the full network on 2 CPU cores)."""

import json
import os
import time

import numpy
import pytest

from chainercv_i3d.testing.synthetic import moving_bar
from chainercv_i3d.testing.synthetic import ORIENTATION_LABEL_NAMES
from chainercv_i3d.testing.synthetic import write_moving_bars_set
from tests.conftest import run_script
from tests.datasets_tests.videos import write_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def finetuned(tmp_path_factory, tfhub_cache):
    """rgb_tfhub_kinetics400 with a new 2-class head, trunk frozen, trained
    on 12 synthetic clips; validated on 8 others."""
    root = tmp_path_factory.mktemp('finetune')
    for name, seed, n in (('train', 1, 6), ('val', 2, 4)):
        write_moving_bars_set(str(root / name), n, n_frames=12, size=200,
                              with_flow=False, seed=seed,
                              kind='orientation')
    env = {'CHAINERCV_I3D_CACHE': str(tfhub_cache)}
    start = time.monotonic()
    result = run_script(
        'train_i3d.py', root / 'train', '--out', root / 'out', '--val',
        root / 'val', '--val_n_frame', '9', '--pretrained_model',
        'rgb_tfhub_kinetics400', '--freeze_upto', 'avgpool', '--frames', '9',
        '--crop_size', '193', '--batch_size', '4', '--schedule', 'step',
        '--lr', '0.01', '--iterations', '30', '--log_interval', '5',
        '--val_interval', '30', '--quiet', '--num_preprocess_workers', '1',
        env=env)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    return root, env, seconds


def test_the_head_learns_within_minutes(finetuned):
    root, _, seconds = finetuned
    with open(root / 'out' / 'log.json') as f:
        last = json.load(f)[-1]
    assert last['iteration'] == 30
    assert last['validation/top1'] >= 0.9
    assert seconds < 300


def test_the_result_evaluates_with_its_class_names(finetuned):
    root, env, _ = finetuned
    result = run_script('eval_kinetics.py', root / 'val',
                        '--rgb_model_checkpoint',
                        root / 'out' / 'model_final.npz', '--n_frame', '9',
                        '--out', root / 'eval.json', '--quiet', env=env)
    assert result.returncode == 0, result.stderr
    for name in ORIENTATION_LABEL_NAMES:
        assert name in result.stdout
    with open(root / 'eval.json') as f:
        assert json.load(f)['rgb']['top1'] >= 0.9


def test_the_result_classifies_a_video_file_in_the_demo(finetuned, tmp_path):
    root, env, _ = finetuned
    # A new video of class 1 (a horizontal bar moving down), as a file.
    frames, _ = moving_bar(12, 200, 200, 1, numpy.random.default_rng(7))
    path = str(tmp_path / 'bar.avi')
    write_video(path, list(frames.transpose(0, 2, 1, 3)))
    result = run_script('demo.py', path, '--rgb_model',
                        root / 'out' / 'model_final.npz', '--json',
                        tmp_path / 'r.json', env=env)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / 'r.json') as f:
        top = json.load(f)[0]['top']
    assert top[0]['name'] == ORIENTATION_LABEL_NAMES[1]


def test_the_result_extracts_features(finetuned, tmp_path):
    root, env, _ = finetuned
    result = run_script('extract_features.py', root / 'val', tmp_path,
                        '--rgb_model', root / 'out' / 'model_final.npz',
                        '--clip_frames', '9', '--quiet', env=env)
    assert result.returncode == 0, result.stderr
    assert len([n for n in os.listdir(tmp_path) if n.endswith('.npy')]) == 8
