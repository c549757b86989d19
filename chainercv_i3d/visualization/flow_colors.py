"""Optical flow as colour: the Middlebury colour wheel of Baker et al.

Baker, Scharstein, Lewis, Roth, Black and Szeliski, "A Database and
Evaluation Methodology for Optical Flow", IJCV 2011: the hue says the
direction of motion (right red, down orange-yellow, left cyan, up
blue-violet), as on the Middlebury benchmark's pictures. Here the
brightness says the magnitude (black: no motion; full colour: the largest
motion shown), with full saturation.
"""

import numpy
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

# The wheel's segments: how many hues between red, yellow, green, cyan,
# blue, magenta and back to red (Baker et al.: perceptually even steps).
WHEEL_SEGMENTS = (('red', 'yellow', 15), ('yellow', 'green', 6),
                  ('green', 'cyan', 4), ('cyan', 'blue', 11),
                  ('blue', 'magenta', 13), ('magenta', 'red', 6))
_PRIMARIES = {'red': (1, 0, 0), 'yellow': (1, 1, 0), 'green': (0, 1, 0),
              'cyan': (0, 1, 1), 'blue': (0, 0, 1), 'magenta': (1, 0, 1)}


def color_wheel():
    """The wheel's hues, in order round the circle.

    Returns:
        numpy.ndarray: ``(55, 3)`` float32 RGB in [0, 1], starting at red
        and going through yellow, green, cyan, blue and magenta.
    """
    hues = []
    for start, end, steps in WHEEL_SEGMENTS:
        start, end = (numpy.array(_PRIMARIES[c], numpy.float32)
                      for c in (start, end))
        for i in range(steps):
            hues.append(start + (end - start) * (i / steps))
    return numpy.stack(hues).astype(numpy.float32)


def flow_magnitude_bound(flow, percentile=99.0):
    """A magnitude to show at full brightness: a high percentile of the
    flow's magnitudes, so that a few outliers do not darken the rest.

    Args:
        flow (numpy.ndarray): ``(..., 2)`` flow, x then y.
        percentile (float): Which percentile.

    Returns:
        float: Positive (a tiny value for a flow of zeros).
    """
    magnitude = numpy.hypot(flow[..., 0], flow[..., 1])
    return max(float(numpy.percentile(magnitude, percentile)), 1e-6)


def flow_to_color(flow, max_magnitude):
    """Colours a flow field with the wheel.

    The hue is the direction (angle of ``(x, y)`` with y pointing down, as
    in images), the brightness the magnitude divided by ``max_magnitude``
    (clipped to 1).

    Args:
        flow (numpy.ndarray): ``(..., 2)`` float, x then y.
        max_magnitude (float): The magnitude shown at full brightness.

    Returns:
        numpy.ndarray: ``(...,3)`` uint8 RGB.

    Raises:
        ValueError: ``flow`` does not end with an axis of 2, or
            ``max_magnitude`` is not positive.
    """
    flow = numpy.asarray(flow, numpy.float32)
    if flow.shape[-1] != 2:
        raise ValueError('flow must be (..., 2) (x then y), not {}'.format(
            flow.shape))
    if not max_magnitude > 0:
        raise ValueError('max_magnitude must be positive, not {!r}'.format(
            max_magnitude))
    wheel = color_wheel()
    n_hues = len(wheel)
    x, y = flow[..., 0], flow[..., 1]
    # Angle 0 (red) points right; a quarter turn clockwise on screen
    # (y down) goes to yellow-green, as on the Middlebury pictures.
    turn = numpy.mod(numpy.arctan2(y, x) / (2 * numpy.pi), 1.0)
    position = turn * n_hues
    low = numpy.floor(position).astype(numpy.int64) % n_hues
    high = (low + 1) % n_hues
    weight = (position - numpy.floor(position))[..., None]
    hue = (1 - weight) * wheel[low] + weight * wheel[high]
    value = numpy.clip(numpy.hypot(x, y) / max_magnitude, 0, 1)[..., None]
    return (hue * value * 255 + 0.5).astype(numpy.uint8)


def flow_wheel_legend(size=256, max_magnitude=None, font_size=14):
    """A picture of the wheel: the colour of each motion, from the centre.

    The pixel at ``(dx, dy)`` from the centre shows a flow of that
    direction with a magnitude proportional to its distance (the rim: the
    full brightness). A caption says what the rim means.

    Args:
        size (int): Diameter of the wheel in pixels.
        max_magnitude (float): The motion at the rim, in pixels per frame,
            written in the caption (``None``: no number).
        font_size (int): Caption size.

    Returns:
        numpy.ndarray: ``(H, W, 3)`` uint8 RGB, the wheel on white with
        the directions written round it and a caption below.
    """
    margin = font_size * 3
    font = ImageFont.load_default(size=font_size)
    caption = 'hue: direction, brightness: speed'
    if max_magnitude is not None:
        caption += ' (rim: {:.3g} px/frame)'.format(max_magnitude)
    caption_width = ImageDraw.Draw(Image.new('RGB', (1, 1))).textlength(
        caption, font=font)
    width = max(size + 2 * margin, int(caption_width) + margin)
    image = Image.new('RGB', (width, size + 3 * margin), (255, 255, 255))
    radius = size / 2.0
    coords = numpy.arange(size, dtype=numpy.float32) - radius + 0.5
    x, y = numpy.meshgrid(coords, coords)
    disc = flow_to_color(numpy.stack([x, y], axis=-1), radius)
    disc[numpy.hypot(x, y) > radius] = 255
    left = (width - size) // 2
    image.paste(Image.fromarray(disc), (left, margin))
    draw = ImageDraw.Draw(image)
    centre_x, centre_y = left + radius, margin + radius
    for text, xy in (('right', (centre_x + radius + margin / 2, centre_y)),
                     ('left', (centre_x - radius - margin / 2, centre_y)),
                     ('up', (centre_x, margin / 2)),
                     ('down', (centre_x, centre_y + radius + margin / 2))):
        draw.text(xy, text, fill=(0, 0, 0), font=font, anchor='mm')
    draw.text((width / 2, size + 2.3 * margin), caption, fill=(0, 0, 0),
              font=font, anchor='mm')
    return numpy.asarray(image)
