"""Rounding error of Winograd's F(2x2, 3x3) and F(4x4, 3x3) against a direct
float32 convolution, one line each.

    python benchmarks/winograd_accuracy.py [--channels 192] [--tiles 500]

On random ReLU-like inputs and weights, every tile is computed in float32
three ways and compared with the float64 direct result; the error is the
largest absolute difference over the result's standard deviation. This is
why the fast path uses F(2x2, 3x3) only (chainercv_i3d.links.fast.winograd).
"""

import argparse

import numpy

# Lavin and Gray (CVPR 2016): B^T, G, A^T of F(m, 3).
TRANSFORMS = {
    2: ([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        [[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]],
        [[1, 1, 1, 0], [0, 1, -1, -1]]),
    4: ([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
         [0, 1, -1, 8, -8, 1]]),
}


def direct(d, g, m, dtype):
    d, g = d.astype(dtype), g.astype(dtype)
    out = numpy.empty((d.shape[0], g.shape[0], m, m), dtype)
    for i in range(m):
        for j in range(m):
            out[:, :, i, j] = numpy.einsum(
                'ncxy,ocxy->no', d[:, :, i:i + 3, j:j + 3], g)
    return out


def winograd(d, g, m):
    f = numpy.float32
    b_t, g_mat, a_t = (numpy.array(t, numpy.float64) for t in TRANSFORMS[m])
    u = numpy.einsum('ik,ockl,jl->ocij', g_mat, g, g_mat).astype(f)
    v = numpy.einsum('ik,nckl,jl->ncij', b_t.astype(f), d.astype(f),
                     b_t.astype(f))
    product = numpy.einsum('ncij,ocij->noij', v, u)
    return numpy.einsum('ik,nokl,jl->noij', a_t.astype(f), product,
                        a_t.astype(f))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--channels', type=int, default=192)
    parser.add_argument('--out_channels', type=int, default=64)
    parser.add_argument('--tiles', type=int, default=500)
    args = parser.parse_args()
    rng = numpy.random.RandomState(0)
    for m in sorted(TRANSFORMS):
        d = numpy.abs(rng.randn(args.tiles, args.channels, m + 2, m + 2))
        g = rng.randn(args.out_channels, args.channels, 3, 3) * 0.05
        truth = direct(d, g, m, numpy.float64)
        scale = truth.std()
        print('F({m}x{m}, 3x3) error/std={:.2e} direct float32 '
              'error/std={:.2e}'.format(
                  numpy.abs(winograd(d, g, m) - truth).max() / scale,
                  numpy.abs(direct(d, g, m, numpy.float32) - truth).max()
                  / scale, m=m), flush=True)


if __name__ == '__main__':
    main()
