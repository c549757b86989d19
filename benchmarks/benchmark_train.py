"""Training speed: forward+backward, gradient allreduce, data loading.

Three parts, chosen with ``--parts`` (default all three):

``fwdbwd``
    One training forward and backward (train mode: batch statistics,
    dropout; softmax cross entropy) of an RGB I3D with random weights and
    400 classes on random ``batch x 3 x frames x 224 x 224`` clips, per path,
    each case and path in a fresh process (its peak memory is its own).
    Paths: ``link`` (the link as training runs it: on a CPU the threaded
    GEMM convolution of :mod:`chainercv_i3d.functions.cpu.conv3d` and the max
    pool of :mod:`chainercv_i3d.functions.cpu.max_pool`), ``chainer_functions``
    (the link with Chainer's ``F.convolution_nd`` and ``F.max_pooling_nd``,
    what it ran before those) and ``torch`` (``benchmarks/torch_i3d.py``:
    PyTorch's autograd on the same weights, ``channels_last_3d``, as many
    threads as the CPU has cores). With ``--device N`` every path runs on
    GPU N: the link and ``chainer_functions`` both with chainer's
    ``F.convolution_nd`` through CuPy (cuDNN where CuPy has it: not on
    CuPy 14, which convolves with im2col and cuBLAS), ``torch`` with cuDNN
    (``cudnn.benchmark``) twice: ``torch`` in strict float32 (TF32 off for
    cuDNN's convolutions and cuBLAS's products, as CuPy computes without
    ``CUPY_TF32=1``; PyTorch's default turns it on for cuDNN) and
    ``torch_tf32`` with TF32 on. On the CPU ``torch`` runs once: TF32 does
    not apply. The ``tf32`` column and JSON entry say which (true, false,
    ``not applicable``; for the Chainer paths on a GPU, whether
    ``CUPY_TF32`` is set).
``allreduce``
    The mean over ranks of the gradient of I3D (12.7M parameters) through a
    ChainerMN communicator (``--communicators``; ``pure_nccl`` needs GPUs).
    Run it under ``mpiexec -n N``; rank 0 prints.
``loader``
    Training examples per second (RandomClip of ``--loader-frames``, random
    224 crop, random flip, model range) through
    :class:`~chainercv_i3d.datasets.ExampleLoader` with each count of
    ``--workers``, on a small precomputed set built in a temporary folder
    from a video in ``--video``.

Usage::

    python benchmarks/benchmark_train.py                       # all parts
    python benchmarks/benchmark_train.py --parts fwdbwd --cases 1x16,1x64 \\
        --paths link,torch --repeat 3 --out train.json
    python benchmarks/benchmark_train.py --parts fwdbwd --device 0 \\
        --cases 6x64 --paths link,torch               # on GPU 0
    python benchmarks/benchmark_train.py --parts fwdbwd --cases 6x16 \
        --paths link,torch --repeat 1 --profile       # where the time goes
    mpiexec -n 2 python benchmarks/benchmark_train.py --parts allreduce
    python benchmarks/benchmark_train.py --parts loader --workers 0,1,2

Columns of ``fwdbwd``: ``tf32``, ``sec/clip`` (seconds of forward+backward
per clip, the median pass), ``clips/s``, ``peak_rss_MiB`` (``getrusage``
``ru_maxrss`` of the case's process: model, gradients, activations), and a
ratio line per case: each path's clips/s over torch's (or the first
path's).

``--out`` is rewritten (whole: a temporary file, then a rename) after every
case and path, and after each part (rank 0 only under mpiexec). A case, or
a part, that fails is recorded with its ``error`` on one line and the run
goes on; the exit status is 1 at the end if any failed.
"""

import argparse
import cProfile
import json
import os
import pstats
import resource
import shutil
import sys
import tempfile
import time

import chainercv_i3d  # NOQA: patches the environment before chainer loads

import chainer
import chainer.functions as F
import numpy

from chainercv_i3d.links import min_input_size
from chainercv_i3d.utils.device import DeviceError
from chainercv_i3d.utils.device import select_device

from benchmark_cases import expand_torch_paths  # benchmarks/, beside this
from benchmark_cases import one_line
from benchmark_cases import parse_cases
from benchmark_cases import raise_if_forced_to_fail
from benchmark_cases import run_child
from benchmark_cases import tf32_of
from benchmark_cases import TORCH_TF32
from benchmark_cases import write_results

N_CLASS = 400
SIZE = 224
PARTS = ('fwdbwd', 'allreduce', 'loader')
PATHS = ('link', 'chainer_functions', 'torch', 'torch_tf32')
# What --profile reports: the CPU training nodes and Winograd's steps.
PROFILED_MODULES = \
    r'functions/cpu/(conv3d|winograd|im2col|max_pool|batch_norm_relu)\.py'
# The repository's reference data beside it: ../shared/i3d (the folder the
# tests read, CHAINERCV_I3D_SHARED to move it).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_I3D = os.environ.get(
    'CHAINERCV_I3D_SHARED',
    os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'i3d'))
DEFAULT_VIDEO = os.path.join(SHARED_I3D, 'videos', 'bikes.mp4')


def parse_training_cases(text):
    # Training runs the head: at least I3D's 9 frames.
    return parse_cases(text, min_frames=min_input_size()[0])


def parse_names(choices, what):
    def parse(text):
        names = [n for n in text.split(',') if n]
        unknown = [n for n in names if n not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                'unknown {} {!r}; choose from {}'.format(
                    what, ','.join(unknown), ', '.join(choices)))
        return names
    return parse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--parts', type=parse_names(PARTS, 'part'),
                        default=list(PARTS),
                        help='comma-separated: fwdbwd, allreduce, loader '
                             '(default: all)')
    parser.add_argument('--cases', type=parse_training_cases, default='1x16,1x64',
                        help='fwdbwd: comma-separated BATCHxFRAMES '
                             '(default: 1x16,1x64)')
    parser.add_argument('--paths', type=parse_names(PATHS, 'path'),
                        default=['link', 'torch'],
                        help='fwdbwd: comma-separated link, '
                             'chainer_functions, torch (default: '
                             'link,torch; on a GPU torch runs twice: torch '
                             'in strict float32, torch_tf32 with TF32)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='fwdbwd: untimed passes first (default: 1)')
    parser.add_argument('--device', type=int, default=-1,
                        help='fwdbwd: -1: CPU (default); N >= 0: GPU N '
                             '(CuPy for chainer, CUDA for PyTorch)')
    parser.add_argument('--profile', action='store_true',
                        help='fwdbwd: after the timed passes, one more pass '
                             'under cProfile (torch: its profiler); prints '
                             'where its time goes (the training nodes, '
                             'PyTorch\'s operators; on stderr)')
    parser.add_argument('--repeat', type=int, default=2,
                        help='fwdbwd: timed passes (default: 2)')
    parser.add_argument('--communicators', default='naive',
                        help='allreduce: comma-separated ChainerMN '
                             'communicator names (default: naive)')
    parser.add_argument('--allreduce-repeat', type=int, default=5,
                        help='allreduce: timed allreduces (default: 5)')
    parser.add_argument('--workers', default='0,1,2',
                        help='loader: comma-separated worker counts '
                             '(default: 0,1,2)')
    parser.add_argument('--loader-frames', type=int, default=64,
                        help='loader: frames per clip (default: 64)')
    parser.add_argument('--loader-examples', type=int, default=16,
                        help='loader: examples per worker count (default: '
                             '16)')
    parser.add_argument('--video', default=DEFAULT_VIDEO,
                        help='loader: the video the set is built from '
                             '(default: ../shared/i3d/videos/bikes.mp4 '
                             'beside the repository)')
    parser.add_argument('--out', metavar='PATH',
                        help='also write the results to PATH as JSON '
                             '(rewritten after every case; failed cases '
                             'with their error)')
    parser.add_argument('--one-case', help=argparse.SUPPRESS)
    parser.add_argument('--path', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0 or args.allreduce_repeat < 1:
        parser.error('--repeat and --allreduce-repeat must be at least 1, '
                     '--warmup at least 0')
    try:
        args.workers = [int(w) for w in args.workers.split(',')]
    except ValueError:
        parser.error('--workers takes comma-separated ints, not {!r}'.format(
            args.workers))
    if min(args.workers) < 0:
        parser.error('--workers must be 0 or more')
    return args


def peak_rss_mib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- fwdbwd


def use_chainer_functions():
    """Makes I3D links use Chainer's convolution and max pool (the path
    before the CPU nodes of chainercv_i3d.functions.cpu), in this process
    only."""
    from chainercv_i3d.functions import conv3d_same as conv3d
    from chainercv_i3d.functions import tf_same_padding
    from chainercv_i3d.links import unit3d
    unit3d.conv3d_same = conv3d.conv3d_same_chainer
    # MaxPool3dSame looks the function up when it is called.
    tf_same_padding.max_pooling_nd_same = \
        tf_same_padding.max_pooling_nd_same_chainer


def chainer_train_step(model):
    def step(x, label):
        model.cleargrads()
        with chainer.using_config('train', True):
            loss = F.softmax_cross_entropy(model(x), label)
        loss.backward()
        return float(loss.array)
    return step


def use_gpu(device):
    """Makes GPU ``device`` CuPy's current one; exits saying why not."""
    try:
        return select_device(device).xp
    except DeviceError as e:
        sys.exit('benchmark_train.py: --device {}: {}'.format(device, e))


def run_fwdbwd_case(batch, frames, path, warmup, repeat, device=-1,
                    profile=False):
    """Times ``repeat`` forward+backward passes of one path in this
    process, on the CPU (``device`` -1) or GPU ``device``."""
    raise_if_forced_to_fail((batch, frames), path)
    from chainercv_i3d.links import I3D
    if path == 'chainer_functions':
        use_chainer_functions()
    xp = use_gpu(device) if device >= 0 else numpy
    numpy.random.seed(0)  # the same random weights in every process
    model = I3D(n_class=N_CLASS, modality='rgb')
    rng = numpy.random.RandomState(0)
    x = rng.uniform(-1, 1, (batch, 3, frames, SIZE, SIZE)).astype(
        numpy.float32)
    label = rng.randint(0, N_CLASS, batch).astype(numpy.int32)
    if path in TORCH_TF32:
        import torch
        torch.set_num_threads(os.cpu_count() or 1)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from torch_i3d import torch_train_step
        # The loss comes back as a float: each step ends synchronized.
        step = torch_train_step(model, 'cuda:{}'.format(device)
                                if device >= 0 else 'cpu',
                                tf32=TORCH_TF32[path])
    else:
        if xp is not numpy:
            model.to_gpu(device)
            x, label = xp.asarray(x), xp.asarray(label)
        step = chainer_train_step(model)  # float(loss) synchronizes
    times, losses = [], []
    for i in range(warmup + repeat):
        start = time.perf_counter()
        losses.append(step(x, label))
        if i >= warmup:
            times.append(time.perf_counter() - start)
    if profile:
        what = '{}x{} {}'.format(batch, frames, path)
        if path in TORCH_TF32:
            print_torch_profile(step, x, label, what)
        else:
            print_profile(step, x, label, what)
    median = float(numpy.median(times))
    result = {'part': 'fwdbwd', 'path': path,
              'device': 'gpu{}'.format(device) if device >= 0 else 'cpu',
              'tf32': tf32_of(path, device),
              'batch': batch, 'frames': frames, 'size': SIZE,
              'sec_per_clip': median / batch, 'clips_per_s': batch / median,
              'times_s': times, 'peak_rss_mib': peak_rss_mib(),
              'first_loss': losses[0], 'warmup': warmup, 'repeat': repeat}
    if xp is not numpy and path not in TORCH_TF32:
        result['gpu_pool_mib'] = \
            xp.get_default_memory_pool().total_bytes() / 2 ** 20
    if path in TORCH_TF32 and device >= 0:
        from torch_i3d import tf32_flags
        result['torch_flags'] = tf32_flags()  # read back after the passes
    return result


def print_profile(step, x, label, what):
    """One more ``step`` under cProfile; the CPU training nodes' share of
    its time, on stderr (stdout carries the case's JSON). Cumulative times
    only: the nodes' chunks run in threads, which cProfile does not see."""
    profiler = cProfile.Profile()
    profiler.enable()
    step(x, label)
    profiler.disable()
    print('profile of one pass, {}:'.format(what), file=sys.stderr)
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats('cumulative').print_stats(PROFILED_MODULES, 16)


def print_torch_profile(step, x, label, what):
    """One more ``step`` under PyTorch's profiler: its operators by their
    own time, on stderr."""
    from torch.profiler import profile
    from torch.profiler import ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        step(x, label)
    print('torch profile of one pass, {}:'.format(what), file=sys.stderr)
    print(profiler.key_averages().table(sort_by='self_cpu_time_total',
                                        row_limit=12), file=sys.stderr)


def run_in_subprocess(case, path, args):
    """Runs one case and path in a fresh interpreter; returns its result,
    or the case with its ``error`` (one line) when it failed."""
    command = [sys.executable, os.path.abspath(__file__), '--parts',
               'fwdbwd', '--one-case', '{}x{}'.format(*case), '--path', path,
               '--warmup', str(args.warmup), '--repeat', str(args.repeat),
               '--device', str(args.device)] + (
                   ['--profile'] if args.profile else [])
    result, error = run_child(command)
    if error is None:
        return result
    return {'part': 'fwdbwd', 'path': path,
            'device': 'gpu{}'.format(args.device) if args.device >= 0
            else 'cpu', 'tf32': tf32_of(path, args.device),
            'batch': case[0], 'frames': case[1], 'size': SIZE,
            'error': error}


def fwdbwd(args, record):
    """Runs every case and path, each through ``record(result)`` as it
    finishes or fails."""
    print('{:<18} {:<6} {:<14} {:>5} {:>6} {:>9} {:>8} {:>12} {:>9}'.format(
        'path', 'device', 'tf32', 'batch', 'frames', 'sec/clip', 'clips/s',
        'peak_rss_MiB', 'loss'), flush=True)
    for case in args.cases:
        rows = []
        for path in expand_torch_paths(args.paths, args.device):
            r = run_in_subprocess(case, path, args)
            record(r)
            head = '{path:<18} {device:<6} {tf32!s:<14} {batch:>5} ' \
                '{frames:>6} '.format(**r)
            if 'error' in r:
                print(head + 'FAILED: {}'.format(r['error']), flush=True)
                continue
            rows.append(r)
            print(head + '{sec_per_clip:>9.3f} '
                  '{clips_per_s:>8.3f} {peak_rss_mib:>12.0f} '
                  '{first_loss:>9.4f}'.format(**r), flush=True)
        if not rows:
            print('ratio {}x{}: (no path finished)'.format(*case), flush=True)
            continue
        base = next((r for r in rows if r['path'] == 'torch'), rows[0])
        print('ratio {}x{}: '.format(*case) + ' '.join(
            '{}/{}={:.2f}'.format(r['path'], base['path'],
                                  r['clips_per_s'] / base['clips_per_s'])
            for r in rows if r is not base), flush=True)


# ------------------------------------------------------------- allreduce


def allreduce(args, record):
    """Times ``multi_node_mean_grad`` of I3D's gradient per communicator;
    rank 0 passes each result to ``record``."""
    try:
        import chainermn
    except ImportError as e:
        sys.exit('benchmark_train.py: the allreduce part needs chainermn '
                 'and mpi4py ({})'.format(e))
    from chainercv_i3d.links import I3D
    model = I3D(n_class=N_CLASS, modality='rgb')
    rng = numpy.random.RandomState(0)
    for param in model.params():
        param.grad = rng.randn(*param.shape).astype(param.dtype)
    n_params = sum(p.size for p in model.params())
    for name in args.communicators.split(','):
        comm = chainermn.create_communicator(name)
        times = []
        for i in range(args.allreduce_repeat + 1):
            comm.mpi_comm.Barrier()
            start = time.perf_counter()
            comm.multi_node_mean_grad(model)
            comm.mpi_comm.Barrier()
            if i:  # the first call allocates buffers
                times.append(time.perf_counter() - start)
        if comm.rank == 0:
            r = {'part': 'allreduce', 'communicator': name,
                 'ranks': comm.size, 'n_params': int(n_params),
                 'mib': n_params * 4 / 2 ** 20,
                 'median_ms': float(numpy.median(times)) * 1e3,
                 'times_s': times}
            print('allreduce communicator={communicator} ranks={ranks} '
                  'params={n_params} ({mib:.1f} MiB) median={median_ms:.1f} '
                  'ms'.format(**r), flush=True)
            record(r)


# ---------------------------------------------------------------- loader


def build_precomputed_set(video_path, root):
    """RGB frames of one video (twice, two classes) precomputed under
    ``root`` with DeepMind's Kinetics preset; returns the output folder."""
    from chainercv_i3d.datasets.precompute import PrecomputeConfig
    from chainercv_i3d.datasets.precompute import run_precompute
    from chainercv_i3d.datasets.video_list import read_video_list
    from chainercv_i3d.presets import DEEPMIND_KINETICS
    from chainercv_i3d.utils.comm import SerialComm
    if not os.path.isfile(video_path):
        sys.exit('benchmark_train.py: no video at {}: put the reference '
                 'data at ../shared/i3d beside the repository (or set '
                 'CHAINERCV_I3D_SHARED), or give a video with --video'.format(
                     video_path))
    video_dir = os.path.join(root, 'videos')
    for name in ('a', 'b'):
        os.makedirs(os.path.join(video_dir, name))
        os.symlink(os.path.abspath(video_path), os.path.join(
            video_dir, name, 'v' + os.path.splitext(video_path)[1]))
    out = os.path.join(root, 'precomputed')
    config = PrecomputeConfig(DEEPMIND_KINETICS, compute_flow=False)
    run_precompute(read_video_list('folders', video_dir), out, config,
                   SerialComm())
    return out


def loader(args, record):
    """Times the loader with each worker count, each result passed to
    ``record``."""
    from chainercv_i3d.datasets import PrecomputedVideoDataset
    from chainercv_i3d.datasets import RandomClip
    from chainercv_i3d.datasets.loader import ExampleLoader
    from chainercv_i3d.datasets.loader import VideoViews
    from chainercv_i3d.transforms import ClipTransform
    root = tempfile.mkdtemp(prefix='benchmark_train_')
    try:
        start = time.perf_counter()
        out = build_precomputed_set(args.video, root)
        print('loader: precomputed {} in {:.1f} s'.format(
            os.path.basename(args.video), time.perf_counter() - start),
            flush=True)
        dataset = PrecomputedVideoDataset(
            out, sampler=RandomClip(args.loader_frames), keys=('rgb',))
        load = VideoViews(dataset, ('rgb',), ClipTransform(
            dataset.preset, crop_mode='random', random_flip=True))
        order = [i % len(dataset) for i in range(args.loader_examples)]
        for n_workers in args.workers:
            example_loader = ExampleLoader(load, n_workers=n_workers)
            try:
                # The first example starts the workers: not timed.
                list(example_loader.iterate(order[:1], epoch=0))
                start = time.perf_counter()
                for i, example, error in example_loader.iterate(order,
                                                                epoch=1):
                    if error is not None:
                        sys.exit('benchmark_train.py: example {} failed: '
                                 '{}'.format(i, error))
                elapsed = time.perf_counter() - start
            finally:
                example_loader.close()
            r = {'part': 'loader', 'workers': n_workers,
                 'frames': args.loader_frames,
                 'examples': len(order), 'clips_per_s': len(order) / elapsed,
                 'clips_per_s_per_worker': len(order) / elapsed
                 / max(n_workers, 1),
                 'shape': list(example['rgb'].shape)}
            print('loader workers={workers} frames={frames} clips/s='
                  '{clips_per_s:.2f} per worker={clips_per_s_per_worker:.2f}'
                  ' (clip {shape})'.format(**r), flush=True)
            record(r)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv=None):
    args = parse_args(argv)
    if args.one_case:
        batch, frames = parse_training_cases(args.one_case)[0]
        print(json.dumps(run_fwdbwd_case(batch, frames, args.path,
                                         args.warmup, args.repeat,
                                         args.device, args.profile)))
        return
    results = []

    def record(result):
        results.append(result)
        write_results(args.out, results)

    for part, run in (('fwdbwd', fwdbwd), ('allreduce', allreduce),
                      ('loader', loader)):
        if part not in args.parts:
            continue
        try:
            run(args, record)
        except (Exception, SystemExit) as e:
            # One part failing loses neither its finished results nor the
            # other parts'.
            error = one_line(str(e)) or type(e).__name__
            print('benchmark_train.py: part {} failed: {}'.format(
                part, error), file=sys.stderr, flush=True)
            record({'part': part, 'error': error})
    failed = [r for r in results if 'error' in r]
    if failed:
        sys.exit('benchmark_train.py: {} of {} results are failures: '
                 '{}'.format(len(failed), len(results), '; '.join(
                     '{}{}: {}'.format(
                         r['part'], ' {batch}x{frames} {path}'.format(**r)
                         if 'path' in r else '', r['error'])
                     for r in failed)))


if __name__ == '__main__':
    main()
