"""The Something-Something V2 list reader and its precompute, on synthetic
annotation files and small 12 fps VP9 WebM videos written by the tests."""

import glob
import json
import os
import random
import subprocess
import sys

import numpy
import pytest

from chainercv_i3d.datasets import PrecomputedVideo
from chainercv_i3d.datasets import PrecomputedVideoDataset
from chainercv_i3d.datasets.something_something import read_ssv2_label_names
from chainercv_i3d.datasets.something_something import ssv2_class_name
from chainercv_i3d.datasets.video_list import read_video_list
from chainercv_i3d.datasets.video_list import VideoRecord
from chainercv_i3d.presets import SOMETHING_SOMETHING_V2
from tests.conftest import ROOT
from tests.conftest import run_script
from tests.datasets_tests.videos import translating_texture
from tests.datasets_tests.videos import write_video

SCRIPT = os.path.join(ROOT, 'examples', 'i3d', 'precompute_frames_flow.py')
PREFIX = 'something-something-v2-'
# Real class names; the release's labels are their alphabetical order.
CLASS_NAMES = ('Pushing something from right to left',
               'Something falling like a feather or paper',
               'Approaching something with your camera',
               'Holding something next to something',
               'Pushing something from left to right')
LEFT_TO_RIGHT = 'Pushing [something] from left to right'
RIGHT_TO_LEFT = 'Pushing [something] from right to left'
FALLING = '[Something] falling like a feather or paper'


def entry(video_id, template, sentence='something'):
    return {'id': video_id, 'label': sentence, 'template': template,
            'placeholders': ['something']}


def write_json(path, value):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), 'w') as f:
        json.dump(value, f)


def write_labels(annotation_dir, names=CLASS_NAMES, seed=0):
    """The labels file: alphabetical labels, written in a shuffled order."""
    labels = {name: str(i) for i, name in enumerate(sorted(names))}
    shuffled = list(labels.items())
    random.Random(seed).shuffle(shuffled)
    write_json(os.path.join(str(annotation_dir), PREFIX + 'labels.json'),
               dict(shuffled))


def write_split(annotation_dir, split, entries):
    write_json(os.path.join(str(annotation_dir), PREFIX + split + '.json'),
               entries)


def touch(path):
    """An empty file: the reader lists files, it does not decode them."""
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    open(str(path), 'w').close()
    return str(path)


@pytest.fixture
def release(tmp_path):
    """``(video_dir, annotation_dir)`` of a small release; video 13 of the
    train split is listed but not on disk."""
    annotations = tmp_path / 'annotations'
    write_labels(annotations)
    write_split(annotations, 'train', [
        # The sentence names another class: it must not be read.
        entry('11', LEFT_TO_RIGHT, 'Pushing something from right to left'),
        entry('12', FALLING, 'a leaf falling like a feather or paper'),
        entry('13', RIGHT_TO_LEFT),
        entry('10', 'Holding [something] next to [something]',
              'holding a cup next to a pen')])
    write_split(annotations, 'validation', [entry('20', RIGHT_TO_LEFT)])
    write_split(annotations, 'test', [{'id': '30'}, {'id': '31'}])
    videos = tmp_path / 'videos'
    for video_id in ('10', '11', '20', '30'):
        touch(videos / (video_id + '.webm'))
    touch(videos / '12.mp4')  # any video extension
    touch(videos / 'deeper' / '31.webm')  # the folder is flat: not found
    return str(videos), str(annotations)


def test_registered_on_importing_the_video_list_module():
    code = ('from chainercv_i3d.datasets.video_list import video_list_names; '
            'print(video_list_names())')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert 'something_something_v2' in result.stdout


def test_class_name_removes_brackets_and_keeps_case():
    assert ssv2_class_name(FALLING) == \
        'Something falling like a feather or paper'
    assert ssv2_class_name('Holding [something] next to [something]') == \
        'Holding something next to something'
    assert ssv2_class_name('Approaching something with your camera') == \
        'Approaching something with your camera'


def test_label_names_in_the_order_of_the_labels(tmp_path):
    write_labels(tmp_path, seed=1)
    # The file's key order is shuffled: the labels decide the order.
    assert read_ssv2_label_names(str(tmp_path)) == tuple(sorted(CLASS_NAMES))
    # Labels that are not alphabetical are taken as they are.
    write_json(tmp_path / (PREFIX + 'labels.json'),
               {'b': '0', 'c': '2', 'a': 1})
    assert read_ssv2_label_names(str(tmp_path)) == ('b', 'a', 'c')


def test_train_split(release):
    video_dir, annotations = release
    videos = read_video_list('something_something_v2', video_dir,
                             annotations, split='train')
    names = tuple(sorted(CLASS_NAMES))
    assert videos.name == 'something_something_v2'
    assert videos.label_names == names
    # The file's order; the missing one left out of the records.
    assert list(videos) == [
        VideoRecord('11', os.path.join(video_dir, '11.webm'),
                    names.index('Pushing something from left to right')),
        VideoRecord('12', os.path.join(video_dir, '12.mp4'), names.index(
            'Something falling like a feather or paper')),
        VideoRecord('10', os.path.join(video_dir, '10.webm'),
                    names.index('Holding something next to something'))]
    assert videos.missing == ['13']
    assert videos.summary() == ('something_something_v2: 3 videos found, '
                                '1 listed but missing, 5 classes')


def test_only_the_split_asked_for_is_read(release):
    video_dir, annotations = release
    # Another split's file broken: it is not read.
    write_json(os.path.join(annotations, PREFIX + 'train.json'), {'x': 1})
    videos = read_video_list('something_something_v2', video_dir,
                             annotations, split='validation')
    assert [(r.video_id, r.label) for r in videos] == [
        ('20', sorted(CLASS_NAMES).index(
            'Pushing something from right to left'))]


def test_test_split_is_unlabelled(release):
    video_dir, annotations = release
    os.unlink(os.path.join(annotations, PREFIX + 'labels.json'))
    videos = read_video_list('something_something_v2', video_dir,
                             annotations, split='test')
    assert videos.label_names == ()
    assert list(videos) == [
        VideoRecord('30', os.path.join(video_dir, '30.webm'), -1)]
    assert videos.missing == ['31']


def test_unknown_templates_are_one_error_naming_them(release):
    video_dir, annotations = release
    write_split(annotations, 'train', [
        entry('10', 'Holding [something] next to [something]'),
        entry('11', 'Holding [Something] next to [something]'),  # case
        entry('12', 'Juggling [something]'),
        entry('13', 'Juggling [something]')])
    with pytest.raises(ValueError) as caught:
        read_video_list('something_something_v2', video_dir, annotations,
                        split='train')
    message = str(caught.value)
    assert message.count('\n') == 0
    assert "2 template(s) not in something-something-v2-labels.json: " \
        "'Holding Something next to something', 'Juggling something'" \
        in message
    assert message.startswith(os.path.join(annotations,
                                           PREFIX + 'train.json'))


def test_many_unknown_templates_are_counted(release):
    video_dir, annotations = release
    write_split(annotations, 'train', [
        entry(str(i), 'Unknown {}'.format(i)) for i in range(8)])
    with pytest.raises(ValueError, match=r"8 template\(s\) not in .*"
                       r"'Unknown 4' and 3 more"):
        read_video_list('something_something_v2', video_dir, annotations,
                        split='train')


@pytest.mark.parametrize('split, message', [
    ('val', "split must be one of train, validation, test for "
     "Something-Something V2, not 'val'"),
    (None, 'needs a split: train, validation, test')])
def test_bad_split(release, split, message):
    video_dir, annotations = release
    with pytest.raises(ValueError) as caught:
        read_video_list('something_something_v2', video_dir, annotations,
                        split=split)
    assert message in str(caught.value)


def test_missing_folders_and_files(release, tmp_path):
    video_dir, annotations = release
    read = read_video_list
    with pytest.raises(ValueError, match='needs the annotation folder'):
        read('something_something_v2', video_dir, split='train')
    with pytest.raises(ValueError, match='no such annotation folder: .*nope'):
        read('something_something_v2', video_dir, str(tmp_path / 'nope'),
             'train')
    with pytest.raises(ValueError, match='not a file'):
        read('something_something_v2', video_dir,
             os.path.join(annotations, PREFIX + 'train.json'), 'train')
    with pytest.raises(ValueError, match='no such video folder: .*nope'):
        read('something_something_v2', str(tmp_path / 'nope'), annotations,
             'train')
    os.unlink(os.path.join(annotations, PREFIX + 'labels.json'))
    with pytest.raises(ValueError, match='no labels file .*' + PREFIX +
                       r'labels\.json'):
        read('something_something_v2', video_dir, annotations, 'train')
    os.unlink(os.path.join(annotations, PREFIX + 'validation.json'))
    with pytest.raises(ValueError, match='no validation annotation file'):
        read('something_something_v2', video_dir, annotations, 'validation')


def test_label_names_are_not_taken(release):
    video_dir, annotations = release
    with pytest.raises(ValueError, match='takes no label_names'):
        read_video_list('something_something_v2', video_dir, annotations,
                        'train', label_names=('a',))


@pytest.mark.parametrize('entries, message', [
    ({'id': '1'}, 'must hold a JSON list of videos, not a dict'),
    ([['1', 'Holding']], 'entry 0 is .*, not an object'),
    ([entry('1', FALLING), {'id': '2'}], "entry 1 .* has no 'template'"),
    ([{'template': FALLING}], "entry 0 .* has no 'id'"),
    ([entry('1', FALLING), entry('1', LEFT_TO_RIGHT)],
     'the id 1 is listed twice'),
    ([entry(None, FALLING)], 'has the id None, not a string'),
    ([entry('1', 7)], 'has the template 7, not a string')])
def test_malformed_annotations(release, entries, message):
    video_dir, annotations = release
    write_split(annotations, 'train', entries)
    with pytest.raises(ValueError, match=message):
        read_video_list('something_something_v2', video_dir, annotations,
                        'train')


@pytest.mark.parametrize('labels, message', [
    (['a'], 'must be a non-empty JSON object'),
    ({}, 'must be a non-empty JSON object'),
    ({'a': '0', 'b': '2'}, 'must be 0 to 1; 1 is not used'),
    ({'a': '0', 'b': '0'}, "'a' and 'b' both have the label 0"),
    ({'a': 'zero'}, "the label of 'a' is 'zero', not a non-negative"),
    ({'a': '-1'}, "the label of 'a' is '-1'")])
def test_malformed_labels_file(tmp_path, labels, message):
    write_json(tmp_path / (PREFIX + 'labels.json'), labels)
    with pytest.raises(ValueError, match=message):
        read_ssv2_label_names(str(tmp_path))


def test_labels_file_not_json(tmp_path):
    (tmp_path / (PREFIX + 'labels.json')).write_text('{"a": "0",')
    with pytest.raises(ValueError, match='labels.json is not valid JSON'):
        read_ssv2_label_names(str(tmp_path))


# Precompute of 12 fps VP9 WebM ---------------------------------------------

FPS = 12.0
# video id -> (frames, dx): content moving right, left, or still.
MOTIONS = {'101': (14, 2), '102': (11, -2), '103': (17, 0)}


def decoded_frame_count(path):
    """Frames OpenCV decodes from a file: the source's count, found
    without the code under test."""
    import cv2
    capture = cv2.VideoCapture(path)
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


@pytest.fixture
def webm_release(tmp_path):
    """``(video_dir, annotation_dir)``: three 64x48 12 fps VP9 videos in the
    train split, one more listed but missing, one in the validation
    split."""
    annotations = tmp_path / 'annotations'
    write_labels(annotations)
    write_split(annotations, 'train', [
        entry('101', LEFT_TO_RIGHT), entry('102', RIGHT_TO_LEFT),
        entry('103', FALLING), entry('104', FALLING)])
    write_split(annotations, 'validation', [entry('201', FALLING)])
    videos = tmp_path / 'videos'
    for i, (video_id, (n, dx)) in enumerate(sorted(MOTIONS.items())):
        write_video(videos / (video_id + '.webm'),
                    translating_texture(n, dx, 0, height=48, width=64,
                                        seed=i), fps=FPS)
    write_video(videos / '201.webm',
                translating_texture(9, 1, 0, height=48, width=64), fps=FPS)
    return str(videos), str(annotations)


def manifest_file(out):
    with open(os.path.join(out, 'manifest.json')) as f:
        return json.load(f)


def records_of(out):
    return {r['video_id']: r for r in manifest_file(out)['videos']}


def decoded_outputs(out):
    """Every precomputed video's meta, frames and quantized flows."""
    decoded = {}
    for path in sorted(glob.glob(os.path.join(out, 'videos', '*.zip'))):
        with PrecomputedVideo(path) as video:
            flow = video.read_flow_quantized(range(video.n_flow_frames)) \
                if video.n_flow_frames else None
            decoded[os.path.basename(path)] = (
                video.meta, video.read_rgb(range(video.n_frames)), flow)
    return decoded


def ssv2_args(video_dir, out, annotations, split='train', *options):
    return (video_dir, out, '--dataset', 'something_something_v2',
            '--annotations', annotations, '--split', split, *options,
            '--quiet')


@pytest.mark.slow
def test_precompute_with_the_dataset_defaults(webm_release, tmp_path):
    video_dir, annotations = webm_release
    out = str(tmp_path / 'out')
    result = run_script('precompute_frames_flow.py', *ssv2_args(
        video_dir, out, annotations, 'train', '--no_compute_flow'))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(
        '3 done, 0 failed, 0 already done, 1 listed but missing')
    written = manifest_file(out)
    names = list(read_ssv2_label_names(annotations))
    assert written['dataset'] == 'something_something_v2'
    assert written['preset'] == dict(SOMETHING_SOMETHING_V2.to_dict(),
                                     label_names=names)
    assert written['preset']['fps'] is None
    records = records_of(out)
    # Only the train split; the missing one recorded as such.
    assert sorted(records) == ['101', '102', '103', '104']
    assert records['104']['status'] == 'missing'
    for video_id in MOTIONS:
        record = records[video_id]
        # Every source frame, none repeated: the native rate.
        assert record['n_frames'] == decoded_frame_count(
            os.path.join(video_dir, video_id + '.webm'))
        assert record['source_fps'] == FPS
        # 64x48 scaled to the preset's short side.
        short_side = SOMETHING_SOMETHING_V2.short_side
        assert (record['height'], record['width']) == (
            short_side, 64 * short_side // 48)
    assert records['101']['label'] == names.index(
        'Pushing something from left to right')
    assert records['102']['label'] == names.index(
        'Pushing something from right to left')
    assert records['103']['label'] == names.index(
        'Something falling like a feather or paper')


def assert_flow_follows_the_motion(out, video_dir, annotations):
    dataset = PrecomputedVideoDataset(
        out, keys=('rgb', 'flow', 'label', 'video_id'))
    names = read_ssv2_label_names(annotations)
    assert dataset.label_names == names
    assert dataset.preset.fps is None
    assert len(dataset) == len(MOTIONS)
    templates = {'101': LEFT_TO_RIGHT, '102': RIGHT_TO_LEFT,
                 '103': FALLING}
    for i in range(len(dataset)):
        rgb, flow, label, video_id = dataset[i]
        dx = MOTIONS[video_id][1]
        assert rgb.shape == (3, decoded_frame_count(os.path.join(
            video_dir, video_id + '.webm')), 48, 64)
        assert names[label] == ssv2_class_name(templates[video_id])
        with dataset.open_video(i) as video:
            assert video.n_flow_frames == video.n_frames - 1
            assert video.meta['source_fps'] == FPS
            assert video.meta['fps'] is None
        # Every flow frame (none of a frame and its copy) follows the
        # motion: dx pixels a frame horizontally, none vertically.
        mean_x = flow[0, :-1, 8:-8, 8:-8].mean(axis=(1, 2))
        mean_y = flow[1, :-1, 8:-8, 8:-8].mean(axis=(1, 2))
        numpy.testing.assert_allclose(mean_x, dx, atol=0.5)
        numpy.testing.assert_allclose(mean_y, 0, atol=0.5)
        if dx:
            assert numpy.all(numpy.abs(mean_x) > 1)


@pytest.mark.slow
def test_precompute_flow_at_the_native_rate(webm_release, tmp_path):
    video_dir, annotations = webm_release
    out = str(tmp_path / 'out')
    result = run_script('precompute_frames_flow.py', *ssv2_args(
        video_dir, out, annotations, 'train', '--short_side', '48'))
    assert result.returncode == 0, result.stderr
    assert manifest_file(out)['preset']['short_side'] == 48
    assert_flow_follows_the_motion(out, video_dir, annotations)


@pytest.mark.slow
def test_resampling_to_25_fps_would_repeat_frames(webm_release, tmp_path):
    # The reason for the native rate: at 25 fps frames are duplicated and
    # the flow between a frame and its copy is zero.
    video_dir, annotations = webm_release
    out = str(tmp_path / 'out')
    result = run_script('precompute_frames_flow.py', *ssv2_args(
        video_dir, out, annotations, 'train', '--short_side', '48',
        '--fps', '25'))
    assert result.returncode == 0, result.stderr
    records = records_of(out)
    assert records['101']['n_frames'] > MOTIONS['101'][0]
    dataset = PrecomputedVideoDataset(out, keys=('flow', 'video_id'))
    flows = dict(dataset[i][::-1] for i in range(len(dataset)))
    mean_x = flows['101'][0, :-1, 8:-8, 8:-8].mean(axis=(1, 2))
    # Half the flows are between a frame and its copy.
    assert numpy.sum(numpy.abs(mean_x) < 0.25) >= (len(mean_x) - 1) // 3
    assert numpy.sum(numpy.abs(mean_x) > 1) >= (len(mean_x) - 1) // 3


@pytest.mark.slow
def test_the_test_split_is_unlabelled(webm_release, tmp_path):
    video_dir, annotations = webm_release
    write_split(annotations, 'test', [{'id': '103'}])
    out = str(tmp_path / 'out')
    result = run_script('precompute_frames_flow.py', *ssv2_args(
        video_dir, out, annotations, 'test', '--no_compute_flow',
        '--short_side', '48'))
    assert result.returncode == 0, result.stderr
    assert manifest_file(out)['preset']['label_names'] is None
    assert records_of(out)['103']['label'] == -1


@pytest.mark.slow
@pytest.mark.parametrize('options, message', [
    (('--split', 'val'), "split must be one of train, validation, test"),
    ((), 'needs a split: train, validation, test')])
def test_bad_split_stops_with_one_line(webm_release, tmp_path, options,
                                       message):
    video_dir, annotations = webm_release
    result = run_script('precompute_frames_flow.py', video_dir,
                        str(tmp_path / 'out'), '--dataset',
                        'something_something_v2', '--annotations',
                        annotations, *options)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('precompute_frames_flow: rank 0: ') and \
        message in last, result.stderr


def test_mpiexec_two_ranks_equal_the_serial_run(webm_release, tmp_path,
                                                mpiexec):
    video_dir, annotations = webm_release
    options = ssv2_args(video_dir, None, annotations, 'train',
                        '--short_side', '48')
    serial = str(tmp_path / 'serial')
    result = run_script('precompute_frames_flow.py', *(
        options[:1] + (serial,) + options[2:]))
    assert result.returncode == 0, result.stderr
    out = str(tmp_path / 'mpi')
    result = subprocess.run(
        [mpiexec, '-n', '2', sys.executable, SCRIPT, *options[:1], out,
         *options[2:]], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    shards = sorted(glob.glob(os.path.join(out, 'manifest.d', '*.jsonl')))
    assert [os.path.basename(p) for p in shards] == [
        'rank00000.jsonl', 'rank00001.jsonl']
    serial_outputs = decoded_outputs(serial)
    mpi_outputs = decoded_outputs(out)
    assert sorted(mpi_outputs) == sorted(serial_outputs) == [
        '101.zip', '102.zip', '103.zip']
    for name, (meta, rgb, flow) in serial_outputs.items():
        assert mpi_outputs[name][0] == meta
        numpy.testing.assert_array_equal(mpi_outputs[name][1], rgb)
        numpy.testing.assert_array_equal(mpi_outputs[name][2], flow)
    assert manifest_file(out) == manifest_file(serial)
