"""Video files read on the fly, through the same samplers as precomputed
data: what the demo, the predictor and feature extraction use for videos
that were not precomputed."""

import numpy

from chainercv_i3d.datasets.clip_samplers import AllFrames
from chainercv_i3d.datasets.clip_samplers import flow_frame_indices
from chainercv_i3d.datasets.clip_samplers import sample_rng
from chainercv_i3d.flow import get_flow_backend
from chainercv_i3d.flow import video_flow
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.utils.video import decode_and_resample


def read_video_streams(path, streams, preset=DEEPMIND_KINETICS,
                       flow_backend='tvl1', flow_progress=None):
    """Decodes a video as the preset prescribes; flow computed on the fly.

    Frames are resampled to ``preset.fps`` (``None``: the file's rate) and
    resized to a short side of ``preset.short_side``; the flow is computed
    on these whole frames (cropping comes later, as in DeepMind's
    preprocessing): minutes per 10 s of video on a CPU core with TV-L1.

    Args:
        path (str): A video file.
        streams (tuple of str): ``'rgb'`` and/or ``'flow'``.
        preset (Preset): Frame rate and short side.
        flow_backend (str or FlowBackend): For ``'flow'``.
        flow_progress (callable): Given the number of frame pairs, returns
            a progress bar that counts them while flow is computed (closed
            after), or None for none.

    Returns:
        dict: stream -> ``(C, T, H, W)`` float32: RGB in [0, 255], flow in
        pixels (``T`` flows: the last frame reuses the last flow).

    Raises:
        ValueError: The file cannot be decoded, or has one frame and flow
            is asked for.
    """
    frames, _ = decode_and_resample(str(path), preset.fps, preset.short_side)
    if flow_progress is None or 'flow' not in streams or len(frames) < 2:
        return frames_to_streams(frames, streams, flow_backend)
    bar = flow_progress(len(frames) - 1)
    try:
        return frames_to_streams(frames, streams, flow_backend, bar)
    finally:
        bar.close()


def frames_to_streams(frames, streams, flow_backend='tvl1', bar=None):
    """Decoded frames as the model streams' arrays (flow computed here).

    Args:
        frames (list of numpy.ndarray): ``(H, W, 3)`` uint8 RGB frames.
        streams (tuple of str): ``'rgb'`` and/or ``'flow'``.
        flow_backend (str or FlowBackend): For ``'flow'``.
        bar: A progress bar counting frame pairs while flow is computed
            (:func:`~chainercv_i3d.flow.video_flow`), or None.

    Returns:
        dict: stream -> ``(C, T, H, W)`` float32: RGB in [0, 255], flow in
        pixels (``T`` flows: the last frame reuses the last flow).

    Raises:
        ValueError: Flow is asked for and there are fewer than 2 frames.
    """
    out = {}
    if 'rgb' in streams:
        out['rgb'] = numpy.stack(frames).transpose(3, 0, 1, 2).astype(
            numpy.float32)
    if 'flow' in streams:
        if isinstance(flow_backend, str):
            flow_backend = get_flow_backend(flow_backend)
        flows = video_flow(frames, flow_backend, bar)
        out['flow'] = numpy.ascontiguousarray(flows[flow_frame_indices(
            numpy.arange(len(frames)), len(flows))].transpose(3, 0, 1, 2))
    return out


class VideoFileDataset(object):
    """Video records read from their files, one view set per sampler.

    Args:
        records (list of VideoRecord): ``video_id``, ``path``, ``label``.
        preset (Preset): How to decode (frame rate, short side).
        sampler (ClipSampler): Which frames (default every frame).
        flow_backend (str or FlowBackend): For the flow stream (made
            here from a name, so that a bad name fails at once and the
            loader can ask it how its workers start).
        seed (int): Seed of random samplers.
    """

    def __init__(self, records, preset=DEEPMIND_KINETICS, sampler=None,
                 flow_backend='tvl1', seed=0):
        self.records = list(records)
        self.preset = preset
        self.sampler = sampler or AllFrames()
        self.flow_backend = get_flow_backend(flow_backend) \
            if isinstance(flow_backend, str) else flow_backend
        self.seed = seed
        self.epoch = 0

    def __len__(self):
        return len(self.records)

    def video_id(self, i):
        """The id of example ``i``."""
        return self.records[i].video_id

    def read_views(self, i, streams=('rgb',), rng=None):
        """Decodes video ``i`` and returns the sampler's views.

        Returns:
            dict: stream -> ``(V, C, T, H, W)`` float32.

        Raises:
            ValueError: The video cannot be read.
        """
        if rng is None:
            rng = sample_rng(self.seed, self.epoch, i)
        videos = read_video_streams(self.records[i].path, streams,
                                    self.preset, self.flow_backend)
        n_frames = next(iter(videos.values())).shape[1]
        views = numpy.stack(self.sampler(n_frames, rng))
        return {s: numpy.ascontiguousarray(v[:, views].transpose(
            1, 0, 2, 3, 4)) for s, v in videos.items()}
