"""Training runs of the tiny network on synthetic moving bars: learning,
exact resume, ranks and accumulation, bad input."""

import json
import os
import subprocess
import sys

import chainer
import numpy
import pytest
from PIL import Image

from chainercv_i3d.datasets import PrecomputedVideoDataset
from chainercv_i3d.datasets.loader import TrainingClips
from chainercv_i3d.links import I3D
from chainercv_i3d.pretrained import save_model_npz
from chainercv_i3d.testing.synthetic import write_moving_bars_set
from chainercv_i3d.training import TrainConfig
from chainercv_i3d.transforms import ClipTransform
from chainercv_i3d.training import Trainer
from chainercv_i3d.training import TrainingLog
from chainercv_i3d.training.report import training_figure
from chainercv_i3d.utils.comm import SerialComm
from tests.conftest import ROOT
from tests.conftest import run_script

TRAIN = os.path.join(ROOT, 'examples', 'i3d', 'train_i3d.py')
# Tiny clips of the tiny network: an update takes milliseconds.
TINY = ('--arch', 'tiny', '--frames', '8', '--crop_size', '32',
        '--num_preprocess_workers', '0', '--quiet')


@pytest.fixture(scope='module')
def bars(tmp_path_factory):
    """6 videos per direction, 12 frames of 40 x 40, RGB and flow."""
    path = str(tmp_path_factory.mktemp('bars'))
    write_moving_bars_set(path, 6, n_frames=12, size=40)
    return path


def train(train_dir, out_dir, **options):
    options = dict(dict(arch='tiny', frames=8, crop_size=32, n_workers=0,
                        quiet=True, schedule='step', lr=0.1), **options)
    config = TrainConfig(train_dir=train_dir, out_dir=str(out_dir),
                         **options)
    messages = []
    trainer = Trainer(config, SerialComm(), chainer.get_device('@numpy'),
                      say=messages.append)
    trainer.run()
    return trainer, messages


def snapshot_arrays(out_dir):
    with numpy.load(os.path.join(str(out_dir), 'snapshot.npz')) as f:
        return {key: f[key] for key in f.files}


def assert_same_arrays(a, b, keys=None):
    keys = sorted(a) if keys is None else keys
    assert sorted(a) == sorted(b)
    for key in keys:
        numpy.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize('stream,bn', [('rgb', 'frozen'), ('flow', 'batch')])
def test_the_tiny_network_learns_the_direction_of_motion(bars, tmp_path,
                                                         stream, bn):
    # Without flips: a flipped bar moves the other way (see Something-
    # Something's direction-aware flips); whole frames: a crop could miss
    # the bar. RGB: batch statistics of clips of one direction would hide
    # the direction; flow (a few pixels in 20) needs normalizing.
    trainer, _ = train(bars, tmp_path, stream=stream, iterations=60,
                       batch_size=6, flip='none', dropout_ratio=0.0,
                       log_interval=10, lr_steps=(30,), crop_size=40, bn=bn)
    accuracies = [e['main/accuracy'] for e in trainer.log.entries]
    assert accuracies[0] < 1.0
    assert accuracies[-2:] == [1.0, 1.0]
    with open(tmp_path / 'log.json') as f:
        assert json.load(f) == trainer.log.entries


def test_outputs_and_the_final_model(bars, tmp_path):
    trainer, messages = train(bars, tmp_path, iterations=4, batch_size=2,
                              log_interval=2, val_dir=bars, val_n_frame=8)
    names = sorted(os.listdir(tmp_path))
    assert names == ['log.json', 'model_final.npz', 'snapshot.npz',
                     'training.png']
    with Image.open(tmp_path / 'training.png') as image:
        assert image.size[0] >= 600 and image.size[1] >= 600
    entry = trainer.log.entries[-1]
    assert entry['iteration'] == 4 and entry['lr'] == pytest.approx(0.1)
    assert 0 <= entry['validation/top1'] <= 1
    assert entry['epoch'] == pytest.approx(4 * 2 / 12, abs=1e-4)
    assert any('wrote' in m for m in messages)
    final = numpy.load(tmp_path / 'model_final.npz')
    for name, param in trainer.model.namedparams():
        numpy.testing.assert_array_equal(final[name.lstrip('/')],
                                         param.array)


def test_resume_is_exact_across_an_epoch_boundary(bars, tmp_path):
    # 12 clips, 5 per update: epochs end inside updates 3 and 5.
    options = dict(batch_size=5, log_interval=1, snapshot_interval=3,
                   flip='naive', lr_steps=(2, 4))
    train(bars, tmp_path / 'whole', iterations=6, **options)
    _, messages = train(bars, tmp_path / 'parts', iterations=3, **options)
    assert not any('resumed' in m for m in messages)
    trainer, messages = train(bars, tmp_path / 'parts', iterations=6,
                              **options)
    assert any('resumed' in m and 'iteration 3' in m for m in messages)
    whole = snapshot_arrays(tmp_path / 'whole')
    parts = snapshot_arrays(tmp_path / 'parts')
    assert_same_arrays(whole, parts)
    assert int(parts['iteration']) == 6
    assert trainer.optimizer.lr == pytest.approx(0.001)
    with open(tmp_path / 'whole' / 'log.json') as f:
        whole_log = json.load(f)
    with open(tmp_path / 'parts' / 'log.json') as f:
        parts_log = json.load(f)
    strip = [{k: v for k, v in e.items() if k != 'elapsed_time'}
             for e in whole_log]
    assert strip == [{k: v for k, v in e.items() if k != 'elapsed_time'}
                     for e in parts_log]
    # The resumed run's clock goes on from its log's, not from 0.
    times = [e['elapsed_time'] for e in parts_log]
    assert times == sorted(times) and times[3] >= times[2]


def test_elapsed_time_adds_up_across_a_resume(tmp_path):
    log = TrainingLog(str(tmp_path))
    log.append({'iteration': 2, 'elapsed_time': 30.0})
    log.append({'iteration': 4, 'elapsed_time': 61.5})
    assert TrainingLog(str(tmp_path)).elapsed_time() == 0  # a new run
    assert TrainingLog(str(tmp_path), 3).elapsed_time() == 30.0
    assert TrainingLog(str(tmp_path), 4).elapsed_time() == 61.5


def legends(figure):
    return [[text.get_text() for text in axes.get_legend().get_texts()]
            if axes.get_legend() else [] for axes in figure.axes]


def test_the_plot_lists_only_the_series_it_has():
    train_only = [{'iteration': i, 'main/loss': 1.0 / i, 'lr': 0.1,
                   'main/accuracy': 0.5} for i in (1, 2)]
    assert legends(training_figure(train_only)) == [
        ['train'], ['train (clips)'], []]
    validated = train_only + [dict(
        train_only[-1], iteration=3, **{'validation/loss': 0.4,
                                        'validation/top1': 0.75,
                                        'validation/top5': None})]
    assert legends(training_figure(validated)) == [
        ['train', 'validation'],
        ['train (clips)', 'validation top-1 (videos)'], []]


def test_a_larger_iterations_continues_a_finished_run(bars, tmp_path):
    train(bars, tmp_path / 'a', iterations=2, batch_size=2)
    trainer, messages = train(bars, tmp_path / 'a', iterations=2,
                              batch_size=2)
    assert any('nothing to do' in m for m in messages)
    train(bars, tmp_path / 'a', iterations=3, batch_size=2)
    train(bars, tmp_path / 'b', iterations=3, batch_size=2)
    assert_same_arrays(snapshot_arrays(tmp_path / 'a'),
                       snapshot_arrays(tmp_path / 'b'))


def test_accumulation_is_one_update_of_the_whole_batch(bars, tmp_path):
    # Without batch normalization's per-batch statistics (frozen) and
    # dropout, 2 sub-batches of 3 are the gradient of the batch of 6.
    common = dict(iterations=2, bn='frozen', dropout_ratio=0.0,
                  shuffle=False, flip='none', weight_decay=0.0)
    train(bars, tmp_path / 'acc', batch_size=3, accumulate=2, **common)
    train(bars, tmp_path / 'one', batch_size=6, **common)
    a = snapshot_arrays(tmp_path / 'acc')
    b = snapshot_arrays(tmp_path / 'one')
    for key in a:
        if key.startswith('model/'):
            numpy.testing.assert_allclose(a[key], b[key], rtol=1e-5,
                                          atol=1e-6, err_msg=key)


def test_fine_tuning_keeps_the_trunk_and_trains_the_head(bars, tmp_path):
    first, _ = train(bars, tmp_path / 'pre', iterations=2, batch_size=2)
    trunk = {n: p.array.copy() for n, p in first.model.namedparams()
             if not n.startswith('/logits')}
    trainer, _ = train(bars, tmp_path / 'fine', iterations=3, batch_size=2,
                       pretrained_model=str(tmp_path / 'pre' /
                                            'model_final.npz'),
                       freeze_upto='avgpool')
    for name, param in trainer.model.namedparams():
        if name in trunk:
            numpy.testing.assert_array_equal(trunk[name], param.array)
    assert trainer.model.layer_names[-2:] == ['logits', 'prob']


@pytest.mark.parametrize('options,message', [
    (dict(n_class=1), 'has label 1, the model only 1 classes'),
    (dict(freeze_upto='prob'), 'every layer is frozen'),
    (dict(freeze_upto='mixed_9z'), "no layer named 'mixed_9z'"),
    (dict(stream='flow', pretrained_model='FLOW'), None),
])
def test_bad_input_is_refused_before_any_update(bars, tmp_path, options,
                                                message):
    if options.get('pretrained_model') == 'FLOW':
        path = str(tmp_path / 'rgb.npz')
        save_model_npz(I3D(n_class=2, modality='rgb'), path)
        options = dict(options, pretrained_model=path, arch='i3d',
                       frames=9, crop_size=193)
        message = 'is a rgb model; stream is flow'
    config = dict(train_dir=bars, out_dir=str(tmp_path / 'out'),
                  arch='tiny', frames=8, crop_size=32, n_workers=0,
                  iterations=1, schedule='step')
    config.update(options)
    with pytest.raises(ValueError, match=message):
        Trainer(TrainConfig(**config), SerialComm(),
                chainer.get_device('@numpy'), say=lambda m: None)
    assert not os.path.exists(tmp_path / 'out' / 'snapshot.npz')


@pytest.mark.parametrize('options,message', [
    (dict(frames=8), 'frames 8 is too few for I3D: its head needs clips of '
     'at least 9 frames; give frames of 9 or more'),
    (dict(frames=9, crop_size=192), 'crop_size 192 does not fit I3D: its '
     'head takes crops of 193 to 224 pixels'),
    (dict(frames=9, crop_size=225), 'crop_size 225 does not fit I3D'),
    (dict(frames=9, crop_size=193, val_n_frame=8),
     'val_n_frame 8 is too few for I3D'),
])
def test_clips_the_i3d_head_cannot_take_are_refused_at_once(
        bars, tmp_path, options, message):
    config = TrainConfig(train_dir=bars, out_dir=str(tmp_path / 'out'),
                         arch='i3d', n_workers=0, iterations=1,
                         schedule='step', **options)
    with pytest.raises(ValueError, match='^' + message):
        Trainer(config, SerialComm(), chainer.get_device('@numpy'),
                say=lambda m: None)
    assert not (tmp_path / 'out').exists()  # refused before any folder


def test_a_one_class_training_set_is_refused(tmp_path):
    one_class = tmp_path / 'one_class'
    write_moving_bars_set(str(one_class), 2, with_flow=False)
    with open(one_class / 'manifest.json') as f:
        manifest = json.load(f)
    manifest['videos'] = [v for v in manifest['videos'] if v['label'] == 1]
    with open(one_class / 'manifest.json', 'w') as f:
        json.dump(manifest, f)
    result = run_script('train_i3d.py', one_class, '--out', tmp_path / 'o',
                        '--schedule', 'step', '--iterations', '1', *TINY)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "{} holds videos of one class only ('bar moving right to left'): a "
        'classifier needs at least two; add videos of other '
        'classes'.format(one_class))
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / 'o' / 'snapshot.npz').exists()


def test_a_damaged_snapshot_is_one_line(bars, tmp_path):
    """A truncated snapshot said "File is not a zip file", naming nothing."""
    train(bars, tmp_path, iterations=1, batch_size=2)
    path = tmp_path / 'snapshot.npz'
    path.write_bytes(path.read_bytes()[:1000])
    result = run_script('train_i3d.py', bars, '--out', tmp_path,
                        '--iterations', '2', '--batch_size', '2', *TINY)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert '{} is truncated or damaged'.format(path) in line
    assert line.endswith('add --restart (restart=True) to start the run '
                         'again from iteration 0, or give another out_dir')
    # As it says: --restart starts over, the damaged snapshot replaced.
    result = run_script('train_i3d.py', bars, '--out', tmp_path,
                        '--iterations', '2', '--batch_size', '2', '--restart',
                        *TINY)
    assert result.returncode == 0, result.stderr
    assert int(snapshot_arrays(tmp_path)['iteration']) == 2
    with open(tmp_path / 'log.json') as f:
        assert [e['iteration'] for e in json.load(f)] == [2]


def test_a_run_killed_while_writing_leaves_nothing_behind(bars, tmp_path):
    """A run killed while writing its plot left ``.training.png.*.tmp``
    in out_dir, and the next run kept it."""
    train(bars, tmp_path, iterations=1, batch_size=2)
    outputs = sorted(os.listdir(tmp_path))
    for name in outputs:  # as atomic_path names them, never finished
        (tmp_path / '.{}.k1ll3d_x.tmp'.format(name)).write_bytes(b'half')
    (tmp_path / 'notes.tmp').write_text('the user\'s own')
    train(bars, tmp_path, iterations=2, batch_size=2)
    assert sorted(os.listdir(tmp_path)) == sorted(outputs + ['notes.tmp'])


def test_restart_starts_over_where_other_settings_are_refused(bars,
                                                              tmp_path):
    train(bars, tmp_path, iterations=2, batch_size=2, log_interval=1)
    with pytest.raises(ValueError, match='other settings .*seed: 0 there, '
                       '1 now.*add --restart'):
        train(bars, tmp_path, iterations=2, batch_size=2, seed=1)
    trainer, messages = train(bars, tmp_path, iterations=1, batch_size=2,
                              seed=1, restart=True, log_interval=1)
    assert messages[0].startswith('restart: removed {}'.format(
        tmp_path / 'snapshot.npz'))
    assert trainer.iteration == 1
    assert [e['iteration'] for e in trainer.log.entries] == [1]
    assert int(snapshot_arrays(tmp_path)['iteration']) == 1


def test_a_resume_with_other_settings_is_refused(bars, tmp_path):
    train(bars, tmp_path, iterations=1, batch_size=2)
    with pytest.raises(ValueError, match='batch_size: 2 there, 3 now'):
        train(bars, tmp_path, iterations=2, batch_size=3)


def test_script_errors_name_the_problem(bars, tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'manifest.json').write_text(json.dumps({'videos': []}))
    result = run_script('train_i3d.py', empty, '--out', tmp_path / 'o',
                        *TINY)
    assert result.returncode != 0
    assert 'holds no precomputed video' in result.stderr
    assert not os.path.exists(tmp_path / 'o')  # refused: no empty folder
    blocker = tmp_path / 'file'
    blocker.write_text('')
    result = run_script('train_i3d.py', bars, '--out', blocker / 'out',
                        *TINY)
    assert result.returncode != 0
    assert '{} is a file, not a folder'.format(blocker) in result.stderr
    result = run_script('train_i3d.py', bars, '--out', tmp_path / 'o2',
                        '--lr_steps', '3', *TINY)
    assert result.returncode != 0
    assert "lr_steps is for schedule 'step'" in result.stderr


def test_script_trains_and_resumes(bars, tmp_path):
    args = (bars, '--out', tmp_path, '--schedule', 'step', '--lr', '0.1',
            '--batch_size', '2', '--log_interval', '1') + TINY
    first = run_script('train_i3d.py', *args, '--iterations', '2')
    assert first.returncode == 0, first.stderr
    assert 'main/loss' in first.stdout  # the log's header
    second = run_script('train_i3d.py', *args, '--iterations', '3')
    assert second.returncode == 0, second.stderr
    assert 'resumed from' in second.stdout and 'iteration 2' in second.stdout
    assert int(snapshot_arrays(tmp_path)['iteration']) == 3


# Under mpiexec -------------------------------------------------------------

def run_ranks(mpiexec, n, train_dir, out_dir, *extra, timeout=300):
    result = subprocess.run(
        [mpiexec, '-n', str(n), sys.executable, TRAIN, train_dir, '--out',
         str(out_dir), '--schedule', 'step', '--lr', '0.1', *TINY, *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_two_ranks_equal_one_rank_accumulating_two(bars, tmp_path, mpiexec):
    # Per-rank batch statistics, dropout, flips and shuffling all on.
    common = ('--iterations', '3', '--batch_size', '2',
              '--snapshot_interval', '3')
    run_ranks(mpiexec, 2, bars, tmp_path / 'two', *common)
    run_ranks(mpiexec, 1, bars, tmp_path / 'one', *common,
              '--accumulate', '2')
    a = snapshot_arrays(tmp_path / 'two')
    b = snapshot_arrays(tmp_path / 'one')
    params = [k for k in a if k.startswith('optimizer/')
              or k.endswith('/W') or k.endswith('/beta') or k.endswith('/b')]
    assert len(params) > 10
    assert_same_arrays(a, b, params)


def test_synchronized_batch_norm_over_two_ranks_is_the_whole_batch(
        bars, tmp_path, mpiexec):
    common = ('--iterations', '2', '--bn', 'sync', '--dropout_ratio', '0',
              '--no_shuffle', '--no_flip')
    run_ranks(mpiexec, 2, bars, tmp_path / 'two', *common,
              '--batch_size', '2')
    run_ranks(mpiexec, 1, bars, tmp_path / 'one', *common,
              '--batch_size', '4')
    a = snapshot_arrays(tmp_path / 'two')
    b = snapshot_arrays(tmp_path / 'one')
    for key in a:
        if key.startswith('model/') and not key.endswith('/N'):
            numpy.testing.assert_allclose(a[key], b[key], rtol=1e-4,
                                          atol=1e-5, err_msg=key)


@pytest.mark.parametrize('n', [1, 2])
def test_resume_under_mpiexec_is_exact(bars, tmp_path, mpiexec, n):
    common = ('--batch_size', '2', '--snapshot_interval', '2')
    run_ranks(mpiexec, n, bars, tmp_path / 'whole', '--iterations', '4',
              *common)
    run_ranks(mpiexec, n, bars, tmp_path / 'parts', '--iterations', '2',
              *common)
    resumed = run_ranks(mpiexec, n, bars, tmp_path / 'parts',
                        '--iterations', '4', *common)
    assert 'resumed from' in resumed.stdout
    assert_same_arrays(snapshot_arrays(tmp_path / 'whole'),
                       snapshot_arrays(tmp_path / 'parts'))


def test_a_failure_on_one_rank_ends_the_job_with_its_message(
        bars, tmp_path, mpiexec):
    result = subprocess.run(
        [mpiexec, '-n', '2', sys.executable, TRAIN, bars, '--out',
         str(tmp_path), '--freeze_upto', 'nonexistent', *TINY],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode != 0
    assert "no layer named 'nonexistent'" in result.stderr


PRIMING = """
import json, sys
import chainercv_i3d
import chainer, numpy
from chainercv_i3d.training import TrainConfig, Trainer
from chainercv_i3d.utils.comm import get_comm
comm = get_comm()
config = TrainConfig(train_dir=sys.argv[1], out_dir=sys.argv[2], arch='tiny',
                     frames=8, crop_size=32, n_workers=0, quiet=True,
                     schedule='step', lr=0.1, iterations=1, batch_size=2)
trainer = Trainer(config, comm, chainer.get_device('@numpy'))
before = {n: p.array.copy() for n, p in trainer.model.namedparams()}
trainer.run()
changed = [n for n, p in trainer.model.namedparams()
           if not numpy.array_equal(before[n], p.array)]
if comm.rank == 0:
    with open(sys.argv[3], 'w') as f:
        json.dump({'changed': len(changed), 'params': len(before)}, f)
"""


@pytest.mark.parametrize('n', [1, 2])
def test_the_first_update_under_mpiexec_is_a_real_one(bars, tmp_path,
                                                      mpiexec, n):
    # ChainerMN's optimizer would only broadcast on its first update.
    script = tmp_path / 'prime.py'
    script.write_text(PRIMING)
    result = subprocess.run(
        [mpiexec, '-n', str(n), sys.executable, str(script), bars,
         str(tmp_path / 'out'), str(tmp_path / 'result.json')],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / 'result.json') as f:
        outcome = json.load(f)
    assert outcome['changed'] == outcome['params'] > 0


def test_a_stream_the_set_lacks_is_refused(tmp_path):
    rgb_only = str(tmp_path / 'rgb_only')
    write_moving_bars_set(rgb_only, 1, with_flow=False)
    with pytest.raises(ValueError, match='precomputed without flow'):
        train(rgb_only, tmp_path / 'out', stream='flow', iterations=1,
              batch_size=1)


def test_a_validation_set_of_other_classes_is_refused(bars, tmp_path):
    other = str(tmp_path / 'other')
    write_moving_bars_set(other, 1, kind='orientation')
    with pytest.raises(ValueError, match='different classes'):
        train(bars, tmp_path / 'out', iterations=1, batch_size=1,
              val_dir=other)


@pytest.mark.parametrize('flip', ['swap', 'naive', None])
def test_flips_that_swap_mirrored_classes(bars, tmp_path, flip):
    # Left-to-right against right-to-left: a flipped clip shows the other
    # class. 'swap' (the default for these names) relabels it and learns;
    # 'naive' teaches both labels for both motions and stays near chance.
    trainer, _ = train(bars, tmp_path, iterations=60, batch_size=6,
                       flip=flip, dropout_ratio=0.0, log_interval=10,
                       lr_steps=(30,), crop_size=40, bn='frozen')
    assert trainer.config.flip == (flip or 'swap')
    assert trainer.flip_labels == ({0: 1, 1: 0} if flip != 'naive' else {})
    accuracies = [e['main/accuracy'] for e in trainer.log.entries]
    if flip == 'naive':
        assert max(accuracies[-3:]) <= 0.75
    else:
        assert accuracies[-2:] == [1.0, 1.0]


def test_a_flipped_clip_of_a_mirrored_class_gets_the_mirrored_label(bars):
    dataset = PrecomputedVideoDataset(bars, n_frame=8)
    transform = ClipTransform(dataset.preset, 'random', True, 40)
    load = TrainingClips(dataset, 'flow', transform, {0: 1, 1: 0})
    seen = set()
    for seed in range(8):
        rng = numpy.random.default_rng(seed)
        clip, label = load(0, rng)
        flipped = transform.apply(dataset.read_views(
            0, ('flow',), numpy.random.default_rng(seed)),
            numpy.random.default_rng(seed))[1]
        assert label == (1 if flipped else 0)
        # The bar moves right (x flow > 0) exactly when the label says so.
        moving = clip[0][numpy.abs(clip[0]) > 0.01]
        assert (moving.mean() > 0) == (label == 0)
        seen.add(flipped)
    assert seen == {True, False}


def test_validation_follows_its_own_interval(bars, tmp_path):
    trainer, _ = train(bars, tmp_path, iterations=6, batch_size=2,
                       log_interval=4, val_interval=3, val_dir=bars,
                       val_n_frame=8)
    entries = trainer.log.entries
    assert [e['iteration'] for e in entries] == [3, 4, 6]
    assert [e['iteration'] for e in entries
            if 'validation/top1' in e] == [3, 6]
