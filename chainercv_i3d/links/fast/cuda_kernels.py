"""Fused element-wise work of the fast path, as CuPy kernels.

Array code makes one pass over memory per operation; on a GPU, where these
steps are bound by memory traffic, each kernel here does the work of many
passes in one:

* :func:`bias_relu`: the bias and ReLU after a matrix product, written
  straight into the output (a channel slice of an Inception block's output
  too), instead of an add, a maximum and a copy;
* :func:`winograd_input_tiles`: the Winograd input transform ``B^T d B`` of
  every tile, written already stacked over the three time taps, instead of
  20 passes and a stacking copy;
* :func:`winograd_output`: the output transform ``A^T m A``, the crop, the
  bias and the ReLU, written into the output, instead of 6 passes, a crop
  copy and the bias and ReLU.

Each has an array equivalent that numpy (the CPU) runs and the GPU tests
compare with: :func:`bias_relu_array` here, and
:func:`~chainercv_i3d.links.fast.winograd.input_transform` with
:func:`~chainercv_i3d.links.fast.winograd.stack_time_taps`, and
:func:`~chainercv_i3d.links.fast.winograd.output_transform` with
:func:`bias_relu_array`. Float32 results are the same bits (the same
additions in the same order); float16 ones are computed in float32 and
rounded once, where numpy rounds after every addition of a transform.

:func:`matmul` is the matrix product of the fast path for every array
module and dtype: float16 products accumulate in float32.
"""

import functools

import chainer
import numpy


def matmul(a, b, out=None):
    """``a @ b``, accumulated in float32 at least.

    CuPy's 2-D float16 products run on cuBLAS with float32 accumulation;
    numpy has no float16 BLAS, so its float16 products are computed in
    float32 and rounded to float16, as the GPU rounds its result.

    Args:
        a: ``(M, K)`` or a batch of them.
        b: ``(K, N)`` or a batch of them, of the dtype of ``a``.
        out: Where to write ``a @ b`` (any strides); a new array if None.

    Returns:
        ``a @ b`` in the dtype of ``a``.
    """
    xp = chainer.backend.get_array_module(a)
    if xp is numpy and a.dtype == numpy.float16:
        product = numpy.matmul(a.astype(numpy.float32),
                               b.astype(numpy.float32))
        if out is None:
            return product.astype(numpy.float16)
        out[...] = product
        return out
    return xp.matmul(a, b, out=out)


def bias_relu_array(product, bias, out):
    """``out = max(product + bias, 0)``, in float32 for float16 arrays.

    The array version of :func:`bias_relu` (``out`` may be ``product``).
    """
    xp = chainer.backend.get_array_module(product)
    if product.dtype == numpy.float32:
        if out is not product:
            out[...] = product
        out += bias
        return xp.maximum(out, 0, out=out)
    total = product.astype(numpy.float32)
    total += bias
    xp.maximum(total, 0, out=total)
    out[...] = total
    return out


def bias_relu(product, bias, out):
    """``out = max(product + bias, 0)``: a kernel on CuPy arrays, else
    :func:`bias_relu_array`.

    Args:
        product: ``(..., O)`` float32 or float16.
        bias: ``(O,)`` float32.
        out: ``(..., O)`` of the dtype of ``product``, any strides (a
            channel slice); may be ``product``.

    Returns:
        ``out``.
    """
    if chainer.backend.get_array_module(product) is numpy:
        return bias_relu_array(product, bias, out)
    _bias_relu_kernel()(product, bias, out)
    return out


def winograd_input_tiles(frames, out_t, tiles_h, tiles_w, b_t):
    """The transformed input tiles of ``out_t`` output frames, stacked over
    the time taps, in one kernel (CuPy arrays only).

    Args:
        frames: ``(out_t + 2, Hp, Wp, C)`` padded input frames,
            C-contiguous.
        out_t (int): Output frames.
        tiles_h (int): Tiles along the height.
        tiles_w (int): Tiles along the width.
        b_t (numpy.ndarray): ``B^T`` (4x4, coefficients 0 and +-1).

    Returns:
        ``(16, out_t * tiles_h * tiles_w, 3 * C)``: the same as
        ``stack_time_taps(input_transform(frames), out_t)``.
    """
    import cupy
    _, hp, wp, c = frames.shape
    frames = cupy.ascontiguousarray(frames)
    tiles = tiles_h * tiles_w
    stacked = cupy.empty((16, out_t * tiles, 3 * c), frames.dtype)
    kernel = _winograd_kernel('input', _c_matrix('B_T', b_t))
    kernel(frames, out_t, hp, wp, c, tiles_w, tiles, stacked)
    return stacked


def winograd_output(m, bias, out, a_t, relu=True):
    """The output transform of the tiles ``m``, cropped, plus ``bias``,
    ReLU if ``relu``, written into ``out``, in one kernel (CuPy arrays
    only).

    Args:
        m: ``(16, out_t * tiles_h * tiles_w, O)`` products, C-contiguous.
        bias: ``(O,)`` float32.
        out: ``(out_t, H, W, O)``, any strides (a channel slice), with
            ``tiles_h = ceil(H / 2)`` and ``tiles_w = ceil(W / 2)``.
        a_t (numpy.ndarray): ``A^T`` (2x4, coefficients 0 and +-1).
        relu (bool): Apply ReLU (False: the convolution plus bias).

    Returns:
        ``out``.
    """
    import cupy
    out_t, h, w, o = out.shape
    tiles_h, tiles_w = -(-h // 2), -(-w // 2)
    kernel = _winograd_kernel('output', _c_matrix('A_T', a_t))
    kernel(cupy.ascontiguousarray(m), bias, out_t, h, w, o, tiles_h, tiles_w,
           bool(relu), out)
    return out


def _c_matrix(name, matrix):
    """A constant integer matrix in CUDA C (the coefficients are 0, +-1)."""
    assert (matrix == numpy.round(matrix)).all()
    rows = ', '.join('{' + ', '.join(str(int(v)) for v in row) + '}'
                     for row in matrix)
    return '__device__ const int {}[{}][{}] = {{{}}};\n'.format(
        name, matrix.shape[0], matrix.shape[1], rows)


# Sums in the order of winograd._combine: the first term times its
# coefficient, then an addition or a subtraction per coefficient of +-1.
_COMBINE = '''
__device__ void combine(float& sum, bool& started, int c, float term) {
    if (c == 0) return;
    if (!started) { sum = term * c; started = true; }
    else if (c == 1) sum += term;
    else sum -= term;
}
'''

_WINOGRAD_INPUT = '''
long long c = i % channels;
long long r = i / channels;
int dt = r % 3; r /= 3;
long long p = r % tiles; r /= tiles;
long long t = r % out_t;
int e = r / out_t;
int ei = e / 4, ej = e % 4;
long long th = p / tiles_w, tw = p % tiles_w;
float v = 0.f;
bool started = false;
for (int l = 0; l < 4; ++l) {
    if (B_T[ej][l] == 0) continue;
    float row = 0.f;
    bool row_started = false;
    for (int k = 0; k < 4; ++k) {
        long long index = (((t + dt) * hp + 2 * th + k) * wp + 2 * tw + l)
                          * channels + c;
        combine(row, row_started, B_T[ei][k], (float)x[index]);
    }
    combine(v, started, B_T[ej][l], row);
}
stacked = (T)v;
'''

_WINOGRAD_OUTPUT = '''
long long o = i % out_c;
long long r = i / out_c;
long long w = r % width; r /= width;
long long h = r % height;
long long t = r / height;
int a = h % 2, b = w % 2;
long long tile = (t * tiles_h + h / 2) * tiles_w + w / 2;
long long step = out_t * tiles_h * tiles_w * out_c;
float v = 0.f;
bool started = false;
for (int l = 0; l < 4; ++l) {
    if (A_T[b][l] == 0) continue;
    float row = 0.f;
    bool row_started = false;
    for (int k = 0; k < 4; ++k) {
        combine(row, row_started, A_T[a][k],
                (float)m[(k * 4 + l) * step + tile * out_c + o]);
    }
    combine(v, started, A_T[b][l], row);
}
v += bias[o];
if (relu && !(v > 0.f)) v = 0.f;
y = (T)v;
'''


@functools.lru_cache(maxsize=None)
def _bias_relu_kernel():
    # Built on first use: CuPy is an optional dependency.
    import cupy
    return cupy.ElementwiseKernel(
        'T p, float32 b', 'T y',
        'float v = (float)p + b; y = (T)(v > 0.f ? v : 0.f);',
        'i3d_bias_relu')


@functools.lru_cache(maxsize=None)
def _winograd_kernel(which, matrix_source):
    """The input or output transform kernel for the coefficient matrix
    declared by ``matrix_source`` (C source, see :func:`_c_matrix`)."""
    import cupy
    preamble = matrix_source + _COMBINE
    if which == 'input':
        return cupy.ElementwiseKernel(
            'raw T x, int64 out_t, int64 hp, int64 wp, int64 channels, '
            'int64 tiles_w, int64 tiles', 'T stacked', _WINOGRAD_INPUT,
            'i3d_winograd_input', preamble=preamble)
    return cupy.ElementwiseKernel(
        'raw T m, raw float32 bias, int64 out_t, int64 height, '
        'int64 width, int64 out_c, int64 tiles_h, int64 tiles_w, bool relu',
        'T y', _WINOGRAD_OUTPUT, 'i3d_winograd_output', preamble=preamble)
