"""Average precision and mAP as Charades' official evaluation computes
them, checked against hand computations."""

import random

import numpy
import pytest

from chainercv_i3d.evaluations import format_table
from chainercv_i3d.evaluations import summarize
from chainercv_i3d.evaluations.multilabel import average_precision
from chainercv_i3d.evaluations.multilabel import multilabel_metrics
from chainercv_i3d.evaluations.multilabel import sigmoid_cross_entropy
from chainercv_i3d.scores import probabilities
from chainercv_i3d.scores import sigmoid

# 4 videos x 3 classes. Class 0 has a tie between a positive and a
# negative; class 1 one positive, ranked first; class 2 no positive.
SCORES = numpy.array([[0.9, 0.2, 0.3],
                      [0.5, 0.8, 0.1],
                      [0.5, 0.4, 0.7],
                      [0.1, 0.6, 0.2]])
LABELS = numpy.array([[0, 0, 0],
                      [1, 1, 0],
                      [0, 0, 0],
                      [1, 0, 0]])


def test_average_precision_by_hand_with_a_tie_in_the_given_order():
    # Ranked 0 (neg), 1 (pos), 2 (neg, tied with 1, after it: the given
    # order, as MATLAB's stable sort in Charades_v1_classify.m), 3 (pos):
    # precisions at the positives 1/2 and 2/4.
    assert average_precision(SCORES[:, 0], LABELS[:, 0]) == 0.5
    # The tied negative first: 1/3 and 2/4.
    assert average_precision(SCORES[[0, 2, 1, 3], 0],
                             LABELS[[0, 2, 1, 3], 0]) == pytest.approx(
        (1 / 3 + 2 / 4) / 2)
    assert average_precision(SCORES[:, 1], LABELS[:, 1]) == 1.0
    assert average_precision(SCORES[:, 2], LABELS[:, 2]) is None


def test_map_leaves_out_the_classes_without_a_positive():
    metrics = multilabel_metrics(SCORES, LABELS)
    assert metrics == {'n': 4, 'map': 0.75, 'per_class_ap': [0.5, 1.0, None],
                       'n_class_without_positive': 1}
    with pytest.raises(ValueError, match='no class has a positive'):
        multilabel_metrics(SCORES, numpy.zeros_like(LABELS))
    with pytest.raises(ValueError, match=r'need \(N, n_class\)'):
        multilabel_metrics(SCORES, LABELS[:3])


def results_of(scores, labels):
    return [{'video_id': 'v{}'.format(i), 'label': -1, 'list_index': i,
             'labels': [int(c) for c in numpy.flatnonzero(row)],
             'logits': {'rgb': list(score), 'flow': list(score / 2)}}
            for i, (score, row) in enumerate(zip(scores, labels))]


def test_the_summary_is_the_same_in_any_gathered_order():
    # Ranks gather their shares in another order; ties still follow the
    # annotation file's (list_index).
    results = results_of(SCORES, LABELS)
    expected = summarize(results, 2, ('a', 'b', 'c'))
    assert expected['rgb']['map'] == 0.75
    assert expected['two_stream']['map'] == 0.75
    assert expected['per_class'][0] == {'label': 0, 'name': 'a', 'n': 2,
                                        'ap': 0.5}
    assert expected['per_class'][2]['ap'] is None
    assert expected['n_missing'] == 2 and expected['multi_label']
    for seed in range(3):
        shuffled = list(results)
        random.Random(seed).shuffle(shuffled)
        assert summarize(shuffled, 2, ('a', 'b', 'c')) == expected
    unreadable = results + [{'video_id': 'bad', 'label': -1, 'labels': [0],
                             'error': 'truncated'}]
    assert summarize(unreadable)['n_unreadable'] == 1


def test_the_table_shows_map_not_top_k():
    table = format_table(summarize(results_of(SCORES, LABELS)))
    assert 'top-1' not in table
    assert 'mAP' in table.splitlines()[1]
    assert table.splitlines()[2].split() == ['rgb', '0.7500', '1']


def test_sigmoid_and_its_loss_are_stable_for_large_scores():
    numpy.testing.assert_allclose(sigmoid([-800.0, 0.0, 2.0, 800.0]),
                                  [0.0, 0.5, 1 / (1 + numpy.exp(-2.0)), 1.0])
    assert probabilities([0.0, 0.0], multi_label=True).tolist() == [0.5, 0.5]
    assert sigmoid_cross_entropy([[800.0, -800.0]], [[1, 0]]) == 0.0
    assert sigmoid_cross_entropy([[0.0]], [[1]]) == pytest.approx(
        numpy.log(2))
