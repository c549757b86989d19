"""Kinetics over raw video files, in the official layout or a folder per class."""

import collections
import csv
import os

import numpy

from chainercv_i3d.datasets.getter_dataset import GetterDataset
from chainercv_i3d.label_names import \
    kinetics400_label_names
from chainercv_i3d.label_names import \
    kinetics600_label_names

VIDEO_EXTENSIONS = ('.mp4', '.mkv', '.webm', '.avi', '.mov', '.m4v', '.flv',
                    '.mpg', '.mpeg', '.3gp')
ANNOTATION_COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end',
                      'split')

# (video_id, path or None when missing on disk, label)
Entry = collections.namedtuple('Entry', ('video_id', 'path', 'label'))


def official_video_id(youtube_id, time_start, time_end):
    """The file stem of a clip in the official release."""
    return '{}_{:06d}_{:06d}'.format(youtube_id, int(time_start),
                                     int(time_end))


def read_annotations(csv_path):
    """Reads an official annotation CSV into a list of row dicts.

    Raises:
        ValueError: The file is missing or lacks a required column.
    """
    if not os.path.isfile(csv_path):
        raise ValueError('no such annotation file: {}'.format(csv_path))
    with open(csv_path, newline='') as f:
        reader = csv.DictReader(f)
        missing = [c for c in ANNOTATION_COLUMNS
                   if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(
                '{} is not a Kinetics annotation CSV: no column {} (the '
                'header is label,youtube_id,time_start,time_end,split'
                '[,is_cc])'.format(csv_path, ', '.join(missing)))
        return list(reader)


def index_video_files(video_dir):
    """Maps the stem of every video file below ``video_dir`` to its path."""
    found = {}
    for root, dirs, files in os.walk(video_dir):
        dirs.sort()
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS:
                found.setdefault(stem, os.path.join(root, name))
    return found


def _normalize(name):
    return name.strip().replace('_', ' ')


def infer_label_names(class_names):
    """Returns the official vocabulary (400 or 600) holding ``class_names``.

    Raises:
        ValueError: Some names are in neither vocabulary.
    """
    names = {_normalize(n) for n in class_names}
    for vocabulary in (kinetics400_label_names, kinetics600_label_names):
        if names <= set(vocabulary):
            return vocabulary
    unknown = sorted(names - set(kinetics600_label_names))[:5]
    raise ValueError('class name(s) in neither the Kinetics-400 nor the '
                     'Kinetics-600 vocabulary: {}; pass label_names='
                     .format(', '.join(repr(n) for n in unknown)))


def _label_index(label_names):
    return {name: i for i, name in enumerate(label_names)}


class KineticsDataset(GetterDataset):
    """Kinetics videos on disk, with labels from the official vocabulary.

    Two layouts are read:

    * the official release: ``annotations`` is the CSV
      (``label,youtube_id,time_start,time_end,split[,is_cc]``) and the files
      in ``video_dir`` (flat or in per-class subfolders) are named
      ``{youtube_id}_{time_start:06d}_{time_end:06d}.{mp4,mkv,webm,...}``;
    * ``annotations=None``: one subfolder of ``video_dir`` per class (its
      name is the class name, ``_`` read as a space), any file names inside;
      the video id is ``class_folder/file_stem``.

    Labels are indices into the alphabetically sorted official class list
    (:obj:`kinetics400_label_names` or :obj:`kinetics600_label_names`,
    chosen from the class names found unless ``label_names`` is given).
    Videos listed but missing on disk are counted in ``missing`` and left
    out; ``len()`` is the number found.

    ===========  ===================  ========  ==========================
    key          shape                dtype     range / meaning
    ===========  ===================  ========  ==========================
    ``video``    (3, T, H, W)         float32   RGB in [0, 255], as decoded
    ``fps``      ()                   float     frame rate of the file
    ``label``    ()                   int32     [0, n_class - 1]
    ``video_id`` ()                   str       file stem (official ids)
    ``path``     ()                   str       the video file
    ===========  ===================  ========  ==========================

    ``video`` is decoded only when asked for (``dataset.keys``).

    Args:
        video_dir (str): Folder of the video files.
        annotations (str): Official CSV, or ``None`` for a folder per class.
        split (str): With ``annotations``, keep only rows of this split.
        label_names (tuple of str): The class vocabulary; ``None`` infers it.
    """

    def __init__(self, video_dir, annotations=None, split=None,
                 label_names=None):
        super(KineticsDataset, self).__init__()
        if not os.path.isdir(video_dir):
            raise ValueError('no such video folder: {}'.format(video_dir))
        self.video_dir = video_dir
        if annotations is None:
            listed = self._list_class_folders(video_dir, label_names)
        else:
            listed = self._list_annotated(video_dir, annotations, split,
                                          label_names)
        self.label_names, entries = listed
        self.entries = [e for e in entries if e.path is not None]
        self.missing = [e.video_id for e in entries if e.path is None]
        self.add_getter(('video', 'fps'), self._get_video)
        self.add_getter('label', self._get_label)
        self.add_getter('video_id', self._get_video_id)
        self.add_getter('path', self._get_path)
        self.keys = ('video', 'label')

    def _get_label(self, i):
        return numpy.int32(self.entries[i].label)

    def _get_video_id(self, i):
        return self.entries[i].video_id

    def _get_path(self, i):
        return self.entries[i].path

    @staticmethod
    def _list_annotated(video_dir, annotations, split, label_names):
        rows = read_annotations(annotations)
        if split is not None:
            rows = [r for r in rows if r['split'] == split]
        if label_names is None:
            label_names = infer_label_names(r['label'] for r in rows)
        index = _label_index(label_names)
        files = index_video_files(video_dir)
        entries = []
        for row in rows:
            video_id = official_video_id(
                row['youtube_id'], row['time_start'], row['time_end'])
            label = _normalize(row['label'])
            if label not in index:
                raise ValueError('{}: class {!r} of {} is not in the '
                                 'vocabulary'.format(annotations, label,
                                                     video_id))
            entries.append(Entry(video_id, files.get(video_id), index[label]))
        return label_names, entries

    @staticmethod
    def _list_class_folders(video_dir, label_names):
        classes = sorted(d for d in os.listdir(video_dir)
                         if os.path.isdir(os.path.join(video_dir, d)))
        if not classes:
            raise ValueError(
                '{} has no class subfolders; for the official layout pass '
                'the annotation CSV'.format(video_dir))
        if label_names is None:
            label_names = infer_label_names(classes)
        index = _label_index(label_names)
        entries = []
        for folder in classes:
            if _normalize(folder) not in index:
                raise ValueError('{}: folder {!r} is not a class of the '
                                 'vocabulary'.format(video_dir, folder))
            files = index_video_files(os.path.join(video_dir, folder))
            for stem, path in sorted(files.items()):
                entries.append(Entry(folder + '/' + stem, path,
                                     index[_normalize(folder)]))
        return label_names, entries

    def __len__(self):
        return len(self.entries)

    def _get_video(self, i):
        from chainercv_i3d.utils.video import read_video
        frames, fps = read_video(self.entries[i].path)
        video = numpy.stack(frames).transpose(3, 0, 1, 2)
        return video.astype(numpy.float32), fps

    def summary(self):
        """One line: how many videos were found and how many are missing."""
        return 'Kinetics-{}: {} videos found, {} listed but missing'.format(
            len(self.label_names), len(self.entries), len(self.missing))
