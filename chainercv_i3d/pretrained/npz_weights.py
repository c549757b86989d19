"""The I3D ``.npz``: weights as ``save_npz`` writes them, plus their preset.

An I3D ``.npz`` holds the arrays of
``chainer.serializers.save_npz(path, I3D(...))`` (keys and shapes:
:func:`chainercv_i3d.architecture.npz_array_shapes`) and, when written by
:func:`save_model_npz`, the key :data:`PRESET_KEY`: the
:class:`~chainercv_i3d.presets.Preset` of the weights as JSON, with their
class names, in a numpy unicode scalar (readable without pickle). Chainer's
``load_npz`` reads only the keys of the link, so it ignores that one.
"""

import os

import chainer
import numpy

from chainercv_i3d.architecture import npz_array_shapes
from chainercv_i3d.files import atomic_path
from chainercv_i3d.files import MODEL_ADVICE
from chainercv_i3d.files import reading_npz
from chainercv_i3d.label_names import kinetics400_label_names
from chainercv_i3d.label_names import kinetics600_label_names
from chainercv_i3d.label_names import numbered_label_names
from chainercv_i3d.modality import modality_of_channels
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.presets import Preset
from chainercv_i3d.presets import preset_from_json

# Keys of chainer.serializers.save_npz(path, I3D(...)) that fix its shape.
STEM_WEIGHT_KEY = 'conv3d_1a_7x7/conv/W'
LOGITS_BIAS_KEY = 'logits/conv/b'
# Keys that are not weights start with this; the preset is one of them.
META_PREFIX = '_meta/'
PRESET_KEY = META_PREFIX + 'preset'

_KINETICS_LABEL_NAMES = {400: kinetics400_label_names,
                         600: kinetics600_label_names}


def default_preset(n_class):
    """Returns the preset of weights that store none (DeepMind's converted
    checkpoints, an ``.npz`` saved with ``chainer.serializers.save_npz``).

    Args:
        n_class (int): The class count of the weights.

    Returns:
        Preset: :data:`~chainercv_i3d.presets.DEEPMIND_KINETICS` with the
        Kinetics-400 or -600 class names for 400 or 600 classes, else
        ``class_0``, ``class_1``, ...
    """
    label_names = _KINETICS_LABEL_NAMES.get(n_class) \
        or numbered_label_names(n_class)
    return DEEPMIND_KINETICS.replace(label_names=tuple(label_names))


def check_preset_fits(preset, n_class):
    """Checks that ``preset`` can describe weights of ``n_class`` classes.

    Raises:
        ValueError: ``preset`` is not a :class:`Preset`, has no
            ``label_names``, or names another number of classes.
    """
    if not isinstance(preset, Preset):
        raise ValueError('preset must be a chainercv_i3d.presets.Preset, not '
                         'a {}'.format(type(preset).__name__))
    if preset.label_names is None:
        raise ValueError(
            'preset {!r} has no label_names: weights of {} classes need {} '
            'class names (preset.replace(label_names=...))'.format(
                preset.name, n_class, n_class))
    if len(preset.label_names) != n_class:
        raise ValueError(
            'preset {!r} names {} classes, but the weights have {}: give it '
            'the {} class names of this model (preset.replace('
            'label_names=...))'.format(preset.name, len(preset.label_names),
                                       n_class, n_class))


def model_arrays(model):
    """Returns ``{npz key: numpy array}`` of a link, as ``save_npz`` has them.

    The arrays are the link's own (not copies) when it is on the CPU.
    """
    serializer = chainer.serializers.DictionarySerializer()
    serializer.save(model)
    return serializer.target


def check_npz_arrays(arrays, source='the dict of arrays'):
    """Checks that ``arrays`` are the weights of an I3D, key by key.

    Keys under :data:`META_PREFIX` are not weights and are not checked.

    Args:
        arrays (dict): ``{npz key: array}``.
        source (str): What the arrays are, for the error message.

    Returns:
        dict: ``{'n_class': int, 'modality': 'rgb' or 'flow'}``.

    Raises:
        ValueError: A key is missing or unexpected, or an array has another
            shape than :func:`~chainercv_i3d.architecture.npz_array_shapes`
            says.
    """
    weights = {key: value for key, value in arrays.items()
               if not key.startswith(META_PREFIX)}
    layout = _layout(source, {key: numpy.shape(weights[key])
                              for key in (STEM_WEIGHT_KEY, LOGITS_BIAS_KEY)
                              if key in weights})
    expected = npz_array_shapes(layout['n_class'], layout['modality'])
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ValueError(
            '{} does not hold the weights of an I3D ({}, {} classes): {} '
            'missing '
            '({}), {} unexpected ({})'.format(
                source, layout['modality'], layout['n_class'], len(missing),
                ', '.join(missing[:3]) or '-', len(unexpected),
                ', '.join(unexpected[:3]) or '-'))
    for key, shape in expected.items():
        if tuple(numpy.shape(weights[key])) != shape:
            raise ValueError('{}: {} has shape {}, an I3D ({}, {} classes) '
                             'has {}'.format(source, key,
                                             numpy.shape(weights[key]),
                                             layout['modality'],
                                             layout['n_class'], shape))
    return layout


def _layout(source, shapes):
    # Class count and modality from the two arrays that fix them.
    missing = [key for key in (STEM_WEIGHT_KEY, LOGITS_BIAS_KEY)
               if key not in shapes]
    if missing:
        raise ValueError(
            '{} is not I3D weights: there is no {} (convert DeepMind '
            'checkpoints with examples/i3d/tfckpt2npz.py)'.format(
                source, ', '.join(missing)))
    stem, bias = shapes[STEM_WEIGHT_KEY], shapes[LOGITS_BIAS_KEY]
    if len(stem) != 5 or len(bias) != 1:
        raise ValueError('{} is not I3D weights: {} has shape {} and {} {} '
                         '(expected 5 and 1 axes)'.format(
                             source, STEM_WEIGHT_KEY, stem,
                             LOGITS_BIAS_KEY, bias))
    try:
        modality = modality_of_channels(stem[1])
    except ValueError as e:
        raise ValueError('{} is not I3D weights: {}'.format(source, e))
    return {'n_class': int(bias[0]), 'modality': modality}


def save_model_npz(model_or_arrays, path, preset=None):
    """Writes I3D weights and their preset to an ``.npz``, atomically.

    The file holds what ``chainer.serializers.save_npz`` writes for the
    link (uncompressed) and :data:`PRESET_KEY`; it appears only whole.

    Args:
        model_or_arrays: An :class:`~chainercv_i3d.links.I3D`, or its
            ``{npz key: array}`` (a converter's output).
        path (str): The ``.npz`` to write (missing folders are created).
        preset (Preset): How the weights expect their input, with one class
            name per class; ``None``: the model's own ``preset`` (a link
            only).

    Raises:
        ValueError: The arrays are not I3D weights, or the preset does not
            name as many classes as the weights have.

    Example:

        >>> save_model_npz(model, 'finetuned.npz', DEEPMIND_KINETICS.replace(
        ...     label_names=('dribbling', 'passing', 'shooting')))
    """
    if preset is None:
        if isinstance(model_or_arrays, dict):
            raise ValueError('save_model_npz: arrays carry no preset; pass '
                             'preset=')
        preset = model_or_arrays.preset
    arrays = model_or_arrays if isinstance(model_or_arrays, dict) \
        else model_arrays(model_or_arrays)
    layout = check_npz_arrays(arrays)
    check_preset_fits(preset, layout['n_class'])
    content = {key: value for key, value in arrays.items()
               if not key.startswith(META_PREFIX)}
    content[PRESET_KEY] = numpy.array(preset.to_json())
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        numpy.savez(f, **content)


def describe_npz(path, advice=MODEL_ADVICE):
    """Reads the class count, modality and preset of an I3D ``.npz``.

    Args:
        path (str): An ``.npz`` of I3D weights (written by
            :func:`save_model_npz`, ``examples/i3d/tfckpt2npz.py`` or
            ``chainer.serializers.save_npz``).
        advice (str): What to do about a damaged file, for the message.

    Returns:
        dict: ``{'n_class': int, 'modality': 'rgb' or 'flow', 'preset':
        Preset}``, the preset with its ``label_names``: the stored one, else
        :func:`default_preset`.

    Raises:
        ValueError: The file is missing, not an npz, not I3D weights, or its
            stored preset is unreadable or names another number of classes.
    """
    if not os.path.isfile(path):
        raise ValueError('no such file: {}'.format(path))
    with reading_npz(path, advice):
        npz = numpy.load(path, allow_pickle=False)
        if not hasattr(npz, 'files'):  # a .npy holds one array, no names
            raise ValueError('{} is a .npy array, not an .npz of I3D '
                             'weights'.format(path))
        with npz:
            shapes = {key: npz[key].shape
                      for key in (STEM_WEIGHT_KEY, LOGITS_BIAS_KEY)
                      if key in npz.files}
            preset_json = str(npz[PRESET_KEY][()]) \
                if PRESET_KEY in npz.files else None
    found = _layout(path, shapes)
    if preset_json is None:
        found['preset'] = default_preset(found['n_class'])
    else:
        found['preset'] = _stored_preset(preset_json, path, found['n_class'])
    return found


def load_model_npz(path, link, advice=MODEL_ADVICE):
    """``chainer.serializers.load_npz(path, link)``, with a damaged file,
    one that is not an ``.npz`` or lacks a parameter of ``link`` said in one
    line.

    Raises:
        ValueError: Naming ``path``, what is wrong and ``advice``.
    """
    with reading_npz(path, advice):
        chainer.serializers.load_npz(path, link)


def _stored_preset(preset_json, path, n_class):
    try:
        preset = preset_from_json(preset_json)
    except (ValueError, TypeError, AttributeError) as e:  # JSON or fields
        raise ValueError('{} stores an unreadable preset under {} ({}): '
                         'write the file again with save_model_npz'.format(
                             path, PRESET_KEY, e))
    try:
        check_preset_fits(preset, n_class)
    except ValueError as e:
        raise ValueError('{}: its stored {}'.format(path, e))
    return preset
