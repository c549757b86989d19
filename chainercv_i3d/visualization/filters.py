"""The first layer's 3D filters as pictures: one grid per time tap."""

import os

import numpy

from chainercv_i3d.pretrained.cache import sha256sum
from chainercv_i3d.visualization.flow_colors import flow_to_color
from chainercv_i3d.visualization.gif import write_gif
from chainercv_i3d.visualization.gif import write_png
from chainercv_i3d.visualization.grid import add_timeline
from chainercv_i3d.visualization.grid import normalize_per_tile
from chainercv_i3d.visualization.grid import tile_grid
from chainercv_i3d.visualization.grid import to_uint8
from chainercv_i3d.visualization.grid import upscale_nearest

FILTER_LAYER = 'conv3d_1a_7x7'
# Screen pixels per filter pixel: 7x7 taps become 56x56 tiles.
FILTER_SCALE = 8
# A tap a frame: slow enough to follow one filter through its 7 taps.
FILTER_FRAME_MS = 250
# Hex digits of a model file's SHA-256 in the names of its pictures.
DIGEST_DIGITS = 8


def first_layer_weight(model):
    """The ``(64, C, 7, 7, 7)`` weight (out, in, t, y, x) of the model's
    first convolution, on the CPU, float32."""
    weight = getattr(model, FILTER_LAYER).conv.W.array
    if hasattr(weight, 'get'):  # a CuPy array
        weight = weight.get()
    return numpy.asarray(weight, numpy.float32)


def filter_tiles(weight):
    """Colour tiles of every filter at every time tap.

    Each filter is normalized over its own values (every tap and input
    channel together, so that the taps of one filter compare). RGB filters
    (``C = 3``) are shown in colour, min-max scaled; flow filters
    (``C = 2``: x, y) in the flow colour wheel, the direction as hue and
    the magnitude, divided by the filter's largest, as brightness.

    Args:
        weight (numpy.ndarray): ``(N, C, T, h, w)`` with ``C`` 3 or 2.

    Returns:
        numpy.ndarray: ``(T, N, h, w, 3)`` uint8.

    Raises:
        ValueError: ``C`` is neither 3 nor 2.
    """
    n_channel = weight.shape[1]
    if n_channel == 3:
        values = normalize_per_tile(weight, axes=(1, 2, 3, 4))
        return to_uint8(values.transpose(2, 0, 3, 4, 1))
    if n_channel == 2:
        vectors = weight.transpose(2, 0, 3, 4, 1)  # (T, N, h, w, 2)
        largest = numpy.hypot(vectors[..., 0], vectors[..., 1]).max(
            axis=(0, 2, 3))
        largest = numpy.where(largest > 0, largest, 1)
        return flow_to_color(vectors / largest[None, :, None, None, None],
                             1.0)
    raise ValueError('filters of {} input channels: only RGB (3) and flow '
                     '(2) filters can be drawn'.format(n_channel))


def filter_grids(weight, scale=FILTER_SCALE):
    """One grid picture of all filters per time tap.

    Args:
        weight (numpy.ndarray): ``(N, C, T, h, w)``.
        scale (int): Screen pixels per filter pixel (nearest neighbour).

    Returns:
        list of numpy.ndarray: ``T`` grids of ``(H, W, 3)`` uint8, the
        filters in order row by row (8 x 8 for 64).
    """
    tiles = upscale_nearest(filter_tiles(weight), scale)
    return [tile_grid(tap) for tap in tiles]


def model_label(model_name):
    """The stem of the names of a model's pictures.

    A pretrained model's name as it is; an ``.npz``: its file name without
    the extension, ``-`` and the first :data:`DIGEST_DIGITS` hex digits of
    its SHA-256 (``model_final-3fa2c1d0``), so that the pictures of two
    files of one name (every trained model is ``model_final.npz``) do not
    overwrite each other, and one file's pictures keep their names.

    Example:

        >>> model_label('rgb_tfhub_kinetics400')
        'rgb_tfhub_kinetics400'
        >>> model_label('run_a/model_final.npz')
        'model_final-3fa2c1d0'
    """
    path = str(model_name)
    if not os.path.isfile(path):
        return os.path.basename(path.rstrip('/\\'))
    stem = os.path.splitext(os.path.basename(path))[0]
    return '{}-{}'.format(stem, sha256sum(path)[:DIGEST_DIGITS])


def write_filter_pictures(model, out_dir, label, scale=FILTER_SCALE,
                          frame_ms=FILTER_FRAME_MS):
    """Writes the first layer's filters as a GIF (a frame per tap) and a
    PNG (the middle tap).

    Files: ``<label>_conv3d_1a_7x7.gif`` and ``.png`` in ``out_dir``. Each
    GIF frame has a timeline strip below the grid (the tap's position).

    Args:
        model (I3D): The model.
        out_dir (str): The folder (created if missing).
        label (str): Names the files (e.g. :func:`model_label`).
        scale (int): Screen pixels per filter pixel.
        frame_ms (int): Display time of each tap.

    Returns:
        list of str: The paths written (GIF, PNG).
    """
    grids = filter_grids(first_layer_weight(model), scale)
    stem = os.path.join(out_dir, '{}_{}'.format(label, FILTER_LAYER))
    frames = [add_timeline(grid, t, len(grids))
              for t, grid in enumerate(grids)]
    return [write_gif(stem + '.gif', frames, frame_ms),
            write_png(stem + '.png', grids[len(grids) // 2])]
