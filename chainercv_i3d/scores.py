"""Scores of one or two streams: softmax, sigmoid, top-k and the two-stream
sum.

The one place for these rules, so that the demo, the predictor, feature
extraction and the evaluation rank and fuse alike. Numpy only (a leaf).
"""

import numpy

from chainercv_i3d.modality import STREAMS

TWO_STREAM = 'two_stream'


def softmax(scores):
    """Softmax over the last axis, computed in float64."""
    scores = numpy.asarray(scores, dtype=numpy.float64)
    e = numpy.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(scores):
    """The sigmoid of each score, computed in float64: the independent
    probabilities of a multi-label model's classes."""
    scores = numpy.asarray(scores, dtype=numpy.float64)
    # exp of a non-positive number only: no overflow.
    e = numpy.exp(-numpy.abs(scores))
    return numpy.where(scores >= 0, 1 / (1 + e), e / (1 + e))


def probabilities(scores, multi_label=False):
    """The probabilities a model's scores stand for: a softmax over the
    classes, or for a multi-label model (``preset.multi_label``) the
    sigmoid of each class on its own."""
    return sigmoid(scores) if multi_label else softmax(scores)


def top_k(scores, k):
    """The ``k`` classes of highest score, best first.

    Ties are broken by class index (the lower first), so the ranking does
    not depend on batching or on the sorting algorithm.

    Args:
        scores (numpy.ndarray): ``(n_class,)`` or ``(N, n_class)``.
        k (int): How many classes (at most ``n_class`` are returned).

    Returns:
        numpy.ndarray: int64 ``(k,)`` or ``(N, k)`` class indices.
    """
    scores = numpy.asarray(scores)
    return numpy.argsort(-scores, axis=-1, kind='stable')[..., :k]


def fuse_streams(scores):
    """Adds the two-stream score, the sum of RGB's and flow's, as DeepMind's
    ``evaluate_sample.py`` sums the two logits.

    Args:
        scores (dict): stream (``'rgb'``, ``'flow'``) -> array of scores.

    Returns:
        dict: ``scores`` with ``'two_stream'`` added when both are there.
    """
    fused = dict(scores)
    if all(s in scores for s in STREAMS):
        fused[TWO_STREAM] = scores['rgb'] + scores['flow']
    return fused


def final_scores(scores):
    """The scores a video is ranked by: the fused ones with two streams,
    else those of the one stream."""
    fused = fuse_streams(scores)
    if TWO_STREAM in fused:
        return fused[TWO_STREAM]
    return next(fused[s] for s in STREAMS if s in fused)
