"""Pictures of an evaluation's results (the files of ``eval_kinetics.py
--out``): top-1 accuracy per class, the most confused class pairs, and
top-1 / top-5 accuracy of each stream and of their fusion, as PNG files.

Drawn with matplotlib's object API (``matplotlib.figure.Figure``), never
pyplot, so that no global backend or state is touched.
"""

import collections
import json
import os

import numpy

from chainercv_i3d.evaluations.results import output_paths
from chainercv_i3d.files import atomic_path
from chainercv_i3d.files import check_output_dir
from chainercv_i3d.files import reading_npz
from chainercv_i3d.modality import STREAMS
from chainercv_i3d.pretrained.models import MODELS
from chainercv_i3d.pretrained.npz_weights import describe_npz
from chainercv_i3d.scores import final_scores
from chainercv_i3d.scores import TWO_STREAM

# Bars per per-class picture: 400 Kinetics classes make 8 readable pages.
CLASSES_PER_IMAGE = 50
# Confused pairs drawn by default.
TOP_PAIRS = 20
INDEX_NAME = 'plots.json'
STREAM_TITLES = {'rgb': 'RGB', 'flow': 'flow', TWO_STREAM: 'RGB + flow'}
CHECKPOINT_KEYS = ('rgb_model_checkpoint', 'flow_model_checkpoint')


class EvaluationResults(object):
    """The three files of one evaluation, read and checked.

    Attributes:
        summary_path (str): The JSON summary.
        summary (dict): Its content: per-stream metrics (``rgb``, ``flow``,
            ``two_stream``), ``per_class``, ``protocol``, ...
        labels (numpy.ndarray): ``(N,)`` int32 true class of each video.
        scores (dict): stream -> ``(N, n_class)`` float32 per-video scores.
        label_names (list of str): A name for every class the scores have:
            the models' own where they can be read, else the names of the
            classes present, else ``class_<i>``.
    """

    def __init__(self, summary_path, summary, labels, scores, label_names):
        self.summary_path = summary_path
        self.summary = summary
        self.labels = labels
        self.scores = scores
        self.label_names = label_names

    @property
    def streams(self):
        """The streams with metrics, RGB and flow first, the fusion last."""
        return [s for s in STREAMS + (TWO_STREAM,) if s in self.summary]

    @property
    def ranked_by(self):
        """The stream whose scores rank a video (the fusion with two)."""
        return TWO_STREAM if TWO_STREAM in self.summary else self.streams[0]


def read_results(summary_path):
    """Reads ``results.json`` and the ``results.logits.npz`` beside it.

    Args:
        summary_path (str): The ``--out`` file of ``eval_kinetics.py``.

    Returns:
        EvaluationResults: The summary, labels, scores and class names.

    Raises:
        ValueError: A file is missing or unreadable, or is not what
            ``eval_kinetics.py --out`` writes; the message says which.
    """
    summary = _read_summary(summary_path)
    labels, scores = _read_logits(output_paths(summary_path)['logits'])
    n_class = next(iter(scores.values())).shape[1]
    names = _label_names(summary, summary_path, n_class)
    return EvaluationResults(summary_path, summary, labels, scores, names)


def _read_summary(path):
    if not os.path.isfile(path):
        raise ValueError('no such file: {}'.format(path))
    try:
        with open(path) as f:
            summary = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError('{} is not a JSON file ({})'.format(path, e))
    streams = [s for s in STREAMS + (TWO_STREAM,)
               if isinstance(summary, dict) and s in summary]
    if not streams or not all(isinstance(summary[s], dict) and
                              {'top1', 'top5'} <= set(summary[s])
                              for s in streams):
        raise ValueError('{} is not an evaluation result: it has no rgb, '
                         'flow or two_stream metrics (write one with '
                         'eval_kinetics.py --out)'.format(path))
    return summary


def _read_logits(path):
    if not os.path.isfile(path):
        raise ValueError('no such file: {} (eval_kinetics.py --out writes '
                         'it beside the JSON summary)'.format(path))
    with reading_npz(path, 'write it again with eval_kinetics.py --out'):
        with numpy.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    scores = {s: arrays[s].astype(numpy.float32) for s in STREAMS
              if s in arrays}
    labels = arrays.get('label')
    if labels is None or not scores or any(
            v.ndim != 2 or len(v) != len(labels) for v in scores.values()):
        raise ValueError('{} is not the logits file of an evaluation (it '
                         'needs label and rgb and/or flow scores of one row '
                         'per video)'.format(path))
    return labels.astype(numpy.int32), scores


def _label_names(summary, summary_path, n_class):
    """Class names: the first model's that can be read without a download,
    with the names of the classes present (``per_class``) filled in."""
    names = ['class_{}'.format(i) for i in range(n_class)]
    for entry in summary.get('per_class', ()):
        if 0 <= entry['label'] < n_class:
            names[entry['label']] = entry['name']
    for key in CHECKPOINT_KEYS:
        model_names = _model_label_names(summary.get(key), summary_path)
        if model_names is not None and len(model_names) == n_class:
            return list(model_names)
    return names


def _model_label_names(checkpoint, summary_path):
    # A pretrained name, or an .npz path as given to eval_kinetics.py
    # (relative to where it ran: tried as given, then beside the JSON).
    if not checkpoint:
        return None
    if checkpoint in MODELS:
        return MODELS[checkpoint]['preset'].label_names
    for path in (checkpoint, os.path.join(os.path.dirname(summary_path),
                                          checkpoint)):
        if os.path.isfile(path):
            try:
                return describe_npz(path)['preset'].label_names
            except ValueError:
                return None
    return None


def confused_pairs(labels, scores, top_n=TOP_PAIRS):
    """The most frequent (true class, predicted class) mistakes.

    Args:
        labels (numpy.ndarray): ``(N,)`` true classes.
        scores (dict): stream -> ``(N, n_class)`` scores; the fused ones
            rank when both streams are there.
        top_n (int): Pairs returned at most.

    Returns:
        list of tuple: ``(label, pred_label, count, n_label)``, most
        frequent first (ties by label, then prediction); ``n_label`` is the
        number of videos of ``label``.
    """
    pred_labels = final_scores(scores).argmax(axis=1)
    wrong = pred_labels != labels
    mistakes = collections.Counter(zip(labels[wrong].tolist(),
                                       pred_labels[wrong].tolist()))
    n_per_label = collections.Counter(labels.tolist())
    ranked = sorted(mistakes.items(), key=lambda item: (-item[1], item[0]))
    return [(label, pred_label, count, n_per_label[label])
            for (label, pred_label), count in ranked[:top_n]]


def _new_figure(width, height):
    # Heavy; imported only when a picture is drawn.
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=100, layout='constrained')


def _save(figure, path):
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format='png')
    return path


def draw_per_class(results, out_dir, classes_per_image=CLASSES_PER_IMAGE):
    """Top-1 accuracy of each class, sorted, best first, as horizontal bars
    with the class names; ``classes_per_image`` classes per PNG.

    Args:
        results (EvaluationResults): What :func:`read_results` returns.
        out_dir (str): The folder of the PNGs.
        classes_per_image (int): Bars per picture.

    Returns:
        list of str: ``per_class_top1_<k>.png`` paths, best classes first
        (empty when the summary has no ``per_class``).
    """
    per_class = sorted(results.summary.get('per_class', ()),
                       key=lambda c: (-c['top1'], c['name']))
    overall = results.summary[results.ranked_by]['top1']
    paths = []
    for page, start in enumerate(range(0, len(per_class),
                                       classes_per_image)):
        rows = per_class[start:start + classes_per_image]
        figure = _new_figure(9, 1.3 + 0.24 * len(rows))
        axes = figure.subplots()
        y = numpy.arange(len(rows))
        axes.barh(y, [c['top1'] for c in rows], color='tab:blue')
        axes.set_yticks(y, ['{} ({})'.format(c['name'], c['n'])
                            for c in rows], fontsize=8)
        for row, c in zip(y, rows):
            axes.text(min(c['top1'], 1.0) + 0.01, row,
                      '{:.0%}'.format(c['top1']), va='center', fontsize=7)
        axes.axvline(overall, color='tab:red', linestyle='--', linewidth=1)
        axes.set_xlim(0, 1.1)
        axes.set_ylim(len(rows) - 0.5, -0.5)  # best at the top, no margin
        axes.set_xlabel('top-1 accuracy ({}); (n) = videos of the class'
                        .format(STREAM_TITLES[results.ranked_by]))
        axes.grid(True, axis='x', alpha=0.3)
        axes.set_title('Top-1 accuracy per class, ranks {}-{} of {}\n'
                       '(red dashes: top-1 over all videos, {:.1%})'.format(
                           start + 1, start + len(rows), len(per_class),
                           overall), fontsize=10)
        paths.append(_save(figure, os.path.join(
            out_dir, 'per_class_top1_{:02d}.png'.format(page + 1))))
    return paths


def draw_confused_pairs(results, out_dir, top_n=TOP_PAIRS):
    """The ``top_n`` most frequent mistakes as horizontal bars labelled
    "true class -> predicted class".

    Returns:
        str: The path of ``confused_pairs.png``.
    """
    pairs = confused_pairs(results.labels, results.scores, top_n)
    names = results.label_names
    figure = _new_figure(10, 1.5 + 0.3 * max(len(pairs), 1))
    axes = figure.subplots()
    y = numpy.arange(len(pairs))
    axes.barh(y, [p[2] for p in pairs], color='tab:orange')
    axes.set_yticks(y, ['{} \u2192 {}'.format(names[p[0]], names[p[1]])
                        for p in pairs], fontsize=8)
    axes.set_ylim(max(len(pairs), 1) - 0.5, -0.5)  # most frequent on top
    for row, (_, _, count, n_label) in zip(y, pairs):
        axes.text(count, row, ' {} of {}'.format(count, n_label),
                  va='center', fontsize=7)
    if pairs:
        axes.set_xlim(0, max(p[2] for p in pairs) * 1.2)
        axes.xaxis.get_major_locator().set_params(integer=True)
    else:
        axes.text(0.5, 0.5, 'no mistakes', ha='center', va='center',
                  transform=axes.transAxes)
        axes.set_xticks([])
        axes.set_yticks([])
    axes.set_xlabel('videos of the true class predicted as the other '
                    '({}, top-1)'.format(STREAM_TITLES[results.ranked_by]))
    axes.grid(True, axis='x', alpha=0.3)
    n_wrong = int((final_scores(results.scores).argmax(axis=1) !=
                   results.labels).sum())
    axes.set_title('Most confused class pairs: true \u2192 predicted '
                   '({} of {} videos wrong)'.format(n_wrong,
                                                    len(results.labels)))
    return _save(figure, os.path.join(out_dir, 'confused_pairs.png'))


def draw_streams(results, out_dir):
    """Top-1 and top-5 accuracy of each stream and of the fusion, side by
    side, with the values written on the bars.

    Returns:
        str: The path of ``streams_topk.png``.
    """
    streams = results.streams
    # Wide enough for the title's protocol line with one stream.
    figure = _new_figure(max(4.8, 1.8 + 1.6 * len(streams)), 4.5)
    axes = figure.subplots()
    x = numpy.arange(len(streams))
    width = 0.38
    for offset, key, colour in ((-width / 2, 'top1', 'tab:blue'),
                                (width / 2, 'top5', 'tab:green')):
        values = [results.summary[s][key] for s in streams]
        # None: top-5 of fewer than 5 classes, not applicable (no bar).
        bars = axes.bar(x + offset, [numpy.nan if v is None else v
                                     for v in values], width, color=colour,
                        label=key.replace('top', 'top-'))
        axes.bar_label(bars, ['n/a' if v is None else '{:.1%}'.format(v)
                              for v in values], fontsize=8, padding=2)
    axes.set_xticks(x, [STREAM_TITLES[s] for s in streams])
    axes.set_ylim(0, 1.12)
    axes.set_ylabel('accuracy')
    axes.legend(loc='upper left', fontsize=8, ncols=2)
    axes.grid(True, axis='y', alpha=0.3)
    axes.set_title('Accuracy by stream\n({} videos{})'.format(
        results.summary.get('n_evaluated', len(results.labels)),
        _protocol_text(results.summary.get('protocol'))), fontsize=10)
    return _save(figure, os.path.join(out_dir, 'streams_topk.png'))


def _protocol_text(protocol):
    if not protocol:
        return ''
    return ', {} clip(s) x {} crop(s) of {}'.format(
        protocol.get('num_clips'), protocol.get('num_crops'),
        protocol.get('crop_size'))


def plot_results(summary_path, out_dir, classes_per_image=CLASSES_PER_IMAGE,
                 top_pairs=TOP_PAIRS):
    """Draws every picture of an evaluation and writes an index of them.

    Args:
        summary_path (str): ``results.json`` of ``eval_kinetics.py --out``,
            its ``.logits.npz`` beside it.
        out_dir (str): The folder of the pictures (created).
        classes_per_image (int): Bars per per-class picture.
        top_pairs (int): Confused pairs drawn.

    Returns:
        dict: What :data:`INDEX_NAME` (``plots.json``, in ``out_dir``) holds:
        ``results`` (the summary's path), ``per_class`` (list of paths),
        ``confused_pairs``, ``streams`` (paths) and ``ranked_by`` (the
        stream whose predictions were counted).

    Raises:
        ValueError: The results are missing or malformed, or ``out_dir``
            cannot be written (checked before drawing; it is created, with
            its missing parents, by the first picture).

    Example:

        >>> plot_results('results.json', 'report')['streams']
        'report/streams_topk.png'
    """
    if classes_per_image < 1 or top_pairs < 1:
        raise ValueError('classes_per_image and top_pairs must be >= 1')
    results = read_results(summary_path)
    check_output_dir(out_dir)  # created by the first picture written
    index = {'results': summary_path, 'ranked_by': results.ranked_by,
             'per_class': draw_per_class(results, out_dir,
                                         classes_per_image),
             'confused_pairs': draw_confused_pairs(results, out_dir,
                                                   top_pairs),
             'streams': draw_streams(results, out_dir)}
    with atomic_path(os.path.join(out_dir, INDEX_NAME)) as tmp, \
            open(tmp, 'w') as f:
        json.dump(index, f, indent=1)
    return index

