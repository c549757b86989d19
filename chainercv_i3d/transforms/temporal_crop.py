import numpy

from chainercv_i3d.transforms._check import check_video


def temporal_crop(video, n_frame, start=0, loop=True, return_param=False):
    """Takes frames ``[start, start + n_frame)``, looping a short video.

    With ``loop``, the video is repeated from its start as often as needed,
    so frame ``start + i`` is source frame ``(start + i) % T``. DeepMind's
    evaluation takes the first 251 frames, the clip repeated from its start
    when shorter: ``temporal_crop(video, 251)``.

    Example:
        >>> temporal_crop(video, 5)  # a video of T = 3 frames
        ... # has frames 0, 1, 2, 0, 1

    Args:
        video (numpy.ndarray): ``(C, T, H, W)``, any dtype.
        n_frame (int): Number of frames of the clip.
        start (int): First frame, ``0 <= start < T``.
        loop (bool): Repeat the video when ``start + n_frame > T``; if False
            that is an error.
        return_param (bool): Also return the frames taken, to crop another
            stream identically.

    Returns:
        numpy.ndarray or (numpy.ndarray, dict): ``(C, n_frame, H, W)``, a new
        array of the dtype of ``video``; with ``return_param``, also a dict
        with ``t_indices``, the ``(n_frame,)`` int64 source frame of each
        frame of the clip.

    Raises:
        ValueError: ``start`` is outside the video, ``n_frame`` is not
            positive, or the video is too short and ``loop`` is False.
    """
    check_video(video)
    length = video.shape[1]
    if n_frame < 1:
        raise ValueError('n_frame must be positive, got {}'.format(n_frame))
    if not 0 <= start < length:
        raise ValueError('start {} is outside a video of shape {} (C, T, H, '
                         'W)'.format(start, video.shape))
    if start + n_frame > length and not loop:
        raise ValueError(
            'cannot take frames [{}, {}) from a video of shape {} (C, T, H, '
            'W); pass loop=True to repeat it'.format(
                start, start + n_frame, video.shape))
    t_indices = (start + numpy.arange(n_frame, dtype=numpy.int64)) % length
    video = video[:, t_indices]  # fancy indexing: always a new array
    if return_param:
        return video, {'t_indices': t_indices}
    return video
