import numpy
import pytest

from chainercv_i3d.utils.video import decode_and_resample
from chainercv_i3d.utils.video import read_video
from chainercv_i3d.utils.video import VideoReadError
from tests.datasets_tests.videos import noise_frames
from tests.datasets_tests.videos import write_video


@pytest.fixture
def video_30fps(tmp_path):
    # 9 frames of 48x64 at 30 fps, lossless (FFV1).
    return write_video(tmp_path / 'v.avi', noise_frames(9), fps=30.0)


def test_resamples_and_scales(video_30fps):
    frames, source_fps = decode_and_resample(video_30fps, 25.0, 24)
    assert source_fps == 30.0
    assert len(frames) == 7  # floor(9 * 25 / 30)
    assert all(f.shape == (24, 32, 3) and f.dtype == numpy.uint8
               for f in frames)


def test_fps_none_keeps_every_frame(video_30fps):
    frames, source_fps = decode_and_resample(video_30fps, None, 48)
    decoded, _ = read_video(video_30fps)
    assert source_fps == 30.0 and len(frames) == 9
    # Short side already 48: the frames are the decoded ones.
    for frame, original in zip(frames, decoded):
        numpy.testing.assert_array_equal(frame, original)


def test_picks_frames_by_index(video_30fps):
    # 30 -> 15 fps keeps every other frame.
    frames, _ = decode_and_resample(video_30fps, 15.0, 48)
    decoded, _ = read_video(video_30fps)
    assert len(frames) == 4
    for j, frame in enumerate(frames):
        numpy.testing.assert_array_equal(frame, decoded[2 * j])


def test_bad_arguments_are_explained(video_30fps, tmp_path):
    with pytest.raises(ValueError, match='fps must be positive or None'):
        decode_and_resample(video_30fps, 0, 48)
    with pytest.raises(ValueError, match='short_side must be positive'):
        decode_and_resample(video_30fps, 25.0, 0)
    with pytest.raises(VideoReadError, match='no such file'):
        decode_and_resample(str(tmp_path / 'none.mp4'), 25.0, 48)
