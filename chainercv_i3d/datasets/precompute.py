"""The precompute stage: RGB frames and optical flow of every video, to disk.

Per video, the preprocessing of a preset (DeepMind's by default): decode,
resample to the preset's frame rate by frame index, resize so that the short
side is the preset's (bilinear), keep RGB; optical flow between consecutive
grayscale frames (TV-L1 by default), truncated to the preset's flow bound and
quantized to 256 levels. Each video becomes one zip (``precomputed_video``)
whose ``meta.json`` holds the preset, written atomically; a per-rank manifest
records each video's outcome as it happens, so a run killed at any moment
resumes where it stopped; ``manifest.json`` merges them at the end, with the
preset and the video list's name.

Work is shared out by rank (every ``size``-th video of the sorted list) and,
within a rank, over worker processes that start as the flow backend says
(``mp_context``, ``worker_init``).
"""

import concurrent.futures
import concurrent.futures.process
import copy
import glob
import json
import os
import signal
import sys
import traceback

from chainercv_i3d.datasets.precomputed_video import MANIFEST_NAME
from chainercv_i3d.datasets.precomputed_video import precomputed_path
from chainercv_i3d.datasets.precomputed_video import PrecomputedVideo
from chainercv_i3d.datasets.precomputed_video import write_precomputed_video
from chainercv_i3d.datasets.video_list import record_labels
from chainercv_i3d.files import atomic_path
from chainercv_i3d.files import check_output_dir
from chainercv_i3d.files import OutputPathError
from chainercv_i3d.files import stored_settings_differences
from chainercv_i3d.files import remove_temporaries
from chainercv_i3d.flow import get_flow_backend
from chainercv_i3d.flow import quantized_video_flow
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.presets import Preset
from chainercv_i3d.utils.comm import rank_share
from chainercv_i3d.utils.comm import sum_counts
from chainercv_i3d.utils.interrupts import prepare_worker
from chainercv_i3d.utils.interrupts import starting_workers
from chainercv_i3d.utils.interrupts import worker_context
from chainercv_i3d.utils.progress import all_ranks_bar
from chainercv_i3d.utils.video import decode_and_resample
from chainercv_i3d.utils.video import stop_opencv_threads

MANIFEST_SHARD_DIR = 'manifest.d'
SETTINGS_NAME = 'settings.json'  # in MANIFEST_SHARD_DIR


class PrecomputeConfig(object):
    """What to compute per video; the defaults are DeepMind's.

    Frame rate, short side and flow bound come from the preset.

    Args:
        preset (Preset): ``fps`` (``None``: each video's own rate),
            ``short_side`` and ``flow_bound``; written into every video's
            ``meta.json`` and the manifest.
        compute_flow (bool): Also compute optical flow.
        flow_backend (str): Name of a registered flow backend (``'tvl1'``).
        flow_options (dict): Options of the flow backend.
        jpeg_quality (int): JPEG quality of the stored RGB frames, 0-100.
        device: Where the flow backend runs (``None``: its default).

    Raises:
        ValueError: A bad value, or a flow backend that does not exist or
            refuses the options or the device.
    """

    def __init__(self, preset=DEEPMIND_KINETICS, compute_flow=True,
                 flow_backend='tvl1', flow_options=None, jpeg_quality=95,
                 device=None):
        if not isinstance(preset, Preset):
            raise ValueError('preset must be a Preset, not {!r}'.format(
                preset))
        if isinstance(jpeg_quality, bool) or not (
                isinstance(jpeg_quality, int) and 0 <= jpeg_quality <= 100):
            raise ValueError('jpeg_quality must be an integer in [0, 100], '
                             'not {!r}'.format(jpeg_quality))
        self.preset = preset
        self.compute_flow = bool(compute_flow)
        self.flow_backend = flow_backend
        self.flow_options = dict(flow_options or {})
        self.jpeg_quality = jpeg_quality
        self.device = device
        self.make_flow_backend()  # refuses a bad backend before any work

    @property
    def fps(self):
        return self.preset.fps

    @property
    def short_side(self):
        return self.preset.short_side

    @property
    def flow_bound(self):
        return self.preset.flow_bound

    def make_flow_backend(self):
        """Returns a new flow backend, or ``None`` without flow."""
        if not self.compute_flow:
            return None
        return get_flow_backend(self.flow_backend, self.device,
                                **self.flow_options)

    def with_label_names(self, label_names, multi_label=False):
        """A copy whose preset has ``label_names`` (those of the video list
        whose labels the outputs store; empty: unlabelled, ``None``) and
        ``multi_label`` (the list's videos have label sets: Charades).

        Raises:
            ValueError: The preset names other classes.
        """
        label_names = tuple(label_names) or None
        if self.preset.label_names not in (None, label_names):
            raise ValueError(
                'the preset {!r} has {} class names, the video list {}: '
                'stored labels would index another vocabulary'.format(
                    self.preset.name, len(self.preset.label_names),
                    len(label_names or ())))
        # A copy, not a new config: the backend was checked already.
        named = copy.copy(self)
        named.preset = self.preset.replace(label_names=label_names,
                                           multi_label=bool(multi_label))
        return named

    def settings(self):
        """What decides the output, as a JSON-ready dict (the device does
        not)."""
        return {'preset': self.preset.to_dict(),
                'compute_flow': self.compute_flow,
                'flow_backend': self.flow_backend,
                'flow_options': self.flow_options,
                'jpeg_quality': self.jpeg_quality}


def make_preset(fps, short_side, base=DEEPMIND_KINETICS):
    """``base`` with another frame rate or short side (the scripts' options).

    The copy is named ``'custom'`` when a value differs, so that the
    manifest never calls other preprocessing by ``base``'s name.

    Args:
        fps (float): Frame rate; ``None`` keeps each video's own.
        short_side (int): Short side after resizing.
        base (Preset): The preset to start from.
    """
    if (fps, short_side) == (base.fps, base.short_side):
        return base
    return base.replace(name='custom', fps=fps, short_side=short_side)


class PrecomputeFatalError(RuntimeError):
    """An error that stops the run (output not writable, disk full)."""


def _error_line(e):
    reason = str(e).strip().splitlines()[0] if str(e).strip() else ''
    return '{}: {}'.format(type(e).__name__, reason)


def label_fields(record):
    """The manifest fields of a record's labels: ``label``, and for a
    multi-label record (``actions`` not ``None``) ``labels`` (its sorted
    label set) and ``actions`` (``[label, start, end]`` in seconds)."""
    fields = {'label': int(record.label)}
    if record.actions is not None:
        fields['labels'] = sorted(record_labels(record))
        fields['actions'] = [[int(label), float(start), float(end)]
                             for label, start, end in record.actions]
    return fields


def precompute_video(record, output_dir, config, backend=None):
    """Precomputes one video and returns its manifest record.

    A video that cannot be processed (corrupt, empty, too short for flow,
    ...) gives a record with ``status='failed'`` and the reason; a failure to
    write the output raises :class:`PrecomputeFatalError`.

    Args:
        record (VideoRecord): ``(video_id, path, label)``.
        output_dir (str): The output folder.
        config (PrecomputeConfig): What to compute.
        backend (FlowBackend): The flow backend (made from the config when
            ``None``).

    Returns:
        dict: The manifest record of the video.
    """
    preset = config.preset
    result = dict(label_fields(record), video_id=record.video_id,
                  source=record.path)
    try:
        frames, source_fps = decode_and_resample(
            record.path, preset.fps, preset.short_side)
        flows = ()
        if config.compute_flow:
            if backend is None:
                backend = config.make_flow_backend()
            flows = quantized_video_flow(frames, backend, preset.flow_bound)
    except Exception as e:  # any decoding or flow failure is this video's
        result.update(status='failed', error=_error_line(e))
        return result
    height, width = frames[0].shape[:2]
    meta = {'video_id': record.video_id, 'label': int(record.label),
            'fps': preset.fps, 'source_fps': source_fps, 'height': height,
            'width': width, 'flow_bound': preset.flow_bound,
            'preset': preset.to_dict()}
    path = precomputed_path(output_dir, record.video_id)
    try:
        remove_temporaries(path)  # of a run killed while writing it
        write_precomputed_video(path, meta, frames, list(flows),
                                config.jpeg_quality)
    except OSError as e:
        raise PrecomputeFatalError('cannot write {}: {}'.format(path, e))
    result.update(status='done', n_frames=len(frames),
                  n_flow_frames=len(flows), source_fps=source_fps,
                  height=height, width=width)
    return result


class _Worker(object):
    """Precomputes one video; sent to the worker processes with its
    backend."""

    def __init__(self, output_dir, config, backend):
        self.output_dir = output_dir
        self.config = config
        self.backend = backend

    def __call__(self, record):
        try:
            return precompute_video(record, self.output_dir, self.config,
                                    self.backend)
        except PrecomputeFatalError as e:
            return {'video_id': record.video_id, 'status': 'fatal',
                    'error': str(e)}


def _start_worker(backend, parent_pid):
    """A worker's first step. One that cannot start (no GPU memory, say)
    prints why and exits with status 1 itself: an executor would only log
    it, and nothing shows a log unless it is set up."""
    try:
        _init_worker(backend, parent_pid)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


def _init_worker(backend, parent_pid):
    prepare_worker(parent_pid)
    import cv2
    # Parallelism comes from the worker processes: decoding and encoding
    # (OpenCV) run on one thread each, as the backend's own work does.
    cv2.setNumThreads(1)
    if backend is not None:
        backend.worker_init()


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


def check_output_folder(output_dir):
    """Checks that ``output_dir`` can be written
    (:func:`chainercv_i3d.files.check_output_dir`); the files written create
    it.

    Raises:
        PrecomputeFatalError: It is a file, or it cannot be written.
    """
    try:
        check_output_dir(output_dir)
    except OutputPathError as e:
        raise PrecomputeFatalError('output folder: {}'.format(e))


def check_same_settings(output_dir, settings):
    """Records the settings of the first run into ``output_dir``; a later
    run (a resume) must have the same, or its videos would not match.

    Args:
        output_dir (str): The output folder (created if missing).
        settings (dict): JSON-ready (``PrecomputeConfig.settings()`` and the
            video list's name).

    Raises:
        ValueError: ``output_dir`` was started with other settings.
    """
    path = os.path.join(output_dir, MANIFEST_SHARD_DIR, SETTINGS_NAME)
    settings = json.loads(json.dumps(settings))  # tuples as JSON lists
    differences = stored_settings_differences(path, settings)
    if differences is not None:
        if differences:
            raise ValueError(
                '{} was started with other settings ({}{}): resume with '
                'the same options, or write into another folder'.format(
                    output_dir, '; '.join(differences[:3]),
                    '; ...' if len(differences) > 3 else ''))
        return
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        json.dump(settings, f, indent=1, sort_keys=True)


def plan_share(records, output_dir, rank, size, retry_failed=False):
    """Splits the work of one rank into what to do and what is done.

    Args:
        records (list of VideoRecord): Every video found.
        output_dir (str): The output folder.
        rank (int): This rank; ``size`` ranks share the records sorted by
            video id.
        size (int): The number of ranks.
        retry_failed (bool): Redo videos a manifest records as failed.

    Returns:
        dict: ``todo`` (records to process), ``already_done`` and
        ``failed_before`` (counts of this rank's share that are skipped).
    """
    share = rank_share(sorted(records, key=lambda r: r.video_id), rank,
                       size)
    previous = read_manifest_shards(output_dir)
    todo, done, failed = [], 0, 0
    for record in share:
        if os.path.exists(precomputed_path(output_dir, record.video_id)):
            done += 1
        elif not retry_failed and previous.get(
                record.video_id, {}).get('status') == 'failed':
            failed += 1
        else:
            todo.append(record)
    return {'todo': todo, 'already_done': done, 'failed_before': failed}


def _kill(workers):
    for process in workers:
        if process.pid is not None and process.exitcode is None:
            process.kill()
    for process in workers:
        if process.pid is not None:
            process.join()


def _stop_workers(executor, workers):
    """Kills the workers at once, then ends their executor. Should a
    second Ctrl-C come first, the executor still cancels the videos not
    yet started (at exit, it would hand them all out, one by one)."""
    try:
        _kill(workers)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _how_the_pool_broke(workers):
    """How the first of the workers (all ended) to end ended: one that
    exited or died of another signal than SIGKILL, as its executor then
    killed the others."""
    endings = [p.exitcode for p in workers if p.exitcode is not None]
    others = [code for code in endings if code != -signal.SIGKILL]
    exitcode = others[0] if others else -signal.SIGKILL
    if exitcode == -signal.SIGKILL:
        return ('died (killed by SIGKILL, perhaps for want of memory: a '
                'smaller --num_preprocess_workers needs less)')
    if exitcode < 0:
        return 'died (killed by {})'.format(signal.Signals(-exitcode).name)
    return 'ended early (exit status {}, after its message above)'.format(
        exitcode)


def _results_of_workers(executor, work, todo, workers):
    """Yields ``work(record)`` for each record of ``todo`` as a worker
    returns it.

    Raises:
        PrecomputeFatalError: A worker died (killed, out of memory) or
            could not start: the executor is broken and returns no more.
    """
    try:
        with starting_workers():  # workers start as the work is submitted
            futures = [executor.submit(work, record) for record in todo]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()
    except concurrent.futures.process.BrokenProcessPool:
        # Its thread kills and reaps every worker. Reaped here as well, a
        # worker's status could be lost to the other thread's reaping.
        executor.shutdown(wait=True)
        raise PrecomputeFatalError(
            'a worker process {}; run the same command to continue'.format(
                _how_the_pool_broke(workers))) from None


def run_share(todo, output_dir, config, n_workers, on_record):
    """Processes ``todo`` with ``n_workers`` processes, calling
    ``on_record(result)`` in this process as each video finishes.

    Worker processes start with the flow backend's ``mp_context`` and run
    its ``worker_init`` (``'fork'`` without flow); ``n_workers=1`` works in
    this process. When every video is done the workers end as their
    executor tells them; otherwise (an error, Ctrl-C, a worker that died)
    they are killed at once, and the files they were writing are removed
    here.

    A ``ProcessPoolExecutor``, not a ``multiprocessing.Pool``: a pool
    replaces a dead worker but never returns its video, and its
    ``terminate`` waits for ever for a lock that a worker killed while it
    waited for work still holds. An executor's workers are watched by its
    own thread: one that dies breaks it, and every video still to come
    fails at once.

    Raises:
        PrecomputeFatalError: A video could not be written, or a worker
            died; the workers are stopped at once.
    """
    backend = config.make_flow_backend()
    worker = _Worker(output_dir, config, backend)
    executor = None
    if n_workers <= 1:
        results = map(worker, todo)
    else:
        context = worker_context(
            'fork' if backend is None else backend.mp_context)
        if context.get_start_method() == 'fork':
            stop_opencv_threads()
        executor = concurrent.futures.ProcessPoolExecutor(
            n_workers, mp_context=context, initializer=_start_worker,
            initargs=(backend, os.getpid()))
        results = _results_of_workers(executor, worker, todo,
                                      context.workers)
    finished = False
    try:
        for result in results:
            if result['status'] == 'fatal':
                raise PrecomputeFatalError(result['error'])
            on_record(result)
        finished = True
    finally:
        if executor is not None:
            if finished:
                executor.shutdown(wait=True)
            else:
                _stop_workers(executor, context.workers)
        if not finished:
            remove_temporaries(*(precomputed_path(output_dir, r.video_id)
                                 for r in todo))


def precompute_share(records, output_dir, config, rank, size, n_workers=1,
                     retry_failed=False, on_plan=None, on_record=None):
    """Precomputes one rank's share, recording each outcome in its manifest
    shard as it happens.

    Args:
        records (list of VideoRecord): Every video found.
        output_dir (str): The output folder (checked).
        config (PrecomputeConfig): What to compute.
        rank (int): This rank, of ``size``.
        size (int): The number of ranks.
        n_workers (int): Worker processes.
        retry_failed (bool): Redo videos recorded as failed.
        on_plan (callable): Called with :func:`plan_share`'s plan first.
        on_record (callable): Called with each video's manifest record.

    Returns:
        dict: Counts: ``done``, ``failed`` (now), ``already_done``,
        ``failed_before`` (skipped).

    Raises:
        PrecomputeFatalError: An output could not be written.
    """
    plan = plan_share(records, output_dir, rank, size, retry_failed)
    if on_plan is not None:
        on_plan(plan)
    counts = {'done': 0, 'failed': 0}
    shard = ManifestShard(output_dir, rank)

    def record_outcome(result):
        shard.append(result)
        counts[result['status']] += 1
        if on_record is not None:
            on_record(result)
    try:
        run_share(plan['todo'], output_dir, config, n_workers,
                  record_outcome)
    finally:
        shard.close()
    counts['already_done'] = plan['already_done']
    counts['failed_before'] = plan['failed_before']
    return counts


def run_precompute(video_list, output_dir, config, comm, n_workers=1,
                   retry_failed=False, on_plan=None, on_record=None):
    """The whole stage; every rank calls it.

    Rank 0 checks the output folder and its settings (a resumed run must
    use the same), every rank precomputes its share, and rank 0 writes
    ``manifest.json`` at the end. The preset stored is the config's with
    the video list's label names.

    Args:
        video_list (VideoList): The videos.
        output_dir (str): The output folder.
        config (PrecomputeConfig): What to compute.
        comm: The communicator (``chainercv_i3d.utils.comm.get_comm()``).
        n_workers (int): Worker processes per rank.
        retry_failed (bool): Redo videos recorded as failed.
        on_plan (callable): Called with this rank's plan.
        on_record (callable): Called with each video's manifest record.

    Returns:
        dict: The counts summed over ranks (on every rank): ``done``,
        ``failed``, ``already_done``, ``failed_before``.

    Raises:
        PrecomputeFatalError: The output cannot be written.
        ValueError: The output folder holds a run with other settings, or
            the preset's label names are not the list's.
    """
    config = config.with_label_names(video_list.label_names,
                                     video_list.multi_label)
    if comm.rank == 0:
        check_output_folder(output_dir)
        check_same_settings(output_dir, dict(config.settings(),
                                             dataset=video_list.name))
    comm.barrier()
    counts = precompute_share(video_list.records, output_dir, config,
                              comm.rank, comm.size, n_workers, retry_failed,
                              on_plan, on_record)
    totals = sum_counts(comm, counts)
    if comm.rank == 0:
        write_manifest(output_dir, video_list, config.preset)
    return totals


class ProgressReport(object):
    """Rank 0's progress bar over every rank's videos, and a line per failed
    video (none when ``quiet``): its methods are :func:`run_precompute`'s
    ``on_plan`` and ``on_record``. Every rank calls :meth:`finish` after a
    run that succeeded, :meth:`close` after one that failed.

    Args:
        comm: The communicator.
        quiet (bool): Show nothing (for logs).
    """

    def __init__(self, comm, quiet=False):
        self.comm = comm
        self.quiet = quiet
        self.bar = None
        self.n_failed = 0

    def on_plan(self, plan):
        skipped = plan['already_done'] + plan['failed_before']
        # Every rank plans at the same point, so this collective is safe.
        totals = sum_counts(self.comm, {'videos': len(plan['todo']) + skipped,
                                        'skipped': skipped})
        self.bar = all_ranks_bar(totals['videos'], self.comm, self.quiet,
                                 initial=totals['skipped'])

    def on_record(self, record):
        self.bar.update()
        if record['status'] == 'failed':
            self.n_failed += 1
            self.bar.set_postfix(failed=self.n_failed, refresh=False)
            if not self.quiet:
                self.bar.write('failed: {} ({})'.format(
                    record['video_id'], record['error']), file=sys.stderr)

    def finish(self):
        """Ends the bar once every rank's last count is in (all ranks)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self):
        """Ends this rank's bar without waiting for the others (a run that
        failed or was stopped: they may never send their last count)."""
        if self.bar is not None:
            self.bar.abandon()
            self.bar = None


def summary_line(totals, n_missing=0):
    """The one-line outcome of a run, as the script prints it."""
    line = '{done} done, {failed} failed, {already_done} already done'.format(
        **totals)
    if totals['failed_before']:
        line += (', {} failed before and skipped (--retry_failed redoes '
                 'them)'.format(totals['failed_before']))
    if n_missing:
        line += ', {} listed but missing'.format(n_missing)
    return line


def write_manifest(output_dir, video_list, preset):
    """Merges the per-rank manifests into ``OUTPUT_DIR/manifest.json``.

    Every video found gets one record: its last recorded outcome; a video
    whose zip exists but whose record was lost (a run killed between the
    two) is rebuilt from the zip; videos listed but missing on disk are
    ``missing``. The manifest also holds ``preset`` (its dict) and
    ``dataset`` (the list reader's name). Records of a multi-label list
    also have ``list_index``, the video's place in the list (the
    annotation file's order: the official Charades evaluation breaks ties
    by it).

    Args:
        output_dir (str): The output folder.
        video_list (VideoList): The videos.
        preset (Preset): The preprocessing used, with the list's label
            names (:meth:`PrecomputeConfig.with_label_names`).

    Returns:
        dict: The counts per status.
    """
    latest = read_manifest_shards(output_dir)
    list_index = {r.video_id: i for i, r in enumerate(video_list.records)}
    records = []
    for video in sorted(video_list.records, key=lambda r: r.video_id):
        path = precomputed_path(output_dir, video.video_id)
        record = latest.get(video.video_id)
        if os.path.exists(path) and (record is None
                                     or record['status'] != 'done'):
            with PrecomputedVideo(path) as stored:
                meta = stored.meta
            record = dict(label_fields(video), video_id=video.video_id,
                          source=video.path, status='done',
                          n_frames=meta['n_frames'],
                          n_flow_frames=meta['n_flow_frames'],
                          source_fps=meta['source_fps'],
                          height=meta['height'], width=meta['width'])
        if record is not None and video.actions is not None:
            record = dict(record, list_index=list_index[video.video_id])
        if record is not None:
            records.append(record)
    records.extend({'video_id': video_id, 'status': 'missing',
                    'error': 'listed in the annotations, not found on disk'}
                   for video_id in sorted(video_list.missing))
    counts = {}
    for record in records:
        counts[record['status']] = counts.get(record['status'], 0) + 1
    path = os.path.join(output_dir, MANIFEST_NAME)
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        json.dump({'preset': preset.to_dict(), 'dataset': video_list.name,
                   'counts': counts, 'videos': records}, f, indent=1)
    return counts
