"""``pretrained_model=`` resolution: a name, a path, or random weights."""

import collections
import os

from chainercv_i3d.files import MODEL_ADVICE
from chainercv_i3d.label_names import numbered_label_names
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.pretrained.models import get_model_path
from chainercv_i3d.pretrained.models import MODELS
from chainercv_i3d.pretrained.npz_weights import describe_npz

DEFAULT_N_CLASS = 400
DEFAULT_MODALITY = 'rgb'

ResolvedModel = collections.namedtuple(
    'ResolvedModel', ('n_class', 'modality', 'path', 'preset'))
ResolvedModel.__doc__ = """What ``pretrained_model`` stands for.

Attributes:
    n_class (int): Number of classes.
    modality (str): ``'rgb'`` or ``'flow'``.
    path (str): The ``.npz`` to load, or ``None`` for random weights.
    preset (chainercv_i3d.presets.Preset): How the weights expect their
        input, with one class name per class.
"""


def random_weights_preset(n_class):
    """The preset of random weights: DeepMind's Kinetics protocol, classes
    named ``class_0``, ``class_1``, ..."""
    return DEEPMIND_KINETICS.replace(label_names=numbered_label_names(n_class))


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
        ResolvedModel: ``(n_class, modality, path, preset)``; what was
        ``None`` is taken from the weights, or from the defaults (400,
        ``'rgb'``, :func:`random_weights_preset`) without weights.

    Raises:
        ValueError: The name is unknown, the weights are missing or
            unreadable, or they disagree with an explicit ``n_class`` or
            ``modality`` (``'n_class must be 400'``).
        CacheError: A named model had to be downloaded and could not be.

    Example:

        >>> resolved = resolve_pretrained_model('rgb_scratch_kinetics600')
        >>> resolved.n_class, resolved.modality, resolved.preset.label_names[0]
        (600, 'rgb', 'abseiling')
    """
    if pretrained_model is None:
        n_class = DEFAULT_N_CLASS if n_class is None else n_class
        return ResolvedModel(
            n_class, DEFAULT_MODALITY if modality is None else modality, None,
            random_weights_preset(n_class))
    name = str(pretrained_model)
    if name in MODELS:
        return _resolve_name(name, n_class, modality)
    if not os.path.isfile(name):
        raise ValueError(
            'pretrained_model {!r} is neither a file nor a pretrained model '
            'name: pass one of {}, or the path of an .npz made by '
            'examples/i3d/tfckpt2npz.py'.format(
                name, ', '.join(sorted(MODELS))))
    found = describe_npz(name)
    _check_agreement(found, n_class, modality, name)
    return ResolvedModel(found['n_class'], found['modality'], name,
                         found['preset'])


def weights_modality(pretrained_model):
    """The stream the weights of a pretrained name or ``.npz`` are for,
    known before anything is downloaded or loaded (so that a model of the
    other stream is refused at once).

    Raises:
        ValueError: Neither a pretrained model name nor a readable I3D
            ``.npz``.
    """
    name = str(pretrained_model)
    if name in MODELS:
        return MODELS[name]['modality']
    return resolve_pretrained_model(name).modality


def damaged_file_advice(pretrained_model):
    """What to do when the ``.npz`` of ``pretrained_model`` (a name or a
    path) is damaged, for the error message."""
    if str(pretrained_model) in MODELS:
        return 'delete it to have {} built again'.format(pretrained_model)
    return MODEL_ADVICE


def _check_agreement(found, n_class, modality, source):
    for key, asked in (('n_class', n_class), ('modality', modality)):
        if asked is not None and asked != found[key]:
            raise ValueError('{} must be {!r}: {} holds weights for {} = {!r} '
                             '(leave {} out to take it from the weights)'
                             .format(key, found[key], source, key, found[key],
                                     key))


def _resolve_name(name, n_class, modality):
    entry = MODELS[name]
    # Checked before anything is downloaded.
    _check_agreement(entry, n_class, modality,
                     'pretrained model {!r}'.format(name))
    path = get_model_path(name)
    advice = damaged_file_advice(name)
    try:
        found = describe_npz(path, advice)
    except ValueError as e:
        # A damaged file's message ends with the advice already; a file of
        # other arrays (not I3D weights) gets it here.
        message = str(e)
        raise ValueError(message if message.endswith(advice)
                         else '{}: {}'.format(message, advice))
    if (found['n_class'], found['modality']) != \
            (entry['n_class'], entry['modality']):
        raise ValueError(
            '{} holds {} weights for {} classes, not those of {} ({}, {} '
            'classes): delete it to have it built again'.format(
                path, found['modality'], found['n_class'], name,
                entry['modality'], entry['n_class']))
    return ResolvedModel(entry['n_class'], entry['modality'], path,
                         entry['preset'])
