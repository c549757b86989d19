"""Evaluation of I3D streams on precomputed Kinetics, sharded over ranks.

Each rank evaluates every ``size``-th video of the dataset (``rank_share``) (no padding, no
duplicate, none dropped), reading only its own videos; rank 0 gathers the
small per-video results (id, label, logits per stream) and computes the
metrics from all of them at once, so the numbers are the same for any
number of ranks and any batch size.
"""

import collections
import multiprocessing
import time

import chainer
import numpy

from chainercv_i3d.evaluations.metrics import classification_metrics
from chainercv_i3d.modality import STREAMS
from chainercv_i3d.transforms import to_model_range

TWO_STREAM = 'two_stream'


class EvalProtocol(object):
    """How a video becomes a model input.

    The default is the original port's: the first 251 frames at 25 fps
    (the video repeated from its start when shorter), a 224x224 center
    crop, RGB rescaled to [-1, 1], flow divided by 20.

    Args:
        n_frame (int): Frames per clip; ``None`` evaluates every frame.
        crop_size (int): Side of the center crop.
    """

    def __init__(self, n_frame=251, crop_size=224):
        self.n_frame = n_frame
        self.crop_size = crop_size


class EvalClips(object):
    """Loads example ``i`` as ``(i, {stream: input}, error)``.

    A video that cannot be read gives ``(i, None, message)`` instead of an
    exception, so that one bad file does not stop a worker pool.
    """

    def __init__(self, dataset, streams, protocol):
        self.dataset = dataset
        self.streams = streams
        self.protocol = protocol

    def __call__(self, i):
        try:
            clip = self.dataset.read_clip(i, self.streams)
        except (OSError, ValueError) as e:
            return i, None, str(e)
        return i, {s: to_model_range(clip[s], s, self.protocol.crop_size)
                   for s in self.streams}, None


def plan_batches(indices, lengths, batch_size):
    """Cuts ``indices`` into batches whose clips all have the same length.

    With a fixed clip length every batch is full but the last; when every
    frame is evaluated, videos are sorted by length and a batch never mixes
    two lengths.
    """
    order = sorted(indices, key=lambda i: (lengths[i], i))
    batches = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and \
                lengths[batches[-1][-1]] == lengths[i]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


_FORKED_LOADER = None


def _load_in_worker(i):
    return _FORKED_LOADER(i)


def _prefetched(pool, order, depth):
    # At most ``depth`` clips loaded ahead: Pool.imap would queue every
    # loaded clip (about 150 MB each) when the forward pass is the slower.
    pending = collections.deque()
    for i in order:
        pending.append(pool.apply_async(_load_in_worker, (i,)))
        if len(pending) >= depth:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _loaded(load, order, n_workers):
    """Yields ``load(i)`` for ``i`` in ``order``, from ``n_workers``
    processes. They are forked after ``load`` is set, so they inherit it
    instead of receiving a pickled copy of the dataset with every task."""
    global _FORKED_LOADER
    if n_workers <= 0:
        return map(load, order), None
    _FORKED_LOADER = load
    pool = multiprocessing.get_context('fork').Pool(n_workers)
    return _prefetched(pool, order, 2 * n_workers), pool


def forward(model, batch, device):
    """Logits of a model on a batch, in test mode, as numpy float32."""
    x = numpy.stack(batch)
    if device is not None:
        x = device.send(x)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        logits = model(x).array
    return chainer.backends.cuda.to_cpu(logits).astype(numpy.float32)


def evaluate_share(dataset, indices, models, protocol, batch_size,
                   n_workers=0, device=None, on_video=None, timings=None):
    """Evaluates ``indices`` of ``dataset`` with ``models``.

    Args:
        dataset (PrecomputedKineticsDataset): With ``n_frame`` set as in
            ``protocol``.
        indices (list of int): The examples of this rank.
        models (dict): stream -> I3D.
        protocol (EvalProtocol): How clips are made.
        batch_size (int): Clips per forward pass.
        n_workers (int): Loader processes (0 loads in this process).
        device (chainer.backend.Device): Where the models are (None: CPU).
        on_video (callable): Called once per video, for progress.
        timings (dict): If given, receives ``load_s`` (time spent waiting
            for loaded clips) and ``compute_s`` (forward passes).

    Returns:
        list of dict: Per video ``video_id``, ``label`` and either
        ``logits`` (stream -> list of float) or ``error``.
    """
    streams = tuple(s for s in STREAMS if s in models)
    lengths = [protocol.n_frame or r['n_frames'] for r in dataset.records]
    batches = plan_batches(indices, lengths, batch_size)
    order = [i for batch in batches for i in batch]
    loaded, pool = _loaded(EvalClips(dataset, streams, protocol), order,
                           n_workers)
    results = []
    load_s = compute_s = 0.0
    try:
        for batch in batches:
            start = time.perf_counter()
            examples = [next(loaded) for _ in batch]
            loaded_at = time.perf_counter()
            results.extend(_evaluate_batch(dataset, examples, models,
                                           streams, device))
            load_s += loaded_at - start
            compute_s += time.perf_counter() - loaded_at
            if on_video is not None:
                for _ in batch:
                    on_video()
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    if timings is not None:
        timings.update(load_s=load_s, compute_s=compute_s)
    return results


def _evaluate_batch(dataset, examples, models, streams, device):
    results = []
    good = [(i, arrays) for i, arrays, _ in examples if arrays is not None]
    for i, arrays, error in examples:
        if arrays is None:
            results.append(_record(dataset, i, error=error))
    if good:
        logits = {s: forward(models[s], [a[s] for _, a in good], device)
                  for s in streams}
        for row, (i, _) in enumerate(good):
            results.append(_record(dataset, i, logits={
                s: logits[s][row].tolist() for s in streams}))
    return results


def _record(dataset, i, **fields):
    record = dataset.records[i]
    return dict(fields, video_id=record['video_id'],
                label=int(record['label']))


def summarize(results, n_not_done=0):
    """Metrics of every stream and of the two-stream sum.

    Args:
        results (list of dict): All ranks' per-video results.
        n_not_done (int): Videos the precompute stage did not produce.

    Returns:
        dict: ``n_evaluated``, ``n_unreadable``, ``n_missing`` and per
        stream (``rgb``, ``flow``, ``two_stream``) the metrics.
    """
    ok = sorted((r for r in results if 'logits' in r),
                key=lambda r: r['video_id'])
    if not ok:
        raise ValueError('no video could be evaluated')
    labels = numpy.array([r['label'] for r in ok])
    scores = {s: numpy.array([r['logits'][s] for r in ok], numpy.float32)
              for s in STREAMS if s in ok[0]['logits']}
    if len(scores) == 2:
        scores[TWO_STREAM] = scores['rgb'] + scores['flow']
    summary = {'n_evaluated': len(ok),
               'n_unreadable': len(results) - len(ok),
               'n_missing': int(n_not_done)}
    for stream, stream_scores in scores.items():
        summary[stream] = classification_metrics(stream_scores, labels)
    return summary
