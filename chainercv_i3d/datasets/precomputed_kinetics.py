"""Kinetics as written by ``examples/i3d/precompute_frames_flow.py``."""

import json
import os

import numpy

from chainercv_i3d.datasets.getter_dataset import GetterDataset
from chainercv_i3d.datasets.precompute import MANIFEST_NAME
from chainercv_i3d.datasets.precomputed_video import precomputed_path
from chainercv_i3d.datasets.precomputed_video import PrecomputedVideo


def clip_indices(n_available, n_frame=None, start=0):
    """Frame indices of a clip: ``n_frame`` frames from ``start``.

    A video shorter than the clip is repeated from its start (the
    evaluation protocol of the original port); ``n_frame=None`` takes every
    frame from ``start``.
    """
    if n_frame is None:
        return numpy.arange(start, n_available)
    return (start + numpy.arange(n_frame)) % n_available


def read_manifest(output_dir):
    """Returns the records of ``OUTPUT_DIR/manifest.json``.

    Raises:
        ValueError: There is no manifest: the precompute script has not
            finished a run in ``output_dir``.
    """
    path = os.path.join(output_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        raise ValueError(
            'no {} in {}: run examples/i3d/precompute_frames_flow.py into it '
            'first'.format(MANIFEST_NAME, output_dir))
    with open(path) as f:
        return json.load(f)['videos']


class PrecomputedKineticsDataset(GetterDataset):
    """Precomputed Kinetics videos, reading only the frames a clip needs.

    ===========  ===============  ========  ===============================
    key          shape            dtype     range / meaning
    ===========  ===============  ========  ===============================
    ``rgb``      (3, T, H, W)     float32   RGB in [0, 255]
    ``flow``     (2, T, H, W)     float32   pixels in [-20, 20], x then y
    ``label``    ()               int32     [0, n_class - 1]
    ``video_id`` ()               str
    ===========  ===============  ========  ===============================

    ``H`` is the short side given to the precompute script (256). ``T`` is
    ``n_frame`` (the clip repeated from its start when the video is
    shorter), or every frame when ``n_frame`` is None. Flow ``t`` is the
    flow from frame ``t`` to ``t + 1``; the last frame has none, so its flow
    is the last one computed (a video of T frames stores T - 1 flows).

    Args:
        output_dir (str): The precompute script's output folder.
        n_frame (int): Frames per clip, or ``None`` for whole videos.
        keys (tuple of str): The keys of an example.
    """

    def __init__(self, output_dir, n_frame=None, keys=('rgb', 'label')):
        super(PrecomputedKineticsDataset, self).__init__()
        self.output_dir = output_dir
        self.n_frame = n_frame
        records = read_manifest(output_dir)
        self.records = [r for r in records if r['status'] == 'done']
        self.n_not_done = len(records) - len(self.records)
        self.add_getter('rgb', self._get_rgb)
        self.add_getter('flow', self._get_flow)
        self.add_getter('label', lambda i: numpy.int32(
            self.records[i]['label']))
        self.add_getter('video_id', lambda i: self.records[i]['video_id'])
        self.keys = keys

    def __len__(self):
        return len(self.records)

    def _open(self, i):
        return PrecomputedVideo(precomputed_path(
            self.output_dir, self.records[i]['video_id']))

    def _get_rgb(self, i):
        with self._open(i) as video:
            return video.read_rgb(clip_indices(video.n_frames, self.n_frame))

    def _get_flow(self, i):
        with self._open(i) as video:
            if video.n_flow_frames == 0:
                raise ValueError('{}: precomputed without flow (rerun the '
                                 'precompute script without '
                                 '--no_compute_flow)'.format(
                                     self.records[i]['video_id']))
            indices = clip_indices(video.n_frames, self.n_frame)
            return video.read_flow(numpy.minimum(
                indices, video.n_flow_frames - 1))
