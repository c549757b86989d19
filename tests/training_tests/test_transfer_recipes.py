"""The "Quo Vadis" transfer recipes of train_i3d.py (--recipe
transfer_fixed / transfer_full): their options, and a tiny run of each."""

import os

import chainer
import numpy
import pytest

from chainercv_i3d.links import TinyI3D
from chainercv_i3d.testing.synthetic import write_moving_bars_set
from chainercv_i3d.training import recipe_options
from chainercv_i3d.training import TrainConfig
from chainercv_i3d.training import Trainer
from chainercv_i3d.utils.comm import SerialComm
from tests.conftest import load_example
from tests.conftest import run_script
from tests.datasets_tests.test_ucf_hmdb import tiny_video
from tests.datasets_tests.test_ucf_hmdb import UCF_CLASSES
from tests.datasets_tests.test_ucf_hmdb import write_ucf101

TINY = ('--arch', 'tiny', '--frames', '8', '--crop_size', '32',
        '--num_preprocess_workers', '0', '--batch_size', '2', '--quiet')


def parse(*argv):
    return load_example('train_i3d.py').parse_args(
        ['train', '--out', 'out'] + list(argv))


@pytest.mark.parametrize('stream', ['rgb', 'flow'])
def test_fixed_freezes_the_trunk_of_the_kinetics_checkpoint(stream):
    args = parse('--recipe', 'transfer_fixed', '--stream', stream)
    assert args.pretrained_model == stream + '_imagenet_kinetics400'
    assert args.freeze_upto == 'avgpool'
    assert (args.schedule, args.lr, args.lr_steps, args.iterations) == (
        'step', 0.01, (3000, 4000), 5000)


def test_full_fine_tuning_freezes_nothing():
    args = parse('--recipe', 'transfer_full', '--stream', 'flow')
    assert args.pretrained_model == 'flow_imagenet_kinetics400'
    assert args.freeze_upto is None
    assert (args.schedule, args.lr, args.lr_steps, args.iterations) == (
        'step', 0.01, (3000, 4000), 5000)


def test_the_options_given_win_over_the_recipe():
    args = parse('--iterations', '10', '--recipe', 'transfer_fixed',
                 '--pretrained_model', 'mine.npz', '--lr', '0.1',
                 '--freeze_upto', 'mixed_5b')
    assert (args.iterations, args.pretrained_model, args.lr,
            args.freeze_upto) == (10, 'mine.npz', 0.1, 'mixed_5b')
    assert args.lr_steps == (3000, 4000)


def test_no_recipe_keeps_the_deepmind_defaults():
    args = parse()
    assert (args.pretrained_model, args.freeze_upto, args.schedule,
            args.iterations) == (None, None, None, None)


def test_an_unknown_recipe_is_refused():
    with pytest.raises(ValueError, match='unknown recipe'):
        recipe_options('transfer_half', 'rgb')


@pytest.fixture(scope='module')
def kinetics_like(tmp_path_factory):
    """A set of moving bars and a tiny model trained on it (the
    "checkpoint" the recipes start from)."""
    folder = tmp_path_factory.mktemp('transfer')
    bars = str(folder / 'bars')
    write_moving_bars_set(bars, 4, n_frames=12, size=40)
    config = TrainConfig(train_dir=bars, out_dir=str(folder / 'pre'),
                         arch='tiny', frames=8, crop_size=32, n_workers=0,
                         quiet=True, schedule='step', lr=0.1, iterations=2,
                         batch_size=2)
    Trainer(config, SerialComm(), chainer.get_device('@numpy'),
            say=lambda m: None).run()
    return bars, str(folder / 'pre' / 'model_final.npz')


def weights(path):
    with numpy.load(path) as npz:
        return {k: npz[k] for k in npz.files
                if k.endswith('/W') or k.endswith('/b')}


@pytest.mark.slow
@pytest.mark.parametrize('recipe', ['transfer_fixed', 'transfer_full'])
def test_a_tiny_run_of_each_recipe(kinetics_like, tmp_path, recipe):
    bars, checkpoint = kinetics_like
    out = str(tmp_path / 'out')
    result = run_script('train_i3d.py', bars, '--out', out, '--recipe',
                        recipe, '--pretrained_model', checkpoint,
                        '--iterations', '3', '--lr', '0.1', *TINY)
    assert result.returncode == 0, result.stderr
    before = weights(checkpoint)
    after = weights(os.path.join(out, 'model_final.npz'))
    assert sorted(before) == sorted(after)
    head = [k for k in before if k.startswith('logits/')]
    trunk = [k for k in before if not k.startswith('logits/')]
    assert head and trunk
    assert all(not numpy.array_equal(before[k], after[k]) for k in head
               if k.endswith('/W'))
    trunk_kept = [numpy.array_equal(before[k], after[k]) for k in trunk]
    if recipe == 'transfer_fixed':
        assert all(trunk_kept), trunk
    else:
        assert not any(trunk_kept), trunk


@pytest.mark.slow
def test_a_ucf101_split_fine_tuned_with_a_new_head(tmp_path):
    """Precompute a tiny UCF101 split, fine-tune a 2-class "checkpoint" on
    it: the model has the dataset's classes and evaluates every frame."""
    video_dir, annotations = write_ucf101(tmp_path, tiny_video)
    train_dir = str(tmp_path / 'ucf101_train1')
    result = run_script('precompute_frames_flow.py', video_dir, train_dir,
                        '--dataset', 'ucf101', '--annotations', annotations,
                        '--split', '1', '--subset', 'train', '--short_side',
                        '40', '--no_compute_flow', '--quiet')
    assert result.returncode == 0, result.stderr
    checkpoint = str(tmp_path / 'kinetics_like.npz')
    chainer.serializers.save_npz(checkpoint, TinyI3D(n_class=2))
    options = dict(recipe_options('transfer_fixed', 'rgb'),
                   pretrained_model=checkpoint, iterations=2, lr=0.1)
    config = TrainConfig(train_dir=train_dir, out_dir=str(tmp_path / 'out'),
                         arch='tiny', frames=8, crop_size=32, n_workers=0,
                         quiet=True, batch_size=2, **options)
    trainer = Trainer(config, SerialComm(), chainer.get_device('@numpy'),
                      say=lambda m: None)
    trainer.run()
    assert trainer.model.n_class == 3
    assert trainer.model.frozen_upto == 'avgpool'
    assert trainer.model.preset.label_names == UCF_CLASSES
    assert trainer.model.preset.eval_sampler == {'name': 'all_frames'}
