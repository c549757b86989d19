"""The evaluation's results for people (a table) and programs (files)."""

import json
import os

import numpy

from chainercv_i3d.files import atomic_path
from chainercv_i3d.evaluations.metrics import format_accuracy
from chainercv_i3d.evaluations.multilabel import format_multilabel_rows
from chainercv_i3d.evaluations.video_evaluation import scores_of
from chainercv_i3d.modality import STREAMS
from chainercv_i3d.scores import top_k
from chainercv_i3d.scores import TWO_STREAM


# More classes than this are in the JSON only (Kinetics has 400).
MAX_CLASSES_PRINTED = 30


def format_table(summary):
    """The summary as lines of text: counts, then one row per stream."""
    lines = ['videos evaluated: {}   unreadable: {}   missing: {}'.format(
        summary['n_evaluated'], summary['n_unreadable'],
        summary['n_missing'])]
    if 'protocol' in summary:
        p = summary['protocol']
        # Sorted keys: the same line from a run and from its JSON.
        lines.append('protocol: {} clip(s) x {} crop(s) of {}, {}'.format(
            p['num_clips'], p['num_crops'], p['crop_size'],
            json.dumps(p['clip_sampler'], sort_keys=True)))
    if summary.get('multi_label'):
        return '\n'.join(lines + format_multilabel_rows(summary))
    lines.append('{:<12} {:>8} {:>8} {:>20}'.format(
        'stream', 'top-1', 'top-5', 'mean class accuracy'))
    for stream in STREAMS + (TWO_STREAM,):
        if stream in summary:
            m = summary[stream]
            lines.append('{:<12} {:>8} {:>8} {:>20.4f}'.format(
                stream, format_accuracy(m['top1']),
                format_accuracy(m['top5']),
                m['mean_class_accuracy']))
    per_class = summary.get('per_class', ())
    if 0 < len(per_class) <= MAX_CLASSES_PRINTED:
        lines.append('top-1 per class (by the fused or only stream):')
        lines += ['  {:>8.4f} {:>6} videos  {}'.format(c['top1'], c['n'],
                                                      c['name'])
                  for c in per_class]
    return '\n'.join(lines)


def output_paths(out_path):
    """The three files of a result: the JSON summary, per-video top-5
    predictions (``.predictions.jsonl``) and logits (``.logits.npz``)."""
    stem = os.path.splitext(out_path)[0]
    return {'summary': out_path, 'predictions': stem + '.predictions.jsonl',
            'logits': stem + '.logits.npz'}


def write_results(out_path, summary, results, label_names):
    """Writes the summary, each video's top-5 classes (indices and names)
    and its logits.

    Args:
        out_path (str): The JSON summary; the two other files go beside it
            (:func:`output_paths`).
        summary (dict): :func:`summarize`'s output plus what the caller adds
            (the protocol, the models).
        results (list of dict): Every rank's per-video results.
        label_names (tuple of str): Class names, for the predictions.
    """
    paths = output_paths(out_path)
    with atomic_path(paths['summary']) as tmp, open(tmp, 'w') as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    ids, labels, scores = scores_of(results)
    with atomic_path(paths['logits']) as tmp, open(tmp, 'wb') as f:
        numpy.savez(f, video_id=numpy.array(ids), label=labels,
                    **{s: scores[s] for s in STREAMS if s in scores})
    rows = {}
    for n, video_id in enumerate(ids):
        rows[video_id] = {}
        for s, v in scores.items():
            top5 = top_k(v[n], 5).tolist()
            rows[video_id][s + '_top5'] = top5
            rows[video_id][s + '_top5_names'] = [_name(label_names, c)
                                                 for c in top5]
    with atomic_path(paths['predictions']) as tmp, open(tmp, 'w') as f:
        for r in sorted(results, key=lambda r: r['video_id']):
            line = {'video_id': r['video_id'], 'label': r['label'],
                    'label_name': _name(label_names, r['label'])}
            if 'labels' in r:  # multi-label: the video's label set
                line['labels'] = r['labels']
            if 'error' in r:
                line['error'] = r['error']
            else:
                line.update(rows[r['video_id']])
            f.write(json.dumps(line, sort_keys=True) + '\n')


def _name(label_names, label):
    return label_names[label] if 0 <= label < len(label_names) else None
