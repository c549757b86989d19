import numpy
import pytest

from chainercv_i3d.datasets import KineticsDataset
from chainercv_i3d.datasets import kinetics400_label_names
from chainercv_i3d.datasets import kinetics600_label_names
from chainercv_i3d.datasets.video_list import read_video_list
from tests.datasets_tests.videos import noise_frames
from tests.datasets_tests.videos import write_video

CSV_400 = ('label,youtube_id,time_start,time_end,split,is_cc\n'
           'abseiling,aaa,10,20,val,0\n'
           'air drumming,bbb,0,10,val,0\n'
           '"passing American football (in game)",ccc,5,15,val,0\n'
           'abseiling,ddd,1,11,train,0\n')


@pytest.fixture
def official(tmp_path):
    videos = tmp_path / 'videos'
    write_video(videos / 'aaa_000010_000020.mp4', noise_frames(3))
    # per-class subfolder, other container
    write_video(videos / 'air drumming' / 'bbb_000000_000010.mkv',
                noise_frames(4, seed=1))
    write_video(videos / 'ddd_000001_000011.avi', noise_frames(2))
    csv = tmp_path / 'kinetics_400.csv'
    csv.write_text(CSV_400)
    return str(videos), str(csv)


def test_official_layout_with_missing_videos(official):
    videos, csv = official
    dataset = KineticsDataset(videos, csv, split='val')
    assert dataset.label_names == kinetics400_label_names
    assert len(dataset) == 2
    assert dataset.missing == ['ccc_000005_000015']
    assert dataset.summary() == ('Kinetics-400: 2 videos found, 1 listed '
                                 'but missing')
    dataset.keys = ('video', 'label', 'video_id', 'fps')
    video, label, video_id, fps = dataset[1]
    assert video_id == 'bbb_000000_000010'
    assert label == kinetics400_label_names.index('air drumming')
    assert label.dtype == numpy.int32
    assert video.shape == (3, 4, 48, 64) and video.dtype == numpy.float32
    assert fps == 25.0
    # The listing is the 'kinetics' video list's.
    assert dataset.video_list.name == 'kinetics'
    assert dataset.entries == read_video_list('kinetics', videos, csv,
                                              'val').records


def test_all_splits_without_split(official):
    assert len(KineticsDataset(*official)) == 3


def test_kinetics600_csv_without_is_cc(tmp_path):
    # 'acting in play' is a Kinetics-600 class only.
    csv = tmp_path / 'k600.csv'
    csv.write_text('label,youtube_id,time_start,time_end,split\n'
                   'acting in play,xyz,0,10,val\n')
    write_video(tmp_path / 'v' / 'xyz_000000_000010.webm', noise_frames(2),
                fourcc='VP80')
    dataset = KineticsDataset(str(tmp_path / 'v'), str(csv))
    assert dataset.label_names == kinetics600_label_names
    assert len(dataset) == 1


def test_folder_per_class(tmp_path):
    write_video(tmp_path / 'abseiling' / 'my clip.mp4', noise_frames(2))
    write_video(tmp_path / 'air_drumming' / 'x.avi', noise_frames(2))
    dataset = KineticsDataset(str(tmp_path))
    dataset.keys = ('video_id', 'label')
    assert [dataset[i] for i in range(2)] == [
        ('abseiling/my clip', 0), ('air_drumming/x', 1)]


def test_getters_are_lazy(tmp_path):
    # An undecodable file: asking for the label only must not decode it.
    (tmp_path / 'abseiling').mkdir()
    (tmp_path / 'abseiling' / 'broken.mp4').write_bytes(b'not a video')
    dataset = KineticsDataset(str(tmp_path))
    dataset.keys = 'label'
    assert dataset[0] == 0
    dataset.keys = 'video'
    with pytest.raises(ValueError, match='cannot open'):
        dataset[0]


def test_bad_inputs_are_explained(tmp_path):
    with pytest.raises(ValueError, match='no such video folder'):
        KineticsDataset(str(tmp_path / 'nothing'))
    bad_csv = tmp_path / 'bad.csv'
    bad_csv.write_text('name,id\nx,y\n')
    with pytest.raises(ValueError, match='no column label, youtube_id'):
        KineticsDataset(str(tmp_path), str(bad_csv))
    (tmp_path / 'cooking pasta badly').mkdir()
    with pytest.raises(ValueError, match='neither the Kinetics-400 nor'):
        KineticsDataset(str(tmp_path))
    with pytest.raises(KeyError, match='unknown key'):
        KineticsDataset(str(tmp_path), label_names=(
            'cooking pasta badly',)).keys = 'flow'
