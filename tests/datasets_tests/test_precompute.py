"""The precompute stage as a library, with a test double flow backend."""

import glob
import json
import multiprocessing
import os
import signal
import threading
import time
import zipfile

import numpy
import pytest

from chainercv_i3d.datasets import precompute
from chainercv_i3d.datasets import PrecomputedVideo
from chainercv_i3d.datasets.precompute import make_preset
from chainercv_i3d.datasets.precompute import PrecomputeConfig
from chainercv_i3d.datasets.precompute import ProgressReport
from chainercv_i3d.datasets.precompute import run_precompute
from chainercv_i3d.datasets.precompute import summary_line
from chainercv_i3d.datasets.precomputed_video import precomputed_path
from chainercv_i3d.datasets.video_list import read_video_list
from chainercv_i3d.files import atomic_path
from chainercv_i3d.flow import FlowBackend
from chainercv_i3d.flow import register_flow_backend
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.presets import preset_from_dict
from chainercv_i3d.utils.comm import SerialComm
from tests.conftest import wait_until
from tests.datasets_tests.videos import noise_frames
from tests.datasets_tests.videos import write_video


class ConstantFlow(FlowBackend):
    """Flow ``(x, y)`` everywhere; ``worker_init`` leaves a file per worker
    process in ``marker_dir``."""

    option_names = ('x', 'y', 'marker_dir')
    mp_context = 'spawn'  # says so; the tests below check it is asked for

    def compute(self, prev_gray, next_gray):
        flow = numpy.empty(prev_gray.shape + (2,), numpy.float32)
        flow[..., 0] = self.options.get('x', 0)
        flow[..., 1] = self.options.get('y', 0)
        return flow

    def worker_init(self):
        marker_dir = self.options.get('marker_dir')
        if marker_dir:
            open(os.path.join(marker_dir, str(os.getpid())), 'w').close()


register_flow_backend('test_constant', ConstantFlow)


@pytest.fixture
def class_folders(tmp_path):
    root = tmp_path / 'videos'
    for i, name in enumerate(('Cat', 'Dog', 'Dog')):
        write_video(root / name / 'v{}.avi'.format(i),
                    noise_frames(5 + i, 24, 32, seed=i))
    return str(root)


def test_preset_and_flow_bound_are_stored_and_used(tmp_path, class_folders):
    preset = DEEPMIND_KINETICS.replace(name='test', flow_bound=10.0,
                                       short_side=24)
    config = PrecomputeConfig(preset, flow_backend='test_constant',
                              flow_options={'x': 3.3, 'y': 15.0})
    videos = read_video_list('folders', class_folders)
    out = str(tmp_path / 'out')
    totals = run_precompute(videos, out, config, SerialComm())
    assert summary_line(totals) == '3 done, 0 failed, 0 already done'

    with open(os.path.join(out, 'manifest.json')) as f:
        manifest = json.load(f)
    assert manifest['dataset'] == 'folders'
    stored = preset_from_dict(manifest['preset'])
    assert stored == preset.replace(label_names=('Cat', 'Dog'))
    assert manifest['counts'] == {'done': 3}
    assert [r['label'] for r in manifest['videos']] == [0, 1, 1]

    with PrecomputedVideo(precomputed_path(out, 'Dog/v1')) as video:
        assert video.meta['flow_bound'] == 10.0
        assert video.preset == stored
        assert video.n_flow_frames == 5
        flow = video.read_flow(range(5))
    # x = 3.3 within the bound: back to within half a step (10 / 255);
    # y = 15 is clipped to the bound of 10 (read with 20, both would be off).
    numpy.testing.assert_allclose(flow[0], 3.3, atol=10 / 255 + 1e-6)
    numpy.testing.assert_array_equal(flow[1], 10)


def test_workers_start_as_the_backend_says(tmp_path, class_folders,
                                           monkeypatch):
    asked = []
    real_worker_context = precompute.worker_context

    def worker_context(method):
        asked.append(method)
        # Fork all the same: spawning would re-import the test session.
        return real_worker_context('fork')

    monkeypatch.setattr(precompute, 'worker_context', worker_context)
    markers = tmp_path / 'markers'
    markers.mkdir()
    config = PrecomputeConfig(
        make_preset(25.0, 24), flow_backend='test_constant',
        flow_options={'marker_dir': str(markers)})
    videos = read_video_list('folders', class_folders)
    totals = run_precompute(videos, str(tmp_path / 'out'), config,
                            SerialComm(), n_workers=2)
    assert totals['done'] == 3
    assert asked == ['spawn']
    pids = os.listdir(str(markers))
    assert len(pids) == 2 and str(os.getpid()) not in pids


def recording_worker_contexts(monkeypatch):
    """Makes precompute keep each worker context it takes, in the list
    returned."""
    contexts = []
    real_worker_context = precompute.worker_context

    def worker_context(method):
        contexts.append(real_worker_context(method))
        return contexts[-1]

    monkeypatch.setattr(precompute, 'worker_context', worker_context)
    return contexts


def test_workers_of_a_finished_share_end_without_a_signal(
        tmp_path, class_folders, monkeypatch):
    # Killing is for a share that failed or was stopped (run_share).
    contexts = recording_worker_contexts(monkeypatch)
    config = PrecomputeConfig(make_preset(25.0, 24), compute_flow=False)
    totals = run_precompute(read_video_list('folders', class_folders),
                            str(tmp_path / 'out'), config, SerialComm(),
                            n_workers=2)
    assert totals['done'] == 3
    workers = contexts[0].workers
    assert len(workers) == 2
    assert [p.exitcode for p in workers] == [0, 0]


def fail_once_another_worker_is_writing(record, output_dir, config,
                                        backend):
    """Run in the workers: ``Cat/v0`` fails as a full disk would, once the
    other worker is half-way through writing its video, which it never
    finishes."""
    writing = os.path.join(output_dir, 'videos', '*', '.*.tmp')
    if record.video_id == 'Cat/v0':
        deadline = time.monotonic() + 120  # then the test fails, not hangs
        while not glob.glob(writing, include_hidden=True) and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        return {'video_id': record.video_id, 'status': 'fatal',
                'error': 'cannot write: No space left on device'}
    with atomic_path(precomputed_path(output_dir, record.video_id)) as tmp:
        open(tmp, 'w').close()
        time.sleep(120)


def test_a_failed_share_kills_its_workers_and_removes_their_files(
        tmp_path, class_folders, monkeypatch):
    monkeypatch.setattr(precompute, 'precompute_video',
                        fail_once_another_worker_is_writing)
    config = PrecomputeConfig(make_preset(25.0, 24), compute_flow=False)
    out = str(tmp_path / 'out')
    children = set(multiprocessing.active_children())  # other tests'
    started = time.monotonic()
    with pytest.raises(precompute.PrecomputeFatalError,
                       match='No space left'):
        run_precompute(read_video_list('folders', class_folders), out,
                       config, SerialComm(), n_workers=2)
    assert time.monotonic() - started < 60  # the writer did not finish
    assert set(multiprocessing.active_children()) <= children
    assert glob.glob(os.path.join(out, '**', '*.tmp'), recursive=True,
                     include_hidden=True) == []


PRECOMPUTE_VIDEO = precompute.precompute_video


def die_while_writing(record, output_dir, config, backend):
    """Run in the workers: ``Cat/v0``'s worker dies half-way through
    writing, as one the kernel kills when memory runs out."""
    if record.video_id != 'Cat/v0':
        return PRECOMPUTE_VIDEO(record, output_dir, config, backend)
    with atomic_path(precomputed_path(output_dir, record.video_id)) as tmp:
        open(tmp, 'w').close()
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_dead_worker_ends_the_share_instead_of_a_wait_for_ever(
        tmp_path, class_folders, monkeypatch):
    # Its pool replaced it but never returned its video.
    monkeypatch.setattr(precompute, 'precompute_video', die_while_writing)
    config = PrecomputeConfig(make_preset(25.0, 24), compute_flow=False)
    out = str(tmp_path / 'out')
    children = set(multiprocessing.active_children())  # other tests'
    started = time.monotonic()
    with pytest.raises(precompute.PrecomputeFatalError,
                       match=r'a worker process died \(killed by SIGKILL'):
        run_precompute(read_video_list('folders', class_folders), out,
                       config, SerialComm(), n_workers=2)
    assert time.monotonic() - started < 60
    assert set(multiprocessing.active_children()) <= children
    assert glob.glob(os.path.join(out, '**', '*.tmp'), recursive=True,
                     include_hidden=True) == []


def keep_cat_busy(record, output_dir, config, backend):
    """Run in the workers: ``Cat/v0`` takes two minutes, the other videos
    are done at once."""
    if record.video_id != 'Cat/v0':
        return PRECOMPUTE_VIDEO(record, output_dir, config, backend)
    open(os.path.join(output_dir, 'busy.{}'.format(os.getpid())), 'w').close()
    time.sleep(120)


def kill_the_idle_workers(out, others, contexts):
    """Once ``others`` are done, kills every worker but ``Cat/v0``'s."""
    wait_until(lambda: contexts and glob.glob(os.path.join(out, 'busy.*'))
               and all(os.path.exists(precomputed_path(out, video_id))
                       for video_id in others), 'the videos were not done')
    busy = int(glob.glob(os.path.join(out, 'busy.*'))[0].split('.')[-1])
    time.sleep(0.5)  # waiting for work, holding the queue's lock
    for process in list(contexts[0].workers):
        if process.pid != busy:
            os.kill(process.pid, signal.SIGKILL)  # out of memory, say


def test_a_worker_killed_as_it_waits_for_work_ends_the_share(
        tmp_path, class_folders, monkeypatch):
    # A multiprocessing.Pool's terminate() waited for ever for the lock
    # such a worker held.
    monkeypatch.setattr(precompute, 'precompute_video', keep_cat_busy)
    contexts = recording_worker_contexts(monkeypatch)
    config = PrecomputeConfig(make_preset(25.0, 24), compute_flow=False)
    out = str(tmp_path / 'out')
    videos = read_video_list('folders', class_folders)
    others = [r.video_id for r in videos.records if r.video_id != 'Cat/v0']
    killer = threading.Thread(target=kill_the_idle_workers,
                              args=(out, others, contexts), daemon=True)
    killer.start()
    started = time.monotonic()
    with pytest.raises(precompute.PrecomputeFatalError,
                       match=r'a worker process died \(killed by SIGKILL'):
        run_precompute(videos, out, config, SerialComm(), n_workers=2)
    assert time.monotonic() - started < 60  # Cat/v0 was not waited for
    assert all(p.exitcode is not None for p in contexts[0].workers)
    killer.join()


def cannot_start(backend, parent_pid):
    raise RuntimeError('no GPU left')  # run in the workers, as they start


def test_workers_that_cannot_start_end_the_share(tmp_path, class_folders,
                                                 monkeypatch, capfd):
    # A pool started them again and again, for ever.
    monkeypatch.setattr(precompute, '_init_worker', cannot_start)
    config = PrecomputeConfig(make_preset(25.0, 24), compute_flow=False)
    with pytest.raises(precompute.PrecomputeFatalError,
                       match=r'a worker process ended early \(exit status '
                       r'1, after its message above\)'):
        run_precompute(read_video_list('folders', class_folders),
                       str(tmp_path / 'out'), config, SerialComm(),
                       n_workers=2)
    assert 'RuntimeError: no GPU left' in capfd.readouterr().err


def test_one_worker_runs_here_without_a_pool(tmp_path, class_folders,
                                             monkeypatch):
    monkeypatch.setattr(precompute, 'worker_context', None)
    config = PrecomputeConfig(make_preset(25.0, 24),
                              flow_backend='test_constant')
    totals = run_precompute(read_video_list('files', class_folders),
                            str(tmp_path / 'out'), config, SerialComm())
    assert totals['done'] == 3


def test_a_resume_with_other_settings_is_refused(tmp_path, class_folders):
    out = str(tmp_path / 'out')
    videos = read_video_list('folders', class_folders)
    config = PrecomputeConfig(make_preset(25.0, 24), compute_flow=False)
    run_precompute(videos, out, config, SerialComm())
    again = run_precompute(videos, out, config, SerialComm())
    assert again['already_done'] == 3
    other = PrecomputeConfig(make_preset(None, 24), compute_flow=False)
    with pytest.raises(ValueError, match=r'other settings \(preset.fps: '
                       r'25.0 there, None now\): resume with the same'):
        run_precompute(videos, out, other, SerialComm())


def test_unlabelled_files_store_no_label_names(tmp_path, class_folders):
    out = str(tmp_path / 'out')
    config = PrecomputeConfig(make_preset(None, 24), compute_flow=False)
    run_precompute(read_video_list('files', class_folders), out, config,
                   SerialComm())
    with open(os.path.join(out, 'manifest.json')) as f:
        manifest = json.load(f)
    assert manifest['dataset'] == 'files'
    assert manifest['preset']['label_names'] is None
    assert manifest['preset']['fps'] is None
    assert manifest['preset']['name'] == 'custom'
    # Native rate: every decoded frame.
    assert [r['n_frames'] for r in manifest['videos']] == [5, 6, 7]
    with zipfile.ZipFile(precomputed_path(out, 'Cat/v0')) as archive:
        meta = json.loads(archive.read('meta.json'))
    assert meta['fps'] is None and meta['source_fps'] == 25.0


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="unknown flow backend 'nope'"):
        PrecomputeConfig(flow_backend='nope')
    with pytest.raises(ValueError, match='unknown option'):
        PrecomputeConfig(flow_backend='test_constant',
                         flow_options={'z': 1})
    with pytest.raises(ValueError, match='runs on the CPU only'):
        PrecomputeConfig(device='@cupy:0')
    # Without flow the backend is never made.
    assert PrecomputeConfig(compute_flow=False, device='@cupy:0')
    with pytest.raises(ValueError, match=r'jpeg_quality must be an integer '
                       r'in \[0, 100\], not 101'):
        PrecomputeConfig(jpeg_quality=101)
    with pytest.raises(ValueError, match='preset must be a Preset'):
        PrecomputeConfig(preset={'fps': 25})


def test_config_takes_the_values_of_its_preset():
    config = PrecomputeConfig(make_preset(30.0, 128))
    assert (config.fps, config.short_side, config.flow_bound) == \
        (30.0, 128, 20.0)
    assert config.preset.name == 'custom'
    assert make_preset(25.0, 256) is DEEPMIND_KINETICS
    named = PrecomputeConfig(DEEPMIND_KINETICS.replace(
        label_names=('a', 'b')))
    assert named.with_label_names(('a', 'b')).preset.label_names == \
        ('a', 'b')
    with pytest.raises(ValueError, match='has 2 class names, the video '
                       'list 3'):
        named.with_label_names(('a', 'b', 'c'))


def test_progress_report_names_each_failed_video(capsys):
    report = ProgressReport(SerialComm(), quiet=False)
    report.on_plan({'todo': [1, 2], 'already_done': 3, 'failed_before': 0})
    assert (report.bar.bar.total, report.bar.bar.n) == (5, 3)
    report.on_record({'video_id': 'a', 'status': 'done'})
    report.on_record({'video_id': 'b', 'status': 'failed',
                      'error': 'VideoReadError: empty file (0 bytes)'})
    assert report.bar.bar.n == 5 and report.n_failed == 1
    report.finish()
    assert 'failed: b (VideoReadError: empty file (0 bytes))' in \
        capsys.readouterr().err


def test_a_quiet_progress_report_prints_nothing(capsys):
    report = ProgressReport(SerialComm(), quiet=True)
    report.on_plan({'todo': [1], 'already_done': 0, 'failed_before': 0})
    report.on_record({'video_id': 'b', 'status': 'failed', 'error': 'x'})
    report.close()
    assert capsys.readouterr() == ('', '')
