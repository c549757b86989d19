"""Winograd's F(2, 3): its tile sizes and transforms, written once.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR
2016: 2 outputs of a 3-tap filter from 4 inputs, ``y = A^T ((G g) * (B^T
d))``; over (height, width) F(2x2, 3x3). Shared by the CPU nodes of
training (:mod:`chainercv_i3d.functions.cpu.winograd`, NCTHW) and the fast
inference engine (:mod:`chainercv_i3d.links.fast.winograd`,
channels-last). Only 0, +-1 and +-1/2 appear, so the transforms add no
rounding beyond float32 summation's.
"""

import numpy

OUT_TILE = 2
IN_TILE = OUT_TILE + 2
B_T = numpy.array([[1, 0, -1, 0],
                   [0, 1, 1, 0],
                   [0, -1, 1, 0],
                   [0, 1, 0, -1]], dtype=numpy.float64)
G = numpy.array([[1, 0, 0],
                 [.5, .5, .5],
                 [.5, -.5, .5],
                 [0, 0, 1]], dtype=numpy.float64)
A_T = numpy.array([[1, 1, 1, 0],
                   [0, 1, -1, -1]], dtype=numpy.float64)

