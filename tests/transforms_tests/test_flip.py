import numpy
import pytest

from chainercv_i3d.flow import dequantize_flow
from chainercv_i3d.flow import quantize_flow
from chainercv_i3d.transforms import flip
from chainercv_i3d.transforms import flip_label_map
from chainercv_i3d.transforms import random_flip


def random_video(shape, dtype=numpy.float32, seed=0):
    rng = numpy.random.RandomState(seed)
    return rng.uniform(-5, 5, shape).astype(dtype)


def test_flip_rgb_mirrors_columns():
    video = numpy.arange(24, dtype=numpy.uint8).reshape(3, 2, 1, 4)
    out = flip(video, x_flip=True)
    assert out.dtype == numpy.uint8
    numpy.testing.assert_array_equal(out[0, 0, 0], [3, 2, 1, 0])
    numpy.testing.assert_array_equal(out[2, 1, 0], [23, 22, 21, 20])


def test_no_flip_returns_an_equal_copy():
    video = random_video((2, 3, 4, 5))
    out = flip(video, is_flow=True)
    numpy.testing.assert_array_equal(out, video)
    out[...] = 0
    assert numpy.any(video != 0)


def test_flipped_flow_negates_x_only():
    flow = random_video((2, 3, 4, 5))
    out = flip(flow, x_flip=True, is_flow=True)
    numpy.testing.assert_array_equal(out[0], -flow[0, :, :, ::-1])
    numpy.testing.assert_array_equal(out[1], flow[1, :, :, ::-1])


def test_flipped_flow_is_the_motion_of_the_mirrored_frames():
    # A pixel p moves to p + f(p); in the mirror M(x, y) = (W - 1 - x, y),
    # M(p) moves to M(p + f(p)): the flipped flow at M(p) is the difference.
    height, width = 4, 6
    flow = random_video((2, 1, height, width))
    out = flip(flow, x_flip=True, is_flow=True)
    for y in range(height):
        for x in range(width):
            u, v = flow[:, 0, y, x]
            mx = width - 1 - x
            moved_mx = width - 1 - (x + u)
            numpy.testing.assert_allclose(out[:, 0, y, mx],
                                          [moved_mx - mx, v], atol=1e-6)


def test_flipped_quantized_flow_dequantizes_to_negated_x():
    flow = random_video((2, 3, 4, 5)) * 5
    q = quantize_flow(flow)
    out = flip(q, x_flip=True, is_flow=True)
    assert out.dtype == numpy.uint8
    expected = flip(dequantize_flow(q), x_flip=True, is_flow=True)
    numpy.testing.assert_allclose(dequantize_flow(out), expected, atol=1e-5)


def test_flip_flow_needs_two_channels():
    with pytest.raises(ValueError, match=r'\(3, 2, 4, 5\)'):
        flip(random_video((3, 2, 4, 5)), x_flip=True, is_flow=True)


def test_random_flip_flips_half_the_time_as_param_says():
    video = random_video((3, 2, 4, 5))
    flips = []
    for _ in range(100):
        out, param = random_flip(video, x_random=True, return_param=True)
        numpy.testing.assert_array_equal(out, flip(video, param['x_flip']))
        flips.append(param['x_flip'])
    assert 20 < sum(flips) < 80


def test_random_flip_without_x_random_never_flips():
    video = random_video((3, 2, 4, 5))
    for _ in range(20):
        out, param = random_flip(video, return_param=True)
        assert param == {'x_flip': False}
        numpy.testing.assert_array_equal(out, video)
    assert isinstance(random_flip(video), numpy.ndarray)


def test_return_param_flips_rgb_and_flow_identically():
    rgb = random_video((3, 2, 4, 5))
    flow = random_video((2, 2, 4, 5), seed=1)
    for _ in range(10):
        rgb_out, param = random_flip(rgb, x_random=True, return_param=True)
        flow_out = flip(flow, param['x_flip'], is_flow=True)
        if param['x_flip']:
            numpy.testing.assert_array_equal(rgb_out, rgb[..., ::-1])
            numpy.testing.assert_array_equal(flow_out[0], -flow[0, ..., ::-1])
        else:
            numpy.testing.assert_array_equal(rgb_out, rgb)
            numpy.testing.assert_array_equal(flow_out, flow)


def test_random_flip_of_flow_negates_x():
    flow = random_video((2, 2, 4, 5))
    for _ in range(10):
        out, param = random_flip(flow, x_random=True, return_param=True,
                                 is_flow=True)
        sign = -1 if param['x_flip'] else 1
        cols = slice(None, None, -1 if param['x_flip'] else 1)
        numpy.testing.assert_array_equal(out[0], sign * flow[0, ..., cols])
        numpy.testing.assert_array_equal(out[1], flow[1, ..., cols])


def test_flip_label_map_pairs_mirrored_class_names():
    names = ['Pulling something from left to right',
             'Pulling something from right to left',
             'Pushing something from left to right',
             'Pushing something from right to left',
             'Turning the camera left while filming something',
             'Turning the camera right while filming something',
             'Turning the camera upwards while filming something',
             'Moving something closer to something', 'leftover pizza']
    assert flip_label_map(names) == {0: 1, 1: 0, 2: 3, 3: 2, 4: 5, 5: 4}
    assert flip_label_map(['walking left', 'waving']) == {}  # no twin
    assert flip_label_map([]) == {}
