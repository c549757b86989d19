"""Progress bars for long work: on rank 0 only, never in quiet runs."""

from tqdm import tqdm

# The tag of the progress messages the other ranks send rank 0.
PROGRESS_TAG = 7301


class NoBar(object):
    """Stands in for a bar where none is shown; ``write`` still prints."""

    def update(self, n=1):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def write(self, message, file=None):
        print(message, file=file)

    def close(self):
        pass

    def abandon(self):
        """Ends the bar at once, waiting for nothing (a failed run)."""


def progress_bar(total, comm=None, quiet=False, initial=0, unit='video'):
    """A tqdm bar (rate and time left) on rank 0, else a :class:`NoBar`.

    Args:
        total (int): Items in all (on rank 0's share).
        comm: The communicator (``None``: one process).
        quiet (bool): Show nothing (for logs).
        initial (int): Items already done (a resumed run).
        unit (str): What an item is.
    """
    rank = 0 if comm is None else comm.rank
    if quiet or rank != 0:
        return NoBar()
    size = 1 if comm is None else comm.size
    return tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True,
                desc='rank 0 of {}'.format(size))


def all_ranks_bar(total, comm, quiet=False, initial=0, unit='video'):
    """A bar on rank 0 that counts the items every rank finishes.

    Every rank calls ``update`` for its own items and ``close`` once at the
    end (all ranks must: rank 0's ``close`` waits for the others' last
    counts, so that no message is left over); the other ranks post their
    counts to rank 0 without waiting, and rank 0 reads them whenever it
    updates, so no rank is slowed down.

    Args:
        total (int): Items of all ranks together.
        comm: The communicator.
        quiet (bool): Show nothing and send nothing (the same on all ranks).
        initial (int): Items already done (a resumed run).
        unit (str): What an item is.
    """
    if quiet:
        return NoBar()
    if comm.rank != 0:
        return _CountPoster(comm)
    desc = '{} ranks'.format(comm.size) if comm.size > 1 else None
    return _AllRanksBar(tqdm(total=total, initial=initial, unit=unit,
                             dynamic_ncols=True, desc=desc), comm)


class _CountPoster(NoBar):
    """A rank other than 0: sends its counts, ``None`` when it is done."""

    def __init__(self, comm):
        self.comm = comm

    def update(self, n=1):
        self.comm.post(n, 0, PROGRESS_TAG)

    def close(self):
        self.comm.post(None, 0, PROGRESS_TAG)
        self.comm.wait_posted()


class _AllRanksBar(object):

    def __init__(self, bar, comm):
        self.bar = bar
        self.comm = comm
        self.running = comm.size - 1  # ranks that have not said done

    def update(self, n=1):
        self.bar.update(n)
        self._read_counts(block=False)

    def set_postfix(self, *args, **kwargs):
        self.bar.set_postfix(*args, **kwargs)

    def write(self, message, file=None):
        self.bar.write(message, file=file)

    def close(self):
        self._read_counts(block=True)
        self.bar.close()

    def abandon(self):
        """Ends the bar without waiting for the other ranks' counts (a
        failed or stopped run: they may never come)."""
        self.bar.close()

    def _read_counts(self, block):
        while self.running:
            message = self.comm.receive(PROGRESS_TAG, block)
            if message is None:
                return
            if message[1] is None:
                self.running -= 1
            else:
                self.bar.update(message[1])
