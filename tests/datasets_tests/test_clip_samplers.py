import numpy
import pytest

from chainercv_i3d.datasets.clip_samplers import AllFrames
from chainercv_i3d.datasets.clip_samplers import FirstFrames
from chainercv_i3d.datasets.clip_samplers import flow_frame_indices
from chainercv_i3d.datasets.clip_samplers import make_clip_sampler
from chainercv_i3d.datasets.clip_samplers import RandomClip
from chainercv_i3d.datasets.clip_samplers import sample_rng
from chainercv_i3d.datasets.clip_samplers import Segments
from chainercv_i3d.datasets.clip_samplers import UniformClips
from chainercv_i3d.presets import DEEPMIND_KINETICS


def test_first_frames_takes_the_start_and_loops_a_short_video():
    assert FirstFrames(4)(10)[0].tolist() == [0, 1, 2, 3]
    assert FirstFrames(7)(3)[0].tolist() == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError, match='shorter than a clip of 7'):
        FirstFrames(7, loop=False)(3)


def test_uniform_clips_span_the_video_from_first_to_last_frame():
    views = UniformClips(3, 4)(20)
    assert [v[0] for v in views] == [0, 8, 16]
    assert views[-1][-1] == 19  # the last clip ends at the last frame
    assert all(numpy.array_equal(numpy.diff(v), [1, 1, 1]) for v in views)


def test_one_uniform_clip_is_deepminds_first_frames_clip():
    for n_frames in (5, 251, 300):
        numpy.testing.assert_array_equal(UniformClips(1, 251)(n_frames)[0],
                                         FirstFrames(251)(n_frames)[0])


def test_uniform_clips_of_a_short_video_are_its_looped_frames():
    views = UniformClips(2, 5)(3)
    assert [v.tolist() for v in views] == [[0, 1, 2, 0, 1]] * 2


def test_random_clip_is_inside_the_video_and_a_function_of_the_rng():
    starts = {int(RandomClip(4)(10, sample_rng(0, 0, i))[0][0])
              for i in range(200)}
    assert starts == set(range(7))  # every start 0..6 occurs, none beyond
    a = RandomClip(4)(10, sample_rng(3, 1, 5))[0]
    b = RandomClip(4)(10, sample_rng(3, 1, 5))[0]
    numpy.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match='pass rng'):
        RandomClip(4)(10)


def test_segments_cover_the_video_in_order_with_middle_frames_in_test():
    view = Segments(4)(40)[0]
    assert view.tolist() == [4, 14, 24, 34]
    assert Segments(4)(40)[0].tolist() == view.tolist()  # deterministic


def test_random_segments_draw_one_frame_inside_each_segment():
    for i in range(50):
        view = Segments(4, random=True)(40, sample_rng(0, 0, i))[0]
        assert [f // 10 for f in view] == [0, 1, 2, 3]


def test_segments_of_a_short_video_repeat_frames_in_order():
    view = Segments(5)(3)[0]
    assert view.tolist() == sorted(view.tolist())
    assert set(view.tolist()) == {0, 1, 2}
    random_view = Segments(5, random=True)(3, sample_rng(0, 0, 0))[0]
    assert len(random_view) == 5 and set(random_view) <= {0, 1, 2}


def test_all_frames():
    assert AllFrames()(4)[0].tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match='0 frames'):
        AllFrames()(0)


@pytest.mark.parametrize('sampler', [
    FirstFrames(9), UniformClips(2, 9), RandomClip(8), Segments(3, True),
    AllFrames()])
def test_described_samplers_are_rebuilt_equal(sampler):
    rebuilt = make_clip_sampler(sampler.describe())
    assert rebuilt.describe() == sampler.describe()
    assert repr(rebuilt) == repr(sampler)


def test_the_deepmind_presets_eval_sampler_is_first_251_frames():
    sampler = make_clip_sampler(DEEPMIND_KINETICS.eval_sampler)
    assert isinstance(sampler, FirstFrames) and sampler.n_frame == 251


@pytest.mark.parametrize('description,message', [
    ({'name': 'nope'}, "unknown clip sampler 'nope'"),
    ({'name': 'uniform', 'n_frame': 4}, "clip sampler 'uniform'"),
    ({'name': 'first_frames', 'n_frame': 0}, 'n_frame must be a positive'),
])
def test_bad_descriptions_are_refused(description, message):
    with pytest.raises(ValueError, match=message):
        make_clip_sampler(description)


def test_sample_rngs_differ_by_index_epoch_and_seed():
    draws = {tuple(sample_rng(s, e, i).integers(0, 2 ** 31, 4))
             for s in range(2) for e in range(2) for i in range(3)}
    assert len(draws) == 12


def test_the_last_frame_reuses_the_last_flow():
    assert flow_frame_indices([0, 3, 4, 4], 4).tolist() == [0, 3, 3, 3]


def test_segments_twice_sampling_gives_two_views_inside_each_segment():
    sampler = Segments(4, num_clips=2)
    assert sampler.n_views == 2
    first, second = sampler(40)
    assert first.tolist() == [2, 12, 22, 32]
    assert second.tolist() == [6, 16, 26, 36]
    assert sampler.describe() == {'name': 'segments', 'n_segment': 4,
                                  'random': False, 'num_clips': 2}
    assert make_clip_sampler(sampler.describe()).n_views == 2


def test_twice_sampling_of_a_short_video_repeats_frames_in_order():
    for view in Segments(8, num_clips=2)(3):
        assert view.tolist() == sorted(view.tolist())
        assert set(view.tolist()) <= {0, 1, 2}
    with pytest.raises(ValueError, match='one view'):
        Segments(8, random=True, num_clips=2)
