"""CUDA kernels (CuPy RawKernels) for the hot steps of ``tvl1_xp`` on a GPU.

Each kernel computes what the array code of :mod:`chainercv_i3d.flow.
tvl1_xp` computes, in the same float32 operations and order, compiled with
``--fmad=false`` (no fused multiply-add contraction) so that rounding
follows the numpy path:

- :func:`warp`: the cubic warp of a frame and its gradients, and the
  constant parts ``grad`` and ``rho_c`` of the data term (one kernel, per
  warp);
- :func:`inner_step`: the thresholding, divergence and flow update, the
  per-pair error summed in a fixed order (float64, one block per pair: no
  atomics, deterministic), then the dual update (per iteration).

- :func:`median5`: the 5x5 median with a replicated border (per outer
  iteration).

CuPy is imported when a kernel is first used.
"""

import numpy

_OPTIONS = ('--fmad=false', '-std=c++11')

_SOURCE = r'''
extern "C" {

__device__ inline int fixed_point(float position) {
    // cvRound(32 * p) (half to even), saturated far outside any image.
    float scaled = fminf(fmaxf(position * 32.0f, -1073741824.0f),
                         1073741824.0f);
    return __float2int_rn(scaled);
}

__global__ void tvl1_warp(
        const float* i1, const float* i1x, const float* i1y,
        const float* i0, const long long* next_index,
        const long long* prev_index, const float* u1, const float* u2,
        const float* table, float* i1wx_out, float* i1wy_out,
        float* grad_out, float* rho_out, long long n, int height,
        int width) {
    long long plane = (long long)height * width;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
         idx < n; idx += (long long)blockDim.x * gridDim.x) {
        long long pair = idx / plane;
        int pixel = (int)(idx - pair * plane);
        int y = pixel / width, x = pixel - (pixel / width) * width;
        float u1v = u1[idx], u2v = u2[idx];
        int fx = fixed_point((float)x + u1v);
        int fy = fixed_point((float)y + u2v);
        int left = (fx >> 5) - 1, top = (fy >> 5) - 1;
        int frac_x = fx & 31, frac_y = fy & 31;
        bool inside = left >= 0 && left < width - 3 && top >= 0
            && top < height - 3;
        long long base = next_index[pair] * plane;
        float total[3], serial[3];
        bool first = true;
        for (int i = 0; i < 4; ++i) {
            int row = top + i;
            bool row_ok = row >= 0 && row < height;
            int row_c = min(max(row, 0), height - 1);
            float wy = table[frac_y * 4 + i];
            float row_sum[3];
            for (int j = 0; j < 4; ++j) {
                int col = left + j;
                bool valid = row_ok && col >= 0 && col < width;
                int col_c = min(max(col, 0), width - 1);
                float w = wy * table[frac_x * 4 + j];
                long long at = base + (long long)row_c * width + col_c;
                float taps[3];
                taps[0] = valid ? i1[at] * w : 0.0f;
                taps[1] = valid ? i1x[at] * w : 0.0f;
                taps[2] = valid ? i1y[at] * w : 0.0f;
                for (int k = 0; k < 3; ++k) {
                    row_sum[k] = j == 0 ? taps[k] : row_sum[k] + taps[k];
                    serial[k] = first ? taps[k] : serial[k] + taps[k];
                }
                first = false;
            }
            for (int k = 0; k < 3; ++k) {
                total[k] = i == 0 ? row_sum[k] : total[k] + row_sum[k];
            }
        }
        float w0 = inside ? total[0] : serial[0];
        float wx = inside ? total[1] : serial[1];
        float wyv = inside ? total[2] : serial[2];
        i1wx_out[idx] = wx;
        i1wy_out[idx] = wyv;
        grad_out[idx] = wx * wx + wyv * wyv;
        rho_out[idx] = ((w0 - wx * u1v) - wyv * u2v)
            - i0[prev_index[pair] * plane + pixel];
    }
}

__device__ inline float divergence_at(const float* v1, const float* v2,
                                      long long idx, int x, int y,
                                      int width) {
    if (y > 0 && x > 0)
        return (v1[idx] - v1[idx - 1]) + (v2[idx] - v2[idx - width]);
    if (x > 0)
        return (v1[idx] - v1[idx - 1]) + v2[idx];
    if (y > 0)
        return (v1[idx] + v2[idx]) - v2[idx - width];
    return v1[idx] + v2[idx];
}

__global__ void tvl1_u_step(
        const float* i1wx, const float* i1wy, const float* grad,
        const float* rho_c, const float* p11, const float* p12,
        const float* p21, const float* p22, float* u1, float* u2,
        float* squares, long long n, int height, int width, float l_t,
        float theta, float flt_epsilon) {
    long long plane = (long long)height * width;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
         idx < n; idx += (long long)blockDim.x * gridDim.x) {
        int pixel = (int)(idx % plane);
        int y = pixel / width, x = pixel - (pixel / width) * width;
        float u1v = u1[idx], u2v = u2[idx];
        float gx = i1wx[idx], gy = i1wy[idx], g = grad[idx];
        float rho = rho_c[idx] + (gx * u1v + gy * u2v);
        float lt_grad = l_t * g;
        float factor;
        if (rho < -lt_grad) factor = l_t;
        else if (rho > lt_grad) factor = -l_t;
        else if (g > flt_epsilon) factor = -rho / g;
        else factor = 0.0f;
        float v1 = u1v + factor * gx;
        float v2 = u2v + factor * gy;
        float n1 = v1 + theta * divergence_at(p11, p12, idx, x, y, width);
        float n2 = v2 + theta * divergence_at(p21, p22, idx, x, y, width);
        float d1 = n1 - u1v, d2 = n2 - u2v;
        squares[idx] = d1 * d1 + d2 * d2;
        u1[idx] = n1;
        u2[idx] = n2;
    }
}

__global__ void tvl1_pair_sums(const float* squares, double* sums,
                               long long plane) {
    // One block per pair; each thread sums a fixed stride in order, then
    // a fixed tree: the same result every run.
    extern __shared__ double partial[];
    const float* values = squares + blockIdx.x * plane;
    double sum = 0.0;
    for (long long i = threadIdx.x; i < plane; i += blockDim.x) {
        sum += (double)values[i];
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            partial[threadIdx.x] += partial[threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) sums[blockIdx.x] = partial[0];
}

__global__ void tvl1_median5(const float* u, float* out, long long n,
                             int height, int width) {
    // cv2.medianBlur(u, 5) of each (H, W) plane, replicated border: the
    // 13th smallest of the 25 values (a partial selection sort; the median
    // is one of the inputs, so any exact selection gives the same bits).
    long long plane = (long long)height * width;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
         idx < n; idx += (long long)blockDim.x * gridDim.x) {
        long long base = (idx / plane) * plane;
        int pixel = (int)(idx - base);
        int y = pixel / width, x = pixel - (pixel / width) * width;
        float v[25];
        int k = 0;
        for (int dy = -2; dy <= 2; ++dy) {
            int row = min(max(y + dy, 0), height - 1);
            for (int dx = -2; dx <= 2; ++dx) {
                int col = min(max(x + dx, 0), width - 1);
                v[k++] = u[base + (long long)row * width + col];
            }
        }
        for (int i = 0; i <= 12; ++i) {
            int smallest = i;
            for (int j = i + 1; j < 25; ++j) {
                if (v[j] < v[smallest]) smallest = j;
            }
            float t = v[i]; v[i] = v[smallest]; v[smallest] = t;
        }
        out[idx] = v[12];
    }
}

__device__ inline float hypot_as_glibc(float a, float b) {
    // glibc's hypotf (what numpy and OpenCV call): double, rounded once.
    double da = a, db = b;
    return (float)sqrt(da * da + db * db);
}

__global__ void tvl1_p_step(const float* u1, const float* u2, float* p11,
                            float* p12, float* p21, float* p22, long long n,
                            int height, int width, float taut) {
    long long plane = (long long)height * width;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
         idx < n; idx += (long long)blockDim.x * gridDim.x) {
        int pixel = (int)(idx % plane);
        int y = pixel / width, x = pixel - (pixel / width) * width;
        bool has_right = x < width - 1, has_below = y < height - 1;
        float u1x = has_right ? u1[idx + 1] - u1[idx] : 0.0f;
        float u1y = has_below ? u1[idx + width] - u1[idx] : 0.0f;
        float u2x = has_right ? u2[idx + 1] - u2[idx] : 0.0f;
        float u2y = has_below ? u2[idx + width] - u2[idx] : 0.0f;
        float ng1 = 1.0f + taut * hypot_as_glibc(u1x, u1y);
        float ng2 = 1.0f + taut * hypot_as_glibc(u2x, u2y);
        p11[idx] = (p11[idx] + taut * u1x) / ng1;
        p12[idx] = (p12[idx] + taut * u1y) / ng1;
        p21[idx] = (p21[idx] + taut * u2x) / ng2;
        p22[idx] = (p22[idx] + taut * u2y) / ng2;
    }
}

}
'''

_THREADS = 256
_SUM_THREADS = 256
_MODULE = {}


def _module():
    """The compiled kernels (compiled once per process)."""
    if 'module' not in _MODULE:
        import cupy
        _MODULE['module'] = cupy.RawModule(code=_SOURCE, options=_OPTIONS)
    return _MODULE['module']


def _grid(n):
    return (int(min((n + _THREADS - 1) // _THREADS, 65535 * 8)),)


def warp(cupy, frames, gradient_x, gradient_y, next_index, prev_index, u1,
         u2, table):
    """The warp of ``tvl1_xp`` for one level: returns ``(i1wx, i1wy, grad,
    rho_c)``, each ``(A, H, W)`` float32.

    Args:
        cupy: The cupy module.
        frames: ``(F, H, W)`` float32, the level of each frame (I0 and I1).
        gradient_x: ``(F, H, W)`` float32, centred gradients of ``frames``.
        gradient_y: ``(F, H, W)`` float32.
        next_index: ``(A,)`` int, the frame each pair warps (I1).
        prev_index: ``(A,)`` int, the pair's first frame (I0).
        u1: ``(A, H, W)`` float32.
        u2: ``(A, H, W)`` float32.
        table: ``(32, 4)`` float32, the cubic coefficients.
    """
    n_pair, height, width = u1.shape
    outputs = [cupy.empty_like(u1) for _ in range(4)]
    n = n_pair * height * width
    _module().get_function('tvl1_warp')(
        _grid(n), (_THREADS,),
        (frames, gradient_x, gradient_y, frames,
         cupy.asarray(next_index, cupy.int64),
         cupy.asarray(prev_index, cupy.int64),
         cupy.ascontiguousarray(u1), cupy.ascontiguousarray(u2),
         cupy.asarray(table, cupy.float32), *outputs,
         numpy.int64(n), numpy.int32(height), numpy.int32(width)))
    return outputs


def median5(cupy, u):
    """``cv2.medianBlur(u, 5)`` of each ``(H, W)`` plane of ``u``
    ``(A, H, W)`` float32 (replicated border), one thread per pixel."""
    u = cupy.ascontiguousarray(u)
    out = cupy.empty_like(u)
    n_pair, height, width = u.shape
    n = n_pair * height * width
    _module().get_function('tvl1_median5')(
        _grid(n), (_THREADS,),
        (u, out, numpy.int64(n), numpy.int32(height), numpy.int32(width)))
    return out


def inner_step(cupy, work, l_t, theta, taut, flt_epsilon):
    """One inner iteration of ``tvl1_xp`` in place on the arrays of
    ``work`` (``u1``, ``u2``, ``p11`` ... ``p22`` updated); returns each
    pair's error, ``(A,)`` float64."""
    u1 = work['u1']
    n_pair, height, width = u1.shape
    n = n_pair * height * width
    for name in ('u1', 'u2', 'p11', 'p12', 'p21', 'p22'):
        work[name] = cupy.ascontiguousarray(work[name])
    squares = cupy.empty_like(work['u1'])
    module = _module()
    module.get_function('tvl1_u_step')(
        _grid(n), (_THREADS,),
        (work['i1wx'], work['i1wy'], work['grad'], work['rho_c'],
         work['p11'], work['p12'], work['p21'], work['p22'], work['u1'],
         work['u2'], squares, numpy.int64(n), numpy.int32(height),
         numpy.int32(width), numpy.float32(l_t), numpy.float32(theta),
         numpy.float32(flt_epsilon)))
    sums = cupy.empty(n_pair, cupy.float64)
    module.get_function('tvl1_pair_sums')(
        (n_pair,), (_SUM_THREADS,),
        (squares, sums, numpy.int64(height * width)),
        shared_mem=_SUM_THREADS * 8)
    module.get_function('tvl1_p_step')(
        _grid(n), (_THREADS,),
        (work['u1'], work['u2'], work['p11'], work['p12'], work['p21'],
         work['p22'], numpy.int64(n), numpy.int32(height),
         numpy.int32(width), numpy.float32(taut)))
    return sums
