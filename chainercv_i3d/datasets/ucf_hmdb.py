"""UCF101 and HMDB51: the ``'ucf101'`` and ``'hmdb51'`` list readers.

Both datasets come with three train/test splits ("folds"); a list reader
reads one part of one of them, named by the subset and the split number:
``split='train1'`` ... ``'test3'`` (:func:`transfer_split` builds the name
from the script flags ``--subset train --split 1``).

==========  ================================================================
``ucf101``  ``annotations``: the folder of the release's ``classInd.txt``,
            ``trainlist0{1,2,3}.txt`` and ``testlist0{1,2,3}.txt``; videos
            ``<Class>/v_<Class>_gXX_cYY.avi`` below ``video_dir`` as the
            lists name them
``hmdb51``  ``annotations``: the folder of the release's 153 files
            ``<class>_test_split{1,2,3}.txt``; videos ``<class>/<name>.avi``
            below ``video_dir`` (one folder per class, as the per-class
            archives unpack)
==========  ================================================================

The formats, as the releases write them:

* UCF101 ``classInd.txt``: ``1 ApplyEyeMakeup`` ... ``101 YoYo``, the
  classes numbered from 1 (label = number - 1, so the labels follow the
  file); ``trainlist01.txt``: ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi
  1``, the video and its class number; ``testlist01.txt``: the video only,
  its class the folder.
* HMDB51 ``brush_hair_test_split1.txt``: ``<video>.avi <flag>`` per video of
  the class, flag ``1`` training, ``2`` testing, ``0`` not used in that
  split (the release's ``split_readme.txt``); unused videos are left out.
  HMDB51 ships no class index: the labels are the class names in sorted
  (alphabetical) order, our documented choice.

The video id is the video's path without its extension
(``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01``, ``brush_hair/<name>``); a
video listed but absent is recorded with ``path=None`` (counted and named
by :class:`~chainercv_i3d.datasets.video_list.VideoList`).

Example:
    >>> from chainercv_i3d.datasets.video_list import read_video_list
    >>> videos = read_video_list('ucf101', 'UCF-101/', 'ucfTrainTestlist/',
    ...                          split=transfer_split('train', 1))
    >>> videos.n_class
    101
"""

import os
import re

from chainercv_i3d.datasets.video_list import check_release_arguments
from chainercv_i3d.datasets.video_list import register_video_list
from chainercv_i3d.datasets.video_list import VideoRecord

# The readers of this module: their split is a subset and a number.
TRANSFER_DATASETS = ('ucf101', 'hmdb51')
TRANSFER_SUBSETS = ('train', 'test')
TRANSFER_SPLIT_NUMBERS = (1, 2, 3)
TRANSFER_SPLITS = tuple('{}{}'.format(subset, number)
                        for number in TRANSFER_SPLIT_NUMBERS
                        for subset in TRANSFER_SUBSETS)
UCF101_CLASS_INDEX = 'classInd.txt'
# HMDB51 split files' flags: 1 training, 2 testing, 0 unused.
HMDB51_FLAGS = {'train': '1', 'test': '2'}
_HMDB51_FILE = re.compile(r'^(.+)_test_split([123])\.txt$')


def transfer_split(subset, number):
    """The reader's ``split`` for ``subset`` of split ``number``.

    Example:
        >>> transfer_split('test', 2)
        'test2'

    Raises:
        ValueError: ``subset`` not in :data:`TRANSFER_SUBSETS` or ``number``
            not in :data:`TRANSFER_SPLIT_NUMBERS`.
    """
    if subset not in TRANSFER_SUBSETS:
        raise ValueError('the subset must be train or test, not {!r}'.format(
            subset))
    if number not in TRANSFER_SPLIT_NUMBERS:
        raise ValueError('the split number must be 1, 2 or 3, not {!r}'
                         .format(number))
    return '{}{}'.format(subset, number)


def parse_transfer_split(dataset, split):
    """``(subset, number)`` of a reader's ``split`` (``'train1'``).

    Raises:
        ValueError: Not one of :data:`TRANSFER_SPLITS`.
    """
    if split not in TRANSFER_SPLITS:
        raise ValueError(
            'the {} video list needs a split: one of {} (with '
            'precompute_frames_flow.py: --split 1|2|3 --subset train|test), '
            'not {!r}'.format(dataset, ', '.join(TRANSFER_SPLITS), split))
    return split[:-1], int(split[-1])


def _lines(path):
    """``(line number, text)`` of the non-blank lines, stripped (the
    releases end lines with CRLF and trailing spaces)."""
    if not os.path.isfile(path):
        raise ValueError('no split file {}: the annotation folder must hold '
                         'the files of the release'.format(path))
    with open(path, encoding='utf-8') as f:
        return [(i, line.strip()) for i, line in enumerate(f, 1)
                if line.strip()]


def _record(video_dir, relative, label):
    path = os.path.join(video_dir, *relative.split('/'))
    return VideoRecord(os.path.splitext(relative)[0], path
                       if os.path.isfile(path) else None, label)


# UCF101 ---------------------------------------------------------------------

def read_ucf101_class_names(annotation_dir):
    """The 101 class names of ``classInd.txt``, in its order.

    Raises:
        ValueError: The file is missing, a line is not ``<number> <name>``,
            or the numbers are not 1, 2, ... in order.
    """
    path = os.path.join(annotation_dir, UCF101_CLASS_INDEX)
    names = []
    for number, text in _lines(path):
        fields = text.split()
        if len(fields) != 2 or fields[0] != str(len(names) + 1):
            raise ValueError(
                '{}:{}: {!r} is not "{} <class name>" (the classes are '
                'numbered 1, 2, ... in order)'.format(
                    path, number, text, len(names) + 1))
        names.append(fields[1])
    if not names:
        raise ValueError('{} lists no class'.format(path))
    return tuple(names)


def read_ucf101_split(annotation_dir, subset, number, label_names):
    """``(relative video path, label)`` of one UCF101 list, in its order.

    The label is the index of the video's class folder in
    ``label_names``; a train list's class number must agree with it.

    Raises:
        ValueError: The file is missing, or a line names an unknown class
            or a class number other than its folder's.
    """
    path = os.path.join(annotation_dir, '{}list{:02d}.txt'.format(
        subset, number))
    index = {name: i for i, name in enumerate(label_names)}
    entries = []
    for line_number, text in _lines(path):
        fields = text.split()
        relative = fields[0].replace('\\', '/')
        folder = relative.split('/')[0]
        if len(fields) > 2 or '/' not in relative or folder not in index:
            raise ValueError(
                '{}:{}: {!r} is not "<Class>/<video>.avi[ <number>]" with a '
                'class of {}'.format(path, line_number, text,
                                     UCF101_CLASS_INDEX))
        label = index[folder]
        if len(fields) == 2 and fields[1] != str(label + 1):
            raise ValueError(
                '{}:{}: class number {} but the folder {} is class {} in {}'
                .format(path, line_number, fields[1], folder, label + 1,
                        UCF101_CLASS_INDEX))
        entries.append((relative, label))
    return entries


def read_ucf101_list(video_dir, annotations=None, split=None,
                     label_names=None):
    """The ``'ucf101'`` reader: one list of the release (see the module).

    Args:
        video_dir (str): The folder of the class folders (``UCF-101/``).
        annotations (str): The folder of ``classInd.txt`` and the lists
            (``ucfTrainTestlist/``).
        split (str): ``'train1'`` ... ``'test3'``.
        label_names: Not taken: ``classInd.txt`` is the vocabulary.

    Returns:
        tuple: ``(label_names, records)``, records in the list's order.

    Raises:
        ValueError: A missing folder or file, a bad split, a malformed
            line, or ``label_names`` given.
    """
    check_release_arguments('ucf101', video_dir, annotations, label_names,
                            'classInd.txt and trainlist01.txt')
    subset, number = parse_transfer_split('ucf101', split)
    names = read_ucf101_class_names(annotations)
    entries = read_ucf101_split(annotations, subset, number, names)
    return names, [_record(video_dir, relative, label)
                   for relative, label in entries]


# HMDB51 ---------------------------------------------------------------------

def hmdb51_split_files(annotation_dir, number):
    """``{class name: path}`` of the split files of split ``number``.

    Raises:
        ValueError: The folder holds no ``<class>_test_split<number>.txt``.
    """
    found = {}
    for name in sorted(os.listdir(annotation_dir)):
        match = _HMDB51_FILE.match(name)
        if match and match.group(2) == str(number):
            found[match.group(1)] = os.path.join(annotation_dir, name)
    if not found:
        raise ValueError(
            '{} holds no <class>_test_split{}.txt: give the folder of '
            "HMDB51's split files (testTrainMulti_7030_splits)".format(
                annotation_dir, number))
    return found


def read_hmdb51_split_file(path, subset):
    """The videos of ``subset`` in one class's split file, in its order;
    the videos flagged 0 (unused in this split) are left out.

    Raises:
        ValueError: A line is not ``<video>.avi <0|1|2>``.
    """
    flag = HMDB51_FLAGS[subset]
    videos = []
    for number, text in _lines(path):
        fields = text.split()
        if len(fields) != 2 or fields[1] not in ('0', '1', '2'):
            raise ValueError('{}:{}: {!r} is not "<video>.avi <0|1|2>"'
                             .format(path, number, text))
        if fields[1] == flag:
            videos.append(fields[0])
    return videos


def read_hmdb51_list(video_dir, annotations=None, split=None,
                     label_names=None):
    """The ``'hmdb51'`` reader: one subset of one split (see the module).

    Args:
        video_dir (str): The folder of the class folders.
        annotations (str): The folder of the ``<class>_test_split<k>.txt``
            files.
        split (str): ``'train1'`` ... ``'test3'``.
        label_names: Not taken: the classes are those of the split files,
            sorted.

    Returns:
        tuple: ``(label_names, records)``: records by class, each class in
        its file's order.

    Raises:
        ValueError: A missing folder, no split file, a bad split, a
            malformed line, or ``label_names`` given.
    """
    check_release_arguments('hmdb51', video_dir, annotations, label_names,
                            'brush_hair_test_split1.txt ...')
    subset, number = parse_transfer_split('hmdb51', split)
    files = hmdb51_split_files(annotations, number)
    names = tuple(sorted(files))
    records = []
    for label, name in enumerate(names):
        records.extend(_record(video_dir, name + '/' + video, label)
                       for video in read_hmdb51_split_file(files[name],
                                                           subset))
    return names, records


register_video_list('ucf101', read_ucf101_list)
register_video_list('hmdb51', read_hmdb51_list)
