"""The one loading loop: examples in a given order, from worker processes.

Evaluation, feature extraction and training all turn examples into model
inputs through :class:`ExampleLoader` and :class:`VideoViews` (training:
:class:`TrainingClips`): a dataset
with ``read_views(i, streams, rng)`` (its clip sampler), a
:class:`~chainercv_i3d.transforms.ClipTransform`, and a pool of worker
processes that load at most ``prefetch`` examples ahead. Each example's
randomness comes from :func:`~chainercv_i3d.datasets.sample_rng` of
``(seed, epoch, index)``, so results do not depend on the number of
workers, and forked workers never repeat each other's draws.
"""

import collections
import concurrent.futures
import os

import numpy

from chainercv_i3d.datasets.clip_samplers import sample_rng
from chainercv_i3d.utils.interrupts import prepare_worker
from chainercv_i3d.utils.interrupts import starting_workers
from chainercv_i3d.utils.interrupts import worker_context
from chainercv_i3d.utils.video import stop_opencv_threads

# Errors that make one example unreadable without stopping the run.
EXAMPLE_ERRORS = (OSError, ValueError)


class VideoViews(object):
    """Loads example ``i`` as model inputs: ``{stream: (V, C, T, s, s)}``.

    Args:
        dataset: Has ``read_views(i, streams, rng)`` (e.g.
            :class:`~chainercv_i3d.datasets.PrecomputedVideoDataset`).
        streams (tuple of str): The streams to load.
        transform (ClipTransform): Crops, flips and scales the views.
    """

    def __init__(self, dataset, streams, transform):
        self.dataset = dataset
        self.streams = tuple(streams)
        self.transform = transform

    def __call__(self, i, rng):
        return self.transform(self.dataset.read_views(i, self.streams, rng),
                              rng)


class TrainingClips(object):
    """Loads training example ``i``: ``(clip (C, T, s, s), label)``.

    The training twin of :class:`VideoViews`: one randomly cropped (and
    perhaps flipped) view of one stream, and the label of what the clip now
    shows: an int32, or for a multi-label dataset (``dataset.multi_label``)
    the ``(n_class,)`` int32 0/1 of the actions its frames show
    (``dataset.clip_labels``), which a flip does not change.

    Args:
        dataset: Has ``read_views(i, streams, rng)`` and ``records`` (e.g.
            :class:`~chainercv_i3d.datasets.PrecomputedVideoDataset` with a
            training sampler).
        stream (str): ``'rgb'`` or ``'flow'``.
        transform (ClipTransform): Random crop and flip.
        flip_labels (dict): The label of a flipped clip of each class that
            a flip changes (:func:`chainercv_i3d.transforms.flip_label_map`);
            empty: labels never change.

    Example:

        >>> load = TrainingClips(dataset, 'rgb', transform)
        >>> clip, label = load(0, numpy.random.default_rng(0))
    """

    def __init__(self, dataset, stream, transform, flip_labels=None):
        self.dataset = dataset
        self.stream = stream
        self.transform = transform
        self.flip_labels = dict(flip_labels or {})

    def __call__(self, i, rng):
        if getattr(self.dataset, 'multi_label', False):
            frames = self.dataset.sample_frames(i, rng)
            views = self.dataset.read_views(i, (self.stream,), rng, frames)
            inputs, _ = self.transform.apply(views, rng)
            return (inputs[self.stream][0],
                    self.dataset.clip_labels(i, frames[0]))
        views = self.dataset.read_views(i, (self.stream,), rng)
        inputs, flipped = self.transform.apply(views, rng)
        label = int(self.dataset.records[i]['label'])
        if flipped:
            label = self.flip_labels.get(label, label)
        return inputs[self.stream][0], numpy.int32(label)


def start_method(device=None):
    """How worker processes start beside a model on ``device``: forked on
    the CPU (cheap, they inherit the dataset), spawned beside a GPU (a
    process forked after CUDA started cannot use CUDA)."""
    if device is None or getattr(device, 'xp', numpy) is numpy:
        return 'fork'
    return 'spawn'


_WORKER_LOAD = None


def _set_worker_load(load, worker_init, parent_pid):
    global _WORKER_LOAD
    prepare_worker(parent_pid)
    _WORKER_LOAD = load
    if worker_init is not None:
        worker_init()


def _load_example(load, seed, epoch, i):
    try:
        return i, load(i, sample_rng(seed, epoch, i)), None
    except EXAMPLE_ERRORS as e:
        return i, None, str(e) or type(e).__name__


def _load_in_worker(seed, epoch, i):
    return _load_example(_WORKER_LOAD, seed, epoch, i)


class ExampleLoader(object):
    """Runs ``load(i, rng)`` for examples in order, in worker processes.

    An example that raises ``OSError`` or ``ValueError`` (an unreadable
    video) is yielded as ``(i, None, message)``, so one bad file does not
    stop the run; any other exception propagates.

    Args:
        load (callable): ``load(i, rng) -> example``; it must be picklable
            when ``mp_context`` is ``'spawn'`` (with ``'fork'`` the workers
            inherit it).
        n_workers (int): Worker processes; 0 loads in this process.
        seed (int): Seed of the per-example random generators.
        prefetch (int): Examples loaded ahead at most (default
            ``2 * n_workers``): each can be hundreds of MB. A worker that
            dies (killed, out of memory) ends the iteration with
            ``BrokenProcessPool`` instead of a wait forever; the workers
            leave Ctrl-C and SIGTERM to this process
            (:func:`~chainercv_i3d.utils.interrupts.prepare_worker`) and
            die with it, even when it is killed by SIGKILL.
        mp_context (str): How workers start: ``'fork'`` (fast; not after
            CUDA started in this process) or ``'spawn'``.
        worker_init (callable): Run once in each worker (e.g. a flow
            backend's ``worker_init``).

    Example:

        >>> loader = ExampleLoader(VideoViews(dataset, ('rgb',), transform),
        ...                        n_workers=2)
        >>> for i, inputs, error in loader.iterate(range(len(dataset))):
        ...     ...
        >>> loader.close()
    """

    def __init__(self, load, n_workers=0, seed=0, prefetch=None,
                 mp_context='fork', worker_init=None):
        if n_workers < 0:
            raise ValueError('n_workers must be 0 or more, not {}'.format(
                n_workers))
        self.load = load
        self.n_workers = n_workers
        self.seed = seed
        self.prefetch = 2 * max(n_workers, 1) if prefetch is None \
            else prefetch
        if self.prefetch < 1:
            raise ValueError('prefetch must be at least 1, not {}'.format(
                prefetch))
        self.mp_context = mp_context
        self.worker_init = worker_init
        self._pool = None

    def _get_pool(self):
        if self._pool is None:
            context = worker_context(self.mp_context)
            if context.get_start_method() == 'fork':
                stop_opencv_threads()
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.n_workers, mp_context=context,
                initializer=_set_worker_load,
                initargs=(self.load, self.worker_init, os.getpid()))
        return self._pool

    def iterate(self, order, epoch=0):
        """Yields ``(i, example, error)`` for each ``i`` of ``order``, in
        that order; ``example`` is ``None`` when ``error`` says why."""
        return self.iterate_epochs((epoch, i) for i in order)

    def iterate_epochs(self, pairs):
        """As :meth:`iterate` for ``(epoch, i)`` pairs: a stream of examples
        that runs across epochs (training)."""
        if self.n_workers == 0:
            for epoch, i in pairs:
                yield _load_example(self.load, self.seed, epoch, i)
            return
        pool = self._get_pool()
        pending = collections.deque()
        for epoch, i in pairs:
            with starting_workers():  # spawn starts a worker per submit
                pending.append(pool.submit(_load_in_worker, self.seed,
                                           epoch, i))
            if len(pending) >= self.prefetch:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self):
        """Stops the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
