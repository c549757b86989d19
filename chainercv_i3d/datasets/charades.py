"""Charades: the ``'charades'`` list reader (multi-label, with intervals).

It adds one reader to those of :mod:`chainercv_i3d.datasets.video_list`:

============  ================================================================
``charades``  one of the release's CSVs (``annotations``:
              ``Charades_v1_train.csv`` or ``Charades_v1_test.csv``) and the
              class list beside it; videos ``<id>.mp4`` below ``video_dir``
============  ================================================================

The release (``Charades/`` in the annotation archive) holds:

* ``Charades_v1_train.csv``, ``Charades_v1_test.csv``: one row per video
  with the columns ``id,subject,scene,quality,relevance,verified,script,
  objects,descriptions,actions,length``. Only ``id`` and ``actions`` are
  read: ``actions`` is ``"c092 11.90 21.20;c147 0.00 12.60"``, each action
  its class code, start and end in seconds; actions may overlap; the
  field is empty for a video without one. The official evaluation
  (``Charades_v1_classify.m``) reads the same two columns, and gives a
  video the classes of all its actions.
* ``Charades_v1_classes.txt``: ``c000 Holding some clothes``, one class a
  line, 157 of them; the label of a class is its line's index.

A video's record has ``label=-1`` and ``actions``, a tuple of ``(label,
start, end)``; its label set is their labels (empty for a video without an
action). The split is the CSV file itself: no ``split``.

Example:
    >>> from chainercv_i3d.datasets.video_list import read_video_list
    >>> videos = read_video_list('charades', 'Charades_v1_480/',
    ...                          'Charades/Charades_v1_test.csv')
    >>> videos.n_class, videos[0].actions
    (157, ((92, 11.9, 21.2), (147, 0.0, 12.6)))
"""

import os

from chainercv_i3d.datasets.video_list import check_video_dir
from chainercv_i3d.datasets.video_list import index_video_files
from chainercv_i3d.datasets.video_list import read_annotation_csv
from chainercv_i3d.datasets.video_list import register_video_list
from chainercv_i3d.datasets.video_list import UNLABELLED
from chainercv_i3d.datasets.video_list import VideoRecord

CHARADES_CLASSES_NAME = 'Charades_v1_classes.txt'
CHARADES_COLUMNS = ('id', 'actions')


def charades_classes_path(csv_path):
    """Where the class list of an annotation CSV is: beside it."""
    return os.path.join(os.path.dirname(os.path.abspath(csv_path)),
                        CHARADES_CLASSES_NAME)


def read_charades_classes(path):
    """Reads ``Charades_v1_classes.txt``: class codes and names in order.

    Returns:
        tuple: ``(codes, names)``, two tuples of str; ``codes[label]`` is
        ``'c000'``-like, ``names[label]`` the class name.

    Raises:
        ValueError: The file is missing, a line is not ``code name``, or a
            code is listed twice.
    """
    if not os.path.isfile(path):
        raise ValueError('no Charades class list {} (it comes with the '
                         'annotation CSVs; put it beside them)'.format(path))
    codes, names = [], []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.strip().split(None, 1)
            if len(parts) != 2:
                raise ValueError('{}:{}: {!r} is not "code name" (c000 '
                                 'Holding some clothes)'.format(
                                     path, number, line.strip()))
            if parts[0] in codes:
                raise ValueError('{}:{}: class {} is listed twice'.format(
                    path, number, parts[0]))
            codes.append(parts[0])
            names.append(parts[1])
    if not codes:
        raise ValueError('{} lists no class'.format(path))
    return tuple(codes), tuple(names)


def parse_actions(text, label_of, where):
    """The actions of one CSV row: ``(label, start, end)`` tuples.

    Args:
        text (str): The ``actions`` field (``"c092 11.90 21.20;..."``, may
            be empty).
        label_of (dict): Class code -> label.
        where (str): The file and video, for messages.

    Raises:
        ValueError: An action that is not ``code start end``, an unknown
            code, or an end before its start.
    """
    actions = []
    for item in text.split(';'):
        if not item.strip():
            continue
        parts = item.split()
        try:
            if len(parts) != 3:
                raise ValueError
            code, start, end = parts[0], float(parts[1]), float(parts[2])
        except ValueError:
            raise ValueError('{}: action {!r} is not "code start end" (c092 '
                             '11.90 21.20)'.format(where, item.strip()))
        if code not in label_of:
            raise ValueError('{}: class {} is not in {}'.format(
                where, code, CHARADES_CLASSES_NAME))
        if end < start:
            raise ValueError('{}: action {!r} ends before it starts'.format(
                where, item.strip()))
        actions.append((label_of[code], start, end))
    return tuple(actions)


def read_charades_annotations(csv_path, label_of):
    """Reads an annotation CSV: ``[(video_id, actions)]`` in file order.

    Raises:
        ValueError: The file is missing, lacks the ``id`` or ``actions``
            column, lists an id twice, or has a bad action.
    """
    rows, seen = [], set()
    for row in read_annotation_csv(csv_path, CHARADES_COLUMNS, 'Charades',
                                   'id,subject,scene,...,actions,length'):
        video_id = row['id'].strip()
        if video_id in seen:
            raise ValueError('{}: the id {} is listed twice'.format(
                csv_path, video_id))
        seen.add(video_id)
        where = '{} (video {})'.format(csv_path, video_id)
        rows.append((video_id, parse_actions(row['actions'] or '',
                                             label_of, where)))
    return rows


def read_charades_list(video_dir, annotations=None, split=None,
                       label_names=None):
    """The ``'charades'`` reader: one annotation CSV of the release.

    The classes are those of ``Charades_v1_classes.txt`` beside the CSV
    (its names are the label names, unless ``label_names`` renames them,
    same count). The video of id ``X`` is the file of stem ``X`` below
    ``video_dir`` (``Charades_v1_480/X.mp4``), ``path=None`` when absent.

    Returns:
        tuple: ``(label_names, records)``, records in the CSV's order.

    Raises:
        ValueError: No CSV, a missing folder or file, a malformed CSV or
            class list, ``split`` given, or ``label_names`` of another
            length.
    """
    if annotations is None:
        raise ValueError('the charades video list needs the annotation CSV '
                         '(Charades_v1_train.csv or Charades_v1_test.csv)')
    if split is not None:
        raise ValueError('the charades video list takes no split: the CSV '
                         'is the split (Charades_v1_train.csv or '
                         'Charades_v1_test.csv)')
    check_video_dir(video_dir)
    codes, names = read_charades_classes(charades_classes_path(annotations))
    if label_names is not None:
        if len(label_names) != len(codes):
            raise ValueError('{} label_names given, {} lists {} classes'
                             .format(len(label_names), CHARADES_CLASSES_NAME,
                                     len(codes)))
        names = tuple(label_names)
    label_of = {code: label for label, code in enumerate(codes)}
    rows = read_charades_annotations(annotations, label_of)
    files = index_video_files(video_dir)
    records = [VideoRecord(video_id, files.get(video_id), UNLABELLED,
                           actions)
               for video_id, actions in rows]
    return names, records


register_video_list('charades', read_charades_list)
