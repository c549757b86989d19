"""Stopping cleanly: Ctrl-C and SIGTERM, and worker processes that never
outlive their parent.

Every long-running script wraps its work in :func:`stop_on_interrupt`:
SIGTERM (a scheduler's or ``kill``'s) takes the path of Ctrl-C, and either
ends the run with one line, ``<prog>: stopped: N done; run the same command
to continue``, and exit status 130 (128 + SIGINT, the shell's convention),
on every rank. Worker processes start from :func:`worker_context` and call
:func:`prepare_worker` first: the parent alone handles Ctrl-C and SIGTERM,
ends its workers with SIGKILL, and a worker dies with its parent, even when
the parent is killed by SIGKILL.
"""

import contextlib
import multiprocessing.context
import multiprocessing.popen_fork
import multiprocessing.popen_spawn_posix
import os
import signal
import sys
import threading
import time

# The exit status of a run stopped by Ctrl-C or SIGTERM.
EXIT_INTERRUPTED = 130

def _interrupt(signum, frame):
    # The first signal stops the run; later ones are ignored, so that they
    # cannot cut short the way out (killing workers, removing temporary
    # files, the line). timeout(1) sends its SIGTERM twice, to the process
    # and to its group: the second once broke into precompute's cleanup,
    # and its executor then handed out every video left before exit.
    _ignore_interrupts()
    raise KeyboardInterrupt


def _ignore_interrupts():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def stopped_line(prog, n_done, comm):
    """The line a stopped run prints (with the rank under mpiexec);
    ``n_done`` None: a run that keeps nothing of unfinished work."""
    rank = 'rank {}: '.format(comm.rank) if comm.size > 1 else ''
    if n_done is None:
        return ('{}: {}stopped: nothing is kept of an unfinished run; run '
                'the same command to start it again'.format(prog, rank))
    return '{}: {}stopped: {} done; run the same command to continue'.format(
        prog, rank, n_done)


@contextlib.contextmanager
def stop_on_interrupt(prog, comm, count_done):
    """Within this context Ctrl-C and SIGTERM end the run with one line
    and exit status 130, without a traceback.

    Each rank that receives the signal prints its line, then ends every rank
    (``comm.abort``): a rank blocked in a collective call could not see the
    signal and would wait forever.

    Args:
        prog (str): The script's name, which starts the line.
        comm: The communicator.
        count_done (callable): Returns the work units finished and kept
            (videos written, iterations of the last snapshot), or None
            where nothing of an unfinished run is kept; called once, after
            the interrupt.

    Example:

        >>> with stop_on_interrupt('precompute_frames_flow', comm,
        ...                        lambda: count_files(output_dir)):
        ...     run_precompute(...)
    """
    # An ignored Ctrl-C (a shell's background job) stays ignored.
    previous = {signum: signal.signal(signum, _interrupt)
                for signum in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield
    except KeyboardInterrupt:
        # Nor may a signal interrupt the count or the line when something
        # else raised KeyboardInterrupt (a stop at a safe point).
        _ignore_interrupts()
        line = stopped_line(prog, count_done(), comm)
        sys.stdout.flush()
        # One unbuffered write: the line is out before the abort.
        os.write(sys.stderr.fileno(), (line + '\n').encode())
        comm.abort(EXIT_INTERRUPTED)
    finally:
        for signum, handler in previous.items():
            # None: a handler not set from Python, which cannot be restored.
            signal.signal(signum, signal.SIG_DFL if handler is None
                          else handler)


# Signals within this many seconds of the first are the same request: a
# batch scheduler's SIGTERM reaches each rank both itself and through
# mpiexec, which passes on its own.
SAME_REQUEST_S = 1.0


class StopRequest(object):
    """Whether Ctrl-C or SIGTERM asked the run to stop (``asked``): the run
    stops at its next safe point, keeping what it did
    (:func:`stopping_at_safe_points`)."""

    def __init__(self):
        self.asked = False
        self._asked_at = None

    def _on_signal(self, signum, frame):
        now = time.monotonic()
        if self._asked_at is None:
            self.asked = True
            self._asked_at = now
        elif now - self._asked_at > SAME_REQUEST_S:  # again: at once
            raise KeyboardInterrupt


@contextlib.contextmanager
def stopping_at_safe_points():
    """Within this context the first Ctrl-C or SIGTERM only sets ``asked``
    of the :class:`StopRequest` it yields; the work checks it where
    stopping keeps what is done (training: between updates, then a
    snapshot) and raises KeyboardInterrupt there. Another signal, over
    ``SAME_REQUEST_S`` later, raises KeyboardInterrupt at once. Outside
    the main thread, which receives no signals, nothing is changed and
    ``asked`` stays False.

    Example:

        >>> with stopping_at_safe_points() as stop:
        ...     for step in steps:
        ...         if stop.asked:
        ...             save(); raise KeyboardInterrupt
        ...         run(step)
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    # An ignored Ctrl-C (a shell's background job) stays ignored.
    previous = {signum: signal.signal(signum, request._on_signal)
                for signum in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            # None: a handler not set from Python, which cannot be restored.
            signal.signal(signum, signal.SIG_DFL if handler is None
                          else handler)


@contextlib.contextmanager
def starting_workers():
    """Around anything that may fork worker processes (creating a
    ``Pool``, an executor's ``submit``): Ctrl-C and SIGTERM are blocked in
    this thread meanwhile, so that a forked worker starts with them
    blocked: one that comes before :func:`prepare_worker` ignores them
    never runs this process's handler, which the worker inherited (it
    ended the worker). Threads started here (a pool's) keep them blocked.
    A signal to this process comes when the block ends, unless another
    thread with them unblocked took it (its handler still runs in the
    main thread, perhaps inside the block). (A spawned worker
    starts with nothing blocked whatever this process blocks: measured,
    Python 3.11; until it ignores them, they end it as they would any new
    process.)
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK,
                                      {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _KilledOnTerminate(object):
    """How a worker process is ended: ``terminate()`` sends SIGKILL, which
    workers cannot ignore (:func:`prepare_worker` ignores SIGTERM). Set on
    the process's ``Popen``, which ``Process.terminate`` calls, and so does
    ``multiprocessing`` at exit for daemonic processes still running (a
    pool's workers)."""

    def terminate(self):
        self.kill()


class _ForkPopen(_KilledOnTerminate, multiprocessing.popen_fork.Popen):
    pass


class _SpawnPopen(_KilledOnTerminate,
                  multiprocessing.popen_spawn_posix.Popen):
    pass


class _ForkWorker(multiprocessing.context.ForkProcess):
    @staticmethod
    def _Popen(process_obj):
        return _ForkPopen(process_obj)


class _SpawnWorker(multiprocessing.context.SpawnProcess):
    @staticmethod
    def _Popen(process_obj):
        return _SpawnPopen(process_obj)


class _RecordsWorkers(object):
    """A context that keeps every process it made, in ``workers``, those
    that ended too: their parent kills them on a stop and says how the
    first one to end ended. ``multiprocessing.active_children()`` misses
    workers that ended, and those a pool's thread started after the look
    (precompute once waited for ever on such a look, in CI)."""

    def __init__(self):
        super().__init__()
        self.workers = []

    def Process(self, *args, **kwargs):
        process = self.worker_class(*args, **kwargs)
        self.workers.append(process)
        return process


class _ForkWorkers(_RecordsWorkers, multiprocessing.context.ForkContext):
    worker_class = _ForkWorker


class _SpawnWorkers(_RecordsWorkers, multiprocessing.context.SpawnContext):
    worker_class = _SpawnWorker


_WORKER_CONTEXTS = {'fork': _ForkWorkers, 'spawn': _SpawnWorkers}


def worker_context(start_method):
    """A new ``multiprocessing`` context that starts worker processes
    (``'fork'`` or ``'spawn'``), for one ``Pool`` (``context=``) or
    ``ProcessPoolExecutor`` (``mp_context=``); the workers run
    :func:`prepare_worker` first. Its ``workers`` lists every process it
    started, replacements of dead workers too.

    As ``multiprocessing.get_context(start_method)``, but ``terminate()``
    of its processes sends SIGKILL, also where ``multiprocessing`` ends
    daemonic processes at exit: the workers ignore SIGTERM. A pool calls
    it once it stopped handing out work (``Pool.terminate`` holds its task
    queue; a broken executor uses its queues no more), and a worker is
    killed whatever it was doing, as by SIGTERM's default action, which
    the pools were written for. A worker that told its parent's SIGTERM
    from others' was left alive when both came at once (two pending
    SIGTERMs are one signal), and ``Pool.terminate`` waited for it for
    ever (seen in CI). A file a killed worker was writing stays a
    temporary file (``files.atomic_path``), which its parent removes.
    """
    try:
        make_context = _WORKER_CONTEXTS[start_method]
    except KeyError:
        raise ValueError('workers start by fork or spawn, not {!r}'.format(
            start_method)) from None
    return make_context()


# How often a worker looks whether its parent still runs.
PARENT_CHECK_S = 0.2


def _end_with_parent(parent_pid):
    # Not PR_SET_PDEATHSIG, which is tied to the thread that started the
    # worker: a pool's thread starts a worker that replaces a dead one and
    # ends when the pool does, killing the replacement, perhaps as it held
    # the pool's task queue (Pool.terminate then waited for ever).
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


def prepare_worker(parent_pid):
    """Run first in a worker process (started with :func:`worker_context`):
    stopping is the parent's. Ctrl-C and SIGTERM are ignored, whoever sends
    them (a terminal's Ctrl-C and a batch scheduler's SIGTERM reach every
    process): the parent stops at a safe point and ends its workers itself
    (SIGKILL, :func:`worker_context`). The worker ends when its parent does,
    even by SIGKILL (within ``PARENT_CHECK_S``).

    Ignoring holds in every thread, so also for a spawned worker (beside a
    GPU), whose BLAS threads already run here: they took a SIGTERM that
    this thread blocked and the worker died of it, a lock perhaps held.

    Args:
        parent_pid (int): The process that started this worker: if it is
            already gone, this worker ends now.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A signal held back while this worker forked is now discarded.
    signal.pthread_sigmask(signal.SIG_UNBLOCK,
                           {signal.SIGINT, signal.SIGTERM})
    if os.getppid() != parent_pid:  # gone before this worker ran
        os._exit(1)
    threading.Thread(target=_end_with_parent, args=(parent_pid,),
                     name='parent', daemon=True).start()
