"""Decoding videos with OpenCV: the one decoding path of every stage."""

import math
import os

from chainercv_i3d.transforms.resample_frame_indices import \
    resample_frame_indices
from chainercv_i3d.transforms.scale_short_side import short_side_shape


class VideoReadError(ValueError):
    """A video that cannot be decoded; the message says why."""


def read_video(path, transform_frame=None):
    """Decodes every frame of a video file.

    Args:
        path (str): The video file.
        transform_frame (callable): Applied to each decoded ``(H, W, 3)``
            uint8 RGB frame as it is read (e.g. a resize), so that the whole
            video never sits in memory at its original size.

    Returns:
        tuple: ``(frames, fps)``: a list of the (transformed) frames in
        order, and the frame rate the container declares.

    Raises:
        VideoReadError: The file is missing, empty, not a video, has no
            frame, or declares no usable frame rate.
    """
    import cv2  # OpenCV is needed only to decode
    if not os.path.isfile(path):
        raise VideoReadError('no such file: {}'.format(path))
    if os.path.getsize(path) == 0:
        raise VideoReadError('empty file (0 bytes)')
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise VideoReadError('OpenCV cannot open it as a video')
        fps = capture.get(cv2.CAP_PROP_FPS)
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            frames.append(frame if transform_frame is None
                          else transform_frame(frame))
    finally:
        capture.release()
    if not frames:
        raise VideoReadError('no frame could be decoded')
    if not fps or not math.isfinite(fps) or fps <= 0:
        raise VideoReadError('the container declares no frame rate '
                             '({!r})'.format(fps))
    return frames, float(fps)


def decode_and_resample(path, fps, short_side):
    """Decodes ``path`` into RGB frames at ``fps`` with the short side scaled.

    Frames are resized as they are decoded (bilinear, the short side to
    ``short_side``, the aspect ratio kept: :func:`short_side_shape`), then
    resampled by frame index (:func:`resample_frame_indices`). Resizing
    before picking frames gives the same frames (the two commute) and keeps
    memory at the output size. Every stage (precompute, the predictor,
    datasets of video files) decodes through this function.

    Example:
        >>> frames, source_fps = decode_and_resample('a.mp4', 25.0, 256)

    Args:
        path (str): The video file.
        fps (float): Frame rate to resample to; ``None`` keeps the file's
            own rate (every decoded frame).
        short_side (int): Length of the short side after resizing.

    Returns:
        tuple: ``(frames, source_fps)``: a list of ``(H, W, 3)`` uint8 RGB
        frames, and the frame rate the container declares.

    Raises:
        VideoReadError: The file cannot be decoded (see :func:`read_video`).
        ValueError: ``fps`` or ``short_side`` is not positive.
    """
    import cv2  # OpenCV is needed only to decode
    if fps is not None and not fps > 0:
        raise ValueError('fps must be positive or None (the file\'s own '
                         'rate), not {!r}'.format(fps))
    if not short_side > 0:
        raise ValueError('short_side must be positive, not {!r}'.format(
            short_side))

    def resize(frame):
        height, width = short_side_shape(frame.shape[0], frame.shape[1],
                                         short_side)
        return cv2.resize(frame, (width, height),
                          interpolation=cv2.INTER_LINEAR)
    frames, source_fps = read_video(path, transform_frame=resize)
    if fps is None:
        return frames, source_fps
    indices = resample_frame_indices(len(frames), source_fps, fps)
    return [frames[i] for i in indices], source_fps


def stop_opencv_threads():
    """Puts OpenCV on one thread in this process, stopping its thread pool.

    Call it before forking worker processes: a child forked while OpenCV's
    pool is running inherits the pool without its threads, and hangs for
    ever the first time OpenCV touches it (``cv2.setNumThreads`` waits in
    ``pthread_cond_destroy``; measured with opencv-contrib 4.11 after a
    threaded ``cv2.resize`` in the parent). The parent of worker processes
    leaves OpenCV's work to them.
    """
    import cv2  # OpenCV is needed only to decode
    cv2.setNumThreads(1)
