"""The batched array TV-L1 (``tvl1_xp``) against OpenCV contrib's TV-L1.

Primitives are compared with the OpenCV call they reproduce, the whole
algorithm with ``cv2.optflow.DualTVL1OpticalFlow_create()`` (a new object
per call: OpenCV lowers its own scale count for good after a small image).
"""

import os
import pickle

import cv2
import numpy
import pytest

from chainercv_i3d.datasets import PrecomputedVideo
from chainercv_i3d.datasets.precompute import make_preset
from chainercv_i3d.datasets.precompute import PrecomputeConfig
from chainercv_i3d.datasets.precompute import run_precompute
from chainercv_i3d.datasets.precomputed_video import precomputed_path
from chainercv_i3d.datasets.video_list import read_video_list
from chainercv_i3d.flow import flow_backend_names
from chainercv_i3d.flow import get_flow_backend
from chainercv_i3d.flow import gray_video
from chainercv_i3d.flow import quantize_flow
from chainercv_i3d.flow import tvl1_xp
from chainercv_i3d.flow import XpTVL1
from chainercv_i3d.utils.comm import SerialComm
from chainercv_i3d.utils.video import decode_and_resample
from tests.datasets_tests.videos import translating_texture
from tests.datasets_tests.videos import write_video


def smooth_image(shape, seed=0, low=0, high=255):
    rng = numpy.random.RandomState(seed)
    image = cv2.GaussianBlur(rng.uniform(0, 1, shape).astype(numpy.float32),
                             (0, 0), 2)
    image -= image.min()
    return (low + image * ((high - low) / image.max())).astype(numpy.float32)


def cosine_scene(dx, dy, height=96, width=128, seed=1):
    """A sum of cosines moved by exactly ``(dx, dy)`` pixels (sub-pixel
    shifts are exact: the scene is evaluated, not interpolated)."""
    rng = numpy.random.RandomState(seed)
    k = rng.uniform(0.05, 0.3, (6, 2))
    phase = rng.uniform(0, 2 * numpy.pi, 6)
    y, x = numpy.mgrid[:height, :width].astype(numpy.float64)
    value = sum(numpy.cos(k[i, 0] * (x - dx) + k[i, 1] * (y - dy) + phase[i])
                for i in range(6))
    return numpy.clip(numpy.round(128 + 20 * value), 0, 255).astype(
        numpy.uint8)


# The OpenCV whose TV-L1 tvl1_xp reproduces (the project's pin).
REFERENCE_OPENCV = '4.11.'


def needs_opencv4():
    """tvl1_xp reproduces OpenCV 4.11's TV-L1. Other versions differ: 5.0's
    remap no longer rounds cubic positions to 1/32 pixel, and both 4.14 and
    5.0 land 0.014-0.023 px (mean) from 4.11's flow on bikes at short side
    128 (benchmarks/opencv_flow_versions.py), 10 to 100 times further than
    tvl1_xp."""
    if not cv2.__version__.startswith(REFERENCE_OPENCV):
        pytest.skip('OpenCV {} is not the reference: tvl1_xp reproduces '
                    'OpenCV 4.11 (pin opencv-contrib-python-headless=='
                    '4.11.0.86, as constraints/runtime.txt does)'.format(
                        cv2.__version__))


def opencv_flow(prev_gray, next_gray):
    needs_opencv4()
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
    return tvl1.calc(prev_gray, next_gray, None)


def end_point_error(flow, reference):
    return numpy.sqrt(((flow - reference) ** 2).sum(axis=-1))


def xp_pairs(prev_gray, next_gray):
    return tvl1_xp.TVL1Batch(numpy).compute_pairs(prev_gray, next_gray)


# Primitives ---------------------------------------------------------------

@pytest.mark.parametrize('low', [0, -60])  # an image, or a gradient
def test_warp_equals_cv2_remap_cubic(low):
    needs_opencv4()
    height, width = 60, 80
    image = smooth_image((height, width), low=low)
    rng = numpy.random.RandomState(1)
    u1 = (3 * rng.randn(height, width)).astype(numpy.float32)
    u2 = (3 * rng.randn(height, width)).astype(numpy.float32)
    u1[:5, :5] = 200  # whole 4x4 neighbourhoods outside the image
    u2[-5:, -5:] = -300
    u1[10, 10] = 0.5 / 32  # exactly halfway between 1/32 steps: to even
    u1[11, 10] = 1.5 / 32
    map_x = numpy.arange(width, dtype=numpy.float32)[None] + u1
    map_y = numpy.arange(height, dtype=numpy.float32)[:, None] + u2
    expected = cv2.remap(image, map_x, map_y, cv2.INTER_CUBIC)

    warped = tvl1_xp.warp_cubic(numpy, [image[None]], numpy.array([0]),
                                u1[None], u2[None])[0][0]
    left = numpy.floor(map_x) - 1
    top = numpy.floor(map_y) - 1
    inside = ((left >= 0) & (left + 3 < width) & (top >= 0)
              & (top + 3 < height))
    assert inside.mean() > 0.5 and (~inside).sum() > 100
    numpy.testing.assert_array_equal(warped[inside], expected[inside])
    numpy.testing.assert_allclose(warped, expected, rtol=0, atol=1e-4)
    assert numpy.all(warped[:5, :5] == 0) and numpy.all(warped[-5:, -5:] == 0)


def test_warp_reads_the_frame_of_each_pair():
    needs_opencv4()
    frames = numpy.stack([smooth_image((20, 24), seed=s) for s in range(3)])
    u = numpy.full((2, 20, 24), 0.3, numpy.float32)
    warped = tvl1_xp.warp_cubic(numpy, [frames], numpy.array([2, 0]), u, u)[0]
    map_x = numpy.arange(24, dtype=numpy.float32)[None] + u[0]
    map_y = numpy.arange(20, dtype=numpy.float32)[:, None] + u[0]
    for k, frame in enumerate((2, 0)):
        numpy.testing.assert_array_equal(
            warped[k], cv2.remap(frames[frame], map_x, map_y,
                                 cv2.INTER_CUBIC))


def _needs_ipp():
    # OpenCV's x86 wheels resize float32 with IPP, which tvl1_xp follows.
    if not cv2.ipp.useIPP():
        pytest.skip('this OpenCV does not use IPP; tvl1_xp reproduces the '
                    'IPP resize of the x86 wheels')


@pytest.mark.parametrize('shape', [(256, 340), (60, 80), (17, 21)])
def test_resize_by_0_8_matches_cv2(shape):
    _needs_ipp()
    image = smooth_image(shape)
    expected = cv2.resize(image, None, fx=0.8, fy=0.8,
                          interpolation=cv2.INTER_LINEAR)
    resized = tvl1_xp.resize_bilinear(numpy, image[None], expected.shape,
                                      scale=1 / 0.8)[0]
    numpy.testing.assert_allclose(resized, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize('shape,size', [((205, 272), (256, 340)),
                                        ((48, 64), (60, 80)),
                                        ((14, 17), (17, 21))])
def test_resize_up_to_a_size_matches_cv2(shape, size):
    _needs_ipp()
    flow = smooth_image(shape, low=-20, high=20)
    expected = cv2.resize(flow, size[::-1], interpolation=cv2.INTER_LINEAR)
    resized = tvl1_xp.resize_bilinear(numpy, flow[None], size)[0]
    numpy.testing.assert_allclose(resized, expected, rtol=0, atol=1e-4)


def test_median_equals_cv2_median_blur():
    rng = numpy.random.RandomState(0)
    u = rng.randn(3, 30, 41).astype(numpy.float32)
    u[1] = numpy.round(u[1])  # ties
    filtered = tvl1_xp.median5(numpy, u)
    for k in range(3):
        numpy.testing.assert_array_equal(filtered[k], cv2.medianBlur(u[k], 5))


def opencv_pyramid_sizes(height, width):
    """OpenCV's loop: resize by 0.8 until a side is below 16 pixels."""
    image = numpy.zeros((height, width), numpy.float32)
    sizes = [image.shape]
    for _ in range(1, 5):
        image = cv2.resize(image, None, fx=0.8, fy=0.8,
                           interpolation=cv2.INTER_LINEAR)
        if min(image.shape) < 16:
            break
        sizes.append(image.shape)
    return sizes


@pytest.mark.parametrize('shape', [(256, 340), (256, 455), (128, 171),
                                   (17, 20), (20, 25), (40, 21), (8, 9)])
def test_pyramid_sizes_equal_opencvs(shape):
    assert tvl1_xp.pyramid_sizes(*shape) == opencv_pyramid_sizes(*shape)


def test_pyramid_stops_below_16_pixels():
    assert tvl1_xp.pyramid_sizes(256, 340) == [
        (256, 340), (205, 272), (164, 218), (131, 174), (105, 139)]
    assert tvl1_xp.pyramid_sizes(20, 25) == [(20, 25), (16, 20)]
    assert tvl1_xp.pyramid_sizes(17, 20) == [(17, 20)]


def test_centered_gradient():
    image = smooth_image((7, 9))
    dx, dy = tvl1_xp.centered_gradient(numpy, image[None])
    # Central differences inside, halved one-sided ones at the borders.
    expected_dx = numpy.gradient(image, axis=1)
    expected_dx[:, [0, -1]] *= numpy.float32(0.5)
    expected_dy = numpy.gradient(image, axis=0)
    expected_dy[[0, -1], :] *= numpy.float32(0.5)
    numpy.testing.assert_array_equal(dx[0], expected_dx)
    numpy.testing.assert_array_equal(dy[0], expected_dy)


# End to end against OpenCV -------------------------------------------------

@pytest.mark.parametrize('shift', [(1.3, -0.7), (4.6, 2.2)])
def test_subpixel_translation_matches_opencv(shift):
    prev_gray, next_gray = cosine_scene(0, 0), cosine_scene(*shift)
    flow, iterations = xp_pairs(prev_gray[None], next_gray[None])
    error = end_point_error(flow[0], opencv_flow(prev_gray, next_gray))
    assert error.mean() <= 0.01 and error.max() <= 0.3, (
        error.mean(), error.max())
    # OpenCV's early stop: far fewer than the 7,500 iterations allowed.
    assert 25 <= iterations[0] < 2000


def read_gray(path, n_frame, short_side):
    """The first frames of a video, short side scaled, as gray uint8 (as
    every stage decodes)."""
    frames = decode_and_resample(path, None, short_side)[0][:n_frame]
    assert len(frames) == n_frame, path
    return gray_video(frames)


@pytest.fixture(scope='module')
def bikes_path(shared_i3d):
    path = os.path.join(shared_i3d, 'videos', 'bikes.mp4')
    if not os.path.exists(path):
        pytest.skip('{} not found'.format(path))
    return path


def test_bikes_at_short_side_128_matches_opencv(bikes_path):
    gray = read_gray(bikes_path, 3, 128)
    flow = XpTVL1().compute_video(gray)
    for t in range(len(flow)):
        error = end_point_error(flow[t], opencv_flow(gray[t], gray[t + 1]))
        assert error.mean() <= 0.03, (t, error.mean())
        assert numpy.percentile(error, 99) <= 0.3, (t, error)
        assert (error > 0.5).mean() <= 0.005, (t, error)


@pytest.mark.slow
def test_bikes_full_size_pair_matches_opencv(bikes_path):
    gray = read_gray(bikes_path, 2, 256)
    left = (gray.shape[2] - 340) // 2
    gray = numpy.ascontiguousarray(gray[:, :, left:left + 340])
    flow = XpTVL1().compute_video(gray)
    error = end_point_error(flow[0], opencv_flow(gray[0], gray[1]))
    assert error.mean() <= 0.25, error.mean()


# Properties -----------------------------------------------------------------

def small_pairs():
    prev_gray = numpy.stack([cosine_scene(0, 0, 32, 40, seed=s)
                             for s in range(3)])
    next_gray = numpy.stack([
        cosine_scene(dx, dy, 32, 40, seed=s)
        for s, (dx, dy) in enumerate([(0.4, 0.2), (2.5, -1.0), (0, 0)])])
    return prev_gray, next_gray


def test_a_pair_in_a_batch_equals_the_pair_alone():
    prev_gray, next_gray = small_pairs()
    flow, iterations = xp_pairs(prev_gray, next_gray)
    # The pairs stop at different times, so the batch shrinks under them.
    assert len(set(iterations.tolist())) == 3
    for k in range(3):
        alone, alone_iterations = xp_pairs(prev_gray[k:k + 1],
                                           next_gray[k:k + 1])
        numpy.testing.assert_array_equal(flow[k], alone[0])
        assert iterations[k] == alone_iterations[0]


def test_zero_motion_gives_exactly_zero_after_one_iteration_a_warp():
    frame = cosine_scene(0, 0, 40, 48)
    flow, iterations = xp_pairs(frame[None], frame[None])
    assert numpy.all(flow == 0)
    n_level = len(tvl1_xp.pyramid_sizes(40, 48))
    assert iterations.tolist() == [n_level * tvl1_xp.WARPS]


def test_compute_video_equals_each_pair_in_any_chunks():
    gray = numpy.stack([cosine_scene(0.7 * t, -0.3 * t, 32, 40)
                        for t in range(4)])
    backend = XpTVL1()
    flow = backend.compute_video(gray)
    assert flow.shape == (3, 32, 40, 2) and flow.dtype == numpy.float32
    iterations = backend.last_iterations
    assert iterations.shape == (3,) and numpy.all(iterations >= 25)
    for t in range(3):
        numpy.testing.assert_array_equal(
            flow[t], backend.compute(gray[t], gray[t + 1]))
    one_pair_chunks = XpTVL1(memory_mb=1e-6)
    assert one_pair_chunks.pairs_per_chunk(32, 40) == 1
    numpy.testing.assert_array_equal(one_pair_chunks.compute_video(gray),
                                     flow)
    numpy.testing.assert_array_equal(one_pair_chunks.last_iterations,
                                     iterations)


def test_one_frame_gives_no_flow():
    flow = XpTVL1().compute_video(numpy.zeros((1, 20, 24), numpy.uint8))
    assert flow.shape == (0, 20, 24, 2) and flow.dtype == numpy.float32


def test_bad_frames_are_refused():
    backend = XpTVL1()
    with pytest.raises(ValueError, match='must be uint8'):
        backend.compute_video(numpy.zeros((2, 20, 24), numpy.float32))
    with pytest.raises(ValueError, match=r'\(T, H, W\)'):
        backend.compute_video(numpy.zeros((20, 24), numpy.uint8))
    with pytest.raises(ValueError, match='at least 4x4'):
        backend.compute_video(numpy.zeros((2, 3, 24), numpy.uint8))
    with pytest.raises(ValueError, match='one shape'):
        backend.compute_pairs(numpy.zeros((2, 20, 24), numpy.uint8),
                              numpy.zeros((2, 20, 25), numpy.uint8))
    with pytest.raises(ValueError, match='next_gray must be uint8'):
        backend.compute_pairs(numpy.zeros((1, 20, 24), numpy.uint8),
                              numpy.zeros((1, 20, 24), numpy.int32))
    with pytest.raises(ValueError, match=r'must be \(H, W\)'):
        backend.compute(numpy.zeros((1, 20, 24), numpy.uint8),
                        numpy.zeros((1, 20, 24), numpy.uint8))


# Registry and devices -------------------------------------------------------

@pytest.mark.parametrize('device', [None, 'cpu', '@numpy', -1, '-1'])
def test_cpu_devices_run_on_numpy(device):
    backend = get_flow_backend('tvl1_xp', device=device)
    assert isinstance(backend, XpTVL1) and backend.xp is numpy
    assert backend.mp_context == 'fork' and backend.gpu_id is None
    copy = pickle.loads(pickle.dumps(backend))
    assert copy.xp is numpy and copy.device == device


def test_is_registered():
    assert 'tvl1_xp' in flow_backend_names()
    assert XpTVL1.name == 'tvl1_xp'


@pytest.mark.parametrize('device', ['tpu', 'gpu:0', 1.5, '@cupy:x'])
def test_other_devices_are_refused(device):
    with pytest.raises(ValueError, match="'tvl1_xp' runs on numpy or CuPy"):
        XpTVL1(device=device)


@pytest.mark.parametrize('device', ['@cupy:0', 0, '0'])
def test_a_gpu_needs_cupy_and_a_gpu(device):
    try:
        import cupy
        n_gpu = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no CuPy, or no driver
        n_gpu = 0
    if n_gpu:
        pytest.skip('a GPU is present')
    with pytest.raises(ValueError, match='CuPy'):
        XpTVL1(device=device)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match='memory_mb must be a positive'):
        XpTVL1(memory_mb=0)
    with pytest.raises(ValueError, match='memory_mb must be a positive'):
        XpTVL1(memory_mb='1')
    with pytest.raises(ValueError, match='unknown option'):
        get_flow_backend('tvl1_xp', tau=0.3)


def test_precompute_runs_with_tvl1_xp(tmp_path):
    """The precompute stage makes the backend by name and stores its flow:
    the same uint8 flow as OpenCV's backend, to within one level."""
    write_video(tmp_path / 'videos' / 'Cat' / 'a.avi',
                translating_texture(4, 2, 1, height=48, width=64))
    videos = read_video_list('folders', str(tmp_path / 'videos'))
    stored = {}
    for backend in ('tvl1', 'tvl1_xp'):
        out = str(tmp_path / backend)
        config = PrecomputeConfig(make_preset(25.0, 48),
                                  flow_backend=backend)
        totals = run_precompute(videos, out, config, SerialComm())
        assert totals['done'] == 1
        with PrecomputedVideo(precomputed_path(out, 'Cat/a')) as video:
            stored[backend] = video.read_flow_quantized(range(3)).astype(int)
            flow = video.read_flow(range(3))
    # The flow is the motion: (2, 1) pixels a frame away from the borders.
    interior = flow[:, :, 12:-12, 12:-12].reshape(2, -1)
    numpy.testing.assert_allclose(interior.mean(axis=1), [2, 1], atol=0.1)
    needs_opencv4()
    difference = numpy.abs(stored['tvl1'] - stored['tvl1_xp'])
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


# GPU: the CUDA kernels against the array code (skip without CuPy and a GPU)

@pytest.mark.gpu
def test_warp_kernel_equals_the_array_warp(cupy):
    from chainercv_i3d.flow import tvl1_xp_kernels
    frames = numpy.stack([smooth_image((40, 52), seed=s) for s in range(3)])
    gx, gy = tvl1_xp.centered_gradient(numpy, frames)
    rng = numpy.random.RandomState(0)
    u1 = (3 * rng.randn(2, 40, 52)).astype(numpy.float32)
    u2 = (3 * rng.randn(2, 40, 52)).astype(numpy.float32)
    prev_index, next_index = numpy.array([0, 1]), numpy.array([1, 2])
    i1w, i1wx, i1wy = tvl1_xp.warp_cubic(numpy, [frames, gx, gy],
                                         next_index, u1, u2)
    expected = [i1wx, i1wy, i1wx * i1wx + i1wy * i1wy,
                ((i1w - i1wx * u1) - i1wy * u2) - frames[prev_index]]
    got = tvl1_xp_kernels.warp(cupy, *(cupy.asarray(a) for a in (frames, gx, gy)),
                         next_index, prev_index, cupy.asarray(u1),
                         cupy.asarray(u2), tvl1_xp.cubic_table())
    for value, reference in zip(got, expected):
        numpy.testing.assert_array_equal(cupy.asnumpy(value), reference)


@pytest.mark.gpu
def test_inner_step_kernel_equals_the_array_step(cupy):
    from chainercv_i3d.flow import tvl1_xp_kernels
    rng = numpy.random.RandomState(0)
    names = ('u1', 'u2', 'p11', 'p12', 'p21', 'p22', 'i1wx', 'i1wy',
             'rho_c')
    work = {name: rng.randn(2, 30, 41).astype(numpy.float32)
            for name in names}
    work['grad'] = work['i1wx'] ** 2 + work['i1wy'] ** 2
    work['grad'][0, :3] = 0  # the grad <= FLT_EPSILON branch
    on_gpu = {name: cupy.asarray(value) for name, value in work.items()}
    errors = tvl1_xp.TVL1Batch(numpy)._inner_step(work)
    gpu_errors = tvl1_xp_kernels.inner_step(
        cupy, on_gpu, tvl1_xp._L_T, tvl1_xp._THETA, tvl1_xp._TAUT,
        tvl1_xp._FLT_EPSILON)
    # The same float32 operations (no FMA); hypot may differ by an ulp
    # between CUDA's libdevice and glibc.
    for name in names[:6]:
        numpy.testing.assert_allclose(cupy.asnumpy(on_gpu[name]), work[name],
                                      rtol=1e-6, atol=1e-6, err_msg=name)
    # float64 in a tree against numpy's serial float32.
    numpy.testing.assert_allclose(cupy.asnumpy(gpu_errors), errors,
                                  rtol=1e-5)


@pytest.mark.gpu
def test_median_kernel_equals_the_array_median(cupy):
    from chainercv_i3d.flow import tvl1_xp_kernels
    rng = numpy.random.RandomState(0)
    u = rng.randn(3, 23, 37).astype(numpy.float32)
    u[1, 5:9, 5:9] = 0.25  # ties
    got = cupy.asnumpy(tvl1_xp_kernels.median5(cupy, cupy.asarray(u)))
    numpy.testing.assert_array_equal(got, tvl1_xp.median5(numpy, u))


@pytest.mark.gpu
@pytest.mark.parametrize('use_kernels', [True, False])
def test_gpu_flow_matches_numpy(cupy, use_kernels):
    gray = numpy.stack([cosine_scene(0.9 * t, -0.4 * t) for t in range(4)])
    flow = XpTVL1().compute_video(gray)
    backend = XpTVL1(device='@cupy:0', use_kernels=use_kernels)
    assert backend.mp_context == 'spawn'
    gpu_flow = backend.compute_video(gray)
    assert gpu_flow.dtype == numpy.float32 and isinstance(gpu_flow,
                                                          numpy.ndarray)
    error = end_point_error(gpu_flow, flow)
    assert error.mean() <= 1e-3 and error.max() <= 0.1, (error.mean(),
                                                          error.max())


def test_quantized_video_is_its_flow_quantized():
    gray = numpy.stack([cosine_scene(0, 0), cosine_scene(0.6, -0.3),
                        cosine_scene(1.1, 0.4)])
    backend = get_flow_backend('tvl1_xp')
    flow = backend.compute_video(gray)
    quantized = backend.compute_video_quantized(gray, 2.0)
    assert quantized.dtype == numpy.uint8 and quantized.shape == flow.shape
    numpy.testing.assert_array_equal(quantized, quantize_flow(flow, 2.0))
    assert len(numpy.unique(quantized)) > 10  # the bound leaves levels
