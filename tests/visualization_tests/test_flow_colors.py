import numpy
import pytest

from chainercv_i3d.visualization import color_wheel
from chainercv_i3d.visualization import flow_magnitude_bound
from chainercv_i3d.visualization import flow_to_color
from chainercv_i3d.visualization import flow_wheel_legend


def colour_of(x, y, max_magnitude=1.0):
    return flow_to_color(numpy.array([[x, y]], numpy.float32),
                         max_magnitude)[0].astype(int)


def test_wheel_has_the_55_hues_of_baker_et_al_starting_at_red():
    wheel = color_wheel()
    assert wheel.shape == (55, 3)
    numpy.testing.assert_array_equal(wheel[0], [1, 0, 0])
    # 15 hues red -> yellow, 6 yellow -> green, 4 green -> cyan,
    # 11 cyan -> blue, 13 blue -> magenta, 6 magenta -> red.
    for index, primary in ((15, [1, 1, 0]), (21, [0, 1, 0]),
                           (25, [0, 1, 1]), (36, [0, 0, 1]),
                           (49, [1, 0, 1])):
        numpy.testing.assert_array_equal(wheel[index], primary)


@pytest.mark.parametrize('x, y, strongest, weakest', [
    (1, 0, 'r', 'b'),    # right: red
    (-1, 0, 'b', 'r'),   # left: cyan (blue and green, no red)
    (0, 1, 'r', 'b'),    # down (image y points down): orange-yellow
    (0, -1, 'b', 'g'),   # up: blue-violet
])
def test_directions_have_the_middlebury_hues(x, y, strongest, weakest):
    colour = dict(zip('rgb', colour_of(x, y)))
    assert colour[strongest] == max(colour.values())
    assert colour[weakest] == min(colour.values())
    assert colour[strongest] - colour[weakest] > 150


def test_left_and_up_are_cyan_and_violet_not_the_same():
    left, up = colour_of(-1, 0), colour_of(0, -1)
    assert left[2] > 150 and left[1] > 150 and left[0] < 50
    assert up[2] > 150 and up[1] < 50


def test_brightness_is_the_magnitude_and_zero_is_black():
    numpy.testing.assert_array_equal(colour_of(0, 0), [0, 0, 0])
    full, half = colour_of(2, 0, 2.0), colour_of(1, 0, 2.0)
    assert full.max() == 255
    assert abs(half.max() - 128) <= 1
    # Beyond the bound: clipped to full brightness, same hue.
    numpy.testing.assert_array_equal(colour_of(5, 0, 2.0), full)


def test_bad_flow_or_bound_is_refused():
    with pytest.raises(ValueError, match='x then y'):
        flow_to_color(numpy.zeros((4, 3)), 1.0)
    with pytest.raises(ValueError, match='positive'):
        flow_to_color(numpy.zeros((4, 2)), 0)


def test_magnitude_bound_is_a_high_percentile():
    flow = numpy.zeros((100, 2), numpy.float32)
    flow[:, 0] = numpy.arange(100)
    assert 97 < flow_magnitude_bound(flow) < 99
    assert flow_magnitude_bound(numpy.zeros((3, 2))) > 0


def test_legend_shows_the_wheel_round_its_centre():
    size = 100
    legend = flow_wheel_legend(size=size, max_magnitude=3.0)
    assert legend.dtype == numpy.uint8 and legend.shape[2] == 3
    # The wheel's row through its centre: red on the right end, cyan on
    # the left, dark in the middle.
    rows = numpy.where((legend[:, :, 0] > 200) & (legend[:, :, 1] < 60)
                       & (legend[:, :, 2] < 60))[0]
    centre_row = int(numpy.median(rows))
    line = legend[centre_row].astype(int)
    coloured = numpy.where(line.max(axis=1) - line.min(axis=1) > 100)[0]
    left_end, right_end = line[coloured[0]], line[coloured[-1]]
    assert right_end[0] > 200 and right_end[2] < 60
    assert left_end[0] < 60 and left_end[2] > 150
    middle = line[(coloured[0] + coloured[-1]) // 2]
    assert middle.max() < 40
