import re

import numpy

from chainercv_i3d.transforms._check import check_video


def _negate(x):
    if x.dtype.kind == 'u':
        # Quantized flow (quantize_flow) is symmetric about the middle of the
        # range, so -f is max - q; plain -q would wrap around.
        return numpy.iinfo(x.dtype).max - x
    return -x


def flip(video, x_flip=False, is_flow=False):
    """Flips every frame horizontally.

    Mirroring a flow field reverses its horizontal motion, so for flow the x
    channel is also negated. Unsigned (quantized, see
    :func:`chainercv_i3d.flow.quantize_flow`) flow is negated as
    ``max - q``, e.g. ``255 - q`` for uint8, which is exact after
    dequantization.

    Args:
        video (numpy.ndarray): ``(C, T, H, W)``, any dtype; for flow,
            ``(2, T, H, W)``, x then y.
        x_flip (bool): Flip; if False the video is returned unchanged (as a
            copy).
        is_flow (bool): ``video`` is flow: negate its x channel too.

    Returns:
        numpy.ndarray: ``(C, T, H, W)``, a new array of the dtype of
        ``video``.

    Raises:
        ValueError: ``is_flow`` is True and ``video`` does not have 2
            channels.
    """
    check_video(video)
    if is_flow and video.shape[0] != 2:
        raise ValueError('flow must be (2, T, H, W) (x then y), got shape '
                         '{}'.format(video.shape))
    if not x_flip:
        return video.copy()
    video = video[:, :, :, ::-1].copy()
    if is_flow:
        video[0] = _negate(video[0])
    return video


def random_flip(video, x_random=False, return_param=False, is_flow=False,
                rng=None):
    """Flips every frame horizontally with probability 1/2.

    Example:
        >>> rgb, param = random_flip(rgb, x_random=True, return_param=True)
        >>> flow = flip(flow, param['x_flip'], is_flow=True)

    Args:
        video (numpy.ndarray): ``(C, T, H, W)``, any dtype; for flow,
            ``(2, T, H, W)``, x then y.
        x_random (bool): Flip at random; if False never flip.
        return_param (bool): Also return whether it flipped.
        is_flow (bool): ``video`` is flow: negate its x channel when flipped.
        rng (numpy.random.Generator): The randomness; default a generator
            seeded from the OS (forked workers never repeat each other).

    Returns:
        numpy.ndarray or (numpy.ndarray, dict): ``(C, T, H, W)``, a new array
        of the dtype of ``video``; with ``return_param``, also a dict with
        ``x_flip`` (bool).
    """
    rng = numpy.random.default_rng() if rng is None else rng
    x_flip = bool(x_random) and bool(rng.integers(0, 2))
    video = flip(video, x_flip=x_flip, is_flow=is_flow)
    if return_param:
        return video, {'x_flip': x_flip}
    return video


# What a left-right flip does to a class name that says a direction.
_MIRRORED_PHRASES = (('left to right', 'right to left'),
                     ('left', 'right'))


def _mirrored_name(name):
    for a, b in _MIRRORED_PHRASES:
        swapped = re.sub(r'\b({}|{})\b'.format(a, b),
                         lambda m: b if m.group(1) == a else a, name)
        if swapped != name:
            return swapped
    return None


def flip_label_map(label_names):
    """The classes a left-right flip turns into each other, by name.

    A class whose name says "left to right" (or "left") becomes the class
    of the same name with "right to left" (or "right"), and back: in
    Something-Something V2 the pairs "Pulling / Pushing something from left
    to right" and "... right to left", and "Turning the camera left / right
    while filming something". Names without such a twin are unchanged.

    Args:
        label_names (sequence of str): Class names in label order.

    Returns:
        dict: ``{label: label of the mirrored class}`` for every class that
        has a twin (both directions); empty when none has.

    Example:

        >>> flip_label_map(['push left to right', 'push right to left',
        ...                 'wave'])
        {0: 1, 1: 0}
    """
    index = {name: i for i, name in enumerate(label_names)}
    mapping = {}
    for i, name in enumerate(label_names):
        twin = _mirrored_name(name)
        if twin in index and twin != name:
            mapping[i] = index[twin]
    return mapping
