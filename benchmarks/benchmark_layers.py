"""Every distinct convolution of I3D, timed three ways, one line per shape.

    python benchmarks/benchmark_layers.py [--frames 64] [--repeat 3]

For the shapes the layers see on a (1, 3, frames, 224, 224) input, each
conv + batch norm + ReLU runs as the reference path (Chainer functions),
the fast path (chainercv_i3d.links.fast_inference, channels-last) and
TensorFlow's kernels (tf.nn.conv3d + batch_normalization + relu), on the
CPU, with the same random weights. Prints seconds and GFLOP/s of each, and
the fast path's speed relative to the other two.
"""

import argparse
import os
import time

import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)
import chainer
import numpy

from chainercv_i3d.links import I3D
from chainercv_i3d.links.fast_inference import FoldedUnit
from chainercv_i3d.links.inception_block import InceptionBlock
from chainercv_i3d.links.parallel import cpu_chunks
from chainercv_i3d.links.unit3d import Unit3D
from chainercv_i3d.utils.flops import _layer

BRANCH_INPUTS = (('branch0', None), ('branch1_reduce', None),
                 ('branch1', 'branch1_reduce'), ('branch2_reduce', None),
                 ('branch2', 'branch2_reduce'), ('branch3', None))


def conv_inputs(model, shape):
    """(unit, its input shape) for every convolution of the network."""
    found = []
    for name in model.layer_names[:model.layer_names.index('mixed_5c') + 1]:
        layer = getattr(model, name)
        if isinstance(layer, Unit3D):
            found.append((layer, shape))
        elif isinstance(layer, InceptionBlock):
            for branch, source in BRANCH_INPUTS:
                unit = getattr(layer, branch)
                channels = shape[1] if source is None else \
                    getattr(layer, source).conv.W.shape[0]
                found.append((unit, (shape[0], channels) + shape[2:]))
        _, shape = _layer(name, layer, shape)
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


def tf_unit(unit):
    import tensorflow as tf
    w = tf.constant(unit.conv.W.array.transpose(2, 3, 4, 1, 0))
    mean, var, beta = (tf.constant(a) for a in (
        unit.bn.avg_mean, unit.bn.avg_var, unit.bn.beta.array))
    strides = [1] + list(unit.stride) + [1]

    def run(x):
        h = tf.nn.conv3d(x, w, strides, padding='SAME')
        h = tf.nn.batch_normalization(h, mean, var, beta, None, 1e-3)
        return tf.nn.relu(h).numpy()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=64)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    from chainercv_i3d.pretrained.tf_checkpoint import import_tensorflow
    tf = import_tensorflow()
    numpy.random.seed(0)
    model = I3D(n_class=400)
    shape = (1, 3, args.frames, 224, 224)
    for unit, in_shape, count in distinct(conv_inputs(model, shape)):
        x = numpy.random.uniform(0, 1, in_shape).astype(numpy.float32)
        x_last = numpy.ascontiguousarray(x.transpose(0, 2, 3, 4, 1))
        flops, _ = _layer('conv', unit, in_shape)
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            reference = timed(lambda: unit(x), args.repeat)
        folded = FoldedUnit(unit)  # the link keeps its folded weights
        with cpu_chunks(numpy):  # as in the link's forward
            fast = timed(lambda: folded(x_last), args.repeat)
        run_tf = tf_unit(unit)
        x_tf = tf.constant(x_last)
        tensorflow = timed(lambda: run_tf(x_tf), args.repeat)
        o, i, kt, kh, kw = unit.conv.W.shape
        print('conv {}->{} k{}x{}x{} s{} in {}x{}x{} (x{} in I3D): '
              'reference {:.3f} s {:.0f} GFLOP/s, fast {:.3f} s {:.0f} '
              'GFLOP/s, tensorflow {:.3f} s {:.0f} GFLOP/s, '
              'fast/tensorflow={:.2f} fast/reference={:.2f}'.format(
                  i, o, kt, kh, kw, unit.stride[0], *in_shape[2:], count,
                  reference, flops / reference / 1e9, fast,
                  flops / fast / 1e9, tensorflow, flops / tensorflow / 1e9,
                  tensorflow / fast, reference / fast), flush=True)


if __name__ == '__main__':
    main()
