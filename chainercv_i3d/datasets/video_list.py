"""Video lists as neutral records, read by list readers chosen by name.

A list reader turns a folder of videos (and an annotation file, where the
dataset has one) into :class:`VideoRecord` values ``(video_id, path,
label)``; every stage (precompute, feature extraction, evaluation) consumes
records, never a dataset's own types. Readers are registered by name:

============  =============================================================
``kinetics``  the official CSV (``annotations``), or a folder per class
              named after the Kinetics-400/600 classes
``folders``   one subfolder per class, any class names (sorted: the labels)
``files``     one video file, or a folder of videos searched recursively;
              unlabelled
============  =============================================================

A new dataset is one more function registered with
:func:`register_video_list`.
"""

import collections
import csv
import os

from chainercv_i3d.label_names import kinetics400_label_names
from chainercv_i3d.label_names import kinetics600_label_names

VIDEO_EXTENSIONS = ('.mp4', '.mkv', '.webm', '.avi', '.mov', '.m4v', '.flv',
                    '.mpg', '.mpeg', '.3gp')
KINETICS_COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end', 'split')
UNLABELLED = -1

VideoRecord = collections.namedtuple(
    'VideoRecord', ('video_id', 'path', 'label', 'actions'),
    defaults=(None,))
VideoRecord.__doc__ = """One video of a list.

Attributes:
    video_id (str): Unique in its list; the precomputed file's name
        (``/`` makes subfolders).
    path (str): The video file; ``None`` when listed but missing on disk.
    label (int): Index into the list's ``label_names``; ``-1`` when the
        list is unlabelled or multi-label.
    actions (tuple): Multi-label lists only (``None`` otherwise): the
        video's actions as ``(label, start, end)`` (seconds), overlapping
        ones included; ``()`` for a video without an action. Its label set
        is their labels.
"""


class VideoList(object):
    """The videos a list reader found, with the list's vocabulary.

    A sequence of the records found (``path`` set), in the reader's order
    (the annotation file's, or sorted by path).

    Args:
        name (str): The name of the reader that made it.
        records (iterable of VideoRecord): Every listed video; those with
            ``path=None`` are listed but missing on disk.
        label_names (tuple of str): Class names in label order; empty for
            an unlabelled list.

    Attributes:
        name (str): The reader's name (``'kinetics'``, ...).
        records (list of VideoRecord): The videos found.
        missing (list of str): Ids of videos listed but missing.
        label_names (tuple of str): The vocabulary (empty: unlabelled).

    Raises:
        ValueError: Two records share a video id, or a label is outside
            ``[0, len(label_names))`` (``-1`` only when unlabelled).
    """

    def __init__(self, name, records, label_names=()):
        self.name = name
        self.label_names = tuple(label_names)
        records = list(records)
        _check_unique_ids(records)
        _check_labels(records, self.label_names)
        self.records = [r for r in records if r.path is not None]
        self.missing = [r.video_id for r in records if r.path is None]

    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    @property
    def n_class(self):
        return len(self.label_names)

    def classes_without_videos(self):
        """The class names no video found is of (an empty class folder, a
        class whose videos are all missing), in label order."""
        found = set().union(*map(record_labels, self.records))
        return tuple(name for label, name in enumerate(self.label_names)
                     if label not in found)

    @property
    def multi_label(self):
        """Whether videos have sets of labels (records with ``actions``)."""
        return any(r.actions is not None for r in self.records)

    def summary(self):
        """One line: the reader, videos found and missing, class count."""
        classes = ('{} classes'.format(self.n_class) if self.label_names
                   else 'unlabelled')
        return '{}: {} videos found, {} listed but missing, {}'.format(
            self.name, len(self.records), len(self.missing), classes)

    def __repr__(self):
        return '<VideoList {}>'.format(self.summary())


def _check_unique_ids(records):
    seen = {}
    for record in records:
        if record.video_id in seen:
            raise ValueError(
                'two videos have the id {!r} ({} and {}): ids name the '
                'output files, rename one'.format(
                    record.video_id, seen[record.video_id], record.path))
        seen[record.video_id] = record.path


def _check_labels(records, label_names):
    # Unlabelled lists hold -1 only; labelled ones [0, n_class); multi-label
    # records -1 and their actions' labels in [0, n_class).
    low = UNLABELLED if not label_names else 0
    for record in records:
        if record.actions is not None:
            _check_action_labels(record, label_names)
        elif not low <= record.label < len(label_names):
            raise ValueError('{}: label {} is outside the {} class names'
                             .format(record.video_id, record.label,
                                     len(label_names)))


def record_labels(record):
    """The classes a video is of: its actions' for a multi-label record,
    else its one label (-1: unlabelled)."""
    if record.actions is None:
        return {record.label}
    return {label for label, _, _ in record.actions}


def _check_action_labels(record, label_names):
    for label, _, _ in record.actions:
        if not 0 <= label < len(label_names):
            raise ValueError('{}: action label {} is outside the {} class '
                             'names'.format(record.video_id, label,
                                            len(label_names)))


_READERS = {}


def register_video_list(name, fn):
    """Registers a list reader under ``name``.

    ``fn(video_dir, annotations, split, label_names)`` returns
    ``(label_names, records)``: the vocabulary (a tuple, empty when
    unlabelled) and every listed :class:`VideoRecord` (``path=None`` when
    missing on disk). It raises ``ValueError`` for arguments it does not
    take. :func:`read_video_list` makes the :class:`VideoList`.

    Raises:
        ValueError: ``name`` is taken by another function.
    """
    if _READERS.get(name, fn) is not fn:
        raise ValueError('video list name {!r} is taken by {}'.format(
            name, _READERS[name].__name__))
    _READERS[name] = fn


def video_list_names():
    """Returns the registered reader names, sorted."""
    return tuple(sorted(_READERS))


def read_video_list(dataset, video_dir, annotations=None, split=None,
                    label_names=None):
    """Reads a video list with the reader registered as ``dataset``.

    Example:
        >>> videos = read_video_list('kinetics', 'val/', 'validate.csv')
        >>> videos.records[0]
        VideoRecord(video_id='---QUuC4vJs_000084_000094', path=..., label=..)

    Args:
        dataset (str): The reader (:func:`video_list_names`): ``'kinetics'``,
            ``'folders'``, ``'files'``.
        video_dir (str): The folder of videos (``'files'``: or one file).
        annotations (str): The annotation file, for readers that take one.
        split (str): Keep only this split of the annotations.
        label_names (tuple of str): The vocabulary, where the reader would
            otherwise infer it.

    Returns:
        VideoList: The records found, the missing ids, the vocabulary.

    Raises:
        ValueError: An unknown reader (the message names the known ones),
            a missing folder or file, or an argument the reader does not
            take.
    """
    if dataset not in _READERS:
        raise ValueError('unknown video list {!r}; known: {}'.format(
            dataset, ', '.join(video_list_names())))
    names, records = _READERS[dataset](video_dir, annotations, split,
                                       label_names)
    return VideoList(dataset, records, names)


def _refuse(reader, **arguments):
    given = sorted(k for k, v in arguments.items() if v is not None)
    if given:
        raise ValueError('the {!r} video list takes no {}'.format(
            reader, ' or '.join(given)))


def check_video_dir(video_dir):
    """Refuses a video folder that does not exist (one line)."""
    if not os.path.isdir(video_dir):
        raise ValueError('no such video folder: {}'.format(video_dir))


def check_release_arguments(dataset, video_dir, annotations, label_names,
                            holding):
    """Checks the arguments of a reader of a dataset release whose classes
    come from its own files, found in the annotation folder.

    Args:
        dataset (str): The reader's name.
        video_dir (str): The video folder.
        annotations (str): The annotation folder.
        label_names: Must be None (the release names the classes).
        holding (str): The files the annotation folder holds, for the
            messages (e.g. ``'classInd.txt and trainlist01.txt'``).

    Raises:
        ValueError: One line saying which argument is wrong.
    """
    if label_names is not None:
        raise ValueError('the {} video list takes no label_names: the '
                         'classes are those of {}'.format(dataset, holding))
    if annotations is None:
        raise ValueError('the {} video list needs the annotation folder '
                         '(the one holding {})'.format(dataset, holding))
    if os.path.isfile(annotations):
        raise ValueError('the {} annotations are a folder (the one holding '
                         '{}), not a file: {}'.format(dataset, holding,
                                                      annotations))
    if not os.path.isdir(annotations):
        raise ValueError('no such annotation folder: {}'.format(annotations))
    check_video_dir(video_dir)


def is_video_file(name):
    """Whether a file name has one of :data:`VIDEO_EXTENSIONS`."""
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def list_video_files(video_dir):
    """Every video file below ``video_dir``, as sorted relative paths."""
    found = []
    for root, dirs, files in os.walk(video_dir):
        dirs.sort()
        found.extend(os.path.relpath(os.path.join(root, name), video_dir)
                     for name in sorted(files) if is_video_file(name))
    return sorted(found)


def index_video_files(video_dir):
    """Maps the stem of every video file below ``video_dir`` to its path
    (the first one in sorted order where stems repeat)."""
    found = {}
    for relative in list_video_files(video_dir):
        stem = os.path.splitext(os.path.basename(relative))[0]
        found.setdefault(stem, os.path.join(video_dir, relative))
    return found


def _class_folders(video_dir):
    # Hidden folders (.git, .ipynb_checkpoints) are not classes.
    return sorted(d for d in os.listdir(video_dir)
                  if os.path.isdir(os.path.join(video_dir, d))
                  and not d.startswith('.'))


def _records_of_class_folders(video_dir, folders, label_of):
    records = []
    for folder in folders:
        for relative in list_video_files(os.path.join(video_dir, folder)):
            records.append(VideoRecord(
                folder + '/' + os.path.splitext(relative)[0].replace(
                    os.sep, '/'),
                os.path.join(video_dir, folder, relative), label_of[folder]))
    return records


def _label_index(label_names):
    return {name: i for i, name in enumerate(label_names)}


# Kinetics ------------------------------------------------------------------

def official_video_id(youtube_id, time_start, time_end):
    """The file stem of a Kinetics clip in the official release."""
    return '{}_{:06d}_{:06d}'.format(youtube_id, int(time_start),
                                     int(time_end))


def read_kinetics_annotations(csv_path):
    """Reads an official Kinetics annotation CSV into a list of row dicts.

    Raises:
        ValueError: The file is missing or lacks a required column.
    """
    return read_annotation_csv(
        csv_path, KINETICS_COLUMNS, 'Kinetics',
        'label,youtube_id,time_start,time_end,split[,is_cc]')


def read_annotation_csv(csv_path, columns, dataset, header):
    """The rows (dicts) of a dataset's annotation CSV, which must have
    ``columns``.

    Args:
        csv_path (str): The file.
        columns (tuple of str): The columns the reader needs.
        dataset (str): The dataset's name, for the messages.
        header (str): The release's header, for the messages.

    Raises:
        ValueError: The file is missing or lacks one of ``columns``.
    """
    if not os.path.isfile(csv_path):
        raise ValueError('no such annotation file: {}'.format(csv_path))
    with open(csv_path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(
                '{} is not a {} annotation CSV: no column {} (the header is '
                '{})'.format(csv_path, dataset, ', '.join(missing), header))
        return list(reader)


def kinetics_class_name(name):
    """A class name as the vocabulary writes it (``_`` read as a space)."""
    return name.strip().replace('_', ' ')


def infer_kinetics_label_names(class_names, where='', hint=''):
    """Returns the official vocabulary (400 or 600) holding ``class_names``.

    Args:
        class_names (iterable of str): The names found.
        where (str): Where they were found, for the message.
        hint (str): What to do instead, for the message.

    Raises:
        ValueError: Some names are in neither vocabulary.
    """
    names = {kinetics_class_name(n) for n in class_names}
    for vocabulary in (kinetics400_label_names, kinetics600_label_names):
        if names <= set(vocabulary):
            return vocabulary
    unknown = sorted(names - set(kinetics600_label_names))[:5]
    raise ValueError('{}class name(s) in neither the Kinetics-400 nor the '
                     'Kinetics-600 vocabulary: {}{}'.format(
                         where + ': ' if where else '',
                         ', '.join(repr(n) for n in unknown),
                         '; ' + hint if hint else ''))


def read_kinetics_list(video_dir, annotations=None, split=None,
                       label_names=None):
    """The ``'kinetics'`` reader: the official layout or a folder per class.

    * With ``annotations``: the official CSV
      (``label,youtube_id,time_start,time_end,split[,is_cc]``); the files
      below ``video_dir`` (flat or in subfolders) are named
      ``{youtube_id}_{time_start:06d}_{time_end:06d}.{mp4,mkv,...}``, which
      is the video id.
    * Without: one subfolder of ``video_dir`` per class, named after a class
      (``_`` read as a space); the video id is ``class_folder/file_stem``.

    Labels index the official vocabulary (Kinetics-400, or -600 when a
    class is not in 400) unless ``label_names`` is given.

    Returns:
        tuple: ``(label_names, records)``.

    Raises:
        ValueError: A missing folder or CSV, a CSV without the columns, a
            class outside the vocabulary, or ``split`` without
            ``annotations``.
    """
    check_video_dir(video_dir)
    if annotations is None:
        if split is not None:
            raise ValueError('split={!r} needs the annotation CSV; a folder '
                             'per class has no splits'.format(split))
        return _kinetics_class_folders(video_dir, label_names)
    rows = read_kinetics_annotations(annotations)
    if split is not None:
        rows = [r for r in rows if r['split'] == split]
    if label_names is None:
        # The command line has no vocabulary option: its users get the
        # Python argument only as a pointer.
        label_names = infer_kinetics_label_names(
            (r['label'] for r in rows), annotations,
            'is it a Kinetics annotation file? (from Python, label_names= '
            'gives another vocabulary)')
    index = _label_index(label_names)
    files = index_video_files(video_dir)
    records = []
    for row in rows:
        video_id = official_video_id(
            row['youtube_id'], row['time_start'], row['time_end'])
        label = kinetics_class_name(row['label'])
        if label not in index:
            raise ValueError('{}: class {!r} of {} is not in the '
                             'vocabulary'.format(annotations, label,
                                                 video_id))
        records.append(VideoRecord(video_id, files.get(video_id),
                                   index[label]))
    return tuple(label_names), records


def _kinetics_class_folders(video_dir, label_names):
    folders = _class_folders(video_dir)
    if not folders:
        raise ValueError(
            '{} has no class subfolders; for the official layout pass '
            'the annotation CSV'.format(video_dir))
    if label_names is None:
        label_names = infer_kinetics_label_names(
            folders, video_dir, "for a folder per class of other names, "
            "use the 'folders' list (--dataset folders)")
    index = _label_index(label_names)
    for folder in folders:
        if kinetics_class_name(folder) not in index:
            raise ValueError('{}: folder {!r} is not a class of the '
                             'vocabulary'.format(video_dir, folder))
    label_of = {f: index[kinetics_class_name(f)] for f in folders}
    return tuple(label_names), _records_of_class_folders(
        video_dir, folders, label_of)


# Any folder per class -------------------------------------------------------

def read_class_folders(video_dir, annotations=None, split=None,
                       label_names=None):
    """The ``'folders'`` reader: one subfolder of ``video_dir`` per class.

    The class names are the folder names as they are (``_`` kept), and the
    labels their indices in sorted order, unless ``label_names`` gives the
    vocabulary (which must hold every folder's name). Videos are searched
    recursively in each class folder; the video id is
    ``class_folder/relative_path_without_extension``. Files directly in
    ``video_dir`` and hidden folders are not read.

    Returns:
        tuple: ``(label_names, records)``.

    Raises:
        ValueError: A missing folder, no class folder, a folder not in
            ``label_names``, or ``annotations``/``split`` given.
    """
    _refuse('folders', annotations=annotations, split=split)
    check_video_dir(video_dir)
    folders = _class_folders(video_dir)
    if not folders:
        raise ValueError('{} has no class subfolders (one folder of videos '
                         'per class)'.format(video_dir))
    if label_names is None:
        label_names = folders
    index = _label_index(label_names)
    unknown = [f for f in folders if f not in index]
    if unknown:
        raise ValueError('{}: folder(s) {} not among the {} label_names'
                         .format(video_dir, ', '.join(map(repr, unknown)),
                                 len(label_names)))
    return tuple(label_names), _records_of_class_folders(
        video_dir, folders, index)


# Unlabelled files -----------------------------------------------------------

def read_video_files(video_dir, annotations=None, split=None,
                     label_names=None):
    """The ``'files'`` reader: one video file, or a folder of them.

    A folder is searched recursively for files with a video extension; the
    video id is the path relative to the folder without its extension. A
    single file (any extension) has its stem as id. Records are unlabelled
    (``label=-1``).

    Returns:
        tuple: ``((), records)``.

    Raises:
        ValueError: No such file or folder, a folder without video files,
            or ``annotations``, ``split`` or ``label_names`` given.
    """
    _refuse('files', annotations=annotations, split=split,
            label_names=label_names)
    if os.path.isfile(video_dir):
        stem = os.path.splitext(os.path.basename(video_dir))[0]
        return (), [VideoRecord(stem, video_dir, UNLABELLED)]
    if not os.path.isdir(video_dir):
        raise ValueError('no such file or folder: {}'.format(video_dir))
    relatives = list_video_files(video_dir)
    if not relatives:
        raise ValueError('{} holds no video file ({})'.format(
            video_dir, ', '.join(VIDEO_EXTENSIONS)))
    return (), [VideoRecord(os.path.splitext(r)[0].replace(os.sep, '/'),
                            os.path.join(video_dir, r), UNLABELLED)
                for r in relatives]


register_video_list('kinetics', read_kinetics_list)
register_video_list('folders', read_class_folders)
register_video_list('files', read_video_files)
