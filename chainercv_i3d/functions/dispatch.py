"""The one rule that sends a function to its CPU node or to Chainer's.

On numpy arrays the functions of this package run their own CPU nodes
(:mod:`chainercv_i3d.functions.cpu`: numba kernels and threaded BLAS,
forward and backward); on anything else (CuPy arrays, a GPU) they run
Chainer's functions (``F.convolution_nd``, ``F.max_pooling_nd``,
``L.BatchNormalization``). :func:`on_numpy` is that test, written once.
"""

import chainer
import numpy


def on_numpy(*arrays):
    """Whether every one of ``arrays`` (chainer Variables or arrays) holds
    a numpy array: the CPU nodes apply.

    >>> on_numpy(numpy.zeros(2), chainer.Variable(numpy.zeros(3)))
    True
    """
    return all(isinstance(chainer.as_array(a), numpy.ndarray) for a in arrays)


def require_numpy(arrays, node, gpu_function):
    """Raises ValueError unless every one of ``arrays`` is a numpy array:
    the CPU node ``node`` computes with numpy only, and on a GPU the link
    calls Chainer's ``gpu_function`` instead."""
    if not all(isinstance(a, numpy.ndarray) for a in arrays):
        raise ValueError('{} runs on numpy arrays only, got {}; use {} on a '
                         'GPU'.format(node, ', '.join(
                             type(a).__name__ for a in arrays), gpu_function))
