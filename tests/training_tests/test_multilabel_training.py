"""Multi-label training (Charades-like label sets) of the tiny network:
the sigmoid loss, per-clip labels, mAP validation, exact resume."""

import dataclasses
import json
import os

import chainer
import numpy
import pytest

from chainercv_i3d.datasets import PrecomputedVideoDataset
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.testing.synthetic import write_moving_bars_set
from chainercv_i3d.testing.synthetic import write_multilabel_bars_set
from chainercv_i3d.training import resolve_defaults
from chainercv_i3d.training import TrainConfig
from chainercv_i3d.training.trainer import clip_loss
from tests.conftest import run_script
from tests.training_tests.test_trainer import assert_same_arrays
from tests.training_tests.test_trainer import snapshot_arrays
from tests.training_tests.test_trainer import train


@pytest.fixture(scope='module')
def multilabel_bars(tmp_path_factory):
    """16 videos of 12 frames, 32 x 32: every subset of three bars twice."""
    path = str(tmp_path_factory.mktemp('multilabel_bars'))
    write_multilabel_bars_set(path, 16, n_frames=12, size=32)
    return path


def test_the_loss_is_sigmoid_by_default_for_label_sets_only():
    config = TrainConfig(train_dir='t', out_dir='o')
    multi = DEEPMIND_KINETICS.replace(multi_label=True)
    assert resolve_defaults(config, multi).loss == 'sigmoid'
    assert resolve_defaults(config, DEEPMIND_KINETICS).loss == 'softmax'
    sigmoid = dataclasses.replace(config, loss='sigmoid')
    assert resolve_defaults(sigmoid, DEEPMIND_KINETICS).loss == 'sigmoid'
    with pytest.raises(ValueError, match="multi-label.*use loss 'sigmoid'"):
        resolve_defaults(dataclasses.replace(config, loss='softmax'), multi)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        resolve_defaults(dataclasses.replace(config, loss='hinge'), multi)


def test_the_sigmoid_loss_is_the_mean_over_clips_and_classes():
    logits = numpy.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], numpy.float32)
    labels = numpy.array([[1, 0, 1], [0, 0, 1]], numpy.int32)
    loss, hits = clip_loss(chainer.Variable(logits), labels, 'sigmoid')
    # By hand: -[t log s(x) + (1 - t) log(1 - s(x))], averaged over all 6.
    p = 1 / (1 + numpy.exp(-logits.astype(numpy.float64)))
    expected = -numpy.mean(labels * numpy.log(p)
                           + (1 - labels) * numpy.log(1 - p))
    assert float(loss.array) == pytest.approx(expected, rel=1e-5)
    assert int(hits) == 1  # clip 0's top class (0) is one of its labels
    # One label per clip reads as a set of one.
    one, _ = clip_loss(chainer.Variable(logits), numpy.array([0, 2],
                                                             numpy.int32),
                       'sigmoid')
    as_set, _ = clip_loss(chainer.Variable(logits), numpy.array(
        [[1, 0, 0], [0, 0, 1]], numpy.int32), 'sigmoid')
    assert float(one.array) == float(as_set.array)


@pytest.mark.slow
def test_the_tiny_network_separates_co_occurring_classes(multilabel_bars,
                                                         tmp_path):
    # Whole frames (no crop could miss a bar), no flips (class 0 and 2 are
    # mirror images), frozen statistics (as the single-label RGB test).
    trainer, _ = train(multilabel_bars, tmp_path, iterations=80,
                       batch_size=8, flip='none', dropout_ratio=0.0,
                       crop_size=32, bn='frozen', log_interval=10,
                       val_dir=multilabel_bars, val_n_frame=12,
                       val_interval=10, lr_steps=(60,))
    assert trainer.config.loss == 'sigmoid'
    assert trainer.model.preset.multi_label
    entries = trainer.log.entries
    maps = [e['validation/map'] for e in entries if 'validation/map' in e]
    # Chance: a class's AP is about its positive rate, 1/2 here; measured:
    # 0.76 after 10 updates, 1.0 from 60 on.
    assert maps[0] < 0.9 and maps[-1] >= 0.95, maps
    assert entries[-1]['main/loss'] < entries[0]['main/loss'] / 2
    assert 'validation/top1' not in entries[-1]


def test_resume_with_the_sigmoid_loss_is_exact(multilabel_bars, tmp_path):
    options = dict(batch_size=5, log_interval=1, snapshot_interval=3,
                   flip='naive', lr_steps=(2, 4))
    train(multilabel_bars, tmp_path / 'whole', iterations=6, **options)
    train(multilabel_bars, tmp_path / 'parts', iterations=3, **options)
    _, messages = train(multilabel_bars, tmp_path / 'parts', iterations=6,
                        **options)
    assert any('resumed' in m and 'iteration 3' in m for m in messages)
    assert_same_arrays(snapshot_arrays(tmp_path / 'whole'),
                       snapshot_arrays(tmp_path / 'parts'))


def test_a_resume_with_another_loss_is_refused(tmp_path):
    bars = str(tmp_path / 'bars')
    write_moving_bars_set(bars, 2, n_frames=12, size=40)
    train(bars, tmp_path / 'out', iterations=1, batch_size=2)
    with pytest.raises(ValueError, match="loss: None there, 'sigmoid' now"):
        train(bars, tmp_path / 'out', iterations=2, batch_size=2,
              loss='sigmoid')


def test_a_validation_set_without_any_action_is_refused(multilabel_bars,
                                                       tmp_path):
    empty = str(tmp_path / 'empty')
    write_multilabel_bars_set(empty, 1, n_frames=12, size=32)
    # Video 0 of the turn has the classes (0,); take its action away.
    with open(os.path.join(empty, 'manifest.json')) as f:
        manifest = json.load(f)
    manifest['videos'][0].update(labels=[], actions=[])
    with open(os.path.join(empty, 'manifest.json'), 'w') as f:
        json.dump(manifest, f)
    with pytest.raises(ValueError, match='no validation video has an '
                       'action'):
        train(multilabel_bars, tmp_path / 'out', iterations=1,
              batch_size=2, val_dir=empty)
    assert not os.path.exists(tmp_path / 'out' / 'snapshot.npz')


def test_training_clips_get_the_labels_of_the_actions_they_overlap(
        tmp_path):
    path = str(tmp_path / 'set')
    records = write_multilabel_bars_set(path, 4, n_frames=12, size=32)
    dataset = PrecomputedVideoDataset(path)
    assert dataset.multi_label
    numpy.testing.assert_array_equal(dataset.video_labels(3), [1, 1, 0])
    # Video 3 (classes 0 and 1): class 1 only in its second half.
    dataset.records[3] = dict(records[3], actions=[[0, 0.0, 0.48],
                                                   [1, 0.24, 0.48]])
    fps = dataset.frame_rate(3)
    assert fps == 25.0
    numpy.testing.assert_array_equal(
        dataset.clip_labels(3, numpy.arange(0, 5)), [1, 0, 0])
    numpy.testing.assert_array_equal(
        dataset.clip_labels(3, numpy.arange(4, 8)), [1, 1, 0])
    numpy.testing.assert_array_equal(
        dataset.clip_labels(3, numpy.arange(13, 15)), [0, 0, 0])


def test_the_script_refuses_softmax_on_label_sets_in_one_line(
        multilabel_bars, tmp_path):
    result = run_script('train_i3d.py', multilabel_bars, '--out',
                        tmp_path / 'out', '--loss', 'softmax', '--arch',
                        'tiny', '--frames', '8', '--iterations', '1',
                        '--num_preprocess_workers', '0', '--quiet')
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "use loss 'sigmoid'" in result.stderr
