"""Forward throughput and peak memory of the I3D link, one line per case.

Runs an RGB :class:`chainercv_i3d.links.I3D` with random weights and 400
classes on random clips of ``batch x 3 x frames x size x size``, in test mode
and without backprop, as inference does. Each case runs in a fresh Python
process so that its peak memory is its own.

Usage::

    python benchmarks/benchmark_i3d.py              # CPU, reference and fast
    python benchmarks/benchmark_i3d.py --device 0   # GPU 0 (needs CuPy)
    python benchmarks/benchmark_i3d.py --device 0 --paths fast,torch
    python benchmarks/benchmark_i3d.py --cases 1x16,2x64 --size 224 \\
        --warmup 1 --repeat 5 --json results.json
    python benchmarks/benchmark_i3d.py --paths fast,tensorflow --rounds 3
    python benchmarks/benchmark_i3d.py --cases 1x9 --size 193 \\
        --paths fast,tensorflow --warmup 1 --repeat 1   # a quick check

With ``--rounds R`` the paths of a case take turns R times (one process
each time), and the ratio line compares each path's median round: a shared
machine's speed drifts over minutes, and taking turns spreads the drift over
every path.

Paths: ``reference`` (the link's Chainer functions), ``fast`` (the link's
fast inference path), ``tensorflow`` (DeepMind's network in TensorFlow at
its best, CPU only: :func:`chainercv_i3d.testing.tf_reference.tf_i3d_logits`
on the same weights, inside one ``tf.function``, i.e. one graph as
DeepMind's TensorFlow 1 code ran), ``tensorflow_eager`` (the same ops run
eagerly, op by op) and ``torch`` (``benchmarks/torch_i3d.py``: PyTorch's
conv3d, cuDNN on a GPU, on the same weights). On a GPU ``torch`` runs
twice: ``torch`` in strict float32 (TF32 off for cuDNN's convolutions and
cuBLAS's products: PyTorch's default turns it on for cuDNN, CuPy is strict
unless ``CUPY_TF32=1``) and ``torch_tf32`` with TF32 on; on a CPU once
(TF32 does not apply). Every line and JSON entry says which (``tf32``:
true, false or ``not applicable``; for the Chainer paths on a GPU, whether
``CUPY_TF32`` is set). Every case also prints how
far each path's logits are from the base path's (TensorFlow's graph, else
TensorFlow eager, else PyTorch's, else the reference's), on the same
weights and input: the paths timed compute the same function.

The TensorFlow paths get what DeepMind's graph gets: their weights are
``tf.constant`` made once and the clip a float32 NDHWC tensor, both before
the clock starts. The graph is traced when it is built (its input signature
is fixed), so tracing is never timed; its first run (Grappler's graph
optimizations) is, unless ``--warmup`` is at least 1, as it is by default.
A case fails if the graph was traced again during the passes.

Columns:

    device        ``cpu`` or ``gpuN``.
    batch         Clips per forward pass.
    frames        Frames per clip (T).
    size          Height and width of the frames.
    clips/s       Clips per second over the timed passes.
    sec/clip      Seconds per clip (``1 / clips/s``).
    GFLOP/s       Convolution FLOPs per second, from
                  :func:`chainercv_i3d.links.count_flops` (2 per multiply-add).
    peak_rss_MiB  Peak resident host memory of the case's process
                  (``getrusage`` ``ru_maxrss``): model, input, activations.
    gpu_pool_MiB  GPU only: bytes held by CuPy's memory pool at the end. The
                  pool keeps freed blocks, so this is its high-water mark.
    (warmup W, repeat R)  Untimed passes before the R timed ones.

``--json`` writes the same results as a list of dicts, with the time of each
timed pass, the FLOPs per clip and the logits of the first pass added. It
is rewritten (whole: a temporary file, then a rename) after every case and
path. A case that fails (its process exits non-zero or is killed) is
recorded with its ``error`` on one line and the run goes on; the exit
status is 1 at the end if any failed.
"""

import argparse
import json
import os
import resource
import sys
import time

import chainercv_i3d  # NOQA: patches the environment before chainer loads

import chainer
import numpy

from chainercv_i3d.links import count_flops
from chainercv_i3d.links import I3D
from chainercv_i3d.links import max_frame_size
from chainercv_i3d.links import min_input_size
from chainercv_i3d.testing.tf_reference import deepmind_tensors_of_link
from chainercv_i3d.testing.tf_reference import import_tensorflow
from chainercv_i3d.testing.tf_reference import tf_i3d_logits
from chainercv_i3d.utils.device import DeviceError
from chainercv_i3d.utils.device import select_device

from benchmark_cases import expand_torch_paths  # benchmarks/, beside this
from benchmark_cases import parse_case
from benchmark_cases import parse_cases
from benchmark_cases import raise_if_forced_to_fail
from benchmark_cases import run_child
from benchmark_cases import tf32_of
from benchmark_cases import TORCH_TF32
from benchmark_cases import write_results

N_CLASS = 400
PATHS = ('reference', 'fast', 'tensorflow', 'tensorflow_eager', 'torch',
         'torch_tf32')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Forward throughput of the I3D link (test mode, no '
                    'backprop, random weights).')
    parser.add_argument('--cases', type=parse_cases, default='1x64,1x250,4x64',
                        help='comma-separated BATCHxFRAMES (default: '
                             '1x64,1x250,4x64)')
    parser.add_argument('--size', type=int, default=224,
                        help='frame height and width (default: 224)')
    parser.add_argument('--repeat', type=int, default=2,
                        help='timed passes per case (default: 2)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed passes before them (default: 1)')
    parser.add_argument('--paths', default='reference,fast',
                        help='comma-separated: reference (Chainer functions), '
                             'fast (chainercv_i3d.links.fast.forward), '
                             'tensorflow (tf.nn ops on the same weights in '
                             'one tf.function graph, CPU), tensorflow_eager '
                             '(the same ops eagerly, CPU), '
                             'torch (PyTorch conv3d on the same weights, on '
                             'the same device; on a GPU twice: torch in '
                             'strict float32 and torch_tf32 with TF32)')
    parser.add_argument('--rounds', type=int, default=1,
                        help='times the paths of a case take turns; ratios '
                             'compare median rounds (default: 1)')
    parser.add_argument('--path', help=argparse.SUPPRESS)
    parser.add_argument('--device', type=int, default=-1,
                        help='-1: CPU (default); N >= 0: GPU N with CuPy')
    parser.add_argument('--json', metavar='PATH',
                        help='also write the results to PATH as JSON '
                             '(rewritten after every case; failed cases '
                             'with their error)')
    # Internal: run one case in this process and print its result as JSON.
    parser.add_argument('--one-case', type=parse_case,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [p for p in args.paths.split(',') if p not in PATHS]
    if unknown:
        parser.error('unknown path(s) {} in --paths; choose from {}'.format(
            ', '.join(unknown), ', '.join(PATHS)))
    if args.repeat < 1 or args.warmup < 0 or args.rounds < 1:
        parser.error('--repeat and --rounds must be at least 1 and --warmup '
                     'at least 0')
    min_t, min_h, min_w = min_input_size()
    for _, frames in args.cases + ([args.one_case] if args.one_case else []):
        if frames < min_t or not max(min_h, min_w) <= args.size \
                <= max_frame_size():
            parser.error('I3D needs at least {} frames of {}x{} to {}x{}, '
                         'got {} of {}x{}'.format(
                             min_t, min_h, min_w, max_frame_size(),
                             max_frame_size(), frames, args.size, args.size))
    return args


def _synchronize(xp):
    # GPU kernels run asynchronously: wait for them before reading the clock.
    if xp is not numpy:
        xp.cuda.get_current_stream().synchronize()


def _gpu(device):
    """Makes GPU ``device`` CuPy's current one; exits saying why not."""
    try:
        return select_device(device).xp
    except DeviceError as e:
        sys.exit('benchmark_i3d.py: --device {}: {}'.format(device, e))


TF_SCOPE = 'RGB/inception_i3d/'
TF_PATHS = ('tensorflow', 'tensorflow_eager')


def tensorflow_forward(model, shape, graph):
    """DeepMind's network in TensorFlow on the model's weights.

    Args:
        model (I3D): The link whose weights are run (on the CPU).
        shape (tuple of int): The NCTHW shape of the clips to come.
        graph (bool): Run the network as one graph (``tf.function``, traced
            here, once, for ``shape``) rather than op by op.

    Returns:
        callable: ``x -> logits``, ``x`` a (N, T, H, W, C) float32 tensor,
        the logits a numpy array. In graph mode it has a ``traces`` list
        that grows by one at each trace.
    """
    tf = import_tensorflow()
    logits_of = tf_i3d_logits(deepmind_tensors_of_link(model, TF_SCOPE),
                              TF_SCOPE)
    if not graph:
        return lambda x: logits_of(x).numpy()
    traces = []

    def traced(x):
        traces.append(x.shape)  # Python runs only while tracing
        return logits_of(x)

    n, c, t, h, w = shape
    logits_graph = tf.function(traced, input_signature=[
        tf.TensorSpec((n, t, h, w, c), tf.float32)])
    logits_graph.get_concrete_function()  # trace now, before any timing

    def forward(x):
        return logits_graph(x).numpy()
    forward.traces = traces
    return forward


def tensorflow_input(x):
    """The clip as DeepMind's graph takes it: an NDHWC float32 tensor."""
    tf = import_tensorflow()
    return tf.constant(numpy.ascontiguousarray(x.transpose(0, 2, 3, 4, 1)))


def path_forward(path, model, device, x):
    """The forward function of one path on the model's weights, and the
    clip ``x`` (NCTHW) as that function takes it.

    Returns:
        tuple: ``(forward, its input)``.
    """
    if path in ('reference', 'fast'):
        return model, x
    if path in TF_PATHS:
        if device >= 0:
            sys.exit('benchmark_i3d.py: the {} path runs on the CPU only; '
                     'use --device -1'.format(path))
        forward = tensorflow_forward(model, x.shape,
                                     graph=(path == 'tensorflow'))
        return forward, tensorflow_input(x)
    if path in TORCH_TF32:
        from torch_i3d import torch_forward
        return torch_forward(model, 'cuda:{}'.format(device)
                             if device >= 0 else 'cpu',
                             tf32=TORCH_TF32[path]), x
    sys.exit('benchmark_i3d.py: unknown path {!r} ({})'.format(
        path, ', '.join(PATHS)))


def check_traced_once(forward):
    """Exits if a graph path was traced more than once (retracing would be
    timed as if it were computing)."""
    traces = getattr(forward, 'traces', None)
    if traces is not None and len(traces) != 1:
        sys.exit('benchmark_i3d.py: the TensorFlow graph was traced {} '
                 'times (shapes {}), expected once, before timing'.format(
                     len(traces), traces))


def run_case(batch, frames, size, warmup, repeat, device, path='fast'):
    """Times ``repeat`` forward passes of one case in this process.

    Returns:
        dict: The case, its timings and its peak memory.
    """
    raise_if_forced_to_fail((batch, frames), path)
    xp = _gpu(device) if device >= 0 else numpy
    numpy.random.seed(0)  # the same random weights in every process
    model = I3D(n_class=N_CLASS, modality='rgb',
                fast_inference=(path == 'fast'))
    shape = (batch, 3, frames, size, size)
    x = numpy.random.RandomState(0).uniform(-1, 1, shape).astype(numpy.float32)
    if xp is not numpy:
        model.to_gpu(device)
        x = xp.asarray(x)
    forward, x = path_forward(path, model, device, x)
    times = []
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        for i in range(warmup + repeat):
            _synchronize(xp)
            start = time.perf_counter()
            logits = forward(x)
            _synchronize(xp)
            if i >= warmup:
                times.append(time.perf_counter() - start)
            if i == 0:
                first_logits = chainer.backend.CpuDevice().send(
                    chainer.as_array(logits))
    check_traced_once(forward)
    total = sum(times)
    flops = count_flops(model, shape)
    result = {
        'path': path,
        'device': 'cpu' if xp is numpy else 'gpu{}'.format(device),
        'tf32': tf32_of(path, device),
        'batch': batch, 'frames': frames, 'size': size,
        'clips_per_s': batch * repeat / total,
        'sec_per_clip': total / (batch * repeat),
        'gflop_per_s': flops * repeat / total / 1e9,
        'gflop_per_clip': flops / batch / 1e9,
        # ru_maxrss is in KiB on Linux.
        'peak_rss_mib': resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024,
        'warmup': warmup, 'repeat': repeat, 'times_s': times,
        'logits': first_logits.tolist(),
    }
    if xp is not numpy:
        result['gpu_pool_mib'] = \
            xp.get_default_memory_pool().total_bytes() / 2 ** 20
    if path in TORCH_TF32 and device >= 0:
        from torch_i3d import tf32_flags
        result['torch_flags'] = tf32_flags()  # read back after the passes
    return result


def format_result(r):
    if 'error' in r:
        return ('path={path} device={device} batch={batch} frames={frames} '
                'size={size} tf32={tf32} FAILED: {error}').format(**r)
    line = ('path={path} device={device} tf32={tf32} batch={batch} '
            'frames={frames} size={size} clips/s={clips_per_s:.3f} '
            'sec/clip={sec_per_clip:.3g} GFLOP/s={gflop_per_s:.1f} '
            'peak_rss_MiB={peak_rss_mib:.0f}')
    if 'gpu_pool_mib' in r:
        line += ' gpu_pool_MiB={gpu_pool_mib:.0f}'
    return (line + ' (warmup {warmup}, repeat {repeat})').format(**r)


def median_rate(results, case, path):
    """The median clips/s of one path's rounds of one case."""
    rates = sorted(r['clips_per_s'] for r in finished(results, case)
                   if r['path'] == path)
    middle = len(rates) // 2
    return rates[middle] if len(rates) % 2 else \
        (rates[middle - 1] + rates[middle]) / 2


def base_path(paths):
    """The path the others are compared with."""
    for base in TF_PATHS + ('torch', 'reference'):
        if base in paths:
            return base
    return paths[0]


def finished(results, case):
    """The results of ``case`` that did not fail."""
    return [r for r in results if (r['batch'], r['frames']) == tuple(case)
            and 'error' not in r]


def finished_paths(results, case, paths):
    """The paths of ``paths`` with a finished result for ``case``."""
    done = {r['path'] for r in finished(results, case)}
    return [p for p in paths if p in done]


def format_agreement(results, case, paths):
    """Largest logit difference of each path from the base path's, on the
    same weights and input: every timed path computes the same function.
    Paths that failed are left out."""
    paths = finished_paths(results, case, paths)
    if not paths:
        return 'agreement batch={} frames={} (no path finished)'.format(*case)
    logits = {r['path']: numpy.array(r['logits'])
              for r in finished(results, case)}
    base = base_path(paths)
    return 'agreement batch={} frames={} '.format(*case) + ' '.join(
        'max|{}-{}|={:.2e}'.format(path, base, numpy.abs(
            logits[path] - logits[base]).max())
        for path in paths if path != base) + \
        ' (max|logit|={:.2e})'.format(numpy.abs(logits[base]).max())


def format_ratios(results, case, paths):
    # Median throughput of each path over the base path's (paths that
    # failed are left out).
    paths = finished_paths(results, case, paths)
    if not paths:
        return 'ratio batch={} frames={} (no path finished)'.format(*case)
    rates = {path: median_rate(results, case, path) for path in paths}
    base = base_path(paths)
    return 'ratio batch={} frames={} '.format(*case) + ' '.join(
        '{}/{}={:.2f}'.format(path, base, rate / rates[base])
        for path, rate in rates.items() if path != base and base in rates)


def run_case_in_subprocess(case, path, args):
    """Runs one case in a fresh interpreter so its peak memory is its own.

    Returns:
        dict: Its result, or, when it failed, the case with its ``error``
        (one line).
    """
    command = [sys.executable, os.path.abspath(__file__),
               '--one-case', '{}x{}'.format(*case), '--size', str(args.size),
               '--warmup', str(args.warmup), '--repeat', str(args.repeat),
               '--device', str(args.device), '--path', path]
    # stderr is passed through: the child's errors reach the user as they are.
    result, error = run_child(command)
    if error is None:
        return result
    return {'path': path, 'device': 'cpu' if args.device < 0 else
            'gpu{}'.format(args.device), 'tf32': tf32_of(path, args.device),
            'batch': case[0], 'frames': case[1], 'size': args.size,
            'error': error}


def main(argv=None):
    args = parse_args(argv)
    if args.one_case:
        result = run_case(*args.one_case, size=args.size, warmup=args.warmup,
                          repeat=args.repeat, device=args.device,
                          path=args.path)
        print(json.dumps(result))
        return
    paths = expand_torch_paths(args.paths.split(','), args.device)
    results = []
    for case in args.cases:
        for round_index in range(args.rounds):
            for path in paths:
                results.append(run_case_in_subprocess(case, path, args))
                results[-1]['round'] = round_index
                print(format_result(results[-1]), flush=True)
                write_results(args.json, results)
        print(format_agreement(results, case, paths), flush=True)
        print(format_ratios(results, case, paths), flush=True)
    failed = [r for r in results if 'error' in r]
    if failed:
        sys.exit('benchmark_i3d.py: {} of {} case runs failed: {}'.format(
            len(failed), len(results), '; '.join(
                '{batch}x{frames} {path}: {error}'.format(**r)
                for r in failed)))


if __name__ == '__main__':
    main()
