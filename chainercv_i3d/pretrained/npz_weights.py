"""What an I3D ``.npz`` holds, and ``pretrained_model=`` resolution."""

import os
import zipfile

import numpy

from chainercv_i3d.modality import modality_of_channels

# Keys of chainer.serializers.save_npz(path, I3D(...)) that fix its shape.
STEM_WEIGHT_KEY = 'conv3d_1a_7x7/conv/W'
LOGITS_BIAS_KEY = 'logits/conv/b'

DEFAULT_N_CLASS = 400
DEFAULT_MODALITY = 'rgb'


def describe_npz(path):
    """Reads the class count and modality of an I3D ``.npz`` from its shapes.

    Args:
        path (str): An ``.npz`` saved from an :class:`~chainercv_i3d.links.I3D`
            (for example by ``examples/i3d/tfckpt2npz.py``).

    Returns:
        dict: ``{'n_class': int, 'modality': 'rgb' or 'flow'}``.

    Raises:
        ValueError: The file is missing, not an npz, or not I3D weights.
    """
    if not os.path.isfile(path):
        raise ValueError('no such file: {}'.format(path))
    try:
        npz = numpy.load(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError('{} is not a readable .npz file ({})'.format(path, e))
    if not hasattr(npz, 'files'):  # a .npy holds one array, no names
        raise ValueError('{} is a .npy array, not an .npz of I3D '
                         'weights'.format(path))
    with npz:
        missing = [k for k in (STEM_WEIGHT_KEY, LOGITS_BIAS_KEY)
                   if k not in npz.files]
        if missing:
            raise ValueError(
                '{} is not I3D weights: it has no {} (convert DeepMind '
                'checkpoints with examples/i3d/tfckpt2npz.py)'.format(
                    path, ', '.join(missing)))
        stem_shape = npz[STEM_WEIGHT_KEY].shape
        n_class = int(npz[LOGITS_BIAS_KEY].shape[0])
    return {'n_class': n_class, 'modality': modality_of_channels(stem_shape[1])}


def resolve_pretrained_model(pretrained_model, n_class=None, modality=None):
    """Resolves ``pretrained_model`` and checks it against the arguments.

    Args:
        pretrained_model (str): A name of
            :data:`~chainercv_i3d.pretrained.MODELS` (downloaded and
            converted on first use), the path of an I3D ``.npz``, or
            ``None``.
        n_class (int): The class count asked for, or ``None``.
        modality (str): The modality asked for, or ``None``.

    Returns:
        tuple: ``(n_class, modality, path)``; what was ``None`` is taken from
        the weights, or from the defaults (400, ``'rgb'``) without weights.

    Raises:
        ValueError: The name is unknown, the weights are missing or
            unreadable, or they disagree with an explicit ``n_class`` or
            ``modality`` (``'n_class must be 400'``).
        CacheError: A named model had to be downloaded and could not be.

    Example:

        >>> n_class, modality, path = resolve_pretrained_model(
        ...     'rgb_scratch_kinetics600')
        >>> n_class, modality, os.path.basename(path)
        (600, 'rgb', 'rgb_scratch_kinetics600.npz')
    """
    if pretrained_model is None:
        return (DEFAULT_N_CLASS if n_class is None else n_class,
                DEFAULT_MODALITY if modality is None else modality, None)
    # Imported here: models imports the datasets package, whose imports
    # reach chainercv_i3d.links.i3d, which imports this module.
    from chainercv_i3d.pretrained import models
    name = str(pretrained_model)
    if name in models.MODELS:
        return _resolve_name(models, name, n_class, modality)
    if not os.path.isfile(name):
        raise ValueError(
            'pretrained_model {!r} is neither a file nor a pretrained model '
            'name: pass one of {}, or the path of an .npz made by '
            'examples/i3d/tfckpt2npz.py'.format(
                name, ', '.join(sorted(models.MODELS))))
    found = describe_npz(name)
    _check_agreement(found, n_class, modality, name)
    return found['n_class'], found['modality'], name


def _check_agreement(found, n_class, modality, source):
    for key, asked in (('n_class', n_class), ('modality', modality)):
        if asked is not None and asked != found[key]:
            raise ValueError('{} must be {!r}: {} holds weights for {} = {!r} '
                             '(leave {} out to take it from the weights)'
                             .format(key, found[key], source, key, found[key],
                                     key))


def _resolve_name(models, name, n_class, modality):
    entry = models.MODELS[name]
    # Checked before anything is downloaded.
    _check_agreement(entry, n_class, modality,
                     'pretrained model {!r}'.format(name))
    path = models.get_model_path(name)
    try:
        found = describe_npz(path)
    except ValueError as e:
        raise ValueError('{}: delete it to have {} built again'.format(
            e, name))
    if any(found[key] != entry[key] for key in found):
        raise ValueError(
            '{} holds {} weights for {} classes, not those of {} ({}, {} '
            'classes): delete it to have it built again'.format(
                path, found['modality'], found['n_class'], name,
                entry['modality'], entry['n_class']))
    return entry['n_class'], entry['modality'], path
