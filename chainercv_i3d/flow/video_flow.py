"""The flow of a whole RGB video: the one helper every stage calls."""

import cv2
import numpy

from chainercv_i3d.presets import DEEPMIND_KINETICS

# Pairs handed to the backend at once by quantized_video_flow: large enough
# for a batching backend, small enough that the float32 flow of a long video
# never sits in memory whole (64 pairs at 256x340: 45 MB).
QUANTIZE_CHUNK_PAIRS = 64
# Pairs per backend call when video_flow shows progress: a progress step, few
# enough that the bar moves on a CPU (about a second a pair at 256x340 for
# TV-L1).
PROGRESS_CHUNK_PAIRS = 8


def gray_video(rgb_frames):
    """Converts RGB frames to the ``(T, H, W)`` uint8 grayscale a backend
    takes (OpenCV's ``COLOR_RGB2GRAY`` weights).

    Args:
        rgb_frames (list or numpy.ndarray): ``T`` frames of ``(H, W, 3)``
            uint8 RGB.

    Returns:
        numpy.ndarray: ``(T, H, W)`` uint8.

    Raises:
        ValueError: The frames are not ``(H, W, 3)`` uint8 of one size.
    """
    if len(rgb_frames) == 0:
        raise ValueError('no frame given: flow needs at least 2')
    first = numpy.asarray(rgb_frames[0])
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype != numpy.uint8:
        raise ValueError('frames must be (H, W, 3) uint8 RGB, got {} {}'
                         .format(first.shape, first.dtype))
    gray = numpy.empty((len(rgb_frames),) + first.shape[:2], numpy.uint8)
    for t, frame in enumerate(rgb_frames):
        frame = numpy.asarray(frame)
        if frame.shape != first.shape or frame.dtype != numpy.uint8:
            raise ValueError('frame {} is {} {}, frame 0 is {} uint8'.format(
                t, frame.shape, frame.dtype, first.shape))
        gray[t] = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return gray


def _check_n_frame(rgb_frames):
    if len(rgb_frames) < 2:
        raise ValueError('{} frame(s): flow needs at least 2'.format(
            len(rgb_frames)))


def _backend_flow(backend, gray):
    return _checked(backend, backend.compute_video(gray), gray,
                    numpy.float32)


def _checked(backend, flow, gray, dtype):
    """``flow`` after checking that a backend gave ``(T - 1, H, W, 2)``
    numpy ``dtype`` for the ``(T, H, W)`` frames ``gray``."""
    expected = (len(gray) - 1,) + gray.shape[1:] + (2,)
    if not isinstance(flow, numpy.ndarray) or flow.shape != expected \
            or flow.dtype != dtype:
        raise ValueError(
            'flow backend {!r} returned {} {} ({}) for {} frames of {}x{}: '
            'it must return a numpy array {} {}'.format(
                backend, getattr(flow, 'shape', None),
                getattr(flow, 'dtype', None), type(flow).__name__,
                len(gray), gray.shape[1],
                gray.shape[2], expected, numpy.dtype(dtype).name))
    return flow


def video_flow(rgb_frames, backend, bar=None,
               chunk_pairs=PROGRESS_CHUNK_PAIRS):
    """Computes the flow between consecutive frames of an RGB video.

    The frames go to the backend's ``compute_video`` as one grayscale
    video, so that a backend may batch the pairs; with a progress ``bar``,
    as chunks of ``chunk_pairs + 1`` frames that overlap by one frame (the
    pairs are the same), the bar ticking after each.

    Example:
        >>> frames, _ = decode_and_resample(path, 25.0, 256)
        >>> flow = video_flow(frames, get_flow_backend('tvl1'))

    Args:
        rgb_frames (list or numpy.ndarray): ``T >= 2`` frames of
            ``(H, W, 3)`` uint8 RGB.
        backend (FlowBackend): The flow backend.
        bar: A progress bar counting frame pairs (``update(n)``), or None.
        chunk_pairs (int): Frame pairs per call of ``compute_video`` when
            ``bar`` is given.

    Returns:
        numpy.ndarray: ``(T - 1, H, W, 2)`` float32 flow in pixels, x then
        y; ``flow[t]`` is the flow from frame ``t`` to ``t + 1``.

    Raises:
        ValueError: Fewer than 2 frames, frames that are not ``(H, W, 3)``
            uint8, a ``chunk_pairs`` below 1, or a backend returning
            another shape or dtype.
    """
    _check_n_frame(rgb_frames)
    gray = gray_video(rgb_frames)
    if bar is None:
        return _backend_flow(backend, gray)
    flows = []
    for start, stop in _pair_chunks(len(gray) - 1, chunk_pairs):
        flows.append(_backend_flow(backend, gray[start:stop + 1]))
        bar.update(stop - start)
    return numpy.concatenate(flows)


def _pair_chunks(n_pair, chunk_pairs):
    """``[(start, stop)]``: pairs ``start:stop`` of each chunk."""
    if chunk_pairs < 1:
        raise ValueError('chunk_pairs must be at least 1, not {}'.format(
            chunk_pairs))
    return [(start, min(start + chunk_pairs, n_pair))
            for start in range(0, n_pair, chunk_pairs)]


def quantized_video_flow(rgb_frames, backend,
                         bound=DEEPMIND_KINETICS.flow_bound,
                         chunk_pairs=QUANTIZE_CHUNK_PAIRS):
    """:func:`video_flow` quantized to uint8 with ``bound`` (as stored).

    The backend gets the video in chunks of ``chunk_pairs + 1`` frames that
    overlap by one frame, so the pairs are the same as in one call and the
    float32 flow of a long video is never in memory whole.

    Args:
        rgb_frames (list or numpy.ndarray): ``T >= 2`` frames of
            ``(H, W, 3)`` uint8 RGB.
        backend (FlowBackend): The flow backend.
        bound (float): Truncation bound in pixels
            (:func:`~chainercv_i3d.flow.quantize_flow`).
        chunk_pairs (int): Frame pairs per call of ``compute_video``.

    Returns:
        numpy.ndarray: ``(T - 1, H, W, 2)`` uint8.

    Raises:
        ValueError: As :func:`video_flow`.
    """
    _check_n_frame(rgb_frames)
    gray = gray_video(rgb_frames)
    quantized = numpy.empty((len(gray) - 1,) + gray.shape[1:] + (2,),
                            numpy.uint8)
    for start, stop in _pair_chunks(len(gray) - 1, chunk_pairs):
        chunk = gray[start:stop + 1]
        quantized[start:stop] = _checked(
            backend, backend.compute_video_quantized(chunk, bound), chunk,
            numpy.uint8)
    return quantized
