"""What the fast path's weight cache saves, one line.

    python benchmarks/benchmark_folding.py [--repeat 3]

Times folding every convolution of I3D (batch norm into the weights,
Winograd's weight transform), which the link does once and again only when
a weight changes, against the exact comparison with the kept copy that it
does at every call instead.
"""

import argparse
import time

import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)
import numpy

from chainercv_i3d.links import I3D


def best_of(function, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    numpy.random.seed(0)
    model = I3D(n_class=400)
    model.fast.folded(model)

    def fold():
        model.fast.forget()  # fold again
        model.fast.folded(model)

    print('fold s={:.3f} check s={:.4f} (best of {})'.format(
        best_of(fold, args.repeat),
        best_of(lambda: model.fast.folded(model), args.repeat),
        args.repeat))


if __name__ == '__main__':
    main()
