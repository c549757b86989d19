"""A video's optical flow as an animated picture, beside the frames."""

import os

from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.utils.video import decode_and_resample
from chainercv_i3d.utils.video import VideoReadError
from chainercv_i3d.visualization.flow_colors import flow_magnitude_bound
from chainercv_i3d.visualization.flow_colors import flow_to_color
from chainercv_i3d.visualization.flow_colors import flow_wheel_legend
from chainercv_i3d.visualization.gif import write_gif
from chainercv_i3d.visualization.gif import write_png
from chainercv_i3d.visualization.grid import add_timeline
from chainercv_i3d.visualization.grid import side_by_side

# The legend is per video: its rim names that video's speed scale.
LEGEND_SUFFIX = '_flow_wheel.png'


def read_frames(path, preset=DEEPMIND_KINETICS, max_frames=None):
    """Decodes a video as ``preset`` prescribes (frame rate, short side).

    Args:
        path (str): A video file.
        preset (Preset): Frame rate and short side.
        max_frames (int): Keep only the first frames (``None``: all).

    Returns:
        list of numpy.ndarray: ``(H, W, 3)`` uint8 RGB frames.

    Raises:
        VideoReadError: The video cannot be decoded; the message names it.
    """
    try:
        frames, _ = decode_and_resample(str(path), preset.fps,
                                        preset.short_side)
    except VideoReadError as e:
        raise VideoReadError('{}: {}'.format(path, e))
    return frames[:max_frames] if max_frames else frames


def flow_frames(frames, flow, max_magnitude):
    """Animation frames: each video frame beside its flow in colour.

    Args:
        frames (list of numpy.ndarray): ``T`` RGB uint8 frames.
        flow (numpy.ndarray): ``(T - 1, H, W, 2)``: flow ``t`` from frame
            ``t`` to ``t + 1``, drawn beside frame ``t``.
        max_magnitude (float): Motion shown at full brightness.

    Returns:
        list of numpy.ndarray: ``T - 1`` pictures ``(H + strip, 2W + sep,
        3)`` uint8, a timeline strip under each.
    """
    return [add_timeline(side_by_side(
        [frames[t], flow_to_color(flow[t], max_magnitude)]), t, len(flow))
        for t in range(len(flow))]


def write_flow_pictures(frames, flow, out_dir, label, frame_ms,
                        max_magnitude=None):
    """Writes ``<label>_flow.gif`` (frames beside their flow) and its wheel
    legend ``<label>_flow_wheel.png`` (with the magnitude at its rim: each
    video's own when it is the video's 99th percentile).

    Args:
        frames (list of numpy.ndarray): ``T`` RGB uint8 frames.
        flow (numpy.ndarray): ``(T - 1, H, W, 2)`` in pixels.
        out_dir (str): The folder (created if missing).
        label (str): Names the GIF.
        frame_ms (int): Display time of each frame.
        max_magnitude (float): Motion at full brightness (``None``: the
            99th percentile of the flow's magnitudes).

    Returns:
        list of str: The paths written (GIF, legend PNG).
    """
    if max_magnitude is None:
        max_magnitude = flow_magnitude_bound(flow)
    gif_path = os.path.join(out_dir, label + '_flow.gif')
    write_gif(gif_path, flow_frames(frames, flow, max_magnitude), frame_ms)
    legend_path = write_png(os.path.join(out_dir, label + LEGEND_SUFFIX),
                            flow_wheel_legend(max_magnitude=max_magnitude))
    return [gif_path, legend_path]


def frame_duration_ms(preset, default_fps=DEEPMIND_KINETICS.fps):
    """Display time of one frame at the preset's frame rate (its default
    for a native-rate preset)."""
    return 1000.0 / (preset.fps or default_fps)
