import numpy
import pytest

from chainercv_i3d.transforms.multi_crop import crop_boxes
from chainercv_i3d.transforms.multi_crop import multi_crop


def box(y, x, size, mirrored=False):
    return (slice(y, y + size), slice(x, x + size), mirrored)


def test_five_crops_of_256x340():
    # torchvision five_crop order: tl, tr, bl, br, center.
    assert crop_boxes(256, 340, 224, '5') == [
        box(0, 0, 224), box(0, 116, 224), box(32, 0, 224),
        box(32, 116, 224), box(16, 58, 224)]


def test_ten_crops_are_the_five_then_the_five_of_the_mirror():
    boxes = crop_boxes(256, 340, 224, '10')
    assert boxes[:5] == crop_boxes(256, 340, 224, '5')
    assert boxes[5:] == [(y, x, True) for y, x, _ in boxes[:5]]


def test_three_crops_along_the_long_side():
    assert crop_boxes(256, 340, 224, '3') == [
        box(16, 0, 224), box(16, 58, 224), box(16, 116, 224)]
    assert crop_boxes(340, 256, 224, '3') == [
        box(0, 16, 224), box(58, 16, 224), box(116, 16, 224)]
    assert crop_boxes(256, 340, 224, 'center') == [box(16, 58, 224)]


def test_bad_sets_and_sizes():
    with pytest.raises(ValueError, match='crops must be one of'):
        crop_boxes(256, 340, 224, '4')
    with pytest.raises(ValueError, match='smaller'):
        crop_boxes(200, 340, 224, '5')


def test_mirrored_flow_crops_negate_x():
    rng = numpy.random.default_rng(0)
    flow = rng.standard_normal((2, 3, 6, 8)).astype(numpy.float32)
    boxes = crop_boxes(6, 8, 4, '10')
    crops = multi_crop(flow, boxes, is_flow=True)
    assert crops.shape == (10, 2, 3, 4, 4)
    # Crop 5: the top-left window of the mirrored frames = the top-right
    # window of the frames, mirrored, its x motion reversed.
    top_right = flow[:, :, 0:4, 4:8]
    numpy.testing.assert_array_equal(crops[1], top_right)
    numpy.testing.assert_array_equal(crops[5][0], -top_right[0, :, :, ::-1])
    numpy.testing.assert_array_equal(crops[5][1], top_right[1, :, :, ::-1])
    # RGB is mirrored without negation.
    rgb = rng.uniform(0, 255, (3, 2, 6, 8)).astype(numpy.float32)
    crops = multi_crop(rgb, boxes)
    numpy.testing.assert_array_equal(crops[9], crops[4][:, :, :, ::-1])
