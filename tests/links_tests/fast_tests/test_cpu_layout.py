"""The compiled change of layout against numpy's transpose."""

import chainercv_i3d  # NOQA: before chainer

import numpy
import pytest

from chainercv_i3d.links.fast.cpu_layout import to_channels_last
from chainercv_i3d.utils.threads import cpu_chunks


@pytest.mark.parametrize('shape', [(1, 3, 5, 7, 9), (2, 2, 3, 4, 1),
                                   (3, 1, 1, 2, 2)])
@pytest.mark.parametrize('dtype', ['float32', 'float16'])
def test_the_clip_is_interleaved_as_numpy_transposes_it(shape, dtype):
    x = numpy.random.RandomState(0).randn(*shape).astype(numpy.float32)
    n, c, t, h, w = shape
    out = numpy.empty((n, t, h, w, c), dtype)
    with cpu_chunks(numpy):
        assert to_channels_last(x, out) is out
    numpy.testing.assert_array_equal(
        out, x.transpose(0, 2, 3, 4, 1).astype(dtype))
