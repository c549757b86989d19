"""Something-Something V2: the ``'something_something_v2'`` list reader.

It adds one reader to those of :mod:`chainercv_i3d.datasets.video_list`:

==========================  ================================================
``something_something_v2``  the official JSON files (``annotations``: their
                            folder) of one ``split``; videos ``<id>.webm``
                            in one flat folder; the test split unlabelled
==========================  ================================================

The annotation folder holds the files of the release:

* ``something-something-v2-labels.json``: ``{"Approaching something with
  your camera": "0", ...}``, the 174 class names and their labels (the
  alphabetical order of the names);
* ``something-something-v2-train.json``, ``-validation.json``: lists of
  ``{"id": "78687", "label": "holding potato next to vicks vaporub bottle",
  "template": "Holding [something] next to [something]", "placeholders":
  [...]}``. The class is the template without its brackets, case kept
  (:func:`ssv2_class_name`); ``label`` is the sentence filled in with the
  objects, not the class;
* ``something-something-v2-test.json``: ``[{"id": "1420"}, ...]``, no
  classes.

Example:
    >>> from chainercv_i3d.datasets.video_list import read_video_list
    >>> videos = read_video_list('something_something_v2', 'webm/',
    ...                          'annotations/', split='validation')
    >>> videos.n_class, videos[0].label
    (174, ...)
"""

import json
import os

from chainercv_i3d.datasets.video_list import check_release_arguments
from chainercv_i3d.datasets.video_list import is_video_file
from chainercv_i3d.datasets.video_list import register_video_list
from chainercv_i3d.datasets.video_list import UNLABELLED
from chainercv_i3d.datasets.video_list import VideoRecord

SSV2_SPLITS = ('train', 'validation', 'test')
SSV2_LABELS_NAME = 'something-something-v2-labels.json'
# Templates shown in the error when the annotations name unknown classes.
_N_SHOWN = 5


def ssv2_annotation_path(annotation_dir, split):
    """The JSON file of ``split`` (one of :data:`SSV2_SPLITS`) in
    ``annotation_dir``."""
    return os.path.join(annotation_dir,
                        'something-something-v2-{}.json'.format(split))


def ssv2_class_name(template):
    """The class of a template: its brackets removed, case kept.

    Example:
        >>> ssv2_class_name('[Something] falling like a feather or paper')
        'Something falling like a feather or paper'
    """
    return template.replace('[', '').replace(']', '')


def _load_json(path, what):
    if not os.path.isfile(path):
        raise ValueError('no {} file {} (the annotation folder must hold '
                         'the JSON files of the Something-Something V2 '
                         'release)'.format(what, path))
    with open(path, encoding='utf-8') as f:
        try:
            return json.load(f)
        except ValueError as e:
            raise ValueError('{} is not valid JSON: {}'.format(path, e))


def _label_index_value(value):
    # The release writes the labels as strings ("0"); ints are read too.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def read_ssv2_label_names(annotation_dir):
    """Reads the class names, in label order, from the labels file.

    Args:
        annotation_dir (str): The folder holding :data:`SSV2_LABELS_NAME`.

    Returns:
        tuple of str: The names; ``names[label]`` is the class of
        ``label``.

    Raises:
        ValueError: The file is missing or not JSON, is not an object of
            names to labels, or its labels are not ``0 .. n - 1`` each once.
    """
    path = os.path.join(annotation_dir, SSV2_LABELS_NAME)
    labels = _load_json(path, 'labels')
    if not isinstance(labels, dict) or not labels:
        raise ValueError('{} must be a non-empty JSON object of class names '
                         'to labels ({{"Approaching something with your '
                         'camera": "0", ...}})'.format(path))
    by_label = {}
    for name, value in labels.items():
        label = _label_index_value(value)
        if label is None:
            raise ValueError('{}: the label of {!r} is {!r}, not a '
                             'non-negative integer'.format(path, name, value))
        if label in by_label:
            raise ValueError('{}: {!r} and {!r} both have the label {}'
                             .format(path, by_label[label], name, label))
        by_label[label] = name
    if sorted(by_label) != list(range(len(by_label))):
        absent = sorted(set(range(len(by_label))) - set(by_label))
        raise ValueError('{}: the labels of its {} classes must be 0 to {}; '
                         '{} is not used'.format(path, len(by_label),
                                                 len(by_label) - 1,
                                                 absent[0]))
    return tuple(by_label[i] for i in range(len(by_label)))


def _check_entry(path, i, entry, keys):
    if not isinstance(entry, dict):
        raise ValueError('{}: entry {} is {!r}, not an object with {}'.format(
            path, i, entry, ' and '.join(repr(k) for k in keys)))
    for key in keys:
        if key not in entry:
            raise ValueError('{}: entry {} ({!r}) has no {!r}'.format(
                path, i, entry, key))
    video_id = entry['id']
    if isinstance(video_id, bool) or not isinstance(video_id, (str, int)):
        raise ValueError('{}: entry {} has the id {!r}, not a string'.format(
            path, i, video_id))
    if 'template' in keys and not isinstance(entry['template'], str):
        raise ValueError('{}: entry {} (id {}) has the template {!r}, not a '
                         'string'.format(path, i, video_id,
                                         entry['template']))


def read_ssv2_annotations(annotation_dir, split):
    """Reads the entries of one split's JSON file, checked.

    Args:
        annotation_dir (str): The annotation folder.
        split (str): One of :data:`SSV2_SPLITS`.

    Returns:
        list of dict: The entries in the file's order, each with ``'id'``
        (a str) and, except for ``'test'``, ``'template'``.

    Raises:
        ValueError: A bad split, a missing or malformed file (not a list
            of objects, an entry without ``id`` or ``template``), or an id
            listed twice.
    """
    if split not in SSV2_SPLITS:
        raise ValueError('split must be one of {} for Something-Something '
                         'V2, not {!r}'.format(', '.join(SSV2_SPLITS),
                                               split))
    path = ssv2_annotation_path(annotation_dir, split)
    entries = _load_json(path, '{} annotation'.format(split))
    if not isinstance(entries, list):
        raise ValueError('{} must hold a JSON list of videos, not a {}'
                         .format(path, type(entries).__name__))
    keys = ('id',) if split == 'test' else ('id', 'template')
    seen = set()
    checked = []
    for i, entry in enumerate(entries):
        _check_entry(path, i, entry, keys)
        entry = dict(entry, id=str(entry['id']))
        if entry['id'] in seen:
            raise ValueError('{}: the id {} is listed twice'.format(
                path, entry['id']))
        seen.add(entry['id'])
        checked.append(entry)
    return checked


def _labels_of(entries, label_names, path):
    index = {name: i for i, name in enumerate(label_names)}
    classes = [ssv2_class_name(e['template']) for e in entries]
    unknown = []
    for name in classes:
        if name not in index and name not in unknown:
            unknown.append(name)
    if unknown:
        more = len(unknown) - _N_SHOWN
        raise ValueError(
            '{}: {} template(s) not in {}: {}{} (brackets removed, case '
            'kept); use the labels file of the same release'.format(
                path, len(unknown), SSV2_LABELS_NAME,
                ', '.join(repr(n) for n in unknown[:_N_SHOWN]),
                ' and {} more'.format(more) if more > 0 else ''))
    return [index[name] for name in classes]


def _index_flat_folder(video_dir):
    # The first file in sorted order where a stem has several extensions.
    found = {}
    for name in sorted(os.listdir(video_dir)):
        path = os.path.join(video_dir, name)
        if is_video_file(name) and os.path.isfile(path):
            found.setdefault(os.path.splitext(name)[0], path)
    return found


def _check_arguments(video_dir, annotations, split, label_names):
    check_release_arguments('something_something_v2', video_dir, annotations,
                            label_names, SSV2_LABELS_NAME + ' and the split '
                            'files')
    if split is None:
        raise ValueError('the something_something_v2 video list needs a '
                         'split: {}'.format(', '.join(SSV2_SPLITS)))


def read_ssv2_list(video_dir, annotations=None, split=None,
                   label_names=None):
    """The ``'something_something_v2'`` reader: one split of the release.

    Reads only ``split``'s JSON file (and, for a labelled split, the labels
    file). The video id is the entry's ``id``; its video is
    ``video_dir/<id>.webm`` (any extension of
    :data:`~chainercv_i3d.datasets.video_list.VIDEO_EXTENSIONS`, in the
    folder itself), ``path=None`` when absent. The label is the index of
    the template's class (:func:`ssv2_class_name`) in the labels file; the
    ``label`` field (the filled-in sentence) is not read. The test split is
    unlabelled: ``label=-1``, no class names.

    Args:
        video_dir (str): The folder of the ``<id>.webm`` files.
        annotations (str): The annotation folder (see the module).
        split (str): ``'train'``, ``'validation'`` or ``'test'``.
        label_names: Not taken: the labels file is the vocabulary.

    Returns:
        tuple: ``(label_names, records)``, records in the file's order.

    Raises:
        ValueError: A missing folder or file, no or a bad split, a
            malformed file, a template not in the labels file (the message
            lists them), or ``label_names`` given.
    """
    _check_arguments(video_dir, annotations, split, label_names)
    entries = read_ssv2_annotations(annotations, split)
    if split == 'test':
        names, labels = (), [UNLABELLED] * len(entries)
    else:
        names = read_ssv2_label_names(annotations)
        labels = _labels_of(entries, names,
                            ssv2_annotation_path(annotations, split))
    files = _index_flat_folder(video_dir)
    records = [VideoRecord(e['id'], files.get(e['id']), label)
               for e, label in zip(entries, labels)]
    return names, records


register_video_list('something_something_v2', read_ssv2_list)
