"""plot_results.py: the pictures of an evaluation's --out files.

A real (small) result comes from eval_kinetics.py on a synthetic
precomputed set with random models; results of many classes are written
with the evaluation's own writers (summarize, write_results) from scores
chosen by the test, so that what the pictures show is known.
"""

import json
import os
import subprocess
import sys

import numpy
import pytest
from PIL import Image

from chainercv_i3d.evaluations import summarize
from chainercv_i3d.evaluations import write_results
from chainercv_i3d.evaluations.plots import confused_pairs
from chainercv_i3d.evaluations.plots import plot_results
from chainercv_i3d.evaluations.plots import read_results
from chainercv_i3d.label_names import kinetics400_label_names
from chainercv_i3d.links import I3D
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.pretrained.npz_weights import save_model_npz
from chainercv_i3d.testing.synthetic import BAR_LABEL_NAMES
from chainercv_i3d.testing.synthetic import write_moving_bars_set
from tests.conftest import load_example
from tests.conftest import ROOT

EVAL = os.path.join(ROOT, 'examples', 'i3d', 'eval_kinetics.py')
PLOT = os.path.join(ROOT, 'examples', 'i3d', 'plot_results.py')
# The models predict 5 classes; the synthetic videos are of the first two.
LABEL_NAMES = BAR_LABEL_NAMES + ('juggling balls', 'zumba', 'abseiling')


def run_plot(*args):
    return subprocess.run([sys.executable, PLOT] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=300)


def exit_message(*args):
    """The message the script exits with, run in this process."""
    with pytest.raises(SystemExit) as exited:
        load_example('plot_results.py').main([str(a) for a in args])
    return exited.value.code


def decoded_pixels(path):
    with Image.open(path) as image:
        assert image.format == 'PNG'
        return numpy.asarray(image.convert('RGB'))


def fabricated_results(path, n_class, n_per_class, seed, two_streams=True):
    """Writes a result as eval_kinetics.py does, of scores whose top-1 is
    right for a random share of each class's videos."""
    rng = numpy.random.default_rng(seed)
    results = []
    for label in range(n_class):
        right = rng.random(n_per_class) < rng.random()
        for k in range(n_per_class):
            rgb = rng.normal(size=n_class).astype(numpy.float32)
            rgb[label if right[k] else (label + 1 + k) % n_class] += 20
            logits = {'rgb': rgb}
            if two_streams:
                logits['flow'] = rng.normal(size=n_class).astype(
                    numpy.float32)
            results.append({'video_id': 'v{:04d}_{}'.format(label, k),
                            'label': label, 'logits': logits})
    names = kinetics400_label_names[:n_class]
    summary = summarize(results, 0, names)
    summary['protocol'] = {'num_clips': 1, 'num_crops': 1, 'crop_size': 224}
    write_results(str(path), summary, results, names)
    return summary


@pytest.mark.slow
def test_a_result_of_eval_kinetics_is_drawn(tmp_path):
    preset = DEEPMIND_KINETICS.replace(name='moving_bars', short_side=193,
                                       label_names=LABEL_NAMES)
    write_moving_bars_set(str(tmp_path / 'set'), 2, n_frames=10, size=193,
                          preset=preset)
    for seed, stream in enumerate(('rgb', 'flow')):
        numpy.random.seed(seed)
        save_model_npz(I3D(n_class=len(LABEL_NAMES), modality=stream),
                       str(tmp_path / (stream + '.npz')), preset)
    out = tmp_path / 'results.json'
    evaluated = subprocess.run(
        [sys.executable, EVAL, str(tmp_path / 'set'), '--rgb_model_checkpoint',
         str(tmp_path / 'rgb.npz'), '--flow_model_checkpoint',
         str(tmp_path / 'flow.npz'), '--n_frame', '9', '--crop_size', '193',
         '--num_preprocess_workers', '0', '--quiet', '--out', str(out)],
        capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr

    drawn = run_plot(out, '--out', tmp_path / 'report')
    assert drawn.returncode == 0, drawn.stderr
    with open(tmp_path / 'report' / 'plots.json') as f:
        index = json.load(f)
    printed = drawn.stdout.split()
    assert index['ranked_by'] == 'two_stream'
    assert len(index['per_class']) == 1  # two classes: one picture
    for path in index['per_class'] + [index['confused_pairs'],
                                      index['streams']]:
        assert path in printed
        assert decoded_pixels(path).std() > 0


def test_per_class_pictures_split_the_classes_and_follow_the_results(
        tmp_path):
    fabricated_results(tmp_path / 'a.json', 60, 2, seed=0)
    fabricated_results(tmp_path / 'b.json', 60, 2, seed=1)
    a = plot_results(str(tmp_path / 'a.json'), str(tmp_path / 'a'),
                     classes_per_image=25)
    b = plot_results(str(tmp_path / 'b.json'), str(tmp_path / 'b'),
                     classes_per_image=25)
    assert [os.path.basename(p) for p in a['per_class']] == [
        'per_class_top1_01.png', 'per_class_top1_02.png',
        'per_class_top1_03.png']
    heights = [decoded_pixels(p).shape[0] for p in a['per_class']]
    # 25, 25 and 10 bars: the last picture is shorter, bars keep their size.
    assert heights[0] == heights[1] > heights[2]
    for key in ('confused_pairs', 'streams'):
        assert not numpy.array_equal(decoded_pixels(a[key]),
                                     decoded_pixels(b[key]))
    assert not numpy.array_equal(decoded_pixels(a['per_class'][0]),
                                 decoded_pixels(b['per_class'][0]))


def test_confused_pairs_count_the_fused_predictions():
    labels = numpy.array([0, 0, 0, 1, 1, 2], numpy.int32)
    rgb = numpy.zeros((6, 3), numpy.float32)
    flow = numpy.zeros((6, 3), numpy.float32)
    # Videos 0 and 1: RGB says 1, flow more strongly 2: the sum says 2.
    rgb[[0, 1], 1] = 1
    flow[[0, 1], 2] = 2
    rgb[2, 0] = 1                  # right
    rgb[3, 2] = 1                  # 1 -> 2
    rgb[4, 1] = 1                  # right
    rgb[5, 0] = 1                  # 2 -> 0
    pairs = confused_pairs(labels, {'rgb': rgb, 'flow': flow}, top_n=2)
    assert pairs == [(0, 2, 2, 3), (1, 2, 1, 2)]
    assert confused_pairs(labels, {'rgb': rgb}) == [
        (0, 1, 2, 3), (1, 2, 1, 2), (2, 0, 1, 1)]


def test_one_stream_is_drawn_without_a_fusion(tmp_path):
    summary = fabricated_results(tmp_path / 'r.json', 4, 2, seed=3,
                                 two_streams=False)
    assert summary['rgb']['top5'] is None  # 4 classes: drawn as n/a
    index = plot_results(str(tmp_path / 'r.json'), str(tmp_path / 'out'))
    assert index['ranked_by'] == 'rgb'
    assert decoded_pixels(index['streams']).std() > 0


def test_bad_inputs_end_with_one_line(tmp_path):
    fabricated_results(tmp_path / 'r.json', 4, 2, seed=2)
    (tmp_path / 'not_results.json').write_text('{"videos": []}')
    (tmp_path / 'broken.json').write_text('{')
    (tmp_path / 'alone').mkdir()
    alone = tmp_path / 'alone' / 'r.json'
    alone.write_text((tmp_path / 'r.json').read_text())
    (tmp_path / 'a_file').write_text('')
    cases = [(tmp_path / 'nothing.json', tmp_path / 'o', 'no such file'),
             (tmp_path / 'not_results.json', tmp_path / 'o',
              'not an evaluation result'),
             (tmp_path / 'broken.json', tmp_path / 'o', 'not a JSON file'),
             (alone, tmp_path / 'o', 'logits.npz')]
    for results, out, message in cases:
        code = exit_message(results, '--out', out)
        # sys.exit(text): exit status 1, the text on stderr.
        assert isinstance(code, str) and code.startswith('plot_results: ')
        assert '\n' not in code and message in code, code
        assert not os.path.exists(str(out))  # a refused run leaves no folder
    # A file in the way of --out: refused with the arguments.
    result = run_plot(tmp_path / 'r.json', '--out',
                      tmp_path / 'a_file' / 'o')
    assert result.returncode == 2
    assert '{} is a file, not a folder'.format(tmp_path / 'a_file') in \
        result.stderr.strip().splitlines()[-1]
    missing, out, _ = cases[0]
    result = run_plot(missing, '--out', out)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        exit_message(missing, '--out', out)]


def test_a_damaged_logits_file_is_one_line(tmp_path):
    fabricated_results(tmp_path / 'r.json', 4, 2, seed=2)
    logits = tmp_path / 'r.logits.npz'
    logits.write_bytes(logits.read_bytes()[:200])
    code = exit_message(tmp_path / 'r.json', '--out', tmp_path / 'o')
    assert code == ('plot_results: {} is truncated or damaged (its zip '
                    'archive is incomplete): write it again with '
                    'eval_kinetics.py --out'.format(logits))


@pytest.mark.skipif(hasattr(os, 'geteuid') and os.geteuid() == 0,
                    reason='root writes into read-only folders')
def test_an_unwritable_output_folder_is_refused(tmp_path):
    fabricated_results(tmp_path / 'r.json', 4, 2, seed=2)
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = run_plot(tmp_path / 'r.json', '--out', locked)
    finally:
        locked.chmod(0o700)
    assert 'does not accept new files' in result.stderr


def test_class_names_come_from_the_model_checkpoint(tmp_path):
    """Predicted classes absent from the videos are named by the model."""
    preset = DEEPMIND_KINETICS.replace(label_names=LABEL_NAMES)
    numpy.random.seed(0)
    save_model_npz(I3D(n_class=len(LABEL_NAMES)), str(tmp_path / 'm.npz'),
                   preset)
    labels = numpy.array([0, 1], numpy.int32)
    results = [{'video_id': 'v{}'.format(i), 'label': int(label),
                'logits': {'rgb': numpy.eye(5, dtype=numpy.float32)[4]}}
               for i, label in enumerate(labels)]
    summary = summarize(results, 0, LABEL_NAMES)
    summary['rgb_model_checkpoint'] = 'm.npz'  # relative, beside the JSON
    write_results(str(tmp_path / 'r.json'), summary, results, LABEL_NAMES)
    assert read_results(str(tmp_path / 'r.json')).label_names == list(
        LABEL_NAMES)
    summary['rgb_model_checkpoint'] = 'gone.npz'
    write_results(str(tmp_path / 'r.json'), summary, results, LABEL_NAMES)
    assert read_results(str(tmp_path / 'r.json')).label_names == list(
        BAR_LABEL_NAMES) + ['class_2', 'class_3', 'class_4']

