import os

import pytest

from chainercv_i3d.datasets.video_list import read_video_list
from chainercv_i3d.datasets.video_list import register_video_list
from chainercv_i3d.datasets.video_list import video_list_names
from chainercv_i3d.datasets.video_list import VideoList
from chainercv_i3d.datasets.video_list import VideoRecord
from chainercv_i3d.label_names import kinetics400_label_names


def touch(path):
    """An empty file: the readers list files, they do not decode them."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    open(str(path), 'w').close()
    return str(path)


def test_the_registered_readers():
    assert {'kinetics', 'folders', 'files'} <= set(video_list_names())


def test_unknown_reader_names_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown video list 'ssv3'; "
                       r'known: .*files, folders, hmdb51, kinetics'):
        read_video_list('ssv3', str(tmp_path))


def test_kinetics_csv_with_a_missing_video(tmp_path):
    touch(tmp_path / 'v' / 'aaa_000010_000020.mp4')
    touch(tmp_path / 'v' / 'air drumming' / 'bbb_000000_000010.mkv')
    csv = tmp_path / 'val.csv'
    csv.write_text('label,youtube_id,time_start,time_end,split\n'
                   'air drumming,bbb,0,10,val\nabseiling,aaa,10,20,val\n'
                   'zumba,ccc,5,15,val\nabseiling,ddd,1,11,train\n')
    videos = read_video_list('kinetics', str(tmp_path / 'v'), str(csv),
                             split='val')
    assert videos.name == 'kinetics'
    assert videos.label_names == kinetics400_label_names
    # The CSV's order; the missing one left out of the records.
    assert list(videos) == [
        VideoRecord('bbb_000000_000010', str(
            tmp_path / 'v' / 'air drumming' / 'bbb_000000_000010.mkv'),
            kinetics400_label_names.index('air drumming')),
        VideoRecord('aaa_000010_000020',
                    str(tmp_path / 'v' / 'aaa_000010_000020.mp4'), 0)]
    assert videos.missing == ['ccc_000005_000015']
    assert videos.summary() == ('kinetics: 2 videos found, 1 listed but '
                                'missing, 400 classes')


def test_kinetics_class_folders_read_underscores_as_spaces(tmp_path):
    touch(tmp_path / 'air_drumming' / 'x.avi')
    touch(tmp_path / 'abseiling' / 'y.mp4')
    videos = read_video_list('kinetics', str(tmp_path))
    assert [(r.video_id, r.label) for r in videos] == [
        ('abseiling/y', 0),
        ('air_drumming/x', kinetics400_label_names.index('air drumming'))]
    with pytest.raises(ValueError, match='needs the annotation CSV'):
        read_video_list('kinetics', str(tmp_path), split='val')


def test_classes_outside_kinetics_get_a_hint_that_fits(tmp_path):
    touch(tmp_path / 'v' / 'pouring tea' / 'x.mp4')
    with pytest.raises(ValueError) as folders:
        read_video_list('kinetics', str(tmp_path / 'v'))
    assert str(folders.value) == (
        "{}: class name(s) in neither the Kinetics-400 nor the Kinetics-600 "
        "vocabulary: 'pouring tea'; for a folder per class of other names, "
        "use the 'folders' list (--dataset folders)".format(tmp_path / 'v'))
    csv = tmp_path / 'val.csv'
    csv.write_text('label,youtube_id,time_start,time_end,split\n'
                   'pouring tea,aaa,0,10,val\n')
    with pytest.raises(ValueError) as annotations:
        read_video_list('kinetics', str(tmp_path / 'v'), str(csv))
    assert str(annotations.value).startswith(
        "{}: class name(s) in neither".format(csv))
    assert str(annotations.value).endswith(
        "'pouring tea'; is it a Kinetics annotation file? (from Python, "
        'label_names= gives another vocabulary)')


def test_folders_take_any_class_names(tmp_path):
    touch(tmp_path / 'Zebra_crossing' / 'b.mp4')
    touch(tmp_path / 'Zebra_crossing' / 'deeper' / 'c.webm')
    touch(tmp_path / 'apple pie' / 'a.avi')
    touch(tmp_path / 'apple pie' / 'notes.txt')  # not a video
    touch(tmp_path / 'loose.mp4')  # not in a class folder
    (tmp_path / 'empty class').mkdir()
    (tmp_path / '.hidden').mkdir()
    videos = read_video_list('folders', str(tmp_path))
    # Sorted folder names as they are ('_' kept), empty classes included.
    assert videos.label_names == ('Zebra_crossing', 'apple pie',
                                  'empty class')
    assert [(r.video_id, r.label) for r in videos] == [
        ('Zebra_crossing/b', 0), ('Zebra_crossing/deeper/c', 0),
        ('apple pie/a', 1)]
    assert videos[2].path == str(tmp_path / 'apple pie' / 'a.avi')
    assert videos.missing == [] and videos.n_class == 3
    assert videos.classes_without_videos() == ('empty class',)


def test_folders_with_given_label_names(tmp_path):
    touch(tmp_path / 'b' / 'x.mp4')
    videos = read_video_list('folders', str(tmp_path),
                             label_names=('a', 'b', 'c'))
    assert videos.label_names == ('a', 'b', 'c') and videos[0].label == 1
    with pytest.raises(ValueError, match=r"folder\(s\) 'b' not among the 2 "
                       'label_names'):
        read_video_list('folders', str(tmp_path), label_names=('a', 'c'))


def test_folders_refuse_what_they_cannot_use(tmp_path):
    with pytest.raises(ValueError, match='no such video folder'):
        read_video_list('folders', str(tmp_path / 'nothing'))
    touch(tmp_path / 'flat.mp4')
    with pytest.raises(ValueError, match='has no class subfolders'):
        read_video_list('folders', str(tmp_path))
    with pytest.raises(ValueError, match="'folders' video list takes no "
                       'annotations'):
        read_video_list('folders', str(tmp_path), annotations='a.csv')


def test_files_in_a_folder_are_unlabelled(tmp_path):
    touch(tmp_path / 'b.mp4')
    touch(tmp_path / 'sub' / 'a.MKV')
    touch(tmp_path / 'sub' / 'readme.md')
    videos = read_video_list('files', str(tmp_path))
    assert list(videos) == [
        VideoRecord('b', str(tmp_path / 'b.mp4'), -1),
        VideoRecord('sub/a', str(tmp_path / 'sub' / 'a.MKV'), -1)]
    assert videos.label_names == ()
    assert videos.summary() == ('files: 2 videos found, 0 listed but '
                                'missing, unlabelled')


def test_a_single_file(tmp_path):
    path = touch(tmp_path / 'clip.any')
    videos = read_video_list('files', path)
    assert list(videos) == [VideoRecord('clip', path, -1)]


def test_files_refuse_what_they_cannot_use(tmp_path):
    with pytest.raises(ValueError, match='no such file or folder'):
        read_video_list('files', str(tmp_path / 'nothing'))
    with pytest.raises(ValueError, match='holds no video file'):
        read_video_list('files', str(tmp_path))
    touch(tmp_path / 'a.mp4')
    touch(tmp_path / 'a.avi')
    with pytest.raises(ValueError, match="two videos have the id 'a'"):
        read_video_list('files', str(tmp_path))
    with pytest.raises(ValueError, match='takes no label_names'):
        read_video_list('files', str(tmp_path), label_names=('x',))


def test_video_list_checks_labels():
    with pytest.raises(ValueError, match='a: label 2 is outside the 2 class'):
        VideoList('x', [VideoRecord('a', 'a.mp4', 2)], ('p', 'q'))
    with pytest.raises(ValueError, match='a: label 0 is outside the 0 class'):
        VideoList('x', [VideoRecord('a', 'a.mp4', 0)])


def test_a_new_reader_is_one_registered_function(tmp_path):
    def read_pairs(video_dir, annotations, split, label_names):
        # A stand-in for the Something-Something reader of a later issue.
        return ('left', 'right'), [
            VideoRecord('1', os.path.join(video_dir, '1.webm'), 1),
            VideoRecord('2', None, 0)]

    register_video_list('test_pairs', read_pairs)
    videos = read_video_list('test_pairs', str(tmp_path))
    assert videos.name == 'test_pairs' and len(videos) == 1
    assert videos.missing == ['2'] and videos.label_names == ('left', 'right')
    with pytest.raises(ValueError, match="'test_pairs' is taken"):
        register_video_list('test_pairs', lambda *args: ((), []))
