"""Kinetics as written by ``examples/i3d/precompute_frames_flow.py``."""

import json

import numpy

from chainercv_i3d.datasets.getter_dataset import GetterDataset
from chainercv_i3d.datasets.precompute import MANIFEST_NAME
from chainercv_i3d.datasets.precomputed_video import precomputed_member
from chainercv_i3d.datasets.precomputed_video import PrecomputedVideo
from chainercv_i3d.utils.storage import Storage


def clip_indices(n_available, n_frame=None, start=0):
    """Frame indices of a clip: ``n_frame`` frames from ``start``.

    A video shorter than the clip is repeated from its start (the
    evaluation protocol of the original port); ``n_frame=None`` takes every
    frame from ``start``.
    """
    if n_frame is None:
        return numpy.arange(start, n_available)
    return (start + numpy.arange(n_frame)) % n_available


def read_manifest(storage):
    """Returns the records of the manifest of a precomputed folder.

    Args:
        storage (Storage): The precompute script's output.

    Raises:
        ValueError: There is no manifest: the precompute script has not
            finished a run there.
    """
    if not storage.exists(MANIFEST_NAME):
        raise ValueError(
            'no {} in {}: run examples/i3d/precompute_frames_flow.py into it '
            'first'.format(MANIFEST_NAME, storage.root))
    with storage.open(MANIFEST_NAME, 'rb') as f:
        return json.loads(f.read().decode('utf-8'))['videos']


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
        root (str): The precompute script's output folder, or the same as a
            zip archive or another pfio URL (``s3://...``).
        n_frame (int): Frames per clip, or ``None`` for whole videos.
        keys (tuple of str): The keys of an example.
        use_pfio (bool): Read a local folder through pfio too.
    """

    def __init__(self, root, n_frame=None, keys=('rgb', 'label'),
                 use_pfio=False):
        super(PrecomputedKineticsDataset, self).__init__()
        self.storage = Storage(root, use_pfio)
        self.n_frame = n_frame
        records = read_manifest(self.storage)
        self.records = [r for r in records if r['status'] == 'done']
        self.n_not_done = len(records) - len(self.records)
        self.add_getter('rgb', self._get_rgb)
        self.add_getter('flow', self._get_flow)
        self.add_getter('label', self._get_label)
        self.add_getter('video_id', self._get_video_id)
        self.keys = keys

    def _get_label(self, i):
        return numpy.int32(self.records[i]['label'])

    def _get_video_id(self, i):
        return self.records[i]['video_id']

    def __len__(self):
        return len(self.records)

    def open_video(self, i):
        """Opens the precomputed video of example ``i``.

        Raises:
            ValueError: Its file is missing or is not a precomputed video.
        """
        member = precomputed_member(self.records[i]['video_id'])
        try:
            source = self.storage.open(member, 'rb')
        except OSError as e:
            raise ValueError('cannot open {} in {}: {}'.format(
                member, self.storage.root, e))
        return PrecomputedVideo(source)

    def read_clip(self, i, streams=('rgb',)):
        """Reads the clip of example ``i`` for each of ``streams``.

        Args:
            i (int): The example.
            streams (tuple of str): ``'rgb'`` and/or ``'flow'``.

        Returns:
            dict: stream -> (C, T, H, W) float32 (see the class docstring).

        Raises:
            ValueError: The video is missing, unreadable, or has no flow.
        """
        clip = {}
        with self.open_video(i) as video:
            indices = clip_indices(video.n_frames, self.n_frame)
            if 'rgb' in streams:
                clip['rgb'] = video.read_rgb(indices)
            if 'flow' in streams:
                if video.n_flow_frames == 0:
                    raise ValueError(
                        '{}: precomputed without flow (rerun the precompute '
                        'script without --no_compute_flow)'.format(
                            self.records[i]['video_id']))
                clip['flow'] = video.read_flow(numpy.minimum(
                    indices, video.n_flow_frames - 1))
        return clip

    def _get_rgb(self, i):
        return self.read_clip(i, ('rgb',))['rgb']

    def _get_flow(self, i):
        return self.read_clip(i, ('flow',))['flow']
