from fractions import Fraction

import numpy

from chainercv_i3d.presets import DEEPMIND_KINETICS

# Frame rates are rationals with small denominators (29.97 = 2997/100, NTSC's
# 30000/1001); the nearest such fraction to a float recovers them exactly.
_MAX_FPS_DENOMINATOR = 10 ** 6


def _as_fraction(fps):
    return Fraction(fps).limit_denominator(_MAX_FPS_DENOMINATOR)


def resample_frame_indices(n_frames, src_fps,
                           dst_fps=DEEPMIND_KINETICS.fps):
    """Chooses the source frames that make up a video at another frame rate.

    Resampling by frame index: output frame ``j`` shows source frame
    ``floor(j * src_fps / dst_fps)``, so frames are dropped (``src_fps >
    dst_fps``) or repeated (``src_fps < dst_fps``), never blended. The output
    has ``floor(n_frames * dst_fps / src_fps)`` frames, at least one when the
    source has any. Frame rates are read as the nearest fraction with a
    denominator of at most 10**6 and the floors are computed exactly, so
    ``j * 29.97 / 29.97`` is ``j``, never 10.999999.

    Example:
        >>> resample_frame_indices(6, 30, 25)
        array([0, 1, 2, 3, 4])
        >>> video = video[:, resample_frame_indices(video.shape[1], 30)]

    Args:
        n_frames (int): Number of source frames.
        src_fps (float): Frame rate of the source (a ``Fraction`` is exact).
        dst_fps (float): Frame rate wanted.

    Returns:
        numpy.ndarray: ``(T',)`` int64 indices into the source frames, non
        decreasing, each less than ``n_frames``; ``arange(n_frames)`` when
        the two rates are equal.

    Raises:
        ValueError: A frame rate is not positive or ``n_frames`` is negative.
    """
    if not (src_fps > 0 and dst_fps > 0):
        raise ValueError('frame rates must be positive, got src_fps={} and '
                         'dst_fps={}'.format(src_fps, dst_fps))
    if n_frames < 0:
        raise ValueError('n_frames must be non-negative, got {}'.format(
            n_frames))
    if n_frames == 0:
        return numpy.zeros(0, numpy.int64)
    ratio = _as_fraction(src_fps) / _as_fraction(dst_fps)
    n_out = max(1, n_frames * ratio.denominator // ratio.numerator)
    # Python integers: j * numerator cannot overflow.
    return numpy.array(
        [j * ratio.numerator // ratio.denominator for j in range(n_out)],
        numpy.int64)
