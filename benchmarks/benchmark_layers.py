"""Every distinct convolution of I3D, timed several ways, one line per shape.

    python benchmarks/benchmark_layers.py [--frames 64] [--repeat 3]
    python benchmarks/benchmark_layers.py --paths reference,fast,torch
    python benchmarks/benchmark_layers.py --device 0 --paths fast,torch
    python benchmarks/benchmark_layers.py --network [--batch 1]

``--network`` times every layer of the whole network instead, as it runs
inside a forward pass: the fast engine's layer (pools, Inception blocks and
head included) against the same layer of DeepMind's network in TensorFlow,
each layer one ``tf.function`` graph traced before timing, on the same
weights and the input the previous layer made; one line per layer and a
total (where the time of a forward goes).

For the shapes the layers see on a (1, 3, frames, 224, 224) input, each
conv + batch norm + ReLU runs as the reference path (Chainer functions),
the fast path (chainercv_i3d.links.fast.forward, channels-last, as the
link runs it), TensorFlow's kernels (tf.nn.conv3d + batch_normalization +
relu, CPU only; ``tensorflow`` runs them as one ``tf.function`` graph,
traced once before timing, ``tensorflow_eager`` op by op; weights and input
are NDHWC tensors made before the clock starts) and PyTorch's (F.conv3d +
batch_norm + relu, cuDNN on a GPU), with the same random weights. Prints
seconds and GFLOP/s of each, and the fast path's speed relative to each of
the others.
"""

import argparse
import sys
import time

import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)
import chainer
import numpy

from chainercv_i3d.architecture import BRANCHES
from chainercv_i3d.links import count_flops
from chainercv_i3d.links import I3D
from chainercv_i3d.links.fast.engine import fast_layer
from chainercv_i3d.links.fast.forward import FoldedUnit
from chainercv_i3d.links.flops import layer_flops
from chainercv_i3d.links.inception_block import InceptionBlock
from chainercv_i3d.utils.threads import cpu_chunks
from chainercv_i3d.links.unit3d import Unit3D
from chainercv_i3d.testing.tf_reference import deepmind_tensors_of_link
from chainercv_i3d.testing.tf_reference import import_tensorflow
from chainercv_i3d.testing.tf_reference import tf_i3d_layers


def conv_inputs(model, shape):
    """(unit, its input shape) for every convolution of the network."""
    found = []
    for name in model.layer_names[:model.layer_names.index('mixed_5c') + 1]:
        layer = getattr(model, name)
        if isinstance(layer, Unit3D):
            found.append((layer, shape))
        elif isinstance(layer, InceptionBlock):
            for branch, source, _ in BRANCHES:
                unit = getattr(layer, branch)
                channels = shape[1] if source is None else \
                    getattr(layer, source).conv.W.shape[0]
                found.append((unit, (shape[0], channels) + shape[2:]))
        _, shape = layer_flops(name, layer, shape)
    return found


def distinct(convs):
    seen = {}
    for unit, shape in convs:
        key = (shape, unit.conv.W.shape, unit.stride)
        seen.setdefault(key, [unit, 0])[1] += 1
    return [(unit, key[0], count) for key, (unit, count) in seen.items()]


def timed(fn, repeat):
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


TF_PATHS = ('tensorflow', 'tensorflow_eager')
PATHS = ('reference', 'fast') + TF_PATHS + ('torch',)


def tf_unit(unit, x_shape, graph):
    """``unit`` (conv, batch norm, ReLU) with TensorFlow's kernels.

    Args:
        unit (Unit3D): The unit whose weights are run (made constants here).
        x_shape (tuple of int): The NDHWC shape of its input.
        graph (bool): Run as one ``tf.function`` graph, traced here, once.

    Returns:
        callable: NDHWC tensor -> NDHWC tensor; in graph mode it has a
        ``traces`` list that grows by one at each trace.
    """
    tf = import_tensorflow()
    w = tf.constant(unit.conv.W.array.transpose(2, 3, 4, 1, 0))
    mean, var, beta = (tf.constant(a) for a in (
        unit.bn.avg_mean, unit.bn.avg_var, unit.bn.beta.array))
    strides = [1] + list(unit.stride) + [1]

    def run(x):
        h = tf.nn.conv3d(x, w, strides, padding='SAME')
        h = tf.nn.batch_normalization(h, mean, var, beta, None, 1e-3)
        return tf.nn.relu(h)
    if not graph:
        return run
    traces = []

    def traced(x):
        traces.append(x.shape)  # Python runs only while tracing
        return run(x)
    run_graph = tf.function(traced, input_signature=[
        tf.TensorSpec(x_shape, tf.float32)])
    run_graph.get_concrete_function()  # trace now, before any timing
    run_graph.traces = traces
    return run_graph


def check_traced_once(run):
    """Exits if a graph was traced more than once (that would be timed)."""
    traces = getattr(run, 'traces', None)
    if traces is not None and len(traces) != 1:
        sys.exit('benchmark_layers.py: a TensorFlow graph was traced {} '
                 'times (shapes {}), expected once, before timing'.format(
                     len(traces), traces))


def path_runner(path, unit, x, xp):
    """A function running ``unit`` on ``x`` (NCTHW) through ``path``."""
    if path == 'reference':
        def run():
            with chainer.using_config('train', False), \
                    chainer.no_backprop_mode():
                return unit(x)
        return run
    if path == 'fast':
        folded = FoldedUnit(unit)  # the link keeps its folded weights
        x_last = xp.ascontiguousarray(x.transpose(0, 2, 3, 4, 1))

        def run():
            with cpu_chunks(xp):  # as in the link's forward
                return folded(x_last)
        return run
    if path in TF_PATHS:
        tf = import_tensorflow()
        x_tf = tf.constant(numpy.ascontiguousarray(x.transpose(0, 2, 3, 4, 1)))
        run_tf = tf_unit(unit, x_tf.shape, graph=(path == 'tensorflow'))

        def run():
            return run_tf(x_tf)
        run.traces = getattr(run_tf, 'traces', None)
        return run
    if path == 'torch':
        import torch
        from torch_i3d import torch_unit
        device = 'cpu' if xp is numpy else 'cuda'
        run_torch = torch_unit(unit, device, torch.float32)
        x_torch = torch.as_tensor(x, device=device).contiguous(
            memory_format=torch.channels_last_3d)

        def run():
            with torch.inference_mode():
                return run_torch(x_torch)
        return run
    raise SystemExit('benchmark_layers.py: unknown path {!r} ({})'.format(
        path, ', '.join(PATHS)))


def synchronized(run, xp):
    """``run`` followed by waiting for the GPU, if any."""
    def call():
        run()
        if xp is not numpy:
            xp.cuda.get_current_stream().synchronize()
            if 'torch' in sys.modules:
                sys.modules['torch'].cuda.synchronize()
    return call


def network_layers(batch, frames, repeat):
    """Prints, per layer of I3D, the fast engine's and TensorFlow's seconds
    (the minimum of ``repeat`` runs each) on the same input."""
    tf = import_tensorflow()
    numpy.random.seed(0)
    model = I3D(n_class=400)
    tf_layers = tf_i3d_layers(deepmind_tensors_of_link(model),
                              'RGB/inception_i3d/')
    names = model.layer_names[:model.layer_names.index('logits') + 1]
    assert len(names) == len(tf_layers)
    x = numpy.random.RandomState(1).uniform(
        -1, 1, (batch, frames, 224, 224, 3)).astype(numpy.float32)
    folded = model.fast.folded(model)
    h, h_tf = x, tf.constant(x)
    totals = {'fast': 0.0, 'tensorflow': 0.0}
    for name, (tf_name, tf_fn) in zip(names, tf_layers):
        layer = folded.get(name, getattr(model, name))
        graph = tf.function(tf_fn, input_signature=[
            tf.TensorSpec(h_tf.shape, tf.float32)])
        graph.get_concrete_function()  # traced before timing

        def fast():
            with cpu_chunks(numpy):
                return fast_layer(name, layer, h)
        times = {}
        for path, run in (('fast', fast), ('tensorflow',
                                           lambda: graph(h_tf))):
            run()  # warm up
            best = float('inf')
            for _ in range(repeat):
                start = time.perf_counter()
                out = run()
                best = min(best, time.perf_counter() - start)
            times[path] = best
            totals[path] += best
            if path == 'fast':
                h_next = out
            else:
                h_tf_next = out
        h, h_tf = h_next, h_tf_next
        print('layer {:18s} fast {:.4f} s tensorflow {:.4f} s '
              'fast/tensorflow={:.2f}'.format(
                  name, times['fast'], times['tensorflow'],
                  times['tensorflow'] / times['fast']), flush=True)
    flops = count_flops(model, (batch, 3, frames, 224, 224))
    print('total batch={} frames={} fast {:.3f} s ({:.0f} GFLOP/s) '
          'tensorflow {:.3f} s ({:.0f} GFLOP/s) fast/tensorflow={:.2f} '
          '(sums of the layers; input transposes and the engine\'s weight '
          'check not included)'.format(
              batch, frames, totals['fast'], flops / totals['fast'] / 1e9,
              totals['tensorflow'], flops / totals['tensorflow'] / 1e9,
              totals['tensorflow'] / totals['fast']))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--network', action='store_true',
                        help='time every layer of the whole network, fast '
                             'against TensorFlow (CPU)')
    parser.add_argument('--batch', type=int, default=1,
                        help='clips per forward with --network')
    parser.add_argument('--frames', type=int, default=64)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--paths', default='reference,fast,tensorflow',
                        help='comma-separated, fast among them: reference, '
                             'fast, tensorflow (one tf.function graph, CPU '
                             'only), tensorflow_eager (CPU only), torch')
    parser.add_argument('--device', type=int, default=-1,
                        help='-1: CPU (default); N >= 0: GPU N (CuPy, and '
                             'CUDA for PyTorch)')
    args = parser.parse_args()
    if args.network:
        if args.device >= 0:
            parser.error('--network compares with TensorFlow: CPU only')
        network_layers(args.batch, args.frames, args.repeat)
        return
    paths = args.paths.split(',')
    if 'fast' not in paths:
        parser.error('--paths must include fast (the others are compared '
                     'with it)')
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        parser.error('unknown path(s) {} in --paths; choose from {}'.format(
            ', '.join(unknown), ', '.join(PATHS)))
    if args.device >= 0 and set(paths) & set(TF_PATHS):
        parser.error('the TensorFlow paths run on the CPU only')
    xp = numpy
    if args.device >= 0:
        import cupy
        cupy.cuda.Device(args.device).use()
        xp = cupy
    numpy.random.seed(0)
    model = I3D(n_class=400)
    if xp is not numpy:
        model.to_gpu(args.device)
    shape = (1, 3, args.frames, 224, 224)
    for unit, in_shape, count in distinct(conv_inputs(model, shape)):
        x = xp.asarray(numpy.random.uniform(0, 1, in_shape).astype(
            numpy.float32))
        flops, _ = layer_flops('conv', unit, in_shape)
        seconds = {}
        for path in paths:
            run = path_runner(path, unit, x, xp)
            seconds[path] = timed(synchronized(run, xp), args.repeat)
            check_traced_once(run)
        o, i, kt, kh, kw = unit.conv.W.shape
        print('conv {}->{} k{}x{}x{} s{} in {}x{}x{} (x{} in I3D): '.format(
            i, o, kt, kh, kw, unit.stride[0], *in_shape[2:], count) +
            ', '.join('{} {:.4f} s {:.0f} GFLOP/s'.format(
                path, seconds[path], flops / seconds[path] / 1e9)
                for path in paths) + ', ' +
            ' '.join('fast/{}={:.2f}'.format(path, seconds[path] /
                                             seconds['fast'])
                     for path in paths if path != 'fast'), flush=True)


if __name__ == '__main__':
    main()
