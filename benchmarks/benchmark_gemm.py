"""How fast this machine multiplies float32 matrices, one line per size.

    python benchmarks/benchmark_gemm.py [--sizes 1024,2048,4096] [--repeat 3]

numpy's BLAS (all threads) and, if installed, TensorFlow's ``matmul`` (in a
``tf.function`` graph, traced in the untimed first call) on square
matrices: the product speed that bounds every convolution path.
Then numpy's BLAS on one thread for the shape of one chunk of the fast
path's stem, (1008 x 1029) by (1029 x 64), as each of its threads runs it.
"""

import argparse
import time

import numpy

from chainercv_i3d.testing.tf_reference import import_tensorflow


def gflops(multiply, m, k, n, repeat):
    """GFLOP/s of ``multiply``, an (m x k) by (k x n) product."""
    multiply()
    start = time.perf_counter()
    for _ in range(repeat):
        multiply()
    return 2 * m * k * n * repeat / (time.perf_counter() - start) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='1024,2048,4096')
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    try:
        tf = import_tensorflow()
    except ImportError:
        tf = None
    for n in (int(s) for s in args.sizes.split(',')):
        a, b = (numpy.random.rand(n, n).astype(numpy.float32)
                for _ in range(2))
        line = 'n={} numpy GFLOP/s={:.0f}'.format(
            n, gflops(lambda: a @ b, n, n, n, args.repeat))
        if tf is not None:
            ta, tb = tf.constant(a), tf.constant(b)
            matmul = tf.function(tf.matmul)
            line += ' tensorflow GFLOP/s={:.0f}'.format(
                gflops(lambda: matmul(ta, tb), n, n, n, args.repeat))
        print(line, flush=True)
    import threadpoolctl
    m, k, n = 1008, 1029, 64
    cols = numpy.random.rand(m, k).astype(numpy.float32)
    weight = numpy.random.rand(k, n).astype(numpy.float32)
    with threadpoolctl.threadpool_limits(limits=1, user_api='blas'):
        rate = gflops(lambda: cols @ weight, m, k, n, 10 * args.repeat)
    print('stem chunk ({m}x{k})x({k}x{n}), one thread: GFLOP/s={:.0f}'
          .format(rate, m=m, k=k, n=n), flush=True)


if __name__ == '__main__':
    main()
