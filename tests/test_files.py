import os
import stat

import numpy
import pytest

from chainercv_i3d.files import atomic_path
from chainercv_i3d.files import check_output_dir
from chainercv_i3d.files import check_output_file
from chainercv_i3d.files import created_folder
from chainercv_i3d.files import OutputPathError
from chainercv_i3d.files import reading_npz
from chainercv_i3d.files import remove_temporaries
from chainercv_i3d.files import write_json
from chainercv_i3d.testing.damaged_files import write_damaged_copies


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


def test_temporaries_of_many_files_in_several_folders(tmp_path):
    left = {}
    for name in ('x/v.1.zip', 'x/w.zip', 'y/v.1.zip', 'y/kept.zip'):
        os.makedirs(str(tmp_path / os.path.dirname(name)), exist_ok=True)
        left[name] = atomic_path(str(tmp_path / name)).__enter__()
        open(left[name], 'wb').close()
    remove_temporaries(*(str(tmp_path / name) for name in
                         ('x/v.1.zip', 'x/w.zip', 'y/v.1.zip', 'z/gone.zip')))
    assert os.listdir(str(tmp_path / 'x')) == []
    assert os.listdir(str(tmp_path / 'y')) == [
        os.path.basename(left['y/kept.zip'])]


def test_missing_folders_are_created_and_removed_on_failure(tmp_path):
    with pytest.raises(KeyError):
        with atomic_path(str(tmp_path / 'a' / 'b' / 'c.json')):
            raise KeyError('interrupted')
    assert os.listdir(str(tmp_path)) == []
    with atomic_path(str(tmp_path / 'a' / 'b' / 'c.json')) as tmp:
        open(tmp, 'w').close()
    assert os.listdir(str(tmp_path / 'a' / 'b')) == ['c.json']


def test_created_folder_keeps_a_folder_with_finished_work(tmp_path):
    with pytest.raises(KeyError):
        with created_folder(str(tmp_path / 'a' / 'b')) as folder:
            open(os.path.join(folder, 'done.npz'), 'w').close()
            raise KeyError('interrupted')
    assert os.listdir(str(tmp_path / 'a' / 'b')) == ['done.npz']


def test_check_output_file_names_a_folder_or_a_file_in_the_way(tmp_path):
    with pytest.raises(OutputPathError, match='is a folder; give a file'):
        check_output_file(str(tmp_path))
    blocker = tmp_path / 'results'
    blocker.write_text('')
    with pytest.raises(OutputPathError, match='results is a file, not a '
                       'folder'):
        check_output_file(str(blocker / 'sub' / 'out.json'))
    with pytest.raises(OutputPathError, match='is a file, not a folder'):
        check_output_dir(str(blocker))
    target = tmp_path / 'new' / 'out.json'
    assert check_output_file(str(target)) == str(target)
    assert check_output_dir(str(tmp_path / 'new')) == str(tmp_path / 'new')
    assert os.listdir(str(tmp_path)) == ['results']  # nothing created


def test_check_output_file_probes_the_folder(tmp_path, monkeypatch):
    # As root every folder is writable, so a refusing folder is simulated.
    def refuse(*args, **kwargs):
        raise PermissionError(13, 'Permission denied')
    monkeypatch.setattr('tempfile.TemporaryFile', refuse)
    with pytest.raises(OutputPathError, match='does not accept new files '
                       r'\(Permission denied\)'):
        check_output_file(str(tmp_path / 'out.json'))


def test_write_json_makes_its_folders(tmp_path):
    """demo --json, evaluate_sample --json and fvd --json wrote with
    open(): a missing folder, which output_file accepts, failed at the
    end of the run."""
    path = tmp_path / 'new' / 'sub' / 'r.json'
    write_json(str(path), {'a': [1]})
    assert path.read_text() == '{\n  "a": [\n    1\n  ]\n}\n'
    assert os.listdir(str(path.parent)) == ['r.json']


@pytest.fixture(scope='module')
def damaged(tmp_path_factory):
    folder = tmp_path_factory.mktemp('damaged')
    good = str(folder / 'good.npz')
    numpy.savez(good, a=numpy.arange(1000.0), b=numpy.ones(3))
    return write_damaged_copies(good, folder, 'a')


@pytest.mark.parametrize('kind, says', [
    ('bad_crc', 'is damaged (a.npy: its data do not match their checksum)'),
    ('truncated', 'is truncated or damaged'),
    ('missing', 'lacks the array a'),
    ('text', 'is not an .npz file')])
def test_reading_npz_says_what_is_wrong_in_one_line(damaged, kind, says):
    with pytest.raises(ValueError) as error:
        with reading_npz(damaged[kind], 'do this'):
            with numpy.load(damaged[kind], allow_pickle=False) as npz:
                npz['a'], npz['b']
    message = str(error.value)
    assert message.startswith('{} {}'.format(damaged[kind], says))
    assert message.endswith(': do this') and '\n' not in message
    assert 'pickle' not in message


def test_reading_npz_says_a_file_is_empty(tmp_path):
    path = tmp_path / 'model.npz'
    path.write_bytes(b'')
    with pytest.raises(ValueError, match='^{} is empty: do this$'.format(
            path)):
        with reading_npz(str(path), 'do this'):
            numpy.load(str(path), allow_pickle=False)
