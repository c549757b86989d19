"""get_comm: one communicator for every script, alone and under mpiexec."""

import json
import subprocess
import sys
import textwrap
import time
import types

import pytest

from chainercv_i3d.utils import comm as comm_module
from chainercv_i3d.utils.comm import get_comm
from chainercv_i3d.utils.comm import launched_by_mpiexec
from chainercv_i3d.utils.comm import node_local_rank
from chainercv_i3d.utils.comm import rank_share
from chainercv_i3d.utils.comm import SerialComm
from chainercv_i3d.utils.comm import sum_counts
from tests.conftest import ROOT

INSTALL_HINT = r'pip install "chainercv_i3d\[mpi\]"'
LAUNCHER_VARIABLES = ('PMI_RANK', 'PMI_SIZE', 'OMPI_COMM_WORLD_SIZE',
                      'PMIX_RANK')


@pytest.fixture
def alone(monkeypatch):
    """An environment no MPI launcher has touched."""
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_alone_one_rank_without_mpi4py(alone):
    # In a fresh interpreter: this one may have imported mpi4py already.
    code = textwrap.dedent('''
        import sys
        from chainercv_i3d.utils.comm import get_comm
        comm = get_comm()
        print(type(comm).__name__, comm.rank, comm.size, comm.intra_rank)
        print(sorted(m for m in ('mpi4py', 'chainermn',
                                 'chainercv_i3d.links',
                                 'chainercv_i3d.utils.device')
                     if m in sys.modules))
    ''')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['SerialComm 0 1 0', '[]']


def test_launcher_variables(alone, monkeypatch):
    assert not launched_by_mpiexec()
    for name in LAUNCHER_VARIABLES:
        with monkeypatch.context() as patch:
            patch.setenv(name, '0')
            assert launched_by_mpiexec()


def test_serial_collectives(alone):
    comm = get_comm()
    assert isinstance(comm, SerialComm)
    value = {'videos': ['a', 'b']}
    assert comm.barrier() is None
    assert comm.allgather(value) == [value]
    assert comm.gather(value) == [value]
    assert comm.gather(value, root=0) == [value]
    assert comm.bcast(value) is value


@pytest.mark.parametrize('root', [1, -1])
def test_serial_root_must_be_a_rank(root):
    comm = SerialComm()
    with pytest.raises(ValueError, match='root must be a rank from 0 to 0'):
        comm.gather(1, root=root)
    with pytest.raises(ValueError, match='root must be a rank'):
        comm.bcast(1, root=root)


def test_serial_abort_exits_with_the_code():
    with pytest.raises(SystemExit) as raised:
        SerialComm().abort(3)
    assert raised.value.code == 3


def test_under_mpiexec_without_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setenv('PMI_RANK', '0')
    monkeypatch.setitem(sys.modules, 'mpi4py', None)
    with pytest.raises(ImportError, match=INSTALL_HINT):
        get_comm()


class StandInChainerMN(object):
    """Records the communicators asked of it."""

    def __init__(self):
        self.created = []

    def create_communicator(self, name, mpi_comm=None):
        self.created.append((name, mpi_comm))
        return types.SimpleNamespace(name=name)


@pytest.fixture
def chainermn(monkeypatch):
    stand_in = StandInChainerMN()
    monkeypatch.setattr(comm_module, '_import_chainermn', lambda: stand_in)
    return stand_in


def test_chainermn_is_naive_and_created_once(chainermn):
    comm = SerialComm()
    assert chainermn.created == []
    first = comm.chainermn
    assert comm.chainermn is first
    assert first.name == 'naive'
    assert chainermn.created == [('naive', None)]


def test_chainermn_of_a_chosen_kind(chainermn):
    comm = SerialComm()
    chosen = comm.create_chainermn('pure_nccl')
    assert comm.chainermn is chosen
    assert comm.create_chainermn('pure_nccl') is chosen
    with pytest.raises(ValueError, match="'pure_nccl'.*already exists"):
        comm.create_chainermn('naive')
    assert [name for name, _ in chainermn.created] == ['pure_nccl']


def test_chainermn_missing_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'chainermn', None)
    with pytest.raises(ImportError, match=INSTALL_HINT):
        SerialComm().chainermn


def test_node_local_rank_counts_lower_ranks_on_the_same_node():
    names = ['a', 'b', 'a', 'a', 'b', 'c']
    assert [node_local_rank(names, r) for r in range(len(names))] == [
        0, 0, 1, 2, 1, 0]


def test_rank_shares_are_disjoint_and_cover_everything_once():
    items = ['v{}'.format(i) for i in range(10)]
    for size in (1, 2, 3, 4, 11):
        shares = [rank_share(items, rank, size) for rank in range(size)]
        assert sorted(sum(shares, [])) == sorted(items)
        lengths = [len(share) for share in shares]
        assert max(lengths) - min(lengths) <= 1


def test_sum_counts_adds_every_ranks_counts():
    class ThreeRanks(SerialComm):
        def allgather(self, obj):
            return [obj, {'done': 2, 'failed': 1}, {'skipped': 4}]

    assert sum_counts(ThreeRanks(), {'done': 1}) == {
        'done': 3, 'failed': 1, 'skipped': 4}
    assert sum_counts(SerialComm(), {'done': 5}) == {'done': 5}


# Under mpiexec: two ranks on this one node.

COLLECTIVES = '''
import json
import os
import sys

from chainercv_i3d.utils.comm import get_comm
from chainercv_i3d.utils.comm import MPIComm

comm = get_comm()
result = {
    'kind': type(comm).__name__,
    'rank': comm.rank, 'size': comm.size, 'intra_rank': comm.intra_rank,
    'launcher_local_rank': os.environ.get('MPI_LOCALRANKID'),
    'allgather': comm.allgather('r{}'.format(comm.rank)),
    'gather_0': comm.gather(comm.rank * 10),
    'gather_1': comm.gather(comm.rank * 10, root=1),
    'bcast_1': comm.bcast('from {}'.format(comm.rank), root=1),
}
chainermn = comm.chainermn
result['chainermn'] = [chainermn.rank, chainermn.size, chainermn.intra_rank]
comm.barrier()
with open('{}.{}'.format(sys.argv[1], comm.rank), 'w') as f:
    json.dump(result, f)
'''

ABORT = '''
import sys
import time

from chainercv_i3d.utils.comm import get_comm

comm = get_comm()
if comm.rank == 1:
    print('rank 1 gives up')  # buffered: abort must flush it
    comm.abort(7)
comm.barrier()  # rank 0 would wait here forever without the abort
print('rank 0 went past the barrier')
'''


def run_under_mpiexec(mpiexec, tmp_path, script, *args, timeout):
    path = tmp_path / 'script.py'
    path.write_text(script)
    return subprocess.run(
        [mpiexec, '-n', '2', sys.executable, str(path)] + list(args),
        capture_output=True, text=True, cwd=ROOT, timeout=timeout)


@pytest.mark.slow
@pytest.mark.mpi
def test_two_ranks_collectives(mpiexec, tmp_path):
    out = str(tmp_path / 'result')
    result = run_under_mpiexec(mpiexec, tmp_path, COLLECTIVES, out,
                               timeout=180)
    assert result.returncode == 0, result.stderr
    ranks = []
    for rank in range(2):
        with open('{}.{}'.format(out, rank)) as f:
            ranks.append(json.load(f))
    for rank, got in enumerate(ranks):
        assert got['kind'] == 'MPIComm'
        assert (got['rank'], got['size']) == (rank, 2)
        # One node: the node-local index is the rank, as Hydra and
        # ChainerMN say too.
        assert got['intra_rank'] == rank
        if got['launcher_local_rank'] is not None:
            assert int(got['launcher_local_rank']) == rank
        assert got['chainermn'] == [rank, 2, rank]
        assert got['allgather'] == ['r0', 'r1']
        assert got['bcast_1'] == 'from 1'
    assert ranks[0]['gather_0'] == [0, 10]
    assert ranks[1]['gather_0'] is None
    assert ranks[0]['gather_1'] is None
    assert ranks[1]['gather_1'] == [0, 10]


@pytest.mark.slow
@pytest.mark.mpi
def test_abort_on_one_rank_ends_both(mpiexec, tmp_path):
    start = time.monotonic()
    # A hang would raise TimeoutExpired here and fail the test.
    result = run_under_mpiexec(mpiexec, tmp_path, ABORT, timeout=60)
    assert result.returncode != 0
    assert 'rank 1 gives up' in result.stdout
    assert 'went past the barrier' not in result.stdout
    assert time.monotonic() - start < 60
