import numbers

import numpy

from chainercv_i3d.transforms._check import check_video


def _crop_size(video, size):
    # An int is a square crop; the video must be at least as large.
    check_video(video)
    if isinstance(size, numbers.Integral):
        size = (size, size)
    crop_h, crop_w = size
    height, width = video.shape[2:]
    if crop_h > height or crop_w > width:
        raise ValueError('cannot crop {}x{} from a video of shape {} (C, T, '
                         'H, W): it is smaller'.format(
                             crop_h, crop_w, video.shape))
    return crop_h, crop_w


def _crop(video, y_offset, x_offset, crop_h, crop_w, return_param):
    y_slice = slice(y_offset, y_offset + crop_h)
    x_slice = slice(x_offset, x_offset + crop_w)
    video = video[:, :, y_slice, x_slice].copy()
    if return_param:
        return video, {'y_slice': y_slice, 'x_slice': x_slice}
    return video


def center_crop(video, size, return_param=False):
    """Crops the center of every frame.

    Example:
        >>> rgb, param = center_crop(rgb, 224, return_param=True)
        >>> flow = flow[:, :, param['y_slice'], param['x_slice']]

    Args:
        video (numpy.ndarray): ``(C, T, H, W)``, any dtype.
        size (int or tuple of ints): ``(h, w)`` of the crop; an int for a
            square.
        return_param (bool): Also return the slices taken.

    Returns:
        numpy.ndarray or (numpy.ndarray, dict): ``(C, T, h, w)``, a new array
        of the dtype of ``video``; with ``return_param``, also a dict with
        ``y_slice`` and ``x_slice`` (``slice``), the crop in ``video``.

    Raises:
        ValueError: The video is smaller than the crop.
    """
    crop_h, crop_w = _crop_size(video, size)
    height, width = video.shape[2:]
    return _crop(video, (height - crop_h) // 2, (width - crop_w) // 2,
                 crop_h, crop_w, return_param)


def random_crop(video, size, return_param=False, rng=None):
    """Crops the same uniformly random window of every frame.

    Args:
        video (numpy.ndarray): ``(C, T, H, W)``, any dtype.
        size (int or tuple of ints): ``(h, w)`` of the crop; an int for a
            square.
        return_param (bool): Also return the slices taken, to crop another
            stream (e.g. flow) identically.
        rng (numpy.random.Generator): The randomness (the loader's
            per-sample :func:`~chainercv_i3d.datasets.sample_rng`); default
            a generator seeded from the OS, so that forked worker processes
            never repeat each other's draws.

    Returns:
        numpy.ndarray or (numpy.ndarray, dict): ``(C, T, h, w)``, a new array
        of the dtype of ``video``; with ``return_param``, also a dict with
        ``y_slice`` and ``x_slice`` (``slice``), the crop in ``video``.

    Raises:
        ValueError: The video is smaller than the crop.
    """
    crop_h, crop_w = _crop_size(video, size)
    height, width = video.shape[2:]
    rng = numpy.random.default_rng() if rng is None else rng
    return _crop(video, int(rng.integers(0, height - crop_h + 1)),
                 int(rng.integers(0, width - crop_w + 1)), crop_h, crop_w,
                 return_param)


CROP_MODES = ('center', 'three', 'random')


def crop_windows(height, width, size, mode='center', rng=None):
    """The square windows a spatial sampling mode takes from frames.

    ``'center'``: the center; ``'three'``: three windows along the long side
    (its start, center and end), centered on the short side, as in the
    three-crop testing of non-local networks and SlowFast; ``'random'``: one
    uniformly random window (training).

    Args:
        height (int): Frame height.
        width (int): Frame width.
        size (int): Side of the crop.
        mode (str): One of :data:`CROP_MODES`.
        rng (numpy.random.Generator): For ``'random'``.

    Returns:
        list of tuple: ``(y_slice, x_slice)`` per window.

    Raises:
        ValueError: The frames are smaller than the crop, the mode is
            unknown, or ``'random'`` has no ``rng``.
    """
    if size > height or size > width:
        raise ValueError('cannot crop {0}x{0} from frames of {1}x{2} (H x W): '
                         'they are smaller'.format(size, height, width))
    if mode == 'center':
        offsets = [((height - size) // 2, (width - size) // 2)]
    elif mode == 'three':
        long_extra = max(height, width) - size
        along = [0, long_extra // 2, long_extra]
        if height > width:
            offsets = [(y, (width - size) // 2) for y in along]
        else:
            offsets = [((height - size) // 2, x) for x in along]
    elif mode == 'random':
        if rng is None:
            raise ValueError("crop mode 'random' needs rng, a "
                             'numpy.random.Generator')
        offsets = [(int(rng.integers(0, height - size + 1)),
                    int(rng.integers(0, width - size + 1)))]
    else:
        raise ValueError('crop mode must be one of {}, not {!r}'.format(
            ', '.join(CROP_MODES), mode))
    return [(slice(y, y + size), slice(x, x + size)) for y, x in offsets]
