import os
import zipfile

import numpy
import pytest

from chainercv_i3d.datasets import PrecomputedVideo
from chainercv_i3d.datasets.precomputed_video import write_precomputed_video
from chainercv_i3d.flow import quantize_flow
from chainercv_i3d.presets import DEEPMIND_KINETICS
from tests.datasets_tests.videos import translating_texture


def write_sample(path, n=5):
    rgb = [f for f in translating_texture(n, 1, 0, 32, 40)]
    flows = [quantize_flow(numpy.random.RandomState(t).uniform(
        -25, 25, (32, 40, 2)).astype('f')) for t in range(n - 1)]
    write_precomputed_video(str(path), {'video_id': 'x', 'label': 3}, rgb,
                            flows, jpeg_quality=95)
    return rgb, flows


def test_round_trip(tmp_path):
    path = tmp_path / 'x.zip'
    rgb, flows = write_sample(path)
    with PrecomputedVideo(str(path)) as video:
        assert video.meta['label'] == 3
        assert (video.n_frames, video.n_flow_frames) == (5, 4)
        got = video.read_rgb([4, 0, 0])
        assert got.shape == (3, 3, 32, 40) and got.dtype == numpy.float32
        expected = numpy.stack([rgb[4], rgb[0], rgb[0]]).transpose(3, 0, 1, 2)
        # JPEG at quality 95 on a smooth texture: a few levels at most.
        assert numpy.abs(got - expected).mean() < 2
        quantized = video.read_flow_quantized([1, 3])
        numpy.testing.assert_array_equal(
            quantized, numpy.stack([flows[1], flows[3]]).transpose(3, 0, 1, 2))
        flow = video.read_flow([1])
        assert flow.shape == (2, 1, 32, 40) and flow.min() >= -20


def test_reads_only_the_frames_asked_for(tmp_path):
    path = tmp_path / 'x.zip'
    write_sample(path)
    # Corrupt the member of frame 2: reading frames 0 and 1 must still work.
    with zipfile.ZipFile(str(path)) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    members['rgb/000002.jpg'] = b'broken'
    with zipfile.ZipFile(str(path), 'w') as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with PrecomputedVideo(str(path)) as video:
        assert video.read_rgb([0, 1]).shape[1] == 2
        with pytest.raises(ValueError, match='rgb/000002.jpg'):
            video.read_rgb([2])


def test_written_atomically_and_deterministically(tmp_path):
    write_sample(tmp_path / 'a.zip')
    write_sample(tmp_path / 'b.zip')
    assert sorted(os.listdir(str(tmp_path))) == ['a.zip', 'b.zip']
    assert (tmp_path / 'a.zip').read_bytes() == (tmp_path / 'b.zip').read_bytes()


def test_failed_write_leaves_nothing(tmp_path):
    frames = [numpy.zeros((8, 8, 3), numpy.uint8), 'not a frame']
    with pytest.raises(Exception):
        write_precomputed_video(str(tmp_path / 'x.zip'), {}, frames)
    assert os.listdir(str(tmp_path)) == []


def test_out_of_range_and_non_videos_are_refused(tmp_path):
    write_sample(tmp_path / 'x.zip')
    with PrecomputedVideo(str(tmp_path / 'x.zip')) as video:
        with pytest.raises(ValueError, match='flow frame 4 asked for, it has 4'):
            video.read_flow([4])
    (tmp_path / 'y.zip').write_bytes(b'junk')
    with pytest.raises(ValueError, match='is not a precomputed video'):
        PrecomputedVideo(str(tmp_path / 'y.zip'))


def test_a_member_with_a_bad_crc_is_a_value_error(tmp_path):
    path = tmp_path / 'x.zip'
    write_sample(path)
    with zipfile.ZipFile(str(path)) as archive:
        info = archive.getinfo('rgb/000001.jpg')
    data = bytearray(path.read_bytes())
    # Flip bytes inside the stored member's data: its CRC no longer matches.
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 100:start + 110] = bytes(10)
    path.write_bytes(bytes(data))
    with PrecomputedVideo(str(path)) as video:
        video.read_rgb([0])
        with pytest.raises(ValueError, match='rgb/000001.jpg cannot be read'):
            video.read_rgb([1])


def test_flow_is_read_with_the_bound_of_its_meta(tmp_path):
    bound = 5.0
    flow = numpy.random.RandomState(0).uniform(
        -8, 8, (2, 16, 20, 2)).astype(numpy.float32)
    rgb = [numpy.zeros((16, 20, 3), numpy.uint8)] * 3
    path = str(tmp_path / 'x.zip')
    write_precomputed_video(path, {'flow_bound': bound},
                            rgb, list(quantize_flow(flow, bound)))
    with PrecomputedVideo(path) as video:
        assert video.flow_bound == bound
        got = video.read_flow([0, 1]).transpose(1, 2, 3, 0)
    numpy.testing.assert_allclose(got, numpy.clip(flow, -bound, bound),
                                  atol=bound / 255 + 1e-6)
    assert got.min() == -bound and got.max() == bound


def test_files_without_flow_bound_are_read_with_20(tmp_path):
    # Written before meta.json stored the bound (or the preset).
    path = str(tmp_path / 'old.zip')
    write_precomputed_video(path, {'video_id': 'old'},
                            [numpy.zeros((4, 4, 3), numpy.uint8)] * 2,
                            [numpy.full((4, 4, 2), 255, numpy.uint8)])
    with PrecomputedVideo(path) as video:
        assert video.flow_bound == 20 and video.preset is None
        numpy.testing.assert_array_equal(video.read_flow([0]), 20)


def test_the_stored_preset_is_read_back(tmp_path):
    preset = DEEPMIND_KINETICS.replace(label_names=('a', 'b'), fps=None)
    path = str(tmp_path / 'x.zip')
    write_precomputed_video(path, {'preset': preset.to_dict()},
                            [numpy.zeros((4, 4, 3), numpy.uint8)])
    with PrecomputedVideo(path) as video:
        assert video.preset == preset
