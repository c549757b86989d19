"""What the benchmarks share: the ``BATCHxFRAMES`` cases of their
``--cases`` options, PyTorch's two float32 settings on a GPU (``torch`` and
``torch_tf32``), running a case in its own process, and writing the
results after every case."""

import argparse
import collections
import json
import os
import subprocess
import sys
import threading

from chainercv_i3d.files import atomic_path


def parse_case(text, min_frames=1):
    """Parses ``'BxT'`` into ``(batch, frames)``; ``frames`` must be at
    least ``min_frames`` (9 where I3D's head runs)."""
    try:
        batch, frames = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            'a case is BATCHxFRAMES, e.g. 1x64, not {!r}'.format(text))
    if batch < 1 or frames < min_frames:
        raise argparse.ArgumentTypeError(
            'a case needs batch >= 1 and frames >= {}, got {!r}'.format(
                min_frames, text))
    return batch, frames


def parse_cases(text, min_frames=1):
    """Parses comma-separated cases (see :func:`parse_case`)."""
    return [parse_case(case, min_frames) for case in text.split(',') if case]


# ------------------------------------------------ paths, runs and results
# PyTorch's float32 on a GPU, per path: 'torch' strict (TF32 off for cuDNN's
# convolutions and cuBLAS's matrix products, like CuPy without CUPY_TF32),
# 'torch_tf32' with TF32 on (PyTorch's default for cuDNN convolutions).
TORCH_TF32 = {'torch': False, 'torch_tf32': True}
# What a result records for TF32 on a CPU: no CPU kernel has it.
NOT_APPLICABLE = 'not applicable'
# Test hook: comma-separated BATCHxFRAMES:PATH (or BATCHxFRAMES: every path)
# whose case raises in its child process before it starts.
FAIL_ENV = 'BENCHMARK_FAIL_CASES'


def expand_torch_paths(paths, device):
    """The paths to run: on a GPU (``device >= 0``) ``torch`` or
    ``torch_tf32`` runs twice, strict float32 (``torch``) and TF32
    (``torch_tf32``); on the CPU once, as ``torch`` (TF32 does not apply)."""
    out = []
    for path in paths:
        names = [path]
        if path in TORCH_TF32:
            names = ['torch', 'torch_tf32'] if device >= 0 else ['torch']
        out.extend(n for n in names if n not in out)
    return out


def cupy_tf32(device):
    """Whether CuPy's float32 products use TF32 (``CUPY_TF32=1``, read by
    CuPy at its first float32 product) on GPU ``device``; on the CPU
    :data:`NOT_APPLICABLE`."""
    if device < 0:
        return NOT_APPLICABLE
    return os.environ.get('CUPY_TF32', '0') not in ('', '0')


def tf32_of(path, device):
    """What ``path`` uses for float32 products on ``device``: True (TF32),
    False (strict float32) or ``'not applicable'`` (the CPU)."""
    if device < 0:
        return NOT_APPLICABLE
    if path in TORCH_TF32:
        return TORCH_TF32[path]
    return cupy_tf32(device)


def raise_if_forced_to_fail(case, path):
    """Raises RuntimeError when ``$BENCHMARK_FAIL_CASES`` lists this case
    (``BxT`` or ``BxT:path``): how the tests make a case fail."""
    name = '{}x{}'.format(*case)
    listed = [s.strip() for s in os.environ.get(FAIL_ENV, '').split(',')]
    if name in listed or '{}:{}'.format(name, path) in listed:
        raise RuntimeError('case {} path {} forced to fail by {}'.format(
            name, path, FAIL_ENV))


def mpi_rank():
    """This process's rank under mpiexec (MPICH, Open MPI, PMIx), or 0."""
    for key in ('PMI_RANK', 'OMPI_COMM_WORLD_RANK', 'PMIX_RANK'):
        if os.environ.get(key, '').isdigit():
            return int(os.environ[key])
    return 0


def write_results(path, results):
    """Writes ``results`` to ``path`` as JSON, whole or not at all (a
    temporary file in the same folder, then ``os.replace``); called after
    every finished or failed case, so an interrupted run keeps what it
    measured. Only rank 0 writes under mpiexec. Nothing when ``path`` is
    None."""
    if path is None or mpi_rank() != 0:
        return
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(results, f, indent=2)


def one_line(text):
    """The last non-empty line of ``text`` (an error's message), or ''."""
    lines = [line.strip() for line in (text or '').splitlines()
             if line.strip()]
    return lines[-1] if lines else ''


def run_child(command):
    """Runs one case's child process; its stderr is passed through as it
    comes, and its result is the JSON of its last stdout line.

    Returns:
        tuple: ``(result dict, None)``, or ``(None, error)`` with the error
        on one line (how it ended and the last line of its stderr).
    """
    proc = subprocess.Popen(command, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stdout = []
    reader = threading.Thread(target=lambda: stdout.append(proc.stdout.read()))
    reader.start()
    tail = collections.deque(maxlen=20)
    for line in proc.stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
        tail.append(line)
    reader.join()
    returncode = proc.wait()
    if returncode != 0:
        why = ('killed by signal {}, out of memory?'.format(-returncode)
               if returncode < 0 else 'exit {}'.format(returncode))
        last = one_line(''.join(tail))
        return None, why + (': ' + last if last else '')
    try:
        return json.loads(''.join(stdout).strip().splitlines()[-1]), None
    except (ValueError, IndexError) as e:
        return None, 'no result on its stdout ({})'.format(
            one_line(str(e)) or type(e).__name__)
