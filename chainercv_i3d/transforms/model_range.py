import numpy

from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.transforms.spatial_crop import center_crop


def scale_to_model_range(clip, stream, preset=DEEPMIND_KINETICS):
    """Scales a clip to the range a model of ``preset`` was trained on.

    Args:
        clip (numpy.ndarray): ``(..., C, T, H, W)``: RGB in [0, 255]
            (``stream='rgb'``) or flow in pixels (``stream='flow'``).
        stream (str): ``'rgb'`` or ``'flow'``.
        preset (Preset): ``rgb_range`` and ``flow_bound``: RGB is mapped
            linearly from [0, 255] onto ``rgb_range`` (DeepMind's
            ``x / 127.5 - 1``), flow clipped to ``[-b, b]`` and divided by
            ``b = flow_bound``.

    Returns:
        numpy.ndarray: float32, the shape of ``clip``.
    """
    clip = numpy.asarray(clip, dtype=numpy.float32)
    if stream == 'rgb':
        low, high = preset.rgb_range
        if (low, high) == (-1.0, 1.0):
            return clip / numpy.float32(127.5) - 1  # DeepMind's expression
        return clip * numpy.float32((high - low) / 255.0) + numpy.float32(low)
    if stream == 'flow':
        bound = numpy.float32(preset.flow_bound)
        return numpy.clip(clip, -bound, bound) / bound
    raise ValueError("stream must be 'rgb' or 'flow', not {!r}".format(stream))


def to_model_range(clip, stream, crop_size=None, preset=DEEPMIND_KINETICS):
    """Center-crops a clip and scales it to the range I3D was trained on.

    Args:
        clip (numpy.ndarray): ``(C, T, H, W)``: RGB in [0, 255]
            (``stream='rgb'``) or flow in pixels (``stream='flow'``).
        stream (str): ``'rgb'`` or ``'flow'``.
        crop_size (int): Side of the square center crop (default the
            preset's).
        preset (Preset): The crop and ranges (see
            :func:`scale_to_model_range`).

    Returns:
        numpy.ndarray: ``(C, T, crop_size, crop_size)`` float32: by default
        RGB rescaled to [-1, 1], flow clipped to [-20, 20] and divided by 20.
    """
    return scale_to_model_range(
        center_crop(clip, crop_size or preset.crop_size), stream, preset)
