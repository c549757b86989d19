"""Ctrl-C while a script starts is one line, ``<script>: stopped``, never a
traceback (examples/i3d/quiet_interrupt.py)."""

import ast
import glob
import os
import signal
import subprocess
import sys
import time

from tests.conftest import as_in_a_terminal
from tests.conftest import ROOT

EXAMPLES = os.path.join(ROOT, 'examples', 'i3d')


def imported_before_the_hook(path):
    """Modules a script imports before quiet_interrupt (None: it never
    does)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    before = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module]
        else:
            continue
        if names == ['quiet_interrupt']:
            return before
        before += names
    return None


def test_every_script_sets_the_hook_before_anything_slow():
    scripts = [path for path in glob.glob(os.path.join(EXAMPLES, '*.py'))
               if not path.endswith('quiet_interrupt.py')]
    assert len(scripts) >= 13
    for path in scripts:
        before = imported_before_the_hook(path)
        assert before is not None, path
        top_level = {name.split('.')[0] for name in before}
        assert top_level <= sys.stdlib_module_names, (path, before)


def loaded(pid, library):
    try:
        with open('/proc/{}/maps'.format(pid)) as f:
            return library in f.read()
    except OSError:
        return False


def test_ctrl_c_while_importing_is_one_line():
    # Within numpy's compiled import: it came out as numpy's ImportError
    # ("you should not try to import numpy from its source directory").
    process = subprocess.Popen(
        [sys.executable, os.path.join(EXAMPLES, 'train_i3d.py'), '--help'],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=as_in_a_terminal)
    deadline = time.monotonic() + 60
    while not loaded(process.pid, '_multiarray_umath'):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert (process.returncode, stdout, stderr) == (
        -signal.SIGINT, '', 'train_i3d: stopped\n')
