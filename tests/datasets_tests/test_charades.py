"""The Charades reader, and its label sets through the precompute stage
(serial and under mpiexec) and the evaluation."""

import json
import os
import subprocess
import sys

import numpy
import pytest

from chainercv_i3d.datasets import PrecomputedVideoDataset
from chainercv_i3d.datasets.video_list import read_video_list
from chainercv_i3d.links import I3D
from chainercv_i3d.pretrained.npz_weights import save_model_npz
from chainercv_i3d.testing.synthetic import write_moving_bars_set
from tests.conftest import ROOT
from tests.conftest import run_script
from tests.datasets_tests.videos import translating_texture
from tests.datasets_tests.videos import write_video

PRECOMPUTE = os.path.join(ROOT, 'examples', 'i3d', 'precompute_frames_flow.py')
EVAL = os.path.join(ROOT, 'examples', 'i3d', 'eval_kinetics.py')
HEADER = ('id,subject,scene,quality,relevance,verified,script,objects,'
          'descriptions,actions,length')
CLASSES = ('c000 Holding some clothes\n'
           'c001 Putting clothes somewhere\n'
           'c002 Taking some clothes from somewhere\n')
# Overlapping actions (AB12C), none (XY9ZZ), several of one class (QQ1QQ),
# and a listed video missing on disk (MISS1).
ROWS = ('AB12C,HR43,Kitchen,6,7,Yes,"A person, in a kitchen",clothes;table,'
        '"Holds clothes, puts them away",c002 0.00 0.20;c000 0.10 0.30,0.40\n'
        'XY9ZZ,HR44,Bedroom,5,7,Yes,Nothing happens,,"",,0.40\n'
        'QQ1QQ,HR45,Hall,6,6,No,Clothes,clothes,"",c001 0.00 0.08;'
        'c001 0.24 0.40,0.40\n'
        'MISS1,HR46,Hall,6,6,No,Clothes,clothes,"",c000 0.00 0.40,0.40\n')


def write_release(root, rows=ROWS, classes=CLASSES, size=(48, 64)):
    """Charades/{Charades_v1_test.csv, Charades_v1_classes.txt} and
    Charades_v1_480/<id>.mp4 of 10 frames at 25 fps (MISS1 absent)."""
    annotations = root / 'Charades'
    annotations.mkdir(parents=True)
    csv_path = annotations / 'Charades_v1_test.csv'
    csv_path.write_text(HEADER + '\n' + rows)
    (annotations / 'Charades_v1_classes.txt').write_text(classes)
    videos = root / 'Charades_v1_480'
    for i, video_id in enumerate(('AB12C', 'XY9ZZ', 'QQ1QQ')):
        write_video(videos / (video_id + '.avi'),
                    translating_texture(10, dx=i % 2, dy=1, height=size[0],
                                        width=size[1], seed=i))
    return str(videos), str(csv_path)


def test_the_reader_keeps_overlapping_actions_and_names_missing_videos(
        tmp_path):
    videos, csv_path = write_release(tmp_path)
    found = read_video_list('charades', videos, csv_path)
    assert found.label_names == ('Holding some clothes',
                                 'Putting clothes somewhere',
                                 'Taking some clothes from somewhere')
    assert found.multi_label
    assert [r.video_id for r in found] == ['AB12C', 'XY9ZZ', 'QQ1QQ']
    assert found[0].actions == ((2, 0.0, 0.2), (0, 0.1, 0.3))
    assert found[0].label == -1
    assert found[1].actions == ()
    assert found[2].actions == ((1, 0.0, 0.08), (1, 0.24, 0.4))
    assert found.missing == ['MISS1']
    assert found.summary() == ('charades: 3 videos found, 1 listed but '
                               'missing, 3 classes')


@pytest.mark.parametrize('rows,classes,message', [
    ('A,1,2,3,4,5,6,7,8,c009 0 1,1\n', CLASSES,
     r'Charades_v1_test.csv \(video A\): class c009 is not in '
     r'Charades_v1_classes.txt'),
    ('A,1,2,3,4,5,6,7,8,c000 0,1\n', CLASSES,
     r"\(video A\): action 'c000 0' is not \"code start end\""),
    ('A,1,2,3,4,5,6,7,8,c000 2 1,1\n', CLASSES,
     r"\(video A\): action 'c000 2 1' ends before it starts"),
    ('A,1,2,3,4,5,6,7,8,,1\nA,1,2,3,4,5,6,7,8,,1\n', CLASSES,
     'the id A is listed twice'),
    ('', 'c000 Holding\nc000 Again\n',
     r'Charades_v1_classes.txt:2: class c000 is listed twice'),
    ('', 'c000\n', r'Charades_v1_classes.txt:1: .* is not "code name"'),
])
def test_malformed_files_are_refused_naming_the_file(tmp_path, rows,
                                                     classes, message):
    videos, csv_path = write_release(tmp_path, rows, classes)
    with pytest.raises(ValueError, match=message):
        read_video_list('charades', videos, csv_path)


def test_missing_files_and_arguments_are_refused(tmp_path):
    videos, csv_path = write_release(tmp_path)
    with pytest.raises(ValueError, match='needs the annotation CSV'):
        read_video_list('charades', videos)
    with pytest.raises(ValueError, match='takes no split'):
        read_video_list('charades', videos, csv_path, split='test')
    with pytest.raises(ValueError, match='no such annotation file'):
        read_video_list('charades', videos, csv_path + '.x')
    os.remove(os.path.join(os.path.dirname(csv_path),
                           'Charades_v1_classes.txt'))
    with pytest.raises(ValueError, match='no Charades class list .*'
                       'Charades_v1_classes.txt .*beside'):
        read_video_list('charades', videos, csv_path)


def test_a_csv_without_the_actions_column_is_refused(tmp_path):
    videos, csv_path = write_release(tmp_path)
    with open(csv_path, 'w') as f:
        f.write('id,length\nAB12C,1\n')
    with pytest.raises(ValueError, match='not a Charades annotation CSV: '
                       'no column actions'):
        read_video_list('charades', videos, csv_path)


def test_a_single_label_set_of_before_still_loads(tmp_path):
    # Written without multi_label (as every set before it existed).
    write_moving_bars_set(str(tmp_path), 1, n_frames=4, size=16)
    with open(tmp_path / 'manifest.json') as f:
        assert 'multi_label' not in json.load(f)['preset']
    dataset = PrecomputedVideoDataset(str(tmp_path))
    assert not dataset.multi_label
    numpy.testing.assert_array_equal(dataset.video_labels(1), [0, 1])
    numpy.testing.assert_array_equal(dataset.clip_labels(1, [0]), [0, 1])


def manifest_of(out):
    with open(os.path.join(out, 'manifest.json')) as f:
        return json.load(f)


@pytest.mark.slow
@pytest.mark.mpi
def test_precompute_under_mpiexec_equals_serial_and_evaluates(tmp_path,
                                                             mpiexec):
    # Frames of 193 x 230: I3D's smallest input, for the evaluation.
    videos, csv_path = write_release(tmp_path, size=(193, 230))
    common = (videos, '--dataset', 'charades', '--annotations', csv_path,
              '--short_side', '193', '--no_compute_flow', '--quiet')
    serial = str(tmp_path / 'serial')
    result = run_script('precompute_frames_flow.py', common[0], serial,
                        *common[1:])
    assert result.returncode == 0, result.stderr
    assert 'charades: 3 videos found, 1 listed but missing' in result.stderr
    parallel = str(tmp_path / 'parallel')
    result = subprocess.run(
        [mpiexec, '-n', '2', sys.executable, PRECOMPUTE, common[0],
         parallel] + list(common[1:]), capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr
    one, two = manifest_of(serial), manifest_of(parallel)
    assert one == two
    assert one['preset']['multi_label'] is True
    videos_by_id = {r['video_id']: r for r in one['videos']}
    assert videos_by_id['AB12C']['labels'] == [0, 2]
    assert videos_by_id['AB12C']['actions'] == [[2, 0.0, 0.2],
                                                [0, 0.1, 0.3]]
    assert videos_by_id['AB12C']['list_index'] == 0
    assert videos_by_id['XY9ZZ']['labels'] == []
    assert videos_by_id['QQ1QQ']['list_index'] == 2
    assert videos_by_id['MISS1']['status'] == 'missing'
    # A 3-class multi-label model: mAP, the same for 1 and 2 ranks.
    numpy.random.seed(0)
    model_path = str(tmp_path / 'model.npz')
    save_model_npz(I3D(n_class=3), model_path,
                   PrecomputedVideoDataset(serial).preset)
    summaries = []
    for n in (1, 2):
        out = str(tmp_path / 'eval{}.json'.format(n))
        result = subprocess.run(
            [mpiexec, '-n', str(n), sys.executable, EVAL, serial,
             '--rgb_model_checkpoint', model_path, '--n_frame', '9',
             '--crop_size', '193', '--quiet', '--out', out],
            capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert 'mAP' in result.stdout and 'top-1' not in result.stdout
        with open(out) as f:
            summaries.append(json.load(f))
    assert summaries[0]['rgb'] == summaries[1]['rgb']
    assert summaries[0]['per_class'] == summaries[1]['per_class']
    assert summaries[0]['rgb']['n_class_without_positive'] == 0
    assert [c['n'] for c in summaries[0]['per_class']] == [1, 1, 1]
    with open(str(tmp_path / 'eval1.predictions.jsonl')) as f:
        predictions = {p['video_id']: p for p in map(json.loads, f)}
    assert predictions['AB12C']['labels'] == [0, 2]
    assert predictions['XY9ZZ']['labels'] == []


def test_the_script_names_a_missing_class_list_in_one_line(tmp_path):
    videos, csv_path = write_release(tmp_path)
    os.remove(os.path.join(os.path.dirname(csv_path),
                           'Charades_v1_classes.txt'))
    result = run_script('precompute_frames_flow.py', videos,
                        tmp_path / 'out', '--dataset', 'charades',
                        '--annotations', csv_path, '--quiet')
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert 'Charades_v1_classes.txt' in result.stderr
