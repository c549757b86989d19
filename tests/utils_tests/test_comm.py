"""get_comm: one communicator for every script, alone and under mpiexec."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import types

import pytest

from chainercv_i3d.utils import comm as comm_module
from chainercv_i3d.utils.comm import choose_chainermn_communicator
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


# One rule for the ChainerMN communicator.

def never_called():
    raise AssertionError('probed although it does not matter')


@pytest.mark.parametrize('on_gpu, chosen', [(True, 'pure_nccl'),
                                            (False, 'naive')])
def test_default_communicator_is_pure_nccl_on_gpus(on_gpu, chosen):
    assert choose_chainermn_communicator(
        None, on_gpu, cuda_aware_mpi=never_called,
        nccl_available=lambda: True) == chosen


@pytest.mark.parametrize('name', ['naive', 'flat'])
def test_gpu_memory_through_mpi_needs_a_cuda_aware_mpi(name, monkeypatch):
    monkeypatch.setattr(comm_module, 'mpi_library_name',
                        lambda: 'MPICH Version: 5.0.2')
    with pytest.raises(ValueError) as error:
        choose_chainermn_communicator(name, True,
                                      cuda_aware_mpi=lambda: False)
    message = str(error.value)
    assert '\n' not in message
    assert 'CUDA-aware' in message and 'MPICH Version: 5.0.2' in message
    assert 'pure_nccl' in message and 'CHAINERCV_I3D_CUDA_AWARE_MPI' in message
    assert choose_chainermn_communicator(
        name, True, cuda_aware_mpi=lambda: True) == name


@pytest.mark.parametrize('name', ['naive', 'flat'])
def test_cpu_communicators_do_not_ask_the_mpi(name):
    assert choose_chainermn_communicator(
        name, False, cuda_aware_mpi=never_called,
        nccl_available=never_called) == name


@pytest.mark.parametrize('name', ['pure_nccl', 'non_cuda_aware'])
def test_nccl_communicators_are_refused_on_the_cpu(name):
    with pytest.raises(ValueError, match='GPUs only.*naive'):
        choose_chainermn_communicator(name, False)


@pytest.mark.parametrize('name', [None, 'pure_nccl', 'non_cuda_aware'])
def test_nccl_communicators_need_nccl(name):
    with pytest.raises(ValueError, match=r'needs NCCL.*chainercv_i3d\[gpu'):
        choose_chainermn_communicator(name, True,
                                      nccl_available=lambda: False)


def test_unknown_communicator_lists_the_known_ones():
    with pytest.raises(ValueError, match='naive, flat, non_cuda_aware, '
                       'pure_nccl'):
        choose_chainermn_communicator('hierarchical', True)


class RanksOn(object):
    """Stands in for a communicator whose ranks report (node, gpu)."""

    def __init__(self, *keys):
        self.keys = keys

    def allgather(self, obj):
        return [obj if key is None else key for key in self.keys]


def test_ranks_sharing_a_gpu_are_found():
    assert comm_module.ranks_sharing_a_gpu(
        RanksOn(('a', 0), ('a', 1), ('b', 0), ('b', 1)), 0) is None
    assert comm_module.ranks_sharing_a_gpu(
        RanksOn(('a', 0), ('b', 0), ('a', 1), ('b', 0)), 0) == (1, 3, 'b', 0)
    # This rank's own key is what it gives (None: use the argument).
    node = comm_module.platform.node()
    assert comm_module.ranks_sharing_a_gpu(
        RanksOn((node, 0), None), 0) == (0, 1, node, 0)


@pytest.mark.parametrize('name', [None, 'pure_nccl', 'non_cuda_aware'])
def test_nccl_communicators_refuse_ranks_sharing_a_gpu(name):
    with pytest.raises(ValueError) as error:
        choose_chainermn_communicator(name, True, nccl_available=lambda: True,
                                      shared_gpu=(0, 1, 'node7', 0))
    message = str(error.value)
    assert 'ranks 0 and 1 both train on GPU 0 of node7' in message
    assert 'a GPU per rank' in message and '\n' not in message
    assert choose_chainermn_communicator(
        'naive', True, cuda_aware_mpi=lambda: True,
        shared_gpu=(0, 1, 'node7', 0)) == 'naive'


def test_cuda_aware_mpi_can_be_declared(monkeypatch):
    monkeypatch.setenv('CHAINERCV_I3D_CUDA_AWARE_MPI', '1')
    assert comm_module.mpi_is_cuda_aware()


def test_abort_waits_until_the_output_is_read():
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b'the reason')
        reader = threading.Timer(0.3, os.read, (read_end, 100))
        reader.start()
        start = time.monotonic()
        comm_module._wait_until_output_read((write_end,), timeout=30)
        assert 0.2 < time.monotonic() - start < 10
        assert comm_module._unread_bytes(write_end) == 0
        # Nobody reads: the wait ends at its timeout.
        os.write(write_end, b'unread')
        start = time.monotonic()
        comm_module._wait_until_output_read((write_end,), timeout=0.3)
        assert 0.2 < time.monotonic() - start < 10
        assert comm_module._unread_bytes(write_end) == 6
    finally:
        reader.join()
        os.close(read_end)
        os.close(write_end)


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
from chainercv_i3d.utils.comm import mpi_is_cuda_aware, mpi_library_name
result['cuda_aware'] = mpi_is_cuda_aware()
result['mpi_library'] = mpi_library_name()
chainermn = comm.chainermn
result['chainermn'] = [chainermn.rank, chainermn.size, chainermn.intra_rank]
comm.barrier()
with open('{}.{}'.format(sys.argv[1], comm.rank), 'w') as f:
    json.dump(result, f)
'''

ABORT = '''
import os
import subprocess
import sys
import time

from chainercv_i3d.utils.comm import get_comm


def state(pid):
    with open('/proc/{}/stat'.format(pid)) as f:
        return f.read().rsplit(')', 1)[1].split()[0]


comm = get_comm()
if comm.rank == 1:
    if sys.argv[1:] == ['slow_launcher']:
        # The launcher's process that reads this rank's output stops for
        # 2 s (as on a loaded machine) before the message is written.
        launcher = os.getppid()
        subprocess.Popen(['sh', '-c', 'kill -STOP {0}; sleep 2; '
                          'kill -CONT {0}'.format(launcher)],
                         start_new_session=True)
        while state(launcher) != 'T':
            time.sleep(0.01)
    print('rank 1 gives up')  # buffered: abort must flush it
    sys.stderr.write('rank 1 says why\\n')
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
        # The MPICH wheel answers MPIX_Query_cuda_support: not CUDA-aware,
        # which is why naive is refused on GPUs.
        if got['mpi_library'].startswith('MPICH'):
            assert got['cuda_aware'] is False
    assert ranks[0]['gather_0'] == [0, 10]
    assert ranks[1]['gather_0'] is None
    assert ranks[0]['gather_1'] is None
    assert ranks[1]['gather_1'] == [0, 10]


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize('launcher', ['normal', 'slow_launcher'])
def test_abort_on_one_rank_ends_both(mpiexec, tmp_path, launcher):
    start = time.monotonic()
    # A hang would raise TimeoutExpired here and fail the test.
    result = run_under_mpiexec(mpiexec, tmp_path, ABORT, launcher,
                               timeout=60)
    assert result.returncode != 0
    # The abort waits until the launcher has read both.
    assert 'rank 1 gives up' in result.stdout
    assert 'rank 1 says why' in result.stderr
    assert 'went past the barrier' not in result.stdout
    assert time.monotonic() - start < 60
