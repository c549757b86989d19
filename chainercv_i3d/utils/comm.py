"""One communicator for every script: MPI under mpiexec, one rank otherwise.

Every script calls :func:`get_comm` once and uses the same small interface
(``rank``, ``size``, ``intra_rank``, ``barrier``, ``allgather``, ``gather``,
``bcast``, ``abort``; ``post`` and ``receive`` for small messages that must
not make a rank wait, such as progress) whether it runs alone or under
``mpiexec``. Training
needs ChainerMN's own communicator (gradient all-reduce); ``comm.chainermn``
creates it on first use, over the same ranks.

Importing this module imports neither mpi4py nor chainer: mpi4py starts MPI
when it is imported, which must happen only under mpiexec, and ChainerMN
(which imports chainer) is an optional heavy dependency.
"""

import fcntl
import os
import platform
import stat
import struct
import sys
import termios
import time

# Set by MPICH/Hydra, Open MPI and PMIx launchers in every rank.
_LAUNCHER_VARIABLES = ('PMI_RANK', 'PMI_SIZE', 'OMPI_COMM_WORLD_SIZE',
                       'PMIX_RANK')

_INSTALL_HINT = 'pip install "chainercv_i3d[mpi]"'

# The longest wait for the launcher to read a rank's last output before its
# abort: it reads at once unless it is stuck.
ABORT_FORWARD_TIMEOUT = 30


def launched_by_mpiexec():
    """Whether an MPI launcher started this process."""
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


class Comm(object):
    """What every script sees of its communicator.

    Use :func:`get_comm` to make one; :class:`SerialComm` and
    :class:`MPIComm` are its two kinds.

    Attributes:
        rank (int): This process's index among all ranks, from 0.
        size (int): The number of ranks.
        intra_rank (int): This process's index among the ranks on its node,
            counted in rank order (ChainerMN's rule); it picks the GPU.
    """

    def __init__(self, rank, size, intra_rank):
        self.rank = rank
        self.size = size
        self.intra_rank = intra_rank
        self._chainermn = None
        self._chainermn_name = None

    def barrier(self):
        """Waits until every rank has called it."""
        raise NotImplementedError

    def allgather(self, obj):
        """Returns the list of every rank's ``obj``, in rank order, on all
        ranks."""
        raise NotImplementedError

    def gather(self, obj, root=0):
        """Returns the list of every rank's ``obj``, in rank order, on rank
        ``root`` and None on the others.

        Raises:
            ValueError: ``root`` is not a rank.
        """
        raise NotImplementedError

    def bcast(self, obj, root=0):
        """Returns rank ``root``'s ``obj`` on every rank.

        Raises:
            ValueError: ``root`` is not a rank.
        """
        raise NotImplementedError

    def post(self, obj, dest, tag):
        """Sends ``obj`` to rank ``dest`` without waiting for it to be
        received; :meth:`wait_posted` waits for every message posted."""
        raise NotImplementedError

    def wait_posted(self):
        """Waits until every message :meth:`post` sent has been received."""
        raise NotImplementedError

    def receive(self, tag, block=True):
        """A message of ``tag`` from any rank: ``(source, obj)``; when
        ``block`` is False, None if none has arrived yet."""
        raise NotImplementedError

    def abort(self, code=1):
        """Flushes stdout and stderr and ends every rank now with ``code``.

        Never returns and never waits for the other ranks.
        """
        raise NotImplementedError

    @property
    def chainermn(self):
        """ChainerMN's communicator over the same ranks.

        Created on first use; ``naive`` (CPU and GPU, no NCCL) unless
        :meth:`create_chainermn` chose another kind first.

        Raises:
            ImportError: ChainerMN cannot be imported (mpi4py is missing).
        """
        if self._chainermn is None:
            self.create_chainermn('naive')
        return self._chainermn

    def create_chainermn(self, name='naive'):
        """Creates the ChainerMN communicator ``comm.chainermn`` returns.

        Call it before the first use of ``comm.chainermn`` to choose another
        kind than ``naive``, e.g. ``pure_nccl`` for multi-GPU training. Calling
        it again with the same name returns the same communicator.

        Args:
            name (str): A ChainerMN communicator name: ``naive``, ``flat``,
                ``non_cuda_aware`` or ``pure_nccl``.

        Returns:
            The ChainerMN communicator.

        Raises:
            ValueError: A communicator of another kind already exists.
            ImportError: ChainerMN cannot be imported (mpi4py is missing).
        """
        if self._chainermn is not None:
            if name != self._chainermn_name:
                raise ValueError(
                    'a {!r} ChainerMN communicator already exists; create '
                    'the {!r} one before the first use of comm.chainermn'
                    .format(self._chainermn_name, name))
            return self._chainermn
        chainermn = _import_chainermn()
        self._chainermn = chainermn.create_communicator(
            name, mpi_comm=self._mpi_comm_for_chainermn())
        self._chainermn_name = name
        return self._chainermn

    def _mpi_comm_for_chainermn(self):
        """The mpi4py communicator ChainerMN wraps (None: its default)."""
        return None

    def _check_root(self, root):
        if not 0 <= root < self.size:
            raise ValueError('root must be a rank from 0 to {}, not {!r}'
                             .format(self.size - 1, root))

    def __repr__(self):
        return '{}(rank={}, size={}, intra_rank={})'.format(
            type(self).__name__, self.rank, self.size, self.intra_rank)


class SerialComm(Comm):
    """The communicator of a run without mpiexec: one rank."""

    def __init__(self):
        super(SerialComm, self).__init__(rank=0, size=1, intra_rank=0)
        self._inbox = []

    def post(self, obj, dest, tag):
        self._check_root(dest)
        self._inbox.append((tag, obj))

    def wait_posted(self):
        pass

    def receive(self, tag, block=True):
        for n, (message_tag, obj) in enumerate(self._inbox):
            if message_tag == tag:
                del self._inbox[n]
                return 0, obj
        if block:
            raise RuntimeError('one rank waits for a message nobody sent')
        return None

    def barrier(self):
        pass

    def allgather(self, obj):
        return [obj]

    def gather(self, obj, root=0):
        self._check_root(root)
        return [obj]

    def bcast(self, obj, root=0):
        self._check_root(root)
        return obj

    def abort(self, code=1):
        _flush_output()
        sys.exit(code)


class MPIComm(Comm):
    """An mpi4py communicator (``MPI.COMM_WORLD`` by default).

    Creating one is collective: every rank must create it at the same point,
    since finding ``intra_rank`` gathers every rank's node name.

    Args:
        mpi_comm: An mpi4py communicator; None for ``MPI.COMM_WORLD``.

    Raises:
        ImportError: mpi4py is not installed.
    """

    def __init__(self, mpi_comm=None):
        from mpi4py import MPI  # starts MPI: only ever under mpiexec
        if mpi_comm is None:
            mpi_comm = MPI.COMM_WORLD
        self._mpi = MPI
        self._mpi_comm = mpi_comm
        self._posted = []
        node_names = mpi_comm.allgather(MPI.Get_processor_name())
        rank = mpi_comm.Get_rank()
        super(MPIComm, self).__init__(
            rank=rank, size=mpi_comm.Get_size(),
            intra_rank=node_local_rank(node_names, rank))

    def barrier(self):
        self._mpi_comm.barrier()

    def allgather(self, obj):
        return self._mpi_comm.allgather(obj)

    def gather(self, obj, root=0):
        self._check_root(root)
        return self._mpi_comm.gather(obj, root=root)

    def bcast(self, obj, root=0):
        self._check_root(root)
        return self._mpi_comm.bcast(obj, root=root)

    def post(self, obj, dest, tag):
        self._posted.append(self._mpi_comm.isend(obj, dest=dest, tag=tag))

    def wait_posted(self):
        for request in self._posted:
            request.wait()
        self._posted = []

    def receive(self, tag, block=True):
        status = self._mpi.Status()
        anyone = self._mpi.ANY_SOURCE
        if not block and not self._mpi_comm.iprobe(source=anyone, tag=tag):
            return None
        obj = self._mpi_comm.recv(source=anyone, tag=tag, status=status)
        return status.Get_source(), obj

    def abort(self, code=1):
        # Ends every rank: one rank's fatal error must not leave the others
        # waiting forever in a collective call.
        _flush_output()
        # The launcher reads a rank's output from pipes and its abort from
        # another channel, and kills every process once the abort arrives:
        # the last lines (the reason for the abort) were lost in one CI run.
        # Once it has read them it has also passed them on, before it reads
        # the abort (Hydra's proxy forwards what it reads at once, to the
        # same connection as the abort).
        _wait_until_output_read()
        self._mpi_comm.Abort(code)
        # MPICH 5 returns from MPI_Abort and lets the process run on until
        # the launcher kills it (measured: a barrier after it completed);
        # ending this process now is what makes the launcher end the rest.
        os._exit(code)

    def _mpi_comm_for_chainermn(self):
        return self._mpi_comm


def get_comm():
    """Returns the communicator of this run.

    Under mpiexec an :class:`MPIComm` over ``MPI.COMM_WORLD`` (a collective
    call: every rank must call it); otherwise a :class:`SerialComm`, without
    importing mpi4py.

    Raises:
        ImportError: Launched by mpiexec but mpi4py is not installed.
    """
    if not launched_by_mpiexec():
        return SerialComm()
    try:
        return MPIComm()
    except ImportError as e:
        raise ImportError('running under mpiexec needs mpi4py ({}): {}'
                          .format(e, _INSTALL_HINT))


def node_local_rank(node_names, rank):
    """The index of ``rank`` among the ranks on its node, in rank order.

    This is ChainerMN's ``intra_rank`` rule, so both communicators agree.

    Args:
        node_names (list of str): Every rank's node name, in rank order.
        rank (int): The rank to place.

    Returns:
        int: How many lower ranks share ``rank``'s node.
    """
    return node_names[:rank].count(node_names[rank])


def rank_share(items, rank, size):
    """The items rank ``rank`` of ``size`` handles.

    Every ``size``-th item from ``rank``, so shares are disjoint, cover
    everything and differ in length by at most one (no padding duplicates,
    which would bias metrics).

    Args:
        items (iterable): Everything to share out, in the same order on every
            rank.
        rank (int): The rank whose share to return.
        size (int): The number of ranks.

    Returns:
        list: The share of ``rank``.
    """
    return list(items)[rank::size]


def sum_counts(comm, counts):
    """Sums dicts of counts over all ranks (a collective call).

    Args:
        comm (Comm): The communicator.
        counts (dict): This rank's counts, e.g. ``{'done': 3, 'failed': 1}``.

    Returns:
        dict: Every key any rank counted, with the sum over ranks; the same
        on every rank.
    """
    totals = {}
    for rank_counts in comm.allgather(counts):
        for key, value in rank_counts.items():
            totals[key] = totals.get(key, 0) + value
    return totals


# ------------------------------------------------ ChainerMN communicators

CHAINERMN_COMMUNICATORS = ('naive', 'flat', 'non_cuda_aware', 'pure_nccl')
# These hand GPU buffers to MPI itself: on GPUs they need a CUDA-aware MPI.
NEEDS_CUDA_AWARE_MPI = ('naive', 'flat')
# These all-reduce with NCCL: GPUs only.
NEEDS_NCCL = ('non_cuda_aware', 'pure_nccl')
# Set to 1 to use naive or flat on GPUs with a CUDA-aware MPI that cannot be
# asked (no MPIX_Query_cuda_support).
CUDA_AWARE_MPI_VARIABLE = 'CHAINERCV_I3D_CUDA_AWARE_MPI'
_NCCL_HINT = ('pip install "chainercv_i3d[gpu]" (CUDA 12) or '
              '"chainercv_i3d[gpu-cuda13]" (CUDA 13) brings NCCL')


def choose_chainermn_communicator(name, on_gpu, cuda_aware_mpi=None,
                                  nccl_available=None, shared_gpu=None):
    """The ChainerMN communicator a run uses, by one rule for every script.

    None picks ``pure_nccl`` on GPUs (NCCL; any MPI starts it) and ``naive``
    on the CPU. On GPUs ``naive`` and ``flat`` pass device memory to MPI, so
    they are refused unless the MPI is CUDA-aware (the MPICH wheel is not);
    ``non_cuda_aware`` (NCCL within a node, MPI through host memory across
    nodes) is the choice for several nodes without one. NCCL (since 2.5)
    refuses two ranks on one GPU, so the NCCL communicators are refused when
    ranks share a GPU (:func:`ranks_sharing_a_gpu`), and on the CPU.

    Args:
        name (str): A name from :data:`CHAINERMN_COMMUNICATORS`, or None.
        on_gpu (bool): The ranks train on GPUs.
        cuda_aware_mpi (callable): Returns True when the MPI takes device
            memory (default :func:`mpi_is_cuda_aware`); called only when
            it matters.
        nccl_available (callable): Returns True when CuPy can use NCCL
            (default :func:`cupy_has_nccl`); called only when it matters.
        shared_gpu (tuple): ``(rank, other_rank, node, gpu)`` when two ranks
            train on one GPU (:func:`ranks_sharing_a_gpu`), else None.

    Returns:
        str: The communicator's name.

    Raises:
        ValueError: An unknown name, or one that cannot work here; the
            message is one line saying what to use instead.
    """
    if name is None:
        name = 'pure_nccl' if on_gpu else 'naive'
    if name not in CHAINERMN_COMMUNICATORS:
        raise ValueError('unknown ChainerMN communicator {!r}: give one of '
                         '{}'.format(name, ', '.join(CHAINERMN_COMMUNICATORS)))
    if not on_gpu:
        if name in NEEDS_NCCL:
            raise ValueError(
                'the {} communicator all-reduces with NCCL, on GPUs only: '
                'use --communicator naive on the CPU (or --device gpu)'
                .format(name))
        return name
    if name in NEEDS_CUDA_AWARE_MPI:
        if not (cuda_aware_mpi or mpi_is_cuda_aware)():
            raise ValueError(
                'the {} communicator hands GPU memory to MPI, which needs a '
                'CUDA-aware MPI, and this one ({}) is not (or cannot say; '
                'set {}=1 if it is): use --communicator pure_nccl, the '
                'default on GPUs, or non_cuda_aware across nodes'.format(
                    name, mpi_library_name(), CUDA_AWARE_MPI_VARIABLE))
    if name in NEEDS_NCCL and shared_gpu:
        raise ValueError(
            'ranks {} and {} both train on GPU {gpu} of {node}, and NCCL '
            'needs a GPU per rank: start at most as many ranks per node as '
            'it has GPUs (ranks can share a GPU only with a CUDA-aware MPI '
            'and --communicator naive)'.format(
                *shared_gpu[:2], node=shared_gpu[2], gpu=shared_gpu[3]))
    if name in NEEDS_NCCL and not (nccl_available or cupy_has_nccl)():
        raise ValueError('the {} communicator needs NCCL, which CuPy cannot '
                         'load: {}'.format(name, _NCCL_HINT))
    return name


def ranks_sharing_a_gpu(comm, gpu_id):
    """The first two ranks that train on one GPU of one node (a collective
    call).

    Args:
        comm (Comm): The communicator.
        gpu_id (int): This rank's GPU.

    Returns:
        tuple: ``(rank, other_rank, node, gpu_id)``, or None when every rank
        has a GPU of its own.
    """
    first = {}
    for rank, key in enumerate(comm.allgather((platform.node(), gpu_id))):
        if key in first:
            return (first[key], rank) + key
        first[key] = rank
    return None


def mpi_is_cuda_aware():
    """Whether the running MPI accepts device memory.

    True when ``CHAINERCV_I3D_CUDA_AWARE_MPI=1``; else what the MPI library
    mpi4py loaded answers to ``MPIX_Query_cuda_support`` (MPICH and Open
    MPI have it); False when it cannot be asked.
    """
    if os.environ.get(CUDA_AWARE_MPI_VARIABLE) == '1':
        return True
    import ctypes
    from mpi4py import MPI  # NOQA: loads the MPI library
    for path in _loaded_mpi_libraries():
        query = getattr(ctypes.CDLL(path), 'MPIX_Query_cuda_support', None)
        if query is not None:
            query.restype = ctypes.c_int
            return bool(query())
    return False


def _loaded_mpi_libraries():
    """Paths of the MPI libraries this process has loaded (Linux)."""
    try:
        with open('/proc/self/maps') as maps:
            lines = maps.read().splitlines()
    except OSError:
        return []
    paths = {line.split()[-1] for line in lines if 'libmpi' in line}
    return sorted(path for path in paths if path.startswith('/'))


def mpi_library_name():
    """The first line of the MPI library's version text."""
    from mpi4py import MPI
    return ' '.join(MPI.Get_library_version().splitlines()[0].split())


def cupy_has_nccl():
    """Whether CuPy can load NCCL."""
    try:
        from cupy.cuda import nccl
    except ImportError:
        return False
    return bool(getattr(nccl, 'available', True))


def _import_chainermn():
    try:
        import chainermn
    except ImportError as e:
        raise ImportError('ChainerMN needs mpi4py ({}): {}'.format(
            e, _INSTALL_HINT))
    return chainermn


def _flush_output():
    sys.stdout.flush()
    sys.stderr.flush()


def _unread_bytes(fd):
    """The bytes written to ``fd`` that its reader has not read yet, when
    it is a pipe (as under mpiexec); 0 otherwise."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return 0
        answer = fcntl.ioctl(fd, termios.FIONREAD, struct.pack('i', 0))
    except OSError:  # closed, or not a pipe after all
        return 0
    return struct.unpack('i', answer)[0]


def _wait_until_output_read(fds=(1, 2), timeout=ABORT_FORWARD_TIMEOUT):
    """Waits until the launcher has read what this process wrote to
    ``fds`` (stdout and stderr), at most ``timeout`` seconds (for a launcher
    that is stuck)."""
    deadline = time.monotonic() + timeout
    for fd in fds:
        while _unread_bytes(fd) and time.monotonic() < deadline:
            time.sleep(0.01)
