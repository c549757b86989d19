"""Conversion of DeepMind's TensorFlow I3D checkpoints to Chainer ``.npz``.

DeepMind's layout (``kinetics-i3d``, ``data/checkpoints/*``)::

    <scope>Conv3d_1a_7x7/conv_3d/w                      DHWIO
    <scope>Conv3d_1a_7x7/batch_norm/{beta,moving_mean,moving_variance}
    <scope>Mixed_3b/Branch_1/Conv3d_0b_3x3/...
    <scope>Logits/Conv3d_0c_1x1/conv_3d/{w,b}

``<scope>`` is ``RGB/inception_i3d/`` or ``Flow/inception_i3d/``, and empty in
the Kinetics-600 checkpoint, which also shapes its batch-norm tensors
``[1, 1, 1, 1, C]`` and carries ``/Momentum`` optimizer slots. All five name one
layer ``Mixed_5b/Branch_2/Conv3d_0a_3x3`` where the other blocks say ``0b``.

The conversion is total: every parameter and running statistic of the link is
filled exactly once and every checkpoint tensor is used or on an explicit
ignore list; anything else is an error naming the tensor.
"""

import glob
import os
import sys

import chainer
import numpy

from chainercv_i3d.links.inception_block import InceptionBlock
from chainercv_i3d.links.unit3d import Unit3D
from chainercv_i3d.modality import modality_of_channels

STEM_WEIGHT = 'Conv3d_1a_7x7/conv_3d/w'
LOGITS_SCOPE = 'Logits/Conv3d_0c_1x1'
# Checkpoint tensors that are not part of the network.
IGNORED_SUFFIXES = ('/Momentum',)
IGNORED_NAMES = ('global_step',)

_BRANCH_SCOPES = {
    'branch0': 'Branch_0/Conv3d_0a_1x1',
    'branch1_reduce': 'Branch_1/Conv3d_0a_1x1',
    'branch1': 'Branch_1/Conv3d_0b_3x3',
    'branch2_reduce': 'Branch_2/Conv3d_0a_1x1',
    'branch2': 'Branch_2/Conv3d_0b_3x3',
    'branch3': 'Branch_3/Conv3d_0b_1x1',
}
# DeepMind's code names this one layer differently; so do all checkpoints.
_SCOPE_EXCEPTIONS = {
    ('mixed_5b', 'branch2'): 'Branch_2/Conv3d_0a_3x3',
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be converted; the message says why."""


def import_tensorflow():
    """Imports TensorFlow, which only the converter needs.

    TensorFlow's C++ start-up messages (oneDNN notices, absl banners) are
    written straight to file descriptor 2 and say nothing about the
    conversion, so stderr is silenced while it imports; an ImportError still
    propagates with its message.
    """
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow as tf
    except ImportError as e:
        raise ImportError(
            'converting a TensorFlow checkpoint needs TensorFlow ({}): '
            'pip install "chainercv_i3d[tf]"'.format(e))
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return tf


def _tf_layer_scope(name):
    # 'conv3d_1a_7x7' -> 'Conv3d_1a_7x7', 'mixed_4b' -> 'Mixed_4b'
    return name[:1].upper() + name[1:]


def unit_scope(block_name, branch_name=None):
    """Returns DeepMind's scope of a :class:`Unit3D` of the link.

    Args:
        block_name (str): The layer of :class:`I3D` (``'conv3d_2c_3x3'``,
            ``'mixed_5b'``).
        branch_name (str): The branch of an :class:`InceptionBlock`
            (``'branch2'``), or ``None`` for a stem layer.

    Returns:
        str: The scope without prefix, e.g. ``'Mixed_5b/Branch_2/Conv3d_0a_3x3'``.
    """
    scope = _tf_layer_scope(block_name)
    if branch_name is None:
        return scope
    branch = _SCOPE_EXCEPTIONS.get((block_name, branch_name),
                                   _BRANCH_SCOPES[branch_name])
    return scope + '/' + branch


def _conv_weight(w):
    return w.transpose(4, 3, 0, 1, 2)  # TF's DHWIO -> Chainer's OIDHW


def _flat(v):
    return v.reshape(-1)  # [C] or Kinetics-600's [1, 1, 1, 1, C] -> [C]


def _unit_tensor_map(unit, scope):
    # link array -> (TF tensor name, function from TF tensor to link array)
    return {
        id(unit.conv.W.array): (scope + '/conv_3d/w', _conv_weight),
        id(unit.bn.beta.array): (scope + '/batch_norm/beta', _flat),
        id(unit.bn.avg_mean): (scope + '/batch_norm/moving_mean', _flat),
        id(unit.bn.avg_var): (scope + '/batch_norm/moving_variance', _flat),
    }


def tf_tensor_map(model, prefix):
    """Maps every array of ``model`` to the checkpoint tensor that fills it.

    Args:
        model (I3D): The link to fill.
        prefix (str): The checkpoint's scope prefix (``'RGB/inception_i3d/'``).

    Returns:
        dict: ``id(array) -> (tensor name, converter function)``.
    """
    mapping = {}
    for name in model.layer_names:
        layer = getattr(model, name)
        if isinstance(layer, Unit3D):
            mapping.update(_unit_tensor_map(layer, prefix + unit_scope(name)))
        elif isinstance(layer, InceptionBlock):
            for branch in _BRANCH_SCOPES:
                mapping.update(_unit_tensor_map(
                    getattr(layer, branch),
                    prefix + unit_scope(name, branch)))
    logits = prefix + LOGITS_SCOPE + '/conv_3d/'
    mapping[id(model.logits.conv.W.array)] = (logits + 'w', _conv_weight)
    mapping[id(model.logits.conv.b.array)] = (logits + 'b', _flat)
    return mapping


class _ArrayCollector(chainer.serializer.Serializer):
    """Lists every array that ``save_npz`` would write, with its path."""

    def __init__(self, path='', found=None):
        self.path = path
        self.found = [] if found is None else found

    def __getitem__(self, key):
        return _ArrayCollector(self.path + key + '/', self.found)

    def __call__(self, key, value):
        if isinstance(value, numpy.ndarray):
            self.found.append((self.path + key, value))
        return value


def link_arrays(model):
    """Returns ``[(path, array)]`` for every parameter and statistic."""
    collector = _ArrayCollector()
    model.serialize(collector)
    return collector.found


def checkpoint_prefix(path):
    """Resolves a checkpoint prefix, directory, or ``.index`` file to a prefix.

    Raises:
        CheckpointError: Nothing at ``path`` looks like a TF checkpoint.
    """
    path = os.path.expanduser(str(path))
    if os.path.isdir(path):
        indexes = sorted(glob.glob(os.path.join(path, '*.index')))
        if len(indexes) != 1:
            raise CheckpointError(
                '{}: expected one checkpoint (*.index) in this directory, '
                'found {}'.format(path, len(indexes) or 'none'))
        path = indexes[0]
    for suffix in ('.index', '.data-00000-of-00001'):
        if path.endswith(suffix):
            path = path[:-len(suffix)]
    if not os.path.isfile(path + '.index'):
        raise CheckpointError(
            '{}: no TensorFlow checkpoint there (no {}.index); give a '
            'prefix such as data/checkpoints/rgb_imagenet/model.ckpt, or '
            'its directory'.format(path, os.path.basename(path)))
    return path


def read_checkpoint(path):
    """Reads every tensor of a TensorFlow checkpoint.

    Args:
        path (str): A checkpoint prefix (``.../model.ckpt``), its directory,
            or its ``.index`` file.

    Returns:
        tuple: ``(prefix, {name: numpy.ndarray})``.

    Raises:
        CheckpointError: The checkpoint is missing, unreadable or truncated.
    """
    prefix = checkpoint_prefix(path)
    tf = import_tensorflow()
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = sorted(reader.get_variable_to_shape_map())
    except Exception as e:  # TF raises many types for a broken file
        raise CheckpointError('{}: not a readable TensorFlow checkpoint '
                              '({})'.format(prefix, _first_line(e)))
    tensors = {}
    for name in names:
        try:
            tensors[name] = numpy.asarray(reader.get_tensor(name))
        except Exception as e:
            raise CheckpointError(
                '{}: cannot read tensor {} (truncated or corrupt data '
                'file?): {}'.format(prefix, name, _first_line(e)))
    return prefix, tensors


def _first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() \
        else type(error).__name__


def detect_layout(tensors):
    """Finds scope prefix, modality and class count of an I3D checkpoint.

    Args:
        tensors (dict): Tensor name to array.

    Returns:
        dict: ``{'prefix': str, 'modality': str, 'n_class': int}``.

    Raises:
        CheckpointError: It is not an I3D checkpoint.
    """
    stems = [name for name in tensors if name.endswith(STEM_WEIGHT)]
    if len(stems) != 1:
        raise CheckpointError(
            'not an I3D checkpoint: expected one tensor named '
            '<scope>{}, found {} ({} tensors, e.g. {})'.format(
                STEM_WEIGHT, len(stems), len(tensors),
                ', '.join(sorted(tensors)[:3]) or 'none'))
    prefix = stems[0][:-len(STEM_WEIGHT)]
    bias = prefix + LOGITS_SCOPE + '/conv_3d/b'
    if bias not in tensors:
        raise CheckpointError('not an I3D checkpoint: no tensor ' + bias)
    stem_shape = tensors[stems[0]].shape
    try:
        modality = modality_of_channels(stem_shape[3])
    except ValueError as e:
        raise CheckpointError('{} has shape {}: {}'.format(
            stems[0], list(stem_shape), e))
    return {'prefix': prefix, 'modality': modality,
            'n_class': int(tensors[bias].shape[-1])}


def _is_ignored(name):
    return name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES)


def fill_link(model, tensors, prefix):
    """Copies checkpoint tensors into ``model``, checking coverage both ways.

    Args:
        model (I3D): The link to fill (its arrays are written in place).
        tensors (dict): Tensor name to array.
        prefix (str): The checkpoint's scope prefix.

    Returns:
        tuple: ``(used, ignored)``: the sorted tensor names that were copied,
        and those skipped by the ignore list.

    Raises:
        CheckpointError: A link array has no tensor or a tensor of another
            shape, a tensor fills two arrays, or a tensor is left unused.
    """
    mapping = tf_tensor_map(model, prefix)
    used = set()
    for path, array in link_arrays(model):
        if id(array) not in mapping:
            raise CheckpointError('no checkpoint tensor is mapped to the '
                                  "link's array " + path)
        name, convert = mapping[id(array)]
        if name not in tensors:
            raise CheckpointError('the checkpoint has no tensor {} (for the '
                                  "link's {})".format(name, path))
        if name in used:
            raise CheckpointError('tensor {} would fill two arrays'.format(
                name))
        value = convert(tensors[name])
        if value.shape != array.shape:
            raise CheckpointError('tensor {} has shape {}, the link\'s {} '
                                  'needs {}'.format(name, list(value.shape),
                                                    path, list(array.shape)))
        array[...] = value
        used.add(name)
    ignored = sorted(n for n in tensors if n not in used and _is_ignored(n))
    unused = sorted(set(tensors) - used - set(ignored))
    if unused:
        raise CheckpointError(
            '{} checkpoint tensor(s) have no place in I3D, first: {}'.format(
                len(unused), ', '.join(unused[:5])))
    return sorted(used), ignored


def convert_tf_checkpoint(checkpoint_path):
    """Builds an :class:`I3D` holding the weights of a DeepMind checkpoint.

    Args:
        checkpoint_path (str): Checkpoint prefix, directory or ``.index``.

    Returns:
        tuple: ``(model, summary)``, summary a dict with ``checkpoint``,
        ``prefix``, ``modality``, ``n_class``, ``n_used`` and ``n_ignored``.

    Example:

        >>> model, summary = convert_tf_checkpoint('rgb_imagenet/model.ckpt')
        >>> chainer.serializers.save_npz('rgb_imagenet.npz', model)
    """
    # Imported here: chainercv_i3d.links.i3d imports this package.
    from chainercv_i3d.links.i3d import I3D
    prefix, tensors = read_checkpoint(checkpoint_path)
    layout = detect_layout(tensors)
    model = I3D(n_class=layout['n_class'], modality=layout['modality'])
    used, ignored = fill_link(model, tensors, layout['prefix'])
    summary = dict(layout, checkpoint=prefix, n_used=len(used),
                   n_ignored=len(ignored))
    return model, summary
