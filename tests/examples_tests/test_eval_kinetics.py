"""eval_kinetics.py end to end on a small set made by the precompute script.

Random-weight models and a reduced protocol (9 frames, 193x193 crops) keep
it fast; the distribution logic is the same as with the default protocol.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import chainer
import numpy
import pytest

from chainercv_i3d.datasets import PrecomputedVideoDataset
from chainercv_i3d.evaluations import evaluate_share
from chainercv_i3d.evaluations import EvalProtocol
from chainercv_i3d.links import I3D
from chainercv_i3d.pretrained.npz_weights import save_model_npz
from chainercv_i3d.presets import DEEPMIND_KINETICS
from tests.conftest import ROOT
from tests.datasets_tests.videos import translating_texture
from tests.datasets_tests.videos import write_video

EVAL = os.path.join(ROOT, 'examples', 'i3d', 'eval_kinetics.py')
PRECOMPUTE = os.path.join(ROOT, 'examples', 'i3d', 'precompute_frames_flow.py')
PROTOCOL = ('--n_frame', '9', '--crop_size', '193', '--quiet')

pytestmark = [pytest.mark.slow, pytest.mark.mpi]


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Precomputed data (5 videos, one missing) and random RGB/flow npz."""
    root = tmp_path_factory.mktemp('eval')
    videos = root / 'videos'
    for i, (cls, n) in enumerate([('abseiling', 7), ('abseiling', 12),
                                  ('air drumming', 10), ('zumba', 5),
                                  ('zumba', 11)]):
        frames = translating_texture(n, dx=i % 3, dy=1, height=193,
                                     width=230, seed=i)
        write_video(videos / cls / 'v{}.avi'.format(i), frames)
    precomputed = str(root / 'precomputed')
    subprocess.run([sys.executable, PRECOMPUTE, str(videos), precomputed,
                    '--short_side', '193', '--quiet',
                    '--num_preprocess_workers', '2'],
                   check=True, capture_output=True)
    models = {}
    for seed, (stream, n_class) in enumerate([('rgb', 400), ('flow', 400),
                                               ('flow', 600)]):
        numpy.random.seed(seed)
        path = str(root / '{}{}.npz'.format(stream, n_class))
        chainer.serializers.save_npz(path, I3D(n_class=n_class,
                                               modality=stream))
        models[stream, n_class] = path
    return root, precomputed, models


def run_eval(mpiexec, n, precomputed, models, *extra, timeout=600,
             env=None):
    command = [mpiexec, '-n', str(n), sys.executable, EVAL, precomputed,
               '--rgb_model_checkpoint', models['rgb', 400],
               '--flow_model_checkpoint', models['flow', 400]] + \
        list(PROTOCOL) + list(extra)
    return subprocess.run(command, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def read_outputs(out):
    """The summary (without its timing), logits and predictions."""
    with open(out) as f:
        summary = json.load(f)
    assert summary.pop('elapsed_time') > 0
    logits = dict(numpy.load(os.path.splitext(out)[0] + '.logits.npz'))
    with open(os.path.splitext(out)[0] + '.predictions.jsonl') as f:
        predictions = [json.loads(line) for line in f]
    return summary, logits, predictions


def test_any_ranks_and_batch_size_give_the_same_results(setup, tmp_path,
                                                        mpiexec):
    _, precomputed, models = setup
    outputs = []
    for n, batch, workers in [(1, 1, 0), (2, 2, 2), (2, 3, 1)]:
        out = str(tmp_path / 'n{}b{}.json'.format(n, batch))
        result = run_eval(mpiexec, n, precomputed, models,
                          '--batch_size', str(batch),
                          '--num_preprocess_workers', str(workers),
                          '--out', out)
        assert result.returncode == 0, result.stderr
        outputs.append(read_outputs(out))
        assert 'two_stream' in result.stdout
    reference_summary, reference_logits, reference_predictions = outputs[0]
    assert reference_summary['n_evaluated'] == 5
    assert reference_summary['n_unreadable'] == 0
    assert set(reference_summary) >= {'rgb', 'flow', 'two_stream'}
    for summary, logits, predictions in outputs[1:]:
        assert summary == reference_summary
        assert predictions == reference_predictions
        assert list(logits['video_id']) == list(reference_logits['video_id'])
        for stream in ('rgb', 'flow'):
            numpy.testing.assert_allclose(
                logits[stream], reference_logits[stream], rtol=1e-5,
                atol=1e-5)
    two = reference_logits['rgb'] + reference_logits['flow']
    top1 = (two.argmax(axis=1) == reference_logits['label']).mean()
    assert reference_summary['two_stream']['top1'] == pytest.approx(top1)


def test_multi_view_results_are_the_same_for_any_ranks_and_batch_size(
        setup, tmp_path, mpiexec):
    _, precomputed, models = setup
    outputs = []
    for n, batch in [(1, 1), (2, 4)]:
        out = str(tmp_path / 'n{}b{}.json'.format(n, batch))
        result = run_eval(mpiexec, n, precomputed, models, '--num_clips', '2',
                          '--num_crops', '3', '--batch_size', str(batch),
                          '--out', out)
        assert result.returncode == 0, result.stderr
        assert 'protocol: 2 clip(s) x 3 crop(s) of 193' in result.stdout
        outputs.append(read_outputs(out))
    (summary, logits, predictions), (summary2, logits2, predictions2) = \
        outputs
    assert summary == summary2 and predictions == predictions2
    numpy.testing.assert_allclose(logits['rgb'], logits2['rgb'], rtol=1e-5,
                                  atol=1e-5)
    assert summary['protocol']['views_per_video'] == 6
    assert summary['protocol']['clip_sampler'] == {
        'name': 'uniform', 'num_clips': 2, 'n_frame': 9}


def test_a_video_scores_the_mean_of_its_views_logits(setup):
    """evaluate_share against views cut by hand: 2 clips x 3 crops."""
    _, precomputed, _ = setup
    numpy.random.seed(7)
    model = I3D(n_class=5, modality='rgb')
    protocol = EvalProtocol.multi_view(num_clips=2, n_frame=9, num_crops=3,
                                       crop_size=193)
    dataset = PrecomputedVideoDataset(precomputed)
    i = next(i for i, r in enumerate(dataset.records) if r['n_frames'] == 12)
    result, = evaluate_share(dataset, [i], {'rgb': model}, protocol,
                             batch_size=4)
    frames = PrecomputedVideoDataset(precomputed).read_clip(i)['rgb']
    height, width = frames.shape[2:]
    views = []
    for start in (0, 3):  # the last clip ends at frame 11
        for x in (0, (width - 193) // 2, width - 193):
            y = (height - 193) // 2
            views.append(frames[:, start:start + 9, y:y + 193, x:x + 193])
    x = numpy.stack(views) / numpy.float32(127.5) - 1
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        expected = model(x).array.mean(axis=0)
    numpy.testing.assert_allclose(result['logits']['rgb'], expected,
                                  rtol=1e-5, atol=1e-5)


def test_zip_archive_through_pfio(setup, tmp_path, mpiexec):
    pytest.importorskip('pfio')
    _, precomputed, models = setup
    archive = str(tmp_path / 'precomputed.zip')
    with zipfile.ZipFile(archive, 'w') as z:
        for folder, _, files in os.walk(precomputed):
            for name in files:
                path = os.path.join(folder, name)
                z.write(path, os.path.relpath(path, precomputed))
    out_dir, out_zip = str(tmp_path / 'dir.json'), str(tmp_path / 'zip.json')
    for source, out in ((precomputed, out_dir), (archive, out_zip)):
        result = run_eval(mpiexec, 1, precomputed if source == precomputed
                          else archive, models, '--out', out)
        assert result.returncode == 0, result.stderr
    from_dir, logits_dir, _ = read_outputs(out_dir)
    from_zip, logits_zip, _ = read_outputs(out_zip)
    from_dir.pop('precomputed_dir'), from_zip.pop('precomputed_dir')
    assert from_zip == from_dir
    numpy.testing.assert_array_equal(logits_zip['rgb'], logits_dir['rgb'])


def test_unreadable_video_is_counted_or_fatal_with_strict(setup, tmp_path,
                                                          mpiexec):
    _, precomputed, models = setup
    broken = str(tmp_path / 'broken')
    shutil.copytree(precomputed, broken)
    with open(os.path.join(broken, 'videos', 'zumba', 'v3.zip'), 'wb') as f:
        f.write(b'truncated')
    out = str(tmp_path / 'r.json')
    result = run_eval(mpiexec, 2, broken, models, '--out', out)
    assert result.returncode == 0, result.stderr
    assert 'unreadable, not counted: zumba/v3' in result.stderr
    summary, _, _ = read_outputs(out)
    assert (summary['n_evaluated'], summary['n_unreadable']) == (4, 1)

    # With --strict the rank holding it raises; the job must end, not hang.
    start = time.time()
    result = run_eval(mpiexec, 2, broken, models, '--strict', timeout=120)
    assert result.returncode != 0
    assert 'zumba/v3' in result.stderr and '--strict' in result.stderr
    assert time.time() - start < 120


@pytest.mark.parametrize('flags,message', [
    (['--rgb_model_checkpoint', 'FLOW400'],
     'is a flow model; stream is rgb: give a model of the rgb stream'),
    (['--rgb_model_checkpoint', 'RGB400', '--flow_model_checkpoint',
      'FLOW600'], 'two streams must share their classes'),
    (['--rgb_model_checkpoint', 'missing.npz'], "'missing.npz' is neither"),
])
def test_bad_models_are_refused_before_any_work(setup, flags, message,
                                                mpiexec):
    _, precomputed, models = setup
    names = {'FLOW400': models['flow', 400], 'RGB400': models['rgb', 400],
             'FLOW600': models['flow', 600]}
    flags = [names.get(f, f) for f in flags]
    result = subprocess.run([mpiexec, '-n', '1', sys.executable, EVAL,
                             precomputed] + flags + list(PROTOCOL),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr
    assert 'Traceback' not in result.stderr


def test_empty_dataset_is_an_error(setup, tmp_path, mpiexec):
    _, _, models = setup
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'manifest.json').write_text('{"counts": {}, "videos": []}')
    result = subprocess.run([mpiexec, '-n', '1', sys.executable, EVAL,
                             str(empty), '--rgb_model_checkpoint',
                             models['rgb', 400]] + list(PROTOCOL),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert 'holds no precomputed video' in result.stderr


@pytest.mark.parametrize('blocker, out', [
    ('results', 'results/r.json'),  # a file in the way of --out's folder
    ('r.json.parts', 'r.json'),  # a file where the saved parts go
])
def test_an_out_path_that_cannot_be_written_is_refused_before_any_work(
        setup, tmp_path, blocker, out):
    _, precomputed, models = setup
    blocker = tmp_path / blocker
    blocker.write_text('')
    result = subprocess.run(
        [sys.executable, EVAL, precomputed, '--rgb_model_checkpoint',
         models['rgb', 400], '--out', str(tmp_path / out)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert '{} is a file, not a folder'.format(blocker) in result.stderr


@pytest.fixture(scope='module')
def own_classes(tmp_path_factory):
    """Two classes of any names (--dataset folders) and 2-class models."""
    root = tmp_path_factory.mktemp('own')
    for i, cls in enumerate(['pour tea', 'pour tea', 'whisk eggs']):
        frames = translating_texture(9, dx=i, dy=0, height=193, width=200,
                                     seed=i)
        write_video(root / 'videos' / cls / 'v{}.avi'.format(i), frames)
    precomputed = str(root / 'precomputed')
    subprocess.run([sys.executable, PRECOMPUTE, str(root / 'videos'),
                    precomputed, '--dataset', 'folders', '--short_side',
                    '193', '--no_compute_flow', '--quiet'],
                   check=True, capture_output=True)
    models = {}
    for names in (('pour tea', 'whisk eggs'), ('whisk eggs', 'pour tea')):
        path = str(root / '{}.npz'.format(names[0].split()[0]))
        save_model_npz(I3D(n_class=2), path,
                       DEEPMIND_KINETICS.replace(label_names=names))
        models[names[0]] = path
    models['flow'] = str(root / 'flow.npz')
    save_model_npz(I3D(n_class=2, modality='flow'), models['flow'],
                   DEEPMIND_KINETICS.replace(
                       label_names=('pour tea', 'whisk eggs')))
    return precomputed, models


def test_a_model_of_its_own_classes_reports_their_names(own_classes,
                                                        tmp_path):
    precomputed, models = own_classes
    out = str(tmp_path / 'r.json')
    result = subprocess.run(
        [sys.executable, EVAL, precomputed, '--rgb_model_checkpoint',
         models['pour tea'], '--out', out] + list(PROTOCOL),
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.search(r'2 videos\s+pour tea', result.stdout)
    assert re.search(r'1 videos\s+whisk eggs', result.stdout)
    summary, _, predictions = read_outputs(out)
    assert [c['name'] for c in summary['per_class']] == ['pour tea',
                                                         'whisk eggs']
    assert {p['label_name'] for p in predictions} == {'pour tea',
                                                      'whisk eggs'}
    # Top-5 of 2 classes would always be 100%: not applicable.
    assert summary['rgb']['top5'] is None
    assert re.search(r'rgb\s+\d\.\d{4}\s+n/a', result.stdout)
    for p in predictions:
        assert sorted(p['rgb_top5_names']) == ['pour tea', 'whisk eggs']
        assert p['rgb_top5_names'][0] == ['pour tea', 'whisk eggs'][
            p['rgb_top5'][0]]


def test_a_model_of_other_classes_is_refused(own_classes):
    precomputed, models = own_classes
    result = subprocess.run(
        [sys.executable, EVAL, precomputed, '--rgb_model_checkpoint',
         models['whisk eggs']] + list(PROTOCOL),
        capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "label 0 is 'pour tea' in the dataset but 'whisk eggs' for the " \
        'model' in result.stderr
    assert 'Traceback' not in result.stderr


def test_strict_refuses_listed_videos_that_were_not_precomputed(setup,
                                                                tmp_path):
    _, precomputed, models = setup
    partial = str(tmp_path / 'partial')
    shutil.copytree(precomputed, partial)
    manifest_path = os.path.join(partial, 'manifest.json')
    with open(manifest_path) as f:
        manifest = json.load(f)
    manifest['videos'].append({'video_id': 'zumba/gone', 'status': 'missing',
                               'error': 'listed, not found on disk'})
    with open(manifest_path, 'w') as f:
        json.dump(manifest, f)
    command = [sys.executable, EVAL, partial, '--rgb_model_checkpoint',
               models['rgb', 400]] + list(PROTOCOL)
    result = subprocess.run(command + ['--strict'], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0
    assert '1 listed video(s) were not precomputed' in result.stderr
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'missing: 1' in result.stdout


@pytest.mark.parametrize('flags,message', [
    (['--flow_model_checkpoint', 'FLOW'],
     'was precomputed without flow (3 of 3 videos, e.g. '),
    (['--rgb_model_checkpoint', 'RGB', '--crop_size', '224'],
     'crops of 224 px do not fit the frames of '),
])
def test_inputs_the_videos_cannot_give_are_refused_before_the_first_video(
        own_classes, flags, message):
    precomputed, models = own_classes
    flags = [{'FLOW': models['flow'], 'RGB': models['pour tea']}.get(f, f)
             for f in flags]
    result = subprocess.run(
        [sys.executable, EVAL, precomputed, '--n_frame', '9', '--quiet']
        + flags, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert message in result.stderr
    # Once, not once per video.
    assert 'unreadable' not in result.stderr
    assert 'Traceback' not in result.stderr


KILL_HOOK = 'CHAINERCV_I3D_TEST_KILL_AFTER'


def saved_parts(out):
    parts = []
    for path in sorted(glob.glob(out + '.parts/[0-9]*.json')):
        with open(path) as f:
            parts.append((path, json.load(f)))
    return parts


def test_a_killed_rank_and_a_rerun_give_the_results_of_one_run(
        setup, tmp_path, mpiexec):
    _, precomputed, models = setup
    whole = str(tmp_path / 'whole.json')
    result = run_eval(mpiexec, 2, precomputed, models, '--out', whole)
    assert result.returncode == 0, result.stderr
    out = str(tmp_path / 'resumed.json')
    # Rank 1 dies by SIGKILL once it has saved its first video.
    killed = run_eval(mpiexec, 2, precomputed, models, '--out', out,
                      env={KILL_HOOK: '1:1'})
    assert killed.returncode != 0
    assert not os.path.exists(out)
    parts = saved_parts(out)
    n_saved = sum(len(part['results']) for _, part in parts)
    assert 1 <= n_saved < 5
    earlier_s = max(part['elapsed_s'] for _, part in parts)
    # Continued on another number of ranks: results are per video.
    resumed = run_eval(mpiexec, 1, precomputed, models, '--out', out)
    assert resumed.returncode == 0, resumed.stderr
    with open(out) as f:
        assert json.load(f)['elapsed_time'] >= earlier_s  # both runs'
    summary, logits, predictions = read_outputs(out)
    whole_summary, whole_logits, whole_predictions = read_outputs(whole)
    assert summary == whole_summary
    assert predictions == whole_predictions
    assert list(logits['video_id']) == list(whole_logits['video_id'])
    for stream in ('rgb', 'flow'):
        numpy.testing.assert_allclose(logits[stream], whole_logits[stream],
                                      rtol=1e-5, atol=1e-5)
    assert not os.path.exists(out + '.parts')  # all of it is in out now


def test_a_rerun_evaluates_only_what_is_missing(setup, tmp_path):
    """The saved videos are taken from the disk, other settings are refused
    (nothing lost), --restart starts over."""
    _, precomputed, models = setup
    out = str(tmp_path / 'r.json')
    command = [sys.executable, EVAL, precomputed, '--rgb_model_checkpoint',
               models['rgb', 400], '--out', out,
               '--num_preprocess_workers', '0'] + list(PROTOCOL)

    def run(*extra, kill_after=None):
        env = dict(os.environ)
        if kill_after:
            env[KILL_HOOK] = '0:{}'.format(kill_after)
        return subprocess.run(command + list(extra), capture_output=True,
                              text=True, timeout=300, env=env)

    def mark_a_saved_video():
        path, part = saved_parts(out)[0]
        marked = part['results'][0]
        marked['logits']['rgb'] = [7.0] * 400
        with open(path, 'w') as f:
            json.dump(part, f)
        return marked['video_id']

    def final_rgb_logits(video_id):
        with numpy.load(os.path.splitext(out)[0] + '.logits.npz') as npz:
            return npz['rgb'][list(npz['video_id']).index(video_id)]

    assert run(kill_after=2).returncode == -signal.SIGKILL
    assert len(saved_parts(out)) == 2
    marked = mark_a_saved_video()

    refused = run('--num_crops', '3')
    assert refused.returncode != 0
    assert 'protocol.num_crops: 1 there, 3 now' in refused.stderr
    assert '--restart' in refused.stderr
    assert 'Traceback' not in refused.stderr
    assert len(saved_parts(out)) == 2  # nothing lost

    resumed = run()
    assert resumed.returncode == 0, resumed.stderr
    assert (final_rgb_logits(marked) == 7.0).all()  # read, not evaluated
    assert not os.path.exists(out + '.parts')

    # Finished: a rerun has nothing to do and shows the table again; other
    # settings are refused rather than overwriting the results.
    written = os.path.getmtime(out)
    again = run()
    assert again.returncode == 0, again.stderr
    assert 'holds this evaluation already' in again.stderr
    assert again.stdout == resumed.stdout
    assert os.path.getmtime(out) == written
    other = run('--num_crops', '3')
    assert other.returncode != 0 and 'Traceback' not in other.stderr
    assert '{} holds an evaluation with other settings ('.format(out) in \
        other.stderr
    assert 'protocol.num_crops: 1 there, 3 now' in other.stderr
    assert 'add --restart' in other.stderr
    assert os.path.getmtime(out) == written

    assert run('--restart', kill_after=1).returncode == -signal.SIGKILL
    marked = mark_a_saved_video()
    restarted = run('--restart')
    assert restarted.returncode == 0, restarted.stderr
    assert not (final_rgb_logits(marked) == 7.0).any()  # evaluated again

