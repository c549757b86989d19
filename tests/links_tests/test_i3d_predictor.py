import numpy
import pytest

from chainercv_i3d.links import I3D
from chainercv_i3d.links import I3DPredictor
from tests.datasets_tests.videos import translating_texture
from tests.datasets_tests.videos import write_video

pytestmark = pytest.mark.slow  # real videos through whole networks


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    # 30 frames at 30 fps -> 25 frames at 25 fps, 96x128 -> 256x341.
    path = tmp_path_factory.mktemp('v') / 'moving.avi'
    return write_video(path, translating_texture(30, 1, 0, 96, 128), fps=30)


@pytest.fixture(scope='module')
def predictor():
    numpy.random.seed(0)
    return I3DPredictor(I3D(n_class=400, modality='rgb'),
                        I3D(n_class=400, modality='flow'))


@pytest.fixture(scope='module')
def inputs(predictor, video):
    return predictor.load(video)  # TV-L1 on 24 pairs: once for the module


def test_load_follows_deepminds_preprocessing(inputs):
    assert inputs['rgb'].shape == (3, 25, 224, 224)
    assert inputs['flow'].shape == (2, 25, 224, 224)
    assert -1 <= inputs['rgb'].min() and inputs['rgb'].max() <= 1
    # 1 px/frame at 96 high is 256 / 96 px/frame at 256: / 20 = 0.133.
    assert numpy.median(inputs['flow'][0]) == pytest.approx(256 / 96 / 20,
                                                            abs=0.01)


def test_classify_fuses_the_streams(predictor, inputs):
    rows, logits = predictor.classify(inputs, top_k=3)
    numpy.testing.assert_allclose(logits['two_stream'],
                                  logits['rgb'] + logits['flow'])
    assert [r['label'] for r in rows] == list(
        numpy.argsort(-logits['two_stream'])[:3])
    assert rows[0]['name'] == predictor.label_names[rows[0]['label']]
    assert rows[0]['prob'] >= rows[1]['prob'] >= rows[2]['prob']


@pytest.mark.parametrize('endpoint,clips,shape', [
    ('avgpool', None, (3, 2048)),          # T'' = ceil(25 / 8) = 4, T' = 3
    ('mixed_5c', None, (2048, 4, 7, 7)),
    ('logits', None, (400,)),
    ('avgpool', (9, 8), (3, 2048)),        # clips start at 0, 8, 16
    ('mixed_5c', (16, 16), (1, 2048, 2, 7, 7)),
    ('logits', (10, 5), (4, 400)),         # starts 0, 5, 10, 15
])
def test_feature_shapes(predictor, inputs, endpoint, clips, shape):
    clip_frames, clip_stride = clips or (None, None)
    features = predictor.features(inputs, endpoint, clip_frames, clip_stride)
    assert features.shape == shape
    assert features.dtype == numpy.float32


def test_whole_video_avgpool_is_the_links_output(predictor, inputs):
    features = predictor.features(inputs, 'avgpool')
    model = predictor.models['rgb']
    model.pick = 'avgpool'
    try:
        import chainer
        with chainer.using_config('train', False):
            expected = model(inputs['rgb'][None]).array[0].T
    finally:
        model.pick = 'logits'
    # The predictor runs the fast path, this the reference path: the same
    # function up to float32 rounding (each is checked against TensorFlow).
    numpy.testing.assert_allclose(features[:, :1024], expected, rtol=1e-4,
                                  atol=1e-5)


def test_sample_npy_and_its_errors(tmp_path):
    rgb_only = I3DPredictor(I3D(n_class=400))
    clip = numpy.random.uniform(-1, 1, (1, 9, 224, 224, 3)).astype('f')
    numpy.save(str(tmp_path / 'clip.npy'), clip)
    rows, _ = rgb_only.classify(str(tmp_path / 'clip.npy'))
    assert len(rows) == 5
    numpy.save(str(tmp_path / 'flow.npy'), clip[..., :2])
    with pytest.raises(ValueError, match='no flow model'):
        rgb_only.classify(str(tmp_path / 'flow.npy'))
    with pytest.raises(ValueError, match='give an RGB model'):
        I3DPredictor()
    with pytest.raises(ValueError, match='two streams must share their classes'):
        I3DPredictor(I3D(n_class=400), I3D(n_class=600, modality='flow'))


def test_float16_predictor_stays_close_to_float32():
    numpy.random.seed(1)
    model = I3D(n_class=400)
    clip = {'rgb': numpy.random.RandomState(2).uniform(
        -1, 1, (3, 9, 193, 193)).astype(numpy.float32)}
    half_predictor = I3DPredictor(model, dtype='float16')
    assert model.fast.dtype == 'float16'
    half = half_predictor.features(clip, 'mixed_5c')
    expected = I3DPredictor(model).features(clip, 'mixed_5c')
    assert half.dtype == numpy.float32
    error = numpy.abs(half - expected).max() / numpy.abs(expected).max()
    assert 1e-5 < error < 5e-3  # float16 rounding: see test_reduced_precision
    assert half_predictor.classify(clip)[1]['rgb'].shape == (400,)


def test_dtype_errors():
    with pytest.raises(ValueError, match='float32 or float16, not'):
        I3DPredictor('no-such-model-is-loaded', dtype='float64')
    with pytest.raises(ValueError, match='fast_inference=False'):
        I3DPredictor(I3D(n_class=400, fast_inference=False), dtype='float16')
