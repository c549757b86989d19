"""Feature extraction over many videos: sharded, resumable, one file each."""

import os

import numpy

from chainercv_i3d.datasets.loader import ExampleLoader
from chainercv_i3d.datasets.loader import start_method
from chainercv_i3d.datasets.loader import VideoViews
from chainercv_i3d.datasets.precomputed_dataset import PrecomputedVideoDataset
from chainercv_i3d.datasets.precomputed_video import MANIFEST_NAME
from chainercv_i3d.datasets.video_files import VideoFileDataset
from chainercv_i3d.datasets.video_list import read_video_list
from chainercv_i3d.files import atomic_path
from chainercv_i3d.transforms.clip_transform import ClipTransform
from chainercv_i3d.utils.storage import needs_pfio
from chainercv_i3d.utils.storage import Storage


def open_video_source(path, preset, flow_backend='tvl1'):
    """Whole videos from a file, a folder of files, or precomputed data.

    Args:
        path (str): A video file, a folder of videos (searched
            recursively), or the precompute stage's output (a folder, zip
            archive or pfio URL with ``manifest.json``, whose frames and
            flow are used).
        preset (Preset): How to decode video files (the model's).
        flow_backend (str or FlowBackend): Flow backend for video files.

    Returns:
        A dataset with ``video_id(i)`` and ``read_views``; its sampler
        gives every frame.

    Raises:
        ValueError: Nothing to read at ``path``.
    """
    if (os.path.isdir(path) or needs_pfio(path)) \
            and Storage(path).exists(MANIFEST_NAME):
        return PrecomputedVideoDataset(path)
    video_list = read_video_list('files', path)
    return VideoFileDataset(video_list.records, preset,
                            flow_backend=flow_backend)


def feature_path(output_dir, video_id):
    """``OUTPUT_DIR/<video id>.npy`` (an id may name a subfolder)."""
    return os.path.join(output_dir, video_id + '.npy')


def extract_share(dataset, indices, predictor, output_dir,
                  endpoint='avgpool', clip_frames=None, clip_stride=None,
                  n_workers=0, on_video=None, on_error=None):
    """Writes the features of ``indices`` of ``dataset``, one ``.npy`` each.

    Existing files are kept, so a run started again does only what is
    missing; each file appears whole (:func:`chainercv_i3d.files.
    atomic_path`). A video that cannot be read is reported through
    ``on_error(video_id, message)`` and skipped.

    Args:
        dataset: From :func:`open_video_source`.
        indices (list of int): This rank's videos.
        predictor (I3DPredictor): The models.
        output_dir (str): Where the ``.npy`` files go.
        endpoint, clip_frames, clip_stride: As
            :meth:`I3DPredictor.features`.
        n_workers (int): Loader processes (0: load in this process).
        on_video (callable): Called once per video, for progress.
        on_error (callable): Called with ``(video_id, message)``.

    Returns:
        dict: Counts ``done``, ``failed`` and ``already_done``.
    """
    counts = {'done': 0, 'failed': 0, 'already_done': 0}
    todo = []
    for i in indices:
        if os.path.exists(feature_path(output_dir, dataset.video_id(i))):
            counts['already_done'] += 1
            if on_video is not None:
                on_video()
        else:
            todo.append(i)
    load = VideoViews(dataset, predictor.streams,
                      ClipTransform(predictor.preset, 'center'))
    with ExampleLoader(load, n_workers, **loader_options(
            dataset, predictor)) as loader:
        for i, views, error in loader.iterate(todo):
            video_id = dataset.video_id(i)
            features = None
            if error is None:
                try:
                    features = predictor.features(
                        {s: v[0] for s, v in views.items()}, endpoint,
                        clip_frames, clip_stride)
                except ValueError as e:
                    error = str(e)
            if features is None:
                counts['failed'] += 1
                if on_error is not None:
                    on_error(video_id, error)
            else:
                save_features(feature_path(output_dir, video_id), features)
                counts['done'] += 1
            if on_video is not None:
                on_video()
    return counts


def loader_options(dataset, predictor):
    """How the loader's workers start: spawned beside a GPU, and as the
    flow backend asks when they compute flow from video files."""
    mp_context = start_method(predictor.device)
    backend = getattr(dataset, 'flow_backend', None)
    if backend is None or 'flow' not in predictor.streams:
        return {'mp_context': mp_context}
    if backend.mp_context != 'fork':
        mp_context = backend.mp_context
    return {'mp_context': mp_context, 'worker_init': backend.worker_init}


def save_features(path, features):
    """Writes float32 ``features`` to ``path`` whole, making its folder."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        numpy.save(f, features.astype(numpy.float32))
