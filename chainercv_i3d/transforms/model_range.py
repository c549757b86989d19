import numpy

from chainercv_i3d.transforms.spatial_crop import center_crop


def to_model_range(clip, stream, crop_size=224):
    """Center-crops a clip and scales it to the range I3D was trained on.

    Args:
        clip (numpy.ndarray): ``(C, T, H, W)``: RGB in [0, 255]
            (``stream='rgb'``) or flow in pixels (``stream='flow'``).
        stream (str): ``'rgb'`` or ``'flow'``.
        crop_size (int): Side of the square center crop.

    Returns:
        numpy.ndarray: ``(C, T, crop_size, crop_size)`` float32: RGB
        rescaled to [-1, 1], flow clipped to [-20, 20] and divided by 20.
    """
    clip = center_crop(clip, crop_size).astype(numpy.float32)
    if stream == 'rgb':
        return clip / 127.5 - 1
    if stream == 'flow':
        return numpy.clip(clip, -20, 20) / 20
    raise ValueError("stream must be 'rgb' or 'flow', not {!r}".format(stream))
