"""The precompute script end to end, on videos the tests write."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy
import pytest

from chainercv_i3d.datasets import PrecomputedKineticsDataset
from chainercv_i3d.datasets import PrecomputedVideo
from tests.conftest import ROOT
from tests.conftest import run_script
from tests.datasets_tests.videos import noise_frames
from tests.datasets_tests.videos import translating_texture
from tests.datasets_tests.videos import write_video

pytestmark = [pytest.mark.slow]

SCRIPT = os.path.join(ROOT, 'examples', 'i3d', 'precompute_frames_flow.py')
SMALL = ('--short_side', '32')


def class_folders(root, n_good=4, bad=True):
    """A folder per class: good videos at various rates and bad files."""
    for i in range(n_good):
        write_video(root / ('abseiling' if i % 2 else 'air drumming') /
                    'good{}.avi'.format(i), noise_frames(8 + i, seed=i),
                    fps=(25.0, 30.0, 12.5, 29.97)[i % 4])
    if bad:
        folder = root / 'zumba'
        folder.mkdir(parents=True)
        (folder / 'corrupt.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' * 9)
        (folder / 'empty.mp4').write_bytes(b'')
        (folder / 'text.avi').write_text('this is not a video')
        write_video(folder / 'one_frame.avi', noise_frames(1))
        write_video(folder / 'tiny_odd.avi', noise_frames(3, 5, 3))
        good = noise_frames(20)
        write_video(folder / 'truncated.avi', good)
        data = (folder / 'truncated.avi').read_bytes()
        (folder / 'truncated.avi').write_bytes(data[:len(data) // 3])
    return str(root)


def manifest(out):
    with open(os.path.join(out, 'manifest.json')) as f:
        return {r['video_id']: r for r in json.load(f)['videos']}


def zips(out):
    return {os.path.relpath(p, out): open(p, 'rb').read()
            for p in glob.glob(os.path.join(out, 'videos', '**', '*.zip'),
                               recursive=True)}


def test_folder_layout_with_bad_files(tmp_path):
    videos = class_folders(tmp_path / 'videos')
    out = str(tmp_path / 'out')
    result = run_script('precompute_frames_flow.py', videos, out, *SMALL,
                        '--num_preprocess_workers', '2', '--quiet')
    assert result.returncode == 3, result.stderr
    records = manifest(out)
    failed = {k for k, r in records.items() if r['status'] == 'failed'}
    assert failed == {'zumba/corrupt', 'zumba/empty', 'zumba/text',
                      'zumba/one_frame'}, records
    assert 'flow needs at least 2' in records['zumba/one_frame']['error']
    assert 'empty file' in records['zumba/empty']['error']
    # A truncated file still decodes up to the cut; a tiny odd one works.
    assert records['zumba/truncated']['status'] == 'done'
    assert records['zumba/tiny_odd']['status'] == 'done'
    assert result.stdout.strip().splitlines()[-1] == (
        '6 done, 4 failed, 0 already done')
    # 30 fps, 9 frames -> 7 frames at 25 fps; 12.5 fps, 10 -> 20.
    assert records['abseiling/good1']['n_frames'] == 7
    assert records['air drumming/good2']['n_frames'] == 20
    assert records['air drumming/good2']['n_flow_frames'] == 19
    assert records['abseiling/good1']['height'] == 32

    again = run_script('precompute_frames_flow.py', videos, out, *SMALL,
                       '--quiet')
    assert again.stdout.strip().splitlines()[-1] == (
        '0 done, 0 failed, 6 already done, 4 failed before and skipped '
        '(--retry_failed redoes them)')


def test_official_layout_and_dataset(tmp_path):
    videos = tmp_path / 'videos'
    write_video(videos / 'abseiling' / 'aaa_000001_000011.avi',
                noise_frames(6))
    write_video(videos / 'bbb_000002_000012.mkv', noise_frames(4, seed=2))
    csv = tmp_path / 'val.csv'
    csv.write_text('label,youtube_id,time_start,time_end,split\n'
                   'abseiling,aaa,1,11,val\nzumba,bbb,2,12,val\n'
                   'zumba,gone,0,10,val\n')
    out = str(tmp_path / 'out')
    result = run_script('precompute_frames_flow.py', str(videos), out,
                        '--annotations', str(csv), *SMALL, '--quiet')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(
        '2 done, 0 failed, 0 already done, 1 listed but missing')
    assert manifest(out)['gone_000000_000010']['status'] == 'missing'
    dataset = PrecomputedKineticsDataset(out, n_frame=9,
                                         keys=('rgb', 'flow', 'label',
                                               'video_id'))
    assert len(dataset) == 2
    rgb, flow, label, video_id = dataset[1]
    assert video_id == 'bbb_000002_000012' and label == 399
    assert rgb.shape == (3, 9, 32, 43) and flow.shape == (2, 9, 32, 43)
    # 4 frames repeated from the start to make 9.
    numpy.testing.assert_array_equal(rgb[:, 4], rgb[:, 0])


def test_recovered_flow_of_a_known_motion(tmp_path):
    videos = tmp_path / 'videos'
    write_video(videos / 'abseiling' / 'moving.avi',
                translating_texture(6, dx=2, dy=1, height=96, width=128))
    out = str(tmp_path / 'out')
    result = run_script('precompute_frames_flow.py', str(videos), out,
                        '--short_side', '96', '--quiet')
    assert result.returncode == 0, result.stderr
    flow = PrecomputedKineticsDataset(out, keys='flow')[0]
    interior = flow[:, :, 16:-16, 16:-16]
    mean = interior.reshape(2, -1).mean(axis=1)
    numpy.testing.assert_allclose(mean, [2, 1], atol=0.25)


def test_killed_run_resumes_to_the_same_output(tmp_path):
    videos = class_folders(tmp_path / 'videos', n_good=6, bad=False)
    args = [sys.executable, SCRIPT, videos, None, '--short_side', '48',
            '--quiet']
    reference = str(tmp_path / 'reference')
    subprocess.run(args[:3] + [reference] + args[4:], check=True,
                   capture_output=True)

    out = str(tmp_path / 'out')
    process = subprocess.Popen(args[:3] + [out] + args[4:],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    shard = os.path.join(out, 'manifest.d', 'rank00000.jsonl')
    deadline = time.time() + 60
    while time.time() < deadline and not (
            os.path.exists(shard) and os.path.getsize(shard) > 0):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = zips(out)
    assert 0 < len(partial) < 6, 'the kill should land half-way'

    resumed = run_script('precompute_frames_flow.py', videos, out,
                         '--short_side', '48', '--quiet')
    assert resumed.returncode == 0, resumed.stderr
    done_now = int(resumed.stdout.split()[0])
    assert done_now == 6 - len(partial)
    assert zips(out) == zips(reference)
    assert not glob.glob(os.path.join(out, 'videos', '**', '*.tmp*'),
                         recursive=True, include_hidden=True)
    assert manifest(out).keys() == manifest(reference).keys()


def test_unwritable_output_stops_with_one_line(tmp_path):
    videos = class_folders(tmp_path / 'videos', n_good=1, bad=False)
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    result = run_script('precompute_frames_flow.py', videos,
                        str(blocker / 'out'), *SMALL)
    assert result.returncode == 2  # refused with the arguments
    assert '{} is a file, not a folder'.format(blocker) in \
        result.stderr.strip().splitlines()[-1]
    assert 'Traceback' not in result.stderr


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / 'disk'
    mount_point.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k',
                              'tmpfs', str(mount_point)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip('cannot mount a small tmpfs here (needs root)')
    yield str(mount_point)
    subprocess.run(['umount', str(mount_point)])


def test_full_disk_stops_and_leaves_no_partial_video(tmp_path, small_disk):
    videos = class_folders(tmp_path / 'videos', n_good=4, bad=False)
    out = os.path.join(small_disk, 'out')
    result = run_script('precompute_frames_flow.py', videos, out,
                        '--short_side', '128', '--no_compute_flow')
    assert result.returncode == 1
    assert 'No space left on device' in result.stderr
    assert not glob.glob(os.path.join(out, 'videos', '**', '*.tmp*'),
                         recursive=True, include_hidden=True)
    for path in zips(out):
        PrecomputedVideo(os.path.join(out, path)).close()


@pytest.mark.mpi
def test_under_mpiexec_two_ranks_two_workers(tmp_path, mpiexec):
    videos = class_folders(tmp_path / 'videos', n_good=5)
    serial = str(tmp_path / 'serial')
    run_script('precompute_frames_flow.py', videos, serial, *SMALL, '--quiet')
    out = str(tmp_path / 'mpi')
    result = subprocess.run(
        [mpiexec, '-n', '2', sys.executable, SCRIPT, videos, out, *SMALL,
         '--num_preprocess_workers', '2'],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        '7 done, 4 failed, 0 already done')
    # Rank 0's bar counts both ranks' videos, not only its own share.
    assert '2 ranks' in result.stderr and '11/11' in result.stderr
    shards = sorted(glob.glob(os.path.join(out, 'manifest.d', '*.jsonl')))
    assert [os.path.basename(p) for p in shards] == [
        'rank00000.jsonl', 'rank00001.jsonl']
    assert zips(out) == zips(serial)
    assert manifest(out) == manifest(serial)


def read_manifest_file(out):
    with open(os.path.join(out, 'manifest.json')) as f:
        return json.load(f)


def test_folders_at_the_native_rate(tmp_path):
    videos = tmp_path / 'videos'
    write_video(videos / 'Open_Door' / 'a.avi', noise_frames(9), fps=30.0)
    write_video(videos / 'close door' / 'b.avi', noise_frames(4), fps=12.5)
    out = str(tmp_path / 'out')
    result = run_script('precompute_frames_flow.py', str(videos), out,
                        '--dataset', 'folders', '--fps', '0',
                        '--no_compute_flow', *SMALL, '--quiet')
    assert result.returncode == 0, result.stderr
    assert 'folders: 2 videos found, 0 listed but missing, 2 classes' in \
        result.stderr
    written = read_manifest_file(out)
    assert written['dataset'] == 'folders'
    assert written['preset']['label_names'] == ['Open_Door', 'close door']
    assert written['preset']['fps'] is None
    assert written['preset']['short_side'] == 32
    records = manifest(out)
    # Every decoded frame, labels in sorted folder order.
    assert records['Open_Door/a']['n_frames'] == 9
    assert records['close door/b']['n_frames'] == 4
    assert records['close door/b']['label'] == 1
    with PrecomputedVideo(os.path.join(
            out, 'videos', 'Open_Door', 'a.zip')) as video:
        assert video.meta['preset'] == written['preset']
        assert video.meta['flow_bound'] == 20


def test_empty_class_folders_are_named_in_one_warning(tmp_path):
    videos = tmp_path / 'videos'
    write_video(videos / 'b' / 'v.avi', noise_frames(2))
    for name in ('a', 'c'):
        (videos / name).mkdir()
    out = tmp_path / 'out'
    result = run_script('precompute_frames_flow.py', videos, out,
                        '--dataset', 'folders', '--no_compute_flow',
                        *SMALL, '--quiet')
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines()
                if 'warning' in line]
    assert warnings == [
        "precompute_frames_flow: warning: 2 of the 3 classes have no video "
        "in {} ('a', 'c'): they keep their labels; add their videos, or "
        'remove their folders if they are no classes'.format(videos)]
    assert read_manifest_file(str(out))['preset']['label_names'] == [
        'a', 'b', 'c']


def test_only_empty_class_folders_are_refused_before_any_work(tmp_path):
    videos = tmp_path / 'videos'
    (videos / 'a').mkdir(parents=True)
    out = tmp_path / 'out'
    result = run_script('precompute_frames_flow.py', videos, out,
                        '--dataset', 'folders', '--quiet')
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        '{}: no video found (0 listed but missing): nothing to '
        'precompute'.format(videos))
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_unlabelled_files_with_the_default_preset(tmp_path):
    videos = tmp_path / 'videos'
    write_video(videos / 'x.avi', noise_frames(3))
    out = str(tmp_path / 'out')
    result = run_script('precompute_frames_flow.py', str(videos), out,
                        '--dataset', 'files', '--no_compute_flow',
                        '--quiet')
    assert result.returncode == 0, result.stderr
    written = read_manifest_file(out)
    assert written['preset']['name'] == 'deepmind_kinetics'
    assert written['preset']['label_names'] is None
    assert manifest(out)['x']['label'] == -1
    assert manifest(out)['x']['height'] == 256


def test_bad_options_stop_with_one_line(tmp_path):
    videos = class_folders(tmp_path / 'videos', n_good=1, bad=False)
    out = str(tmp_path / 'out')
    for options, message in (
            (('--device', '@intel64'), 'runs on the CPU only: device'),
            (('--jpeg_quality', '101'), 'jpeg_quality must be an integer'),
            (('--dataset', 'files', '--annotations', 'a.csv'),
             "'files' video list takes no annotations")):
        result = run_script('precompute_frames_flow.py', videos, out,
                            *options)
        assert result.returncode == 1, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith('precompute_frames_flow: rank 0: ') and \
            message in last, result.stderr
    result = run_script('precompute_frames_flow.py', videos, out,
                        '--dataset', 'nope')
    assert result.returncode == 2 and 'invalid choice' in result.stderr


def test_real_videos(shared_i3d, tmp_path):
    videos = tmp_path / 'videos' / 'riding a bike'
    videos.mkdir(parents=True)
    for name in ('bikes', 'bigbuckbunny', 'carphone_pristine'):
        os.symlink(os.path.join(shared_i3d, 'videos', name + '.mp4'),
                   str(videos / (name + '.mp4')))
    out = str(tmp_path / 'out')
    result = run_script('precompute_frames_flow.py',
                        str(tmp_path / 'videos'), out, '--no_compute_flow',
                        '--num_preprocess_workers', '2', '--quiet')
    assert result.returncode == 0, result.stderr
    records = manifest(out)
    bikes = records['riding a bike/bikes']
    assert (bikes['n_frames'], bikes['height'], bikes['width']) == \
        (250, 256, 602)
    bunny = records['riding a bike/bigbuckbunny']
    assert (bunny['n_frames'], bunny['height'], bunny['width']) == \
        (132, 256, 455)
    carphone = records['riding a bike/carphone_pristine']
    # 120 frames at 29.97 fps -> 100 at 25 fps; 176x144 -> 313x256.
    assert carphone['n_frames'] == 100
    assert carphone['source_fps'] == pytest.approx(30000 / 1001)
    assert (carphone['height'], carphone['width']) == (256, 313)
