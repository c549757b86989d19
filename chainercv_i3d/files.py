"""Files that appear only whole: written under a temporary name beside
them, then renamed over the final name (a rename within a folder is
atomic), so that a reader, or a run resumed after a crash, never sees half a
file; and the folders they go into, checked before the work."""

import contextlib
import json
import os
import tempfile
import zipfile
import zlib


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write; renames it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    Missing folders above ``path`` are created, and removed again if the
    write fails (the output rule: nothing left behind by a failed run). A
    process killed meanwhile leaves the temporary file:
    :func:`remove_temporaries` finds it.

    Example:

        >>> with atomic_path('model.npz') as tmp:
        ...     chainer.serializers.save_npz(tmp, model)
    """
    folder, name = os.path.split(os.path.abspath(path))
    with created_folder(folder):
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(name),
                                   suffix='.tmp', dir=folder)
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


@contextlib.contextmanager
def created_folder(path):
    """Creates the folder ``path`` and its missing parents; if the block
    fails, removes those of them it created that are still empty, so that a
    failed run leaves no empty folders behind."""
    path = os.path.abspath(path)
    missing = []
    here = path
    while not os.path.isdir(here):
        missing.append(here)
        here = os.path.dirname(here)
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    except BaseException:
        for folder in missing:  # deepest first
            try:
                os.rmdir(folder)
            except OSError:  # not empty: something finished in it
                break
        raise


class OutputPathError(ValueError):
    """An output path that cannot be written: a folder where a file is
    expected (or the reverse), or a folder that refuses new files."""


def check_output_file(path):
    """Checks, before any work, that the file ``path`` can be written: it is
    not a folder, no existing part of its path is a file, and the deepest
    existing folder above it accepts new files. Creates nothing (the writer
    creates the missing folders, see :func:`atomic_path`).

    Returns:
        ``path``.

    Raises:
        OutputPathError: One line naming the path and what to do.
    """
    if os.path.isdir(path):
        raise OutputPathError(
            '{} is a folder; give a file name in it, such as {}'.format(
                path, os.path.join(path, 'results.json')))
    _check_writable_above(os.path.dirname(os.path.abspath(path)), path)
    return path


def check_output_dir(path):
    """:func:`check_output_file` for an output folder: it may exist (as a
    folder, not a file) or be created where its parents allow.

    Raises:
        OutputPathError: One line naming the path and what to do.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputPathError(
            '{} is a file, not a folder; give a folder (it is created when '
            'missing)'.format(path))
    _check_writable_above(os.path.abspath(path), path)
    return path


def _check_writable_above(folder, path):
    here = folder
    while not os.path.exists(here):
        here = os.path.dirname(here)
    if not os.path.isdir(here):
        raise OutputPathError(
            'cannot write {}: {} is a file, not a folder; choose another '
            'path or move that file aside'.format(path, here))
    try:
        with tempfile.TemporaryFile(dir=here):
            pass
    except OSError as e:
        raise OutputPathError('cannot write {}: the folder {} does not '
                              'accept new files ({}); choose another '
                              'path'.format(path, here, e.strerror or e))


def write_json(path, value, indent=2, sort_keys=False):
    """Writes ``value`` as JSON to ``path`` whole (:func:`atomic_path`:
    missing folders are created), ending with a newline."""
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        json.dump(value, f, indent=indent, sort_keys=sort_keys)
        f.write('\n')


def remove_temporaries(*paths):
    """Removes the temporary files that killed writers of ``paths``
    (through :func:`atomic_path`) left behind; each folder is listed once,
    however many of its files are given."""
    names_by_folder = {}
    for path in paths:
        folder, name = os.path.split(os.path.abspath(path))
        names_by_folder.setdefault(folder, set()).add(name)
    for folder, names in names_by_folder.items():
        try:
            entries = os.listdir(folder)
        except FileNotFoundError:
            continue
        for entry in entries:
            if _temporary_target(entry) in names:
                os.unlink(os.path.join(folder, entry))


def _temporary_target(entry):
    """The name of the file a temporary ``entry`` becomes, else ``None``."""
    if not (entry.startswith('.') and entry.endswith('.tmp')):
        return None
    # '.' + name + '.' + mkstemp's random letters (no dots) + '.tmp'
    target, dot, _ = entry[1:-len('.tmp')].rpartition('.')
    return target if dot else None


def _temporary_prefix(name):
    # Hidden, and named after the file it becomes.
    return '.' + name + '.'


# What numpy, zipfile and zlib raise on a damaged .npy or .npz: a truncated
# file, a bad CRC, a member cut short, a file that is not one at all.
DAMAGED_ARRAY_FILE = (OSError, ValueError, zipfile.BadZipFile, EOFError,
                      zlib.error)

# What to do about a damaged file, by what it is.
MODEL_ADVICE = ('give another model, or move it aside and make it again '
                '(examples/i3d/tfckpt2npz.py converts a checkpoint)')
SNAPSHOT_ADVICE = ('add --restart (restart=True) to start the run again from '
                   'iteration 0, or give another out_dir')


@contextlib.contextmanager
def reading_npz(path, advice):
    """Turns what reading the ``.npz`` ``path`` in the block raises when the
    file is damaged, or not what it should be, into one line: a ValueError
    naming the file, what is wrong with it and ``advice`` (what to do).

    Only the reading belongs in the block: any ValueError or KeyError in it
    is taken as a fault of the file.

    Example:

        >>> with reading_npz(path, MODEL_ADVICE):
        ...     chainer.serializers.load_npz(path, model)
    """
    try:
        yield
    except KeyError as e:  # numpy's NpzFile: no such member
        raise ValueError('{} lacks the array {} (a model of other layers, or '
                         'a file cut short): {}'.format(
                             path, _missing_key(e), advice))
    except DAMAGED_ARRAY_FILE as e:
        raise ValueError('{} {}: {}'.format(path, _damage(path, e), advice))


def _missing_key(error):
    # numpy says "<key> is not a file in the archive"; zipfile "There is no
    # item named '<key>' in the archive".
    text = str(error.args[0]) if error.args else ''
    return text.replace(' is not a file in the archive', '')


def _damage(path, error):
    """What is wrong with the file, in words (not numpy's)."""
    text = str(error)
    if isinstance(error, zipfile.BadZipFile) and 'CRC' in text:
        return 'is damaged ({}: its data do not match their checksum)'.format(
            text.replace('Bad CRC-32 for file ', '').strip("'"))
    if isinstance(error, (zipfile.BadZipFile, EOFError, zlib.error)) or \
            'pickle' in text:  # numpy tries pickle on what is not npy/npz
        if not os.path.isfile(path):
            return 'is not a file'
        if os.path.getsize(path) == 0:
            return 'is empty'
        with open(path, 'rb') as f:
            zip_start = f.read(2) == b'PK'
        return 'is truncated or damaged (its zip archive is incomplete)' \
            if zip_start else 'is not an .npz file'
    if isinstance(error, OSError):
        return 'cannot be read ({})'.format(error.strerror or error)
    return 'is damaged or not of the expected kind ({})'.format(text)


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
