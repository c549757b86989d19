"""Multi-label metrics (Charades): average precision per class, and mAP.

As :mod:`~chainercv_i3d.evaluations.metrics`, they take every video's
scores at once (gathered from all ranks), so they are exact for any number
of ranks and any batch size.

The average precision of a class is computed as Charades' official
``Charades_v1_classify.m`` computes it (its ``THUMOSeventclspr``, "adapted
from THUMOS15"): the videos sorted by decreasing score, the precision at
the rank of each positive video averaged over the positives. MATLAB's
``sort`` is stable, so tied scores keep the order of the ground-truth CSV;
here too, ties keep the order of the videos given (the evaluation gives
them in the annotation file's order, ``list_index``). A class without a
positive video has no AP (the official code divides by zero, which makes
its mean ``NaN``): it is reported as ``None`` and left out of the mean,
and the summary says how many classes were left out.
"""

import numpy

from chainercv_i3d.modality import STREAMS
from chainercv_i3d.scores import final_scores
from chainercv_i3d.scores import fuse_streams
from chainercv_i3d.scores import TWO_STREAM


def average_precision(scores, positives):
    """The average precision of one class.

    Args:
        scores (numpy.ndarray): ``(N,)`` the class's score of each video.
        positives (numpy.ndarray): ``(N,)`` bool or 0/1: videos of the
            class.

    Returns:
        float: The mean over the positives of the precision at their rank
        (videos sorted by decreasing score, ties in the given order);
        ``None`` without a positive.

    Example:
        >>> average_precision([0.9, 0.8, 0.7], [1, 0, 1])  # (1 + 2/3) / 2
        0.8333333333333333
    """
    scores = numpy.asarray(scores, numpy.float64)
    positives = numpy.asarray(positives).astype(bool)
    if not positives.any():
        return None
    order = numpy.argsort(-scores, kind='stable')
    hits = positives[order]
    precision = numpy.cumsum(hits) / numpy.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / hits.sum())


def multilabel_metrics(scores, labels):
    """Average precision of every class, and their mean.

    Args:
        scores (numpy.ndarray): ``(N, n_class)`` logits or probabilities.
        labels (numpy.ndarray): ``(N, n_class)`` 0/1, the classes of each
            video.

    Returns:
        dict: ``n`` (videos), ``map`` (the mean AP over the classes with a
        positive), ``per_class_ap`` (list, ``None`` for a class without a
        positive) and ``n_class_without_positive``.

    Raises:
        ValueError: No videos, shapes that differ, or no class with a
            positive video.
    """
    scores = numpy.asarray(scores)
    labels = numpy.asarray(labels)
    if scores.ndim != 2 or len(scores) == 0 or scores.shape != labels.shape:
        raise ValueError('need (N, n_class) scores and labels, N >= 1; got '
                         '{} and {}'.format(scores.shape, labels.shape))
    aps = [average_precision(scores[:, c], labels[:, c])
           for c in range(scores.shape[1])]
    present = [ap for ap in aps if ap is not None]
    if not present:
        raise ValueError('no class has a positive video: mAP is undefined')
    return {'n': int(len(scores)), 'map': float(numpy.mean(present)),
            'per_class_ap': aps,
            'n_class_without_positive': len(aps) - len(present)}


def is_multilabel(results):
    """Whether evaluation results have label sets (``labels``)."""
    return any('labels' in r for r in results)


def multilabel_scores(results, n_class):
    """``(ids, labels (N, n_class) 0/1, {stream: (N, n_class)})`` of the
    evaluated videos in the annotation file's order (``list_index``, else
    the id), the two-stream sum included."""
    ok = sorted((r for r in results if 'logits' in r),
                key=lambda r: (r.get('list_index', 0), r['video_id']))
    labels = numpy.zeros((len(ok), n_class), numpy.int32)
    for row, r in enumerate(ok):
        labels[row, r['labels']] = 1
    scores = {s: numpy.array([r['logits'][s] for r in ok], numpy.float32)
              for s in STREAMS if ok and s in ok[0]['logits']}
    return [r['video_id'] for r in ok], labels, fuse_streams(scores)


def summarize_multilabel(results, n_not_done=0, label_names=None):
    """:func:`~chainercv_i3d.evaluations.summarize` for label sets: mAP
    per stream (and two-stream) and the AP of each class.

    Returns:
        dict: ``multi_label: True``, ``n_evaluated``, ``n_unreadable``,
        ``n_missing``, per stream :func:`multilabel_metrics` without
        ``per_class_ap``, and ``per_class`` (``label``, ``name``,
        ``n`` positives, ``ap``) by the final scores.
    """
    good = [r for r in results if 'logits' in r]
    if not good:
        raise ValueError('no video could be evaluated')
    n_class = len(good[0]['logits'][next(iter(good[0]['logits']))])
    ids, labels, scores = multilabel_scores(results, n_class)
    summary = {'multi_label': True, 'n_evaluated': len(ids),
               'n_unreadable': len(results) - len(ids),
               'n_missing': int(n_not_done)}
    for stream, stream_scores in scores.items():
        metrics = multilabel_metrics(stream_scores, labels)
        summary[stream] = {k: v for k, v in metrics.items()
                           if k != 'per_class_ap'}
    aps = multilabel_metrics(final_scores(scores), labels)['per_class_ap']
    names = label_names or ['class_{}'.format(c) for c in range(n_class)]
    summary['per_class'] = [
        {'label': c, 'name': names[c], 'n': int(labels[:, c].sum()),
         'ap': aps[c]} for c in range(n_class)]
    return summary


def format_multilabel_rows(summary):
    """The table lines of a multi-label summary: mAP per stream."""
    lines = ['{:<12} {:>8} {:>26}'.format('stream', 'mAP',
                                          'classes without positive')]
    for stream in STREAMS + (TWO_STREAM,):
        if stream in summary:
            m = summary[stream]
            lines.append('{:<12} {:>8.4f} {:>26}'.format(
                stream, m['map'], m['n_class_without_positive']))
    return lines


def sigmoid_cross_entropy(logits, labels):
    """The mean over videos and classes of the binary cross-entropy of
    ``sigmoid(logits)`` against 0/1 ``labels`` (the training loss)."""
    x = numpy.asarray(logits, numpy.float64)
    t = numpy.asarray(labels, numpy.float64)
    # log(1 + exp(-|x|)) + max(x, 0) - x t: stable for any x.
    return float(numpy.mean(numpy.log1p(numpy.exp(-numpy.abs(x)))
                            + numpy.maximum(x, 0) - x * t))
