"""Something-Something V2 end to end on synthetic data: precompute at the
native rate, fine-tune the real I3D's head with direction-aware flips,
evaluate with 2 clips x 3 crops, classify a video in the demo (slow)."""

import json

import numpy
import pytest

from chainercv_i3d.testing.synthetic import moving_bar
from tests.conftest import run_script
from tests.datasets_tests.test_something_something import entry
from tests.datasets_tests.test_something_something import FALLING
from tests.datasets_tests.test_something_something import LEFT_TO_RIGHT
from tests.datasets_tests.test_something_something import RIGHT_TO_LEFT
from tests.datasets_tests.test_something_something import write_labels
from tests.datasets_tests.test_something_something import write_split
from tests.datasets_tests.videos import write_video

pytestmark = pytest.mark.slow

SIZE = 200  # frames of 200 x 200; I3D takes crops of 193 and up
NAMES = ('Pushing something from left to right',
         'Pushing something from right to left',
         'Something falling like a feather or paper')


def bar_video(path, template, seed):
    """16 frames at 12 fps: a bar pushed right or left, or one falling."""
    rng = numpy.random.default_rng(seed)
    direction = -1 if template == RIGHT_TO_LEFT else 1
    frames, _ = moving_bar(16, SIZE, SIZE, direction, rng)
    if template == FALLING:
        frames = frames.transpose(0, 2, 1, 3)  # a horizontal bar, down
    write_video(path, list(frames), fps=12.0)


@pytest.fixture(scope='module')
def ssv2(tmp_path_factory, tfhub_cache):
    root = tmp_path_factory.mktemp('ssv2')
    annotations, videos = root / 'annotations', root / 'videos'
    write_labels(annotations, NAMES)
    templates = (LEFT_TO_RIGHT, RIGHT_TO_LEFT, FALLING)
    splits = {'train': [], 'validation': []}
    for k in range(3):
        for template in templates:
            split = 'validation' if k == 2 else 'train'
            video_id = str(100 * (k + 1) + len(splits[split]))
            splits[split].append(entry(video_id, template))
            bar_video(videos / (video_id + '.webm'), template, seed=len(
                splits['train']) + 10 * k)
    for split, entries in splits.items():
        write_split(annotations, split, entries)
        result = run_script(
            'precompute_frames_flow.py', videos, root / split, '--dataset',
            'something_something_v2', '--annotations', annotations,
            '--split', split, '--short_side', str(SIZE), '--no_compute_flow',
            '--quiet')
        assert result.returncode == 0, result.stderr
    env = {'CHAINERCV_I3D_CACHE': str(tfhub_cache)}
    result = run_script(
        'train_i3d.py', root / 'train', '--out', root / 'out', '--val',
        root / 'validation', '--pretrained_model', 'rgb_tfhub_kinetics400',
        '--freeze_upto', 'avgpool', '--frames', '9', '--crop_size', '193',
        '--batch_size', '3', '--schedule', 'step', '--lr', '0.01',
        '--iterations', '2', '--log_interval', '1', '--quiet',
        '--num_preprocess_workers', '0', env=env)
    assert result.returncode == 0, result.stderr
    return root, env, result.stdout


def test_training_uses_segments_and_swapping_flips(ssv2):
    _, _, stdout = ssv2
    assert 'clips: segments of 9 frames, flips: swap (2 classes change ' \
        'when flipped)' in stdout


def test_the_model_carries_the_ssv2_preset_and_class_names(ssv2):
    from chainercv_i3d.pretrained import describe_npz
    root, _, _ = ssv2
    preset = describe_npz(str(root / 'out' / 'model_final.npz'))['preset']
    assert preset.label_names == NAMES
    assert preset.fps is None and preset.crop_size == 193
    assert preset.eval_sampler['name'] == 'segments'


def test_two_clips_by_three_crops_evaluation(ssv2):
    root, env, _ = ssv2
    result = run_script('eval_kinetics.py', root / 'validation',
                        '--rgb_model_checkpoint',
                        root / 'out' / 'model_final.npz', '--num_clips', '2',
                        '--num_crops', '3', '--n_frame', '9', '--out',
                        root / 'eval.json', '--quiet', env=env)
    assert result.returncode == 0, result.stderr
    with open(root / 'eval.json') as f:
        protocol = json.load(f)['protocol']
    assert protocol['clip_sampler'] == {'name': 'segments', 'n_segment': 9,
                                        'random': False, 'num_clips': 2}
    assert protocol['views_per_video'] == 6
    for name in NAMES:
        assert name in result.stdout


def test_the_demo_prints_ssv2_class_names(ssv2, tmp_path):
    root, env, _ = ssv2
    result = run_script('demo.py', root / 'videos' / '300.webm',
                        '--rgb_model', root / 'out' / 'model_final.npz',
                        '--json', tmp_path / 'r.json', env=env)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / 'r.json') as f:
        top = json.load(f)[0]['top']
    assert sorted(t['name'] for t in top) == sorted(NAMES)
