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
        pretrained_model (str): Path of an I3D ``.npz``, or ``None``.
        n_class (int): The class count asked for, or ``None``.
        modality (str): The modality asked for, or ``None``.

    Returns:
        tuple: ``(n_class, modality, path)``; what was ``None`` is taken from
        the weights, or from the defaults (400, ``'rgb'``) without weights.

    Raises:
        ValueError: The weights are missing or unreadable, or disagree with an
            explicit ``n_class`` or ``modality`` (``'n_class must be 400'``).
    """
    if pretrained_model is None:
        return (DEFAULT_N_CLASS if n_class is None else n_class,
                DEFAULT_MODALITY if modality is None else modality, None)
    path = str(pretrained_model)
    if not os.path.isfile(path):
        raise ValueError(
            'pretrained_model {!r} is not a file: pass the path of an .npz '
            'made by examples/i3d/tfckpt2npz.py from a DeepMind '
            'checkpoint'.format(path))
    found = describe_npz(path)
    for name, asked in (('n_class', n_class), ('modality', modality)):
        if asked is not None and asked != found[name]:
            raise ValueError('{} must be {!r}: {} holds weights for {} = '
                             '{!r}'.format(name, found[name], path, name,
                                           found[name]))
    return found['n_class'], found['modality'], path
