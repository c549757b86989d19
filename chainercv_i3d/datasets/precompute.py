"""The precompute stage: RGB frames and TV-L1 flow of every video, to disk.

Per video, DeepMind's preprocessing: decode, resample to 25 fps by frame
index, resize so that the short side is 256 (bilinear), keep RGB; TV-L1 flow
between consecutive grayscale frames, truncated to [-20, 20] and quantized to
256 levels. Each video becomes one zip (``precomputed_video``), written
atomically; a per-rank manifest records each video's outcome as it happens,
so a run killed at any moment resumes where it stopped.

Work is shared out by rank (``video_ids[rank::size]`` of the sorted list) and,
within a rank, over worker processes.
"""

import glob
import json
import multiprocessing
import os

from chainercv_i3d.datasets.precomputed_video import precomputed_path
from chainercv_i3d.datasets.precomputed_video import write_precomputed_video
from chainercv_i3d.files import atomic_path
from chainercv_i3d.files import remove_temporaries
from chainercv_i3d.utils.mpi import rank_share
from chainercv_i3d.utils.video import VideoReadError

MANIFEST_NAME = 'manifest.json'
MANIFEST_SHARD_DIR = 'manifest.d'


class PrecomputeConfig(object):
    """What to compute per video; the defaults are DeepMind's.

    Args:
        fps (float): Frame rate to resample to.
        short_side (int): Length of the short side after resizing.
        compute_flow (bool): Also compute optical flow.
        flow_backend (str): Name of the flow backend (``'tvl1'``).
        jpeg_quality (int): JPEG quality of the stored RGB frames.
    """

    def __init__(self, fps=25.0, short_side=256, compute_flow=True,
                 flow_backend='tvl1', jpeg_quality=95):
        self.fps = fps
        self.short_side = short_side
        self.compute_flow = compute_flow
        self.flow_backend = flow_backend
        self.jpeg_quality = jpeg_quality


class PrecomputeFatalError(RuntimeError):
    """An error that stops the run (output not writable, disk full)."""


def decode_and_resample(path, fps, short_side):
    """Decodes ``path`` into RGB frames at ``fps`` with the short side scaled.

    Returns:
        tuple: ``(frames, source_fps)``, frames a list of (H, W, 3) uint8.
    """
    import cv2
    from chainercv_i3d.transforms import resample_frame_indices
    from chainercv_i3d.transforms import short_side_shape
    from chainercv_i3d.utils.video import read_video

    def resize(frame):
        height, width = short_side_shape(frame.shape[0], frame.shape[1],
                                         short_side)
        return cv2.resize(frame, (width, height),
                          interpolation=cv2.INTER_LINEAR)
    # Resizing before picking frames gives the same frames (the two commute)
    # and keeps memory at the output size.
    frames, source_fps = read_video(path, transform_frame=resize)
    indices = resample_frame_indices(len(frames), source_fps, fps)
    return [frames[i] for i in indices], source_fps


def quantized_flow(frames, backend):
    """Flow between consecutive frames, quantized as it is computed."""
    import cv2
    from chainercv_i3d.flow import quantize_flow
    if len(frames) < 2:
        raise VideoReadError('{} frame(s) at the target frame rate: flow '
                             'needs at least 2'.format(len(frames)))
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    return [quantize_flow(backend.compute(a, b))
            for a, b in zip(grays[:-1], grays[1:])]


def precompute_video(entry, output_dir, config, backend=None):
    """Precomputes one video and returns its manifest record.

    A video that cannot be processed (corrupt, empty, too short for flow,
    ...) gives a record with ``status='failed'`` and the reason; a failure to
    write the output raises :class:`PrecomputeFatalError`.

    Args:
        entry (Entry): ``(video_id, path, label)``.
        output_dir (str): The output folder.
        config (PrecomputeConfig): What to compute.
        backend (FlowBackend): The flow backend (made from the config when
            ``None``).

    Returns:
        dict: The manifest record of the video.
    """
    record = {'video_id': entry.video_id, 'label': int(entry.label),
              'source': entry.path}
    try:
        frames, source_fps = decode_and_resample(
            entry.path, config.fps, config.short_side)
        flows = []
        if config.compute_flow:
            if backend is None:
                from chainercv_i3d.flow import get_flow_backend
                backend = get_flow_backend(config.flow_backend)
            flows = quantized_flow(frames, backend)
    except Exception as e:  # any decoding or flow failure is this video's
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ''
        record.update(status='failed',
                      error='{}: {}'.format(type(e).__name__, reason))
        return record
    height, width = frames[0].shape[:2]
    meta = {'video_id': entry.video_id, 'label': int(entry.label),
            'fps': config.fps, 'source_fps': source_fps, 'height': height,
            'width': width, 'flow_bound': 20}
    path = precomputed_path(output_dir, entry.video_id)
    try:
        remove_temporaries(path)  # of a run killed while writing it
        write_precomputed_video(path, meta, frames, flows,
                                config.jpeg_quality)
    except OSError as e:
        raise PrecomputeFatalError('cannot write {}: {}'.format(path, e))
    record.update(status='done', n_frames=len(frames),
                  n_flow_frames=len(flows), source_fps=source_fps,
                  height=height, width=width)
    return record


class _Worker(object):
    """Runs in a worker process: one flow backend per process."""

    def __init__(self, output_dir, config):
        self.output_dir = output_dir
        self.config = config
        self.backend = None

    def __call__(self, entry):
        if self.backend is None and self.config.compute_flow:
            from chainercv_i3d.flow import get_flow_backend
            self.backend = get_flow_backend(self.config.flow_backend)
        try:
            return precompute_video(entry, self.output_dir, self.config,
                                    self.backend)
        except PrecomputeFatalError as e:
            return {'video_id': entry.video_id, 'status': 'fatal',
                    'error': str(e)}


def _single_thread_opencv():
    # Parallelism comes from the worker processes; OpenCV's own threads
    # would oversubscribe the cores.
    import cv2
    cv2.setNumThreads(1)


def _read_shard(path):
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:
                pass  # a line cut short by a killed run
    return records


def read_manifest_shards(output_dir):
    """Returns the last record of every video in the per-rank manifests."""
    latest = {}
    for shard in sorted(glob.glob(os.path.join(
            output_dir, MANIFEST_SHARD_DIR, '*.jsonl'))):
        for record in _read_shard(shard):
            latest[record['video_id']] = record
    return latest


class ManifestShard(object):
    """Appends one JSON line per video, flushed to disk at once."""

    def __init__(self, output_dir, rank):
        folder = os.path.join(output_dir, MANIFEST_SHARD_DIR)
        os.makedirs(folder, exist_ok=True)
        self._file = open(os.path.join(
            folder, 'rank{:05d}.jsonl'.format(rank)), 'a')

    def append(self, record):
        self._file.write(json.dumps(record, sort_keys=True) + '\n')
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self):
        self._file.close()


def check_output_dir(output_dir):
    """Creates ``output_dir`` and checks that files can be written there.

    Raises:
        PrecomputeFatalError: It cannot be created or written.
    """
    probe = os.path.join(output_dir, '.write_test{}'.format(os.getpid()))
    try:
        os.makedirs(os.path.join(output_dir, 'videos'), exist_ok=True)
        with open(probe, 'w') as f:
            f.write('ok')
        os.unlink(probe)
    except OSError as e:
        raise PrecomputeFatalError('output folder {} is not writable: '
                                   '{}'.format(output_dir, e))


def plan_share(entries, output_dir, rank, size, retry_failed=False):
    """Splits the work of one rank into what to do and what is done.

    Args:
        entries (list of Entry): Every video of the dataset.
        rank (int): This rank; ``size`` ranks share the sorted entries.
        retry_failed (bool): Redo videos a manifest records as failed.

    Returns:
        dict: ``todo`` (entries to process), ``already_done`` and
        ``failed_before`` (counts of this rank's share that are skipped).
    """
    share = rank_share(sorted(entries, key=lambda e: e.video_id), rank, size)
    previous = read_manifest_shards(output_dir)
    todo, done, failed = [], 0, 0
    for entry in share:
        if os.path.exists(precomputed_path(output_dir, entry.video_id)):
            done += 1
        elif not retry_failed and previous.get(
                entry.video_id, {}).get('status') == 'failed':
            failed += 1
        else:
            todo.append(entry)
    return {'todo': todo, 'already_done': done, 'failed_before': failed}


def run_share(todo, output_dir, config, n_workers, on_record):
    """Processes ``todo`` with ``n_workers`` processes, calling
    ``on_record(record)`` in this process as each video finishes.

    Raises:
        PrecomputeFatalError: A video could not be written; the workers are
            stopped at once.
    """
    worker = _Worker(output_dir, config)
    if n_workers <= 1:
        results = map(worker, todo)
        pool = None
    else:
        pool = multiprocessing.get_context('fork').Pool(
            n_workers, initializer=_single_thread_opencv)
        results = pool.imap_unordered(worker, todo)
    try:
        for record in results:
            if record['status'] == 'fatal':
                raise PrecomputeFatalError(record['error'])
            on_record(record)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def write_manifest(output_dir, entries, missing_ids=()):
    """Merges the per-rank manifests into ``OUTPUT_DIR/manifest.json``.

    Every entry gets one record: its last recorded outcome; a video whose
    zip exists but whose record was lost (a run killed between the two) is
    rebuilt from the zip; videos listed but missing on disk are ``missing``.

    Returns:
        dict: The counts per status.
    """
    from chainercv_i3d.datasets.precomputed_video import PrecomputedVideo
    latest = read_manifest_shards(output_dir)
    records = []
    for entry in sorted(entries, key=lambda e: e.video_id):
        path = precomputed_path(output_dir, entry.video_id)
        record = latest.get(entry.video_id)
        if os.path.exists(path) and (record is None
                                     or record['status'] != 'done'):
            with PrecomputedVideo(path) as video:
                meta = video.meta
            record = {'video_id': entry.video_id, 'label': int(entry.label),
                      'source': entry.path, 'status': 'done',
                      'n_frames': meta['n_frames'],
                      'n_flow_frames': meta['n_flow_frames'],
                      'source_fps': meta['source_fps'],
                      'height': meta['height'], 'width': meta['width']}
        if record is not None:
            records.append(record)
    records.extend({'video_id': video_id, 'status': 'missing',
                    'error': 'listed in the annotations, not found on disk'}
                   for video_id in sorted(missing_ids))
    counts = {}
    for record in records:
        counts[record['status']] = counts.get(record['status'], 0) + 1
    path = os.path.join(output_dir, MANIFEST_NAME)
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        json.dump({'counts': counts, 'videos': records}, f, indent=1)
    return counts
