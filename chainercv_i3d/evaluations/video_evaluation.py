"""Evaluation of I3D streams on precomputed videos, sharded over ranks.

Each rank evaluates every ``size``-th video (``rank_share``: no padding, no
duplicate, none dropped), reading only its own videos; rank 0 gathers the
small per-video results (id, label, logits per stream) and computes the
metrics from all of them at once, so the numbers are the same for any
number of ranks and any batch size.

A video is scored per stream by the mean of its views' logits (views: the
clips of the protocol's sampler times its spatial crops), as DeepMind's
model itself averages its per-step logits over time; two streams are fused
by summing their scores.
"""

import time

import numpy

from chainercv_i3d.datasets.clip_samplers import AllFrames
from chainercv_i3d.datasets.clip_samplers import FirstFrames
from chainercv_i3d.datasets.clip_samplers import make_clip_sampler
from chainercv_i3d.datasets.clip_samplers import Segments
from chainercv_i3d.datasets.clip_samplers import UniformClips
from chainercv_i3d.datasets.loader import ExampleLoader
from chainercv_i3d.datasets.loader import start_method
from chainercv_i3d.datasets.loader import VideoViews
from chainercv_i3d.evaluations.metrics import classification_metrics
from chainercv_i3d.evaluations.metrics import per_class_accuracy
from chainercv_i3d.evaluations.multilabel import is_multilabel
from chainercv_i3d.evaluations.multilabel import summarize_multilabel
from chainercv_i3d.label_names import kinetics400_label_names
from chainercv_i3d.label_names import kinetics600_label_names
from chainercv_i3d.label_names import numbered_label_names
from chainercv_i3d.links.streams import predict
from chainercv_i3d.modality import STREAMS
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.scores import final_scores
from chainercv_i3d.scores import fuse_streams
from chainercv_i3d.transforms.clip_transform import ClipTransform
from chainercv_i3d.utils.comm import rank_share
from chainercv_i3d.utils.progress import all_ranks_bar

CROP_MODES_BY_COUNT = {1: 'center', 3: 'three'}


class EvalProtocol(object):
    """How a video becomes the views a model is evaluated on.

    Args:
        sampler (ClipSampler): The clips (default the preset's
            ``eval_sampler``: DeepMind's first 251 frames, looped).
        num_crops (int): 1 (center crop) or 3 (three crops along the long
            side).
        preset (Preset): The model's preset: crop size and input ranges.
        crop_size (int): Overrides ``preset.crop_size``.

    Example:

        >>> protocol = EvalProtocol.multi_view(num_clips=2, n_frame=64,
        ...                                    num_crops=3)
        >>> protocol.n_views
        6
    """

    def __init__(self, sampler=None, num_crops=1, preset=DEEPMIND_KINETICS,
                 crop_size=None):
        if num_crops not in CROP_MODES_BY_COUNT:
            raise ValueError('num_crops must be 1 or 3, not {!r}'.format(
                num_crops))
        self.sampler = sampler or make_clip_sampler(preset.eval_sampler)
        self.preset = preset
        self.transform = ClipTransform(preset, CROP_MODES_BY_COUNT[num_crops],
                                       crop_size=crop_size)

    @classmethod
    def multi_view(cls, num_clips=1, n_frame=None, num_crops=1,
                   preset=DEEPMIND_KINETICS, crop_size=None,
                   all_frames=False):
        """``num_clips`` clips of ``n_frame`` frames (default the preset's
        clip length) times ``num_crops`` crops.

        The clips are of the preset's kind: for a preset that samples
        segments (Something-Something), ``num_clips`` views of ``n_frame``
        segments each (:class:`~chainercv_i3d.datasets.Segments`);
        otherwise uniform clips, one clip being DeepMind's first-frames
        clip. ``all_frames`` evaluates whole videos.
        """
        if all_frames:
            return cls(AllFrames(), num_crops, preset, crop_size)
        base = make_clip_sampler(preset.eval_sampler)
        n_frame = n_frame or base.n_frame
        if isinstance(base, Segments):
            sampler = Segments(n_frame, num_clips=num_clips)
        elif num_clips == 1:
            sampler = FirstFrames(n_frame)
        else:
            sampler = UniformClips(num_clips, n_frame)
        return cls(sampler, num_crops, preset, crop_size)

    @property
    def n_views(self):
        """Views per video: clips times crops."""
        return self.sampler.n_views * self.transform.n_crops

    def describe(self):
        """A JSON-ready dict naming the protocol exactly."""
        return {'clip_sampler': self.sampler.describe(),
                'num_clips': self.sampler.n_views,
                'num_crops': self.transform.n_crops,
                'crop_mode': self.transform.crop_mode,
                'crop_size': self.transform.crop_size,
                'views_per_video': self.n_views,
                'video_score': "mean of the views' logits per stream; "
                               'two_stream = rgb + flow',
                'preset': self.preset.name}


def plan_batches(indices, lengths, videos_per_batch):
    """Cuts ``indices`` into groups of videos whose clips have one length.

    With a fixed clip length every group is full but the last; when every
    frame is evaluated, videos are sorted by length and a group never mixes
    two lengths.
    """
    order = sorted(indices, key=lambda i: (lengths[i], i))
    batches = []
    for i in order:
        if batches and len(batches[-1]) < videos_per_batch and \
                lengths[batches[-1][-1]] == lengths[i]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def view_logits(model, views, batch_size, device):
    """Logits of every view, ``batch_size`` views per forward pass."""
    return numpy.concatenate([
        predict(model, views[start:start + batch_size], device)
        for start in range(0, len(views), batch_size)])


def evaluate_share(dataset, indices, models, protocol, batch_size,
                   n_workers=0, device=None, on_video=None, timings=None,
                   on_batch=None):
    """Evaluates ``indices`` of ``dataset`` with ``models``.

    Args:
        dataset (PrecomputedVideoDataset): Its ``sampler`` is set to the
            protocol's (the dataset is changed).
        indices (list of int): The examples of this rank.
        models (dict): stream -> I3D.
        protocol (EvalProtocol): Views per video.
        batch_size (int): Views per forward pass.
        n_workers (int): Loader processes (0 loads in this process).
        device (chainer.backend.Device): Where the models are (None: CPU).
        on_video (callable): Called once per video, for progress.
        timings (dict): If given, receives ``load_s`` (time spent waiting
            for loaded clips) and ``compute_s`` (forward passes).
        on_batch (callable): Called with the indices and the results of
            each batch of videos as it finishes (to save them).

    Returns:
        list of dict: Per video ``video_id``, ``label`` and either
        ``logits`` (stream -> list of float, the mean over views) or
        ``error``.
    """
    dataset.sampler = protocol.sampler
    streams = tuple(s for s in STREAMS if s in models)
    lengths = [protocol.sampler.n_frame or dataset.n_frames(i)
               for i in range(len(dataset))]
    batches = plan_batches(indices, lengths,
                           max(1, batch_size // protocol.n_views))
    order = [i for batch in batches for i in batch]
    loader = ExampleLoader(VideoViews(dataset, streams, protocol.transform),
                           n_workers, mp_context=start_method(device))
    loaded = loader.iterate(order)
    results = []
    load_s = compute_s = 0.0
    try:
        for batch in batches:
            start = time.perf_counter()
            examples = [next(loaded) for _ in batch]
            loaded_at = time.perf_counter()
            batch_results = _evaluate_batch(dataset, examples, models,
                                            streams, batch_size, device)
            results.extend(batch_results)
            load_s += loaded_at - start
            compute_s += time.perf_counter() - loaded_at
            if on_batch is not None:
                on_batch(batch, batch_results)
            if on_video is not None:
                for _ in batch:
                    on_video()
    finally:
        loader.close()
    if timings is not None:
        timings.update(load_s=load_s, compute_s=compute_s)
    return results


def evaluate_ranks(dataset, models, protocol, comm, batch_size=1,
                   n_workers=0, device=None, quiet=False, done_ids=(),
                   on_batch=None):
    """Evaluates every video of ``dataset``, shared out over the ranks.

    Each rank evaluates its share (:func:`chainercv_i3d.utils.comm.
    rank_share`) of the videos not done yet; rank 0 gathers every video's
    result, so metrics are computed once over all videos (exact for any
    number of ranks). Rank 0's progress bar counts every rank's videos.

    Args:
        dataset (PrecomputedVideoDataset): The videos.
        models (dict): stream -> I3D.
        protocol (EvalProtocol): Views per video.
        comm: The communicator (:func:`chainercv_i3d.utils.comm.get_comm`).
        batch_size (int): Views per forward pass.
        n_workers (int): Loader processes per rank.
        device (chainer.backend.Device): Where the models are.
        quiet (bool): No progress bar.
        done_ids (set of str): Videos evaluated before (a resumed run):
            skipped, and not in the results.
        on_batch (callable): :func:`evaluate_share`'s, on every rank.

    Returns:
        list of dict: On rank 0, the result of every video evaluated now
        (as :func:`evaluate_share`'s); None on the other ranks.
    """
    todo = [i for i in range(len(dataset))
            if dataset.video_id(i) not in done_ids]
    indices = rank_share(todo, comm.rank, comm.size)
    bar = all_ranks_bar(len(dataset), comm, quiet,
                        initial=len(dataset) - len(todo))
    results = evaluate_share(dataset, indices, models, protocol, batch_size,
                             n_workers, device, on_video=bar.update,
                             on_batch=on_batch)
    bar.close()  # on success only: it waits for the other ranks
    gathered = comm.gather(results)
    if comm.rank != 0:
        return None
    return [r for rank_results in gathered for r in rank_results]


def _evaluate_batch(dataset, examples, models, streams, batch_size, device):
    results = [_record(dataset, i, error=error)
               for i, inputs, error in examples if inputs is None]
    good = [(i, inputs) for i, inputs, _ in examples if inputs is not None]
    if not good:
        return results
    n_views = len(good[0][1][streams[0]])
    per_stream = {}
    for s in streams:
        views = numpy.concatenate([inputs[s] for _, inputs in good])
        logits = view_logits(models[s], views, batch_size, device)
        # (videos, views, n_class) -> the mean over each video's views.
        per_stream[s] = logits.reshape(len(good), n_views, -1).mean(
            axis=1, dtype=numpy.float64).astype(numpy.float32)
    for row, (i, _) in enumerate(good):
        results.append(_record(dataset, i, logits={
            s: per_stream[s][row].tolist() for s in streams}))
    return results


def _record(dataset, i, **fields):
    record = dataset.records[i]
    # Multi-label sets: the label set, and the annotation order (ties).
    fields.update({k: record[k] for k in ('labels', 'list_index')
                   if k in record})
    return dict(fields, video_id=record['video_id'],
                label=int(record['label']))


def _other_classes_hint(dataset, n_class):
    if n_class == len(kinetics400_label_names) \
            and tuple(dataset.preset.label_names or ()) \
            == kinetics600_label_names:
        return 'the videos are labelled in Kinetics-600\'s classes; give a ' \
            'Kinetics-600 model'
    return 'give a model of the dataset\'s classes'


def check_labels(dataset, n_class, label_names=None):
    """Refuses a dataset whose labels the model does not predict.

    Args:
        dataset (PrecomputedVideoDataset): The videos.
        n_class (int): The model's class count.
        label_names (tuple of str): The model's class names; when both they
            and the dataset's are known (not ``class_<i>`` stand-ins), they
            must agree where the dataset has labels.

    Raises:
        ValueError: The dataset is empty, a label is ``>= n_class``, or
            the two name a label differently.
    """
    if len(dataset) == 0:
        raise ValueError('{} holds no precomputed video'.format(
            dataset.storage.root))
    too_large = [r for r in dataset.records if r['label'] >= n_class]
    if too_large:
        raise ValueError('video {} has label {}, the model only {} classes: '
                         '{}'.format(too_large[0]['video_id'],
                                     too_large[0]['label'], n_class,
                                     _other_classes_hint(dataset, n_class)))
    known = dataset.preset.label_names
    if label_names is None or known is None \
            or tuple(label_names) == numbered_label_names(n_class):
        return
    for label in sorted({r['label'] for r in dataset.records}):
        if label >= len(known) or known[label] != label_names[label]:
            raise ValueError(
                'label {} is {!r} in the dataset but {!r} for the model: '
                'they have different classes (evaluate with a model of the '
                "dataset's classes)".format(
                    label, known[label] if label < len(known) else None,
                    label_names[label]))


def preset_differences(data_preset, model_preset):
    """How data precomputed with ``data_preset`` differs from what a
    model of ``model_preset`` was trained on (frame rate, short side).

    Returns:
        list of str: One line per difference (empty when they agree).
    """
    differences = []
    for key, unit in (('fps', 'fps'), ('short_side', 'px short side')):
        data, model = getattr(data_preset, key), getattr(model_preset, key)
        if data != model:
            differences.append('the data was precomputed at {} {}, the '
                               'model expects {}'.format(
                                   data or 'native', unit, model or 'native'))
    return differences


def scores_of(results):
    """``(video ids, labels, {stream: (N, n_class)})`` of the evaluated
    videos, sorted by id, the two-stream sum included."""
    ok = sorted((r for r in results if 'logits' in r),
                key=lambda r: r['video_id'])
    ids = [r['video_id'] for r in ok]
    labels = numpy.array([r['label'] for r in ok], numpy.int32)
    scores = {s: numpy.array([r['logits'][s] for r in ok], numpy.float32)
              for s in STREAMS if ok and s in ok[0]['logits']}
    return ids, labels, fuse_streams(scores)


def summarize(results, n_not_done=0, label_names=None):
    """Metrics of every stream and of the two-stream sum.

    Args:
        results (list of dict): All ranks' per-video results.
        n_not_done (int): Videos the precompute stage did not produce.
        label_names (tuple of str): The model's class names: adds
            ``per_class``, the top-1 accuracy of each class present by the
            final scores (two-stream when both streams ran).

    Returns:
        dict: ``n_evaluated``, ``n_unreadable``, ``n_missing``, per stream
        (``rgb``, ``flow``, ``two_stream``) the metrics, and ``per_class``.
        Multi-label results (label sets): mAP instead
        (:func:`~chainercv_i3d.evaluations.multilabel.summarize_multilabel`).
    """
    if is_multilabel(results):
        return summarize_multilabel(results, n_not_done, label_names)
    ids, labels, scores = scores_of(results)
    if not ids:
        raise ValueError('no video could be evaluated')
    summary = {'n_evaluated': len(ids),
               'n_unreadable': len(results) - len(ids),
               'n_missing': int(n_not_done)}
    for stream, stream_scores in scores.items():
        summary[stream] = classification_metrics(stream_scores, labels)
    if label_names is not None:
        summary['per_class'] = per_class_accuracy(final_scores(scores),
                                                  labels, label_names)
    return summary
