import os
import stat

import pytest

from chainercv_i3d.files import atomic_path
from chainercv_i3d.files import make_writable_dir
from chainercv_i3d.files import remove_temporaries


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / 'out.npz'
    with pytest.raises(KeyError):
        with atomic_path(str(target)) as tmp:
            with open(tmp, 'wb') as f:
                f.write(b'half')
            raise KeyError('interrupted')
    assert os.listdir(str(tmp_path)) == []
    with atomic_path(str(target)) as tmp:
        with open(tmp, 'wb') as f:
            f.write(b'whole')
    assert os.listdir(str(tmp_path)) == ['out.npz']
    assert target.read_bytes() == b'whole'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_temporaries_of_a_killed_writer_are_found_and_only_they(tmp_path):
    target = str(tmp_path / 'a.zip')
    # A writer killed mid-way never leaves the context: its file stays.
    killed = atomic_path(target)
    left = killed.__enter__()
    open(left, 'wb').close()
    other_writer = atomic_path(str(tmp_path / 'b.zip'))  # still writing
    other = other_writer.__enter__()
    open(target, 'wb').close()
    (tmp_path / 'a.zip.notes.tmp').write_text('not ours')
    remove_temporaries(target)
    assert not os.path.exists(left)
    assert sorted(os.listdir(str(tmp_path))) == sorted(
        ['a.zip', 'a.zip.notes.tmp', os.path.basename(other)])


def test_a_missing_folder_is_an_error_not_created(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_path(str(tmp_path / 'missing' / 'a.zip')):
            pass
    assert not (tmp_path / 'missing').exists()


def test_make_writable_dir_creates_and_probes(tmp_path):
    folder = tmp_path / 'a' / 'b'
    make_writable_dir(str(folder))
    assert folder.is_dir() and list(folder.iterdir()) == []
    blocker = tmp_path / 'file'
    blocker.write_text('')
    with pytest.raises(OSError):
        make_writable_dir(str(blocker / 'out'))
