import json
import os
import subprocess
import sys

import chainer
import numpy
import pytest

from chainercv_i3d.links import I3D
from tests.conftest import ROOT
from tests.conftest import run_script
from tests.datasets_tests.videos import translating_texture
from tests.datasets_tests.videos import write_video

SCRIPT = os.path.join(ROOT, 'examples', 'i3d', 'extract_features.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('features')
    videos = root / 'videos'
    write_video(videos / 'a.avi', translating_texture(12, 1, 0, 64, 80))
    write_video(videos / 'sub' / 'b.mkv', translating_texture(20, 0, 1, 64,
                                                              80, seed=1))
    (videos / 'c.mp4').write_bytes(b'broken')
    numpy.random.seed(0)
    rgb = str(root / 'rgb.npz')
    chainer.serializers.save_npz(rgb, I3D(n_class=400))
    flow = str(root / 'flow.npz')
    chainer.serializers.save_npz(flow, I3D(n_class=400, modality='flow'))
    return root, str(videos), rgb, flow


def test_folder_under_mpiexec_two_ranks_then_resume(setup, mpiexec):
    root, videos, rgb, flow = setup
    out = str(root / 'out')
    command = [mpiexec, '-n', '2', sys.executable, SCRIPT, videos, out,
               '--rgb_model', rgb, '--flow_model', flow, '--quiet']
    result = subprocess.run(command, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        '2 done, 1 failed, 0 already done')
    assert 'skipped c' in result.stderr
    # 12 frames: T'' = 2, T' = 1; 20 frames: T'' = 3, T' = 2; D = 2 x 1024.
    a = numpy.load(os.path.join(out, 'a.npy'))
    b = numpy.load(os.path.join(out, 'sub', 'b.npy'))
    assert (a.shape, b.shape) == ((1, 2048), (2, 2048))
    assert a.dtype == numpy.float32

    again = subprocess.run(command, capture_output=True, text=True,
                           timeout=600)
    assert again.stdout.strip().splitlines()[-1] == (
        '0 done, 1 failed, 2 already done')
    numpy.testing.assert_array_equal(numpy.load(os.path.join(out, 'a.npy')),
                                     a)


def test_clips_of_one_video(setup):
    root, videos, rgb, _ = setup
    out = root / 'clips'
    result = run_script('extract_features.py', os.path.join(videos, 'sub',
                                                            'b.mkv'),
                        out, '--rgb_model', rgb, '--endpoint', 'logits',
                        '--clip_frames', '9', '--clip_stride', '5',
                        '--quiet')
    assert result.returncode == 0, result.stderr
    # 20 frames, clips of 9 every 5: starts 0, 5, 10.
    assert numpy.load(str(out / 'b.npy')).shape == (3, 400)


def test_from_precomputed_data(setup):
    root, videos, rgb, _ = setup
    precomputed = str(root / 'precomputed')
    os.makedirs(str(root / 'classes' / 'abseiling'))
    os.symlink(os.path.join(videos, 'a.avi'),
               str(root / 'classes' / 'abseiling' / 'a.avi'))
    subprocess.run([sys.executable, os.path.join(
        ROOT, 'examples', 'i3d', 'precompute_frames_flow.py'),
        str(root / 'classes'), precomputed, '--no_compute_flow', '--quiet'],
        check=True, capture_output=True)
    out = root / 'from_precomputed'
    result = run_script('extract_features.py', precomputed, out,
                        '--rgb_model', rgb, '--endpoint', 'mixed_5c',
                        '--quiet')
    assert result.returncode == 0, result.stderr
    assert numpy.load(str(out / 'abseiling' / 'a.npy')).shape == \
        (1024, 2, 7, 7)


def test_bad_arguments(setup):
    root, videos, rgb, _ = setup
    result = run_script('extract_features.py', root / 'nothing', root / 'x',
                        '--rgb_model', rgb)
    assert result.returncode == 1
    assert 'no such file or folder' in result.stderr
    result = run_script('extract_features.py', videos, root / 'x',
                        '--clip_stride', '4')
    assert result.returncode == 2
    assert '--clip_stride needs --clip_frames' in result.stderr
    (root / 'a_file').write_text('')
    result = run_script('extract_features.py', videos, root / 'a_file',
                        '--rgb_model', rgb)
    assert result.returncode == 2
    assert '{} is a file, not a folder'.format(root / 'a_file') in \
        result.stderr


def test_a_damaged_model_is_one_line(setup, tmp_path):
    root, videos, rgb, _ = setup
    model = tmp_path / 'rgb.npz'
    model.write_bytes(open(rgb, 'rb').read()[:100000])
    result = run_script('extract_features.py', videos, tmp_path / 'x',
                        '--rgb_model', model)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        'extract_features: rank 0: {} is truncated or damaged (its zip '
        'archive is incomplete): give another model, or move it aside and '
        'make it again (examples/i3d/tfckpt2npz.py converts a '
        'checkpoint)'.format(model)]
    assert not os.path.exists(str(tmp_path / 'x'))


def test_clips_too_short_for_the_head_are_refused_up_front(setup):
    root, videos, rgb, _ = setup
    result = run_script('extract_features.py', videos, root / 'x',
                        '--rgb_model', rgb, '--clip_frames', '8')
    assert result.returncode == 2
    assert 'needs clips of at least 9 frames' in result.stderr


def test_float16_features_are_close_to_float32(setup):
    root, videos, rgb, _ = setup
    video = os.path.join(videos, 'sub', 'b.mkv')
    features = {}
    for dtype in ('float32', 'float16'):
        out = root / dtype
        result = run_script('extract_features.py', video, out, '--rgb_model',
                            rgb, '--endpoint', 'mixed_5c', '--dtype', dtype,
                            '--quiet')
        assert result.returncode == 0, result.stderr
        features[dtype] = numpy.load(str(out / 'b.npy'))
    assert features['float16'].dtype == numpy.float32
    error = numpy.abs(features['float16'] - features['float32']).max()
    # As tests/links_tests/fast_tests/test_reduced_precision.py: float16 rounding, not
    # float32's.
    assert 1e-5 < error / numpy.abs(features['float32']).max() < 5e-3


def test_an_unknown_dtype_is_refused(setup):
    root, videos, rgb, _ = setup
    result = run_script('extract_features.py', videos, root / 'x',
                        '--rgb_model', rgb, '--dtype', 'float64')
    assert result.returncode == 2
    assert "--dtype: invalid choice: 'float64'" in result.stderr


@pytest.mark.slow
def test_recipe_crops_both_streams_sidecar_and_refusal(setup):
    root, videos, rgb, flow = setup
    video = os.path.join(videos, 'sub', 'b.mkv')
    out = root / 'recipe'
    # thumos14_i3d_16x4 with an explicit stride and five crops; b.mkv has
    # 20 frames at 25 fps (native): one 16-frame window.
    result = run_script('extract_features.py', video, out, '--rgb_model', rgb,
                        '--flow_model', flow, '--recipe', 'thumos14_i3d_16x4',
                        '--stride', '8', '--crops', '5', '--quiet')
    assert result.returncode == 0, result.stderr
    assert numpy.load(str(out / 'b.npy')).shape == (1, 5, 2048)
    with open(str(out / 'b.json')) as f:
        sidecar = json.load(f)
    settings = sidecar['settings']
    assert settings['recipe'] == 'thumos14_i3d_16x4'
    assert settings['recipe_overrides'] == ['crops', 'stride']
    assert settings['options']['window'] == 16
    assert settings['flow_backend']['name'] == 'tvl1'
    assert settings['flow_backend']['library'] == 'opencv'
    assert sidecar['steps'] == [{'first': 0, 'last': 15, 'start_s': 0.0,
                                 'end_s': 0.64, 'center_s': 0.32}]

    again = run_script('extract_features.py', video, out, '--rgb_model', rgb,
                       '--flow_model', flow, '--recipe', 'thumos14_i3d_16x4',
                       '--quiet')
    assert again.returncode == 1
    assert 'options.stride: 8 there, 4 now' in again.stderr
    assert 'options.crops' in again.stderr


@pytest.mark.slow
def test_old_names_and_new_names_give_the_same_file(setup):
    root, videos, rgb, _ = setup
    video = os.path.join(videos, 'sub', 'b.mkv')
    files = []
    for name, flags in (('old', ('--clip_frames', '9', '--clip_stride', '5')),
                        ('new', ('--window', '9', '--stride', '5'))):
        out = root / name
        result = run_script('extract_features.py', video, out, '--rgb_model',
                            rgb, '--endpoint', 'logits', '--quiet', *flags)
        assert result.returncode == 0, result.stderr
        files.append(numpy.load(str(out / 'b.npy')))
    numpy.testing.assert_array_equal(*files)


def test_a_model_of_the_other_stream_is_refused_before_any_work(setup):
    root, videos, rgb, _ = setup
    out = root / 'other_stream'
    result = run_script('extract_features.py', videos, out, '--flow_model',
                        rgb, '--quiet')
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.strip().endswith(
        'flow_model {} is a rgb model; stream is flow: give a model of the '
        'flow stream'.format(rgb))
    assert not out.exists()
