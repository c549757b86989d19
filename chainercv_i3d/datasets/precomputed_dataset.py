"""Videos as written by ``examples/i3d/precompute_frames_flow.py``."""

import json

import numpy

from chainercv_i3d.datasets.clip_samplers import AllFrames
from chainercv_i3d.datasets.clip_samplers import FirstFrames
from chainercv_i3d.datasets.clip_samplers import flow_frame_indices
from chainercv_i3d.datasets.clip_samplers import sample_rng
from chainercv_i3d.datasets.getter_dataset import GetterDataset
from chainercv_i3d.datasets.precomputed_video import MANIFEST_NAME
from chainercv_i3d.datasets.precomputed_video import precomputed_member
from chainercv_i3d.datasets.precomputed_video import PrecomputedVideo
from chainercv_i3d.label_names import numbered_label_names
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.presets import preset_from_dict
from chainercv_i3d.utils.storage import Storage


def read_manifest(storage):
    """Returns the manifest of a precomputed folder as a dict.

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
        return json.loads(f.read().decode('utf-8'))


def manifest_preset(manifest):
    """The preset a precomputed folder was made with.

    Folders written before presets existed were always made with
    DeepMind's Kinetics preprocessing; their label names are then unknown.
    """
    if 'preset' in manifest:
        return preset_from_dict(manifest['preset'])
    return DEEPMIND_KINETICS


class PrecomputedVideoDataset(GetterDataset):
    """Precomputed videos, reading only the frames a clip sampler picks.

    ============ ==================  ========  ==============================
    key          shape               dtype     range / meaning
    ============ ==================  ========  ==============================
    ``rgb``      (3, T, H, W)        float32   RGB in [0, 255]
    ``flow``     (2, T, H, W)        float32   pixels in ``[-b, b]``, x then y
    ``label``    ()                  int32     [0, n_class - 1]; -1 when
                                               multi-label
    ``labels``   (n_class,)          int32     multi-label: 1 for each class
                                               of the video, else 0
    ``video_id`` ()                  str
    ============ ==================  ========  ==============================

    A multi-label set (``preset.multi_label``: Charades) stores each
    video's label set and action intervals; :meth:`clip_labels` gives the
    classes a clip's frames show.

    ``H`` is the short side the precompute stage used (``preset``), ``b``
    its flow bound. ``T`` and the frames are the ``sampler``'s; a sampler
    of several views (:class:`~chainercv_i3d.datasets.UniformClips`) gives
    ``(V, C, T, H, W)`` instead. Flow ``t`` is the flow from frame ``t`` to
    ``t + 1``; the last frame has none and reuses the last one computed.
    Samplers that draw at random use :func:`sample_rng` of ``(seed, epoch,
    i)``: set ``dataset.epoch`` each epoch.

    Attributes:
        preset (Preset): What the precompute stage wrote into its manifest
            (``label_names`` the dataset's class names when it wrote them).
        label_names (tuple of str): The class names of the labels.
        records (list of dict): The manifest records of the videos done.
        n_not_done (int): Videos listed but missing or failed.

    Args:
        root (str): The precompute script's output folder, or the same as a
            zip archive or another pfio URL (``s3://...``).
        sampler (ClipSampler): Which frames; default every frame, or the
            first ``n_frame`` frames (looped) when ``n_frame`` is given.
        n_frame (int): Shorthand for ``sampler=FirstFrames(n_frame)``.
        keys (tuple of str): The keys of an example.
        use_pfio (bool): Read a local folder through pfio too.
        seed (int): Seed of the random samplers.
    """

    def __init__(self, root, sampler=None, n_frame=None,
                 keys=('rgb', 'label'), use_pfio=False, seed=0):
        super(PrecomputedVideoDataset, self).__init__()
        if sampler is not None and n_frame is not None:
            raise ValueError('give sampler or n_frame, not both')
        if sampler is None:
            sampler = AllFrames() if n_frame is None else FirstFrames(n_frame)
        self.sampler = sampler
        self.storage = Storage(root, use_pfio)
        manifest = read_manifest(self.storage)
        self.preset = manifest_preset(manifest)
        records = manifest['videos']
        self.records = [r for r in records if r['status'] == 'done']
        self.n_not_done = len(records) - len(self.records)
        self.seed = seed
        self.epoch = 0
        self.add_getter('rgb', self._get_rgb)
        self.add_getter('flow', self._get_flow)
        self.add_getter('label', self._get_label)
        self.add_getter('labels', self.video_labels)
        self.add_getter('video_id', self._get_video_id)
        self.keys = keys

    @property
    def label_names(self):
        if self.preset.label_names is not None:
            return self.preset.label_names
        labels = [r['label'] for r in self.records]
        return numbered_label_names(max(labels) + 1 if labels else 0)

    def _get_label(self, i):
        return numpy.int32(self.records[i]['label'])

    @property
    def multi_label(self):
        """Whether videos have label sets (``preset.multi_label``)."""
        return self.preset.multi_label

    def label_set(self, i):
        """The classes of video ``i``: its ``labels`` in a multi-label set,
        else its one label (-1: unlabelled)."""
        return self.records[i].get('labels', [self.records[i]['label']])

    def video_labels(self, i):
        """The label set of video ``i`` as ``(n_class,)`` int32 0/1 (its
        single label for a single-label set)."""
        hot = numpy.zeros(len(self.label_names), numpy.int32)
        hot[[label for label in self.label_set(i) if label >= 0]] = 1
        return hot

    def clip_labels(self, i, frames):
        """The classes the frames ``frames`` of video ``i`` show: each
        action overlapping one of them (:func:`frame_labels`), as
        ``(n_class,)`` int32 0/1. Single-label sets: the video's label."""
        if 'actions' not in self.records[i]:
            return self.video_labels(i)
        return frame_labels(self.records[i]['actions'], frames,
                            self.frame_rate(i),
                            len(self.label_names)).max(axis=0)

    def frame_rate(self, i):
        """Frames per second of the stored video ``i``: the preset's, or
        the video's own when the preset keeps it."""
        return self.preset.fps or self.records[i]['source_fps']

    def video_id(self, i):
        """The id of example ``i``."""
        return self.records[i]['video_id']

    def _get_video_id(self, i):
        return self.video_id(i)

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

    def n_frames(self, i):
        """Frames of video ``i``, from the manifest (nothing is read)."""
        return self.records[i]['n_frames']

    def sample_frames(self, i, rng=None):
        """The sampler's views of example ``i``: ``(V, T)`` frame indices.

        Args:
            i (int): The example.
            rng (numpy.random.Generator): For random samplers; default
                :func:`sample_rng` of ``(seed, epoch, i)``.
        """
        if rng is None:
            rng = sample_rng(self.seed, self.epoch, i)
        return numpy.stack(self.sampler(self.n_frames(i), rng))

    def read_views(self, i, streams=('rgb',), rng=None, frames=None):
        """Reads the sampler's views of example ``i`` for each stream.

        Each distinct frame is decoded once, however many views hold it.

        Args:
            i (int): The example.
            streams (tuple of str): ``'rgb'`` and/or ``'flow'``.
            rng (numpy.random.Generator): For random samplers; default
                :func:`sample_rng` of ``(seed, epoch, i)``.
            frames (numpy.ndarray): The views' frame indices, ``(V, T)``
                (default :meth:`sample_frames` with ``rng``).

        Returns:
            dict: stream -> ``(V, C, T, H, W)`` float32 (see the class
            docstring for the ranges).

        Raises:
            ValueError: The video is missing, unreadable, or has no flow.
        """
        views = self.sample_frames(i, rng) if frames is None else frames
        out = {}
        with self.open_video(i) as video:
            if 'rgb' in streams:
                out['rgb'] = _read_distinct(video.read_rgb, views)
            if 'flow' in streams:
                if video.n_flow_frames == 0:
                    raise ValueError(
                        '{}: precomputed without flow (rerun the precompute '
                        'script without --no_compute_flow)'.format(
                            self.records[i]['video_id']))
                out['flow'] = _read_distinct(
                    video.read_flow,
                    flow_frame_indices(views, video.n_flow_frames))
        return out

    def read_clip(self, i, streams=('rgb',)):
        """The single view of example ``i`` per stream, ``(C, T, H, W)``.

        Raises:
            ValueError: As :meth:`read_views`, or the sampler gives several
                views.
        """
        if self.sampler.n_views != 1:
            raise ValueError('{!r} gives {} views; use read_views'.format(
                self.sampler, self.sampler.n_views))
        return {s: v[0] for s, v in self.read_views(i, streams).items()}

    def _get_stream(self, i, stream):
        views = self.read_views(i, (stream,))[stream]
        return views[0] if self.sampler.n_views == 1 else views

    def _get_rgb(self, i):
        return self._get_stream(i, 'rgb')

    def _get_flow(self, i):
        return self._get_stream(i, 'flow')


def frame_labels(actions, frames, fps, n_class):
    """Which actions each frame shows: frame ``t`` (at ``t / fps`` seconds
    from the start) shows an action ``(label, start, end)`` when ``start <=
    t / fps <= end``.

    Args:
        actions (list): ``(label, start, end)``, seconds.
        frames (numpy.ndarray): Frame indices, any shape.
        fps (float): Frames per second of the stored video.
        n_class (int): Classes.

    Returns:
        numpy.ndarray: ``frames.shape + (n_class,)`` int32 0/1.

    Example:
        >>> frame_labels([(1, 0.5, 1.0)], numpy.array([0, 20]), 25.0, 3)
        array([[0, 0, 0],
               [0, 1, 0]], dtype=int32)
    """
    times = numpy.asarray(frames, numpy.float64) / fps
    hot = numpy.zeros(times.shape + (n_class,), numpy.int32)
    for label, start, end in actions:
        hot[..., int(label)] |= (start <= times) & (times <= end)
    return hot


def check_model_inputs(dataset, streams, crop_size):
    """Refuses at once what would fail on every video: a stream the videos
    were precomputed without, or a crop larger than their frames (from the
    manifest: nothing is read).

    Args:
        dataset (PrecomputedVideoDataset): The videos.
        streams (iterable of str): The models' streams.
        crop_size (int): The side of the square crop the models take.

    Raises:
        ValueError: One line naming the folder, a video and what to do.
    """
    records = dataset.records
    if 'flow' in streams:
        no_flow = [r for r in records if r.get('n_flow_frames') == 0]
        if no_flow:
            raise ValueError(
                '{} was precomputed without flow ({} of {} videos, e.g. {}): '
                'a flow model cannot be evaluated on it; rerun the precompute '
                'script without --no_compute_flow, or give an RGB model '
                'only'.format(dataset.storage.root, len(no_flow),
                              len(records), no_flow[0]['video_id']))
    sized = [r for r in records if 'height' in r and 'width' in r]
    if sized:
        smallest = min(sized, key=lambda r: min(r['height'], r['width']))
        side = min(smallest['height'], smallest['width'])
        if crop_size > side:
            raise ValueError(
                'crops of {} px do not fit the frames of {} ({}x{} in {}): '
                'give a crop size of at most {}, or precompute with a '
                'larger --short_side'.format(
                    crop_size, smallest['video_id'], smallest['width'],
                    smallest['height'], dataset.storage.root, side))


def _read_distinct(read, views):
    # views: (V, T) frame indices; read(indices) -> (C, len, H, W).
    distinct, where = numpy.unique(views, return_inverse=True)
    frames = read(distinct)
    return numpy.ascontiguousarray(
        frames[:, where.reshape(views.shape)].transpose(1, 0, 2, 3, 4))


# The name of earlier releases: nothing in it is specific to Kinetics.
PrecomputedKineticsDataset = PrecomputedVideoDataset
