"""Reading clips in the formats of DeepMind's ``kinetics-i3d`` samples."""

import os

import numpy

from chainercv_i3d.transforms.model_range import scale_to_model_range


def read_sample_clip(path):
    """Reads a sample clip into a model-ready RGB batch.

    Two formats are accepted:

    * ``.npy``: DeepMind's sample format, ``(1, T, H, W, C)`` float32
      already in model range (RGB in [-1, 1], flow in [-1, 1]);
    * ``.gif`` (or any animated image Pillow reads): RGB frames, rescaled
      from [0, 255] to [-1, 1] as ``x / 127.5 - 1``.

    Args:
        path (str): The clip's path.

    Returns:
        numpy.ndarray: ``(1, C, T, H, W)`` float32, NCTHW.

    Raises:
        ValueError: The file is missing or not a clip in these formats.
    """
    if not os.path.isfile(path):
        raise ValueError('no such clip: {}'.format(path))
    if path.endswith('.npy'):
        try:
            clip = numpy.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError('{} is not a readable .npy ({})'.format(path, e))
        if not isinstance(clip, numpy.ndarray):  # an .npz named .npy
            clip.close()
            raise ValueError('{} holds several arrays; a sample clip is one '
                             '(1, T, H, W, C) array'.format(path))
        if clip.ndim != 5 or clip.shape[0] != 1 or clip.shape[4] not in (2, 3):
            raise ValueError(
                '{} has shape {}; a sample clip is (1, T, H, W, C) with C = 3 '
                '(RGB) or 2 (flow)'.format(path, clip.shape))
        return numpy.ascontiguousarray(
            clip.astype(numpy.float32).transpose(0, 4, 1, 2, 3))
    frames = read_animated_image(
        path, '{} is neither a .npy clip nor an image sequence Pillow can '
        'read ({})')
    video = scale_to_model_range(frames, 'rgb')
    return numpy.ascontiguousarray(video.transpose(3, 0, 1, 2)[None])


def read_animated_image(path, unreadable='{} cannot be read as an image '
                        'sequence ({})'):
    """Every frame of a GIF (or another image sequence Pillow reads).

    Args:
        path (str): The file.
        unreadable (str): The error message, formatted with the path and
            Pillow's error.

    Returns:
        numpy.ndarray: ``(T, H, W, 3)`` uint8 RGB.

    Raises:
        ValueError: Pillow cannot read ``path``.
    """
    from PIL import Image
    from PIL import ImageSequence
    from PIL import UnidentifiedImageError
    try:
        with Image.open(path) as image:
            return numpy.stack([numpy.asarray(frame.convert('RGB'))
                                for frame in ImageSequence.Iterator(image)])
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(unreadable.format(path, e))
