"""The mean over splits of per-split results (mean_over_splits.py), and
evaluate.py, eval_kinetics.py's dataset-neutral name."""

import json

import pytest

from chainercv_i3d.evaluations import mean_over_splits
from chainercv_i3d.evaluations import read_summary
from tests.conftest import run_script

PROTOCOL = {'num_clips': 1, 'num_crops': 1, 'crop_size': 224,
            'clip_sampler': {'name': 'all_frames'}}


def summary(split, rgb_top1, flow_top1, two_top1, n=100, missing=0):
    """A summary as eval_kinetics.py --out writes it (the keys read)."""
    def metrics(top1):
        return {'n': n, 'top1': top1, 'top5': 1.0,
                'mean_class_accuracy': top1 - 0.01}
    return {'n_evaluated': n, 'n_unreadable': 0, 'n_missing': missing,
            'rgb': metrics(rgb_top1), 'flow': metrics(flow_top1),
            'two_stream': metrics(two_top1), 'protocol': PROTOCOL,
            'precomputed_dir': 'ucf101_test{}'.format(split)}


SPLITS = [summary(1, 0.90, 0.92, 0.96, missing=2),
          summary(2, 0.93, 0.95, 0.97), summary(3, 0.96, 0.95, 0.98)]


def write(tmp_path, summaries):
    paths = []
    for i, s in enumerate(summaries, 1):
        path = tmp_path / 'split{}.json'.format(i)
        path.write_text(json.dumps(s))
        paths.append(str(path))
    return paths


def test_top5_not_applicable_in_the_splits_is_not_applicable_in_the_mean(
        tmp_path):
    # Fewer than 5 classes: eval_kinetics.py writes top5 null (n/a).
    splits = [summary(k, 0.5, 0.6, 0.7) for k in (1, 2)]
    for s in splits:
        for stream in ('rgb', 'flow', 'two_stream'):
            s[stream]['top5'] = None
    paths = write(tmp_path, splits)
    mean = mean_over_splits([read_summary(p) for p in paths], paths)
    assert mean['rgb']['top5'] == {'mean': None, 'per_split': [None, None]}
    assert mean['rgb']['top1']['mean'] == pytest.approx(0.5)
    result = run_script('mean_over_splits.py', *paths)
    assert result.returncode == 0, result.stderr
    assert 'rgb' in result.stdout and 'n/a' in result.stdout


def test_the_mean_of_each_stream_and_metric(tmp_path):
    paths = write(tmp_path, SPLITS)
    mean = mean_over_splits([read_summary(p) for p in paths], paths)
    assert mean['rgb']['top1']['mean'] == pytest.approx(0.93)
    assert mean['flow']['top1']['mean'] == pytest.approx(0.94)
    assert mean['two_stream']['top1']['mean'] == pytest.approx(0.97)
    assert mean['two_stream']['top1']['per_split'] == [0.96, 0.97, 0.98]
    assert mean['rgb']['mean_class_accuracy']['mean'] == \
        pytest.approx(0.92)
    assert mean['n_missing'] == [2, 0, 0]
    assert mean['splits'] == paths


@pytest.mark.parametrize('change,message', [
    (lambda s: s.pop('flow'), 'has the streams rgb, two_stream but'),
    (lambda s: s.update(protocol=dict(PROTOCOL, num_clips=10)),
     'evaluated with other protocols'),
    (lambda s: s.update(precomputed_dir='ucf101_test1'),
     'evaluate the same videos (ucf101_test1)'),
])
def test_results_that_cannot_be_averaged_are_refused(change, message):
    other = json.loads(json.dumps(SPLITS[1]))
    change(other)
    with pytest.raises(ValueError, match=message.replace('(', r'\(')
                       .replace(')', r'\)')):
        mean_over_splits([SPLITS[0], other], ['a.json', 'b.json'])


def test_one_result_is_not_a_mean():
    with pytest.raises(ValueError, match='at least two splits'):
        mean_over_splits(SPLITS[:1], ['a.json'])


def test_script_prints_and_writes_the_mean(tmp_path):
    paths = write(tmp_path, SPLITS)
    out = tmp_path / 'mean' / 'mean.json'
    result = run_script('mean_over_splits.py', *paths, '--out', out)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ['stream', 'mean']
    assert lines[3].split() == ['two_stream', '0.9700', '1.0000', '0.9600',
                                '0.9700', '0.9800']
    assert 'missing: 2, 0, 0' in result.stdout
    written = json.loads(out.read_text())
    assert written['flow']['top1']['mean'] == pytest.approx(0.94)


@pytest.mark.parametrize('content,message', [
    (None, 'no such result file: '),
    ('{"top1": ', 'is not valid JSON'),
    ('[1, 2]', 'is not an evaluation summary'),
])
def test_a_bad_file_is_named(tmp_path, content, message):
    bad = tmp_path / 'bad.json'
    if content is not None:
        bad.write_text(content)
    with pytest.raises(ValueError, match=message) as raised:
        read_summary(str(bad))
    assert str(bad) in str(raised.value)


def test_script_refuses_a_bad_file_in_one_line(tmp_path):
    paths = write(tmp_path, SPLITS[:2])
    bad = tmp_path / 'bad.json'
    bad.write_text('[1, 2]')
    result = run_script('mean_over_splits.py', paths[0], bad, paths[1],
                        '--out', tmp_path / 'mean.json')
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        'mean_over_splits: {} is not an evaluation summary (the JSON that '
        'eval_kinetics.py --out writes)'.format(bad)]
    assert not (tmp_path / 'mean.json').exists()


@pytest.mark.slow
def test_evaluate_is_eval_kinetics_under_another_name(tmp_path):
    result = run_script('evaluate.py', '--help')
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('usage: evaluate.py')
    assert '--rgb_model_checkpoint' in result.stdout
    result = run_script('evaluate.py', tmp_path)
    assert result.returncode == 2
    line, = result.stderr.strip().splitlines()[-1:]
    assert line.startswith('evaluate.py: error: give --rgb_model_checkpoint '
                           'and/or --flow_model_checkpoint')
    # Its messages name it, not eval_kinetics.
    result = run_script('evaluate.py', tmp_path, '--rgb_model_checkpoint',
                        tmp_path / 'none.npz')
    assert result.returncode == 1
    line, = result.stderr.strip().splitlines()
    assert line.startswith('evaluate: rank 0: pretrained_model ')
