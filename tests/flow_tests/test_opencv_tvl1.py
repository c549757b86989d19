import multiprocessing
import pickle

import cv2
import numpy
import pytest

from chainercv_i3d.flow import get_flow_backend
from chainercv_i3d.flow import OpenCVTVL1

H, W = 96, 128
MARGIN = 16  # TV-L1 is unreliable near the borders, where content enters


def smooth_texture(shape, sigma=2, seed=0):
    """Gaussian-blurred noise stretched to [0, 255]: trackable everywhere."""
    rng = numpy.random.RandomState(seed)
    texture = cv2.GaussianBlur(
        rng.uniform(0, 255, shape).astype(numpy.float32), (0, 0), sigma)
    texture -= texture.min()
    return numpy.round(texture * (255 / texture.max())).astype(numpy.uint8)


def translated_frames(n_frame, dx, dy):
    """Frames of a texture moving by (dx, dy) pixels per frame.

    Integer windows of a larger texture, moved by (-dx, -dy) each frame, so
    the content moves by (dx, dy) with no interpolation.
    """
    last = n_frame - 1
    texture = smooth_texture((H + last * dy, W + last * dx))
    return numpy.stack([
        texture[(last - t) * dy:(last - t) * dy + H,
                (last - t) * dx:(last - t) * dx + W]
        for t in range(n_frame)])


def test_translated_frames_move_by_dx_dy():
    frames = translated_frames(2, 2, 1)
    numpy.testing.assert_array_equal(frames[1, 1:, 2:], frames[0, :-1, :-2])


def test_recovers_known_translation():
    dx, dy = 2, 1
    flow = OpenCVTVL1().compute_video(translated_frames(3, dx, dy))
    assert flow.shape == (2, H, W, 2) and flow.dtype == numpy.float32
    interior = flow[:, MARGIN:-MARGIN, MARGIN:-MARGIN].reshape(-1, 2)
    mean, std = interior.mean(axis=0), interior.std(axis=0)
    # Measured: mean (1.9992, 0.9984) px, std (0.0035, 0.0031) px.
    numpy.testing.assert_allclose(mean, [dx, dy], atol=0.25)
    assert numpy.all(std < 0.1)


def test_compute_shape_and_dtype():
    frames = translated_frames(2, 1, 0)[:, :40, :50]
    flow = OpenCVTVL1().compute(frames[0], frames[1])
    assert flow.shape == (40, 50, 2) and flow.dtype == numpy.float32


def test_creates_the_cv2_object_lazily():
    backend = OpenCVTVL1()
    assert backend._tvl1 is None
    backend.compute(numpy.zeros((8, 8), numpy.uint8),
                    numpy.zeros((8, 8), numpy.uint8))
    assert backend._tvl1 is not None


def test_pickles_after_use():
    backend = OpenCVTVL1()
    frames = translated_frames(2, 2, 1)[:, :32, :40]
    expected = backend.compute_video(frames)  # now holds the cv2 object
    copy = pickle.loads(pickle.dumps(backend))
    assert isinstance(copy, OpenCVTVL1) and copy._tvl1 is None
    numpy.testing.assert_array_equal(copy.compute_video(frames), expected)


def test_runs_in_a_worker_process():
    backend = OpenCVTVL1()
    frames = translated_frames(2, 2, 1)[:, :32, :40]
    expected = backend.compute_video(frames)
    # spawn pickles the backend (fork would copy it without pickling).
    with multiprocessing.get_context('spawn').Pool(1) as pool:
        flow = pool.apply(backend.compute_video, (frames,))
    numpy.testing.assert_array_equal(flow, expected)


def test_missing_contrib_says_what_to_install(monkeypatch):
    monkeypatch.delattr(cv2, 'optflow', raising=False)
    backend = OpenCVTVL1()
    with pytest.raises(RuntimeError, match='opencv-contrib-python-headless'):
        backend.compute(numpy.zeros((8, 8), numpy.uint8),
                        numpy.zeros((8, 8), numpy.uint8))


@pytest.mark.parametrize('device', [None, 'cpu', '@numpy', -1])
def test_takes_the_cpu_as_device(device):
    assert OpenCVTVL1(device=device).device == device


@pytest.mark.parametrize('device', ['gpu', '@cupy:0', 0, 'auto'])
def test_refuses_other_devices(device):
    with pytest.raises(ValueError, match=r"runs on the CPU only: device "
                       r"must be 'cpu' or None, not"):
        get_flow_backend('tvl1', device=device)


def test_options_are_checked_when_made():
    with pytest.raises(ValueError, match='tvl1 option warps must be an '
                       'integer of at least 1, not 0'):
        OpenCVTVL1(warps=0)
    with pytest.raises(ValueError, match=r'scale_step must be a number in '
                       r'\(0, 1\), not 1.5'):
        OpenCVTVL1(scale_step=1.5)
    with pytest.raises(ValueError, match="tau must be a positive number, "
                       "not 'x'"):
        OpenCVTVL1(tau='x')


def test_options_reach_opencv():
    backend = get_flow_backend('tvl1', n_scales=2, warps=1, tau=0.125)
    frames = translated_frames(2, 2, 1)[:, :32, :40]
    flow = backend.compute_video(frames)
    tvl1 = backend._tvl1
    assert (tvl1.getScalesNumber(), tvl1.getWarpingsNumber()) == (2, 1)
    assert tvl1.getTau() == 0.125
    # Fewer scales and warps than the defaults: another flow.
    assert not numpy.array_equal(flow, OpenCVTVL1().compute_video(frames))
    copy = pickle.loads(pickle.dumps(backend))
    numpy.testing.assert_array_equal(copy.compute_video(frames), flow)


def test_worker_init_limits_opencv_to_one_thread():
    threads = cv2.getNumThreads()
    try:
        OpenCVTVL1().worker_init()
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(threads)
    assert OpenCVTVL1.mp_context == 'fork'
