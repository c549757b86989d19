"""Fixed test-time crops of a video: 1, 3, 5 or 10 views per frame."""

import numpy

from chainercv_i3d.transforms.flip import flip
from chainercv_i3d.transforms.spatial_crop import crop_windows

CROP_SETS = ('center', '3', '5', '10')


def crop_boxes(height, width, size, crops='center'):
    """The boxes of a test-time crop set, in their order.

    - ``'center'``: the center (:func:`crop_windows`; one crop).
    - ``'3'``: three windows along the long side (start, center, end),
      centered on the short side: :func:`crop_windows`' ``'three'``, the
      three-crop testing of non-local networks and SlowFast
      (facebookresearch/SlowFast ``slowfast/datasets/transform.py``,
      ``uniform_crop``).
    - ``'5'``: top-left, top-right, bottom-left, bottom-right, center:
      the order of torchvision's ``transforms.functional.five_crop``.
    - ``'10'``: the five, then the five of the horizontally mirrored
      frames, as torchvision's ``ten_crop`` (``five_crop(img) +
      five_crop(hflip(img))``): crop 5 is the mirror of the *top-right*
      window, crop 6 that of the top-left, 7 and 8 of the bottom ones, 9 of
      the center; the set is the five and their mirrors.
      Finspire13/pytorch-i3d-feature-extraction's ``oversample_data``
      takes the same ten in another order (center third).

    The center is at ``((H - size) // 2, (W - size) // 2)`` as everywhere in
    this package (torchvision rounds half up instead: the same for even
    margins such as 256x340 -> 224).

    Args:
        height (int): Frame height.
        width (int): Frame width.
        size (int): Side of the square crops.
        crops (str): One of :data:`CROP_SETS`.

    Returns:
        list of tuple: ``(y_slice, x_slice, mirrored)`` per crop; a
        mirrored crop is taken from the horizontally flipped frames (so its
        ``x_slice`` is in flipped coordinates).

    Raises:
        ValueError: An unknown set, or frames smaller than the crop.
    """
    if crops not in CROP_SETS:
        raise ValueError('crops must be one of {}, not {!r}'.format(
            ', '.join(CROP_SETS), crops))
    if crops in ('center', '3'):
        mode = 'center' if crops == 'center' else 'three'
        return [(y, x, False) for y, x in crop_windows(height, width, size,
                                                       mode)]
    crop_windows(height, width, size)  # checks the size
    bottom, right = height - size, width - size
    offsets = [(0, 0), (0, right), (bottom, 0), (bottom, right),
               (bottom // 2, right // 2)]
    boxes = [(slice(y, y + size), slice(x, x + size), False)
             for y, x in offsets]
    if crops == '10':
        boxes += [(y, x, True) for y, x, _ in boxes]
    return boxes


def multi_crop(video, boxes, is_flow=False):
    """Cuts the crops of :func:`crop_boxes` from a video.

    A mirrored crop is cut from the flipped video; flow's x component is
    negated there (:func:`~chainercv_i3d.transforms.flip`).

    Example:
        >>> crops = multi_crop(flow, crop_boxes(256, 340, 224, '10'),
        ...                    is_flow=True)  # (10, 2, T, 224, 224)

    Args:
        video (numpy.ndarray): ``(C, T, H, W)``.
        boxes (list): From :func:`crop_boxes`.
        is_flow (bool): ``video`` is flow (x then y).

    Returns:
        numpy.ndarray: ``(n_crops, C, T, size, size)``, of the dtype of
        ``video``.
    """
    flipped = None
    out = []
    for y, x, mirrored in boxes:
        source = video
        if mirrored:
            if flipped is None:
                flipped = flip(video, True, is_flow=is_flow)
            source = flipped
        out.append(source[:, :, y, x])
    return numpy.stack(out)
