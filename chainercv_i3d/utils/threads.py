"""Spreading the fast path's work over the cores of a CPU.

numpy runs element-wise work (Winograd transforms, im2col copies, bias and
ReLU) on one core, while OpenBLAS splits every matrix product over all of
them. The fast path instead cuts each layer into independent chunks (output
frames, rows) and runs the chunks in threads, each calling single-threaded
BLAS: numpy and BLAS release the GIL, every core is busy all the time, and
a chunk's transforms, product and ReLU stay in the cache.

With cupy (a GPU) the chunks simply run in order, and are large
(:func:`chunk_elements`): a GPU wants few, large kernels.
"""

import concurrent.futures
import contextlib
import os
import threading

import numpy

# The chunk size outside cpu_chunks (a GPU), in elements (256 MiB).
DEVICE_CHUNK_ELEMENTS = 64 * 2 ** 20

_local = threading.local()
_pool = {'pid': None, 'workers': 0, 'executor': None}
_blas = {'pid': None, 'controller': None}
_pool_lock = threading.Lock()


def blas_threads():
    """The thread count BLAS would use (``OMP_NUM_THREADS`` and
    ``OPENBLAS_NUM_THREADS`` respected), 1 if no BLAS is found."""
    blas = _controller().select(user_api='blas')
    return max([lib.num_threads for lib in blas.lib_controllers] or [1])


def _controller():
    # Finding the loaded BLAS libraries takes about a millisecond: once per
    # process (numpy loads its BLAS when it is imported).
    with _pool_lock:
        if _blas['pid'] != os.getpid():
            import threadpoolctl
            _blas.update(pid=os.getpid(),
                         controller=threadpoolctl.ThreadpoolController())
        return _blas['controller']


@contextlib.contextmanager
def cpu_chunks(xp):
    """Within this context, :func:`run_chunks` uses as many threads as BLAS
    would, and BLAS one thread per call (restored on exit). Does nothing
    for cupy."""
    if xp is not numpy:
        yield
        return
    workers = blas_threads()
    previous = getattr(_local, 'workers', None)
    with _controller().limit(limits=1, user_api='blas'):
        _local.workers = workers
        try:
            yield
        finally:
            _local.workers = previous


def chunk_elements(cpu_elements):
    """A chunk's size: ``cpu_elements`` (sized for the cache) inside
    :func:`cpu_chunks`, otherwise ``DEVICE_CHUNK_ELEMENTS``."""
    return cpu_elements if _in_cpu_chunks() else DEVICE_CHUNK_ELEMENTS


def _in_cpu_chunks():
    return getattr(_local, 'workers', None) is not None


def run_chunks(function, chunks):
    """Calls ``function(*chunk)`` for every chunk; in threads inside
    :func:`cpu_chunks`, otherwise in order. The chunks must write to
    disjoint outputs. If a chunk raises (or the caller is interrupted),
    the chunks not started are cancelled and the running ones awaited
    before the exception propagates."""
    chunks = list(chunks)
    if workers() <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            function(*chunk)
        return
    executor = _executor(workers())
    futures = [executor.submit(function, *chunk) for chunk in chunks]
    try:
        for future in futures:
            future.result()
    except BaseException:
        # An error or Ctrl-C: no chunk may still write into the outputs
        # (the engine's kept buffers) once this returns.
        for future in futures:
            future.cancel()
        concurrent.futures.wait(futures)
        raise


def split(size, pieces):
    """``[(start, stop)]``: ``range(size)`` in at most ``pieces`` parts of
    nearly equal length."""
    pieces = max(1, min(pieces, size))
    bounds = [size * i // pieces for i in range(pieces + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def spread_evenly(pieces, others, most):
    """The least count, from ``pieces`` up to ``most``, for which
    ``others * count`` chunks are a multiple of :func:`workers` (so that
    the threads finish together), or ``most``."""
    while (others * pieces) % workers() and pieces < most:
        pieces += 1
    return pieces


def workers():
    """Threads :func:`run_chunks` uses now (1 outside :func:`cpu_chunks`)."""
    return getattr(_local, 'workers', None) or 1


def _executor(workers):
    # One pool per process: a pool inherited through fork() has no threads.
    with _pool_lock:
        if _pool['pid'] != os.getpid() or _pool['workers'] != workers:
            if _pool['pid'] == os.getpid():
                _pool['executor'].shutdown(wait=False)
            _pool.update(pid=os.getpid(), workers=workers,
                         executor=concurrent.futures.ThreadPoolExecutor(
                             workers, thread_name_prefix='i3d-fast'))
        return _pool['executor']

