import filecmp
import importlib.util
import json
import os

import pytest

from tests.conftest import ROOT
from tests.conftest import run_script


def load_demo_module():
    spec = importlib.util.spec_from_file_location(
        'demo', os.path.join(ROOT, 'examples', 'i3d', 'demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_embedded_sample_is_scikit_videos_bigbuckbunny(shared_i3d):
    path = load_demo_module().embedded_sample()
    assert filecmp.cmp(path, os.path.join(shared_i3d, 'videos',
                                          'bigbuckbunny.mp4'), shallow=False)


def test_demo_on_bigbuckbunny_with_the_tfhub_weights(shared_i3d, tfhub_cache,
                                                      tmp_path):
    # Measured once and written down: 'feeding birds' at 0.802 (the clip's
    # first 5 s show the rabbit watching a bird), then 'sticking tongue
    # out', 'smoking', 'knitting', 'petting cat'.
    video = os.path.join(shared_i3d, 'videos', 'bigbuckbunny.mp4')
    result = run_script('demo.py', video, '--json', tmp_path / 'r.json',
                        env={'CHAINERCV_I3D_CACHE': str(tfhub_cache)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith('Norm of logits: ')
    assert lines[2] == 'Top classes and probabilities'
    assert lines[3].endswith(' feeding birds')
    with open(str(tmp_path / 'r.json')) as f:
        top = json.load(f)[0]['top']
    assert len(top) == 5
    assert top[0]['name'] == 'feeding birds'
    assert top[0]['prob'] == pytest.approx(0.802, abs=0.01)


def test_demo_reports_bad_videos_and_goes_on(tmp_path, tfhub_cache):
    bad = tmp_path / 'bad.mp4'
    bad.write_bytes(b'not a video')
    result = run_script('demo.py', bad, tmp_path / 'missing.mp4',
                        env={'CHAINERCV_I3D_CACHE': str(tfhub_cache)})
    assert result.returncode == 1
    assert 'bad.mp4' in result.stderr and 'missing.mp4' in result.stderr
    assert 'Traceback' not in result.stderr


def test_demo_refuses_an_unknown_model():
    result = run_script('demo.py', '--rgb_model', 'rgb_imaginary')
    assert result.returncode == 1
    assert 'rgb_tfhub_kinetics400' in result.stderr  # lists the known names
    assert 'Traceback' not in result.stderr
