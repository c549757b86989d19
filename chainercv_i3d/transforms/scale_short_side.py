import cv2
import numpy

from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.transforms._check import check_video

# The dtypes cv2.resize takes with INTER_LINEAR; others go through float64.
_CV2_DTYPES = (numpy.uint8, numpy.uint16, numpy.int16, numpy.float32,
               numpy.float64)


def short_side_shape(height, width, size=DEEPMIND_KINETICS.short_side):
    """Returns the shape with short side ``size`` and the same aspect ratio.

    The long side is rounded to the nearest integer (halves up).

    Example:
        >>> short_side_shape(240, 320)
        (256, 341)

    Args:
        height (int): Height of the frames.
        width (int): Width of the frames.
        size (int): Length of the short side after scaling.

    Returns:
        tuple of ints: ``(new_height, new_width)``.

    Raises:
        ValueError: A length is not positive.
    """
    if not (height > 0 and width > 0 and size > 0):
        raise ValueError('height, width and size must be positive, got {}, {} '
                         'and {}'.format(height, width, size))
    short_side, long_side = sorted((int(height), int(width)))
    # Integer round-half-up of long_side * size / short_side: no float error.
    new_long = max(
        1, (2 * long_side * size + short_side) // (2 * short_side))
    if height <= width:
        return int(size), int(new_long)
    return int(new_long), int(size)


def scale_short_side(video, size=DEEPMIND_KINETICS.short_side):
    """Resizes every frame bilinearly so that its short side is ``size``.

    Uses ``cv2.resize`` with ``INTER_LINEAR`` (pixel centers aligned, as
    OpenCV always does), the new shape from :func:`short_side_shape`.

    Args:
        video (numpy.ndarray): ``(C, T, H, W)``, any dtype (RGB or flow).
        size (int): Length of the short side after scaling.

    Returns:
        numpy.ndarray: ``(C, T, H', W')`` of the dtype of ``video``. Integer
        dtypes that OpenCV does not resize are resized in float64 and rounded.
    """
    check_video(video)
    n_channel, n_frame, height, width = video.shape
    new_h, new_w = short_side_shape(height, width, size)
    frames = numpy.ascontiguousarray(video).reshape(
        n_channel * n_frame, height, width)
    work_dtype = video.dtype if video.dtype in _CV2_DTYPES else numpy.float64
    out = numpy.empty((len(frames), new_h, new_w), work_dtype)
    # One 2-d resize per channel and frame: cv2 takes at most 512 channels.
    for i, frame in enumerate(frames):
        out[i] = cv2.resize(frame.astype(work_dtype, copy=False),
                            (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    if work_dtype != video.dtype and video.dtype.kind in 'biu':
        out = numpy.rint(out)
    return out.astype(video.dtype, copy=False).reshape(
        n_channel, n_frame, new_h, new_w)
