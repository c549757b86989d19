"""Small synthetic precomputed sets for tests and benchmarks: bars that move
left-to-right or right-to-left (a class appearance cannot tell apart; a
left-right flip turns one into the other)."""

import json
import os

import numpy

from chainercv_i3d.datasets.precomputed_video import MANIFEST_NAME
from chainercv_i3d.datasets.precomputed_video import precomputed_path
from chainercv_i3d.datasets.precomputed_video import write_precomputed_video
from chainercv_i3d.flow.quantization import quantize_flow
from chainercv_i3d.presets import DEEPMIND_KINETICS

BAR_LABEL_NAMES = ('bar moving left to right', 'bar moving right to left')
# kind='orientation': classes that appearance tells apart.
ORIENTATION_LABEL_NAMES = ('vertical bar moving right',
                           'horizontal bar moving down')


def moving_bar(n_frames, height, width, direction, rng):
    """Frames and flow of one bar crossing the frame.

    Args:
        n_frames (int): Frames.
        height (int): Frame height.
        width (int): Frame width.
        direction (int): +1 moves right, -1 moves left.
        rng (numpy.random.Generator): Colour, size, speed and start.

    Returns:
        tuple: RGB frames ``(T, H, W, 3)`` uint8 and flow ``(T - 1, H, W,
        2)`` float32 in pixels (x then y), the bar's motion.
    """
    bar_width = int(rng.integers(3, max(4, width // 6)))
    # 1 or 2 pixels per frame in 40, as fast relative to larger frames.
    speed = int(rng.integers(1, 3)) * max(1, width // 40)
    travel = speed * (n_frames - 1)
    start = int(rng.integers(0, max(1, width - bar_width - travel)))
    if direction < 0:
        start = width - bar_width - start
    colour = rng.integers(120, 256, size=3)
    background = rng.integers(0, 60, size=(height, width, 3))
    frames = numpy.empty((n_frames, height, width, 3), numpy.uint8)
    flow = numpy.zeros((n_frames - 1, height, width, 2), numpy.float32)
    for t in range(n_frames):
        x = start + direction * speed * t
        frames[t] = background
        frames[t, :, max(x, 0):max(x + bar_width, 0)] = colour
        if t < n_frames - 1:
            flow[t, :, max(x, 0):max(x + bar_width, 0), 0] = \
                direction * speed
    return frames, flow


def write_moving_bars_set(out_dir, n_per_class, n_frames=12, size=40,
                          with_flow=True, seed=0, preset=None,
                          kind='direction'):
    """Writes a precomputed set of moving bars, as the precompute stage
    would: one zip per video and ``manifest.json``.

    Args:
        out_dir (str): The folder to create.
        n_per_class (int): Videos of each direction.
        n_frames (int): Frames per video.
        size (int): Frame height and width (the short side).
        with_flow (bool): Also store the bars' flow.
        seed (int): Seed of the bars.
        preset (Preset): Recorded as the set's preset (default DeepMind's
            with the short side ``size`` and the two class names).
        kind (str): ``'direction'``: vertical bars moving right (label 0) or
            left (1); ``'orientation'``: vertical bars moving right (0) or
            horizontal bars moving down (1).

    Returns:
        list of dict: The manifest's records.
    """
    if kind not in ('direction', 'orientation'):
        raise ValueError("kind must be 'direction' or 'orientation', not "
                         "{!r}".format(kind))
    if preset is None:
        preset = DEEPMIND_KINETICS.replace(
            name='moving_bars', short_side=size,
            label_names=BAR_LABEL_NAMES if kind == 'direction'
            else ORIENTATION_LABEL_NAMES)
    rng = numpy.random.default_rng(seed)
    records = []
    for k in range(n_per_class):
        for label, direction in enumerate((1, -1)):
            video_id = 'bar_{}_{:03d}'.format(label, k)
            frames, flow = moving_bar(n_frames, size, size, direction, rng)
            if kind == 'orientation' and label == 1:
                # The bar of the other class, turned: a horizontal bar
                # moving down (x and y swapped, flow components too).
                frames, flow = moving_bar(n_frames, size, size, 1, rng)
                frames = frames.transpose(0, 2, 1, 3).copy()
                flow = flow.transpose(0, 2, 1, 3)[..., ::-1].copy()
            flows = list(quantize_flow(flow, preset.flow_bound)) \
                if with_flow else []
            meta = {'video_id': video_id, 'label': label, 'fps': preset.fps,
                    'source_fps': preset.fps, 'height': size, 'width': size,
                    'flow_bound': preset.flow_bound,
                    'preset': preset.to_dict()}
            write_precomputed_video(precomputed_path(out_dir, video_id),
                                    meta, list(frames), flows)
            records.append({'video_id': video_id, 'label': label,
                            'source': 'synthetic', 'status': 'done',
                            'n_frames': n_frames,
                            'n_flow_frames': len(flows),
                            'source_fps': preset.fps, 'height': size,
                            'width': size})
    with open(os.path.join(out_dir, MANIFEST_NAME), 'w') as f:
        json.dump({'preset': preset.to_dict(), 'dataset': 'moving_bars',
                   'videos': records}, f, indent=1)
    return records


# write_multilabel_bars_set: each class is one bar; a video shows any subset.
MULTILABEL_BAR_NAMES = ORIENTATION_LABEL_NAMES + ('vertical bar moving left',)
# The label sets of the videos, in turn: every pair co-occurs.
MULTILABEL_BAR_SETS = ((0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2),
                       ())


def _bar_of_class(label, n_frames, size, rng):
    frames, _ = moving_bar(n_frames, size, size, -1 if label == 2 else 1,
                           rng)
    return frames.transpose(0, 2, 1, 3) if label == 1 else frames


def write_multilabel_bars_set(out_dir, n_videos, n_frames=12, size=32,
                              seed=0):
    """Writes a multi-label precomputed set (as the precompute stage would
    from a Charades-like list): each video shows a subset of three bars
    (:data:`MULTILABEL_BAR_NAMES`), the subsets of
    :data:`MULTILABEL_BAR_SETS` in turn, each bar an action of the whole
    video. RGB only.

    Returns:
        list of dict: The manifest's records (``labels``, ``actions``).
    """
    preset = DEEPMIND_KINETICS.replace(
        name='multilabel_bars', short_side=size,
        label_names=MULTILABEL_BAR_NAMES, multi_label=True)
    rng = numpy.random.default_rng(seed)
    duration = n_frames / preset.fps
    records = []
    for k in range(n_videos):
        labels = MULTILABEL_BAR_SETS[k % len(MULTILABEL_BAR_SETS)]
        video_id = 'bars_{:03d}'.format(k)
        frames = rng.integers(0, 60, size=(n_frames, size, size, 3)).astype(
            numpy.uint8)
        for label in labels:
            bar = _bar_of_class(label, n_frames, size, rng)
            # The bar's pixels (bright) over what is there.
            frames = numpy.where(bar >= 120, bar, frames)
        meta = {'video_id': video_id, 'label': -1, 'fps': preset.fps,
                'source_fps': preset.fps, 'height': size, 'width': size,
                'flow_bound': preset.flow_bound, 'preset': preset.to_dict()}
        write_precomputed_video(precomputed_path(out_dir, video_id), meta,
                                list(frames), [])
        records.append({'video_id': video_id, 'label': -1,
                        'labels': list(labels),
                        'actions': [[label, 0.0, duration]
                                    for label in labels],
                        'list_index': k, 'source': 'synthetic',
                        'status': 'done', 'n_frames': n_frames,
                        'n_flow_frames': 0, 'source_fps': preset.fps,
                        'height': size, 'width': size})
    with open(os.path.join(out_dir, MANIFEST_NAME), 'w') as f:
        json.dump({'preset': preset.to_dict(), 'dataset': 'multilabel_bars',
                   'videos': records}, f, indent=1)
    return records
