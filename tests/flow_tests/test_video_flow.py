import cv2
import numpy
import pytest

from chainercv_i3d.flow import dequantize_flow
from chainercv_i3d.flow import FlowBackend
from chainercv_i3d.flow import gray_video
from chainercv_i3d.flow import quantize_flow
from chainercv_i3d.flow import quantized_video_flow
from chainercv_i3d.flow import video_flow


class DifferenceBackend(FlowBackend):
    """x: next - prev, y: prev scaled; records the videos it is handed."""

    def __init__(self):
        super(DifferenceBackend, self).__init__()
        self.calls = []

    def compute(self, prev_gray, next_gray):
        prev = prev_gray.astype(numpy.float32)
        return numpy.stack((next_gray - prev, prev / 10), axis=-1)

    def compute_video(self, gray_frames):
        self.calls.append(numpy.array(gray_frames))
        return super(DifferenceBackend, self).compute_video(gray_frames)


def rgb_frames(n, height=6, width=7, seed=0):
    rng = numpy.random.RandomState(seed)
    return [rng.randint(0, 256, (height, width, 3)).astype(numpy.uint8)
            for _ in range(n)]


def test_equals_compute_pair_by_pair_on_gray_frames():
    frames = rgb_frames(5)
    backend = DifferenceBackend()
    flow = video_flow(frames, backend)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    expected = numpy.stack([backend.compute(a, b)
                            for a, b in zip(gray[:-1], gray[1:])])
    assert flow.shape == (4, 6, 7, 2) and flow.dtype == numpy.float32
    numpy.testing.assert_array_equal(flow, expected)
    # One call with the whole gray video: the path a batching backend gets.
    assert len(backend.calls) == 1
    numpy.testing.assert_array_equal(backend.calls[0], numpy.stack(gray))


def test_takes_an_array_as_well_as_a_list():
    frames = rgb_frames(3)
    numpy.testing.assert_array_equal(
        video_flow(numpy.stack(frames), DifferenceBackend()),
        video_flow(frames, DifferenceBackend()))


@pytest.mark.parametrize('chunk_pairs', [1, 2, 3, 64])
def test_quantized_in_chunks_equals_quantized_whole(chunk_pairs):
    frames = rgb_frames(7)
    bound = 7.5
    whole = quantize_flow(video_flow(frames, DifferenceBackend()), bound)
    backend = DifferenceBackend()
    quantized = quantized_video_flow(frames, backend, bound, chunk_pairs)
    assert quantized.dtype == numpy.uint8 and quantized.shape == (6, 6, 7, 2)
    numpy.testing.assert_array_equal(quantized, whole)
    # Chunks of chunk_pairs + 1 frames overlapping by one.
    sizes = [len(c) for c in backend.calls]
    assert sum(size - 1 for size in sizes) == 6
    assert max(sizes) == min(chunk_pairs, 6) + 1


def test_quantized_uses_the_bound():
    frames = [numpy.zeros((4, 4, 3), numpy.uint8),
              numpy.full((4, 4, 3), 3, numpy.uint8)]
    quantized = quantized_video_flow(frames, DifferenceBackend(), bound=5)
    # x = 3 px: 3 of 5 is level round(8 * 255 / 10) = 204.
    assert numpy.all(quantized[..., 0] == 204)
    numpy.testing.assert_allclose(dequantize_flow(quantized[..., 0], 5), 3,
                                  atol=5 / 255)


@pytest.mark.parametrize('n', [0, 1])
def test_fewer_than_two_frames_is_a_value_error(n):
    with pytest.raises(ValueError, match='flow needs at least 2'):
        video_flow(rgb_frames(n), DifferenceBackend())
    with pytest.raises(ValueError, match='flow needs at least 2'):
        quantized_video_flow(rgb_frames(n), DifferenceBackend())


def test_frames_must_be_rgb_uint8_of_one_size():
    with pytest.raises(ValueError, match=r'\(H, W, 3\) uint8 RGB'):
        video_flow([numpy.zeros((4, 4), numpy.uint8)] * 2,
                   DifferenceBackend())
    with pytest.raises(ValueError, match='frame 1 is'):
        video_flow(rgb_frames(1) + rgb_frames(1, height=5),
                   DifferenceBackend())
    with pytest.raises(ValueError, match=r'\(H, W, 3\) uint8 RGB'):
        gray_video([numpy.zeros((4, 4, 3), numpy.float32)])


def test_a_backend_returning_another_shape_is_named():
    class Broken(FlowBackend):
        def compute_video(self, gray_frames):
            return numpy.zeros((len(gray_frames), 2, 2, 2), numpy.float32)

    with pytest.raises(ValueError, match=r'Broken\(\) returned \(3, 2, 2, '
                       r'2\).*\(2, 6, 7, 2\) float32'):
        video_flow(rgb_frames(3), Broken())


def test_quantized_flow_comes_from_the_backends_quantized_method():
    class QuantizesItself(DifferenceBackend):
        def compute_video_quantized(self, gray_frames, bound):
            self.bounds = getattr(self, 'bounds', []) + [bound]
            return numpy.full((len(gray_frames) - 1,) + gray_frames.shape[1:]
                              + (2,), 7, numpy.uint8)

    backend = QuantizesItself()
    quantized = quantized_video_flow(rgb_frames(5), backend, 3, 2)
    assert backend.bounds == [3, 3] and numpy.all(quantized == 7)
    assert backend.calls == []  # compute_video was never asked


def test_a_backend_returning_float_flow_as_quantized_is_named():
    class Unquantized(FlowBackend):
        def compute_video_quantized(self, gray_frames, bound):
            return self.compute_video(gray_frames)

        def compute(self, prev_gray, next_gray):
            return numpy.zeros(prev_gray.shape + (2,), numpy.float32)

    with pytest.raises(ValueError, match=r'Unquantized\(\) returned '
                       r'\(2, 6, 7, 2\) float32.*\(2, 6, 7, 2\) uint8'):
        quantized_video_flow(rgb_frames(3), Unquantized())


class CountingBar(object):
    def __init__(self):
        self.ticks = []

    def update(self, n):
        self.ticks.append(n)


@pytest.mark.parametrize('chunk_pairs', [1, 3, 8])
def test_with_a_bar_chunks_give_the_pairs_of_one_call(chunk_pairs):
    frames = rgb_frames(8)
    backend, bar = DifferenceBackend(), CountingBar()
    flow = video_flow(frames, backend, bar, chunk_pairs)
    numpy.testing.assert_array_equal(
        flow, video_flow(frames, DifferenceBackend()))
    assert sum(bar.ticks) == 7 and max(bar.ticks) <= chunk_pairs
    assert len(backend.calls) == len(bar.ticks) == -(-7 // chunk_pairs)
    with pytest.raises(ValueError, match='chunk_pairs must be at least 1'):
        video_flow(frames, backend, bar, 0)
