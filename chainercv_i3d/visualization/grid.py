"""Tiling small images into one picture: grids with separators, panels,
and a timeline strip that says where in time a frame is."""

import math

import numpy
from PIL import Image

# Pixels between tiles (and around them), in the picture's own pixels.
SEPARATOR = 2
SEPARATOR_COLOR = (255, 255, 255)
# The strip under every animation frame: filled up to the frame's position.
TIMELINE_HEIGHT = 4
TIMELINE_COLOR = (230, 60, 40)


def normalize_per_tile(values, axes, top_percentile=100.0):
    """Scales each tile to [0, 1] over its own values.

    Args:
        values (numpy.ndarray): Tiles along axis 0.
        axes (tuple of int): The axes a tile's range is taken over (e.g.
            every axis but 0).
        top_percentile (float): The tile's value shown at 1: its maximum
            (100) or a percentile below it, so that a few hot pixels do
            not darken everything else (higher values are clipped).

    Returns:
        numpy.ndarray: float32 in [0, 1], the shape of ``values``; a
        constant tile is 0.
    """
    values = numpy.asarray(values, numpy.float32)
    low = values.min(axis=axes, keepdims=True)
    if top_percentile >= 100:
        high = values.max(axis=axes, keepdims=True)
    else:
        high = numpy.percentile(values, top_percentile, axis=axes,
                                keepdims=True)
    span = high - low
    # A constant tile (a dead channel) has no range: show it black.
    scaled = numpy.where(span > 0, (values - low) / numpy.where(
        span > 0, span, 1), 0)
    return numpy.clip(scaled, 0, 1).astype(numpy.float32)


def to_uint8(values):
    """Maps [0, 1] floats to uint8 (clipped)."""
    return (numpy.clip(values, 0, 1) * 255 + 0.5).astype(numpy.uint8)


def grid_columns(n_tiles):
    """Columns of a near-square grid of ``n_tiles`` (8 for 64)."""
    return int(math.ceil(math.sqrt(n_tiles)))


def grid_shape(n_tiles, tile_height, tile_width, n_columns=None,
               separator=SEPARATOR):
    """``(height, width)`` in pixels of the grid :func:`tile_grid` makes."""
    n_columns = n_columns or grid_columns(n_tiles)
    n_rows = int(math.ceil(n_tiles / n_columns))
    return (n_rows * tile_height + (n_rows + 1) * separator,
            n_columns * tile_width + (n_columns + 1) * separator)


def tile_grid(tiles, n_columns=None, separator=SEPARATOR,
              separator_color=SEPARATOR_COLOR):
    """Lays tiles out row by row, with separators around each.

    Args:
        tiles (numpy.ndarray): ``(N, h, w, 3)`` uint8.
        n_columns (int): Tiles per row (default near-square).
        separator (int): Pixels between tiles and at the border.
        separator_color (tuple): RGB of the separators (and of the empty
            cells of an incomplete last row).

    Returns:
        numpy.ndarray: ``(H, W, 3)`` uint8 (:func:`grid_shape`).
    """
    n_tiles, height, width = tiles.shape[:3]
    n_columns = n_columns or grid_columns(n_tiles)
    grid = numpy.empty(grid_shape(n_tiles, height, width, n_columns,
                                  separator) + (3,), numpy.uint8)
    grid[:] = separator_color
    for i, tile in enumerate(tiles):
        row, column = divmod(i, n_columns)
        y = separator + row * (height + separator)
        x = separator + column * (width + separator)
        grid[y:y + height, x:x + width] = tile
    return grid


def upscale_nearest(images, scale):
    """Enlarges ``(..., h, w, C)`` images ``scale`` times, each pixel a
    ``scale x scale`` block (nearest neighbour: no blur on tiny filters)."""
    return numpy.repeat(numpy.repeat(images, scale, axis=-3), scale, axis=-2)


def resize_image(image, height, width):
    """Resizes an ``(h, w, 3)`` uint8 image (nearest when enlarging by a
    whole factor, so small maps stay crisp; else bilinear or box)."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    if height % h == 0 and width % w == 0 and height // h == width // w:
        return upscale_nearest(image, height // h)
    resample = Image.BILINEAR if height > h else Image.BOX
    return numpy.asarray(Image.fromarray(image).resize(
        (width, height), resample))


def side_by_side(panels, separator=SEPARATOR,
                 separator_color=SEPARATOR_COLOR):
    """Puts ``(h_i, w_i, 3)`` uint8 panels in a row, top-aligned, with a
    separator between them."""
    height = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels) + separator * (len(panels) - 1)
    row = numpy.empty((height, width, 3), numpy.uint8)
    row[:] = separator_color
    x = 0
    for panel in panels:
        row[:panel.shape[0], x:x + panel.shape[1]] = panel
        x += panel.shape[1] + separator
    return row


def add_timeline(image, position, n_positions, height=TIMELINE_HEIGHT,
                 color=TIMELINE_COLOR):
    """Appends a strip under ``image`` filled to ``(position + 1) /
    n_positions`` of its width: where the frame is in the animation (and
    it keeps consecutive frames distinct, which GIF writers would merge).

    Returns:
        numpy.ndarray: ``(H + height, W, 3)`` uint8.
    """
    strip = numpy.zeros((height,) + image.shape[1:], numpy.uint8)
    filled = int(round(image.shape[1] * (position + 1) / n_positions))
    strip[:, :filled] = color
    return numpy.concatenate([image, strip], axis=0)
