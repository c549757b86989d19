"""Kinetics over raw video files, in the official layout or a folder per class.

The listing is the ``'kinetics'`` video list
(:func:`~chainercv_i3d.datasets.video_list.read_video_list`); this module
adds a dataset that decodes the videos.
"""

import numpy

from chainercv_i3d.datasets.getter_dataset import GetterDataset
# Kept importable from here, where they were first defined.
from chainercv_i3d.datasets.video_list import index_video_files  # NOQA
from chainercv_i3d.datasets.video_list import official_video_id  # NOQA
from chainercv_i3d.datasets.video_list import read_video_list
from chainercv_i3d.datasets.video_list import VIDEO_EXTENSIONS  # NOQA
from chainercv_i3d.utils.video import read_video


class KineticsDataset(GetterDataset):
    """Kinetics videos on disk, with labels from the official vocabulary.

    Two layouts are read:

    * the official release: ``annotations`` is the CSV
      (``label,youtube_id,time_start,time_end,split[,is_cc]``) and the files
      in ``video_dir`` (flat or in per-class subfolders) are named
      ``{youtube_id}_{time_start:06d}_{time_end:06d}.{mp4,mkv,webm,...}``;
    * ``annotations=None``: one subfolder of ``video_dir`` per class (its
      name is the class name, ``_`` read as a space), any file names inside;
      the video id is ``class_folder/file_stem`` (with the subfolders of a
      video below its class folder, if any).

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

    ``video`` is decoded only when asked for (``dataset.keys``). The
    listing is the ``'kinetics'`` video list, kept as ``video_list``
    (records found: ``entries``; ids listed but missing: ``missing``).

    Args:
        video_dir (str): Folder of the video files.
        annotations (str): Official CSV, or ``None`` for a folder per class.
        split (str): With ``annotations``, keep only rows of this split.
        label_names (tuple of str): The class vocabulary; ``None`` infers it.
    """

    def __init__(self, video_dir, annotations=None, split=None,
                 label_names=None):
        super(KineticsDataset, self).__init__()
        self.video_dir = video_dir
        self.video_list = read_video_list('kinetics', video_dir,
                                          annotations, split, label_names)
        self.label_names = self.video_list.label_names
        self.entries = self.video_list.records
        self.missing = self.video_list.missing
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

    def __len__(self):
        return len(self.entries)

    def _get_video(self, i):
        frames, fps = read_video(self.entries[i].path)
        video = numpy.stack(frames).transpose(3, 0, 1, 2)
        return video.astype(numpy.float32), fps

    def summary(self):
        """One line: how many videos were found and how many are missing."""
        return 'Kinetics-{}: {} videos found, {} listed but missing'.format(
            len(self.label_names), len(self.entries), len(self.missing))
