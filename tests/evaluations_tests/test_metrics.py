import numpy
import pytest

from chainercv_i3d.evaluations import classification_metrics
from chainercv_i3d.evaluations import preset_differences
from chainercv_i3d.evaluations import top_k_hits
from chainercv_i3d.evaluations.metrics import per_class_accuracy
from chainercv_i3d.evaluations.metrics import validation_loss
from chainercv_i3d.presets import DEEPMIND_KINETICS


def test_hand_made_scores():
    # 6 classes, 5 videos; the label's rank in each row is written beside it.
    scores = numpy.array([
        [9, 1, 2, 3, 4, 5],   # label 0: rank 1
        [2, 1, 9, 3, 4, 5],   # label 1: rank 6
        [5, 4, 3, 9, 1, 2],   # label 2: rank 4
        [1, 9, 8, 7, 6, 5],   # label 1: rank 1
        [6, 5, 4, 3, 2, 1],   # label 5: rank 6
    ], dtype=numpy.float32)
    labels = numpy.array([0, 1, 2, 1, 5])
    numpy.testing.assert_array_equal(top_k_hits(scores, labels, 1),
                                     [True, False, False, True, False])
    numpy.testing.assert_array_equal(top_k_hits(scores, labels, 5),
                                     [True, False, True, True, False])
    metrics = classification_metrics(scores, labels)
    assert metrics['n'] == 5
    assert metrics['top1'] == pytest.approx(2 / 5)
    assert metrics['top5'] == pytest.approx(3 / 5)
    # classes 0: 1/1, 1: 1/2, 2: 0/1, 5: 0/1 -> mean 0.375
    assert metrics['mean_class_accuracy'] == pytest.approx(0.375)


def test_ties_are_broken_by_class_index():
    scores = numpy.zeros((2, 10), numpy.float32)
    assert top_k_hits(scores, [0, 4], 1).tolist() == [True, False]
    assert top_k_hits(scores, [0, 4], 5).tolist() == [True, True]


def test_empty_is_an_error_not_a_division_by_zero():
    with pytest.raises(ValueError, match='N >= 1'):
        classification_metrics(numpy.zeros((0, 400)), numpy.zeros(0))


def test_preset_differences_name_what_differs():
    assert preset_differences(DEEPMIND_KINETICS, DEEPMIND_KINETICS) == []
    native = DEEPMIND_KINETICS.replace(fps=None, short_side=240)
    assert preset_differences(native, DEEPMIND_KINETICS) == [
        'the data was precomputed at native fps, the model expects 25.0',
        'the data was precomputed at 240 px short side, the model expects '
        '256']


def test_per_class_accuracy_names_each_class_present():
    scores = numpy.array([[2, 1, 0], [0, 1, 2], [0, 3, 1]], numpy.float32)
    rows = per_class_accuracy(scores, [0, 0, 1], ('a', 'b', 'c'))
    assert rows == [{'label': 0, 'name': 'a', 'n': 2, 'top1': 0.5},
                    {'label': 1, 'name': 'b', 'n': 1, 'top1': 1.0}]


def test_validation_loss_by_hand():
    # Equal logits: -log(1/3). Logits (log 1, log 3) for label 1: -log(3/4).
    # The video without logits (unreadable) is left out.
    results = [
        {'label': 2, 'logits': {'rgb': [5.0, 5.0, 5.0], 'flow': [0, 0, 9]}},
        {'label': 1, 'logits': {'rgb': [0.0, numpy.log(3.0), -numpy.inf],
                                'flow': [0, 0, 0]}},
        {'label': 0},
    ]
    expected = (numpy.log(3.0) - numpy.log(3.0 / 4.0)) / 2
    assert validation_loss(results, 'rgb') == pytest.approx(expected)


def test_validation_loss_is_stable_for_large_logits():
    results = [{'label': 0, 'logits': {'rgb': [1000.0, 0.0]}}]
    assert validation_loss(results, 'rgb') == pytest.approx(
        numpy.log1p(numpy.exp(-1000.0)), abs=1e-12)


def test_top5_of_fewer_than_5_classes_is_not_applicable():
    # With 2 classes every label is among the 5 best: 100% would mislead.
    scores = numpy.array([[2., 1.], [0., 3.], [1., 0.]], numpy.float32)
    metrics = classification_metrics(scores, numpy.array([0, 0, 1]))
    assert metrics['top5'] is None
    assert metrics['top1'] == pytest.approx(1 / 3)
    five = numpy.eye(5, dtype=numpy.float32)
    assert classification_metrics(five, numpy.arange(5))['top5'] == 1.0
