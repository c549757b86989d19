"""Clip samplers: which frames of a video become the clips a model sees.

A sampler maps a video's frame count to one or more *views*, each an array
of frame indices, as pytorchvideo's ``ClipSampler`` does; the precomputed
dataset reads exactly those frames. Samplers that draw at random take a
``numpy.random.Generator``, which the loader seeds per sample, so a run is
reproducible and worker processes never repeat each other's draws.

====================== =======================================================
sampler                views
====================== =======================================================
``FirstFrames(n)``     one: frames ``0 .. n-1``, the video repeated from its
                       start when shorter (DeepMind's evaluation, n = 251)
``UniformClips(k, n)`` k clips of n frames, starts spread evenly from the first
                       frame to the last full clip (looped when shorter)
``RandomClip(n)``      one clip of n frames at a uniformly random start
                       (training; looped when shorter)
``Segments(n)``        one view of n frames, one per equal segment: the middle
                       frame in test mode, a random one in training (TSN);
                       frames repeat when the video is shorter than n
``AllFrames()``        one view: every frame
====================== =======================================================
"""

import numpy


def _positive(name, value):
    if not isinstance(value, (int, numpy.integer)) or value < 1:
        raise ValueError('{} must be a positive int, not {!r}'.format(
            name, value))
    return int(value)


def _check_length(n_frames):
    if n_frames < 1:
        raise ValueError('a video of {} frames has no clip'.format(n_frames))


def _looped(start, n_frame, n_frames):
    # Frame start + i, the video repeated from its start when it ends.
    return (start + numpy.arange(n_frame, dtype=numpy.int64)) % n_frames


class ClipSampler(object):
    """Chooses the frames of the views of a video.

    Subclasses implement :meth:`__call__` and :meth:`describe`.

    Attributes:
        n_views (int): How many views a video gives.
        n_frame (int): Frames per view, ``None`` when it depends on the
            video (:class:`AllFrames`).
    """

    n_views = 1
    n_frame = None

    def __call__(self, n_frames, rng=None):
        """Returns the views of a video of ``n_frames`` frames.

        Args:
            n_frames (int): Frames the video has (at least 1).
            rng (numpy.random.Generator): Randomness, for samplers that
                draw; ``None`` is an error for them.

        Returns:
            list of numpy.ndarray: ``n_views`` int64 arrays of indices.
        """
        raise NotImplementedError

    def describe(self):
        """A JSON-ready dict naming the sampler and its arguments."""
        raise NotImplementedError

    def __repr__(self):
        args = dict(self.describe())
        name = args.pop('name')
        return '{}({})'.format(name, ', '.join(
            '{}={!r}'.format(k, v) for k, v in sorted(args.items())))


class FirstFrames(ClipSampler):
    """The first ``n_frame`` frames (DeepMind's evaluation: 251).

    Args:
        n_frame (int): Frames of the clip.
        loop (bool): Repeat a shorter video from its start; if False a
            shorter video is an error.
    """

    def __init__(self, n_frame, loop=True):
        self.n_frame = _positive('n_frame', n_frame)
        self.loop = loop

    def __call__(self, n_frames, rng=None):
        _check_length(n_frames)
        if n_frames < self.n_frame and not self.loop:
            raise ValueError('a video of {} frames is shorter than a clip of '
                             '{} (loop=False)'.format(n_frames, self.n_frame))
        return [_looped(0, self.n_frame, n_frames)]

    def describe(self):
        return {'name': 'first_frames', 'n_frame': self.n_frame,
                'loop': self.loop}


def uniform_starts(n_frames, n_frame, num_clips):
    """Start frames of ``num_clips`` clips spread evenly over a video: the
    first at frame 0, the last at the last full clip (all at 0 when the video
    is shorter than a clip), rounded to the nearest frame."""
    last = max(n_frames - n_frame, 0)
    if num_clips == 1:
        return [0]
    return [int(round(last * k / (num_clips - 1))) for k in range(num_clips)]


class UniformClips(ClipSampler):
    """``num_clips`` clips of ``n_frame`` frames spread evenly over a video.

    The first clip starts at frame 0 and the last ends at the last frame;
    the others are evenly between (starts rounded to the nearest frame). A
    video shorter than a clip is repeated from its start, as in
    :class:`FirstFrames`, so all its clips are the same. With one clip this
    is :class:`FirstFrames`.

    Args:
        num_clips (int): Clips per video.
        n_frame (int): Frames per clip.
    """

    def __init__(self, num_clips, n_frame):
        self.n_views = _positive('num_clips', num_clips)
        self.n_frame = _positive('n_frame', n_frame)

    def __call__(self, n_frames, rng=None):
        _check_length(n_frames)
        return [_looped(start, self.n_frame, n_frames) for start in
                uniform_starts(n_frames, self.n_frame, self.n_views)]

    def describe(self):
        return {'name': 'uniform', 'num_clips': self.n_views,
                'n_frame': self.n_frame}


def _need_rng(rng, sampler):
    if rng is None:
        raise ValueError('{!r} draws at random: pass rng, a '
                         'numpy.random.Generator'.format(sampler))
    return rng


class RandomClip(ClipSampler):
    """One clip of ``n_frame`` frames at a uniformly random start (training).

    A video shorter than the clip starts at frame 0 and is looped.

    Args:
        n_frame (int): Frames of the clip.
    """

    def __init__(self, n_frame):
        self.n_frame = _positive('n_frame', n_frame)

    def __call__(self, n_frames, rng=None):
        _check_length(n_frames)
        rng = _need_rng(rng, self)
        start = int(rng.integers(0, max(n_frames - self.n_frame, 0) + 1))
        return [_looped(start, self.n_frame, n_frames)]

    def describe(self):
        return {'name': 'random_clip', 'n_frame': self.n_frame}


def segment_bounds(n_frames, n_segments):
    """``(low, high)`` frame ranges of ``n_segments`` equal segments; a
    segment shorter than a frame holds the frame it falls in."""
    edges = numpy.arange(n_segments + 1) * n_frames / n_segments
    low = numpy.minimum(numpy.floor(edges[:-1]).astype(numpy.int64),
                        n_frames - 1)
    high = numpy.maximum(numpy.floor(edges[1:]).astype(numpy.int64), low + 1)
    return low, high


class Segments(ClipSampler):
    """One frame from each of ``n_segment`` equal segments (TSN sampling).

    In test mode each segment gives its middle frame, or with ``num_clips
    = K`` views the frames ``(2k + 1) / 2K`` of the way from its first frame
    to its last (k = 0 .. K - 1; "twice sampling" for K = 2); in training one view of a random
    frame of each segment. A video of fewer than ``n_segment`` frames
    repeats frames, in order.

    Args:
        n_segment (int): Segments, i.e. frames of the clip.
        random (bool): Draw a random frame per segment (training).
        num_clips (int): Views in test mode.
    """

    def __init__(self, n_segment, random=False, num_clips=1):
        self.n_frame = _positive('n_segment', n_segment)
        self.random = random
        self.n_views = _positive('num_clips', num_clips)
        if random and num_clips != 1:
            raise ValueError('random segments give one view (num_clips=1), '
                             'not {}'.format(num_clips))

    def __call__(self, n_frames, rng=None):
        _check_length(n_frames)
        low, high = segment_bounds(n_frames, self.n_frame)
        if self.random:
            rng = _need_rng(rng, self)
            return [rng.integers(low, high).astype(numpy.int64)]
        k = self.n_views
        # (2j + 1) / 2k of the way from a segment's first frame to its
        # last, floored: the middle frame for k = 1.
        return [low + ((high - low - 1) * (2 * j + 1)) // (2 * k)
                for j in range(k)]

    def describe(self):
        return {'name': 'segments', 'n_segment': self.n_frame,
                'random': self.random, 'num_clips': self.n_views}


class AllFrames(ClipSampler):
    """Every frame of the video, as one view."""

    def __call__(self, n_frames, rng=None):
        _check_length(n_frames)
        return [numpy.arange(n_frames, dtype=numpy.int64)]

    def describe(self):
        return {'name': 'all_frames'}


_SAMPLERS = {'first_frames': FirstFrames, 'uniform': UniformClips,
             'random_clip': RandomClip, 'segments': Segments,
             'all_frames': AllFrames}


def make_clip_sampler(description):
    """Builds a sampler from :meth:`ClipSampler.describe`'s dict, or from a
    preset's ``eval_sampler``.

    Example:

        >>> make_clip_sampler({'name': 'uniform', 'num_clips': 2,
        ...                    'n_frame': 64})
        uniform(n_frame=64, num_clips=2)

    Raises:
        ValueError: The name is unknown or the arguments do not fit it.
    """
    args = dict(description)
    name = args.pop('name', None)
    if name not in _SAMPLERS:
        raise ValueError('unknown clip sampler {!r}; known: {}'.format(
            name, ', '.join(sorted(_SAMPLERS))))
    try:
        return _SAMPLERS[name](**args)
    except TypeError as e:
        raise ValueError('clip sampler {!r}: {}'.format(name, e))


def sample_rng(seed, epoch, index):
    """The random generator of one sample: a pure function of the run's
    seed, the epoch and the sample's index, so a sample draws the same
    crops and flips whichever worker process loads it, and a resumed run
    draws what an uninterrupted one would."""
    return numpy.random.default_rng([int(seed), int(epoch), int(index)])


def flow_frame_indices(indices, n_flow_frames):
    """The flow of each frame index: flow ``t`` goes from frame ``t`` to
    ``t + 1``; the last frame has none and reuses the last flow."""
    return numpy.minimum(numpy.asarray(indices), n_flow_frames - 1)
