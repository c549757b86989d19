"""Downloading DeepMind's checkpoints: from a server on localhost, not a mock.

The server serves a folder laid out like DeepMind's repository, holding the
shared TF-Hub checkpoint under ``data/checkpoints/rgb_imagenet/``; the
environment points the cache and the repository's address at the test's.
"""

import collections
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy
import pytest

from chainercv_i3d.label_names import kinetics400_label_names
from chainercv_i3d.links import I3D
from chainercv_i3d.pretrained import CacheError
from chainercv_i3d.pretrained import convert_tf_checkpoint
from chainercv_i3d.pretrained import describe_npz
from chainercv_i3d.pretrained import DownloadError
from chainercv_i3d.pretrained import get_model_path
from chainercv_i3d.pretrained import model_arrays
from chainercv_i3d.pretrained.cache import download
from chainercv_i3d.pretrained.models import deepmind_files
from chainercv_i3d.pretrained.models import MODELS
from tests.conftest import ROOT
from tests.pretrained_tests.test_models import closed_port_url

pytestmark = [pytest.mark.slow]

CHECKPOINT = 'data/checkpoints/{}/model.ckpt.'
RGB_IMAGENET_FILES = (CHECKPOINT.format('rgb_imagenet') + 'index',
                      CHECKPOINT.format('rgb_imagenet')
                      + 'data-00000-of-00001',
                      'data/label_map.txt')


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files, counting requests; ``/truncated`` lies about its size."""

    def do_GET(self):
        self.server.requests[self.path.lstrip('/')] += 1
        time.sleep(self.server.delay)
        if self.path == '/truncated':
            self.send_response(200)
            self.send_header('Content-Length', '1000')
            self.end_headers()
            self.wfile.write(b'0123456789')
            return
        super(_Handler, self).do_GET()

    def log_message(self, *args):
        pass


def _link_or_copy(source, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        os.symlink(source, target)
    except OSError:
        shutil.copy(source, target)


@pytest.fixture(scope='module')
def server(shared_i3d, tmp_path_factory):
    """DeepMind's repository on 127.0.0.1, with ``rgb_imagenet`` and a
    ``rgb_scratch_kin600`` whose 600-class label map has 400 lines."""
    root = str(tmp_path_factory.mktemp('kinetics-i3d'))
    shared = os.path.join(shared_i3d, 'checkpoints', 'rgb_tfhub_kinetics400',
                          'model.ckpt.')
    for checkpoint in ('rgb_imagenet', 'rgb_scratch_kin600'):
        for suffix in ('index', 'data-00000-of-00001'):
            _link_or_copy(shared + suffix, os.path.join(
                root, CHECKPOINT.format(checkpoint) + suffix))
    labels = os.path.join(shared_i3d, 'labels', 'kinetics400_label_map.txt')
    for name in ('label_map.txt', 'label_map_600.txt'):
        _link_or_copy(labels, os.path.join(root, 'data', name))
    httpd = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_Handler, directory=root))
    httpd.requests = collections.Counter()
    httpd.delay = 0
    httpd.url = 'http://127.0.0.1:{}/'.format(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(server, tmp_path, monkeypatch):
    """An empty cache, the repository at the server, the counts at zero."""
    monkeypatch.setenv('CHAINERCV_I3D_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setenv('CHAINERCV_I3D_DEEPMIND_URL', server.url)
    server.requests.clear()
    server.delay = 0
    return tmp_path / 'cache'


@pytest.fixture(scope='module')
def reference(tf, shared_i3d):
    """``{npz key: array}`` of the shared checkpoint converted directly."""
    arrays, _ = convert_tf_checkpoint(os.path.join(
        shared_i3d, 'checkpoints', 'rgb_tfhub_kinetics400'))
    return arrays


def assert_same_weights(model, reference):
    arrays = model_arrays(model)
    assert sorted(arrays) == sorted(reference)
    for key, value in reference.items():
        numpy.testing.assert_array_equal(arrays[key], value, err_msg=key)


def files_under(folder):
    return sorted(os.path.relpath(os.path.join(d, f), str(folder))
                  for d, _, names in os.walk(str(folder)) for f in names)


@pytest.mark.tf
def test_name_downloads_converts_and_caches(cache, server, reference):
    model = I3D(pretrained_model='rgb_imagenet_kinetics400')
    assert (model.n_class, model.modality) == (400, 'rgb')
    assert model.preset == MODELS['rgb_imagenet_kinetics400']['preset']
    assert model.label_names == kinetics400_label_names
    assert_same_weights(model, reference)
    # The cached npz carries the preset of its name.
    assert describe_npz(str(cache / 'rgb_imagenet_kinetics400.npz'))[
        'preset'] == MODELS['rgb_imagenet_kinetics400']['preset']
    assert server.requests == {path: 1 for path in RGB_IMAGENET_FILES}
    downloads = ['downloads/kinetics-i3d/' + path
                 for path in RGB_IMAGENET_FILES]
    assert files_under(cache) == sorted(downloads + [
        'rgb_imagenet_kinetics400.npz', 'rgb_imagenet_kinetics400.npz.lock'])
    # The second time, the cached npz is used as it is.
    I3D(pretrained_model='rgb_imagenet_kinetics400')
    assert sum(server.requests.values()) == 3


@pytest.mark.tf
def test_concurrent_processes_build_one_npz(cache, server, reference):
    server.delay = 0.5  # keeps the first build going while the others start
    code = ('import chainercv_i3d\n'
            'from chainercv_i3d.pretrained import get_model_path\n'
            "print(get_model_path('rgb_imagenet_kinetics400'))\n")
    processes = [subprocess.Popen([sys.executable, '-c', code], cwd=ROOT,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
    results = [p.communicate(timeout=300) for p in processes]
    for p, (out, err) in zip(processes, results):
        assert p.returncode == 0, err
    paths = {out.strip() for out, _ in results}
    assert paths == {str(cache / 'rgb_imagenet_kinetics400.npz')}
    assert server.requests == {path: 1 for path in RGB_IMAGENET_FILES}
    assert not [f for f in files_under(cache) if f.endswith('.tmp')]
    assert_same_weights(
        I3D(pretrained_model='rgb_imagenet_kinetics400'), reference)


def assert_tells_what_to_put_where(message, base_url, name):
    entry = MODELS[name]
    folder = os.path.join(os.environ['CHAINERCV_I3D_CACHE'], 'downloads',
                          'kinetics-i3d', 'data', 'checkpoints',
                          entry['checkpoint'])
    assert base_url + CHECKPOINT.format(entry['checkpoint']) + 'index' \
        in message
    for file_name in ('model.ckpt.index', 'model.ckpt.data-00000-of-00001'):
        assert os.path.join(folder, file_name) in message
    assert os.path.join(os.path.dirname(os.path.dirname(folder)),
                        os.path.basename(entry['label_map'])) in message
    assert '\n' not in message


def test_missing_files_say_what_to_put_where(cache, server):
    with pytest.raises(DownloadError) as info:
        I3D(pretrained_model='flow_imagenet_kinetics400')
    assert isinstance(info.value, RuntimeError)
    assert '404' in str(info.value)
    assert_tells_what_to_put_where(str(info.value), server.url,
                                   'flow_imagenet_kinetics400')
    assert [f for f in files_under(cache) if not f.endswith('.lock')] == []


def test_server_down_says_what_to_put_where(cache, monkeypatch):
    url = closed_port_url()
    monkeypatch.setenv('CHAINERCV_I3D_DEEPMIND_URL', url)
    with pytest.raises(DownloadError) as info:
        get_model_path('rgb_scratch_kinetics400')
    assert 'refused' in str(info.value)
    assert_tells_what_to_put_where(str(info.value), url,
                                   'rgb_scratch_kinetics400')
    assert [f for f in files_under(cache) if not f.endswith('.lock')] == []


@pytest.mark.tf
def test_files_put_by_hand_are_used(cache, monkeypatch, shared_i3d,
                                    reference):
    monkeypatch.setenv('CHAINERCV_I3D_DEEPMIND_URL', closed_port_url())
    entry = MODELS['rgb_scratch_kinetics400']
    sources = [os.path.join(shared_i3d, 'checkpoints',
                            'rgb_tfhub_kinetics400', 'model.ckpt.index'),
               os.path.join(shared_i3d, 'checkpoints',
                            'rgb_tfhub_kinetics400',
                            'model.ckpt.data-00000-of-00001'),
               os.path.join(shared_i3d, 'labels',
                            'kinetics400_label_map.txt')]
    for source, (_, local) in zip(sources, deepmind_files(entry)):
        _link_or_copy(source, local)
    assert_same_weights(I3D(pretrained_model='rgb_scratch_kinetics400'),
                        reference)


def test_truncated_download_leaves_nothing(cache, server, tmp_path):
    path = tmp_path / 'out' / 'file.bin'
    with pytest.raises(DownloadError, match='after 10 of 1000 bytes') as info:
        download(server.url + 'truncated', str(path))
    assert server.url + 'truncated' in str(info.value)
    assert str(path) in str(info.value)
    assert os.listdir(str(path.parent)) == []


def test_wrong_label_map_is_refused(cache, server):
    with pytest.raises(CacheError, match='label_map_600.txt is not the label '
                       'map of 600 classes'):
        get_model_path('rgb_scratch_kinetics600')
    assert not (cache / 'rgb_scratch_kinetics600.npz').exists()
