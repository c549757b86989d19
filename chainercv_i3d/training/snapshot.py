"""What a training run writes to resume from, and the model it ends with.

A snapshot holds the model's weights and running statistics, the
optimizer's state, the iteration and the settings of the run (a resumed run
must share them): with the example order and every random draw a pure
function of ``(seed, iteration)``, that is all an exact resume needs.
Free functions with explicit arguments: the
:class:`~chainercv_i3d.training.Trainer` decides when and on which rank they
run.
"""

import json
import os

import chainer
import numpy

from chainercv_i3d.files import atomic_path
from chainercv_i3d.files import reading_npz
from chainercv_i3d.files import SNAPSHOT_ADVICE
from chainercv_i3d.files import settings_differences
from chainercv_i3d.pretrained.npz_weights import save_model_npz

SNAPSHOT_NAME = 'snapshot.npz'
FINAL_MODEL_NAME = 'model_final.npz'


def _actual_optimizer(optimizer):
    # ChainerMN's multi-node optimizer wraps the one that holds the state.
    return getattr(optimizer, 'actual_optimizer', optimizer)


def save_snapshot(path, model, optimizer, iteration, settings):
    """Writes a snapshot of a run, atomically (it appears only whole).

    Args:
        path (str): The ``.npz`` to write (missing folders are created).
        model (chainer.Link): The model: its parameters and persistent
            values (the running statistics) are written under ``model/``.
        optimizer (chainer.Optimizer): Its state (momentum, ``t``) is
            written under ``optimizer/``; a ChainerMN multi-node optimizer
            is saved as the optimizer it wraps.
        iteration (int): Updates done.
        settings (dict): What a resumed run must share with this one
            (:meth:`~chainercv_i3d.training.TrainConfig.run_settings`),
            JSON-serializable.

    Example:

        >>> save_snapshot('result/snapshot.npz', model, optimizer, 1000,
        ...               config.run_settings(comm.size, schedule))
    """
    serializer = chainer.serializers.DictionarySerializer()
    serializer['model'].save(model)
    serializer['optimizer'].save(_actual_optimizer(optimizer))
    arrays = dict(serializer.target)
    arrays['iteration'] = numpy.int64(iteration)
    arrays['settings'] = numpy.array(json.dumps(settings))
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        numpy.savez(f, **arrays)


def load_snapshot(path, model, optimizer, settings=None):
    """Loads a snapshot into ``model`` and ``optimizer``.

    The settings are checked before anything is loaded, so a refused
    snapshot leaves the model and the optimizer as they were.

    Args:
        path (str): A snapshot written by :func:`save_snapshot`.
        model (chainer.Link): Receives the weights and running statistics
            (changed in place).
        optimizer (chainer.Optimizer): Set up on ``model``; receives the
            optimizer's state (a ChainerMN multi-node optimizer: the
            optimizer it wraps).
        settings (dict): This run's settings; None: not checked.

    Returns:
        int: The iteration the snapshot was taken at.

    Raises:
        ValueError: The snapshot's run had other settings (the message
            lists each difference as ``'key: <there> there, <now> now'``),
            or the file is damaged (truncated, a bad CRC, an array missing:
            one line naming it and what to do).

    Example:

        >>> iteration = load_snapshot('result/snapshot.npz', model,
        ...                           optimizer, settings)
    """
    with reading_npz(path, SNAPSHOT_ADVICE):
        with numpy.load(path, allow_pickle=False) as snapshot:
            before = json.loads(str(snapshot['settings']))
            iteration = int(snapshot['iteration'])
    if settings is not None:
        differences = settings_differences(
            before, json.loads(json.dumps(settings)))
        if differences:
            raise ValueError(
                '{} is a snapshot of a run with other settings ({}): resume '
                'with the same settings, add --restart (restart=True) to '
                'start over, or start in another folder'.format(
                    path, '; '.join(differences)))
    with reading_npz(path, SNAPSHOT_ADVICE):
        chainer.serializers.load_npz(path, model, path='model/')
        chainer.serializers.load_npz(path, _actual_optimizer(optimizer),
                                     path='optimizer/')
    return iteration


def snapshot_iteration(out_dir):
    """The iteration of the snapshot in ``out_dir`` (0 without one): the
    updates that a stopped run keeps.

    Raises:
        ValueError: The snapshot is damaged (one line, as
            :func:`load_snapshot` says it).
    """
    path = os.path.join(out_dir, SNAPSHOT_NAME)
    if not os.path.exists(path):
        return 0
    with reading_npz(path, SNAPSHOT_ADVICE):
        with numpy.load(path, allow_pickle=False) as snapshot:
            return int(snapshot['iteration'])


def save_final_model(path, model, arch='i3d'):
    """Writes the trained model, atomically.

    Args:
        path (str): The ``.npz`` to write (missing folders are created).
        model (chainer.Link): The trained model.
        arch (str): ``'i3d'``: the weights with the label names and the
            preset (:func:`~chainercv_i3d.pretrained.save_model_npz`), a
            model that ``I3D(pretrained_model=path)`` and the example
            scripts take; anything else (``'tiny'``): the weights only.

    Example:

        >>> save_final_model('result/model_final.npz', model)
    """
    if arch == 'i3d':
        save_model_npz(model, path)
    else:  # not I3D's layout: weights only
        with atomic_path(path) as tmp:
            chainer.serializers.save_npz(tmp, model, compression=False)
