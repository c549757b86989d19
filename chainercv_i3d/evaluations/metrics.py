"""Classification metrics computed from every video's scores at once.

They take the complete per-video scores (gathered from all ranks), so they
are exact: no average of per-rank or per-batch averages.
"""

import numpy

from chainercv_i3d.scores import top_k


def top_k_hits(scores, labels, k):
    """Whether each label is among the ``k`` highest scores of its row.

    Ties are broken by class index (:func:`chainercv_i3d.scores.top_k`),
    so the result does not depend on how the rows were batched.

    Args:
        scores (numpy.ndarray): ``(N, n_class)`` logits or probabilities.
        labels (numpy.ndarray): ``(N,)`` int class ids.
        k (int): How many top classes count.

    Returns:
        numpy.ndarray: ``(N,)`` bool.
    """
    top = top_k(scores, k)
    return (top == numpy.asarray(labels)[:, None]).any(axis=1)


def mean_class_accuracy(scores, labels):
    """The top-1 accuracy of each class present, averaged over classes."""
    hits = top_k_hits(scores, labels, 1)
    labels = numpy.asarray(labels)
    classes = numpy.unique(labels)
    return float(numpy.mean([hits[labels == c].mean() for c in classes]))


def classification_metrics(scores, labels):
    """Top-1, top-5 and mean per-class accuracy of a set of videos.

    Args:
        scores (numpy.ndarray): ``(N, n_class)``, ``N >= 1``.
        labels (numpy.ndarray): ``(N,)`` int class ids.

    Returns:
        dict: ``n``, ``top1``, ``top5`` (None with fewer than 5 classes),
        ``mean_class_accuracy``.

    Raises:
        ValueError: No videos, or shapes that do not match.
    """
    scores = numpy.asarray(scores)
    labels = numpy.asarray(labels)
    if scores.ndim != 2 or len(scores) == 0 or len(scores) != len(labels):
        raise ValueError('need (N, n_class) scores and N labels, N >= 1; '
                         'got {} and {}'.format(scores.shape, labels.shape))
    return {'n': int(len(labels)),
            'top1': top_k_accuracy(scores, labels, 1),
            'top5': top_k_accuracy(scores, labels, 5),
            'mean_class_accuracy': mean_class_accuracy(scores, labels)}


def top_k_accuracy(scores, labels, k):
    """The fraction of rows whose label is among their ``k`` best; None
    (not applicable) when ``k`` exceeds the class count, where every row
    would count as right.

    Example:

        >>> top_k_accuracy(numpy.array([[0., 1.]]), [0], 5) is None
        True
    """
    if k > numpy.shape(scores)[1]:
        return None
    return float(top_k_hits(scores, labels, k).mean())


def format_accuracy(value):
    """An accuracy for a table: four decimals, or ``n/a`` for None (top-k
    of fewer than k classes, :func:`top_k_accuracy`)."""
    return 'n/a' if value is None else '{:.4f}'.format(value)


def per_class_accuracy(scores, labels, label_names):
    """Top-1 accuracy of each class present, with its name.

    Returns:
        list of dict: ``label``, ``name``, ``n`` (videos) and ``top1``, by
        label.
    """
    hits = top_k_hits(scores, labels, 1)
    labels = numpy.asarray(labels)
    return [{'label': int(c), 'name': label_names[c],
             'n': int((labels == c).sum()),
             'top1': float(hits[labels == c].mean())}
            for c in numpy.unique(labels)]


def validation_loss(results, stream):
    """Mean softmax cross-entropy of the videos' (view-averaged) logits.

    Args:
        results (list of dict): Per-video results of
            :func:`~chainercv_i3d.evaluations.evaluate_ranks`: ``label``
            and ``logits`` (``{stream: (n_class,)}``); a result without
            ``logits`` (an unreadable video) is left out.
        stream (str): Whose logits: ``'rgb'`` or ``'flow'``.

    Returns:
        float: The mean over the videos of ``-log softmax(logits)[label]``.

    Example:

        >>> validation_loss([{'label': 0, 'logits': {'rgb': [0., 0.]}}],
        ...                 'rgb')  # log 2
        0.6931471805599453
    """
    good = [r for r in results if 'logits' in r]
    logits = numpy.array([r['logits'][stream] for r in good], numpy.float64)
    labels = numpy.array([r['label'] for r in good])
    logits -= logits.max(axis=1, keepdims=True)
    log_prob = logits - numpy.log(numpy.exp(logits).sum(axis=1,
                                                        keepdims=True))
    return float(-log_prob[numpy.arange(len(labels)), labels].mean())
