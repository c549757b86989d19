"""Learning rates as pure functions of the iteration (resume-safe).

Chainer's ``MultistepShift`` sets the rate back to its initial value when a
run resumes, and ``ExponentialShift`` with a ``ManualScheduleTrigger`` never
restores it once the last point has passed (measured with chainer 7.8.1, see
the issue "Training and fine-tuning"). Here the rate of update ``i`` (0-based:
the rate the ``i + 1``-th update uses) is ``schedule(i)``, set before every
update, so a resumed run uses what an uninterrupted one would.
"""

import bisect


class PiecewiseSchedule(object):
    """A base rate times a factor that changes at given iterations.

    Args:
        base_lr (float): The rate before the first boundary (times
            ``factors[0]``).
        boundaries (sequence of int): Increasing iterations at which the next
            factor starts.
        factors (sequence of float): One more than ``boundaries``.
        n_iteration (int): The run's length by default (DeepMind's step
            count), or None.
        name (str): How ``--schedule`` names it.
    """

    def __init__(self, base_lr, boundaries=(), factors=(1.0,),
                 n_iteration=None, name='step'):
        boundaries, factors = tuple(boundaries), tuple(factors)
        if len(factors) != len(boundaries) + 1:
            raise ValueError('{} factors for {} boundaries: give one more '
                             'factor than boundaries'.format(
                                 len(factors), len(boundaries)))
        if any(b <= a for a, b in zip(boundaries, boundaries[1:])) \
                or any(b < 1 for b in boundaries):
            raise ValueError('boundaries must be increasing positive '
                             'iterations, not {}'.format(list(boundaries)))
        if not base_lr > 0:
            raise ValueError('the learning rate must be positive, not '
                             '{}'.format(base_lr))
        self.base_lr = float(base_lr)
        self.boundaries = boundaries
        self.factors = factors
        self.n_iteration = n_iteration
        self.name = name

    def __call__(self, iteration):
        """The rate of update ``iteration`` (0-based)."""
        return self.base_lr * self.factors[
            bisect.bisect_right(self.boundaries, iteration)]

    def describe(self):
        """A JSON-able description (for logs and resume checks)."""
        return {'name': self.name, 'base_lr': self.base_lr,
                'boundaries': list(self.boundaries),
                'factors': list(self.factors)}


# DeepMind's README: RGB 0.1 for steps 0-97k, 0.01 to 108k, 0.001 to 115k.
DEEPMIND_RGB = dict(base_lr=0.1, boundaries=(97000, 108000),
                    factors=(1.0, 0.1, 0.01), n_iteration=115000)
# Flow: the same to 97k, 0.001 from 104.5k, restarted at 115k (0.1), 0.01
# from 140k, 0.001 from 150k to 155k.
DEEPMIND_FLOW = dict(base_lr=0.1,
                     boundaries=(97000, 104500, 115000, 140000, 150000),
                     factors=(1.0, 0.1, 0.01, 1.0, 0.1, 0.01),
                     n_iteration=155000)
SCHEDULES = {'deepmind_rgb': DEEPMIND_RGB, 'deepmind_flow': DEEPMIND_FLOW}
SCHEDULE_NAMES = ('deepmind_rgb', 'deepmind_flow', 'step')
DEFAULT_SCHEDULE = {'rgb': 'deepmind_rgb', 'flow': 'deepmind_flow'}
# The base rate of 'step' when no lr is given.
DEFAULT_STEP_LR = 0.01


def make_schedule(name, lr=None, lr_steps=()):
    """The schedule that ``name``, ``lr`` and ``lr_steps`` describe.

    Args:
        name (str): ``'deepmind_rgb'``, ``'deepmind_flow'`` or ``'step'``
            (``lr``, times 0.1 at each of ``lr_steps``).
        lr (float): The base rate; None for the schedule's own (0.1 for
            DeepMind's, :data:`DEFAULT_STEP_LR` for ``step``). DeepMind's
            later rates scale with it.
        lr_steps (sequence of int): Iterations of the 0.1x drops of
            ``step``.

    Raises:
        ValueError: An unknown name, ``lr_steps`` with a DeepMind schedule,
            or a bad rate or step.
    """
    if name not in SCHEDULE_NAMES:
        raise ValueError('unknown schedule {!r}: give one of {}'.format(
            name, ', '.join(SCHEDULE_NAMES)))
    if name == 'step':
        steps = tuple(lr_steps)
        return PiecewiseSchedule(
            DEFAULT_STEP_LR if lr is None else lr, steps,
            tuple(0.1 ** k for k in range(len(steps) + 1)), name=name)
    if lr_steps:
        raise ValueError("lr_steps is for schedule 'step'; {} has its own "
                         'steps'.format(name))
    recipe = dict(SCHEDULES[name])
    if lr is not None:
        recipe['base_lr'] = lr
    return PiecewiseSchedule(name=name, **recipe)
