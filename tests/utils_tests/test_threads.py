"""The threads of the CPU kernels (chainercv_i3d.utils.threads): chunks in
threads beside single-threaded BLAS."""

import os
import time

import chainercv_i3d  # NOQA: before chainer

import numpy
import pytest
import threadpoolctl

from chainercv_i3d.utils import threads as parallel


def blas_thread_counts():
    return [lib['num_threads'] for lib in threadpoolctl.threadpool_info()
            if lib['user_api'] == 'blas']


def test_chunks_run_in_threads_with_single_threaded_blas():
    before = blas_thread_counts()
    seen = []
    with parallel.cpu_chunks(numpy):
        workers = parallel.workers()
        inside = blas_thread_counts()
        parallel.run_chunks(lambda i: seen.append(i), [(i,) for i in range(9)])
    assert sorted(seen) == list(range(9))
    assert workers == max(before + [1])
    assert set(inside) <= {1}
    assert blas_thread_counts() == before
    assert parallel.workers() == 1


def test_chunk_errors_reach_the_caller():
    def fail(i):
        if i == 3:
            raise ValueError('chunk 3')
    with parallel.cpu_chunks(numpy):
        with pytest.raises(ValueError, match='chunk 3'):
            parallel.run_chunks(fail, [(i,) for i in range(6)])


def test_no_chunk_runs_after_an_error_has_reached_the_caller():
    ran = []

    def fail_first(i):
        if i == 0:
            raise ValueError('chunk 0')
        time.sleep(0.01)
        ran.append(i)
    with parallel.cpu_chunks(numpy):
        if parallel.workers() < 2:
            pytest.skip('needs two BLAS threads')
        with pytest.raises(ValueError, match='chunk 0'):
            parallel.run_chunks(fail_first, [(i,) for i in range(50)])
        seen = len(ran)
        time.sleep(0.1)
    assert len(ran) == seen  # nothing ran later
    assert seen < 49  # the rest were cancelled


def test_cupy_arrays_run_their_chunks_in_order():
    # Anything but numpy (cupy) leaves threads and BLAS alone.
    seen = []
    with parallel.cpu_chunks(object()):
        assert parallel.workers() == 1
        parallel.run_chunks(lambda i: seen.append(i), [(i,) for i in range(5)])
    assert seen == list(range(5))


def test_a_forked_child_gets_its_own_threads():
    with parallel.cpu_chunks(numpy):
        parallel.run_chunks(lambda i: None, [(0,), (1,)])
    pid = os.fork()
    if pid == 0:  # the child: an inherited pool would hang here
        seen = []
        with parallel.cpu_chunks(numpy):
            parallel.run_chunks(lambda i: seen.append(i), [(0,), (1,), (2,)])
        os._exit(0 if sorted(seen) == [0, 1, 2] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


@pytest.mark.parametrize('size,pieces', [(10, 3), (2, 5), (0, 2), (7, 1)])
def test_split_covers_the_range_in_nearly_equal_parts(size, pieces):
    parts = parallel.split(size, pieces)
    assert [i for a, b in parts for i in range(a, b)] == list(range(size))
    lengths = [b - a for a, b in parts]
    assert len(parts) <= max(1, pieces)
    assert max(lengths) - min(lengths) <= 1


def test_chunks_fit_the_cache_on_a_cpu_and_are_large_elsewhere():
    with parallel.cpu_chunks(numpy):
        assert parallel.chunk_elements(1000) == 1000
    assert parallel.chunk_elements(1000) == parallel.DEVICE_CHUNK_ELEMENTS


@pytest.mark.parametrize('pieces,others,most,expected', [
    (3, 1, 10, 4), (4, 1, 10, 4), (3, 3, 10, 4), (5, 2, 5, 5), (7, 1, 7, 7)])
def test_chunks_are_spread_evenly_over_two_threads(pieces, others, most,
                                                   expected):
    with threadpoolctl.threadpool_limits(2, user_api='blas'):
        with parallel.cpu_chunks(numpy):
            assert parallel.workers() == 2
            assert parallel.spread_evenly(pieces, others, most) == expected
