import json
import os
import re
import zipfile

import numpy
import pytest

from chainercv_i3d.evaluations.feature_comparison import CLOSE_COSINE
from chainercv_i3d.evaluations.feature_comparison import compare_arrays
from chainercv_i3d.evaluations.feature_comparison import compare_files
from chainercv_i3d.evaluations.feature_comparison import compare_folders
from chainercv_i3d.evaluations.feature_comparison import exit_status
from chainercv_i3d.evaluations.feature_comparison import feature_files
from chainercv_i3d.evaluations.feature_comparison import load_features
from chainercv_i3d.evaluations.feature_comparison import SAME_COSINE
from chainercv_i3d.evaluations.feature_comparison import verdict_of
from tests.conftest import load_example
from tests.conftest import run_script

SCRIPT = 'compare_features.py'


def features(t=12, d=16, seed=0):
    """Non-negative features (post-ReLU pooling) of ``t`` steps."""
    return numpy.random.RandomState(seed).uniform(0, 1, (t, d))


def with_cosine(a, cosine, seed=1):
    """Vectors of the norms of ``a``'s rows whose cosine with them is exactly
    ``cosine`` (each row turned towards a random orthogonal direction)."""
    noise = numpy.random.RandomState(seed).normal(size=a.shape)
    unit = a / numpy.linalg.norm(a, axis=-1, keepdims=True)
    noise -= (noise * unit).sum(axis=-1, keepdims=True) * unit
    noise /= numpy.linalg.norm(noise, axis=-1, keepdims=True)
    sine = numpy.sqrt(1 - cosine ** 2)
    return numpy.linalg.norm(a, axis=-1, keepdims=True) * (
        cosine * unit + sine * noise)


def test_identical_features_are_the_same_at_offset_zero():
    a = features()
    r = compare_arrays(a, a.copy())
    assert r['verdict'] == 'same'
    assert r['offset'] == 0 and r['n_steps_compared'] == 12
    assert r['cosine']['mean'] == pytest.approx(1)
    assert r['cosine']['min'] == pytest.approx(1)
    assert r['pearson']['overall'] == pytest.approx(1)
    assert r['pearson']['per_dimension_mean'] == pytest.approx(1)
    assert r['error'] == {'max_abs': 0, 'mean_abs': 0, 'rms': 0,
                          'relative': 0}
    assert r['norm_ratio'] == pytest.approx(1)
    assert sorted(r['offset_cosines']) == list(range(-6, 7))  # half overlap
    assert len(r['per_step']['cosine']) == 12
    assert len(r['per_dimension']['rms']) == 16
    assert r['notes'] == []


@pytest.mark.parametrize('shift', [3, -2])
def test_a_shifted_copy_is_found(shift):
    a = features(20)
    theirs = a[shift:] if shift > 0 else numpy.concatenate(
        [features(-shift, seed=5), a])
    r = compare_arrays(a, theirs)
    assert r['offset'] == shift
    assert r['verdict'] == 'same'
    assert r['cosine']['mean'] == pytest.approx(1)
    assert r['n_steps_compared'] == 20 - max(shift, 0)
    assert r['per_step']['steps'][0] == max(shift, 0)
    assert any('lengths differ' in n for n in r['notes'])
    # Without the search the same pair is different.
    assert compare_arrays(a, theirs, max_offset=0)['verdict'] == 'different'


def test_ties_take_the_smallest_offset():
    a = numpy.ones((10, 8))  # every offset matches perfectly
    assert compare_arrays(a, a)['offset'] == 0
    assert compare_arrays(a, a[2:])['offset'] == 0


def test_verdict_thresholds():
    assert verdict_of(SAME_COSINE)[0] == 'same'
    assert verdict_of(SAME_COSINE - 1e-6)[0] == 'close'
    assert verdict_of(CLOSE_COSINE)[0] == 'close'
    assert verdict_of(CLOSE_COSINE - 1e-6)[0] == 'different'
    assert '>= 0.999' in verdict_of(1.0)[1]
    assert '< 0.99' in verdict_of(0.5)[1]


@pytest.mark.parametrize('cosine,verdict', [
    (0.9995, 'same'), (0.995, 'close'), (0.98, 'different')])
def test_noise_lowers_cosine_across_the_thresholds(cosine, verdict):
    a = features(10, 32)
    b = with_cosine(a, cosine)
    r = compare_arrays(a, b, max_offset=0)
    assert r['cosine']['mean'] == pytest.approx(cosine, abs=1e-9)
    assert r['verdict'] == verdict
    assert r['norm_ratio'] == pytest.approx(1)
    assert r['error']['relative'] == pytest.approx(
        numpy.sqrt(2 - 2 * cosine), rel=1e-6)


def test_random_noise_of_growing_size():
    a = features(16, 64)
    noise = numpy.random.RandomState(3).normal(size=a.shape)
    verdicts = [compare_arrays(a, a + s * noise)['verdict']
                for s in (0.01, 0.05, 0.3)]
    assert verdicts == ['same', 'close', 'different']


def test_errors_and_correlations_against_direct_formulas():
    a = features(6, 4)
    b = 2 * a + 1
    r = compare_arrays(a, b, max_offset=0)
    diff = numpy.abs(a - b)
    assert r['error']['max_abs'] == pytest.approx(diff.max())
    assert r['error']['mean_abs'] == pytest.approx(diff.mean())
    assert r['error']['rms'] == pytest.approx(numpy.sqrt((diff ** 2).mean()))
    assert r['error']['relative'] == pytest.approx(
        numpy.linalg.norm(a - b) / numpy.linalg.norm(b))
    # An affine change keeps every per-dimension correlation at 1.
    assert r['pearson']['per_dimension_mean'] == pytest.approx(1)
    assert r['pearson']['overall'] == pytest.approx(
        numpy.corrcoef(a.ravel(), b.ravel())[0, 1])
    worst = int(numpy.argmax(numpy.sqrt((diff ** 2).mean(axis=0))))
    assert r['worst_dimension']['dimension'] == worst
    assert r['per_dimension']['max_abs'] == pytest.approx(diff.max(axis=0))
    cos = (a * b).sum(1) / numpy.linalg.norm(a, axis=1) / \
        numpy.linalg.norm(b, axis=1)
    assert r['per_step']['cosine'] == pytest.approx(cos)
    assert r['cosine']['min_step'] == int(numpy.argmin(cos))


def test_a_scale_difference_is_said_though_the_cosine_is_one():
    a = features()
    normalized = a / numpy.linalg.norm(a, axis=1, keepdims=True)
    r = compare_arrays(a, normalized)
    assert r['verdict'] == 'same'
    assert 'scale differs' in r['verdict_text']
    assert r['norm_ratio'] > 1.5


def test_per_crop_and_mean_over_crops():
    a = numpy.stack([features(8, 16, seed=s) for s in range(3)], axis=1)
    b = a.copy()
    b[:, 2] = with_cosine(a[:, 2], 0.9)
    r = compare_arrays(a, b)
    assert r['offset'] == 0
    assert r['per_crop_cosine'] == pytest.approx([1, 1, 0.9])
    assert r['cosine']['mean'] == pytest.approx(2.9 / 3)
    assert compare_arrays(a, b, crops='each')['per_crop_cosine'] == \
        r['per_crop_cosine']
    two_d = a.mean(axis=1)
    with pytest.raises(ValueError, match='crop counts differ: ours 3, '
                       'theirs 1 .no crop axis.; --crops mean'):
        compare_arrays(a, two_d)
    with pytest.raises(ValueError, match='--crops each needs'):
        compare_arrays(a, two_d, crops='each')
    r = compare_arrays(a, two_d, crops='mean')
    assert r['verdict'] == 'same' and 'per_crop_cosine' not in r
    assert 'averaged over crops: ours 3, theirs 1' in r['notes']


def test_feature_sizes_that_differ():
    a = features(8, 1024)
    flow = features(8, 1024, seed=9)
    two_stream = numpy.concatenate([a, flow], axis=1)
    r = compare_arrays(a, two_stream)
    assert r['verdict'] == 'not_comparable'
    assert r['verdict_text'].startswith(
        'not comparable: D 1024 vs 2048 - ours is Inception-I3D, one stream,'
        ' theirs perhaps two-stream Inception-I3D')
    assert '--streams rgb' in r['verdict_text']
    assert 'cosine' not in r
    rgb = compare_arrays(a, two_stream, streams='rgb')
    assert rgb['verdict'] == 'same'
    assert 'theirs has D 2048 = 2 x 1024: compared its rgb half, dims 0 to ' \
        '1023 (two streams, RGB first)' in rgb['notes']
    assert compare_arrays(two_stream, flow, streams='flow')['verdict'] == \
        'same'
    assert compare_arrays(two_stream, a, streams='flow')['verdict'] == \
        'different'
    other = compare_arrays(a, features(8, 700))
    assert other['verdict'] == 'not_comparable'
    assert 'theirs perhaps' not in other['verdict_text']
    assert '--streams' not in other['verdict_text']
    transposed = compare_arrays(features(30, 64), features(30, 64).T)
    assert 'theirs (64, 30) looks like (D, T)' in transposed['verdict_text']


def test_one_vector_against_steps_uses_the_mean_over_time():
    a = features(10)
    r = compare_arrays(a.mean(axis=0), a)
    assert r['verdict'] == 'same' and r['n_steps_compared'] == 1
    assert r['pearson']['per_dimension_mean'] is None  # one sample
    assert "ours is one vector (D,): compared with the mean of the other " \
        "side's 10 steps" in r['notes']


def test_a_length_ratio_is_noted():
    a = features(24)
    r = compare_arrays(a, a[::2])
    assert r['length_ratio'] == 2
    assert any('ours has 2.00 times the steps' in n for n in r['notes'])


def test_load_features_formats(tmp_path):
    a = features(5, 4).astype(numpy.float32)
    numpy.save(str(tmp_path / 'a.npy'), a)
    numpy.savez(str(tmp_path / 'one.npz'), feats=a)
    numpy.savez(str(tmp_path / 'two.npz'), rgb=a, flow=2 * a)
    numpy.save(str(tmp_path / 'ints.npy'), numpy.arange(6).reshape(2, 3))
    loaded = load_features(str(tmp_path / 'a.npy'))
    assert loaded.dtype == numpy.float64
    numpy.testing.assert_array_equal(loaded, a)
    numpy.testing.assert_array_equal(load_features(str(tmp_path /
                                                       'one.npz')), a)
    numpy.testing.assert_array_equal(
        load_features(str(tmp_path / 'two.npz'), key='flow'), 2 * a)
    # A .npy ignores --key; the format is read from the bytes.
    numpy.testing.assert_array_equal(
        load_features(str(tmp_path / 'a.npy'), key='flow'), a)
    os.rename(str(tmp_path / 'one.npz'), str(tmp_path / 'renamed.bin'))
    assert load_features(str(tmp_path / 'renamed.bin')).shape == (5, 4)
    assert load_features(str(tmp_path / 'ints.npy')).shape == (2, 3)


def bad_inputs(folder):
    """Writes one file per bad input; returns ``{name: expected message}``."""
    def save(name, array):
        numpy.save(str(folder / name), array)
    save('nan.npy', numpy.array([[0, numpy.nan], [1, 2]]))
    save('inf.npy', numpy.array([0, numpy.inf]))
    save('empty.npy', numpy.zeros((0, 4)))
    save('maps.npy', numpy.zeros((2, 3, 4, 4)))
    save('bools.npy', numpy.ones(3, bool))
    save('objects.npy', numpy.array([{'a': 1}], dtype=object))
    (folder / 'text.npy').write_text('not numpy')
    (folder / 'model.pt').write_bytes(b'\x80\x02torch')
    with zipfile.ZipFile(str(folder / 'plain.npz'), 'w') as z:
        z.writestr('readme.txt', 'hello')
    (folder / 'cut.npy').write_bytes(b'\x93NUMPY\x01\x00')
    numpy.savez(str(folder / 'two.npz'), x=numpy.ones(3), y=numpy.ones(3))
    with zipfile.ZipFile(str(folder / 'two.npz')) as z:
        member = z.read('x.npy')
    with zipfile.ZipFile(str(folder / 'cut.npz'), 'w') as z:
        z.writestr('x.npy', member[:-8])
    return {'missing.npy': 'no such file',
            'nan.npy': '1 NaN and 0 infinite values of 4',
            'inf.npy': '0 NaN and 1 infinite values of 2',
            'empty.npy': r'empty array, shape \(0, 4\)',
            'maps.npy': r'shape \(2, 3, 4, 4\) is not \(D,\), \(T, D\) or',
            'bools.npy': 'dtype bool is not a real number type',
            'objects.npy': 'not a readable numpy array',
            'text.npy': r'not a numpy file \(.npy or .npz',
            'model.pt': r'not a numpy file .* such as .pt',
            'plain.npz': 'a zip archive that is not an .npz',
            'cut.npy': 'not a readable numpy array',
            'cut.npz': "array 'x' cannot be read",
            'two.npz': r'holds 2 arrays \(x, y\); choose one with --key'}


def test_every_bad_input_is_a_value_error_naming_the_file(tmp_path):
    for name, message in bad_inputs(tmp_path).items():
        path = str(tmp_path / name)
        with pytest.raises(ValueError, match=message) as e:
            load_features(path)
        assert str(e.value).startswith(path + ': ')
        assert '\n' not in str(e.value)
    with pytest.raises(ValueError, match=r"has no array 'z' \(it has x, y\)"):
        load_features(str(tmp_path / 'two.npz'), key='z')


def write_folders(root):
    ours, theirs = root / 'ours', root / 'theirs'
    for folder in (ours / 'sub', theirs / 'sub'):
        folder.mkdir(parents=True)
    a, b = features(12, seed=1), features(9, seed=2)
    numpy.save(str(ours / 'a.npy'), a)
    numpy.save(str(theirs / 'a.npy'), a[3:])
    numpy.save(str(ours / 'sub' / 'b.npy'), b)
    numpy.savez(str(theirs / 'sub' / 'b.npz'), features=with_cosine(b, 0.9))
    numpy.save(str(ours / 'only_ours.npy'), a)
    numpy.save(str(ours / 'sub' / 'gone.npy'), a)
    numpy.save(str(theirs / 'only_theirs.npy'), a)
    numpy.save(str(ours / 'bad.npy'), numpy.full(3, numpy.nan))
    numpy.save(str(theirs / 'bad.npy'), numpy.ones(3))
    (ours / 'a.json').write_text('{}')  # not features: ignored
    return str(ours), str(theirs)


def test_folders_match_by_path_without_extension(tmp_path):
    ours, theirs = write_folders(tmp_path)
    seen = []
    r = compare_folders(ours, theirs, on_file=lambda e, n: seen.append(n))
    assert seen == [3, 3, 3]
    by_name = {e['name']: e for e in r['files']}
    assert sorted(by_name) == ['a', 'bad', 'sub/b']
    assert r['only_in_ours'] == ['only_ours', 'sub/gone']
    assert r['only_in_theirs'] == ['only_theirs']
    assert by_name['a']['offset'] == 3 and by_name['a']['verdict'] == 'same'
    assert by_name['sub/b']['verdict'] == 'different'
    assert by_name['sub/b']['cosine']['mean'] == pytest.approx(0.9)
    assert 'per_step' not in by_name['a']  # details only for one pair
    assert by_name['bad']['verdict'] == 'error'
    assert 'NaN' in by_name['bad']['message']
    s = r['summary']
    assert (s['n_matched'], s['n_only_in_ours'], s['n_only_in_theirs']) == \
        (3, 2, 1)
    assert s['verdicts'] == {'same': 1, 'different': 1, 'error': 1}
    assert s['mean_cosine'] == pytest.approx(0.95)
    assert s['worst']['name'] == 'sub/b'
    assert exit_status(e['verdict'] for e in r['files']) == 2


def test_two_files_of_one_name_are_refused(tmp_path):
    numpy.save(str(tmp_path / 'a.npy'), numpy.ones(3))
    numpy.savez(str(tmp_path / 'a.npz'), x=numpy.ones(3))
    with pytest.raises(ValueError, match='two files for a: a.npy and a.npz'):
        feature_files(str(tmp_path))


def test_exit_status():
    assert exit_status(['same', 'close']) == 0
    assert exit_status(['same', 'not_comparable']) == 1
    assert exit_status(['different', 'error']) == 2
    assert exit_status([]) == 0


def test_compare_files_keeps_paths_and_shapes(tmp_path):
    numpy.save(str(tmp_path / 'a.npy'), features(7))
    r = compare_files(str(tmp_path / 'a.npy'), str(tmp_path / 'a.npy'),
                      details=False)
    assert r['ours_shape'] == [7, 16] and r['theirs'].endswith('a.npy')
    assert 'per_dimension' not in r


# The script, in a fresh interpreter.

def test_script_one_pair_and_its_json(tmp_path):
    a = features(20, 32)
    numpy.save(str(tmp_path / 'ours.npy'), a)
    numpy.save(str(tmp_path / 'theirs.npy'), a[3:] + 1e-4)
    out = tmp_path / 'out.json'
    result = run_script(SCRIPT, tmp_path / 'ours.npy',
                        tmp_path / 'theirs.npy', '--json', out)
    assert result.returncode == 0, result.stderr
    assert 'offset  +3 (their step t is our step t+3), 17 steps compared' \
        in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith(
        'verdict: same features (mean cosine 1.00000 >= 0.999)')
    document = json.loads(out.read_text())
    assert document['mode'] == 'files' and document['exit_status'] == 0
    assert document['offset'] == 3 and document['verdict'] == 'same'
    assert document['thresholds'] == {'same': 0.999, 'close': 0.99}
    assert document['options'] == {'max_offset': 8, 'crops': None,
                                   'streams': None, 'key': None}
    assert document['ours_shape'] == [20, 32]
    assert set(document['error']) == {'max_abs', 'mean_abs', 'rms',
                                      'relative'}
    assert set(document['cosine']) == {'mean', 'min', 'min_step'}
    assert set(document['pearson']) == {'per_dimension_mean', 'overall'}
    assert len(document['per_step']['cosine']) == 17
    assert len(document['per_dimension']['pearson']) == 32
    assert document['offset_cosines']['3'] == pytest.approx(1)


def test_script_folders_exit_status_and_json(tmp_path):
    ours, theirs = write_folders(tmp_path)
    out = tmp_path / 'out.json'
    result = run_script(SCRIPT, ours, theirs, '--json', out, '--quiet')
    assert result.returncode == 2  # bad.npy holds NaN
    assert result.stderr.strip().splitlines() == [
        'compare_features: {}: 3 NaN and 0 infinite values of 3'.format(
            os.path.join(ours, 'bad.npy'))]
    lines = result.stdout.splitlines()
    assert 'matched 3, only in ours 2, only in theirs 1' in lines
    assert 'only in ours: only_ours, sub/gone' in lines
    assert 'only in theirs: only_theirs' in lines
    document = json.loads(out.read_text())
    assert document['mode'] == 'folders' and document['exit_status'] == 2
    assert [e['name'] for e in document['files']] == ['a', 'bad', 'sub/b']
    assert document['summary']['worst'] == {
        'name': 'sub/b', 'verdict': 'different',
        'cosine': pytest.approx(0.9)}

    os.remove(os.path.join(ours, 'bad.npy'))
    result = run_script(SCRIPT, ours, theirs, '--quiet')
    assert result.returncode == 1 and result.stderr == ''  # sub/b differs


def test_script_bad_inputs_are_one_line_and_status_2(tmp_path, capsys):
    messages = bad_inputs(tmp_path)
    good = tmp_path / 'good.npy'
    numpy.save(str(good), features())
    for args in [(good, tmp_path / 'missing.npy'),
                 (tmp_path / 'plain.npz', good)]:
        result = run_script(SCRIPT, *args)
        assert result.returncode == 2, result.stderr
        assert result.stdout == ''
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith('compare_features: ')
    main = load_example(SCRIPT).main
    for name, message in messages.items():
        assert main([str(good), str(tmp_path / name)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ''
        assert re.match('compare_features: .*{}: .*{}.*\n$'.format(
            re.escape(name), message), captured.err), captured.err
    numpy.save(str(tmp_path / 'crops.npy'), numpy.ones((4, 3, 16)))
    for args in [(good, tmp_path),
                 (good, tmp_path / 'crops.npy'),
                 (tmp_path / 'two.npz', good, '--key', 'z')]:
        assert main([str(a) for a in args]) == 2
        err = capsys.readouterr().err
        assert err.startswith('compare_features: ') and \
            err.count('\n') == 1, err
    empty = tmp_path / 'empty_dir'
    empty.mkdir()
    assert main([str(empty), str(empty), '--quiet']) == 2
    assert capsys.readouterr().err == \
        'compare_features: no file in common between {0} and {0}\n'.format(
            empty)
