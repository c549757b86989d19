"""The defaults a training set implies: sampler, clip length, flips."""

import pytest

from chainercv_i3d.datasets.clip_samplers import RandomClip
from chainercv_i3d.datasets.clip_samplers import Segments
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.presets import SOMETHING_SOMETHING_V2
from chainercv_i3d.training import resolve_defaults
from chainercv_i3d.training import TrainConfig
from chainercv_i3d.training.config import training_sampler

MIRRORED = ('Pushing something from left to right',
            'Pushing something from right to left', 'Holding something')


def config(**options):
    return TrainConfig(train_dir='train', out_dir='out', **options)


def test_kinetics_defaults_to_deepminds_64_consecutive_frames():
    resolved = resolve_defaults(config(), DEEPMIND_KINETICS)
    assert (resolved.sampler, resolved.frames) == ('random_clip', 64)
    assert resolved.flip == 'naive'  # no mirrored class names
    sampler = training_sampler(resolved)
    assert isinstance(sampler, RandomClip) and sampler.n_frame == 64


def test_something_something_defaults_to_32_random_segments_and_swaps():
    preset = SOMETHING_SOMETHING_V2.replace(label_names=MIRRORED)
    resolved = resolve_defaults(config(), preset)
    assert (resolved.sampler, resolved.frames) == ('segments', 32)
    assert resolved.flip == 'swap'
    sampler = training_sampler(resolved)
    assert isinstance(sampler, Segments)
    assert sampler.n_frame == 32 and sampler.random


def test_what_the_config_sets_is_kept():
    given = config(sampler='segments', frames=8, flip='none',
                   loss='softmax')
    resolved = resolve_defaults(given, DEEPMIND_KINETICS)
    assert resolved == given


@pytest.mark.parametrize('options,message', [
    (dict(sampler='dense'), "unknown sampler 'dense'"),
    (dict(flip='mirror'), "unknown flip policy 'mirror'"),
])
def test_unknown_policies_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        resolve_defaults(config(**options), DEEPMIND_KINETICS)
