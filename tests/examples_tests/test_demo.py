import filecmp
import json
import os

import numpy
import pytest

from chainercv_i3d.links import I3D
from chainercv_i3d.pretrained.npz_weights import save_model_npz
from chainercv_i3d.testing.damaged_files import write_damaged_copies
from chainercv_i3d.presets import DEEPMIND_KINETICS
from tests.conftest import load_example
from tests.conftest import run_script
from tests.datasets_tests.videos import translating_texture
from tests.datasets_tests.videos import write_video


def test_embedded_sample_is_scikit_videos_bigbuckbunny(shared_i3d):
    path = load_example('demo.py').embedded_sample()
    assert filecmp.cmp(path, os.path.join(shared_i3d, 'videos',
                                          'bigbuckbunny.mp4'), shallow=False)


def test_demo_on_bigbuckbunny_with_the_tfhub_weights(shared_i3d, tfhub_cache,
                                                      tmp_path):
    # Measured once and written down: 'feeding birds' at 0.802 (the clip's
    # first 5 s show the rabbit watching a bird), then 'sticking tongue
    # out', 'smoking', 'knitting', 'petting cat'.
    video = os.path.join(shared_i3d, 'videos', 'bigbuckbunny.mp4')
    result = run_script('demo.py', video, '--json', tmp_path / 'r.json',
                        env={'CHAINERCV_I3D_CACHE': str(tfhub_cache)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith('Norm of logits: ')
    assert lines[2] == 'Top classes and probabilities'
    assert lines[3].endswith(' feeding birds')
    with open(str(tmp_path / 'r.json')) as f:
        top = json.load(f)[0]['top']
    assert len(top) == 5
    assert top[0]['name'] == 'feeding birds'
    assert top[0]['prob'] == pytest.approx(0.802, abs=0.01)


def test_demo_reports_bad_videos_and_goes_on(tmp_path, tfhub_cache):
    bad = tmp_path / 'bad.mp4'
    bad.write_bytes(b'not a video')
    result = run_script('demo.py', bad, tmp_path / 'missing.mp4',
                        env={'CHAINERCV_I3D_CACHE': str(tfhub_cache)})
    assert result.returncode == 1
    assert 'bad.mp4' in result.stderr and 'missing.mp4' in result.stderr
    assert 'Traceback' not in result.stderr


def test_demo_refuses_an_unknown_model():
    result = run_script('demo.py', '--rgb_model', 'rgb_imaginary')
    assert result.returncode == 1
    assert 'rgb_tfhub_kinetics400' in result.stderr  # lists the known names
    assert 'Traceback' not in result.stderr


def test_a_model_with_its_own_classes_prints_their_names(tmp_path):
    """A 3-class fine-tuned .npz names its classes; no Kinetics names."""
    numpy.random.seed(0)
    model = I3D(n_class=3)
    names = ('pouring tea', 'folding paper', 'whisking eggs')
    path = str(tmp_path / 'tea.npz')
    save_model_npz(model, path, DEEPMIND_KINETICS.replace(label_names=names))
    video = str(tmp_path / 'v.avi')
    write_video(video, translating_texture(10, dx=1, dy=0, height=200,
                                           width=240, seed=1))
    # --json in a folder still to be made (open() failed there at the end)
    result = run_script('demo.py', video, '--rgb_model', path, '--top_k',
                        '3', '--json', tmp_path / 'new' / 'r.json')
    assert result.returncode == 0, result.stderr
    printed = [line.split(' ', 2)[2] for line in
               result.stdout.splitlines()[3:6]]
    assert sorted(printed) == sorted(names)
    with open(str(tmp_path / 'new' / 'r.json')) as f:
        top = json.load(f)[0]['top']
    assert [row['name'] for row in top] == [names[row['label']]
                                             for row in top]
    # The same model with a byte flipped inside one of its arrays.
    damaged = write_damaged_copies(path, tmp_path, 'logits/conv/W')
    result = run_script('demo.py', video, '--rgb_model',
                        damaged['bad_crc'])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "demo: {} is damaged (logits/conv/W.npy: its data do not match "
        "their checksum): give another model, or move it aside and make it "
        "again (examples/i3d/tfckpt2npz.py converts a checkpoint)".format(
            damaged['bad_crc'])]


@pytest.mark.slow
def test_a_multi_label_model_prints_independent_sigmoid_probabilities(
        tmp_path):
    numpy.random.seed(0)
    names = ('Holding some clothes', 'Putting clothes somewhere',
             'Taking a cup')
    path = str(tmp_path / 'charades.npz')
    save_model_npz(I3D(n_class=3), path, DEEPMIND_KINETICS.replace(
        label_names=names, multi_label=True))
    video = str(tmp_path / 'v.avi')
    write_video(video, translating_texture(10, dx=1, dy=0, height=200,
                                           width=240, seed=1))
    result = run_script('demo.py', video, '--rgb_model', path, '--top_k',
                        '3', '--json', tmp_path / 'r.json')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2] == (
        'Top classes and independent (sigmoid) probabilities, multi-label')
    with open(str(tmp_path / 'r.json')) as f:
        video_result = json.load(f)[0]
    assert video_result['multi_label'] is True
    for row in video_result['top']:
        assert row['prob'] == pytest.approx(
            1 / (1 + numpy.exp(-row['logit'])), rel=1e-6)
    assert sum(row['prob'] for row in video_result['top']) != \
        pytest.approx(1.0)


@pytest.mark.parametrize('flags,dtype', [((), 'float32'),
                                         (('--dtype', 'float16'), 'float16')])
def test_dtype_option(flags, dtype):
    assert load_example('demo.py').parse_args(list(flags)).dtype == dtype


def test_demo_refuses_an_unknown_dtype(capsys):
    with pytest.raises(SystemExit) as raised:
        load_example('demo.py').parse_args(['--dtype', 'bfloat16'])
    assert raised.value.code == 2
    assert "invalid choice: 'bfloat16'" in capsys.readouterr().err


def test_flow_backend_option_reaches_the_predictor(monkeypatch):
    demo = load_example('demo.py')
    made = {}

    class Stop(Exception):
        pass

    def fake_predictor(rgb_model, flow_model, flow_backend, device, dtype):
        made.update(flow_backend=flow_backend, flow_model=flow_model)
        raise Stop

    monkeypatch.setattr(demo, 'I3DPredictor', fake_predictor)
    with pytest.raises(Stop):
        demo.main(['x.mp4', '--flow_model', 'f.npz',
                   '--flow_backend', 'tvl1_xp'])
    assert made == {'flow_backend': 'tvl1_xp', 'flow_model': 'f.npz'}
    assert demo.parse_args([]).flow_backend == 'tvl1'


def test_a_model_of_the_other_stream_gets_trainings_message(tmp_path):
    path = str(tmp_path / 'rgb.npz')
    save_model_npz(I3D(n_class=2), path)
    result = run_script('demo.py', tmp_path / 'never_read.mp4',
                        '--flow_model', path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'demo: flow_model {} is a rgb model; stream is flow: give a model '
        'of the flow stream'.format(path))


def test_the_demo_shows_progress_while_it_computes_flow(monkeypatch,
                                                       capsys):
    demo = load_example('demo.py')
    given = []

    class Predictor(object):
        """Stands in for I3DPredictor: 4 frame pairs of flow."""

        preset = DEEPMIND_KINETICS

        def __init__(self, *args, **kwargs):
            pass

        def load(self, source, flow_progress=None):
            given.append(flow_progress)
            if flow_progress is not None:
                bar = flow_progress(4)
                bar.update(4)
                bar.close()
            return {'flow': None}

        def classify(self, inputs, top_k):
            return [], {'flow': numpy.zeros(2, numpy.float32)}

    monkeypatch.setattr(demo, 'I3DPredictor', Predictor)
    demo.main(['v.mp4', '--flow_model', 'f.npz'])
    assert 'optical flow' in capsys.readouterr().err
    assert given[0] is not None
    demo.main(['v.mp4', '--flow_model', 'f.npz', '--quiet'])
    assert 'optical flow' not in capsys.readouterr().err
    assert given[1] is None


def test_a_named_model_of_the_other_stream_is_refused_before_a_download(
        tmp_path):
    cache = tmp_path / 'cache'
    cache.mkdir()
    result = run_script('demo.py', tmp_path / 'never_read.mp4',
                        '--flow_model', 'rgb_imagenet_kinetics400',
                        env={'CHAINERCV_I3D_CACHE': str(cache)})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'demo: flow_model rgb_imagenet_kinetics400 is a rgb model; stream is '
        'flow: give a model of the flow stream')
    assert os.listdir(cache) == []
