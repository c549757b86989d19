"""Storing flow as uint8 images: truncation to a bound, then 256 levels."""

import numpy

from chainercv_i3d.presets import DEEPMIND_KINETICS


def _check_bound(bound):
    if not bound > 0:
        raise ValueError('bound must be positive, got {}'.format(bound))


def quantize_flow(flow, bound=DEEPMIND_KINETICS.flow_bound):
    """Quantizes flow to uint8, as DeepMind's preprocessing.

    Values are truncated to ``[-bound, bound]`` and mapped linearly to the 256
    levels ``q = round((f + bound) * 255 / (2 * bound))``. Within the bound,
    :func:`dequantize_flow` recovers ``f`` to within half a step,
    ``bound / 255`` (0.0784 pixels for the default bound of 20).

    Args:
        flow (numpy.ndarray): Flow in pixels, any shape, e.g. ``(T, H, W, 2)``
            (or a CuPy array: then quantized on its GPU).
        bound (float): The truncation bound in pixels.

    Returns:
        numpy.ndarray: uint8 of the shape of ``flow`` (a CuPy array for a
        CuPy one).
    """
    _check_bound(bound)
    xp = _array_module(flow)
    flow = xp.clip(xp.asarray(flow, numpy.float32), -bound, bound)
    q = xp.round((flow + bound) * (255 / (2 * bound)))
    # Rounding of the float32 product cannot leave [0, 255]; clip to be safe.
    return xp.clip(q, 0, 255).astype(numpy.uint8)


def _array_module(array):
    """cupy for a CuPy array (a GPU flow backend quantizes on the device
    before copying back), numpy for anything else."""
    if type(array).__module__.split('.')[0] == 'cupy':
        import cupy
        return cupy
    return numpy


def dequantize_flow(q, bound=DEEPMIND_KINETICS.flow_bound):
    """Maps uint8 levels back to pixels: ``q * (2 * bound) / 255 - bound``.

    The inverse of :func:`quantize_flow` up to half a step (``bound / 255``
    pixels) within the bound. Level 0 is ``-bound``, level 255 is ``bound``.

    Args:
        q (numpy.ndarray): uint8 levels, any shape.
        bound (float): The bound the flow was quantized with.

    Returns:
        numpy.ndarray: float32 flow in pixels, of the shape of ``q``.
    """
    _check_bound(bound)
    q = numpy.asarray(q).astype(numpy.float32)
    return (q * numpy.float32(2 * bound) / numpy.float32(255)
            - numpy.float32(bound))
