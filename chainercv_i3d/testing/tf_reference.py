"""Independent TensorFlow reference of I3D: golden numbers for the tests.

Written from the architecture of DeepMind's ``kinetics-i3d`` (``i3d.py``,
"Quo Vadis, Action Recognition?") with raw ``tf.nn`` ops and the variable
names of the official checkpoints, so it shares no code with the Chainer port
it checks. TensorFlow is imported inside the functions only: this module must
import (and the tests that need it must skip cleanly) where TF is absent.
"""

import collections
import os
import shutil
import tempfile

import numpy as np

#: Batch-norm epsilon of DeepMind's ``Unit3D`` (snt.BatchNorm default 1e-3).
BN_EPS = 1e-3

#: The stem of the network: (endpoint, kind, kernel or pool size, stride).
_STEM = (
    ('Conv3d_1a_7x7', 'conv', None, 2),
    ('MaxPool3d_2a_3x3', 'pool', (1, 3, 3), (1, 2, 2)),
    ('Conv3d_2b_1x1', 'conv', None, 1),
    ('Conv3d_2c_3x3', 'conv', None, 1),
    ('MaxPool3d_3a_3x3', 'pool', (1, 3, 3), (1, 2, 2)),
    ('Mixed_3b', 'mixed', None, None),
    ('Mixed_3c', 'mixed', None, None),
    ('MaxPool3d_4a_3x3', 'pool', (3, 3, 3), (2, 2, 2)),
    ('Mixed_4b', 'mixed', None, None),
    ('Mixed_4c', 'mixed', None, None),
    ('Mixed_4d', 'mixed', None, None),
    ('Mixed_4e', 'mixed', None, None),
    ('Mixed_4f', 'mixed', None, None),
    ('MaxPool3d_5a_2x2', 'pool', (2, 2, 2), (2, 2, 2)),
    ('Mixed_5b', 'mixed', None, None),
    ('Mixed_5c', 'mixed', None, None),
)


def _list_index(index_path):
    """Lists the variables named by a bare ``.ckpt.index`` file.

    TensorFlow only opens a checkpoint whose data shard exists, so the index
    is copied beside an empty shard in a temporary directory.

    Args:
        index_path: Path of a ``*.ckpt.index`` file.

    Returns:
        list: ``(name, shape, numpy dtype)`` triples, sorted by name.
    """
    import tensorflow as tf

    tmp = tempfile.mkdtemp(prefix='i3d_index_')
    try:
        prefix = os.path.join(tmp, 'X.ckpt')
        shutil.copyfile(index_path, prefix + '.index')
        open(prefix + '.data-00000-of-00001', 'wb').close()
        reader = tf.train.load_checkpoint(prefix)
        dtypes = reader.get_variable_to_dtype_map()
        return [(name, tuple(shape), dtypes[name].as_numpy_dtype)
                for name, shape in tf.train.list_variables(prefix)]
    finally:
        shutil.rmtree(tmp)


def _random_tensor(rng, name, shape):
    """Draws one random variable that keeps activations O(1) through I3D.

    Args:
        rng (numpy.random.RandomState): Source of randomness.
        name (str): Variable name; its last component picks the law.
        shape (tuple of int): Exact shape to produce.

    Returns:
        numpy.ndarray: float64 draws of ``shape`` (cast by the caller).
    """
    if name.endswith('/Momentum'):
        # Optimizer slots are never read by the forward pass; small noise.
        return rng.normal(0.0, 0.01, shape)
    leaf = name.rsplit('/', 1)[-1]
    if leaf == 'w':
        # He initialisation on the DHWIO fan-in keeps the ReLU stack stable.
        fan_in = int(np.prod(shape[:-1]))
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    if leaf == 'moving_variance':
        # Bounded away from zero so 1/sqrt(var + eps) stays O(1).
        return rng.uniform(0.5, 1.5, shape)
    if leaf in ('beta', 'moving_mean', 'b'):
        return rng.normal(0.0, 0.1, shape)
    raise ValueError('unexpected I3D variable: %s' % name)


def write_random_checkpoint(index_path, out_prefix, seed=0):
    """Writes a random-weight checkpoint laid out like an official one.

    Every variable of ``index_path`` (names, shapes, dtypes, optimizer slots
    included) is drawn at random and saved with ``tf.raw_ops.SaveV2``, so
    ``tf.train.load_checkpoint(out_prefix)`` reads it like a real checkpoint.

    Args:
        index_path (str): One of DeepMind's ``*.ckpt.index`` files.
        out_prefix (str): Checkpoint prefix to write (``<out_prefix>.index``
            and ``<out_prefix>.data-00000-of-00001``); its directory is made
            if missing.
        seed (int): Seed of the draws; the same seed gives the same tensors.

    Returns:
        dict: Variable name -> numpy array, exactly what was written.
    """
    import tensorflow as tf

    rng = np.random.RandomState(seed)
    tensors = {}
    for name, shape, dtype in _list_index(index_path):
        tensors[name] = _random_tensor(rng, name, shape).astype(dtype)
    out_dir = os.path.dirname(os.path.abspath(out_prefix))
    os.makedirs(out_dir, exist_ok=True)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=out_prefix, tensor_names=names,
        shape_and_slices=[''] * len(names),
        tensors=[tf.constant(tensors[n]) for n in names])
    return tensors


def read_checkpoint(prefix):
    """Reads every variable of a TensorFlow checkpoint.

    Args:
        prefix (str): Checkpoint prefix (e.g. ``.../model.ckpt``).

    Returns:
        dict: Variable name -> numpy array.
    """
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name)
            for name in reader.get_variable_to_shape_map()}


def tf_i3d_endpoints(tensors, scope, x, head=True, logits_only=False):
    """Runs DeepMind's I3D in inference mode with raw ``tf.nn`` ops.

    Each ``Unit3D`` is a bias-free SAME 3D convolution, batch norm with moving
    statistics, no scale and eps 1e-3, then ReLU. The head is a 2x7x7 VALID
    average pool, a 1x1x1 convolution with bias (dropout is the identity at
    inference) and a mean of the per-step logits over time.

    Args:
        tensors (dict): Variable name -> numpy array, as from
            :func:`read_checkpoint`.
        scope (str): Variable prefix: ``'RGB/inception_i3d/'``,
            ``'Flow/inception_i3d/'`` or ``''`` (Kinetics-600 checkpoint).
        x (numpy.ndarray): Input batch, shape (N, C, T, H, W).
        head (bool): False stops at ``'mixed_5c'`` (for inputs too small
            for the 2x7x7 VALID average pool).
        logits_only (bool): Return only the logits (N, n_class), without
            copying any endpoint out of TensorFlow (for benchmarks).

    Returns:
        collections.OrderedDict: Lower-case endpoint name -> numpy array in
        NCTHW layout, for every endpoint from ``'conv3d_1a_7x7'`` to
        ``'mixed_5c'``, then ``'avgpool'`` (N, 1024, T'), ``'logits'``
        (N, n_class) and ``'prob'`` (softmax of the logits).
    """
    import tensorflow as tf

    def var(name):
        return tf.constant(np.asarray(tensors[scope + name], np.float32))

    def unit3d(h, name, stride=1):
        w = var(name + '/conv_3d/w')
        h = tf.nn.conv3d(h, w, strides=[1, stride, stride, stride, 1],
                         padding='SAME')
        # Kinetics-600 stores batch-norm statistics as [1, 1, 1, 1, C].
        bn = [tf.reshape(var(name + '/batch_norm/' + k), [-1])
              for k in ('moving_mean', 'moving_variance', 'beta')]
        h = tf.nn.batch_normalization(h, bn[0], bn[1], offset=bn[2],
                                      scale=None, variance_epsilon=BN_EPS)
        return tf.nn.relu(h)

    def max_pool(h, ksize, strides):
        return tf.nn.max_pool3d(h, ksize=[1] + list(ksize) + [1],
                                strides=[1] + list(strides) + [1],
                                padding='SAME')

    def mixed(h, name):
        b0 = unit3d(h, name + '/Branch_0/Conv3d_0a_1x1')
        b1 = unit3d(h, name + '/Branch_1/Conv3d_0a_1x1')
        b1 = unit3d(b1, name + '/Branch_1/Conv3d_0b_3x3')
        b2 = unit3d(h, name + '/Branch_2/Conv3d_0a_1x1')
        # The official release names this layer 0a in Mixed_5b only.
        second = 'Conv3d_0a_3x3' if name == 'Mixed_5b' else 'Conv3d_0b_3x3'
        b2 = unit3d(b2, name + '/Branch_2/' + second)
        b3 = max_pool(h, (3, 3, 3), (1, 1, 1))
        b3 = unit3d(b3, name + '/Branch_3/Conv3d_0b_1x1')
        return tf.concat([b0, b1, b2, b3], axis=4)

    def to_ncthw(h):
        return np.transpose(h.numpy(), (0, 4, 1, 2, 3))

    out = collections.OrderedDict()
    h = tf.constant(np.transpose(np.asarray(x, np.float32), (0, 2, 3, 4, 1)))
    for name, kind, ksize, stride in _STEM:
        if kind == 'conv':
            h = unit3d(h, name, stride)
        elif kind == 'pool':
            h = max_pool(h, ksize, stride)
        else:
            h = mixed(h, name)
        if not logits_only:
            out[name.lower()] = to_ncthw(h)
    if not head:
        return out

    h = tf.nn.avg_pool3d(h, ksize=[1, 2, 7, 7, 1], strides=[1, 1, 1, 1, 1],
                         padding='VALID')
    out['avgpool'] = np.transpose(tf.squeeze(h, [2, 3]).numpy(), (0, 2, 1))
    w = var('Logits/Conv3d_0c_1x1/conv_3d/w')
    b = var('Logits/Conv3d_0c_1x1/conv_3d/b')
    h = tf.nn.conv3d(h, w, strides=[1, 1, 1, 1, 1], padding='SAME') + b
    # Per-time-step logits (N, T', n_class), averaged over time.
    logits = tf.reduce_mean(tf.squeeze(h, [2, 3]), axis=1)
    if logits_only:
        return logits.numpy()
    out['logits'] = logits.numpy()
    out['prob'] = tf.nn.softmax(logits).numpy()
    return out
