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

The conversion maps the tensors onto the arrays of the I3D ``.npz``
(:func:`chainercv_i3d.architecture.npz_array_shapes`) without building a link.
It is total: every array is filled exactly once, with its shape, and every
checkpoint tensor is used or on an explicit ignore list; anything else is an
error naming the tensor.
"""

import glob
import os
import sys

import numpy

from chainercv_i3d.architecture import is_bn_count
from chainercv_i3d.architecture import npz_array_shapes
from chainercv_i3d.architecture import units
from chainercv_i3d.modality import modality_of_channels
from chainercv_i3d.pretrained.npz_weights import default_preset

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
    """Returns DeepMind's scope of a conv + batch-norm unit of the link.

    Args:
        block_name (str): The layer of :class:`I3D` (``'conv3d_2c_3x3'``,
            ``'mixed_5b'``).
        branch_name (str): The branch of an Inception block (``'branch2'``),
            or ``None`` for a stem layer.

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


# npz leaf of a unit -> (DeepMind's leaf under the unit's scope, converter).
_UNIT_LEAVES = {
    'conv/W': ('conv_3d/w', _conv_weight),
    'bn/beta': ('batch_norm/beta', _flat),
    'bn/avg_mean': ('batch_norm/moving_mean', _flat),
    'bn/avg_var': ('batch_norm/moving_variance', _flat),
}
_LOGITS_LEAVES = {
    'logits/conv/W': ('conv_3d/w', _conv_weight),
    'logits/conv/b': ('conv_3d/b', _flat),
}


def tf_tensor_map(modality, prefix):
    """Maps the npz keys of an I3D to the checkpoint tensors that fill them.

    The batch-norm counts (:data:`~chainercv_i3d.architecture.BN_COUNT`)
    have no tensor: a checkpoint does not count batches.

    Args:
        modality (str): ``'rgb'`` or ``'flow'``.
        prefix (str): The checkpoint's scope prefix (``'RGB/inception_i3d/'``).

    Returns:
        dict: ``npz key -> (tensor name, function from the tensor to the
        npz array)``.
    """
    mapping = {}
    for path, _, _, _, _ in units(modality):
        scope = prefix + unit_scope(*path.split('/'))
        for leaf, (tf_leaf, convert) in _UNIT_LEAVES.items():
            mapping[path + '/' + leaf] = (scope + '/' + tf_leaf, convert)
    for key, (tf_leaf, convert) in _LOGITS_LEAVES.items():
        mapping[key] = (prefix + LOGITS_SCOPE + '/' + tf_leaf, convert)
    return mapping


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


def npz_arrays_from_tensors(tensors, layout):
    """Maps checkpoint tensors onto the npz arrays of an I3D, checking
    coverage both ways.

    Args:
        tensors (dict): Tensor name to array, in DeepMind's names.
        layout (dict): ``prefix``, ``modality`` and ``n_class``, as
            :func:`detect_layout` returns them.

    Returns:
        tuple: ``(arrays, used, ignored)``: ``{npz key: numpy array}`` with
        every key of :func:`~chainercv_i3d.architecture.npz_array_shapes`
        (float32; the batch-norm counts 0, as in a link never trained), and
        the sorted tensor names that were used and skipped by the ignore
        list.

    Raises:
        CheckpointError: An npz array has no tensor or a tensor of another
            shape, a tensor fills two arrays, or a tensor is left unused.
    """
    mapping = tf_tensor_map(layout['modality'], layout['prefix'])
    arrays, used = {}, set()
    for key, shape in npz_array_shapes(layout['n_class'],
                                       layout['modality']).items():
        if is_bn_count(key):
            # What save_npz writes for the count of a fresh link.
            arrays[key] = numpy.asarray(0)
            continue
        if key not in mapping:
            raise CheckpointError('no checkpoint tensor is mapped to the npz '
                                  'array ' + key)
        name, convert = mapping[key]
        if name not in tensors:
            raise CheckpointError('the checkpoint has no tensor {} (for the '
                                  'npz array {})'.format(name, key))
        if name in used:
            raise CheckpointError('tensor {} would fill two arrays'.format(
                name))
        value = convert(tensors[name])
        if value.shape != shape:
            raise CheckpointError('tensor {} has shape {}, the npz array {} '
                                  'needs {}'.format(name, list(value.shape),
                                                    key, list(shape)))
        arrays[key] = numpy.ascontiguousarray(value, dtype=numpy.float32)
        used.add(name)
    ignored = sorted(n for n in tensors if n not in used and _is_ignored(n))
    unused = sorted(set(tensors) - used - set(ignored))
    if unused:
        raise CheckpointError(
            '{} checkpoint tensor(s) have no place in I3D, first: {}'.format(
                len(unused), ', '.join(unused[:5])))
    return arrays, sorted(used), ignored


def convert_tf_checkpoint(checkpoint_path):
    """Reads the weights of a DeepMind checkpoint as the arrays of an npz.

    Args:
        checkpoint_path (str): Checkpoint prefix, directory or ``.index``.

    Returns:
        tuple: ``(arrays, summary)``: ``{npz key: numpy array}``, and a dict
        with ``checkpoint``, ``prefix``, ``modality``, ``n_class``,
        ``n_used``, ``n_ignored`` and ``preset`` (DeepMind's Kinetics
        protocol with the class names of ``n_class``:
        :func:`~chainercv_i3d.pretrained.default_preset`).

    Raises:
        CheckpointError: The checkpoint is unreadable, not I3D, or its
            tensors do not fill the arrays exactly.
        ImportError: TensorFlow is not installed.

    Example:

        >>> arrays, summary = convert_tf_checkpoint('rgb_imagenet/model.ckpt')
        >>> save_model_npz(arrays, 'rgb_imagenet.npz', summary['preset'])
    """
    prefix, tensors = read_checkpoint(checkpoint_path)
    layout = detect_layout(tensors)
    arrays, used, ignored = npz_arrays_from_tensors(tensors, layout)
    summary = dict(layout, checkpoint=prefix, n_used=len(used),
                   n_ignored=len(ignored),
                   preset=default_preset(layout['n_class']))
    return arrays, summary
