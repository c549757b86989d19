"""Shared fixtures: where the reference data is, and a fidelity report.

Tests that need ``../shared/i3d`` (set ``CHAINERCV_I3D_SHARED`` to move it) or
TensorFlow skip with the reason when it is absent.
"""

import os
import subprocess
import sys

import pytest

import chainercv_i3d  # NOQA: patches the environment before chainer loads

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


def pytest_terminal_summary(terminalreporter):
    if _FIDELITY_LINES:
        terminalreporter.section('fidelity against TensorFlow')
        for line in _FIDELITY_LINES:
            terminalreporter.write_line(line)


def run_script(name, *args):
    """Runs ``examples/i3d/<name>`` in a fresh interpreter; returns the result."""
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, 'examples', 'i3d', name)]
        + [str(a) for a in args],
        capture_output=True, text=True, cwd=ROOT)
