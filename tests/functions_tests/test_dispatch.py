"""The one rule that picks the CPU nodes: numpy arrays only."""

import chainercv_i3d  # NOQA: before chainer

import chainer
import numpy
import pytest

from chainercv_i3d.functions.dispatch import on_numpy
from chainercv_i3d.functions.dispatch import require_numpy


class NotNumpy(object):
    """Stands for a CuPy array (no GPU here): an array-like of another
    type."""
    shape = (2,)


def test_numpy_arrays_and_variables_are_on_numpy():
    assert on_numpy(numpy.zeros(2), chainer.Variable(numpy.zeros(3)))


def test_one_other_array_sends_the_call_to_chainer():
    assert not on_numpy(numpy.zeros(2), NotNumpy())


def test_require_numpy_names_the_node_and_the_gpu_function():
    with pytest.raises(ValueError, match='my node runs on numpy arrays only, '
                       'got ndarray, NotNumpy; use F.thing on a GPU'):
        require_numpy((numpy.zeros(1), NotNumpy()), 'my node', 'F.thing')
    require_numpy((numpy.zeros(1),), 'my node', 'F.thing')
