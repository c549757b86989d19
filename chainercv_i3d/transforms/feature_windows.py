"""Which frames each output step of a feature extraction sees."""

import numpy

ALIGNS = ('start', 'center')
TAILS = ('drop', 'pad', 'keep')
PADS = ('edge', 'zeros')

# Index that marks a frame of zeros in a window (see feature_windows).
ZERO_FRAME = -1


def _check(n_frames, window, stride, align, tail, pad, lookahead):
    problems = []
    if n_frames < 1:
        problems.append('a video needs frames, got n_frames={}'.format(
            n_frames))
    if window is not None and window < 1:
        problems.append('window must be positive, got {}'.format(window))
    if stride is not None and stride < 1:
        problems.append('stride must be positive, got {}'.format(stride))
    for name, value, choices in (('align', align, ALIGNS),
                                 ('tail', tail, TAILS), ('pad', pad, PADS)):
        if value not in choices:
            problems.append('{} must be one of {}, not {!r}'.format(
                name, ', '.join(choices), value))
    if lookahead < 0:
        problems.append('lookahead must be >= 0, got {}'.format(lookahead))
    if problems:
        raise ValueError('; '.join(problems))


def _padded(indices, n_frames, pad):
    outside = (indices < 0) | (indices >= n_frames)
    if pad == 'edge':
        return numpy.clip(indices, 0, n_frames - 1)
    indices = indices.copy()
    indices[outside] = ZERO_FRAME
    return indices


def feature_windows(n_frames, window=None, stride=None, align='start',
                    tail='drop', pad='edge', lookahead=0):
    """The frames of every window, one window per output step.

    ``window=None`` is the whole video as one window. Otherwise, with
    ``align='start'``, windows of ``window`` frames start at frames 0,
    ``stride``, ``2 * stride``, ... (``stride`` defaults to ``window``).
    A window is *full* when its frames and ``lookahead`` frames after it are
    in the video (``lookahead=1``: a window also needs the frame after its
    last, as extractors whose flow of frame ``t`` is computed from ``t`` and
    ``t + 1`` do). ``tail`` says what happens to the frames after the last
    full window:

    - ``'drop'``: they are left out (the default). A video too short for
      even one full window gives one window of its frames repeated from the
      start (``temporal_crop``'s looping), as this package always did.
    - ``'pad'``: one more window starts ``stride`` frames after the last
      full one (at 0 when there is none); its frames past the end are
      padded by ``pad``.
    - ``'keep'``: the same window, cut at the end of the video (shorter;
      :meth:`~chainercv_i3d.links.I3DPredictor.features` leaves it out when
      it is shorter than the network's minimum input, 9 frames, unless it
      is the only window).

    With ``align='center'`` there is one step every ``stride`` frames, at
    frames ``c = 0, stride, 2 * stride, ... < n_frames``; its window has
    the frames ``[c - window // 2, c - window // 2 + window)``, those
    outside the video padded by ``pad`` (``tail`` does not apply: every
    step has its window). ``pad='edge'`` repeats the first or last frame;
    ``pad='zeros'`` marks the frame :data:`ZERO_FRAME` (-1), a frame of
    zeros *in model range*: mid-grey RGB, no motion.

    Example:
        >>> [w.tolist() for w in feature_windows(10, 4, 3)]
        [[0, 1, 2, 3], [3, 4, 5, 6]]
        >>> [w.tolist() for w in feature_windows(10, 4, 3, tail='keep')]
        [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
        >>> [w.tolist() for w in feature_windows(5, 3, 2, 'center',
        ...                                       pad='zeros')]
        [[-1, 0, 1], [1, 2, 3], [3, 4, -1]]

    Args:
        n_frames (int): Frames of the video (after frame-rate resampling).
        window (int): Frames per window; ``None``: the whole video.
        stride (int): Frames between steps (default ``window``).
        align (str): ``'start'`` or ``'center'``.
        tail (str): ``'drop'``, ``'pad'`` or ``'keep'`` (``align='start'``).
        pad (str): ``'edge'`` or ``'zeros'``.
        lookahead (int): Frames a full window needs after its last.

    Returns:
        list of numpy.ndarray: Per step, the ``(window,)`` int64 frame
        indices (fewer for a kept tail), :data:`ZERO_FRAME` for zeros.

    Raises:
        ValueError: A bad argument.
    """
    _check(n_frames, window, stride, align, tail, pad, lookahead)
    if window is None:
        return [numpy.arange(n_frames, dtype=numpy.int64)]
    stride = stride or window
    offsets = numpy.arange(window, dtype=numpy.int64)
    if align == 'center':
        return [_padded(c - window // 2 + offsets, n_frames, pad)
                for c in range(0, n_frames, stride)]
    usable = n_frames - lookahead
    starts = list(range(0, usable - window + 1, stride)) \
        if usable >= window else []
    windows = [s + offsets for s in starts]
    if tail == 'drop':
        if not windows:  # looped, as temporal_crop(loop=True)
            windows = [offsets % n_frames]
        return windows
    last_covered = starts[-1] + window - 1 if starts else -1
    start = starts[-1] + stride if starts else 0
    if last_covered < usable - 1 and start < max(usable, 1):
        if tail == 'pad':
            windows.append(_padded(start + offsets, max(usable, 1), pad))
        else:
            windows.append(numpy.arange(start, max(usable, 1),
                                        dtype=numpy.int64))
    return windows


def window_steps(windows, source_indices, source_fps):
    """Where each window lies in the source video, for the provenance.

    Args:
        windows (list of numpy.ndarray): From :func:`feature_windows`.
        source_indices (numpy.ndarray): ``(T,)`` the source frame each
            (resampled) frame shows.
        source_fps (float): Frame rate of the source.

    Returns:
        list of dict: Per step, ``first`` and ``last`` (the source frames of
        its first and last real frames, padding left out), ``start_s``
        (``first / source_fps``), ``end_s`` (``(last + 1) / source_fps``,
        the end of the last frame) and ``center_s`` (their midpoint).
    """
    source_indices = numpy.asarray(source_indices)
    steps = []
    for w in windows:
        real = source_indices[w[w != ZERO_FRAME]]
        first, last = int(real.min()), int(real.max())
        start_s, end_s = first / source_fps, (last + 1) / source_fps
        steps.append({'first': first, 'last': last,
                      'start_s': round(start_s, 6), 'end_s': round(end_s, 6),
                      'center_s': round((start_s + end_s) / 2, 6)})
    return steps
