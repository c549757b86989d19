import numpy
import pytest

from chainercv_i3d.evaluations.feature_recipes import RECIPES
from chainercv_i3d.evaluations.feature_recipes import resolve_options
from chainercv_i3d.transforms.feature_windows import feature_windows
from chainercv_i3d.transforms.feature_windows import window_steps
from chainercv_i3d.transforms.resample_frame_indices import \
    resample_frame_indices


def as_lists(windows):
    return [w.tolist() for w in windows]


def recipe_windows(name, n_frames):
    return feature_windows(n_frames,
                           **RECIPES[name]['options'].window_options)


def test_video_features_recipe_against_its_stack_loop():
    # video_features' extract_i3d.py runs a stack when it holds 65 frames
    # (RGB takes the first 64), keeps stack[64:] (one frame), so stack k
    # is frames [64 k, 64 k + 64) and needs frame 64 k + 64: floor((T - 1)
    # / 64) stacks; the rest is never run.
    for n_frames, starts in ((250, [0, 64, 128]), (129, [0, 64]),
                             (128, [0]), (65, [0])):
        windows = recipe_windows('video_features_i3d', n_frames)
        assert as_lists(windows) == [list(range(s, s + 64)) for s in starts]
        assert len(windows) == (n_frames - 1) // 64


def test_thumos_recipe_against_its_chunk_loop():
    # Finspire13/pytorch-i3d-feature-extraction: clipped_length = T - 16,
    # rounded down to a multiple of 4; chunks i * 4 + [0, 16) for
    # i in range(clipped_length // 4 + 1).
    windows = recipe_windows('thumos14_i3d_16x4', 27)
    assert as_lists(windows) == [list(range(s, s + 16)) for s in (0, 4, 8)]
    # actionformer_release#5: 5094 frames -> (5094 - 16) / 4 ~= 1269.
    windows = recipe_windows('thumos14_i3d_16x4', 5094)
    assert len(windows) == 1270
    assert windows[-1].tolist() == list(range(5076, 5092))


def test_tails():
    assert as_lists(feature_windows(10, 4)) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert as_lists(feature_windows(10, 4, tail='keep')) == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert as_lists(feature_windows(10, 4, tail='pad')) == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 9, 9]]
    assert as_lists(feature_windows(10, 4, tail='pad', pad='zeros')) == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9, -1, -1]]
    # Overlapping windows: the tail window starts a stride after the last
    # whole one.
    assert as_lists(feature_windows(7, 4, 2, tail='keep')) == [
        [0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6]]
    # Nothing left over: no tail window.
    assert as_lists(feature_windows(8, 4, tail='pad')) == [
        [0, 1, 2, 3], [4, 5, 6, 7]]


def test_short_video_loops_by_default_as_before():
    assert as_lists(feature_windows(3, 5)) == [[0, 1, 2, 0, 1]]
    assert as_lists(feature_windows(3, 5, tail='pad')) == [[0, 1, 2, 2, 2]]
    assert as_lists(feature_windows(3, 5, tail='keep')) == [[0, 1, 2]]


def test_center_alignment_with_both_pads():
    # One step every 2 frames at 0, 2, 4; 3-frame windows [c - 1, c + 2).
    assert as_lists(feature_windows(5, 3, 2, 'center')) == [
        [0, 0, 1], [1, 2, 3], [3, 4, 4]]
    assert as_lists(feature_windows(5, 3, 2, 'center', pad='zeros')) == [
        [-1, 0, 1], [1, 2, 3], [3, 4, -1]]
    # ms-tcn's 21-frame windows centred on every frame: 6 frames, 6 steps.
    windows = feature_windows(6, 21, 1, 'center', pad='zeros')
    assert len(windows) == 6
    assert windows[0].tolist() == [-1] * 10 + list(range(6)) + [-1] * 5


def test_whole_video_is_one_window():
    assert as_lists(feature_windows(4)) == [[0, 1, 2, 3]]


@pytest.mark.parametrize('kwargs', [
    {'window': 0}, {'window': 4, 'stride': 0}, {'window': 4, 'tail': 'x'},
    {'window': 4, 'align': 'end'}, {'window': 4, 'pad': 'reflect'}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        feature_windows(10, **kwargs)


def test_steps_in_source_frames_and_seconds_after_resampling():
    # 12 frames at 30 fps resampled to 25: frame k shows source
    # floor(k * 30 / 25) = 0, 1, 2, 3, 4, 6, 7, 8, 9, 10 (10 frames).
    source = resample_frame_indices(12, 30, 25)
    assert source.tolist() == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    windows = feature_windows(len(source), 4, tail='pad', pad='zeros')
    steps = window_steps(windows, source, 30.0)
    assert [(s['first'], s['last']) for s in steps] == [(0, 3), (4, 8),
                                                        (9, 10)]
    assert steps[1]['start_s'] == pytest.approx(4 / 30, abs=1e-6)
    assert steps[1]['end_s'] == pytest.approx(9 / 30, abs=1e-6)
    assert steps[1]['center_s'] == pytest.approx(6.5 / 30, abs=1e-6)


def test_recipe_with_an_explicit_option():
    options, overrides = resolve_options('thumos14_i3d_16x4', crops='10',
                                         stride=4)
    assert (options.window, options.stride, options.crops) == (16, 4, '10')
    assert overrides == ['crops']  # stride 4 is the recipe's own
    options, overrides = resolve_options(None, window=8)
    assert (options.window, overrides) == (8, [])
    with pytest.raises(ValueError, match='no recipe named'):
        resolve_options('nope')


def test_defaults():
    options, _ = resolve_options()
    assert options.to_dict() == {
        'window': None, 'stride': None, 'align': 'start', 'tail': 'drop',
        'pad': 'edge', 'lookahead': 0, 'fps': None, 'crops': 'center'}
    assert numpy.array_equal(feature_windows(20, 9, 5)[-1],
                             numpy.arange(10, 19))
