import numpy
import pytest

from chainercv_i3d.transforms import temporal_crop


def frame_numbered_video(n_frame, n_channel=3, dtype=numpy.uint8):
    """(C, T, 2, 3): every pixel of frame t is t."""
    return (numpy.arange(n_frame).reshape(1, n_frame, 1, 1)
            * numpy.ones((n_channel, 1, 2, 3))).astype(dtype)


def frames_of(clip):
    return clip[0, :, 0, 0].tolist()


def test_takes_frames_from_start():
    clip, param = temporal_crop(frame_numbered_video(10), 4, start=3,
                                return_param=True)
    assert clip.shape == (3, 4, 2, 3) and clip.dtype == numpy.uint8
    assert frames_of(clip) == [3, 4, 5, 6]
    numpy.testing.assert_array_equal(param['t_indices'], [3, 4, 5, 6])


def test_default_start_is_zero_and_whole_video_fits():
    clip = temporal_crop(frame_numbered_video(5), 5)
    assert frames_of(clip) == [0, 1, 2, 3, 4]


def test_short_video_loops_from_its_start():
    clip = temporal_crop(frame_numbered_video(3), 8)
    assert frames_of(clip) == [0, 1, 2, 0, 1, 2, 0, 1]


def test_loop_from_a_later_start_wraps_to_frame_zero():
    clip = temporal_crop(frame_numbered_video(5), 4, start=3)
    assert frames_of(clip) == [3, 4, 0, 1]


def test_evaluation_protocol_first_251_frames():
    clip, param = temporal_crop(frame_numbered_video(100, dtype=numpy.int32),
                                251, return_param=True)
    assert clip.shape == (3, 251, 2, 3) and clip.dtype == numpy.int32
    numpy.testing.assert_array_equal(param['t_indices'],
                                     numpy.arange(251) % 100)
    long_clip = temporal_crop(frame_numbered_video(300), 251)
    assert frames_of(long_clip) == list(range(251))


def test_no_loop_on_short_video_raises():
    with pytest.raises(ValueError, match=r'\(3, 3, 2, 3\).*loop=True'):
        temporal_crop(frame_numbered_video(3), 4, loop=False)
    assert frames_of(temporal_crop(frame_numbered_video(3), 3,
                                   loop=False)) == [0, 1, 2]


@pytest.mark.parametrize('start', [-1, 5, 6])
def test_start_outside_video_raises(start):
    with pytest.raises(ValueError, match='start'):
        temporal_crop(frame_numbered_video(5), 2, start=start)


def test_non_positive_n_frame_raises():
    with pytest.raises(ValueError, match='n_frame'):
        temporal_crop(frame_numbered_video(5), 0)


def test_returns_a_new_array():
    video = frame_numbered_video(5)
    clip = temporal_crop(video, 3)
    clip[...] = 99
    assert video.max() == 4


def test_return_param_crops_rgb_and_flow_identically():
    rgb = frame_numbered_video(6)
    flow = frame_numbered_video(6, n_channel=2, dtype=numpy.float32)
    rgb_clip, param = temporal_crop(rgb, 9, start=4, return_param=True)
    flow_clip = flow[:, param['t_indices']]
    assert frames_of(rgb_clip) == frames_of(flow_clip) \
        == [4, 5, 0, 1, 2, 3, 4, 5, 0]
