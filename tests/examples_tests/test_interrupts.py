"""Ctrl-C and SIGTERM stop a script with one line and exit status 130,
keeping what is finished; worker processes never outlive their script."""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy
import pytest

from chainercv_i3d.testing.synthetic import write_moving_bars_set
from tests.conftest import as_in_a_terminal
from tests.conftest import ROOT
from tests.datasets_tests.videos import noise_frames
from tests.datasets_tests.videos import write_video

pytestmark = [pytest.mark.slow]

EXAMPLES = os.path.join(ROOT, 'examples', 'i3d')
N_VIDEOS = 24  # far from done when the first one is written
STOPPED = re.compile(r'^(\S+): (?:rank (\d): )?stopped: (\d+) done; run the '
                     r'same command to continue$')
# The tiny network on tiny clips: an update takes milliseconds.
TINY = ('--arch', 'tiny', '--frames', '8', '--crop_size', '32',
        '--schedule', 'step', '--lr', '0.1', '--batch_size', '2',
        '--iterations', '1000000', '--snapshot_interval', '1', '--quiet')


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    """N_VIDEOS small videos, a folder per class."""
    root = tmp_path_factory.mktemp('videos')
    first = root / 'a' / 'v00.avi'
    write_video(first, noise_frames(6))
    for i in range(1, N_VIDEOS):
        target = root / 'ab'[i % 2] / 'v{:02d}.avi'.format(i)
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(first, target)
    return str(root)


@pytest.fixture(scope='module')
def bars(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('bars'))
    write_moving_bars_set(path, 3, n_frames=12, size=40)
    return path


def precompute_command(videos, out, *extra):
    return [sys.executable,
            os.path.join(EXAMPLES, 'precompute_frames_flow.py'),
            videos, out, '--dataset', 'folders', '--short_side', '48',
            '--quiet', '--num_preprocess_workers', '2'] + list(extra)


def train_command(bars, out, *extra):
    return [sys.executable, os.path.join(EXAMPLES, 'train_i3d.py'), bars,
            '--out', out, '--num_preprocess_workers', '2'] + list(TINY) + \
        list(extra)


def precomputed(out):
    return glob.glob(os.path.join(out, 'videos', '**', '*.zip'),
                     recursive=True)


def snapshot_written(out):
    return os.path.exists(os.path.join(out, 'snapshot.npz'))


def temporaries(out):
    return glob.glob(os.path.join(out, '**', '*.tmp'), recursive=True,
                     include_hidden=True)


def start(command):
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=as_in_a_terminal)


def wait_for(condition, process, timeout=120):
    """Waits until ``condition()`` (the first output is written)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, 'no output in {} s'.format(
            timeout)
        time.sleep(0.02)


def finish(process, timeout=60):
    """``process.communicate()``; a process that hangs is killed (with its
    group) and fails the test."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail('still running {} s after the signal: {}'.format(
            timeout, process.communicate()))


def descendants(pid):
    """The processes below ``pid`` (Linux /proc)."""
    found = []
    for task in glob.glob('/proc/{}/task/*/children'.format(pid)):
        try:
            with open(task) as f:
                children = [int(c) for c in f.read().split()]
        except OSError:  # ended meanwhile
            continue
        for child in children:
            found += [child] + descendants(child)
    return found


def alive(pid):
    try:
        with open('/proc/{}/stat'.format(pid)) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'  # a zombie is dead, waiting for its parent


def wait_gone(pids, timeout=10):
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def stopped_lines(stderr):
    return [line for line in stderr.splitlines() if 'stopped' in line]


def check_stopped(process, signum, count_kept, to_group=None):
    """Sends ``signum`` (to the process group as a terminal's Ctrl-C or a
    batch scheduler's SIGTERM does, else to the script); checks the exit,
    the one line and its count."""
    workers = descendants(process.pid)
    assert workers, 'the script should run worker processes'
    if to_group is None:
        to_group = signum == signal.SIGINT
    if to_group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    stdout, stderr = finish(process)
    assert process.returncode == 130, stderr
    assert 'Traceback' not in stderr, stderr
    lines = stopped_lines(stderr)
    assert len(lines) == 1, stderr
    match = STOPPED.match(lines[0])
    assert match, lines[0]
    assert int(match.group(3)) == count_kept()
    assert wait_gone(workers) == []
    return int(match.group(3))


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM],
                         ids=['SIGINT', 'SIGTERM'])
def test_precompute_stops_keeping_the_finished_videos(videos, tmp_path,
                                                      signum):
    out = str(tmp_path / 'out')
    process = start(precompute_command(videos, out))
    wait_for(lambda: precomputed(out), process)
    n_done = check_stopped(process, signum, lambda: len(precomputed(out)))
    assert 1 <= n_done < N_VIDEOS
    assert temporaries(out) == []


def snapshot_iteration(out):
    with numpy.load(os.path.join(out, 'snapshot.npz')) as f:
        return int(f['iteration'])


def logged_iterations(out):
    try:
        with open(os.path.join(out, 'log.json')) as f:
            return [entry['iteration'] for entry in json.load(f)]
    except (OSError, ValueError):  # not yet written
        return []


@pytest.mark.parametrize('signum,to_group', [
    (signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=['SIGINT', 'SIGTERM', 'SIGTERM-to-the-group'])
def test_training_stops_with_a_snapshot_of_its_last_update(
        bars, tmp_path, signum, to_group):
    out = str(tmp_path / 'out')
    # No snapshot is due before the stop: the one kept is the stop's.
    process = start(train_command(bars, out, '--snapshot_interval',
                                  '1000000', '--log_interval', '1'))
    wait_for(lambda: logged_iterations(out), process)
    n_done = check_stopped(process, signum, lambda: snapshot_iteration(out),
                           to_group)
    assert n_done >= 1
    # The log ends at the update kept, whose snapshot resumes the run.
    assert logged_iterations(out)[-1] == n_done
    assert temporaries(out) == []
    assert not os.path.exists(os.path.join(out, 'model_final.npz'))
    resumed = subprocess.run(
        train_command(bars, out, '--iterations', str(n_done + 1)),
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert snapshot_iteration(out) == n_done + 1


@pytest.mark.parametrize('script', ['precompute', 'train'])
def test_workers_end_when_the_script_is_killed(videos, bars, tmp_path,
                                               script):
    out = str(tmp_path / 'out')
    if script == 'precompute':
        process = start(precompute_command(videos, out))
        wait_for(lambda: precomputed(out), process)
    else:
        process = start(train_command(bars, out))
        wait_for(lambda: snapshot_written(out), process)
    workers = descendants(process.pid)
    assert workers
    process.kill()
    finish(process)
    assert wait_gone(workers) == []


@pytest.mark.mpi
@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM],
                         ids=['SIGINT', 'SIGTERM'])
def test_every_rank_stops_under_mpiexec(mpiexec, videos, tmp_path, signum):
    out = str(tmp_path / 'out')
    process = start([mpiexec, '-n', '2'] + precompute_command(videos, out))
    wait_for(lambda: precomputed(out), process)
    everything = descendants(process.pid)
    process.send_signal(signum)
    # A rank left waiting in a collective call would hang here.
    stdout, stderr = finish(process)
    assert process.returncode == 130, stdout + stderr
    assert 'Traceback' not in stderr, stderr
    lines = stopped_lines(stderr)
    ranks = [STOPPED.match(line).group(2) for line in lines]
    # Each rank that saw the signal said so once; the first to end ended
    # the others, perhaps before they could.
    assert 1 <= len(ranks) == len(set(ranks)), stderr
    # A rank ended by another's abort may leave a temporary file, which
    # the next run removes before it writes that video.
    assert wait_gone(everything) == []


@pytest.mark.mpi
def test_every_rank_stops_training_at_the_same_update(mpiexec, bars,
                                                      tmp_path):
    out = str(tmp_path / 'out')
    process = start([mpiexec, '-n', '2'] + train_command(
        bars, out, '--snapshot_interval', '1000000', '--log_interval', '1'))
    wait_for(lambda: logged_iterations(out), process)
    everything = descendants(process.pid)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = finish(process)
    assert process.returncode == 130, stdout + stderr
    assert 'Traceback' not in stderr, stderr
    matches = [STOPPED.match(line) for line in stopped_lines(stderr)]
    assert matches and all(matches), stderr
    # Every rank that said so names the one snapshot, of the last update.
    kept = snapshot_iteration(out)
    assert {int(m.group(3)) for m in matches} == {kept}
    assert logged_iterations(out)[-1] == kept
    assert wait_gone(everything) == []
