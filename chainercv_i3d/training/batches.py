"""Which examples each update of a run uses: a pure function of the seed.

A run reads one stream of examples, epoch after epoch, each epoch in its own
order (a permutation drawn from ``(seed, epoch)``). Update ``i`` takes the
next ``ranks x batch_size x accumulate`` examples of the stream; rank ``r``
computes its ``accumulate`` sub-batches from them. Nothing depends on earlier
updates, so a resumed run (any rank) finds its place from the iteration
alone, and an epoch boundary can fall inside an update.
"""

import numpy


def epoch_order(seed, epoch, n_examples, shuffle=True):
    """The order of the examples in ``epoch``: a permutation drawn from
    ``(seed, epoch)``, or ``0 .. n - 1`` without ``shuffle``."""
    if not shuffle:
        return numpy.arange(n_examples)
    return numpy.random.default_rng([int(seed), int(epoch)]).permutation(
        n_examples)


class BatchPlan(object):
    """The examples of every update of a run.

    Args:
        n_examples (int): Examples in the training set.
        batch_size (int): Examples per sub-batch on each rank.
        accumulate (int): Sub-batches per update on each rank.
        size (int): Number of ranks.
        seed (int): Seed of the epoch orders.
        shuffle (bool): Draw each epoch's order (else the dataset's).

    Raises:
        ValueError: No examples.
    """

    def __init__(self, n_examples, batch_size, accumulate=1, size=1, seed=0,
                 shuffle=True):
        if n_examples < 1:
            raise ValueError('the training set has no examples')
        self.n_examples = n_examples
        self.batch_size = batch_size
        self.accumulate = accumulate
        self.size = size
        self.seed = seed
        self.shuffle = shuffle
        self._orders = {}

    @property
    def global_batch(self):
        """Examples per update over all ranks."""
        return self.batch_size * self.accumulate * self.size

    def epoch_detail(self, iteration):
        """Epochs done (a float) after ``iteration`` updates."""
        return iteration * self.global_batch / self.n_examples

    def update_examples(self, iteration):
        """``(epoch, index)`` of the examples of update ``iteration``
        (0-based), all ranks, in rank-major order."""
        start = iteration * self.global_batch
        return [self._example(p)
                for p in range(start, start + self.global_batch)]

    def rank_sub_batches(self, iteration, rank):
        """The sub-batches of rank ``rank`` in update ``iteration``: a list
        of ``accumulate`` lists of ``batch_size`` ``(epoch, index)``."""
        examples = self.update_examples(iteration)
        per_rank = self.batch_size * self.accumulate
        mine = examples[rank * per_rank:(rank + 1) * per_rank]
        return [mine[k * self.batch_size:(k + 1) * self.batch_size]
                for k in range(self.accumulate)]

    def _example(self, position):
        epoch, offset = divmod(position, self.n_examples)
        if epoch not in self._orders:
            # Only the epochs in use are kept (a long run has many).
            self._orders = {e: o for e, o in self._orders.items()
                            if e >= epoch - 1}
            self._orders[epoch] = epoch_order(
                self.seed, epoch, self.n_examples, self.shuffle)
        return epoch, int(self._orders[epoch][offset])
