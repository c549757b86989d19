"""The mean over a dataset's splits of per-split evaluation results.

UCF101 and HMDB51 are reported as the mean accuracy over their three
train/test splits ("Quo Vadis" Table 5: "averaged over three splits"). Each
split is evaluated on its own (``eval_kinetics.py ... --out splitK.json``,
the models fine-tuned on that split); this averages the JSON summaries.

Example:
    >>> summaries = [read_summary(p) for p in ('s1.json', 's2.json',
    ...                                        's3.json')]
    >>> mean = mean_over_splits(summaries, ('s1.json', 's2.json',
    ...                                     's3.json'))
    >>> mean['two_stream']['top1']['mean']
    0.97...
"""

import json
import os

from chainercv_i3d.evaluations.metrics import format_accuracy
from chainercv_i3d.modality import STREAMS
from chainercv_i3d.scores import TWO_STREAM

METRICS = ('top1', 'top5', 'mean_class_accuracy')
# The keys of an evaluation summary (eval_kinetics.py --out).
_COUNTS = ('n_evaluated', 'n_missing')


def read_summary(path):
    """Reads an evaluation summary (``eval_kinetics.py --out``).

    Raises:
        ValueError: The file is missing, not JSON, or not a summary.
    """
    if not os.path.isfile(path):
        raise ValueError('no such result file: {}'.format(path))
    with open(path, encoding='utf-8') as f:
        try:
            summary = json.load(f)
        except ValueError as e:
            raise ValueError('{} is not valid JSON: {}'.format(path, e))
    if not isinstance(summary, dict) or not all(k in summary
                                                for k in _COUNTS):
        raise ValueError('{} is not an evaluation summary (the JSON that '
                         'eval_kinetics.py --out writes)'.format(path))
    return summary


def _streams(summary):
    return tuple(s for s in STREAMS + (TWO_STREAM,) if s in summary)


def _check_comparable(summaries, paths):
    first, first_path = summaries[0], paths[0]
    seen = {}
    for summary, path in zip(summaries, paths):
        if _streams(summary) != _streams(first):
            raise ValueError('{} has the streams {} but {} has {}: evaluate '
                             'every split with the same models'.format(
                                 path, ', '.join(_streams(summary)),
                                 first_path, ', '.join(_streams(first))))
        if summary.get('protocol') != first.get('protocol'):
            raise ValueError('{} and {} were evaluated with other protocols '
                             '(clips, crops, frames): evaluate every split '
                             'alike'.format(first_path, path))
        where = summary.get('precomputed_dir')
        if where is not None and where in seen:
            raise ValueError('{} and {} evaluate the same videos ({}): give '
                             'one result per split'.format(seen[where], path,
                                                           where))
        seen[where] = path


def mean_over_splits(summaries, paths):
    """The mean over splits of each stream's metrics.

    Args:
        summaries (list of dict): One evaluation summary per split
            (:func:`read_summary`), at least two.
        paths (list of str): Their files, named in errors and the result.

    Returns:
        dict: ``splits`` (the files), ``n_evaluated`` and ``n_missing``
        (lists, one per split) and, per stream present (``rgb``, ``flow``,
        ``two_stream``), per metric (``top1``, ``top5``,
        ``mean_class_accuracy``): ``{'mean': float, 'per_split': [...]}``;
        the mean is None where a split's is (top-5 of fewer than 5
        classes: not applicable).

    Raises:
        ValueError: Fewer than two results, or results that cannot be
            averaged: other streams or protocols, the same videos twice.
    """
    summaries, paths = list(summaries), [str(p) for p in paths]
    if len(summaries) < 2:
        raise ValueError('give the results of at least two splits (UCF101 '
                         'and HMDB51 have three), not {}'.format(
                             len(summaries)))
    _check_comparable(summaries, paths)
    mean = {'splits': paths}
    for key in _COUNTS:
        mean[key] = [int(s[key]) for s in summaries]
    for stream in _streams(summaries[0]):
        mean[stream] = {}
        for metric in METRICS:
            values = [s[stream][metric] for s in summaries]
            average = None if None in values else \
                sum(map(float, values)) / len(values)
            mean[stream][metric] = {'mean': average, 'per_split': values}
    return mean


def format_split_mean(mean):
    """The mean as lines of text: one row per stream, the splits' top-1
    beside the mean, then the videos evaluated and missing per split."""
    n = len(mean['splits'])
    lines = ['{:<12} {:>11} {:>11}  {}'.format(
        'stream', 'mean top-1', 'mean top-5',
        ' '.join('{:>8}'.format('split {}'.format(i + 1))
                 for i in range(n)))]
    for stream in STREAMS + (TWO_STREAM,):
        if stream in mean:
            m = mean[stream]
            lines.append('{:<12} {:>11} {:>11}  {}'.format(
                stream, format_accuracy(m['top1']['mean']),
                format_accuracy(m['top5']['mean']),
                ' '.join('{:>8}'.format(format_accuracy(v))
                         for v in m['top1']['per_split'])))
    lines.append('videos evaluated per split: {}; missing: {}'.format(
        ', '.join(map(str, mean['n_evaluated'])),
        ', '.join(map(str, mean['n_missing']))))
    for path in mean['splits']:
        lines.append('  ' + path)
    return '\n'.join(lines)
