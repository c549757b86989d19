"""The folder of pretrained models: location, locking, atomic writes, download.

Several processes (MPI ranks) may ask for the same model at once. A file
written here appears only complete (written under a temporary name, then
renamed), so a reader never sees half a file; a lock on a side file lets one
process build a model while the others wait for it instead of downloading it
again.
"""

import contextlib
import hashlib
import http.client
import os
import shutil
import sys
import urllib.error
import urllib.request

from chainercv_i3d import files

CACHE_ENV = 'CHAINERCV_I3D_CACHE'
DEFAULT_CACHE_DIR = os.path.join('~', '.cache', 'chainercv_i3d')
DOWNLOAD_TIMEOUT = 60  # seconds without progress before a download fails
_CHUNK = 1 << 20


class CacheError(RuntimeError):
    """A file of the cache cannot be had; the message says what to do."""


class DownloadError(CacheError):
    """A download failed; the message names the URL and where to put the
    file by hand.

    Attributes:
        url (str): What could not be downloaded.
        reason (str): Why, in a few words.
    """

    def __init__(self, message, url=None, reason=None):
        super(DownloadError, self).__init__(message)
        self.url = url
        self.reason = reason


def cache_dir():
    """Returns the folder of downloaded and converted models.

    Returns:
        str: ``$CHAINERCV_I3D_CACHE`` if set, else ``~/.cache/chainercv_i3d``
        (not created here).
    """
    return os.path.abspath(os.path.expanduser(
        os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR))


def make_dirs(path):
    """Creates the folder ``path`` (and its parents) if missing.

    Raises:
        CacheError: It cannot be created.
    """
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise CacheError('cannot create the folder {} ({}): set {} to a '
                         'writable folder'.format(path, e.strerror or e,
                                                  CACHE_ENV))


@contextlib.contextmanager
def file_lock(path, on_wait=None):
    """Holds an exclusive lock on the file ``path`` (created if missing).

    Blocks until no other process holds it. The lock file is left in place:
    removing it would let a waiting process lock a file that a newcomer no
    longer sees.

    Args:
        path (str): The lock file.
        on_wait (callable): Called without arguments before blocking, if
            another process holds the lock.

    Raises:
        CacheError: The lock file cannot be created.

    Example:

        >>> with file_lock(npz_path + '.lock'):
        ...     if not os.path.exists(npz_path):
        ...         build(npz_path)
    """
    make_dirs(os.path.dirname(os.path.abspath(path)))
    try:
        import fcntl
    except ImportError:  # not POSIX: atomic renames still keep files whole
        yield
        return
    try:
        f = open(path, 'a')
    except OSError as e:
        raise CacheError('cannot create the lock file {} ({}): set {} to a '
                         'writable folder'.format(path, e.strerror or e,
                                                  CACHE_ENV))
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_path(path):
    """:func:`chainercv_i3d.files.atomic_path` for a file of the cache:
    its folder is created first, with a :class:`CacheError` saying what to do
    if it cannot be."""
    make_dirs(os.path.dirname(os.path.abspath(path)))
    with files.atomic_path(path) as tmp:
        yield tmp


def sha256sum(path):
    """Returns the hex SHA-256 of the file ``path``."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def progress_bar(total, desc):
    """A tqdm byte counter, shown only when stderr is a terminal."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit='B', unit_scale=True,
                unit_divisor=1024, disable=not stderr_is_tty())


def stderr_is_tty():
    """Whether stderr is a terminal (progress is shown only there)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _copy_response(response, f, desc):
    length = response.headers.get('Content-Length')
    total = int(length) if length and length.isdigit() else None
    received = 0
    with progress_bar(total, desc) as bar:
        for chunk in iter(lambda: response.read(_CHUNK), b''):
            f.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    # A dropped connection can end the stream early without an exception.
    if total is not None and received != total:
        raise DownloadError('connection closed after {} of {} bytes'.format(
            received, total))


def download(url, path, timeout=DOWNLOAD_TIMEOUT):
    """Downloads ``url`` to ``path``, which appears only when complete.

    Args:
        url (str): What to download.
        path (str): Where to put it; its folder is created.
        timeout (float): Seconds to wait for the server before failing.

    Raises:
        DownloadError: The download failed (offline, HTTP error, cut short);
            nothing is left at ``path``. The message names the URL and says
            to put the file at ``path`` by hand.
    """
    try:
        with atomic_path(path) as tmp, open(tmp, 'wb') as f, \
                urllib.request.urlopen(url, timeout=timeout) as response:
            _copy_response(response, f, os.path.basename(path))
    except (OSError, http.client.HTTPException, DownloadError,
            ValueError) as e:
        # URLError and HTTPError are OSErrors; HTTPException: a broken
        # response; ValueError: a malformed URL.
        reason = _reason(e)
        raise DownloadError('cannot download {} ({}): put that file at {} '
                            'by hand'.format(url, reason, path), url, reason)


def _reason(error):
    reason = getattr(error, 'reason', None)  # URLError wraps the cause
    if isinstance(error, urllib.error.HTTPError):
        return 'HTTP {} {}'.format(error.code, error.reason)
    return str(reason or error) or type(error).__name__


def remove_tree(path):
    """Removes the folder ``path`` if it exists, ignoring errors."""
    shutil.rmtree(path, ignore_errors=True)
