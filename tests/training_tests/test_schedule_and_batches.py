"""Learning-rate schedules and the examples of each update."""

import collections

import pytest

from chainercv_i3d.training import BatchPlan
from chainercv_i3d.training import make_schedule


@pytest.mark.parametrize('iteration,lr', [
    (0, 0.1), (96999, 0.1), (97000, 0.01), (107999, 0.01), (108000, 0.001),
    (114999, 0.001)])
def test_deepmind_rgb(iteration, lr):
    assert make_schedule('deepmind_rgb')(iteration) == pytest.approx(lr)


@pytest.mark.parametrize('iteration,lr', [
    (96999, 0.1), (97000, 0.01), (104499, 0.01), (104500, 0.001),
    (114999, 0.001), (115000, 0.1), (139999, 0.1), (140000, 0.01),
    (149999, 0.01), (150000, 0.001), (154999, 0.001)])
def test_deepmind_flow_restarts_at_115k(iteration, lr):
    assert make_schedule('deepmind_flow')(iteration) == pytest.approx(lr)


def test_lengths_and_base_rate():
    assert make_schedule('deepmind_rgb').n_iteration == 115000
    assert make_schedule('deepmind_flow').n_iteration == 155000
    scaled = make_schedule('deepmind_rgb', lr=0.02)
    assert scaled(0) == pytest.approx(0.02)
    assert scaled(108000) == pytest.approx(0.0002)


def test_step_schedule():
    schedule = make_schedule('step', 0.5, (10, 20))
    assert [schedule(i) for i in (0, 9, 10, 19, 20, 10 ** 6)] == \
        pytest.approx([0.5, 0.5, 0.05, 0.05, 0.005, 0.005])
    assert make_schedule('step')(0) == pytest.approx(0.01)


def test_rate_is_a_function_of_the_iteration_only():
    # What makes a resume past the last boundary exact: no state.
    schedule = make_schedule('deepmind_rgb')
    assert schedule(200000) == schedule(114999) == pytest.approx(0.001)


@pytest.mark.parametrize('args,message', [
    (('cosine',), 'unknown schedule'),
    (('deepmind_rgb', None, (5,)), "lr_steps is for schedule 'step'"),
    (('step', -1.0), 'must be positive'),
    (('step', 0.1, (20, 10)), 'increasing'),
])
def test_bad_schedules(args, message):
    with pytest.raises(ValueError, match=message):
        make_schedule(*args)


def test_every_epoch_holds_every_example_once():
    plan = BatchPlan(10, batch_size=3, accumulate=1, size=1, seed=4)
    seen = collections.defaultdict(list)
    for iteration in range(10):  # 30 examples: 3 epochs
        for epoch, index in plan.update_examples(iteration):
            seen[epoch].append(index)
    assert sorted(seen) == [0, 1, 2]
    for epoch in range(3):
        assert sorted(seen[epoch]) == list(range(10))
    assert seen[0] != seen[1]  # shuffled per epoch
    assert plan.epoch_detail(10) == pytest.approx(3.0)


def test_ranks_and_sub_batches_split_the_same_update():
    two_ranks = BatchPlan(7, batch_size=2, accumulate=1, size=2, seed=1)
    accumulating = BatchPlan(7, batch_size=2, accumulate=2, size=1, seed=1)
    for iteration in range(5):
        by_rank = [two_ranks.rank_sub_batches(iteration, r)[0]
                   for r in range(2)]
        assert by_rank == accumulating.rank_sub_batches(iteration, 0)
        assert by_rank[0] + by_rank[1] == \
            two_ranks.update_examples(iteration)


def test_plan_is_a_pure_function_of_the_seed():
    a = BatchPlan(9, 2, seed=3)
    b = BatchPlan(9, 2, seed=3)
    late = [b.update_examples(i) for i in (40, 3)]
    assert late == [a.update_examples(i) for i in (40, 3)]
    assert BatchPlan(9, 2, seed=5).update_examples(0) != a.update_examples(0)
    assert BatchPlan(9, 2, shuffle=False).update_examples(1) == \
        [(0, 2), (0, 3)]


def test_empty_training_set():
    with pytest.raises(ValueError, match='no examples'):
        BatchPlan(0, 2)
