import numpy
import pytest

from chainercv_i3d.flow import FlowBackend


class PairBackend(FlowBackend):
    """Returns (mean of prev, mean of next) everywhere: shows which pair."""

    name = 'pair'

    def compute(self, prev_gray, next_gray):
        flow = numpy.empty(prev_gray.shape + (2,), numpy.float32)
        flow[..., 0] = prev_gray.mean()
        flow[..., 1] = next_gray.mean()
        return flow


def test_compute_video_one_flow_per_consecutive_pair():
    frames = (numpy.arange(5, dtype=numpy.uint8)[:, None, None] * 10
              * numpy.ones((5, 6, 7), numpy.uint8))
    flow = PairBackend().compute_video(frames)
    assert flow.shape == (4, 6, 7, 2) and flow.dtype == numpy.float32
    numpy.testing.assert_array_equal(flow[:, 0, 0], [[0, 10], [10, 20],
                                                     [20, 30], [30, 40]])


def test_compute_video_of_one_frame_is_empty():
    flow = PairBackend().compute_video(numpy.zeros((1, 6, 7), numpy.uint8))
    assert flow.shape == (0, 6, 7, 2) and flow.dtype == numpy.float32


@pytest.mark.parametrize('frames', [
    numpy.zeros((0, 6, 7), numpy.uint8),
    numpy.zeros((6, 7), numpy.uint8),
    numpy.zeros((2, 6, 7, 3), numpy.uint8),
    numpy.zeros((2, 6, 7), numpy.float32),
])
def test_compute_video_rejects_other_inputs(frames):
    with pytest.raises(ValueError, match='gray_frames'):
        PairBackend().compute_video(frames)


def test_compute_is_abstract():
    with pytest.raises(NotImplementedError):
        FlowBackend().compute(numpy.zeros((2, 2), numpy.uint8),
                              numpy.zeros((2, 2), numpy.uint8))


def test_defaults_a_cpu_backend_states():
    backend = PairBackend()
    assert backend.device is None and backend.options == {}
    assert PairBackend.mp_context == 'fork'
    assert backend.worker_init() is None
    assert repr(PairBackend(device='cpu')) == "PairBackend(device='cpu')"
