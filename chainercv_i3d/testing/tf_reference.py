"""Independent TensorFlow reference of I3D: golden numbers for the tests,
and the TensorFlow side of the benchmarks.

Written from the architecture of DeepMind's ``kinetics-i3d`` (``i3d.py``,
"Quo Vadis, Action Recognition?") with raw ``tf.nn`` ops and the variable
names of the official checkpoints, so it shares no code with the Chainer port
it checks (:func:`deepmind_tensors_of_link` reads a link's arrays, and
imports nothing from it). TensorFlow is imported inside the functions only:
this module must import (and the tests that need it must skip cleanly) where
TF is absent.
"""

import collections
import os
import shutil
import tempfile

import numpy as np

from chainercv_i3d.pretrained.tf_checkpoint import import_tensorflow

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
    tf = import_tensorflow()

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
    tf = import_tensorflow()

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
    tf = import_tensorflow()

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name)
            for name in reader.get_variable_to_shape_map()}


def _mixed_unit_scopes(name):
    """DeepMind's scopes of the six units of block ``name`` (``'Mixed_3b'``).

    Returns:
        tuple of str: Branch 0, branch 1 (reduce, 3x3), branch 2 (reduce,
        3x3) and branch 3 (after the pool), in DeepMind's order.
    """
    # The official release names this layer 0a in Mixed_5b only.
    second = 'Conv3d_0a_3x3' if name == 'Mixed_5b' else 'Conv3d_0b_3x3'
    return tuple(name + '/' + unit for unit in (
        'Branch_0/Conv3d_0a_1x1', 'Branch_1/Conv3d_0a_1x1',
        'Branch_1/Conv3d_0b_3x3', 'Branch_2/Conv3d_0a_1x1',
        'Branch_2/' + second, 'Branch_3/Conv3d_0b_1x1'))


#: The attributes of a Chainer ``InceptionBlock`` holding the six units, in
#: the order of :func:`_mixed_unit_scopes`.
_LINK_BRANCHES = ('branch0', 'branch1_reduce', 'branch1', 'branch2_reduce',
                  'branch2', 'branch3')


def deepmind_tensors_of_link(model, scope='RGB/inception_i3d/'):
    """Lays out the weights of a Chainer I3D link as DeepMind's checkpoint.

    The inverse of the converter, written from DeepMind's names, so that the
    reference can run a Chainer model's weights (the benchmarks do). Only
    the link's attributes are read: its layers are named as DeepMind's
    endpoints in lower case, each unit holds ``conv.W`` (OIDHW) and
    ``bn.beta``, ``bn.avg_mean``, ``bn.avg_var``, and ``logits.conv`` holds
    ``W`` and ``b``.

    Args:
        model (chainercv_i3d.links.I3D): The link, its arrays on the CPU.
        scope (str): The variable prefix to write, as in
            :func:`tf_i3d_endpoints`.

    Returns:
        dict: Variable name -> numpy array: convolution weights DHWIO,
        batch-norm statistics and biases as vectors.

    Raises:
        TypeError: An array of the link is not a numpy array (send the
            model to the CPU first).
    """
    tensors = {}

    def put(name, array):
        if not isinstance(array, np.ndarray):
            raise TypeError('{} is a {}, not a numpy array: send the model '
                            'to the CPU (model.to_cpu()) first'.format(
                                name, type(array).__name__))
        # Chainer's OIDHW -> TensorFlow's DHWIO; vectors as they are.
        tensors[scope + name] = array.transpose(2, 3, 4, 1, 0) \
            if array.ndim == 5 else array

    def put_unit(unit, unit_scope):
        put(unit_scope + '/conv_3d/w', unit.conv.W.array)
        put(unit_scope + '/batch_norm/beta', unit.bn.beta.array)
        put(unit_scope + '/batch_norm/moving_mean', unit.bn.avg_mean)
        put(unit_scope + '/batch_norm/moving_variance', unit.bn.avg_var)

    for name, kind, _, _ in _STEM:
        if kind == 'conv':
            put_unit(getattr(model, name.lower()), name)
        elif kind == 'mixed':
            block = getattr(model, name.lower())
            for branch, unit_scope in zip(_LINK_BRANCHES,
                                          _mixed_unit_scopes(name)):
                put_unit(getattr(block, branch), unit_scope)
    put('Logits/Conv3d_0c_1x1/conv_3d/w', model.logits.conv.W.array)
    put('Logits/Conv3d_0c_1x1/conv_3d/b', model.logits.conv.b.array)
    return tensors


def _tf_stem(tensors, scope):
    """DeepMind's I3D up to ``Mixed_5c``, its weights made constants once.

    Returns:
        list: ``(endpoint, function)`` pairs, each function mapping an NDHWC
        ``tf.Tensor`` to the endpoint's NDHWC ``tf.Tensor``.
    """
    tf = import_tensorflow()

    def var(name):
        return tf.constant(np.asarray(tensors[scope + name], np.float32))

    def unit3d(name, stride=1):
        w = var(name + '/conv_3d/w')
        # Kinetics-600 stores batch-norm statistics as [1, 1, 1, 1, C].
        mean, variance, beta = [
            tf.reshape(var(name + '/batch_norm/' + k), [-1])
            for k in ('moving_mean', 'moving_variance', 'beta')]

        def run(h):
            h = tf.nn.conv3d(h, w, strides=[1, stride, stride, stride, 1],
                             padding='SAME')
            h = tf.nn.batch_normalization(h, mean, variance, offset=beta,
                                          scale=None, variance_epsilon=BN_EPS)
            return tf.nn.relu(h)
        return run

    def max_pool(ksize, strides):
        return lambda h: tf.nn.max_pool3d(
            h, ksize=[1] + list(ksize) + [1],
            strides=[1] + list(strides) + [1], padding='SAME')

    def mixed(name):
        b0, b1a, b1b, b2a, b2b, b3 = (
            unit3d(s) for s in _mixed_unit_scopes(name))
        pool = max_pool((3, 3, 3), (1, 1, 1))
        return lambda h: tf.concat(
            [b0(h), b1b(b1a(h)), b2b(b2a(h)), b3(pool(h))], axis=4)

    layers = []
    for name, kind, ksize, stride in _STEM:
        if kind == 'conv':
            layers.append((name, unit3d(name, stride)))
        elif kind == 'pool':
            layers.append((name, max_pool(ksize, stride)))
        else:
            layers.append((name, mixed(name)))
    return layers


def _tf_head(tensors, scope):
    """DeepMind's head, its weights made constants once.

    Returns:
        tuple: ``(avgpool, logits)``: ``avgpool`` maps ``Mixed_5c`` (NDHWC)
        to the (N, T', 1, 1, 1024) 2x7x7 VALID average pool, ``logits`` maps
        that to (N, n_class) logits (a 1x1x1 convolution with bias, dropout
        being the identity at inference, then the mean over time).
    """
    tf = import_tensorflow()

    w, b = (tf.constant(np.asarray(
        tensors[scope + 'Logits/Conv3d_0c_1x1/conv_3d/' + k], np.float32))
        for k in ('w', 'b'))

    def avgpool(h):
        return tf.nn.avg_pool3d(h, ksize=[1, 2, 7, 7, 1],
                                strides=[1, 1, 1, 1, 1], padding='VALID')

    def logits(h):
        h = tf.nn.conv3d(h, w, strides=[1, 1, 1, 1, 1], padding='SAME') + b
        # Per-time-step logits (N, T', n_class), averaged over time.
        return tf.reduce_mean(tf.squeeze(h, [2, 3]), axis=1)
    return avgpool, logits


def tf_i3d_layers(tensors, scope):
    """DeepMind's I3D as a list of per-layer functions, up to its logits.

    Args:
        tensors (dict): Variable name -> numpy array.
        scope (str): Variable prefix, as in :func:`tf_i3d_endpoints`.

    Returns:
        list: ``(endpoint, function)`` pairs in order: the layers up to
        ``Mixed_5c`` (NDHWC -> NDHWC), then ``'AvgPool'`` and ``'Logits'``
        (as :func:`tf_i3d_logits` chains them).
    """
    avgpool, logits = _tf_head(tensors, scope)
    return _tf_stem(tensors, scope) + [('AvgPool', avgpool),
                                       ('Logits', logits)]


def tf_i3d_logits(tensors, scope):
    """DeepMind's I3D as one function from an NDHWC clip to its logits.

    The weights become ``tf.constant`` once, here; the function only calls
    ``tf.nn`` ops, so it runs eagerly as it is, or as one graph inside
    ``tf.function`` (as DeepMind's TensorFlow 1 graph ran; the benchmarks
    time both).

    Args:
        tensors (dict): Variable name -> numpy array, as from
            :func:`read_checkpoint` or :func:`deepmind_tensors_of_link`.
        scope (str): Variable prefix, as in :func:`tf_i3d_endpoints`.

    Returns:
        callable: ``x -> logits``, ``x`` a float32 (N, T, H, W, C) tensor
        (DeepMind's layout), ``logits`` a (N, n_class) ``tf.Tensor``.
    """
    stem = _tf_stem(tensors, scope)
    avgpool, logits = _tf_head(tensors, scope)

    def forward(x):
        h = x
        for _, layer in stem:
            h = layer(h)
        return logits(avgpool(h))
    return forward


def tf_i3d_endpoints(tensors, scope, x, head=True):
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

    Returns:
        collections.OrderedDict: Lower-case endpoint name -> numpy array in
        NCTHW layout, for every endpoint from ``'conv3d_1a_7x7'`` to
        ``'mixed_5c'``, then ``'avgpool'`` (N, 1024, T'), ``'logits'``
        (N, n_class) and ``'prob'`` (softmax of the logits).
    """
    tf = import_tensorflow()

    def to_ncthw(h):
        return np.transpose(h.numpy(), (0, 4, 1, 2, 3))

    out = collections.OrderedDict()
    h = tf.constant(np.transpose(np.asarray(x, np.float32), (0, 2, 3, 4, 1)))
    for name, layer in _tf_stem(tensors, scope):
        h = layer(h)
        out[name.lower()] = to_ncthw(h)
    if not head:
        return out

    avgpool, logits_of = _tf_head(tensors, scope)
    h = avgpool(h)
    out['avgpool'] = np.transpose(tf.squeeze(h, [2, 3]).numpy(), (0, 2, 1))
    logits = logits_of(h)
    out['logits'] = logits.numpy()
    out['prob'] = tf.nn.softmax(logits).numpy()
    return out
