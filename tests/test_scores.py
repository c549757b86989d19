import numpy
import pytest

from chainercv_i3d.scores import final_scores
from chainercv_i3d.scores import fuse_streams
from chainercv_i3d.scores import softmax
from chainercv_i3d.scores import top_k


def test_top_k_breaks_ties_by_class_index():
    scores = numpy.array([1.0, 3.0, 3.0, 0.5, 3.0], numpy.float32)
    assert top_k(scores, 4).tolist() == [1, 2, 4, 0]
    rows = numpy.stack([scores, scores[::-1]])
    assert top_k(rows, 2).tolist() == [[1, 2], [0, 2]]


def test_fusion_sums_rgb_and_flow():
    rgb, flow = numpy.array([1.0, 2.0]), numpy.array([0.5, -4.0])
    fused = fuse_streams({'rgb': rgb, 'flow': flow})
    numpy.testing.assert_array_equal(fused['two_stream'], [1.5, -2.0])
    numpy.testing.assert_array_equal(final_scores({'flow': flow}), flow)
    numpy.testing.assert_array_equal(
        final_scores({'rgb': rgb, 'flow': flow}), [1.5, -2.0])
    assert 'two_stream' not in fuse_streams({'rgb': rgb})


def test_softmax_is_stable_and_sums_to_one():
    p = softmax(numpy.array([1000.0, 1000.0, 0.0]))
    assert p.sum() == pytest.approx(1.0)
    assert p[0] == pytest.approx(0.5)
