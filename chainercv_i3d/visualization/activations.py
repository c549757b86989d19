"""A layer's activations on a clip, as an animated grid beside the clip."""

import os

import numpy

from chainercv_i3d.architecture import HEAD_LAYERS
from chainercv_i3d.datasets.clip_samplers import flow_frame_indices
from chainercv_i3d.datasets.precomputed_video import PrecomputedVideo
from chainercv_i3d.datasets.video_files import frames_to_streams
from chainercv_i3d.links.streams import predict
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.transforms.clip_transform import ClipTransform
from chainercv_i3d.utils.progress import NoBar
from chainercv_i3d.utils.sample_clip import read_sample_clip
from chainercv_i3d.visualization.flow_colors import flow_magnitude_bound
from chainercv_i3d.visualization.flow_colors import flow_to_color
from chainercv_i3d.visualization.flow_video import read_frames
from chainercv_i3d.visualization.gif import write_gif
from chainercv_i3d.visualization.gif import write_png
from chainercv_i3d.visualization.grid import add_timeline
from chainercv_i3d.visualization.grid import grid_columns
from chainercv_i3d.visualization.grid import normalize_per_tile
from chainercv_i3d.visualization.grid import resize_image
from chainercv_i3d.visualization.grid import side_by_side
from chainercv_i3d.visualization.grid import tile_grid
from chainercv_i3d.visualization.grid import TIMELINE_HEIGHT
from chainercv_i3d.visualization.grid import to_uint8

# Channels shown by default (an 8 x 8 grid), and the tile height they get.
DEFAULT_CHANNELS = 64
DEFAULT_TILE_SIZE = 56
# A channel's value shown white: a high percentile of its values (ReLU maps
# are sparse: their maximum is a few pixels, which would leave the rest
# black).
WHITE_PERCENTILE = 99.5
# DeepMind's 25 fps: the display time of one input frame.
INPUT_FRAME_MS = 1000.0 / DEEPMIND_KINETICS.fps
SAMPLE_EXTENSIONS = ('.npy', '.gif')
PRECOMPUTED_EXTENSION = '.zip'


def spatial_layers(model):
    """The layers with a spatial map (every layer before the head)."""
    return tuple(name for name in model.layer_names
                 if name not in HEAD_LAYERS)


def check_layer(model, layer):
    """Checks that ``layer`` is a layer of ``model`` with a spatial map.

    Raises:
        ValueError: The model has no such layer, or it is a head layer
            (``avgpool``, ``logits``, ``prob``: no map to draw); the
            message lists the layers that can be drawn.
    """
    layers = spatial_layers(model)
    if layer in layers:
        return
    if layer in model.layer_names:
        raise ValueError('layer {!r} has no spatial map to draw (it comes '
                         'after the average pool); pick one of: {}'.format(
                             layer, ', '.join(layers)))
    raise ValueError('the model has no layer {!r}; pick one of: {}'.format(
        layer, ', '.join(layers)))


def read_clip(path, modality, preset=DEEPMIND_KINETICS, flow_backend='tvl1',
              max_frames=None, progress=None):
    """Reads a clip into the model input of a ``modality`` model.

    Four kinds of clip are read:

    * a DeepMind-format sample ``.npy`` ``(1, T, H, W, C)`` already in
      model range (C = 3: RGB, 2: flow), or an animated ``.gif`` of RGB
      frames (:func:`~chainercv_i3d.utils.read_sample_clip`), used as they
      are;
    * one precomputed video ``.zip`` (``videos/<id>.zip`` of the precompute
      stage), its stored frames or flow;
    * any other path, a video file, decoded as ``preset`` prescribes (flow
      computed with ``flow_backend`` for a flow model).

    The last two are center-cropped (``preset.crop_size``, or the short
    side when smaller) and scaled to the model range of ``preset``.

    Args:
        path (str): The clip.
        modality (str): ``'rgb'`` or ``'flow'``: the model's.
        preset (Preset): The model's preset.
        flow_backend (str): For the flow of a video file.
        max_frames (int): Keep the first frames only (``None``: all).
        progress (callable): ``progress(total, unit)`` returns a bar
            (``None``: no bar); used while flow is computed.

    Returns:
        numpy.ndarray: ``(C, T, H, W)`` float32 in model range.

    Raises:
        ValueError: The clip is missing, unreadable, or of the other
            modality.
    """
    path = str(path)
    if not os.path.exists(path):
        raise ValueError('no such clip: {}'.format(path))
    extension = os.path.splitext(path)[1].lower()
    if extension in SAMPLE_EXTENSIONS:
        clip = read_sample_clip(path)[0]
        _check_modality(path, 'rgb' if clip.shape[0] == 3 else 'flow',
                        modality)
        return clip[:, :max_frames] if max_frames else clip
    if extension == PRECOMPUTED_EXTENSION:
        video = _read_precomputed(path, modality, max_frames)
    else:
        video = _read_video_file(path, modality, preset, flow_backend,
                                 max_frames, progress)
    crop = min(preset.crop_size, *video.shape[2:])
    return ClipTransform(preset, 'center', crop_size=crop)(
        {modality: video[None]})[modality][0]


def _check_modality(path, found, modality):
    if found != modality:
        raise ValueError('{} is a {} clip, the model a {} model: give a {} '
                         'clip or a {} model'.format(path, found, modality,
                                                     modality, found))


def _read_precomputed(path, modality, max_frames):
    with PrecomputedVideo(path) as video:
        n_frames = min(video.n_frames, max_frames or video.n_frames)
        if modality == 'rgb':
            return video.read_rgb(range(n_frames))
        if video.n_flow_frames == 0:
            raise ValueError('{} holds no flow (precomputed without it): '
                             'give a flow model a video with flow'.format(
                                 path))
        return video.read_flow(flow_frame_indices(
            numpy.arange(n_frames), video.n_flow_frames))


def _read_video_file(path, modality, preset, flow_backend, max_frames,
                     progress):
    frames = read_frames(path, preset, max_frames)
    bar = progress(len(frames) - 1, 'frame pair') \
        if progress and modality == 'flow' else NoBar()
    try:
        return frames_to_streams(frames, (modality,), flow_backend,
                                 bar)[modality]
    finally:
        bar.close()


def layer_activations(model, clip, layer, device=None):
    """The output of ``layer`` on one clip (test mode, no backprop).

    Args:
        model (I3D): The model.
        clip (numpy.ndarray): ``(C, T, H, W)`` in model range.
        layer (str): A layer with a spatial map (:func:`check_layer`).
        device (chainer.backend.Device): Where the model is.

    Returns:
        numpy.ndarray: ``(C', T', H', W')`` float32.
    """
    check_layer(model, layer)
    return predict(model, clip[None], device, endpoint=layer)[0]


def clip_pictures(clip, modality, preset=DEEPMIND_KINETICS):
    """The model input as pictures: RGB back to colours, flow in the
    colour wheel (full brightness: the clip's 99th percentile speed).

    Args:
        clip (numpy.ndarray): ``(C, T, H, W)`` in model range.
        modality (str): ``'rgb'`` or ``'flow'``.
        preset (Preset): Its ``rgb_range``.

    Returns:
        numpy.ndarray: ``(T, H, W, 3)`` uint8.
    """
    if modality == 'flow':
        flow = clip.transpose(1, 2, 3, 0)
        return flow_to_color(flow, flow_magnitude_bound(flow))
    low, high = preset.rgb_range
    return to_uint8((clip.transpose(1, 2, 3, 0) - low) / (high - low))


def channel_tiles(activations, n_channels, tile_size):
    """Grey tiles of the first ``n_channels`` channels, each normalized
    over its own values at every step (black: its minimum, white: its
    :data:`WHITE_PERCENTILE` percentile), resized to ``tile_size`` rows.

    Returns:
        numpy.ndarray: ``(T', n, h, w, 3)`` uint8.
    """
    shown = activations[:n_channels]
    grey = to_uint8(normalize_per_tile(
        shown, axes=(1, 2, 3), top_percentile=WHITE_PERCENTILE))
    height, width = shown.shape[2:]
    tile_width = max(1, int(round(width * tile_size / height)))
    tiles = numpy.stack([[resize_image(numpy.repeat(
        channel[..., None], 3, axis=-1), tile_size, tile_width)
        for channel in step] for step in grey.transpose(1, 0, 2, 3)])
    return tiles


def step_frame_indices(n_frames, n_steps):
    """The input frame shown at each of a layer's ``n_steps`` time steps
    (step ``t`` covers frames from ``t * n_frames / n_steps`` on)."""
    return (numpy.arange(n_steps) * n_frames) // n_steps


def activation_frames(pictures, activations, n_channels=DEFAULT_CHANNELS,
                      tile_size=DEFAULT_TILE_SIZE, progress=None):
    """Animation frames: the input beside the grid of channels, per step.

    Args:
        pictures (numpy.ndarray): ``(T, H, W, 3)`` uint8 input frames.
        activations (numpy.ndarray): ``(C', T', H', W')``.
        n_channels (int): Show the first channels only.
        tile_size (int): Height of a channel's tile in pixels.
        progress (callable): ``progress(total, unit)`` returns a bar.

    Returns:
        list of numpy.ndarray: ``T'`` frames ``(H_g + strip, W, 3)`` uint8:
        the input frame of the step scaled to the grid's height, the grid
        (``ceil(sqrt(n))`` columns), and a timeline strip below.
    """
    tiles = channel_tiles(activations, n_channels, tile_size)
    n_steps = len(tiles)
    frame_of_step = step_frame_indices(len(pictures), n_steps)
    columns = grid_columns(tiles.shape[1])
    bar = progress(n_steps, 'frame') if progress else NoBar()
    frames = []
    try:
        for t in range(n_steps):
            grid = tile_grid(tiles[t], columns)
            picture = pictures[frame_of_step[t]]
            width = int(round(picture.shape[1] * grid.shape[0]
                              / picture.shape[0]))
            frames.append(add_timeline(side_by_side(
                [resize_image(picture, grid.shape[0], width), grid]),
                t, n_steps))
            bar.update()
    finally:
        bar.close()
    return frames


def write_activation_pictures(frames, n_frames, out_dir, label):
    """Writes ``<label>.gif`` (every step) and ``<label>.png`` (the middle
    step, without the timeline strip) in ``out_dir``.

    Args:
        frames (list of numpy.ndarray): From :func:`activation_frames`.
        n_frames (int): Input frames of the clip: each step is shown as
            long as the frames it covers at 25 fps.
        out_dir (str): The folder (created if missing).
        label (str): The file names' stem.

    Returns:
        list of str: The paths written (GIF, PNG).
    """
    stem = os.path.join(out_dir, label)
    frame_ms = INPUT_FRAME_MS * n_frames / len(frames)
    return [write_gif(stem + '.gif', frames, frame_ms),
            write_png(stem + '.png',
                      frames[len(frames) // 2][:-TIMELINE_HEIGHT])]
