"""stop_on_interrupt: Ctrl-C and SIGTERM end a script with one line and exit
status 130; stopping_at_safe_points: the first only asks the work to stop;
prepare_worker and worker_context: workers leave Ctrl-C and SIGTERM to their
parent, which kills them."""

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from chainercv_i3d.utils import interrupts
from chainercv_i3d.utils.comm import SerialComm
from chainercv_i3d.utils.interrupts import prepare_worker
from chainercv_i3d.utils.interrupts import starting_workers
from chainercv_i3d.utils.interrupts import stop_on_interrupt
from chainercv_i3d.utils.interrupts import stopping_at_safe_points
from chainercv_i3d.utils.interrupts import worker_context
from tests.conftest import load_example
from tests.conftest import ROOT
from tests.conftest import wait_until
from tests.conftest import wait_until_ignoring_sigterm

LINE = 'prog: stopped: 4 done; run the same command to continue\n'


def interrupted_by(raise_interrupt):
    with pytest.raises(SystemExit) as stopped:
        with stop_on_interrupt('prog', SerialComm(), lambda: 4):
            raise_interrupt()
    return stopped.value.code


@pytest.fixture
def restore_signals():
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT,
                                                 signal.SIGTERM)}
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def ctrl_c():
    raise KeyboardInterrupt


def sigterm():
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize('raise_interrupt', [ctrl_c, sigterm])
def test_an_interrupt_is_one_line_and_exit_130(raise_interrupt, capfd,
                                               restore_signals):
    assert interrupted_by(raise_interrupt) == 130
    out, err = capfd.readouterr()
    assert (out, err) == ('', LINE)


def test_sigterm_is_itself_again_after_the_context(restore_signals):
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_interrupt('prog', SerialComm(), lambda: 0):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_later_signals_cannot_cut_the_way_out_short(capfd, restore_signals):
    # timeout(1) sends SIGTERM to the process and then to its group: the
    # second broke into precompute's cleanup, whose executor then handed
    # out every video left before the script could exit.
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal
    cleaned_up = []
    with pytest.raises(SystemExit) as stopped:
        with stop_on_interrupt('prog', SerialComm(), lambda: 4):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(10)  # the handler raises here
            finally:
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)  # a handler would raise here
                cleaned_up.append(True)
    assert stopped.value.code == 130
    assert cleaned_up == [True]
    assert capfd.readouterr().err == LINE


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM],
                         ids=['SIGINT', 'SIGTERM'])
def test_the_first_signal_asks_a_later_one_stops_at_once(
        signum, restore_signals):
    # As in a terminal: the tests may run in a shell's background, where
    # Ctrl-C is ignored (and stays so: the next test).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT,
                                               signal.SIGTERM)}
    with pytest.raises(KeyboardInterrupt):
        with stopping_at_safe_points() as stop:
            assert not stop.asked
            os.kill(os.getpid(), signum)
            assert stop.asked  # and the work goes on
            # The same request, passed on by mpiexec: still going on.
            os.kill(os.getpid(), signum)
            time.sleep(interrupts.SAME_REQUEST_S + 0.1)
            os.kill(os.getpid(), signum)
            pytest.fail('another signal should stop at once')
    assert {s: signal.getsignal(s) for s in before} == before


def test_an_ignored_ctrl_c_stays_ignored(restore_signals):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a shell's background job
    with stopping_at_safe_points() as stop:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)
        assert not stop.asked
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_outside_the_main_thread_nothing_changes():
    seen = []

    def work():
        with stopping_at_safe_points() as stop:
            seen.append((stop.asked, signal.getsignal(signal.SIGINT)))
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [(False, signal.getsignal(signal.SIGINT))]


def test_other_errors_pass_through(restore_signals):
    with pytest.raises(ValueError):
        with stop_on_interrupt('prog', SerialComm(), lambda: 0):
            raise ValueError('not an interrupt')


@pytest.mark.parametrize('script, work', [
    ('eval_kinetics.py', 'evaluate'), ('extract_features.py', 'extract'),
    ('fvd.py', 'run')])
def test_scripts_stop_with_one_line(script, work, tmp_path, monkeypatch,
                                    capfd, restore_signals):
    module = load_example(script)
    monkeypatch.setattr(module, work, lambda *args: ctrl_c())
    argv = {'eval_kinetics.py': [str(tmp_path), '--rgb_model_checkpoint',
                                 'x.npz'],
            'extract_features.py': [str(tmp_path), str(tmp_path / 'out')],
            'fvd.py': [str(tmp_path), str(tmp_path)]}[script]
    with pytest.raises(SystemExit) as stopped:
        module.main(argv)
    assert stopped.value.code == 130
    err = capfd.readouterr().err
    assert err.splitlines() == [err.splitlines()[-1]]
    prog = os.path.splitext(script)[0]
    if script == 'fvd.py':  # keeps nothing of an unfinished run
        assert err == (prog + ': stopped: nothing is kept of an unfinished '
                       'run; run the same command to start it again\n')
    else:
        assert err == (prog + ': stopped: 0 done; run the same command to '
                       'continue\n')


def ends_at_once(parent_pid):
    prepare_worker(parent_pid)
    os._exit(0)  # not reached when parent_pid is not the parent


def test_a_worker_whose_parent_is_gone_ends():
    context = multiprocessing.get_context('fork')
    for parent, exitcode in ((os.getpid(), 0), (os.getpid() + 10 ** 6, 1)):
        worker = context.Process(target=ends_at_once, args=(parent,))
        worker.start()
        worker.join(30)
        assert worker.exitcode == exitcode


def waits_as_a_worker(parent_pid, ready):
    prepare_worker(parent_pid)
    ready.set()
    time.sleep(120)


def start_waiting_worker(start_method):
    context = worker_context(start_method)
    ready = context.Event()
    worker = context.Process(target=waits_as_a_worker,
                             args=(os.getpid(), ready), daemon=True)
    with starting_workers():
        worker.start()
    assert ready.wait(60)
    return worker


@pytest.mark.parametrize('start_method', ['fork', 'spawn'])
def test_workers_ignore_every_sigterm_and_terminate_kills_them(
        start_method):
    worker = start_waiting_worker(start_method)
    if start_method == 'spawn':
        # Its BLAS threads, started before prepare_worker, took a SIGTERM
        # its main thread blocked, and it died of it, a lock perhaps held.
        assert len(os.listdir('/proc/{}/task'.format(worker.pid))) > 1
    # A scheduler's SIGTERM reaches every process; the parent's would
    # come from a pool that used the standard terminate().
    subprocess.run(['kill', '-TERM', str(worker.pid)], check=True)
    os.kill(worker.pid, signal.SIGTERM)
    worker.join(1)
    assert worker.exitcode is None
    worker.terminate()
    worker.join(30)
    assert worker.exitcode == -signal.SIGKILL


def works_for_a_minute(marker):
    open(marker, 'w').close()
    time.sleep(60)


def wait_for_files(paths):
    wait_until(lambda: all(os.path.exists(p) for p in paths),
               'the workers did not start')


def signal_each(pids, signum):
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:  # killed, reaped
            pass


@pytest.mark.parametrize('start_method', ['fork', 'spawn'])
def test_a_pool_ends_workers_that_another_sigterm_reached_first(
        tmp_path, start_method):
    # The hang seen in CI (fork): a scheduler's SIGTERM, still pending in a
    # worker when the pool's came, made one signal with it, and the worker,
    # which obeyed its parent's only, took it for the scheduler's and lived
    # on (failed before worker_context). Spawned workers, whose BLAS threads
    # run before prepare_worker, end the same way.
    others = set(multiprocessing.active_children())
    with starting_workers():
        pool = worker_context(start_method).Pool(
            2, initializer=prepare_worker, initargs=(os.getpid(),))
    markers = [str(tmp_path / str(i)) for i in range(2)]
    pool.map_async(works_for_a_minute, markers, chunksize=1)
    wait_for_files(markers)
    workers = [p.pid for p in set(multiprocessing.active_children()) - others]
    assert len(workers) == 2
    for pid in workers:  # not scheduled before the pool's signal comes
        os.kill(pid, signal.SIGSTOP)
    subprocess.run(['kill', '-TERM'] + [str(pid) for pid in workers],
                   check=True)
    ending = threading.Thread(target=pool.terminate, daemon=True)
    ending.start()
    time.sleep(0.5)
    signal_each(workers, signal.SIGCONT)
    ending.join(20)
    try:
        assert not ending.is_alive()
    finally:
        signal_each(workers, signal.SIGKILL)


def test_a_pool_ends_after_replacing_a_dead_worker(tmp_path):
    # The pool's own thread starts the replacement and ends with the pool:
    # a worker tied to it (PR_SET_PDEATHSIG) was killed then, as it held
    # the task queue waiting for work, and Pool.terminate waited for ever.
    others = set(multiprocessing.active_children())
    with starting_workers():
        pool = worker_context('fork').Pool(
            2, initializer=prepare_worker, initargs=(os.getpid(),))
    markers = [str(tmp_path / str(i)) for i in range(2)]
    pool.map_async(works_for_a_minute, markers, chunksize=1)
    wait_for_files(markers)
    first = set(multiprocessing.active_children()) - others
    os.kill(next(iter(first)).pid, signal.SIGKILL)  # out of memory, say
    wait_until(lambda: set(multiprocessing.active_children()) - others
               - first, 'not replaced', timeout=60)
    replacement = set(multiprocessing.active_children()) - others - first
    wait_until_ignoring_sigterm([p.pid for p in replacement])
    time.sleep(0.5)  # waiting for work, holding the task queue
    ending = threading.Thread(target=pool.terminate, daemon=True)
    ending.start()
    ending.join(30)
    assert not ending.is_alive()


def cannot_start(parent_pid):
    prepare_worker(parent_pid)
    raise RuntimeError('no GPU left')


def test_a_context_lists_every_worker_it_started(capfd):
    # A rank that looked for its workers once, with active_children(), could
    # find none (all dead as they started, their replacements not yet
    # started) and waited for ever for them to die (seen in CI).
    context = worker_context('fork')
    pool = context.Pool(2, initializer=cannot_start, initargs=(os.getpid(),))
    try:
        wait_until(lambda: sum(p.exitcode is not None
                               for p in list(context.workers)) >= 4,
                   'the pool did not replace its workers', timeout=60)
    finally:
        pool.terminate()
        pool.join()
    assert len({p.pid for p in context.workers}) == len(context.workers)
    assert worker_context('fork').workers == []  # one list per pool
    assert 'RuntimeError: no GPU left' in capfd.readouterr().err


EXITS_WITH_A_WORKER = """
import os
import sys
import time

from chainercv_i3d.utils.interrupts import prepare_worker
from chainercv_i3d.utils.interrupts import worker_context


def wait(parent_pid, ready):
    prepare_worker(parent_pid)
    ready.set()
    time.sleep(3600)


if __name__ == '__main__':
    context = worker_context(sys.argv[1])
    ready = context.Event()
    worker = context.Process(target=wait, args=(os.getpid(), ready),
                             daemon=True)
    worker.start()
    assert ready.wait(60)
    print(worker.pid)
"""


@pytest.mark.parametrize('start_method', ['fork', 'spawn'])
def test_a_script_ends_with_its_daemonic_workers_still_running(
        tmp_path, start_method):
    # At exit, multiprocessing ends them with the Popen's terminate(),
    # not the process's: SIGTERM, which they ignore, then waits for them.
    script = tmp_path / 'script.py'
    script.write_text(EXITS_WITH_A_WORKER)
    result = subprocess.run([sys.executable, str(script), start_method],
                            cwd=ROOT, capture_output=True, text=True,
                            timeout=150)
    assert result.returncode == 0, result.stderr
    assert not os.path.exists('/proc/{}'.format(result.stdout.strip()))


def test_workers_start_by_fork_or_spawn_only():
    with pytest.raises(ValueError, match='fork or spawn'):
        worker_context('forkserver')
