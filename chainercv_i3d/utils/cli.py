"""Small helpers the command-line scripts share."""

import argparse
import sys
import traceback

from chainercv_i3d.files import check_output_dir
from chainercv_i3d.files import check_output_file
from chainercv_i3d.files import OutputPathError
from chainercv_i3d.utils.comm import get_comm

# The meaning select_device gives --device, for every script's help.
device_spec_help = (
    "where to run: 'cpu'; 'gpu' (the GPU of this rank's node-local index, "
    "intra_rank modulo the number of GPUs CuPy sees, so the mpiexec ranks of "
    "a node share out its GPUs); 'auto' ('gpu' when CuPy sees a GPU, else "
    "'cpu'); or a Chainer device spec such as '@cupy:1', '@numpy', 0 "
    "(GPU 0) or -1 (CPU)")


def positive_int(text):
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('must be at least 1, not ' + text)
    return value


def non_negative_int(text):
    """argparse type: an integer of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError('must be at least 0, not ' + text)
    return value


def add_device_argument(parser, default='auto'):
    """Adds ``--device`` with the meaning every script gives it.

    Pass its value to :func:`chainercv_i3d.utils.device.select_device`,
    which checks it.

    Args:
        parser (argparse.ArgumentParser): The parser to extend.
        default (str): The value when ``--device`` is not given.

    Returns:
        The argparse action that was added.
    """
    return parser.add_argument(
        '--device', default=default,
        help=device_spec_help + " (default '{}')".format(default))


# Exit status of a stage that finished but skipped some videos.
EXIT_SOME_FAILED = 3


def output_file(path):
    """argparse type: a file to write, checked before any work (so that a
    long run does not fail at its end) by
    :func:`chainercv_i3d.files.check_output_file`: missing folders above it
    are created when it is written."""
    try:
        return check_output_file(path)
    except OutputPathError as e:
        raise argparse.ArgumentTypeError(str(e))


def output_dir(path):
    """argparse type: a folder to write in, checked before any work by
    :func:`chainercv_i3d.files.check_output_dir`."""
    try:
        return check_output_dir(path)
    except OutputPathError as e:
        raise argparse.ArgumentTypeError(str(e))


def get_comm_or_exit(prog):
    """The communicator, or exit with one line when MPI is missing."""
    try:
        return get_comm()
    except ImportError as e:
        sys.exit('{}: {}'.format(prog, e))


# Errors a user can act on (a bad input, a missing file or package).
USER_ERRORS = (ValueError, OSError, ImportError)


def abort_on_error(prog, comm, error, user_errors=USER_ERRORS):
    """Ends every rank after ``error`` on this one, saying why in one line.

    An error of ``user_errors`` is one line; anything else is a bug, and
    its traceback is printed too.
    """
    if not isinstance(error, user_errors):
        traceback.print_exception(type(error), error, error.__traceback__)
    # One write with its newline: print writes the text and the newline
    # separately, and another rank's line could land between them.
    sys.stderr.write('{}: rank {}: {}\n'.format(prog, comm.rank, error))
    comm.abort(1)
