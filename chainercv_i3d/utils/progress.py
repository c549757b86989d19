"""Progress bars for long work: on rank 0 only, never in quiet runs."""

from tqdm import tqdm


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
