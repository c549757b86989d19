from fractions import Fraction

import numpy
import pytest

from chainercv_i3d.transforms import resample_frame_indices


def exact_indices(n_frames, src, dst):
    """The definition, in exact integer arithmetic on Fractions' terms."""
    num = src.numerator * dst.denominator  # src / dst = num / den
    den = src.denominator * dst.numerator
    n_out = max(1, n_frames * den // num)
    return [j * num // den for j in range(n_out)]


@pytest.mark.parametrize('fps', [25, 30, 29.97, 30000 / 1001, 12.5, 0.1])
def test_same_rate_is_identity(fps):
    numpy.testing.assert_array_equal(resample_frame_indices(17, fps, fps),
                                     numpy.arange(17))


def test_30_to_25_drops_every_sixth_frame():
    indices = resample_frame_indices(30, 30)  # dst_fps defaults to 25
    assert len(indices) == 25 and indices.dtype == numpy.int64
    assert set(range(30)) - set(indices.tolist()) == {5, 11, 17, 23, 29}
    numpy.testing.assert_array_equal(resample_frame_indices(6, 30, 25),
                                     [0, 1, 2, 3, 4])


def test_12_5_to_25_repeats_every_frame():
    numpy.testing.assert_array_equal(resample_frame_indices(4, 12.5, 25),
                                     [0, 0, 1, 1, 2, 2, 3, 3])


# (float given, the rational it stands for)
FPS = [(30, Fraction(30)), (29.97, Fraction(2997, 100)),
       (30000 / 1001, Fraction(30000, 1001)), (24, Fraction(24)),
       (15, Fraction(15)), (60, Fraction(60)), (25.1, Fraction(251, 10)),
       (7.5, Fraction(15, 2)), (1000, Fraction(1000)), (1, Fraction(1))]


@pytest.mark.parametrize('src_fps, src', FPS)
@pytest.mark.parametrize('dst_fps, dst', [(25, Fraction(25)),
                                          (29.97, Fraction(2997, 100))])
@pytest.mark.parametrize('n_frames', [1, 2, 7, 100, 301, 3003])
def test_matches_exact_definition(n_frames, src_fps, src, dst_fps, dst):
    indices = resample_frame_indices(n_frames, src_fps, dst_fps)
    assert indices.dtype == numpy.int64
    numpy.testing.assert_array_equal(
        indices, exact_indices(n_frames, src, dst))
    assert indices.min() >= 0 and indices.max() < n_frames
    assert numpy.all(numpy.diff(indices) >= 0)


def test_fraction_fps():
    numpy.testing.assert_array_equal(
        resample_frame_indices(4, Fraction(25, 2), Fraction(25)),
        [0, 0, 1, 1, 2, 2, 3, 3])


def test_at_least_one_frame():
    # 3 frames at 1000 fps last 3 ms: less than one frame at 25 fps.
    numpy.testing.assert_array_equal(resample_frame_indices(3, 1000), [0])


def test_no_frames():
    indices = resample_frame_indices(0, 30)
    assert indices.shape == (0,) and indices.dtype == numpy.int64


@pytest.mark.parametrize('src_fps, dst_fps', [
    (0, 25), (-30, 25), (30, 0), (30, -25)])
def test_non_positive_fps_raises(src_fps, dst_fps):
    with pytest.raises(ValueError, match='positive'):
        resample_frame_indices(10, src_fps, dst_fps)


def test_negative_n_frames_raises():
    with pytest.raises(ValueError, match='n_frames'):
        resample_frame_indices(-1, 30)
