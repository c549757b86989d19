import os
import signal
import subprocess
import sys
import time

import pytest

from chainercv_i3d.datasets.loader import ExampleLoader
from chainercv_i3d.datasets.loader import start_method
from tests.conftest import wait_until_ignoring_sigterm


class Draw(object):
    """An example is its index, its process and a random draw."""

    def __call__(self, i, rng):
        if i == 3:
            raise ValueError('video 3 is unreadable')
        return i, os.getpid(), int(rng.integers(0, 2 ** 31))


def run(n_workers, order, epoch=0, mp_context='fork', seed=0):
    with ExampleLoader(Draw(), n_workers, seed=seed,
                       mp_context=mp_context) as loader:
        return list(loader.iterate(order, epoch))


def test_examples_come_in_order_with_errors_as_values():
    out = run(2, [5, 1, 3, 0])
    assert [i for i, _, _ in out] == [5, 1, 3, 0]
    assert out[2] == (3, None, 'video 3 is unreadable')
    assert all(example[0] == i for i, example, _ in out if example)


def test_draws_do_not_depend_on_the_workers_but_on_seed_epoch_index():
    draws = {n: [e[2] for _, e, _ in run(n, range(6)) if e]
             for n in (0, 1, 3)}
    assert draws[0] == draws[1] == draws[3]
    assert len(set(draws[0])) == 5  # no two samples repeat a draw
    other_epoch = [e[2] for _, e, _ in run(2, range(6), epoch=1) if e]
    other_seed = [e[2] for _, e, _ in run(2, range(6), seed=1) if e]
    assert other_epoch != draws[0] and other_seed != draws[0]


def test_workers_are_other_processes():
    pids = {e[1] for _, e, _ in run(2, range(8)) if e}
    assert os.getpid() not in pids


@pytest.mark.slow
def test_spawned_workers_give_the_same_examples():
    assert [(i, e and e[2]) for i, e, _ in run(1, range(5), mp_context='spawn')] \
        == [(i, e and e[2]) for i, e, _ in run(0, range(5))]


def test_other_exceptions_propagate():
    def broken(i, rng):
        raise KeyError('a bug')
    with pytest.raises(KeyError):
        list(ExampleLoader(broken).iterate([0]))


def test_workers_start_by_fork_on_the_cpu_and_by_spawn_beside_a_gpu():
    class Gpu(object):
        xp = object()
    assert start_method(None) == 'fork'
    import chainer
    assert start_method(chainer.get_device('@numpy')) == 'fork'
    assert start_method(Gpu()) == 'spawn'
    with pytest.raises(ValueError, match='n_workers must be 0 or more'):
        ExampleLoader(Draw(), -1)


class DiesOnFour(object):
    def __call__(self, i, rng):
        if i == 4:
            os._exit(9)  # a worker killed (say, out of memory)
        return i


def test_a_dead_worker_ends_the_iteration_instead_of_hanging():
    from concurrent.futures.process import BrokenProcessPool
    with ExampleLoader(DiesOnFour(), 2) as loader:
        with pytest.raises(BrokenProcessPool):
            list(loader.iterate(range(8)))


class Slow(object):
    def __call__(self, i, rng):
        time.sleep(0.5)
        return i


def test_a_sigterm_to_spawned_workers_is_left_to_the_parent():
    # A scheduler's SIGTERM reaches every process; the parent stops at a
    # safe point. Spawned workers ended on it, and training stopped with a
    # BrokenProcessPool traceback instead of a snapshot.
    with ExampleLoader(Slow(), 2, mp_context='spawn') as loader:
        examples = loader.iterate(range(8))
        assert next(examples)[0] == 0
        workers = list(loader._pool._processes)
        # Until then a SIGTERM ends it as it would any new process.
        wait_until_ignoring_sigterm(workers)
        subprocess.run(['kill', '-TERM'] + [str(pid) for pid in workers],
                       check=True)
        assert [i for i, _, _ in examples] == list(range(1, 8))


# Forked workers after OpenCV's thread pool ran in the parent: without
# stop_opencv_threads the workers hang in cv2.setNumThreads (and any OpenCV
# call using the pool), so the script runs in its own process with a limit.
OPENCV_THREADS_THEN_FORK = '''
import cv2
import numpy
import chainercv_i3d
from chainercv_i3d.datasets.loader import ExampleLoader

def load(i, rng):
    small = cv2.resize(numpy.ones((600, 600), numpy.float32), (300, 300))
    return i, float(small.sum())

cv2.setNumThreads(2)
for _ in range(3):  # starts OpenCV's thread pool in the parent
    cv2.resize(numpy.ones((2000, 2000), numpy.float32), (1500, 1500))
with ExampleLoader(load, 2, worker_init=lambda: cv2.setNumThreads(1)) \\
        as loader:
    print(sorted(e[1] for _, e, _ in loader.iterate(range(4))))
'''


def test_workers_fork_after_opencv_threads_without_hanging():
    result = subprocess.run([sys.executable, '-c', OPENCV_THREADS_THEN_FORK],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split('\n')[0] == '[90000.0, 90000.0, 90000.0, ' \
        '90000.0]'


# A process killed (SIGKILL: no cleanup runs) while its workers wait.
KILLED_WITH_WORKERS = '''
import os
import signal
import sys
import chainercv_i3d
from chainercv_i3d.datasets.loader import ExampleLoader

loader = ExampleLoader(lambda i, rng: os.getpid(), 2)
with open(sys.argv[1], 'w') as f:
    f.write(' '.join(str(e) for _, e, _ in loader.iterate(range(4))))
os.kill(os.getpid(), signal.SIGKILL)
'''


def _alive(pid):
    try:
        with open('/proc/{}/stat'.format(pid)) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='reads /proc (Linux)')
def test_workers_end_with_a_killed_process(tmp_path):
    # Orphans would hold mpiexec's output pipes: it then never ends the job.
    pids = tmp_path / 'pids'
    result = subprocess.run(
        [sys.executable, '-c', KILLED_WITH_WORKERS, str(pids)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    assert result.returncode == -signal.SIGKILL
    workers = {int(pid) for pid in pids.read_text().split()}
    assert workers
    deadline = time.time() + 10
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in workers if _alive(pid)]
    for pid in alive:  # left by the bug: end them, then fail
        os.kill(pid, signal.SIGKILL)
    assert not alive
