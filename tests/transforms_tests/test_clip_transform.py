import numpy
import pytest

from chainercv_i3d.datasets.clip_samplers import sample_rng
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.transforms import ClipTransform
from chainercv_i3d.transforms import crop_windows
from chainercv_i3d.transforms import scale_to_model_range
from chainercv_i3d.transforms import to_model_range


def starts(windows):
    return [(y.start, x.start) for y, x in windows]


def test_three_crops_run_along_the_long_side_centered_on_the_short():
    assert starts(crop_windows(4, 10, 4, 'three')) == [(0, 0), (0, 3), (0, 6)]
    assert starts(crop_windows(10, 6, 4, 'three')) == [(0, 1), (3, 1), (6, 1)]
    assert starts(crop_windows(5, 9, 3, 'center')) == [(1, 3)]


def test_random_windows_stay_inside_and_follow_the_rng():
    seen = set()
    for i in range(100):
        (y, x), = starts(crop_windows(5, 7, 4, 'random', sample_rng(0, 0, i)))
        assert 0 <= y <= 1 and 0 <= x <= 3
        seen.add((y, x))
    assert len(seen) == 8
    with pytest.raises(ValueError, match='needs rng'):
        crop_windows(5, 7, 4, 'random')


@pytest.mark.parametrize('height,width,mode,message', [
    (3, 9, 'center', 'cannot crop 4x4 from frames of 3x9'),
    (9, 9, 'five', 'crop mode must be one of'),
])
def test_bad_windows_are_refused(height, width, mode, message):
    with pytest.raises(ValueError, match=message):
        crop_windows(height, width, 4, mode)


def views_of(shape, seed=0):
    return numpy.random.RandomState(seed).uniform(0, 255, shape).astype(
        numpy.float32)


def test_views_times_crops_with_rgb_and_flow_cut_alike():
    rgb = views_of((2, 3, 5, 6, 10))
    flow = rgb[:, :2] / 10 - 12  # flow cut from the same pixels
    out = ClipTransform(DEEPMIND_KINETICS, 'three', crop_size=4)(
        {'rgb': rgb, 'flow': flow})
    assert out['rgb'].shape == (6, 3, 5, 4, 4)
    assert out['flow'].shape == (6, 2, 5, 4, 4)
    # Views are clip-major: view 4 is clip 1, window 1 (x from 3).
    expected = rgb[1, :, :, 1:5, 3:7] / 127.5 - 1
    numpy.testing.assert_allclose(out['rgb'][4], expected, rtol=1e-6)
    expected_flow = numpy.clip(flow[1, :, :, 1:5, 3:7], -20, 20) / 20
    numpy.testing.assert_allclose(out['flow'][4], expected_flow, rtol=1e-6)


def test_random_flip_mirrors_both_streams_and_negates_flow_x():
    rgb = views_of((1, 3, 2, 4, 4))
    flow = views_of((1, 2, 2, 4, 4), seed=1) / 20 - 6
    transform = ClipTransform(DEEPMIND_KINETICS, 'center', random_flip=True,
                              crop_size=4)
    flipped = {}
    for i in range(20):
        out = transform({'rgb': rgb, 'flow': flow}, sample_rng(0, 0, i))
        flips = numpy.allclose(out['rgb'][0], rgb[0, :, :, :, ::-1] / 127.5
                               - 1)
        flipped[flips] = True
        x, y = flow[0, 0, :, :, ::-1], flow[0, 1, :, :, ::-1]
        if flips:
            numpy.testing.assert_allclose(out['flow'][0, 0], -x / 20, 1e-6)
            numpy.testing.assert_allclose(out['flow'][0, 1], y / 20, 1e-6)
        else:
            numpy.testing.assert_allclose(out['flow'][0], flow[0] / 20, 1e-6)
    assert flipped == {True: True, False: True}


def test_the_presets_ranges_are_used():
    preset = DEEPMIND_KINETICS.replace(rgb_range=(0.0, 1.0), flow_bound=10.0)
    rgb = numpy.array([0, 51, 255], numpy.float32)
    numpy.testing.assert_allclose(
        scale_to_model_range(rgb, 'rgb', preset), [0, 0.2, 1], rtol=1e-6)
    flow = numpy.array([-30, -5, 12], numpy.float32)
    numpy.testing.assert_allclose(
        scale_to_model_range(flow, 'flow', preset), [-1, -0.5, 1])
    # DeepMind's expression, bit for bit, by default.
    video = views_of((3, 2, 5, 5))
    assert numpy.array_equal(to_model_range(video, 'rgb', 5),
                             video / numpy.float32(127.5) - 1)
