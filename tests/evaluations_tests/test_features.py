import json

import chainer
import numpy
import pytest

import chainercv_i3d
from chainercv_i3d.datasets.video_files import VideoFileDataset
from chainercv_i3d.datasets.video_list import VideoRecord
from chainercv_i3d.evaluations.features import claim_output_dir
from chainercv_i3d.evaluations.features import extract_share
from chainercv_i3d.evaluations.features import extraction_settings
from chainercv_i3d.evaluations.features import SETTINGS_NAME
from chainercv_i3d.links import I3D
from chainercv_i3d.links import I3DPredictor
from chainercv_i3d.links.i3d_predictor import take_frames
from chainercv_i3d.transforms.feature_options import FeatureOptions
from tests.datasets_tests.videos import translating_texture
from tests.datasets_tests.videos import write_video


@pytest.fixture(scope='module')
def rgb_npz(tmp_path_factory):
    numpy.random.seed(0)
    path = str(tmp_path_factory.mktemp('model') / 'rgb.npz')
    chainer.serializers.save_npz(path, I3D(n_class=400))
    return path


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    # 24 frames at 30 fps: 20 frames at the preset's 25 fps.
    path = tmp_path_factory.mktemp('videos') / 'v.avi'
    write_video(path, translating_texture(24, 1, 0, 64, 80), fps=30.0)
    return path


def dataset_of(video):
    return VideoFileDataset([VideoRecord('v', str(video), 0)])


@pytest.mark.slow
def test_sidecar_and_settings(rgb_npz, video, tmp_path):
    predictor = I3DPredictor(rgb_npz)
    options = FeatureOptions(window=9, stride=9, tail='pad', fps=0)
    settings = extraction_settings(predictor, 'avgpool', options,
                                   model_args={'rgb': rgb_npz})
    claim_output_dir(str(tmp_path), settings)
    counts = extract_share(dataset_of(video), [0], predictor, str(tmp_path),
                           options=options, settings=settings)
    assert counts == {'done': 1, 'failed': 0, 'already_done': 0}
    features = numpy.load(str(tmp_path / 'v.npy'))
    # native 30 fps: 24 frames, windows at 0, 9 and a padded one at 18.
    assert features.shape == (3, 1024)
    with open(str(tmp_path / 'v.json')) as f:
        sidecar = json.load(f)
    assert sidecar['shape'] == [3, 1024]
    assert (sidecar['source_fps'], sidecar['fps']) == (30.0, 30.0)
    assert (sidecar['n_source_frames'], sidecar['n_frames']) == (24, 24)
    assert [(s['first'], s['last']) for s in sidecar['steps']] == [
        (0, 8), (9, 17), (18, 23)]
    assert sidecar['steps'][2]['end_s'] == pytest.approx(24 / 30, abs=1e-6)
    s = sidecar['settings']
    assert s['version'] == chainercv_i3d.__version__
    assert s['models']['rgb']['model'] == rgb_npz
    assert len(s['models']['rgb']['sha256']) == 64
    assert s['options'] == options.to_dict()
    assert (s['endpoint'], s['dtype'], s['device']) == ('avgpool', 'float32',
                                                        'cpu')
    assert s['flow_backend'] is None and s['recipe'] is None
    with open(str(tmp_path / SETTINGS_NAME)) as f:
        assert json.load(f) == s

    # Again with the same settings: done already, nothing recomputed.
    again = extract_share(dataset_of(video), [0], predictor, str(tmp_path),
                          options=options, settings=settings)
    assert again['already_done'] == 1
    # Other settings into the same folder: refused, naming the differences.
    other = extraction_settings(predictor, 'avgpool',
                                options.replace(window=16),
                                model_args={'rgb': rgb_npz})
    with pytest.raises(ValueError) as e:
        claim_output_dir(str(tmp_path), other)
    assert 'options.window: 9 there, 16 now' in str(e.value)


@pytest.mark.slow
def test_default_fps_is_the_presets(rgb_npz, video, tmp_path):
    predictor = I3DPredictor(rgb_npz)
    extract_share(dataset_of(video), [0], predictor, str(tmp_path),
                  endpoint='logits', options=FeatureOptions(window=9))
    with open(str(tmp_path / 'v.json')) as f:
        sidecar = json.load(f)
    # 24 frames at 30 fps -> 20 at 25 fps (floor(k * 30 / 25)): 2 windows.
    assert (sidecar['n_source_frames'], sidecar['n_frames']) == (24, 20)
    assert sidecar['fps'] == 25.0
    assert sidecar['steps'][1] == {'first': 10, 'last': 20,
                                   'start_s': pytest.approx(10 / 30, abs=1e-6),
                                   'end_s': pytest.approx(21 / 30, abs=1e-6),
                                   'center_s': pytest.approx(15.5 / 30,
                                                             abs=1e-6)}
    assert numpy.load(str(tmp_path / 'v.npy')).shape == (2, 400)


def test_npy_files_of_an_older_run_are_refused(tmp_path):
    numpy.save(str(tmp_path / 'old.npy'), numpy.zeros(3))
    with pytest.raises(ValueError, match='no extraction.json'):
        claim_output_dir(str(tmp_path), {'options': {}})
    assert not (tmp_path / SETTINGS_NAME).exists()


def test_zero_frames_are_zero_in_model_range():
    x = numpy.arange(2 * 3 * 4 * 1 * 1, dtype=numpy.float32).reshape(
        2, 3, 4, 1, 1) + 1
    out = take_frames(x, numpy.array([-1, 0, 3]))
    assert (out[:, :, 0] == 0).all()
    numpy.testing.assert_array_equal(out[:, :, 1:], x[:, :, [0, 3]])


@pytest.mark.slow
def test_crops_in_one_batch_equal_one_crop_at_a_time(rgb_npz):
    predictor = I3DPredictor(rgb_npz)
    rng = numpy.random.default_rng(0)
    crops = rng.uniform(-1, 1, (3, 3, 12, 224, 224)).astype(numpy.float32)
    options = FeatureOptions(window=9, stride=3)
    batched = predictor.features({'rgb': crops}, options=options)
    assert batched.shape == (2, 3, 1024)  # windows at 0 and 3
    for i in range(3):
        one = predictor.features({'rgb': crops[i]}, options=options)
        numpy.testing.assert_allclose(batched[:, i], one, rtol=1e-5,
                                      atol=1e-6)


@pytest.mark.slow
def test_a_kept_tail_too_short_for_the_head_is_left_out(rgb_npz):
    predictor = I3DPredictor(rgb_npz)
    clip = numpy.zeros((3, 14, 224, 224), numpy.float32)
    # windows of 9: [0, 9) whole; the tail [9, 14) has 5 < 9 frames.
    out, windows = predictor.features(
        {'rgb': clip}, 'logits', options=FeatureOptions(window=9,
                                                        tail='keep'),
        return_windows=True)
    assert out.shape == (1, 400) and len(windows) == 1
