"""Decoding videos with OpenCV."""

import math
import os


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
