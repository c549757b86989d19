"""Feature extraction over many videos: sharded, resumable, one file each,
with a JSON sidecar that says how each file was made."""

import os

import numpy

import chainercv_i3d

from chainercv_i3d.datasets.loader import ExampleLoader
from chainercv_i3d.datasets.loader import start_method
from chainercv_i3d.datasets.precomputed_dataset import PrecomputedVideoDataset
from chainercv_i3d.datasets.precomputed_video import MANIFEST_NAME
from chainercv_i3d.datasets.video_files import VideoFileDataset
from chainercv_i3d.datasets.video_list import read_video_list
from chainercv_i3d.datasets.video_files import frames_to_streams
from chainercv_i3d.files import atomic_path
from chainercv_i3d.files import write_json
from chainercv_i3d.files import stored_settings_differences
from chainercv_i3d.links.i3d_predictor import crop_views
from chainercv_i3d.pretrained.cache import sha256sum
from chainercv_i3d.pretrained.resolve import resolve_pretrained_model
from chainercv_i3d.transforms.feature_options import with_clip_arguments
from chainercv_i3d.transforms.feature_windows import window_steps
from chainercv_i3d.transforms.resample_frame_indices import \
    resample_frame_indices
from chainercv_i3d.utils.storage import needs_pfio
from chainercv_i3d.utils.storage import Storage
from chainercv_i3d.utils.video import decode_and_resample

SETTINGS_NAME = 'extraction.json'

FPS_RULE = ('frame selection: output frame k shows source frame '
            'floor(k * source_fps / fps), the frame on screen at t = k / fps '
            '(chainercv_i3d.transforms.resample_frame_indices; no blending)')


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


def sidecar_path(output_dir, video_id):
    """``OUTPUT_DIR/<video id>.json``, the provenance of the ``.npy``."""
    return os.path.join(output_dir, video_id + '.json')


def extract_share(dataset, indices, predictor, output_dir,
                  endpoint='avgpool', clip_frames=None, clip_stride=None,
                  n_workers=0, on_video=None, on_error=None, options=None,
                  settings=None):
    """Writes the features of ``indices`` of ``dataset``, one ``.npy`` each,
    each with its JSON sidecar (:func:`video_sidecar`).

    A video is done when its sidecar exists (it is written after the
    ``.npy``), so a run started again does only what is missing; each file
    appears whole (:func:`chainercv_i3d.files.atomic_path`). A video that
    cannot be read is reported through ``on_error(video_id, message)`` and
    skipped.

    Args:
        dataset: From :func:`open_video_source`.
        indices (list of int): This rank's videos.
        predictor (I3DPredictor): The models.
        output_dir (str): Where the files go.
        endpoint, clip_frames, clip_stride: As
            :meth:`I3DPredictor.features`.
        n_workers (int): Loader processes (0: load in this process).
        on_video (callable): Called once per video, for progress.
        on_error (callable): Called with ``(video_id, message)``.
        options (FeatureOptions): Windows, crops, frame rate (default:
            the whole video, center crop, the preset's rate);
            ``clip_frames`` and ``clip_stride`` win over its window and
            stride.
        settings (dict): What :func:`extraction_settings` returned, copied
            into every sidecar (default: made here).

    Returns:
        dict: Counts ``done``, ``failed`` and ``already_done``.
    """
    options = with_clip_arguments(options, clip_frames, clip_stride)
    check_source_options(dataset, options)
    if settings is None:
        settings = extraction_settings(predictor, endpoint, options)
    counts = {'done': 0, 'failed': 0, 'already_done': 0}
    todo = []
    for i in indices:
        if os.path.exists(sidecar_path(output_dir, dataset.video_id(i))):
            counts['already_done'] += 1
            if on_video is not None:
                on_video()
        else:
            todo.append(i)
    load = FeatureInputs(dataset, predictor.streams, predictor.preset,
                         options)
    with ExampleLoader(load, n_workers, **loader_options(
            dataset, predictor)) as loader:
        for i, loaded, error in loader.iterate(todo):
            video_id = dataset.video_id(i)
            features = None
            if error is None:
                try:
                    features, windows = predictor.features(
                        loaded['inputs'], endpoint, options=options,
                        return_windows=True)
                except ValueError as e:
                    error = str(e)
            if features is None:
                counts['failed'] += 1
                if on_error is not None:
                    on_error(video_id, error)
            else:
                save_features(feature_path(output_dir, video_id), features)
                write_json(sidecar_path(output_dir, video_id), video_sidecar(
                    video_id, features, windows, loaded, settings),
                    indent=1, sort_keys=True)
                counts['done'] += 1
            if on_video is not None:
                on_video()
    return counts


def check_source_options(dataset, options):
    """Refuses a frame rate that precomputed data cannot give.

    Raises:
        ValueError: ``options.fps`` is set and the data is precomputed at
            another rate (its source frames are gone).
    """
    if options.fps is None or isinstance(dataset, VideoFileDataset):
        return
    stored = dataset.preset.fps
    wanted = None if options.fps == 0 else float(options.fps)
    if wanted != stored:
        raise ValueError(
            'the precomputed frames are at {} fps ({}): they cannot be '
            'resampled to --fps {}; extract from the video files, or leave '
            '--fps out'.format(stored or 'native', 'the source frames are '
                               'not kept', options.fps))


class FeatureInputs(object):
    """Loads video ``i`` as model inputs of all crops, with where its frames
    came from.

    Video files are decoded at their own rate, then resampled to
    ``options.fps`` by frame selection (:data:`FPS_RULE`; ``None``: the
    preset's rate, as :func:`~chainercv_i3d.utils.video.decode_and_resample`
    does; ``0``: native), flow is computed on the resampled frames, then
    the crops are cut (:func:`~chainercv_i3d.links.i3d_predictor.
    crop_views`). Precomputed data gives its stored frames (the "source"
    is then the stored frames, at the stored rate).

    Returns (when called with ``(i, rng)``):
        dict: ``inputs`` (stream -> ``(n_crops, C, T, s, s)``, or
        ``(C, T, s, s)`` for the center crop alone),
        ``source_indices`` (``(T,)`` the source frame of each frame),
        ``n_source_frames``, ``source_fps`` and ``fps`` (effective; ``None``
        where unknown).
    """

    def __init__(self, dataset, streams, preset, options):
        self.dataset = dataset
        self.streams = tuple(streams)
        self.preset = preset
        self.options = options

    def __call__(self, i, rng):
        if isinstance(self.dataset, VideoFileDataset):
            frames, source_fps = decode_and_resample(
                str(self.dataset.records[i].path), None,
                self.preset.short_side)
            wanted = self.preset.fps if self.options.fps is None \
                else (self.options.fps or None)
            n_source = len(frames)
            if wanted is None:
                indices = numpy.arange(n_source, dtype=numpy.int64)
            else:
                indices = resample_frame_indices(n_source, source_fps, wanted)
                frames = [frames[j] for j in indices]
            videos = frames_to_streams(frames, self.streams,
                                       self.dataset.flow_backend)
            fps = float(wanted) if wanted else source_fps
        else:
            videos = {s: v[0] for s, v in self.dataset.read_views(
                i, self.streams, rng).items()}
            n_source = next(iter(videos.values())).shape[1]
            indices = numpy.arange(n_source, dtype=numpy.int64)
            source_fps = fps = self.dataset.preset.fps
        inputs = crop_views(videos, self.preset, self.options.crops)
        if self.options.crops == 'center':  # no crop axis, as always
            inputs = {s: x[0] for s, x in inputs.items()}
        return {'inputs': inputs,
                'source_indices': indices, 'n_source_frames': n_source,
                'source_fps': source_fps, 'fps': fps}


def weights_description(model):
    """``{'model': name or path, 'sha256': of the weights file}`` for a
    model argument (a link given as an object: ``None`` for both)."""
    if model is None or not isinstance(model, str):
        return {'model': None if model is None else type(model).__name__,
                'sha256': None}
    path = resolve_pretrained_model(model).path
    return {'model': model,
            'sha256': None if path is None else sha256sum(path)}


def flow_backend_description(backend):
    """Name, library and library version of a flow backend."""
    if backend.name == 'tvl1':
        import cv2
        return {'name': 'tvl1', 'library': 'opencv', 'version':
                cv2.__version__, 'options': dict(backend.options)}
    on_gpu = backend.device is not None and 'cupy' in str(backend.device)
    if on_gpu:
        import cupy
        library, version = 'cupy', cupy.__version__
    else:
        library, version = 'numpy', numpy.__version__
    return {'name': backend.name, 'library': library, 'version': version,
            'options': dict(backend.options)}


def device_kind(device):
    """``'cpu'`` or ``'gpu'`` (a GPU's features differ in rounding)."""
    return 'gpu' if 'cupy' in str(device) else 'cpu'


def extraction_settings(predictor, endpoint, options, recipe=None,
                        overrides=(), model_args=None):
    """The settings of a run, as ``extraction.json`` and every sidecar
    hold them.

    Args:
        predictor (I3DPredictor): The models.
        endpoint (str): The layer.
        options (FeatureOptions): Windows, crops, frame rate.
        recipe (str): The recipe's name, or ``None``.
        overrides (list of str): Options given beside the recipe that
            changed it.
        model_args (dict): stream -> the model argument (name or ``.npz``)
            the models were made from, for their SHA-256.

    Returns:
        dict: JSON-ready.
    """
    model_args = model_args or {}
    settings = {
        'package': 'chainercv_i3d', 'version': chainercv_i3d.__version__,
        'models': {s: weights_description(model_args.get(s))
                   for s in predictor.streams},
        'recipe': recipe, 'recipe_overrides': list(overrides),
        'endpoint': endpoint, 'options': options.to_dict(),
        'fps_rule': FPS_RULE, 'preset': predictor.preset.name,
        'short_side': predictor.preset.short_side,
        'crop_size': predictor.preset.crop_size,
        'dtype': predictor.dtype, 'device': device_kind(predictor.device),
        'flow_backend': None}
    if 'flow' in predictor.streams:
        settings['flow_backend'] = flow_backend_description(
            predictor.flow_backend)
    return settings


def video_sidecar(video_id, features, windows, loaded, settings):
    """What a video's sidecar holds: the run's settings, the frames and
    rates, the output's shape, and per step its first and last source
    frame and its times (:func:`~chainercv_i3d.transforms.feature_windows.
    window_steps`)."""
    source_fps = loaded['source_fps']
    steps = window_steps(windows, loaded['source_indices'], source_fps) \
        if source_fps else None
    return {'video_id': video_id, 'file': os.path.basename(video_id) +
            '.npy', 'shape': list(features.shape), 'dtype': 'float32',
            'n_source_frames': int(loaded['n_source_frames']),
            'n_frames': int(len(loaded['source_indices'])),
            'source_fps': source_fps, 'fps': loaded['fps'],
            'steps': steps, 'settings': settings}


def claim_output_dir(output_dir, settings):
    """Writes ``extraction.json``, or checks that a run already there had
    the same settings, before any work.

    Raises:
        ValueError: The folder holds a run with other settings (the message
            names each difference), or ``.npy`` files without
            ``extraction.json`` (from a run of an older version, whose
            settings are unknown).
    """
    path = os.path.join(output_dir, SETTINGS_NAME)
    differences = stored_settings_differences(path, settings)
    if differences is not None:
        if differences:
            raise ValueError(
                '{} holds features made with other settings: {}; use '
                'another output folder, or the settings of that run'.format(
                    output_dir, '; '.join(differences)))
        return
    old = _npy_files(output_dir)
    if old and os.path.exists(path):  # another rank claimed it meanwhile
        return claim_output_dir(output_dir, settings)
    if old:
        raise ValueError(
            '{} holds .npy files ({}{}) but no {}: they come from a run '
            'without provenance, whose settings are unknown; move them '
            'away or use another output folder'.format(
                output_dir, old[0], ', ...' if len(old) > 1 else '',
                SETTINGS_NAME))
    write_json(path, settings, indent=1, sort_keys=True)


def _npy_files(folder):
    found = []
    for root, _, files in os.walk(folder):
        found.extend(os.path.relpath(os.path.join(root, f), folder)
                     for f in files if f.endswith('.npy'))
    return sorted(found)


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
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        numpy.save(f, features.astype(numpy.float32))
