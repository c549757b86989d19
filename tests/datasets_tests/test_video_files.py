"""Video files read on the fly: the progress of the flow computed."""

import numpy

from chainercv_i3d.datasets import read_video_streams
from chainercv_i3d.flow.base import FlowBackend
from chainercv_i3d.presets import DEEPMIND_KINETICS
from tests.datasets_tests.videos import noise_frames
from tests.datasets_tests.videos import write_video


class StillFlow(FlowBackend):
    """Zero flow at once: the test is about the bar, not the flow."""

    def compute(self, prev_gray, next_gray):
        return numpy.zeros(prev_gray.shape + (2,), numpy.float32)


class Bar(object):
    def __init__(self, total):
        self.total, self.count, self.closed = total, 0, False

    def update(self, n=1):
        self.count += n

    def close(self):
        self.closed = True


def test_flow_progress_counts_every_frame_pair_then_closes(tmp_path):
    path = str(tmp_path / 'v.avi')
    write_video(path, noise_frames(20))
    bars = []

    def flow_progress(n_pair):
        bars.append(Bar(n_pair))
        return bars[-1]

    preset = DEEPMIND_KINETICS.replace(short_side=32)
    videos = read_video_streams(path, ('rgb', 'flow'), preset, StillFlow(),
                                flow_progress)
    n_frame = videos['flow'].shape[1]
    assert len(bars) == 1
    assert bars[0].total == bars[0].count == n_frame - 1
    assert bars[0].closed
    # No bar without flow.
    read_video_streams(path, ('rgb',), preset, StillFlow(), flow_progress)
    assert len(bars) == 1
