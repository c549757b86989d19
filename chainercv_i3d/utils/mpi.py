"""MPI when the script runs under mpiexec, a one-process stand-in otherwise."""

import os
import sys

# Set by MPICH/Hydra, Open MPI and PMIx launchers in every rank.
_LAUNCHER_VARIABLES = ('PMI_RANK', 'PMI_SIZE', 'OMPI_COMM_WORLD_SIZE',
                       'PMIX_RANK')


def launched_by_mpiexec():
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


class SerialComm(object):
    """The communicator of a run without MPI: one rank."""

    rank = 0
    size = 1

    def barrier(self):
        pass

    def allgather(self, value):
        return [value]

    def bcast(self, value, root=0):
        return value

    def abort(self, code=1):
        sys.exit(code)


class MPIComm(object):
    """``MPI.COMM_WORLD`` with the few calls the scripts use."""

    def __init__(self):
        from mpi4py import MPI
        self._comm = MPI.COMM_WORLD
        self.rank = self._comm.Get_rank()
        self.size = self._comm.Get_size()

    def barrier(self):
        self._comm.barrier()

    def allgather(self, value):
        return self._comm.allgather(value)

    def bcast(self, value, root=0):
        return self._comm.bcast(value, root=root)

    def abort(self, code=1):
        # Ends every rank: one rank's fatal error must not leave others hanging.
        sys.stdout.flush()
        sys.stderr.flush()
        self._comm.Abort(code)


def rank_share(items, rank, size):
    """The items rank ``rank`` of ``size`` handles: every ``size``-th from
    ``rank``, so shares are disjoint, cover everything and differ in length
    by at most one (no padding duplicates)."""
    return list(items)[rank::size]


def sum_counts(comm, counts):
    """Sums dicts of counts over all ranks; every rank gets the totals."""
    totals = {}
    for rank_counts in comm.allgather(counts):
        for key, value in rank_counts.items():
            totals[key] = totals.get(key, 0) + value
    return totals


def get_comm():
    """Returns an MPI communicator under mpiexec, else a :class:`SerialComm`.

    Raises:
        ImportError: Launched by mpiexec but mpi4py is not installed.
    """
    if not launched_by_mpiexec():
        return SerialComm()
    try:
        return MPIComm()
    except ImportError as e:
        raise ImportError('running under mpiexec needs mpi4py ({}): pip '
                          'install "chainercv_i3d[mpi]"'.format(e))


def create_chainermn_communicator():
    """ChainerMN's ``naive`` communicator, for any number of ranks.

    Evaluation and feature extraction only gather small Python objects, so
    the communicator that needs neither NCCL nor GPUs serves CPU and GPU runs
    alike. Outside mpiexec it is a communicator of one rank.

    Raises:
        ImportError: mpi4py is not installed.
    """
    try:
        import chainermn
        return chainermn.create_communicator('naive')
    except ImportError as e:
        raise ImportError('ChainerMN needs mpi4py ({}): pip install '
                          '"chainercv_i3d[mpi]"'.format(e))


def abort_all_ranks(comm, code=1):
    """Ends every rank of a ChainerMN communicator now, never hanging."""
    sys.stdout.flush()
    sys.stderr.flush()
    comm.mpi_comm.Abort(code)
