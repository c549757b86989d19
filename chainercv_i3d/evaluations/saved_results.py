"""The finished part of an evaluation, on disk, so that a stopped run
continues where it stopped.

Every batch of videos a rank finishes is written at once into a folder
beside the output (``<out>.parts/``) as one small JSON file, whole or not
at all (:func:`chainercv_i3d.files.atomic_path`, fsync'd): a run killed at
any moment, even by SIGKILL, keeps every batch it finished. A rerun with the
same settings (``settings.json`` there) evaluates only the videos that are
not in the folder, with any number of ranks; results are per video, so the
final numbers are those of an uninterrupted run.
"""

import glob
import hashlib
import json
import os
import shutil

from chainercv_i3d.files import atomic_path
from chainercv_i3d.files import created_folder
from chainercv_i3d.files import settings_differences
from chainercv_i3d.files import stored_settings_differences
from chainercv_i3d.pretrained.cache import sha256sum

SETTINGS_NAME = 'settings.json'


def parts_dir(out_path):
    """The folder of the finished parts of the evaluation written to
    ``out_path``."""
    return out_path + '.parts'


def evaluation_settings(protocol, checkpoints, dtype, dataset):
    """What fixes an evaluation's numbers, JSON-ready, for
    :meth:`SavedResults.claim`.

    Args:
        protocol (EvalProtocol): The views.
        checkpoints (dict): stream -> the model as given (a file, whose
            content is recorded, or a pretrained-model name).
        dtype (str): The inference dtype.
        dataset (PrecomputedVideoDataset): Its manifest's videos are
            recorded by their hash.
    """
    return {'protocol': protocol.describe(),
            'models': {stream: _model_identity(checkpoint)
                       for stream, checkpoint in checkpoints.items()
                       if checkpoint is not None},
            'dtype': dtype,
            'videos_sha256': _records_hash(dataset.records),
            'n_missing': int(dataset.n_not_done)}


def finished_summary(out_path, settings):
    """The summary JSON of a finished evaluation of these settings at
    ``out_path`` (a rerun has nothing to do); None when there is none.

    Raises:
        ValueError: ``out_path`` holds something else: an evaluation of
            other settings (each difference named), or a file that records
            none.
    """
    if not os.path.exists(out_path):
        return None
    advice = 'add --restart to evaluate again and overwrite it, or give ' \
        'another --out'
    try:
        with open(out_path) as f:
            summary = json.load(f)
        stored = summary['settings']
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError('{} exists but records no evaluation settings '
                         '({}: {}): {}'.format(out_path, type(e).__name__, e,
                                               advice))
    differences = settings_differences(stored,
                                       json.loads(json.dumps(settings)))
    if differences:
        raise ValueError('{} holds an evaluation with other settings ({}): '
                         '{}'.format(out_path, '; '.join(differences),
                                     advice))
    return summary


def _model_identity(checkpoint):
    if os.path.isfile(checkpoint):  # a path may change, its content not
        return {'sha256': sha256sum(checkpoint)}
    return {'name': checkpoint}


def _records_hash(records):
    text = json.dumps(records, sort_keys=True).encode('utf-8')
    return hashlib.sha256(text).hexdigest()


class SavedResults(object):
    """The per-video results an evaluation has finished, in ``folder``.

    Args:
        folder (str): Where the parts are (:func:`parts_dir`).
    """

    def __init__(self, folder):
        self.folder = folder

    @property
    def settings_path(self):
        return os.path.join(self.folder, SETTINGS_NAME)

    def claim(self, settings, restart=False):
        """Records ``settings`` for a new run, or checks that the run
        found there had the same (call on one rank, before any work).

        Args:
            settings (dict): :func:`evaluation_settings`.
            restart (bool): Remove what is there first.

        Raises:
            ValueError: The folder holds a run of other settings (each
                difference named).
        """
        if restart:
            self.remove()
        settings = json.loads(json.dumps(settings))  # tuples as lists
        differences = stored_settings_differences(self.settings_path,
                                                  settings)
        if differences:
            raise ValueError(
                '{} holds an evaluation with other settings ({}): rerun '
                'with the settings of that run to continue it, or add '
                '--restart to start over'.format(
                    self.folder, '; '.join(differences)))
        if differences is None:
            with created_folder(self.folder):
                self._write(self.settings_path, settings)

    def load(self):
        """Every saved part: ``(results, earlier_s)``, the per-video
        results and the time the earlier runs spent on them (seconds, the
        longest a part of each run records).

        Raises:
            ValueError: A part is damaged (it names the file).
        """
        results = {}
        run_seconds = {}
        for path in sorted(glob.glob(os.path.join(
                glob.escape(self.folder), '[0-9]*.json'))):
            try:
                with open(path) as f:
                    part = json.load(f)
                for result in part['results']:
                    # Two parts of a video only where a rank's part was not
                    # seen (no shared disk) and was made again: one counts.
                    results.setdefault(result['video_id'], result)
                run_seconds[part['run']] = max(
                    part['elapsed_s'], run_seconds.get(part['run'], 0))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError('{} is damaged ({}): remove it to evaluate '
                                 'its videos again, or add --restart'.format(
                                     path, e))
        return list(results.values()), sum(run_seconds.values())

    def save(self, first_index, results, run, elapsed_s):
        """Writes the results of one batch, whole, to the disk.

        Args:
            first_index (int): The dataset index of the batch's first video,
                which names the file (a video is in one part only).
            results (list of dict): Per-video results.
            run (str): Which run (its start), to add up the runs' times.
            elapsed_s (float): Seconds since that run started.
        """
        path = os.path.join(self.folder, '{:08d}.json'.format(first_index))
        self._write(path, {'run': run, 'elapsed_s': elapsed_s,
                           'results': results})

    def remove(self):
        """Removes the folder (after the final results are written)."""
        if os.path.isdir(self.folder):
            shutil.rmtree(self.folder)

    @staticmethod
    def _write(path, obj):
        with atomic_path(path) as tmp, open(tmp, 'w') as f:
            json.dump(obj, f)
            f.flush()
            os.fsync(f.fileno())
