import numpy
import pytest

from chainercv_i3d.transforms import scale_short_side
from chainercv_i3d.transforms import short_side_shape


@pytest.mark.parametrize('height, width, size, expected', [
    (240, 320, 256, (256, 341)),  # 341.33
    (320, 240, 256, (341, 256)),
    (256, 256, 256, (256, 256)),
    (360, 640, 256, (256, 455)),  # 455.11
    (4, 6, 3, (3, 5)),  # 4.5 rounds up
    (480, 854, 224, (224, 399)),  # 398.53
    (100, 1000, 10, (10, 100)),
])
def test_short_side_shape(height, width, size, expected):
    assert short_side_shape(height, width, size) == expected


def test_short_side_shape_default_size_is_256():
    assert short_side_shape(480, 640) == (256, 341)


@pytest.mark.parametrize('args', [(0, 10), (10, -1), (10, 10, 0)])
def test_short_side_shape_rejects_non_positive(args):
    with pytest.raises(ValueError, match='positive'):
        short_side_shape(*args)


def ramp_video(height, width, dtype=numpy.float32):
    """(2, 2, H, W): channel 0 increases along x, channel 1 along y."""
    y, x = numpy.mgrid[:height, :width].astype(numpy.float64)
    return numpy.stack([numpy.stack([x, x + 100]),
                        numpy.stack([y, y + 100])]).astype(dtype)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_scale_short_side_is_bilinear_with_aligned_centers(dtype):
    out = scale_short_side(ramp_video(24, 32, dtype), 48)
    assert out.shape == (2, 2, 48, 64) and out.dtype == dtype
    # Bilinear of a linear ramp is the ramp at the source coordinate
    # (x' + 0.5) * scale - 0.5, away from the clamped borders.
    x = (numpy.arange(64) + 0.5) * (32 / 64) - 0.5
    y = (numpy.arange(48) + 0.5) * (24 / 48) - 0.5
    inner = slice(2, -2)
    numpy.testing.assert_allclose(out[0, 0, :, inner], numpy.broadcast_to(
        x[inner], (48, 60)), atol=1e-4)
    numpy.testing.assert_allclose(out[0, 1, :, inner] - 100,
                                  out[0, 0, :, inner], atol=1e-4)
    numpy.testing.assert_allclose(out[1, 0, inner].T, numpy.broadcast_to(
        y[inner], (64, 44)), atol=1e-4)


def test_scale_short_side_uint8():
    video = numpy.random.RandomState(0).randint(
        0, 256, (3, 4, 30, 40)).astype(numpy.uint8)
    out = scale_short_side(video, 15)
    assert out.shape == (3, 4, 15, 20) and out.dtype == numpy.uint8
    # Halving by bilinear with aligned centers averages 2x2 blocks.
    blocks = video.reshape(3, 4, 15, 2, 20, 2).mean(axis=(3, 5))
    assert numpy.abs(out - blocks).max() <= 1


@pytest.mark.parametrize('dtype', [numpy.int32, numpy.int64, numpy.float16])
def test_scale_short_side_dtypes_opencv_does_not_resize(dtype):
    video = ramp_video(20, 30, dtype)
    out = scale_short_side(video, 40)
    assert out.shape == (2, 2, 40, 60) and out.dtype == dtype
    expected = scale_short_side(ramp_video(20, 30, numpy.float64), 40)
    numpy.testing.assert_allclose(out, expected, atol=0.5)


def test_scale_short_side_keeps_channels_and_frames_apart():
    video = numpy.arange(6, dtype=numpy.float32).reshape(2, 3, 1, 1) \
        * numpy.ones((2, 3, 10, 12), numpy.float32)
    out = scale_short_side(video, 5)
    assert out.shape == (2, 3, 5, 6)
    numpy.testing.assert_array_equal(
        out, numpy.arange(6).reshape(2, 3, 1, 1) * numpy.ones((5, 6)))


def test_scale_short_side_portrait_and_non_contiguous():
    video = numpy.zeros((2, 40, 20, 3), numpy.float32).transpose(3, 0, 1, 2)
    assert scale_short_side(video, 10).shape == (3, 2, 20, 10)
    assert not video.flags.c_contiguous


def test_scale_short_side_rejects_frames():
    with pytest.raises(ValueError, match=r'\(C, T, H, W\)'):
        scale_short_side(numpy.zeros((3, 20, 20), numpy.float32))
