"""FVD without TensorFlow, against the reference's pipeline in TensorFlow.

The TensorFlow side is written here from the reference's steps
(google-research ``frechet_video_distance.py``: TF1's resize op, the I3D
graph of :mod:`chainercv_i3d.testing.tf_reference`, TF-GAN's formula in TF
ops; tensorflow-gan itself no longer imports with TensorFlow 2.16 and
later, which dropped ``tf.estimator``).
"""

import json
import os

import chainer
import numpy
import pytest

from chainercv_i3d.evaluations import fvd as fvd_module
from chainercv_i3d.evaluations.fvd import activation_statistics
from chainercv_i3d.evaluations.fvd import check_videos
from chainercv_i3d.evaluations.fvd import embed
from chainercv_i3d.evaluations.fvd import frechet_distance
from chainercv_i3d.evaluations.fvd import fvd
from chainercv_i3d.evaluations.fvd import preprocess_videos
from chainercv_i3d.evaluations.fvd import resize_bilinear
from chainercv_i3d.evaluations.fvd import VideoSet
from chainercv_i3d.evaluations.fvd import VideoStats
from chainercv_i3d.links import I3D
from tests.conftest import load_example
from tests.conftest import ROOT
from tests.conftest import run_script


@pytest.fixture(scope='module')
def he_link():
    """Random weights whose logits are O(1) and differ between videos
    (Chainer's default initializer makes them vanish through the ReLUs)."""
    return I3D(n_class=400, initialW=chainer.initializers.HeNormal(
        rng=numpy.random.RandomState(0)))


@pytest.fixture(scope='module')
def he_npz(he_link, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('fvd_model') / 'he.npz')
    chainer.serializers.save_npz(path, he_link)
    return path


def two_sets(seed=0, n1=3, n2=4, side=64):
    """Blocky smooth videos and noise: two sets that differ."""
    rng = numpy.random.RandomState(seed)
    blocks = rng.randint(0, 256, (n1, 16, side // 8, side // 8, 3))
    real = blocks.repeat(8, axis=2).repeat(8, axis=3).astype(numpy.uint8)
    fake = rng.randint(0, 256, (n2, 16, side, side, 3)).astype(numpy.uint8)
    return real, fake


# -- the resize ----------------------------------------------------------

@pytest.mark.parametrize('shape', [(3, 64, 64, 3), (2, 37, 51, 3),
                                   (2, 300, 260, 3), (1, 224, 224, 3)])
def test_resize_equals_tensorflow_ops(tf, shape):
    frames = numpy.random.RandomState(sum(shape)).randint(
        0, 256, shape).astype(numpy.uint8)
    numpy.testing.assert_allclose(
        resize_bilinear(frames, (224, 224)),
        tf.compat.v1.image.resize_bilinear(frames, (224, 224)).numpy(),
        rtol=0, atol=1e-5)
    numpy.testing.assert_allclose(
        resize_bilinear(frames, (224, 224), half_pixel_centers=True),
        tf.image.resize(frames, (224, 224)).numpy(), rtol=0, atol=1e-5)


def test_the_two_resizes_differ():
    frames = numpy.random.RandomState(0).randint(
        0, 256, (1, 16, 16, 3)).astype(numpy.uint8)
    a = resize_bilinear(frames, (224, 224))
    b = resize_bilinear(frames, (224, 224), half_pixel_centers=True)
    assert numpy.abs(a - b).max() > 10
    # The reference's samples the source at i * in / out: output 0 is
    # source pixel 0 exactly, as is output 14 (14 * 16 / 224 = 1).
    numpy.testing.assert_array_equal(a[0, 14, 14], frames[0, 1, 1])


def test_preprocess_range_and_shape():
    videos = numpy.zeros((2, 9, 8, 8, 3), numpy.uint8)
    videos[1] = 255
    x = preprocess_videos(videos)
    assert x.shape == (2, 9, 224, 224, 3) and x.dtype == numpy.float32
    assert (x[0] == -1).all() and (x[1] == 1).all()
    with pytest.raises(ValueError, match='resize must be one of'):
        preprocess_videos(videos, resize='bicubic')


@pytest.mark.parametrize('videos, message', [
    (numpy.zeros((2, 16, 8, 8), numpy.uint8), r'\(N, T, H, W, 3\)'),
    (numpy.zeros((2, 16, 8, 8, 4), numpy.uint8), '4 channels'),
    (numpy.zeros((0, 16, 8, 8, 3), numpy.uint8), 'empty'),
    (numpy.zeros((2, 16, 8, 8, 3), numpy.complex64), 'complex64'),
    (numpy.full((2, 16, 8, 8, 3), 256.0), 'values from'),
    (numpy.full((2, 16, 8, 8, 3), -1, numpy.int16), 'values from'),
    (numpy.full((2, 16, 8, 8, 3), numpy.nan), 'values from'),
])
def test_bad_videos_are_refused_in_one_line(videos, message):
    with pytest.raises(ValueError, match=message) as e:
        check_videos(videos)
    assert '\n' not in str(e.value)


# -- the distance --------------------------------------------------------

def tf_frechet_distance(tf, activations1, activations2):
    """TF-GAN's frechet_classifier_distance_from_activations in TF ops:
    float64, unbiased covariances, symmetric roots by SVD (eps 1e-10)."""
    def stats(a):
        a = tf.cast(tf.constant(a), tf.float64)
        n = tf.cast(tf.shape(a)[0], tf.float64)
        mean = tf.reduce_mean(a, axis=0)
        centred = a - mean
        return mean, tf.matmul(centred, centred, transpose_a=True) / (n - 1)

    def sqrt(mat):
        s, u, v = tf.linalg.svd(mat)
        si = tf.where(tf.less(s, 1e-10), s, tf.sqrt(s))
        return tf.matmul(tf.matmul(u, tf.linalg.diag(si)), v,
                         transpose_b=True)

    m, sigma = stats(activations1)
    m_w, sigma_w = stats(activations2)
    root = sqrt(sigma)
    trace_sqrt = tf.linalg.trace(sqrt(tf.matmul(root,
                                                tf.matmul(sigma_w, root))))
    return float(tf.linalg.trace(sigma + sigma_w) - 2.0 * trace_sqrt
                 + tf.reduce_sum(tf.math.squared_difference(m, m_w)))


def random_activations(seed, n, d=400):
    rng = numpy.random.RandomState(seed)
    mixing = rng.normal(size=(d, d)) / numpy.sqrt(d)
    return rng.normal(size=(n, d)).dot(mixing) * 3 + rng.normal(size=d)


@pytest.mark.parametrize('n1, n2', [(3, 4), (50, 70), (600, 500)])
def test_frechet_distance_equals_tensorflow_ops(tf, n1, n2):
    a, b = random_activations(1, n1), random_activations(2, n2)
    ours = frechet_distance(*activation_statistics(a),
                            *activation_statistics(b))
    assert ours == pytest.approx(tf_frechet_distance(tf, a, b), rel=1e-6)


def test_frechet_distance_equals_scipy_sqrtm_when_full_rank():
    import scipy.linalg
    a, b = random_activations(3, 300, 20), random_activations(4, 400, 20)
    (m1, s1), (m2, s2) = activation_statistics(a), activation_statistics(b)
    root = scipy.linalg.sqrtm(s1.dot(s2)).real
    expected = numpy.sum((m1 - m2) ** 2) + numpy.trace(s1 + s2 - 2 * root)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected,
                                                             rel=1e-6)
    # The unbiased covariance, as TF-GAN's n / (n - 1) correction.
    numpy.testing.assert_allclose(s1, numpy.cov(a, rowvar=False), rtol=1e-12)


def test_frechet_distance_of_identical_sets_is_zero_and_symmetric():
    a, b = random_activations(5, 40), random_activations(6, 30)
    (m1, s1), (m2, s2) = activation_statistics(a), activation_statistics(b)
    assert abs(frechet_distance(m1, s1, m1, s1)) < 1e-9 * numpy.trace(s1)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(
        frechet_distance(m2, s2, m1, s1), rel=1e-9)
    assert frechet_distance(m1, s1, m2, s2) > 1


def test_frechet_distance_refuses_bad_shapes():
    a = random_activations(7, 5, 8)
    m, s = activation_statistics(a)
    with pytest.raises(ValueError, match='sigma2 has shape'):
        frechet_distance(m, s, m, s[:4])
    with pytest.raises(ValueError, match='at least 2 videos'):
        activation_statistics(a[:1])


def test_stats_round_trip_and_bad_files(tmp_path):
    stats = VideoStats.from_activations(random_activations(8, 6, 10),
                                        {'resize': 'tf2', 'frames': 16})
    path = str(tmp_path / 'stats.npz')
    stats.save(path)
    loaded = VideoStats.load(path)
    numpy.testing.assert_array_equal(loaded.mu, stats.mu)
    numpy.testing.assert_array_equal(loaded.sigma, stats.sigma)
    assert loaded.n == 6 and loaded.settings == stats.settings
    bad = str(tmp_path / 'bad.npz')
    numpy.savez(bad, mu=stats.mu)
    with pytest.raises(ValueError, match='no sigma, n, settings array') as e:
        VideoStats.load(bad)
    assert '\n' not in str(e.value)
    with pytest.raises(ValueError, match='embedded differently'):
        fvd_module.fvd_from_stats(
            stats, VideoStats(stats.mu, stats.sigma, 6, {'resize':
                                                        'reference'}))


# -- the embedding and the whole pipeline --------------------------------

def test_fvd_refuses_sets_it_cannot_compare(he_link):
    real, fake = two_sets()
    with pytest.raises(ValueError, match='same shape'):
        fvd(real, fake[:, :, :32], he_link)
    with pytest.raises(ValueError, match='at least 2 per set'):
        fvd(real[:1], fake, he_link)
    with pytest.raises(ValueError, match='too short'):
        embed(real[:, :8], he_link)


def tf_fvd_pipeline(tf, link, real, fake, resize='reference'):
    """The reference's pipeline in TensorFlow: its resize op, the I3D
    graph with the link's weights, TF-GAN's formula in TF ops."""
    from chainercv_i3d.testing.tf_reference import deepmind_tensors_of_link
    from chainercv_i3d.testing.tf_reference import tf_i3d_logits
    forward = tf_i3d_logits(deepmind_tensors_of_link(link),
                            'RGB/inception_i3d/')

    def embedding(videos):
        frames = videos.reshape((-1,) + videos.shape[2:])
        if resize == 'reference':
            resized = tf.compat.v1.image.resize_bilinear(frames, (224, 224))
        else:
            resized = tf.image.resize(frames, (224, 224))
        x = tf.reshape(resized, (len(videos), -1, 224, 224, 3))
        return forward(2. * tf.cast(x, tf.float32) / 255. - 1).numpy()

    a, b = embedding(real), embedding(fake)
    return a, b, tf_frechet_distance(tf, a, b)


@pytest.mark.slow  # two I3D passes over 7 videos of 16 frames at 224
@pytest.mark.parametrize('resize', ['reference', 'tf2'])
def test_fvd_equals_the_pipeline_in_tensorflow(tf, he_link, resize,
                                               fidelity_report):
    real, fake = two_sets()
    tf_real, tf_fake, expected = tf_fvd_pipeline(tf, he_link, real, fake,
                                                 resize)
    ours_real = embed(real, he_link, batch_size=2, resize=resize)
    ours_fake = embed(fake, he_link, resize=resize)
    for ours, theirs in ((ours_real, tf_real), (ours_fake, tf_fake)):
        assert ours.dtype == numpy.float64
        scale = numpy.abs(theirs).max()
        assert numpy.abs(ours - theirs).max() <= 1e-4 * scale
    ours = frechet_distance(*activation_statistics(ours_real),
                            *activation_statistics(ours_fake))
    fidelity_report('FVD, random He weights, 3 vs 4 videos 16x64x64, resize '
                    '{}: {:.6g} vs TensorFlow {:.6g} (relative {:.1e})'.format(
                        resize, ours, expected, abs(ours / expected - 1)))
    assert ours == pytest.approx(expected, rel=1e-4)
    assert fvd(real, fake, he_link, resize=resize) == pytest.approx(ours,
                                                                    rel=1e-9)


@pytest.fixture(scope='module')
def tfhub_npz(tf, shared_i3d, tmp_path_factory):
    """The TF-Hub weights converted from ../shared/i3d's checkpoint."""
    npz = str(tmp_path_factory.mktemp('fvd_tfhub') / 'rgb_tfhub.npz')
    result = run_script('tfckpt2npz.py', os.path.join(
        shared_i3d, 'checkpoints', 'rgb_tfhub_kinetics400'), npz)
    assert result.returncode == 0, result.stderr
    return npz


@pytest.mark.slow  # the real weights, converted, and I3D in TensorFlow
def test_fvd_with_the_real_weights_equals_tensorflow(tf, tfhub_npz,
                                                     fidelity_report):
    link = I3D(pretrained_model=tfhub_npz)
    real, fake = two_sets(1)
    tf_real, tf_fake, expected = tf_fvd_pipeline(tf, link, real, fake)
    ours_real, ours_fake = embed(real, link), embed(fake, link)
    for ours, theirs in ((ours_real, tf_real), (ours_fake, tf_fake)):
        assert numpy.abs(ours - theirs).max() <= 1e-4 * numpy.abs(
            theirs).max()
    ours = frechet_distance(*activation_statistics(ours_real),
                            *activation_statistics(ours_fake))
    fidelity_report('FVD, rgb_tfhub_kinetics400, 3 vs 4 videos 16x64x64: '
                    '{:.6g} vs TensorFlow {:.6g} (relative {:.1e})'.format(
                        ours, expected, abs(ours / expected - 1)))
    assert ours == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow  # the real weights, converted
def test_the_reference_example_black_against_white(tfhub_npz,
                                                   fidelity_report):
    """google-research's frechet_video_distance/example.py: 16 videos of 15
    black 64x64 frames against 16 white ones, "FVD ... should be around
    131". Constant frames: both resizes agree, covariances are 0, and 2
    identical videos per set give what 16 give."""
    link = I3D(pretrained_model=tfhub_npz)
    black = numpy.zeros((2, 15, 64, 64, 3), numpy.uint8)
    white = numpy.full_like(black, 255)
    ours = fvd(black, white, link)
    fidelity_report('FVD of the reference example (black vs white '
                    'videos): {:.4f} (the reference: "around 131")'.format(
                        ours))
    assert ours == pytest.approx(131, rel=0.03)


# -- video sets ----------------------------------------------------------

def write_gif(path, video):
    from PIL import Image
    frames = [Image.fromarray(f) for f in video]
    frames[0].save(path, save_all=True, append_images=frames[1:],
                   duration=40, loop=0)


def write_mp4(path, video):
    import cv2
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 25.0,
                             (video.shape[2], video.shape[1]))
    for frame in video:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_video_set_reads_folders_and_arrays(tmp_path):
    real, _ = two_sets(side=32)
    folder = tmp_path / 'videos'
    (folder / 'sub').mkdir(parents=True)
    write_mp4(str(folder / 'a.mp4'), real[0])
    write_gif(str(folder / 'sub' / 'b.gif'), real[1])
    videos = VideoSet(str(folder))
    assert len(videos) == 2 and videos.name(1) == os.path.join('sub',
                                                               'b.gif')
    for i in range(2):
        video = videos.read(i)
        assert video.shape == (16, 32, 32, 3) and video.dtype == numpy.uint8
        # Lossy codecs: close to what was written, on average.
        assert numpy.abs(video.astype(float) - real[i]).mean() < 20
    numpy.savez(str(tmp_path / 'v.npz'), videos=real)
    numpy.testing.assert_array_equal(
        VideoSet(str(tmp_path / 'v.npz')).read(2), real[2])


# -- the command line ----------------------------------------------------

@pytest.fixture(scope='module')
def cli_sets(tmp_path_factory):
    out = tmp_path_factory.mktemp('fvd_cli')
    real, fake = two_sets(2, side=32)
    paths = {'real': out / 'real.npy', 'fake': out / 'fake.npz'}
    numpy.save(str(paths['real']), real)
    numpy.savez(str(paths['fake']), fake)
    mixed = out / 'mixed'
    mixed.mkdir()
    write_gif(str(mixed / 'a.gif'), real[0])
    write_gif(str(mixed / 'b.gif'), real[1][:, :16])
    paths['mixed'] = mixed
    for name, array in (('one', real[:1]), ('four', real[..., :1].repeat(
            4, axis=4)), ('floats', real.astype(numpy.float32))):
        paths[name] = out / (name + '.npy')
        numpy.save(str(paths[name]), array)
    paths['not_stats'] = out / 'not_stats.npz'
    numpy.savez(str(paths['not_stats']), mu=numpy.zeros(400))
    whole = paths['fake'].read_bytes()
    paths['truncated'] = out / 'truncated.npz'
    paths['truncated'].write_bytes(whole[:len(whole) // 2])
    # A bad CRC: the zip opens, the member does not read.
    paths['bad_crc'] = out / 'bad_crc.npz'
    middle = len(whole) // 2
    paths['bad_crc'].write_bytes(whole[:middle] + bytes([whole[middle] ^ 1])
                                 + whole[middle + 1:])
    paths['out'] = out
    return {k: str(v) for k, v in paths.items()}


def run_main(capsys, *args):
    """Runs examples/i3d/fvd.py in this process; returns (status, stdout,
    stderr)."""
    module = load_example('fvd.py')
    try:
        module.main([str(a) for a in args])
        status = 0
    except SystemExit as e:
        status = e.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize('case, message', [
    (('one', 'real'), 'at least 2 per set'),
    (('four', 'real'), '4 channels'),
    (('floats', 'real'), 'store the videos as uint8'),
    (('real', 'nothing.npy'), 'no such file or folder'),
    (('mixed', 'real'), 'videos differ in shape: a.gif is'),
    (('--stats', 'not_stats', 'fake'), 'no sigma, n, settings array'),
    (('real', 'truncated'), 'truncated.npz is truncated or damaged (its '
     'zip archive is incomplete): write the videos again'),
    (('real', 'bad_crc'), 'bad_crc.npz is damaged (arr_0.npy: its data do '
     'not match their checksum)'),
    (('--stats', 'truncated', 'fake'), 'truncated.npz is truncated or '
     'damaged (its zip archive is incomplete): write it again with fvd.py '
     '--save_stats'),
    (('--stats', 'real', 'fake'), 'real.npy is not FVD statistics: it has no '
     'mu, sigma, n, settings array (it has one array)'),
])
def test_cli_refuses_bad_input_in_one_line(capsys, cli_sets, he_npz, case,
                                           message):
    args = [cli_sets.get(a, a) for a in case]
    status, out, err = run_main(capsys, *args, '--rgb_model', he_npz,
                                '--device', 'cpu', '--quiet')
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert lines[0].startswith('fvd: rank 0: ')


@pytest.mark.slow  # three embeddings of 3 and 4 small videos
def test_cli_saved_stats_give_the_same_fvd(capsys, cli_sets, he_npz):
    out = cli_sets['out']
    common = ['--rgb_model', he_npz, '--device', 'cpu', '--quiet']
    status, stdout, err = run_main(
        capsys, cli_sets['real'], cli_sets['fake'], '--json',
        os.path.join(out, 'direct.json'), '--save_stats',
        os.path.join(out, 'real_stats.npz'), *common)
    assert status == 0, err
    assert stdout.startswith('FVD: ')
    status, _, err = run_main(
        capsys, '--stats', os.path.join(out, 'real_stats.npz'),
        cli_sets['fake'], '--json', os.path.join(out, 'stats.json'), *common)
    assert status == 0, err
    with open(os.path.join(out, 'direct.json')) as f:
        direct = json.load(f)
    with open(os.path.join(out, 'stats.json')) as f:
        from_stats = json.load(f)
    assert direct['fvd'] > 0
    assert from_stats['fvd'] == pytest.approx(direct['fvd'], rel=1e-12)
    assert direct['real']['n'] == 3 and direct['fake']['n'] == 4
    assert direct['real']['frames'] == 16 and direct['fake']['height'] == 32
    assert from_stats['real']['from_stats'] is True
    settings = direct['settings']
    assert settings['model'] == he_npz and settings['resize'] == 'reference'
    assert len(settings['weights_sha256']) == 64
    assert settings['size'] == 224 and settings['dtype'] == 'float32'
    assert 'Mean:0' in settings['embedding'] and settings['version']
    # Statistics made with another resize are refused.
    status, _, err = run_main(
        capsys, '--stats', os.path.join(out, 'real_stats.npz'),
        cli_sets['fake'], '--resize', 'tf2', *common)
    assert status == 1 and 'embedded differently (resize' in err


@pytest.mark.slow  # mpiexec, two ranks and one, each loading the model
def test_cli_two_ranks_equal_one(mpiexec, cli_sets, he_npz):
    import subprocess
    import sys
    out = cli_sets['out']
    results = []
    for n in (1, 2):
        path = os.path.join(out, 'ranks{}.json'.format(n))
        result = subprocess.run(
            [mpiexec, '-n', str(n), sys.executable,
             os.path.join(ROOT, 'examples', 'i3d', 'fvd.py'),
             cli_sets['real'], cli_sets['fake'], '--rgb_model', he_npz,
             '--device', 'cpu', '--quiet', '--json', path],
            capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stderr
        with open(path) as f:
            results.append(json.load(f))
    assert results[1]['fvd'] == pytest.approx(results[0]['fvd'], rel=1e-9)
    assert results[1]['fake']['n'] == 4
