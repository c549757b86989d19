import numpy
import pytest

from chainercv_i3d.datasets.clip_samplers import sample_rng
from chainercv_i3d.transforms import center_crop
from chainercv_i3d.transforms import random_crop


def coordinate_videos(n_frame, height, width):
    """RGB and flow whose channels hold each pixel's (y, x) and (x, y)."""
    y, x = numpy.mgrid[:height, :width]
    t = numpy.ones((n_frame, 1, 1))
    rgb = numpy.stack([y * t, x * t, 0 * y * t]).astype(numpy.uint8)
    flow = numpy.stack([x * t, y * t]).astype(numpy.float32)
    return rgb, flow


def test_center_crop():
    rgb, _ = coordinate_videos(2, 7, 10)
    out, param = center_crop(rgb, (3, 4), return_param=True)
    assert out.shape == (3, 2, 3, 4) and out.dtype == numpy.uint8
    # Rows 2..4 of 7 and columns 3..6 of 10.
    numpy.testing.assert_array_equal(out[0, :, :, 0], [[2, 3, 4]] * 2)
    numpy.testing.assert_array_equal(out[1, :, 0, :], [[3, 4, 5, 6]] * 2)
    assert param == {'y_slice': slice(2, 5), 'x_slice': slice(3, 7)}


def test_center_crop_int_size_and_no_param():
    rgb, _ = coordinate_videos(2, 7, 10)
    out = center_crop(rgb, numpy.int64(5))
    assert isinstance(out, numpy.ndarray) and out.shape == (3, 2, 5, 5)
    numpy.testing.assert_array_equal(out[0, 0, :, 0], [1, 2, 3, 4, 5])


@pytest.mark.parametrize('crop', [center_crop, random_crop])
def test_crop_returns_a_new_array(crop):
    rgb, _ = coordinate_videos(2, 7, 10)
    out = crop(rgb, 4)
    out[...] = 99
    assert rgb.max() < 99


@pytest.mark.parametrize('crop', [center_crop, random_crop])
@pytest.mark.parametrize('size', [8, (8, 5), (3, 11)])
def test_crop_larger_than_video_raises_with_shapes(crop, size):
    rgb, _ = coordinate_videos(2, 7, 10)
    with pytest.raises(ValueError, match=r'\(3, 2, 7, 10\)'):
        crop(rgb, size)


def test_random_crop_covers_all_offsets_and_matches_param():
    rgb, _ = coordinate_videos(2, 7, 10)
    offsets = set()
    for _ in range(300):
        out, param = random_crop(rgb, (5, 7), return_param=True)
        assert out.shape == (3, 2, 5, 7)
        y0, x0 = param['y_slice'].start, param['x_slice'].start
        assert param['y_slice'].stop == y0 + 5
        assert param['x_slice'].stop == x0 + 7
        # The window's own coordinates say where it came from.
        assert out[0, 0, 0, 0] == y0 and out[1, 0, 0, 0] == x0
        offsets.add((y0, x0))
    assert offsets == {(y, x) for y in range(3) for x in range(4)}


def test_return_param_crops_rgb_and_flow_identically():
    rgb, flow = coordinate_videos(3, 12, 16)
    for crop in (center_crop, random_crop):
        rgb_crop, param = crop(rgb, (6, 9), return_param=True)
        flow_crop = flow[:, :, param['y_slice'], param['x_slice']]
        numpy.testing.assert_array_equal(rgb_crop[0], flow_crop[1])  # y
        numpy.testing.assert_array_equal(rgb_crop[1], flow_crop[0])  # x


def test_random_crop_follows_the_rng_given():
    video = numpy.arange(2 * 3 * 9 * 11).reshape(2, 3, 9, 11)
    a, pa = random_crop(video, 4, return_param=True, rng=sample_rng(0, 0, 1))
    b, pb = random_crop(video, 4, return_param=True, rng=sample_rng(0, 0, 1))
    assert pa == pb and numpy.array_equal(a, b)
    starts = {random_crop(video, 4, return_param=True,
                          rng=sample_rng(0, 0, i))[1]['x_slice'].start
              for i in range(100)}
    assert starts == set(range(8))
