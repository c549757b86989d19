"""OpenCV's TV-L1 optical flow as batched array code, on numpy or CuPy.

The algorithm is OpenCV 4.11 contrib ``DualTVL1OpticalFlow`` with its default
parameters (``modules/optflow/src/tvl1flow.cpp``), step by step and in
float32, written once for an array module ``xp`` (numpy or CuPy) so that many
frame pairs run at once:

- pyramid: each level is the previous one resized by 0.8 (bilinear, half-pixel
  centres, no smoothing) until a side would drop below 16 pixels;
- warp: Keys cubic (a = -0.75) with positions rounded to 1/32 pixel, taps
  outside the image contributing zero, summed in ``cv2.remap``'s order;
- a 5x5 median (replicated border) on the flow before each block of 30 inner
  iterations;
- a per-pair, per-warp stop when the squared update of the flow sums below
  ``epsilon ** 2 * pixels`` (the dual variables are still updated in the
  iteration that stops), summed in float32 in OpenCV's serial order on numpy.

A pair computed in a batch is exactly the pair computed alone. Against
OpenCV the flow agrees to the numerical noise floor of the algorithm, not bit
for bit (see ``tests/flow_tests/test_tvl1_xp.py`` for the bars).
"""

import numbers

import numpy

from chainercv_i3d.flow.base import check_gray_frames
from chainercv_i3d.flow.base import CPU_DEVICES
from chainercv_i3d.flow.base import FlowBackend
from chainercv_i3d.flow.quantization import quantize_flow
from chainercv_i3d.flow.registry import register_flow_backend
from chainercv_i3d.flow import tvl1_xp_kernels
from chainercv_i3d.utils.device import DeviceError
from chainercv_i3d.utils.device import resolve_device_spec

# OpenCV's defaults (DualTVL1OpticalFlow_create()).
TAU = 0.25
LAMBDA = 0.15
THETA = 0.3
N_SCALES = 5
WARPS = 5
EPSILON = 0.01
INNER_ITERATIONS = 30
OUTER_ITERATIONS = 10
SCALE_STEP = 0.8
MEDIAN_SIZE = 5
# A level with a side below this many pixels is not made (and ends the
# pyramid), as in OpenCV.
MIN_LEVEL_SIDE = 16

# float32 constants as OpenCV derives them (numpy.float32 so that numpy 1.x
# and 2.x promote alike: a float32 array times one stays float32).
_L_T = numpy.float32(LAMBDA * THETA)
_TAUT = numpy.float32(TAU / THETA)
_THETA = numpy.float32(THETA)
_FLT_EPSILON = numpy.float32(numpy.finfo(numpy.float32).eps)
_ONE = numpy.float32(1)
_HALF = numpy.float32(0.5)
_UPSCALE = numpy.float32(1 / SCALE_STEP)
# remap's fixed-point positions: 1/32 pixel (INTER_BITS = 5).
_TAB_BITS = 5
_TAB_SIZE = 1 << _TAB_BITS
_KEYS_A = numpy.float32(-0.75)

# Rough bytes per level-0 pixel of one pair in flight (state, warp and step
# temporaries, the frame's pyramid and gradients): sizes the chunks.
_BYTES_PER_PAIR_PIXEL = 200
DEFAULT_MEMORY_MB = 1024


def pyramid_sizes(height, width, n_scales=N_SCALES, scale_step=SCALE_STEP):
    """Returns the ``(height, width)`` of each pyramid level, finest first.

    Each level is ``cvRound`` of the previous size times ``scale_step``
    (half to even, as ``cv::resize`` with a scale factor); the first level
    with a side below 16 pixels is dropped and ends the pyramid, as in
    OpenCV (which then uses fewer scales).

    Args:
        height (int): Frame height.
        width (int): Frame width.
        n_scales (int): The most levels.
        scale_step (float): The factor between levels.

    Returns:
        list of tuple: ``[(height, width), ...]``, at least the frame's.
    """
    sizes = [(int(height), int(width))]
    for _ in range(1, n_scales):
        h, w = sizes[-1]
        h, w = int(numpy.rint(h * scale_step)), int(numpy.rint(w * scale_step))
        if h < MIN_LEVEL_SIDE or w < MIN_LEVEL_SIDE:
            break
        sizes.append((h, w))
    return sizes


def _linear_axis_table(src_n, dst_n, scale):
    """Source indices and float32 fractions of a bilinear resize along one
    axis: position ``(d + 0.5) * scale - 0.5`` (half-pixel centres) in
    float64, clamped to the image (a fraction of 0 at a clamped end)."""
    position = (numpy.arange(dst_n, dtype=numpy.float64) + 0.5) * scale - 0.5
    s = numpy.floor(position).astype(numpy.int64)
    fraction = position - s
    low = s < 0
    fraction[low], s[low] = 0, 0
    high = s >= src_n - 1
    fraction[high], s[high] = 0, src_n - 1
    return (s, numpy.minimum(s + 1, src_n - 1),
            fraction.astype(numpy.float32))


def _lerp(xp, a, b, fraction):
    """``a + (b - a) * fraction`` rounded once to float32 (a fused
    multiply-add, as the IPP resize OpenCV's x86 wheels call)."""
    return (a.astype(xp.float64) + (b - a).astype(xp.float64) * fraction
            ).astype(xp.float32)


def resize_bilinear(xp, images, size, scale=None):
    """``cv2.resize(INTER_LINEAR)`` of float32 images, horizontal pass first.

    OpenCV's x86 wheels resize float32 images with IPP, whose result this
    reproduces (half-pixel centres, positions in float64, each pass a
    linear interpolation rounded once) up to one float32 ulp on a few
    pixels in 10,000.

    Args:
        xp: numpy or cupy.
        images: ``(B, H, W)`` float32.
        size (tuple): ``(height, width)`` of the result.
        scale (float): Source pixels per result pixel on both axes, as
            ``cv2.resize(..., fx=1/scale, fy=1/scale)``; None: from the
            sizes, as ``cv2.resize(..., dsize)`` (``1 / (dst / src)``).

    Returns:
        ``(B, height, width)`` float32.
    """
    _, src_h, src_w = images.shape
    dst_h, dst_w = size
    scale_x = 1.0 / (dst_w / src_w) if scale is None else scale
    scale_y = 1.0 / (dst_h / src_h) if scale is None else scale
    x0, x1, fx = (xp.asarray(t) for t in _linear_axis_table(
        src_w, dst_w, scale_x))
    y0, y1, fy = (xp.asarray(t) for t in _linear_axis_table(
        src_h, dst_h, scale_y))
    rows = _lerp(xp, images[:, :, x0], images[:, :, x1], fx)
    return _lerp(xp, rows[:, y0, :], rows[:, y1, :], fy[:, None])


def image_pyramid(xp, images, sizes):
    """Returns ``[images resized to each size]``: each level is the
    previous one resized by 1/0.8 exactly (OpenCV's scale-factor call)."""
    levels = [images]
    for size in sizes[1:]:
        levels.append(resize_bilinear(xp, levels[-1], size,
                                      scale=1.0 / SCALE_STEP))
    return levels


def centered_gradient(xp, images):
    """OpenCV's ``centeredGradient``: ``0.5 * (f[x + 1] - f[x - 1])``,
    one-sided ``0.5 * (f[1] - f[0])`` at the borders (what a replicated
    border gives).

    Args:
        xp: numpy or cupy.
        images: ``(B, H, W)`` float32, H and W at least 2.

    Returns:
        tuple: ``(dx, dy)``, each ``(B, H, W)`` float32.
    """
    padded = xp.pad(images, ((0, 0), (1, 1), (1, 1)), mode='edge')
    dx = _HALF * (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2])
    dy = _HALF * (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1])
    return dx, dy


def forward_gradient(xp, u):
    """OpenCV's ``forwardGradient``: ``f[x + 1] - f[x]``, 0 in the last
    column (dx) and the last row (dy)."""
    dx = xp.zeros_like(u)
    dy = xp.zeros_like(u)
    dx[:, :, :-1] = u[:, :, 1:] - u[:, :, :-1]
    dy[:, :-1, :] = u[:, 1:, :] - u[:, :-1, :]
    return dx, dy


def divergence(xp, v1, v2):
    """OpenCV's ``divergence`` of ``(v1, v2)`` (backward differences; in
    the first row and column the missing term is dropped), in its order of
    operations."""
    div = xp.empty_like(v1)
    div[:, 1:, 1:] = ((v1[:, 1:, 1:] - v1[:, 1:, :-1])
                      + (v2[:, 1:, 1:] - v2[:, :-1, 1:]))
    div[:, 0, 1:] = (v1[:, 0, 1:] - v1[:, 0, :-1]) + v2[:, 0, 1:]
    div[:, 1:, 0] = (v1[:, 1:, 0] + v2[:, 1:, 0]) - v2[:, :-1, 0]
    div[:, 0, 0] = v1[:, 0, 0] + v2[:, 0, 0]
    return div


def median5(xp, u):
    """``cv2.medianBlur(u, 5)`` of each ``(H, W)`` image of ``(B, H, W)``
    float32 (replicated border)."""
    if xp is numpy:
        from scipy import ndimage
    else:
        from cupyx.scipy import ndimage
    return ndimage.median_filter(u, size=(1, MEDIAN_SIZE, MEDIAN_SIZE),
                                 mode='nearest')


def cubic_table():
    """The Keys cubic (a = -0.75) coefficients of ``cv2.remap`` at each of
    the 32 sub-pixel positions, computed as OpenCV does in float32.

    Returns:
        numpy.ndarray: ``(32, 4)`` float32; row ``k`` weighs the taps at
        ``-1, 0, 1, 2`` pixels from the integer position for the fraction
        ``k / 32``.
    """
    a = _KEYS_A
    one = _ONE
    x = numpy.arange(_TAB_SIZE, dtype=numpy.float32) * numpy.float32(
        1.0 / _TAB_SIZE)
    x1 = x + one
    c0 = ((a * x1 - numpy.float32(5) * a) * x1 + numpy.float32(8) * a) * x1 \
        - numpy.float32(4) * a
    c1 = ((a + numpy.float32(2)) * x - (a + numpy.float32(3))) * x * x + one
    mx = one - x
    c2 = ((a + numpy.float32(2)) * mx - (a + numpy.float32(3))) * mx * mx \
        + one
    c3 = one - c0 - c1 - c2
    return numpy.stack([c0, c1, c2, c3], axis=1).astype(numpy.float32)


def _fixed_point(xp, position):
    """remap's position in 1/32 pixel: ``cvRound(32 * p)`` (half to even),
    saturated far outside any image."""
    scaled = xp.clip(position * numpy.float32(_TAB_SIZE),
                     numpy.float32(-2 ** 30), numpy.float32(2 ** 30))
    return xp.rint(scaled).astype(xp.int32)


def warp_cubic(xp, images, frame_index, u1, u2):
    """``cv2.remap(image, x + u1, y + u2, INTER_CUBIC)`` with a zero border,
    for several images sharing the map.

    Inside (all 16 taps in the image) the taps are summed row by row, rows
    then added in order, as OpenCV; at the border, tap by tap, skipping
    taps outside: both bit for bit as ``cv2.remap`` on float32.

    Args:
        xp: numpy or cupy.
        images (list): ``(F, H, W)`` float32 arrays (e.g. a frame and its
            gradients).
        frame_index: ``(A,)`` int, the frame each map reads.
        u1: ``(A, H, W)`` float32, x displacement.
        u2: ``(A, H, W)`` float32, y displacement.

    Returns:
        list: ``(A, H, W)`` float32, one per image.
    """
    n_frame, height, width = images[0].shape
    table = xp.asarray(cubic_table())
    xs = xp.arange(width, dtype=xp.float32)[None, None, :]
    ys = xp.arange(height, dtype=xp.float32)[None, :, None]
    fixed_x = _fixed_point(xp, xs + u1)
    fixed_y = _fixed_point(xp, ys + u2)
    left = (fixed_x >> _TAB_BITS) - 1
    top = (fixed_y >> _TAB_BITS) - 1
    frac_x = fixed_x & (_TAB_SIZE - 1)
    frac_y = fixed_y & (_TAB_SIZE - 1)
    inside = ((left >= 0) & (left < width - 3)
              & (top >= 0) & (top < height - 3))
    base = xp.asarray(frame_index, dtype=xp.int64)[:, None, None] * (
        height * width)
    flats = [image.reshape(-1) for image in images]
    zero = xp.float32(0)
    totals = [None] * len(images)   # the inside order
    serials = [None] * len(images)  # the border order
    for i in range(4):
        row = top + i
        row_ok = (row >= 0) & (row < height)
        row_offset = base + xp.clip(row, 0, height - 1) * width
        weight_y = table[:, i][frac_y]
        row_sums = [None] * len(images)
        for j in range(4):
            column = left + j
            valid = row_ok & (column >= 0) & (column < width)
            index = row_offset + xp.clip(column, 0, width - 1)
            weight = weight_y * table[:, j][frac_x]
            for k, flat in enumerate(flats):
                tap = xp.where(valid, xp.take(flat, index) * weight, zero)
                row_sums[k] = tap if j == 0 else row_sums[k] + tap
                serials[k] = tap if serials[k] is None else serials[k] + tap
        for k in range(len(images)):
            totals[k] = row_sums[k] if i == 0 else totals[k] + row_sums[k]
    return [xp.where(inside, total, serial)
            for total, serial in zip(totals, serials)]


def _pair_errors(xp, du1, du2):
    """Per pair, ``sum(du1 ** 2 + du2 ** 2)`` as OpenCV's ``estimateU``:
    float32, serially in row-major order on numpy (a cumulative sum);
    in float64 on CuPy (a deterministic tree sum; the stop decisions agree
    with the serial float32 ones in the measurements)."""
    squares = (du1 * du1 + du2 * du2).reshape(len(du1), -1)
    if xp is numpy:
        return numpy.cumsum(squares, axis=1)[:, -1]
    return squares.sum(axis=1, dtype=xp.float64)


def _threshold(xp, u1, u2, i1wx, i1wy, grad, rho_c):
    """OpenCV's ``estimateV``: the thresholding step, returns (v1, v2)."""
    rho = rho_c + (i1wx * u1 + i1wy * u2)
    lt_grad = _L_T * grad
    safe_grad = xp.where(grad > _FLT_EPSILON, grad, _ONE)
    factor = xp.where(
        rho < -lt_grad, _L_T,
        xp.where(rho > lt_grad, -_L_T,
                 xp.where(grad > _FLT_EPSILON, -rho / safe_grad,
                          numpy.float32(0))))
    return u1 + factor * i1wx, u2 + factor * i1wy


def _dual_step(xp, u, p1, p2):
    """OpenCV's ``estimateDualVariables`` for one flow component."""
    ux, uy = forward_gradient(xp, u)
    norm = _ONE + _TAUT * xp.hypot(ux, uy)
    return (p1 + _TAUT * ux) / norm, (p2 + _TAUT * uy) / norm


_STATE = ('u1', 'u2', 'p11', 'p12', 'p21', 'p22')


class TVL1Batch(object):
    """OpenCV's default TV-L1 on many frame pairs at once, on ``xp``.

    Example:
        >>> flow = TVL1Batch(numpy).compute_pairs(prev, next)

    Args:
        xp: ``numpy`` or ``cupy`` (the arrays it works on; the device is
            CuPy's current one).
        use_kernels (bool): On CuPy, run the warp, the median and the inner
            iteration as the CUDA kernels of
            :mod:`chainercv_i3d.flow.tvl1_xp_kernels` (default) instead of the
            array code. Ignored on numpy.

    Attributes:
        xp: The array module.
        use_kernels (bool): Whether the CUDA kernels run.
    """

    def __init__(self, xp=numpy, use_kernels=True):
        self.xp = xp
        self.use_kernels = bool(use_kernels) and xp is not numpy

    def compute_pairs(self, prev_gray, next_gray):
        """Computes the flow of each pair ``(prev_gray[i], next_gray[i])``.

        Args:
            prev_gray: ``(P, H, W)`` uint8 (numpy or ``xp``).
            next_gray: ``(P, H, W)`` uint8.

        Returns:
            tuple: ``(flow, iterations)``: ``(P, H, W, 2)`` float32 ``xp``
            array in pixels (x then y), and ``(P,)`` int64 numpy, the inner
            iterations each pair ran (all levels and warps).

        Raises:
            ValueError: The arrays are not two uint8 arrays of one
                ``(P, H, W)`` shape, with ``H, W >= 4``.
        """
        xp = self.xp
        prev_gray = _check_pair_array('prev_gray', prev_gray)
        next_gray = _check_pair_array('next_gray', next_gray)
        if prev_gray.shape != next_gray.shape:
            raise ValueError(
                'prev_gray and next_gray must have one shape, got {} and {}'
                .format(prev_gray.shape, next_gray.shape))
        n_pair = len(prev_gray)
        frames = xp.concatenate([xp.asarray(prev_gray),
                                 xp.asarray(next_gray)])
        index = numpy.arange(n_pair)
        return self.compute_frames(frames, index, index + n_pair)

    def compute_frames(self, frames, prev_index, next_index):
        """Computes the flow from ``frames[prev_index[i]]`` to
        ``frames[next_index[i]]``: each frame's pyramid is made once.

        Args:
            frames: ``(F, H, W)`` uint8 ``xp`` array, ``H, W >= 4``.
            prev_index: ``(P,)`` int, numpy.
            next_index: ``(P,)`` int, numpy.

        Returns:
            tuple: As :meth:`compute_pairs`.
        """
        xp = self.xp
        _, height, width = frames.shape
        prev_index = numpy.asarray(prev_index, numpy.int64)
        next_index = numpy.asarray(next_index, numpy.int64)
        sizes = pyramid_sizes(height, width)
        pyramid = image_pyramid(xp, frames.astype(xp.float32), sizes)
        n_pair = len(prev_index)
        iterations = numpy.zeros(n_pair, numpy.int64)
        u1 = u2 = None
        for level in range(len(sizes) - 1, -1, -1):
            if u1 is None:
                u1 = xp.zeros((n_pair,) + sizes[level], xp.float32)
                u2 = xp.zeros_like(u1)
            else:
                u1 = resize_bilinear(xp, u1, sizes[level]) * _UPSCALE
                u2 = resize_bilinear(xp, u2, sizes[level]) * _UPSCALE
            u1, u2 = self._level(pyramid[level], prev_index, next_index,
                                 u1, u2, iterations)
        return xp.stack([u1, u2], axis=-1), iterations

    def _level(self, images, prev_index, next_index, u1, u2, iterations):
        """OpenCV's ``procOneScale`` for all pairs at one level."""
        xp = self.xp
        _, height, width = images.shape
        # float32 of a float64 product, as OpenCV's scaledEpsilon.
        scaled_eps = float(numpy.float32(EPSILON * EPSILON * height * width))
        gradient_x, gradient_y = centered_gradient(xp, images)
        i0 = None if self.use_kernels else images[xp.asarray(prev_index)]
        state = {'u1': u1, 'u2': u2}
        for name in _STATE[2:]:
            state[name] = xp.zeros_like(u1)
        for _ in range(WARPS):
            if self.use_kernels:
                i1wx, i1wy, grad, rho_c = tvl1_xp_kernels.warp(
                    xp, images, gradient_x, gradient_y, next_index,
                    prev_index, state['u1'], state['u2'], cubic_table())
            else:
                i1w, i1wx, i1wy = warp_cubic(
                    xp, [images, gradient_x, gradient_y], next_index,
                    state['u1'], state['u2'])
                grad = i1wx * i1wx + i1wy * i1wy
                rho_c = ((i1w - i1wx * state['u1']) - i1wy * state['u2']) \
                    - i0
            self._iterate(state, {'i1wx': i1wx, 'i1wy': i1wy, 'grad': grad,
                                  'rho_c': rho_c}, scaled_eps, iterations)
        return state['u1'], state['u2']

    def _iterate(self, state, warped, scaled_eps, iterations):
        """The outer/inner iterations of one warp; each pair stops on its
        own error. Finished pairs leave the working batch (written back to
        ``state``), so the arrays shrink as pairs stop."""
        xp = self.xp
        active = numpy.arange(len(state['u1']))
        work = dict(state, **warped)
        for _ in range(OUTER_ITERATIONS):
            work['u1'] = self._median(work['u1'])
            work['u2'] = self._median(work['u2'])
            for _ in range(INNER_ITERATIONS):
                errors = self._inner_step(work)
                iterations[active] += 1
                going = xp.asnumpy(errors > scaled_eps) if xp is not numpy \
                    else errors > scaled_eps
                if going.all():
                    continue
                _write_back(xp, state, work, active, ~going)
                active = active[going]
                if len(active) == 0:
                    return
                keep = xp.asarray(numpy.flatnonzero(going))
                work = {name: value[keep] for name, value in work.items()}
        _write_back(xp, state, work, active, numpy.ones(len(active), bool))

    def _median(self, u):
        if self.use_kernels:
            return tvl1_xp_kernels.median5(self.xp, u)
        return median5(self.xp, u)

    def _inner_step(self, work):
        """One inner iteration (``estimateV``, ``divergence``,
        ``estimateU``, ``estimateDualVariables``) on the working batch, in
        place in ``work``; returns each pair's error."""
        xp = self.xp
        if self.use_kernels:
            return tvl1_xp_kernels.inner_step(xp, work, _L_T, _THETA, _TAUT,
                                        _FLT_EPSILON)
        u1, u2 = work['u1'], work['u2']
        v1, v2 = _threshold(xp, u1, u2, work['i1wx'], work['i1wy'],
                            work['grad'], work['rho_c'])
        new_u1 = v1 + _THETA * divergence(xp, work['p11'], work['p12'])
        new_u2 = v2 + _THETA * divergence(xp, work['p21'], work['p22'])
        errors = _pair_errors(xp, new_u1 - u1, new_u2 - u2)
        work['p11'], work['p12'] = _dual_step(xp, new_u1, work['p11'],
                                              work['p12'])
        work['p21'], work['p22'] = _dual_step(xp, new_u2, work['p21'],
                                              work['p22'])
        work['u1'], work['u2'] = new_u1, new_u2
        return errors


def _write_back(xp, state, work, active, done):
    """Copies the working arrays of the pairs marked ``done`` into
    ``state`` (rows ``active[done]``)."""
    rows = xp.asarray(active[done])
    picked = xp.asarray(numpy.flatnonzero(done))
    for name in _STATE:
        state[name][rows] = work[name][picked]


def _check_pair_array(what, array):
    if not hasattr(array, 'shape') or not hasattr(array, 'dtype'):
        array = numpy.asarray(array)
    if array.ndim != 3 or len(array) == 0:
        raise ValueError('{} must be (P, H, W) with P >= 1, got shape {}'
                         .format(what, array.shape))
    if array.dtype != numpy.uint8:
        raise ValueError('{} must be uint8 (grey levels 0-255), got {}'
                         .format(what, array.dtype))
    _check_frame_size(array.shape[1:])
    return array


def _check_frame_size(size):
    if min(size) < 4:
        raise ValueError('frames must be at least 4x4 pixels for TV-L1, got '
                         '{}x{}'.format(size[0], size[1]))


def _gpu_id(device):
    """The CUDA device id ``device`` names, None for the CPU.

    Raises:
        ValueError: ``device`` is neither a CPU nor a CuPy device.
    """
    if isinstance(device, str) or device is None or isinstance(
            device, numbers.Integral) and not isinstance(device, bool):
        if device in CPU_DEVICES:
            return None
        text = str(device).strip()
        if text.startswith('@cupy:'):
            text = text[len('@cupy:'):]
        if text.isdigit():
            return int(text)
    else:
        # A chainer device: chainer.get_device('@numpy') / ('@cupy:0').
        xp = getattr(device, 'xp', None)
        if xp is numpy:
            return None
        cuda_device = getattr(device, 'device', None)
        if getattr(xp, '__name__', None) == 'cupy' and hasattr(
                cuda_device, 'id'):
            return int(cuda_device.id)
    raise ValueError(
        "flow backend 'tvl1_xp' runs on numpy or CuPy: device must be None, "
        "'cpu', '@numpy' or -1 (numpy), or '@cupy:N', an int N >= 0 or a "
        'chainer CuPy device (GPU N), not {!r}'.format(device))


def _import_cupy(gpu_id):
    """CuPy, with GPU ``gpu_id`` checked to exist (the package's device
    rule: CuPy installed and importable, a driver, enough GPUs)."""
    try:
        resolve_device_spec(gpu_id)
    except DeviceError as e:
        raise ValueError("flow backend 'tvl1_xp': {}".format(e))
    import cupy
    return cupy


class XpTVL1(FlowBackend):
    """OpenCV's default TV-L1 as batched array code: numpy or CuPy.

    The same algorithm as the ``'tvl1'`` backend (OpenCV contrib, CPU),
    computed for many pairs at once: a video's frames get one pyramid each
    and its ``T - 1`` pairs run together, each stopping on its own. On numpy
    it is the tested reference (slower than OpenCV's C++); on a GPU (CuPy)
    it is the fast path. Flow agrees with OpenCV's to its numerical noise
    floor, not bit for bit.

    Example:
        >>> backend = get_flow_backend('tvl1_xp', device='@cupy:0')
        >>> flow = backend.compute_video(gray)  # (T - 1, H, W, 2) float32

    Args:
        device: ``None``, ``'cpu'``, ``'@numpy'`` or -1: numpy;
            ``'@cupy:N'``, an int ``N >= 0`` or a chainer CuPy device: GPU
            ``N`` through CuPy (imported here, checked to see the GPU).
        memory_mb (float): The most memory the pairs of one chunk may take
            (estimated; default 1024): a video with more pairs runs in
            chunks of consecutive pairs.
        use_kernels (bool): On a GPU, run the hot steps as CUDA kernels
            (default True; False: CuPy array code only).

    Attributes:
        last_iterations (numpy.ndarray): ``(P,)`` int64, the inner
            iterations each pair of the last call ran (all levels and
            warps; OpenCV allows 7,500).

    Raises:
        ValueError: Another device, no CuPy or no such GPU, or a bad
            ``memory_mb``.
    """

    option_names = ('memory_mb', 'use_kernels')
    mp_context = 'fork'
    runs_on_gpu = True

    def __init__(self, device=None, **options):
        super(XpTVL1, self).__init__(device, **options)
        memory_mb = options.get('memory_mb', DEFAULT_MEMORY_MB)
        if isinstance(memory_mb, bool) or not isinstance(
                memory_mb, numbers.Real) or not memory_mb > 0:
            raise ValueError('tvl1_xp option memory_mb must be a positive '
                             'number, not {!r}'.format(memory_mb))
        self.memory_mb = float(memory_mb)
        self.use_kernels = options.get('use_kernels', True)
        if not isinstance(self.use_kernels, bool):
            raise ValueError('tvl1_xp option use_kernels must be True or '
                             'False, not {!r}'.format(self.use_kernels))
        self.gpu_id = _gpu_id(device)
        if self.gpu_id is not None:
            _import_cupy(self.gpu_id)
            # A process that forked after CUDA started cannot use CUDA.
            self.mp_context = 'spawn'
        self.last_iterations = None

    @property
    def xp(self):
        """numpy, or cupy on a GPU device."""
        return numpy if self.gpu_id is None else _import_cupy(self.gpu_id)

    def worker_init(self):
        if self.gpu_id is not None:
            self.xp.cuda.Device(self.gpu_id).use()

    def pairs_per_chunk(self, height, width):
        """The most pairs of ``height x width`` one chunk holds under
        ``memory_mb`` (at least 1)."""
        per_pair = _BYTES_PER_PAIR_PIXEL * height * width
        return max(1, int(self.memory_mb * 2 ** 20 // per_pair))

    def compute(self, prev_gray, next_gray):
        """Computes the flow of one pair: ``(H, W)`` uint8 each; returns
        ``(H, W, 2)`` float32 numpy."""
        prev_gray = numpy.asarray(prev_gray)
        next_gray = numpy.asarray(next_gray)
        if prev_gray.ndim != 2 or next_gray.ndim != 2:
            raise ValueError('prev_gray and next_gray must be (H, W), got {} '
                             'and {}'.format(prev_gray.shape, next_gray.shape))
        return self.compute_pairs(prev_gray[None], next_gray[None])[0]

    def compute_pairs(self, prev_gray, next_gray):
        """Computes the flow of each pair ``(prev_gray[i], next_gray[i])``.

        Args:
            prev_gray (numpy.ndarray): ``(P, H, W)`` uint8.
            next_gray (numpy.ndarray): ``(P, H, W)`` uint8.

        Returns:
            numpy.ndarray: ``(P, H, W, 2)`` float32 flow in pixels, x then
            y; :attr:`last_iterations` holds the iterations.

        Raises:
            ValueError: Not two ``(P, H, W)`` uint8 arrays of one shape.
        """
        xp = self.xp
        with _on_device(xp, self.gpu_id):
            flow, self.last_iterations = TVL1Batch(
                xp, self.use_kernels).compute_pairs(
                prev_gray, next_gray)
            return _to_host(xp, flow)

    def compute_video(self, gray_frames):
        """Computes the flow between every pair of consecutive frames.

        Args:
            gray_frames (numpy.ndarray): ``(T, H, W)`` uint8, ``T >= 1``,
                ``H, W >= 4``.

        Returns:
            numpy.ndarray: ``(T - 1, H, W, 2)`` float32; ``flow[t]`` is the
            flow from frame ``t`` to frame ``t + 1``;
            :attr:`last_iterations` holds the iterations of each pair.

        Raises:
            ValueError: ``gray_frames`` is not a non-empty ``(T, H, W)``
                uint8 array, or a frame is smaller than 4x4.
        """
        return self._compute_in_chunks(gray_frames, numpy.float32,
                                       lambda flow: flow)

    def compute_video_quantized(self, gray_frames, bound):
        """:meth:`compute_video` quantized to uint8 with ``bound``
        (:func:`~chainercv_i3d.flow.quantize_flow`), on the device before
        the copy back (a quarter of the bytes)."""
        return self._compute_in_chunks(
            gray_frames, numpy.uint8, lambda flow: quantize_flow(flow, bound))

    def _compute_in_chunks(self, gray_frames, dtype, finish):
        """The flow of every pair of consecutive frames, ``finish(flow)``
        applied to each chunk's flow on the device, as ``dtype`` on the
        host; sets :attr:`last_iterations`."""
        gray_frames = check_gray_frames(gray_frames)
        n_frame, height, width = gray_frames.shape
        _check_frame_size((height, width))
        out = numpy.empty((n_frame - 1, height, width, 2), dtype)
        iterations = numpy.zeros(n_frame - 1, numpy.int64)
        chunk = self.pairs_per_chunk(height, width)
        xp = self.xp
        with _on_device(xp, self.gpu_id):
            batch = TVL1Batch(xp, self.use_kernels)
            for start in range(0, n_frame - 1, chunk):
                stop = min(start + chunk, n_frame - 1)
                frames = xp.asarray(gray_frames[start:stop + 1])
                index = numpy.arange(stop - start)
                chunk_flow, iterations[start:stop] = batch.compute_frames(
                    frames, index, index + 1)
                out[start:stop] = _to_host(xp, finish(chunk_flow))
        self.last_iterations = iterations
        return out


class _NoDevice(object):
    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


def _on_device(xp, gpu_id):
    return _NoDevice() if gpu_id is None else xp.cuda.Device(gpu_id)


def _to_host(xp, array):
    return array if xp is numpy else xp.asnumpy(array)


register_flow_backend('tvl1_xp', XpTVL1)
