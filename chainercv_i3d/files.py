"""Files that appear only whole: written under a temporary name beside
them, then renamed over the final name (a rename within a folder is
atomic), so that a reader, or a run resumed after a crash, never sees half a
file; and the folders they go into, checked before the work."""

import contextlib
import glob
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; renames it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    The folder of ``path`` must exist. A process killed meanwhile leaves the
    temporary file: :func:`remove_temporaries` finds it.

    Example:

        >>> with atomic_path('model.npz') as tmp:
        ...     chainer.serializers.save_npz(tmp, model)
    """
    folder, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(name), suffix='.tmp',
                               dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; ours are not
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_temporaries(path):
    """Removes the temporary files that killed writers of ``path`` (through
    :func:`atomic_path`) left behind."""
    folder, name = os.path.split(os.path.abspath(path))
    pattern = glob.escape(_temporary_prefix(name)) + '*.tmp'
    for tmp in glob.glob(os.path.join(glob.escape(folder), pattern)):
        os.unlink(tmp)


def _temporary_prefix(name):
    # Hidden, and named after the file it becomes.
    return '.' + name + '.'


def make_writable_dir(path):
    """Creates the folder ``path`` if needed and writes (and removes) a
    probe file in it: called before long work, so that a folder that cannot
    be written fails the run at its start, not at its end.

    Raises:
        OSError: The folder cannot be created or written to.
    """
    os.makedirs(path, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass


def stored_settings_differences(path, now):
    """:func:`settings_differences` between the settings stored at ``path``
    (JSON) and ``now``; None when ``path`` does not exist."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return settings_differences(json.load(f), now)


def settings_differences(before, now, prefix=''):
    """What differs between two recorded settings (nested dicts), as
    ``'key: <before> there, <now> now'`` lines: why a run may not resume."""
    found = []
    for key in sorted(set(before) | set(now)):
        a, b = before.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found.extend(settings_differences(a, b, prefix + key + '.'))
        elif a != b:
            found.append('{}{}: {!r} there, {!r} now'.format(
                prefix, key, a, b))
    return found
