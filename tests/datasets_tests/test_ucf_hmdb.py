"""The UCF101 and HMDB51 list readers on tiny releases the tests write, and
their precompute (serial and under mpiexec)."""

import glob
import os
import subprocess
import sys

import numpy
import pytest

from chainercv_i3d.datasets import PrecomputedVideo
from chainercv_i3d.datasets import PrecomputedVideoDataset
from chainercv_i3d.datasets.ucf_hmdb import transfer_split
from chainercv_i3d.datasets.video_list import read_video_list
from chainercv_i3d.datasets.video_list import VideoRecord
from chainercv_i3d.presets import DEEPMIND_TRANSFER
from tests.conftest import ROOT
from tests.conftest import run_script
from tests.datasets_tests.test_something_something import manifest_file
from tests.datasets_tests.videos import translating_texture
from tests.datasets_tests.videos import write_video

SCRIPT = os.path.join(ROOT, 'examples', 'i3d', 'precompute_frames_flow.py')
# classInd.txt's order is not the sorted one: the labels follow the file.
UCF_CLASSES = ('YoYo', 'ApplyEyeMakeup', 'Archery')
UCF_TRAIN = ('YoYo/v_YoYo_g08_c01.avi 1', 'ApplyEyeMakeup/'
             'v_ApplyEyeMakeup_g08_c01.avi 2', 'Archery/v_Archery_g08_c01.avi '
             '3', 'Archery/v_Archery_g09_c01.avi 3')  # g09: missing
UCF_TEST = ('ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi',
            'YoYo/v_YoYo_g01_c01.avi')
# HMDB51: per class, (video, flag) with 1 train, 2 test, 0 unused.
HMDB_SPLIT1 = {
    'wave': [('wave_a.avi', 1), ('wave_b.avi', 2), ('wave_c.avi', 0)],
    'brush_hair': [('hair_a.avi', 2), ('hair_b.avi', 1)],
    'kick_ball': [('kick_a.avi', 1), ('kick_b.avi', 0), ('kick_c.avi', 1)]}
HMDB_MISSING = 'kick_ball/kick_c'


def write_lines(path, lines, end='\r\n'):
    # The releases end lines with CRLF (and HMDB51's with a space too).
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), 'w', newline='') as f:
        f.write(''.join(line + end for line in lines))


def touch(path):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    open(str(path), 'w').close()


def write_ucf101(root, make_video=touch):
    """``(video_dir, annotation_dir)`` of a 3-class UCF101 with split 1."""
    annotations, videos = root / 'ucfTrainTestlist', root / 'UCF-101'
    write_lines(annotations / 'classInd.txt', [
        '{} {}'.format(i, name) for i, name in enumerate(UCF_CLASSES, 1)])
    write_lines(annotations / 'trainlist01.txt', UCF_TRAIN)
    write_lines(annotations / 'testlist01.txt', UCF_TEST)
    for line in UCF_TRAIN[:3] + UCF_TEST:
        make_video(videos / line.split()[0])
    return str(videos), str(annotations)


def write_hmdb51(root, make_video=touch):
    """``(video_dir, annotation_dir)`` of a 3-class HMDB51, split 1."""
    annotations, videos = root / 'splits', root / 'hmdb51_org'
    for name, entries in HMDB_SPLIT1.items():
        write_lines(annotations / '{}_test_split1.txt'.format(name),
                    ['{} {} '.format(v, flag) for v, flag in entries])
        for video, flag in entries:
            if name + '/' + video[:-4] != HMDB_MISSING:
                make_video(videos / name / video)
    return str(videos), str(annotations)


@pytest.fixture
def ucf101(tmp_path):
    return write_ucf101(tmp_path)


@pytest.fixture
def hmdb51(tmp_path):
    return write_hmdb51(tmp_path)


def test_registered_with_the_other_readers():
    code = ('from chainercv_i3d.datasets.video_list import video_list_names; '
            'print(video_list_names())')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert "'hmdb51'" in result.stdout and "'ucf101'" in result.stdout


def test_ucf101_train_list(ucf101):
    video_dir, annotations = ucf101
    videos = read_video_list('ucf101', video_dir, annotations, 'train1')
    assert videos.label_names == UCF_CLASSES
    assert [(r.video_id, r.label) for r in videos] == [
        ('YoYo/v_YoYo_g08_c01', 0),
        ('ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01', 1),
        ('Archery/v_Archery_g08_c01', 2)]
    assert videos[0].path == os.path.join(video_dir, 'YoYo',
                                          'v_YoYo_g08_c01.avi')
    assert videos.missing == ['Archery/v_Archery_g09_c01']
    assert videos.summary() == ('ucf101: 3 videos found, 1 listed but '
                                'missing, 3 classes')


def test_ucf101_test_list_takes_the_class_of_the_folder(ucf101):
    video_dir, annotations = ucf101
    videos = read_video_list('ucf101', video_dir, annotations,
                             transfer_split('test', 1))
    assert videos.label_names == UCF_CLASSES
    assert list(videos) == [
        VideoRecord('ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01', os.path.join(
            video_dir, 'ApplyEyeMakeup', 'v_ApplyEyeMakeup_g01_c01.avi'), 1),
        VideoRecord('YoYo/v_YoYo_g01_c01', os.path.join(
            video_dir, 'YoYo', 'v_YoYo_g01_c01.avi'), 0)]
    assert videos.missing == []


def test_hmdb51_subsets_leave_out_the_unused_videos(hmdb51):
    video_dir, annotations = hmdb51
    train = read_video_list('hmdb51', video_dir, annotations, 'train1')
    test = read_video_list('hmdb51', video_dir, annotations, 'test1')
    # Sorted class names are the labels.
    assert train.label_names == test.label_names == (
        'brush_hair', 'kick_ball', 'wave')
    assert [(r.video_id, r.label) for r in train] == [
        ('brush_hair/hair_b', 0), ('kick_ball/kick_a', 1), ('wave/wave_a', 2)]
    assert train.missing == [HMDB_MISSING]
    assert [(r.video_id, r.label) for r in test] == [
        ('brush_hair/hair_a', 0), ('wave/wave_b', 2)]
    assert test.missing == []
    assert train[0].path == os.path.join(video_dir, 'brush_hair',
                                         'hair_b.avi')


def test_only_the_files_of_the_split_asked_for_are_read(hmdb51, tmp_path):
    video_dir, annotations = hmdb51
    write_lines(os.path.join(annotations, 'wave_test_split2.txt'),
                ['wave_c.avi 1 '])
    videos = read_video_list('hmdb51', video_dir, annotations, 'train2')
    assert videos.label_names == ('wave',)
    assert [r.video_id for r in videos] == ['wave/wave_c']
    with pytest.raises(ValueError, match='holds no <class>_test_split3'):
        read_video_list('hmdb51', video_dir, annotations, 'train3')


@pytest.mark.parametrize('dataset', ['ucf101', 'hmdb51'])
@pytest.mark.parametrize('split', [None, 'train', '1', 'train4', 'val1'])
def test_a_bad_split_names_the_good_ones(ucf101, hmdb51, dataset, split):
    video_dir, annotations = ucf101 if dataset == 'ucf101' else hmdb51
    with pytest.raises(ValueError, match='needs a split: one of train1, '
                       'test1, train2, test2, train3, test3'):
        read_video_list(dataset, video_dir, annotations, split)


@pytest.mark.parametrize('dataset', ['ucf101', 'hmdb51'])
def test_missing_folders_and_label_names(ucf101, hmdb51, tmp_path,
                                         dataset):
    video_dir, annotations = ucf101 if dataset == 'ucf101' else hmdb51
    with pytest.raises(ValueError, match='needs the annotation folder'):
        read_video_list(dataset, video_dir, None, 'train1')
    with pytest.raises(ValueError, match='no such annotation folder: ' + str(
            tmp_path / 'nothing')):
        read_video_list(dataset, video_dir, str(tmp_path / 'nothing'),
                        'train1')
    with pytest.raises(ValueError, match='no such video folder'):
        read_video_list(dataset, str(tmp_path / 'none'), annotations,
                        'train1')
    with pytest.raises(ValueError, match='takes no label_names'):
        read_video_list(dataset, video_dir, annotations, 'train1',
                        label_names=('a',))


@pytest.mark.parametrize('name,lines,message', [
    ('classInd.txt', ['1 YoYo', '3 Archery'],
     r"classInd.txt:2: '3 Archery' is not \"2 <class name>\""),
    ('classInd.txt', [], 'lists no class'),
    ('trainlist01.txt', ['YoYo/v_YoYo_g08_c01.avi 2'],
     'trainlist01.txt:1: class number 2 but the folder YoYo is class 1'),
    ('trainlist01.txt', ['Bowling/v_Bowling_g08_c01.avi 1'],
     "trainlist01.txt:1: 'Bowling/v_Bowling_g08_c01.avi 1' is not"),
    ('testlist01.txt', ['v_YoYo_g01_c01.avi'], 'testlist01.txt:1: '),
])
def test_malformed_ucf101_files_name_the_line(ucf101, name, lines, message):
    video_dir, annotations = ucf101
    write_lines(os.path.join(annotations, name), lines)
    split = 'test1' if name.startswith('test') else 'train1'
    with pytest.raises(ValueError, match=message):
        read_video_list('ucf101', video_dir, annotations, split)


def test_a_missing_ucf101_list_is_named(ucf101):
    video_dir, annotations = ucf101
    with pytest.raises(ValueError, match='no split file .*trainlist02.txt'):
        read_video_list('ucf101', video_dir, annotations, 'train2')


@pytest.mark.parametrize('line', ['wave_a.avi 3', 'wave_a.avi', 'a b 1'])
def test_malformed_hmdb51_lines_are_named(hmdb51, line):
    video_dir, annotations = hmdb51
    write_lines(os.path.join(annotations, 'wave_test_split1.txt'), [line])
    with pytest.raises(ValueError, match=r'wave_test_split1.txt:1: .* is not '
                       r'"<video>.avi <0\|1\|2>"'):
        read_video_list('hmdb51', video_dir, annotations, 'test1')


# precompute_frames_flow.py --------------------------------------------------

def tiny_video(path):
    """9 frames of a texture moving right, 64 x 48, at 25 fps."""
    seed = sum(map(ord, os.path.basename(str(path))))
    write_video(path, translating_texture(9, 1, 0, height=48, width=64,
                                          seed=seed))


def decoded_outputs(out):
    """Every precomputed video's meta, frames and quantized flows, by its
    path below ``out/videos`` (the ids make class subfolders)."""
    decoded = {}
    for path in sorted(glob.glob(os.path.join(out, 'videos', '**', '*.zip'),
                                 recursive=True)):
        with PrecomputedVideo(path) as video:
            decoded[os.path.relpath(path, out)] = (
                video.meta, video.read_rgb(range(video.n_frames)),
                video.read_flow_quantized(range(video.n_flow_frames)))
    return decoded


def precompute_args(dataset, video_dir, out, annotations, subset):
    return (video_dir, out, '--dataset', dataset, '--annotations',
            annotations, '--split', '1', '--subset', subset,
            '--short_side', '48', '--quiet')


@pytest.mark.slow
@pytest.mark.parametrize('dataset', ['ucf101', 'hmdb51'])
def test_precompute_names_the_missing_and_keeps_the_classes(tmp_path,
                                                           dataset):
    write = write_ucf101 if dataset == 'ucf101' else write_hmdb51
    video_dir, annotations = write(tmp_path, tiny_video)
    out = str(tmp_path / 'out')
    result = run_script('precompute_frames_flow.py', *precompute_args(
        dataset, video_dir, out, annotations, 'train'))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(
        '3 done, 0 failed, 0 already done, 1 listed but missing')
    missing = 'Archery/v_Archery_g09_c01' if dataset == 'ucf101' \
        else HMDB_MISSING
    assert 'listed but missing: {} (all of them in the manifest)'.format(
        missing) in result.stderr
    dataset_read = PrecomputedVideoDataset(out)
    expected = UCF_CLASSES if dataset == 'ucf101' else (
        'brush_hair', 'kick_ball', 'wave')
    assert tuple(dataset_read.label_names) == expected
    assert dataset_read.preset.name == 'custom'  # --short_side 48
    assert dataset_read.preset.eval_sampler == DEEPMIND_TRANSFER.eval_sampler


@pytest.mark.parametrize('options,message', [
    (('--split', 'train'), '--dataset ucf101 needs --split 1, 2 or 3 and '
     '--subset train or test (not --split train)'),
    (('--split', '1'), 'needs --split 1, 2 or 3 and --subset'),
    (('--split', '4', '--subset', 'test'), '(not --split 4)'),
])
def test_precompute_refuses_a_bad_split_in_one_line(ucf101, tmp_path,
                                                    options, message):
    video_dir, annotations = ucf101
    result = run_script('precompute_frames_flow.py', video_dir,
                        tmp_path / 'out', '--dataset', 'ucf101',
                        '--annotations', annotations, *options)
    assert result.returncode == 2
    assert message in result.stderr.strip().splitlines()[-1]
    assert not os.path.exists(tmp_path / 'out')


def test_subset_is_refused_for_the_other_readers(tmp_path):
    result = run_script('precompute_frames_flow.py', tmp_path,
                        tmp_path / 'out', '--dataset', 'folders',
                        '--subset', 'train')
    assert result.returncode == 2
    assert '--subset is for ucf101 and hmdb51 only' in result.stderr


@pytest.mark.parametrize('dataset,subset', [('ucf101', 'test'),
                                            ('hmdb51', 'train')])
def test_mpiexec_two_ranks_equal_the_serial_run(tmp_path, mpiexec, dataset,
                                                subset):
    write = write_ucf101 if dataset == 'ucf101' else write_hmdb51
    video_dir, annotations = write(tmp_path, tiny_video)
    serial, out = str(tmp_path / 'serial'), str(tmp_path / 'mpi')
    result = run_script('precompute_frames_flow.py', *precompute_args(
        dataset, video_dir, serial, annotations, subset))
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        [mpiexec, '-n', '2', sys.executable, SCRIPT, *precompute_args(
            dataset, video_dir, out, annotations, subset)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    shards = sorted(glob.glob(os.path.join(out, 'manifest.d', '*.jsonl')))
    assert len(shards) == 2
    serial_outputs = decoded_outputs(serial)
    mpi_outputs = decoded_outputs(out)
    assert sorted(mpi_outputs) == sorted(serial_outputs)
    assert len(serial_outputs) in (2, 3)
    for name, (meta, rgb, flow) in serial_outputs.items():
        assert mpi_outputs[name][0] == meta
        numpy.testing.assert_array_equal(mpi_outputs[name][1], rgb)
        numpy.testing.assert_array_equal(mpi_outputs[name][2], flow)
    assert manifest_file(out) == manifest_file(serial)
