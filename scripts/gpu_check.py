"""The device check: every GPU path of the suite, in one short call.

A GPU machine is lent rarely and briefly, so this check spends its minutes on
the GPU. What needs no GPU is done beforehand, here:

    python scripts/gpu_check.py --prepare      # writes gpu_kit/ (4 MiB)
    python scripts/gpu_check.py --rehearse     # every section, up to CUDA

``--prepare`` writes ``gpu_kit/`` beside this checkout's files: the chainer
7.8.1 wheel (the GPU machine's image has CuPy, numpy, PyTorch, OpenCV and
mpi4py, not chainer) and the CPU references the GPU's results are compared
with (``references.npz``: logits of seeded random weights, a training step's
loss and gradients, TV-L1 flows of numpy and of OpenCV). ``gpu_kit/`` is
untracked and not ignored, so the device tool copies it with the tree
(no ``carry``). On the GPU machine, with the image's Python itself (a venv
made from it would hide its packages):

    bash scripts/gpu_check.sh      # = python3 scripts/gpu_check.py

It installs the kit's wheels into a folder of its own (``pip --target``),
then runs each section in its own process with a time limit, under a budget
of 330 s in all: a crash or a hang in one costs that section only. After
each section ``REPORT/report.json`` is rewritten (REPORT: ``--report``,
else ``$OUT``, else ``gpu_check_report``), and ``report.log`` gets its
output. A section ends ``ok``, ``failed`` (a check was false), ``error``
(an exception, e.g. an import error: never taken for "no GPU"), ``timeout``
or ``rehearsed``. The exit status is 1 if any section did not end ``ok``
(or ``rehearsed`` with ``--rehearse``).

Sections: environment, kernels (the CUDA kernels against their array
versions: the GPU tests of the fast path's and TV-L1's kernels), fast_path
(float32 and float16 against the CPU, and their speed), reference_path,
training (a step's loss, gradients and update against the CPU), tvl1 (flow
against numpy and OpenCV, pairs/s at 256x340), chainermn_1rank and
chainermn_2ranks (gradient all-reduce with the communicator
:func:`chainercv_i3d.utils.comm.choose_chainermn_communicator` picks, two
ranks sharing the one GPU), bench_infer and bench_train (against PyTorch).

``--rehearse`` runs every section here, without a GPU, up to its first CUDA
call (:meth:`Section.cupy`), so a broken import, kit or command is found
before GPU time is spent; ``--cpu_standin`` runs each section's own code
past that call with numpy standing in for CuPy (tests/test_gpu_check.py
does both). ``--only fast_path,tvl1`` runs some sections.
"""

import argparse
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import types

import numpy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIT = os.path.join(REPO, 'gpu_kit')
REFERENCES = 'references.npz'
MANIFEST = 'manifest.json'
BUDGET_SECONDS = 330
# The kit travels with the tree; both must stay well under what a call
# may carry without `carry` (16 MiB).
KIT_LIMIT_MIB = 12
CHAINER_WHEEL = 'chainer==7.8.1'
MPICH_WHEEL = 'mpich==5.0.2'

# The inputs every section and the kit share: seeded, so both sides make
# them alike (numpy's legacy RandomState streams do not change).
WEIGHT_SEED = 0
CLIP_SEED = 1
N_CLASS = 400
TRAIN_N_CLASS = 10
TRAIN_LABELS = (3, 7)
TRAIN_LR = 0.1
GRAD_SAMPLE = 64  # values of each gradient kept in the kit
FLOW_SIZE = (256, 340)
FLOW_PAIRS = 2
FLOW_SHIFTS = ((1, 2), (-2, 1))
# Speed cases on the GPU: (batch, frames) at 224 x 224.
SPEED_CASES = ((1, 64), (8, 64))
FLOW_THROUGHPUT_PAIRS = 128


class Rehearsed(Exception):
    """Raised at a section's first CUDA call when rehearsing."""


class CpuStandIn(object):
    """numpy dressed as the few CuPy calls the sections make, so that the
    tests run each section's code past its CUDA boundary on the CPU
    (``--cpu_standin``): what only a GPU can say is all that is left to the
    GPU machine."""

    __version__ = 'numpy standing in for CuPy'

    def __init__(self):
        device = types.SimpleNamespace(use=lambda: None,
                                       synchronize=lambda: None)
        runtime = types.SimpleNamespace(
            getDeviceProperties=lambda i: {
                'name': b'CPU stand-in', 'totalGlobalMem': 0, 'major': 0,
                'minor': 0},
            runtimeGetVersion=lambda: 0, driverGetVersion=lambda: 0,
            getDeviceCount=lambda: 1)
        self.cuda = types.SimpleNamespace(Device=lambda i=0: device,
                                          runtime=runtime)
        self.random = types.SimpleNamespace(uniform=self._uniform)

    @staticmethod
    def _uniform(low, high, size, dtype):
        return numpy.random.RandomState(0).uniform(low, high, size) \
            .astype(dtype)

    def __getattr__(self, name):
        return getattr(numpy, name)


class Section(object):
    """What a section's function gets: the kit, checks and the GPU.

    Attributes:
        kit (str): The kit's folder.
        report (str): The report folder (benchmarks write JSON there).
        rehearse (bool): Stop at the first CUDA call.
        results (dict): Figures for the report.
        checks (list): ``{'check', 'ok', 'detail'}`` per check made.
    """

    def __init__(self, kit, report, rehearse, standin=False):
        self.kit = kit
        self.report = report
        self.rehearse = rehearse
        self.standin = standin
        # What the GPU runs; the CPU stand-in runs the smallest of each.
        self.speed_cases = ((1, 9),) if standin else SPEED_CASES
        self.flow_throughput_pairs = FLOW_PAIRS if standin \
            else FLOW_THROUGHPUT_PAIRS
        self.results = {}
        self.checks = []
        self._references = None

    @property
    def references(self):
        """The kit's CPU references (a dict of arrays)."""
        if self._references is None:
            path = os.path.join(self.kit, REFERENCES)
            if not os.path.exists(path):
                raise FileNotFoundError(
                    '{} is missing: run `python scripts/gpu_check.py '
                    '--prepare` on a machine with the project installed'
                    .format(path))
            with numpy.load(path) as loaded:
                self._references = dict(loaded)
        return self._references

    def cupy(self):
        """CuPy with GPU 0 current: the section's first CUDA call."""
        if self.rehearse:
            raise Rehearsed()
        if self.standin:
            return CpuStandIn()
        import cupy
        cupy.cuda.Device(0).use()
        return cupy

    @property
    def xp(self):
        """The array module of the GPU side (numpy for the stand-in)."""
        return numpy if self.standin else self.cupy()

    def synchronize(self):
        """Waits for the GPU (nothing for the stand-in)."""
        if not self.standin:
            self.cupy().cuda.Device().synchronize()

    @property
    def on_gpu(self):
        return not self.standin

    def device(self):
        """chainer's device for GPU 0 (the CPU for the stand-in)."""
        chainer = import_chainer()
        return chainer.get_device('@numpy' if self.standin else '@cupy:0')

    def check(self, name, ok, detail=''):
        """Records a check; a false one makes the section fail."""
        self.checks.append({'check': name, 'ok': bool(ok),
                            'detail': str(detail)})
        print('  {} {}{}'.format('ok  ' if ok else 'FAIL', name,
                                 ': ' + str(detail) if detail else ''))
        return bool(ok)

    def check_close(self, name, got, expected, rtol):
        """Checks ``got`` against ``expected`` within ``rtol`` of the
        largest expected magnitude, by the tests' own comparison
        (:func:`chainercv_i3d.testing.assertions.assert_close_finite`):
        NaN, inf, empty arrays, other shapes and an all-zero reference all
        fail."""
        error = close_error(got, expected, rtol, name)
        if isinstance(error, str):
            return self.check(name, False, error)
        key = name.replace(' ', '_')
        self.results[key + '_relative_error'] = error
        return self.check(name, True, '{:.3g} of the largest value (limit '
                          '{:.0e})'.format(error, rtol))


def close_error(got, expected, rtol, name):
    """The largest difference as a share of the largest expected value, or
    the reason the comparison failed (a str)."""
    import_chainer()
    from chainercv_i3d.testing.assertions import assert_close_finite
    expected = numpy.asarray(expected, numpy.float64)
    try:
        error = assert_close_finite(got, expected, atol_scale=rtol, name=name)
    except AssertionError as e:
        return str(e)
    return error / float(numpy.abs(expected).max())


# ------------------------------------------------------ shared inputs

def import_chainer():
    import chainercv_i3d  # NOQA: before chainer (chainer_compat)
    import chainer
    return chainer


def seeded_i3d(fast, n_class=N_CLASS, dropout_ratio=0.5):
    """I3D with the kit's seeded random weights (built on the CPU)."""
    import_chainer()
    from chainercv_i3d.links import I3D
    numpy.random.seed(WEIGHT_SEED)
    return I3D(n_class=n_class, modality='rgb', fast_inference=fast,
               dropout_ratio=dropout_ratio)


def weight_checksum(model):
    """float64 sums of |w| per parameter: tells whether both sides built
    the same weights from the seed."""
    return numpy.array([numpy.abs(numpy.asarray(
        _to_cpu(p.array), numpy.float64)).sum()
        for _, p in sorted(model.namedparams())])


def seeded_clip(batch=2):
    """Clips of the smallest size I3D's head takes (9 x 193 x 193)."""
    import_chainer()
    from chainercv_i3d.architecture import min_input_size
    t, h, w = min_input_size()
    return numpy.random.RandomState(CLIP_SEED).uniform(
        -1, 1, (batch, 3, t, h, w)).astype(numpy.float32)


def logits_of(model, x):
    chainer = import_chainer()
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        return _to_cpu(model(x).array)


def training_step(model, x, labels):
    """One MomentumSGD step; returns the loss, each gradient (before the
    update) and each parameter after it, on the host."""
    chainer = import_chainer()
    import chainer.functions as F
    optimizer = chainer.optimizers.MomentumSGD(lr=TRAIN_LR)
    optimizer.setup(model)
    model.cleargrads()
    with chainer.using_config('train', True):
        loss = F.softmax_cross_entropy(model(x), labels)
    loss.backward()
    grads = {name: _to_cpu(p.grad) for name, p in model.namedparams()}
    before = {name: _to_cpu(p.array) for name, p in model.namedparams()}
    optimizer.update()
    after = {name: _to_cpu(p.array) for name, p in model.namedparams()}
    return float(_to_cpu(loss.array)), grads, before, after


def flow_pairs():
    """``FLOW_PAIRS`` pairs of a smooth texture moved by whole pixels."""
    import cv2
    height, width = FLOW_SIZE
    rng = numpy.random.RandomState(CLIP_SEED)
    prev, next_ = [], []
    for dx, dy in FLOW_SHIFTS:
        big = cv2.GaussianBlur(rng.uniform(0, 255, (height + 8, width + 8)),
                               (0, 0), 2.0)
        prev.append(big[4:4 + height, 4:4 + width])
        next_.append(big[4 - dy:4 - dy + height, 4 - dx:4 - dx + width])
    return (numpy.clip(numpy.array(prev), 0, 255).astype(numpy.uint8),
            numpy.clip(numpy.array(next_), 0, 255).astype(numpy.uint8))


def opencv_flows(prev, next_):
    import cv2
    flows = []
    for a, b in zip(prev, next_):
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        flows.append(tvl1.calc(a, b, None))
    return numpy.array(flows, numpy.float32)


def endpoint_error(a, b):
    return float(numpy.sqrt(((numpy.asarray(a) - numpy.asarray(b)) ** 2)
                            .sum(-1)).mean())


def _to_cpu(array):
    """A host copy (never the array itself: updates happen in place)."""
    if hasattr(array, 'get'):
        return array.get()
    return numpy.array(array)


# ------------------------------------------------------ the kit

def prepare(kit, with_wheel=True, with_mpich=False):
    """Writes the kit: wheels and the CPU references."""
    os.makedirs(kit, exist_ok=True)
    if with_wheel:
        build_wheel(kit, CHAINER_WHEEL, build=True)
    if with_mpich:
        build_wheel(kit, MPICH_WHEEL, build=False)
    started = time.time()
    references = cpu_references()
    save_npz_atomically(os.path.join(kit, REFERENCES), references)
    manifest = {
        'made': datetime.datetime.now(datetime.timezone.utc).isoformat(),
        'commit': git_commit(), 'numpy': numpy.__version__,
        'seconds': round(time.time() - started, 1),
        'files': sorted(os.listdir(kit))}
    write_json_atomically(os.path.join(kit, MANIFEST), manifest)
    print(check_kit_size(folder_mib(kit), tracked_mib()))


def check_kit_size(kit_mib, tree_mib):
    """The line saying the sizes; SystemExit when they are too large."""
    total = kit_mib + tree_mib
    if total > KIT_LIMIT_MIB:
        sys.exit('the kit ({:.1f} MiB) and the tree ({:.1f} MiB) are over '
                 '{} MiB: a device call without carry would not take them'
                 .format(kit_mib, tree_mib, KIT_LIMIT_MIB))
    return 'kit {:.2f} MiB; with the tracked tree {:.2f} MiB'.format(
        kit_mib, total)


def build_wheel(kit, requirement, build):
    name = requirement.split('==')[0]
    for old in glob.glob(os.path.join(kit, name + '-*.whl')):
        os.remove(old)
    pip = [sys.executable, '-m', 'pip', '-q', '--disable-pip-version-check']
    if build:  # chainer ships an sdist only; its build needs setuptools<82
        command = pip + ['wheel', '--no-deps', '--build-constraint',
                         os.path.join(REPO, 'constraints', 'build.txt'),
                         '-w', kit, requirement]
    else:
        command = pip + ['download', '--no-deps', '--only-binary=:all:',
                         '-d', kit, requirement]
    subprocess.run(command, check=True)


def cpu_references():
    """The CPU's results for every comparison the GPU sections make."""
    refs = {}
    clip = seeded_clip()
    model = seeded_i3d(fast=False)
    refs['weight_checksum'] = weight_checksum(model)
    refs['logits_reference'] = logits_of(model, clip)
    refs['logits_fast'] = logits_of(seeded_i3d(fast=True), clip)
    loss, grads, before, after = training_step(
        seeded_i3d(False, TRAIN_N_CLASS, dropout_ratio=0), clip,
        numpy.array(TRAIN_LABELS, numpy.int32))
    refs['train_loss'] = numpy.float64(loss)
    for name in sorted(grads):
        refs['grad_norm' + name] = numpy.linalg.norm(
            grads[name].astype(numpy.float64))
        refs['grad_head' + name] = grads[name].ravel()[:GRAD_SAMPLE]
    refs['flow_prev'], refs['flow_next'] = flow_pairs()
    from chainercv_i3d.flow.tvl1_xp import TVL1Batch
    refs['flow_numpy'] = TVL1Batch(numpy).compute_pairs(
        refs['flow_prev'], refs['flow_next'])[0]
    refs['flow_opencv'] = opencv_flows(refs['flow_prev'], refs['flow_next'])
    return refs


def git_commit():
    try:
        return subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                              cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def folder_mib(folder):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(folder)
               for name in names) / 2 ** 20


def tracked_mib():
    try:
        names = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO,
                               capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0.0
    paths = [os.path.join(REPO, n.decode()) for n in names.split(b'\0') if n]
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p)) \
        / 2 ** 20


def save_npz_atomically(path, arrays):
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile(dir=folder, suffix='.npz',
                                     delete=False) as f:
        numpy.savez(f, **arrays)
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)


def write_json_atomically(path, obj):
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile('w', dir=folder, suffix='.json',
                                     delete=False) as f:
        json.dump(obj, f, indent=1, default=str)
        f.write('\n')
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)


# ------------------------------------------------------ sections

def section_environment(s):
    import platform
    s.results['python'] = sys.version.split()[0] + ' ' + platform.machine()
    s.results['executable'] = sys.executable
    # chainercv_i3d first: chainer imports after its compat shim only.
    for name in ('chainercv_i3d', 'numpy', 'chainer', 'torch', 'cv2',
                 'mpi4py', 'numba'):
        s.results[name] = module_version(name)
    s.results['mpiexec'] = find_mpiexec()
    s.check('chainer imports', not s.results['chainer'].startswith('not'),
            s.results['chainer'])
    cupy = s.cupy()
    s.results['cupy'] = cupy.__version__
    runtime = cupy.cuda.runtime
    props = runtime.getDeviceProperties(0)
    s.results.update({
        'gpu': props['name'].decode(),
        'gpu_memory_gib': round(props['totalGlobalMem'] / 2 ** 30, 1),
        'compute_capability': '{}.{}'.format(props['major'], props['minor']),
        'cuda_runtime': runtime.runtimeGetVersion(),
        'cuda_driver': runtime.driverGetVersion(),
        'gpus': runtime.getDeviceCount()})
    from chainercv_i3d.chainer_compat import cuda_unavailable_reason
    from chainercv_i3d.utils.comm import cupy_has_nccl
    reason = cuda_unavailable_reason()
    s.check('chainer uses CuPy', reason is None, reason or '')
    s.results['nccl'] = cupy_has_nccl()
    try:
        import torch
        s.results['torch_cuda'] = torch.version.cuda
        s.results['torch_cudnn'] = torch.backends.cudnn.version()
    except ImportError:
        pass


def module_version(name):
    import importlib
    try:
        module = importlib.import_module(name)
    except Exception as e:  # any failure to import is reported, not raised
        return 'not importable ({}: {})'.format(type(e).__name__, e)
    return str(getattr(module, '__version__', '?'))


# The GPU tests of the CUDA kernels against their array versions.
KERNEL_TESTS = ('tests/gpu_tests/test_arrays.py',
                'tests/links_tests/fast_tests/test_reduced_precision.py',
                'tests/flow_tests/test_tvl1_xp.py')


def section_kernels(s):
    xml = os.path.join(s.report, 'kernels_pytest.xml')
    command = [sys.executable, '-m', 'pytest', '-m', 'gpu', '-q', '-rs',
               '-p', 'no:cacheprovider', '--junitxml', xml]
    command += list(KERNEL_TESTS)
    if s.rehearse or s.standin:  # collecting imports, no CUDA call
        collected = subprocess.run(command + ['--collect-only'], cwd=REPO,
                                   capture_output=True, text=True)
        print(collected.stdout[-2000:] + collected.stderr[-2000:])
        s.check('the kernel tests are collected', collected.returncode == 0,
                collected.stdout.strip().splitlines()[-1:])
        raise Rehearsed()
    ran = subprocess.run(command, cwd=REPO)
    counts = junit_counts(xml)
    s.results['pytest'] = counts
    s.check('every kernel test passed, none skipped',
            ran.returncode == 0 and counts.get('tests', 0) > 0
            and counts.get('skipped', 0) == 0, counts)


def junit_counts(path):
    import xml.etree.ElementTree as ElementTree
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as e:
        return {'error': str(e)}
    suite = root if root.tag == 'testsuite' else root.find('testsuite')
    return {key: int(suite.get(key, 0))
            for key in ('tests', 'failures', 'errors', 'skipped')}


def section_fast_path(s):
    refs = s.references
    clip = seeded_clip()
    model = seeded_i3d(fast=True)
    s.check_close('weights as in the kit', weight_checksum(model),
                  refs['weight_checksum'], 1e-6)
    cupy = s.cupy()
    model.to_device(s.device())
    x = cupy.asarray(clip)
    s.check_close('float32 logits', logits_of(model, x),
                  refs['logits_fast'], 1e-4)
    model.fast.dtype = 'float16'
    # DTYPE_HELP's promise: within 0.05 of float32.
    got = logits_of(model, x)
    error = float(numpy.abs(got - refs['logits_fast']).max()) \
        if numpy.isfinite(got).all() else float('inf')
    s.results['float16_max_error'] = error
    s.check('float16 logits within 0.05 of float32', error <= 0.05,
            'max |diff| {:.3g}'.format(error))
    for dtype in ('float32', 'float16'):
        model.fast.dtype = dtype
        for batch, frames in s.speed_cases:
            s.results['clips_per_s_{}_{}x{}'.format(dtype, batch, frames)] = \
                clips_per_second(cupy, model, batch, frames)
    for batch, frames in s.speed_cases:
        case = '{}x{}'.format(batch, frames)
        s.results['float16_speedup_' + case] = round(
            s.results['clips_per_s_float16_' + case]
            / s.results['clips_per_s_float32_' + case], 2)
    print('  speed:', {k: v for k, v in s.results.items() if 'per_s' in k
                       or 'speedup' in k})


def clips_per_second(cupy, model, batch, frames, repeat=3):
    x = cupy.random.uniform(-1, 1, (batch, 3, frames, 224, 224),
                            dtype=cupy.float32)
    logits_of(model, x)  # warm-up: kernels compiled, workspace made
    cupy.cuda.Device().synchronize()
    started = time.perf_counter()
    for _ in range(repeat):
        logits_of(model, x)
    cupy.cuda.Device().synchronize()
    return round(batch * repeat / (time.perf_counter() - started), 2)


def section_reference_path(s):
    refs = s.references
    clip = seeded_clip()
    model = seeded_i3d(fast=False)
    cupy = s.cupy()
    model.to_device(s.device())
    s.check_close('logits', logits_of(model, cupy.asarray(clip)),
                  refs['logits_reference'], 1e-4)
    s.results['clips_per_s_1x64'] = clips_per_second(cupy, model, 1, 64)


def section_training(s):
    refs = s.references
    clip = seeded_clip()
    labels = numpy.array(TRAIN_LABELS, numpy.int32)
    model = seeded_i3d(False, TRAIN_N_CLASS, dropout_ratio=0)
    cupy = s.cupy()
    model.to_device(s.device())
    loss, grads, before, after = training_step(
        model, cupy.asarray(clip), cupy.asarray(labels))
    s.results['loss'] = loss
    s.check_close('loss', [loss], [float(refs['train_loss'])], 1e-4)
    worst_norm, worst_head, bad = 0.0, 0.0, []
    for name, grad in sorted(grads.items()):
        norm = float(numpy.linalg.norm(grad.astype(numpy.float64)))
        expected = float(refs['grad_norm' + name])
        head = close_error(grad.ravel()[:GRAD_SAMPLE],
                           refs['grad_head' + name], 1e-3, name)
        if isinstance(head, str) or not expected > 0:
            bad.append(head if isinstance(head, str)
                       else '{}: zero gradient norm'.format(name))
            continue
        worst_norm = max(worst_norm, abs(norm - expected) / expected)
        worst_head = max(worst_head, head)
    s.results.update(gradients=len(grads), worst_norm_error=worst_norm,
                     worst_head_error=worst_head)
    s.check('every gradient finite, non-zero, its first {} values within '
            '1e-3 of the CPU\'s largest'.format(GRAD_SAMPLE), not bad,
            '; '.join(bad[:3]) or 'worst {:.3g}'.format(worst_head))
    s.check('gradient norms within 1e-3 of the CPU', worst_norm <= 1e-3,
            '{:.3g}'.format(worst_norm))
    # The first MomentumSGD step moves each parameter by -lr * grad.
    step_error = max(float(numpy.abs(after[n] - before[n] + TRAIN_LR
                                     * grads[n]).max()) for n in grads)
    s.check('the update is -lr * grad', step_error <= 1e-6,
            '{:.3g}'.format(step_error))


def section_tvl1(s):
    refs = s.references
    prev, next_ = refs['flow_prev'], refs['flow_next']
    from chainercv_i3d.flow.tvl1_xp import TVL1Batch
    cpu_to_opencv = endpoint_error(refs['flow_numpy'], refs['flow_opencv'])
    s.results['epe_numpy_to_opencv'] = cpu_to_opencv
    cupy = s.cupy()
    flows = {}
    for kernels in (True, False):
        flow, _ = TVL1Batch(s.xp, use_kernels=kernels).compute_pairs(
            prev, next_)
        flows[kernels] = _to_cpu(flow)
    s.check_close('kernels as the array code', flows[True], flows[False],
                  1e-3)
    s.results['epe_gpu_to_numpy'] = endpoint_error(flows[True],
                                                   refs['flow_numpy'])
    s.results['epe_gpu_to_opencv'] = endpoint_error(flows[True],
                                                    refs['flow_opencv'])
    s.check('GPU flow as close to OpenCV as numpy is (+0.02 px)',
            s.results['epe_gpu_to_opencv'] <= cpu_to_opencv + 0.02,
            '{:.4f} px vs {:.4f}'.format(s.results['epe_gpu_to_opencv'],
                                         cpu_to_opencv))
    s.results['pairs_per_s_256x340'] = flow_pairs_per_second(
        cupy, s.xp, prev, next_, s.flow_throughput_pairs)
    print('  pairs/s at 256x340:', s.results['pairs_per_s_256x340'])


def flow_pairs_per_second(cupy, xp, prev, next_, n_pair):
    """Pairs per second of one batch of ``n_pair`` (the kit's pairs
    repeated)."""
    from chainercv_i3d.flow.tvl1_xp import TVL1Batch
    copies = n_pair // len(prev)
    prev = xp.asarray(numpy.concatenate([prev] * copies))
    next_ = xp.asarray(numpy.concatenate([next_] * copies))
    batch = TVL1Batch(xp)
    batch.compute_pairs(prev[:2], next_[:2])  # kernels compiled
    cupy.cuda.Device().synchronize()
    started = time.perf_counter()
    batch.compute_pairs(prev, next_)
    cupy.cuda.Device().synchronize()
    return round(len(prev) / (time.perf_counter() - started), 1)


def section_chainermn_1rank(s):
    """One rank: the communicator the rule picks on a GPU (pure_nccl)."""
    import_chainer()
    from chainercv_i3d.utils.comm import choose_chainermn_communicator
    s.cupy()
    allreduce_check(s, choose_chainermn_communicator(None, s.on_gpu))


def allreduce_check(s, name):
    """Gradients of I3D all-reduced by ChainerMN's ``name`` communicator
    on GPU 0: in float32 and, for pure_nccl, with a float16 transfer (the
    batched pack/unpack kernels)."""
    import_chainer()
    from mpi4py import MPI  # NOQA: a missing MPI library is an error here
    import chainermn
    from chainercv_i3d.utils.comm import mpi_is_cuda_aware
    s.results['mpi_cuda_aware'] = mpi_is_cuda_aware()
    s.results['communicator'] = name
    model = seeded_i3d(False, TRAIN_N_CLASS)
    s.cupy()
    model.to_device(s.device())
    # ChainerMN takes a transfer dtype for pure_nccl only.
    transfers = (None, numpy.float16) if name == 'pure_nccl' else (None,)
    for transfer in transfers:
        comm = chainermn.create_communicator(
            name, allreduce_grad_dtype=transfer)
        expected = {}
        for i, (path, p) in enumerate(sorted(model.namedparams())):
            p.grad = s.xp.asarray(rank_gradient(comm.rank, i, p.shape))
            expected[path] = numpy.mean([rank_gradient(r, i, p.shape)
                                         for r in range(comm.size)], axis=0)
        s.synchronize()
        started = time.perf_counter()
        comm.multi_node_mean_grad(model)
        s.synchronize()
        what = 'float16' if transfer else 'float32'
        s.results['allreduce_s_' + what] = round(
            time.perf_counter() - started, 4)
        error = max(float(numpy.abs(_to_cpu(p.grad) - expected[path]).max())
                    for path, p in model.namedparams())
        s.check('{} ranks, {}, {} transfer: the mean of every rank\'s '
                'gradients'.format(comm.size, name, what),
                error <= (2e-3 if transfer else 1e-6), '{:.3g}'.format(error))


def shared_gpu_check(s):
    """A rank of two that share GPU 0 (a one-GPU machine): the rule refuses
    NCCL at once, NCCL refuses too (its own words recorded), and a
    CUDA-aware MPI all-reduces with naive."""
    import_chainer()
    from mpi4py import MPI  # NOQA
    import chainermn
    from chainercv_i3d.utils.comm import choose_chainermn_communicator
    from chainercv_i3d.utils.comm import get_comm
    from chainercv_i3d.utils.comm import mpi_is_cuda_aware
    from chainercv_i3d.utils.comm import ranks_sharing_a_gpu
    comm = get_comm()
    shared = ranks_sharing_a_gpu(comm, 0)
    s.check('the ranks are seen to share GPU 0', shared, shared)
    try:
        choose_chainermn_communicator(None, True, shared_gpu=shared)
        refusal = ''
    except ValueError as e:
        refusal = str(e)
    s.check('the rule refuses NCCL for them at once', refusal, refusal)
    s.cupy()
    if not s.standin:
        s.results['nccl_on_a_shared_gpu'] = nccl_attempt(s, chainermn)
    if s.standin or mpi_is_cuda_aware():
        allreduce_check(s, 'naive')
    else:
        s.results['naive'] = 'not run: this MPI is not CUDA-aware'


def nccl_attempt(s, chainermn):
    """What NCCL says to two ranks on one GPU ('' if it all-reduces)."""
    chainer = import_chainer()
    link = chainer.Link()
    with link.init_scope():
        link.w = chainer.Parameter(s.xp.zeros(4, s.xp.float32))
    link.w.grad = s.xp.ones(4, s.xp.float32)
    try:
        chainermn.create_communicator('pure_nccl').multi_node_mean_grad(link)
        s.synchronize()
        return ''
    except Exception as e:  # NCCL's error, recorded for the report
        return '{}: {}'.format(type(e).__name__, e)


def rank_gradient(rank, index, shape):
    """Rank ``rank``'s made-up gradient of parameter ``index``."""
    return numpy.random.RandomState([rank, index]).uniform(
        -1, 1, shape).astype(numpy.float32)


def find_mpiexec():
    """mpiexec on PATH, else beside this Python (a venv's MPICH wheel)."""
    return shutil.which('mpiexec', path=os.pathsep.join(
        [os.environ.get('PATH', ''), os.path.dirname(sys.executable)]))


def section_chainermn_2ranks(s):
    mpiexec = find_mpiexec()
    if not s.check('mpiexec found', mpiexec,
                   '' if mpiexec else 'none on PATH: prepare the kit with '
                   '--with_mpich'):
        return
    prefix = os.path.join(s.report, 'rank')
    command = [mpiexec, '-n', '2', sys.executable, os.path.abspath(__file__),
               '--worker', '--kit', s.kit, '--report', s.report,
               '--result', prefix]
    command += mode_options(s)
    ran = subprocess.run(command, cwd=REPO)
    for rank in range(2):
        path = '{}.{}.json'.format(prefix, rank)
        result = read_json(path) or {'status': 'error',
                                     'error': 'rank {} wrote nothing'.format(
                                         rank)}
        s.results['rank{}'.format(rank)] = result
        s.checks.extend(result.get('checks', []))
        if result['status'] == 'rehearsed':
            raise Rehearsed()
        s.check('rank {} ended ok'.format(rank), result['status'] == 'ok',
                result.get('error', ''))
    s.check('mpiexec exit status 0', ran.returncode == 0, ran.returncode)


def section_bench_infer(s):
    out = os.path.join(s.report, 'benchmark_i3d.json')
    run_benchmark(s, 'benchmark_i3d.py', [
        '--device', '0', '--paths', 'fast,torch', '--cases', '1x64,8x64',
        '--size', '224', '--warmup', '1', '--repeat', '3', '--json', out])
    summarize_benchmark(s, out)


def section_bench_train(s):
    out = os.path.join(s.report, 'benchmark_train.json')
    run_benchmark(s, 'benchmark_train.py', [
        '--parts', 'fwdbwd', '--device', '0', '--cases', '6x64',
        '--paths', 'link,torch', '--warmup', '1', '--repeat', '2',
        '--out', out])
    summarize_benchmark(s, out)


def run_benchmark(s, script, argv):
    """The benchmark's own command; rehearsing, only its argument parser
    (which stops before CUDA) reads ``argv``."""
    folder = os.path.join(REPO, 'benchmarks')
    if s.rehearse or s.standin:  # the stand-in cannot time a GPU
        sys.path.insert(0, folder)
        import importlib
        module = importlib.import_module(script[:-3])
        module.parse_args(argv)
        s.check('{} takes its arguments'.format(script), True)
        raise Rehearsed()
    ran = subprocess.run([sys.executable, script] + argv, cwd=folder)
    s.check('{} exit status 0'.format(script), ran.returncode == 0,
            ran.returncode)


def summarize_benchmark(s, path):
    """clips/s of every finished case in the report (the benchmark's JSON
    beside it holds the rest), and the error of every failed one."""
    for r in read_json(path) or []:
        if 'frames' not in r:
            continue
        key = '{}_{}x{}'.format(r['path'], r['batch'], r['frames'])
        s.results[key] = r.get('error') or round(r['clips_per_s'], 3)


SECTIONS = (  # name, function, time limit in seconds
    ('environment', section_environment, 40),
    ('kernels', section_kernels, 90),
    ('fast_path', section_fast_path, 60),
    ('reference_path', section_reference_path, 45),
    ('training', section_training, 60),
    ('tvl1', section_tvl1, 45),
    ('chainermn_1rank', section_chainermn_1rank, 40),
    ('chainermn_2ranks', section_chainermn_2ranks, 60),
    ('bench_infer', section_bench_infer, 120),
    ('bench_train', section_bench_train, 90),
)
SECTION_NAMES = tuple(name for name, _, _ in SECTIONS)


# ------------------------------------------------------ running

def run_section(function, args):
    """Runs one section in this process; returns its result dict."""
    s = Section(args.kit, args.report, args.rehearse, args.cpu_standin)
    started = time.time()
    status, error = 'ok', ''
    try:
        function(s)
    except Rehearsed:
        status = 'rehearsed'
    except BaseException as e:  # reported, whatever it is
        status = 'error'
        error = '{}: {}'.format(type(e).__name__, e).strip()
        traceback.print_exc()
    if status == 'ok' and not all(c['ok'] for c in s.checks):
        status = 'failed'
    if status == 'rehearsed' and not all(c['ok'] for c in s.checks):
        status = 'failed'
    return {'status': status, 'error': error, 'checks': s.checks,
            'results': s.results,
            'seconds': round(time.time() - started, 1)}


def worker_main(args):
    """A rank of chainermn_2ranks: writes RESULT.RANK.json."""
    rank = int(os.environ.get('PMI_RANK', os.environ.get(
        'OMPI_COMM_WORLD_RANK', 0)))
    result = run_section(shared_gpu_check, args)
    write_json_atomically('{}.{}.json'.format(args.result, rank), result)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def install_kit(kit, work):
    """Installs what the kit brings and this Python lacks into ``work``;
    returns the environment for the sections."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    site = os.path.join(work, 'site')
    wheels = []
    has_chainer = subprocess.run(
        [sys.executable, '-c', 'import chainercv_i3d, chainer'],
        capture_output=True, cwd=REPO).returncode == 0
    if not has_chainer:
        wheels += glob.glob(os.path.join(kit, 'chainer-*.whl'))
    if not find_mpiexec():
        wheels += glob.glob(os.path.join(kit, 'mpich-*.whl'))
    if wheels:
        print('installing', ', '.join(os.path.basename(w) for w in wheels))
        subprocess.run([sys.executable, '-m', 'pip', 'install', '-q',
                        '--no-deps', '--no-index', '--target', site]
                       + wheels, check=True)
        env['PATH'] = os.path.join(site, 'bin') + os.pathsep + env['PATH']
        env['LD_LIBRARY_PATH'] = os.path.join(site, 'lib') + (
            os.pathsep + env['LD_LIBRARY_PATH']
            if env.get('LD_LIBRARY_PATH') else '')
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO, site] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    return env


def run_all(args):
    os.makedirs(args.report, exist_ok=True)
    log_path = os.path.join(args.report, 'report.log')
    report_path = os.path.join(args.report, 'report.json')
    report = {
        'started': datetime.datetime.now(datetime.timezone.utc).isoformat(),
        'commit': git_commit(), 'rehearse': args.rehearse,
        'cpu_standin': args.cpu_standin,
        'kit': read_json(os.path.join(args.kit, MANIFEST)), 'sections': {}}
    started = time.time()
    deadline = started + args.budget
    with tempfile.TemporaryDirectory(prefix='gpu_check.') as work, \
            open(log_path, 'w') as log:
        env = install_kit(args.kit, work)
        report['setup_seconds'] = round(time.time() - started, 1)
        write_json_atomically(report_path, report)
        for name, _, limit in SECTIONS:
            if args.only and name not in args.only:
                continue
            result = run_child(name, limit, deadline, args, env, work, log)
            report['sections'][name] = result
            write_json_atomically(report_path, report)
            print('== {:17} {:9} {:6.1f} s  {}'.format(
                name, result['status'], result['seconds'], result['error']),
                flush=True)
    report['seconds'] = round(time.time() - started, 1)
    write_json_atomically(report_path, report)
    print_summary(report)
    good = {'rehearsed'} if args.rehearse else {'ok'}
    if args.cpu_standin:  # the benchmarks and GPU tests stop at CUDA
        good = {'ok', 'rehearsed'}
    return 0 if all(r['status'] in good
                    for r in report['sections'].values()) else 1


def run_child(name, limit, deadline, args, env, work, log):
    """Runs section ``name`` in a child process within its limit."""
    left = int(deadline - time.time())
    if left < 10:
        return {'status': 'skipped', 'error': 'out of the time budget',
                'seconds': 0.0, 'checks': [], 'results': {}}
    limit = min(limit, left)
    result_path = os.path.join(work, name + '.json')
    command = [sys.executable, os.path.abspath(__file__), '--section', name,
               '--kit', args.kit, '--report', args.report,
               '--result', result_path]
    command += mode_options(args)
    log.write('===== {} (limit {} s)\n'.format(name, limit))
    log.flush()
    started = time.time()
    child = subprocess.Popen(command, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=env, cwd=REPO,
                             text=True, start_new_session=True)
    try:
        output, _ = child.communicate(timeout=limit)
    except KeyboardInterrupt:  # its own session: Ctrl-C does not reach it
        os.killpg(child.pid, 9)
        raise
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, 9)
        output, _ = child.communicate()
        log.write(output)
        return {'status': 'timeout', 'error': 'over {} s'.format(limit),
                'seconds': round(time.time() - started, 1), 'checks': [],
                'results': {}}
    log.write(output)
    log.flush()
    sys.stdout.write(output[-3000:])
    result = read_json(result_path)
    if result is None:
        lines = output.strip().splitlines() or ['no output']
        result = {'status': 'error', 'error': 'exit {}: {}'.format(
            child.returncode, lines[-1]), 'checks': [], 'results': {},
            'seconds': round(time.time() - started, 1)}
    return result


def mode_options(args):
    """The options that pass ``--rehearse`` and ``--cpu_standin`` on."""
    return (['--rehearse'] if args.rehearse else []) + (
        ['--cpu_standin'] if getattr(args, 'cpu_standin', None)
        or getattr(args, 'standin', None) else [])


def print_summary(report):
    print('\nsection           status     seconds')
    for name, result in report['sections'].items():
        failed = [c['check'] for c in result.get('checks', ())
                  if not c['ok']]
        print('{:17} {:10} {:6.1f}  {}'.format(
            name, result['status'], result['seconds'],
            result['error'] or '; '.join(failed)))
    print('{:.0f} s in all'.format(report['seconds']))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='The device check (see the module docstring).')
    parser.add_argument('--prepare', action='store_true',
                        help='write the kit here (wheels, CPU references)')
    parser.add_argument('--no_wheel', action='store_true',
                        help='with --prepare: no chainer wheel (a Python '
                             'that has chainer runs the check)')
    parser.add_argument('--with_mpich', action='store_true',
                        help='with --prepare: bring the MPICH wheel (13 MB) '
                             'for an image without mpiexec')
    parser.add_argument('--rehearse', action='store_true',
                        help='run each section up to its first CUDA call')
    parser.add_argument('--cpu_standin', action='store_true',
                        help='tests: run each section past its CUDA call '
                             'on the CPU, numpy standing in for CuPy')
    parser.add_argument('--kit', default=KIT)
    parser.add_argument('--report', default=os.environ.get(
        'OUT') or os.path.join(REPO, 'gpu_check_report'))
    parser.add_argument('--budget', type=int, default=BUDGET_SECONDS,
                        help='seconds for every section together')
    parser.add_argument('--only', type=lambda t: t.split(','),
                        help='comma-separated sections: ' +
                        ', '.join(SECTION_NAMES))
    parser.add_argument('--section', choices=SECTION_NAMES,
                        help=argparse.SUPPRESS)
    parser.add_argument('--worker', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--result', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.kit = os.path.abspath(args.kit)
    args.report = os.path.abspath(args.report)
    unknown = set(args.only or ()) - set(SECTION_NAMES)
    if unknown:
        parser.error('unknown section(s) {}: choose from {}'.format(
            ', '.join(sorted(unknown)), ', '.join(SECTION_NAMES)))
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.prepare:
        return prepare(args.kit, not args.no_wheel, args.with_mpich)
    if args.worker:
        return worker_main(args)
    if args.section:
        function = dict((n, f) for n, f, _ in SECTIONS)[args.section]
        result = run_section(function, args)
        write_json_atomically(args.result, result)
        return 0
    return run_all(args)


if __name__ == '__main__':
    sys.exit(main())
