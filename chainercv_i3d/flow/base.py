"""The interface every optical-flow backend implements."""

import numpy


class FlowBackend(object):
    """Dense optical flow between grayscale frames.

    A backend implements :meth:`compute` for one pair of frames;
    :meth:`compute_video` applies it to every consecutive pair of a video.
    Flow is in pixels, x (rightwards) then y (downwards), from ``prev`` to
    ``next``: the content at ``(x, y)`` in ``prev`` is at
    ``(x + flow[y, x, 0], y + flow[y, x, 1])`` in ``next``.

    Instances must be picklable, so that they can be sent to worker
    processes; a backend holding an unpicklable handle creates it lazily.

    Example:
        >>> backend = get_flow_backend('tvl1')
        >>> flow = backend.compute_video(gray_frames)  # (T - 1, H, W, 2)

    Attributes:
        name (str): The name the backend is registered under.
    """

    name = None

    def compute(self, prev_gray, next_gray):
        """Computes the flow from one frame to the next.

        Args:
            prev_gray (numpy.ndarray): ``(H, W)`` uint8, the first frame.
            next_gray (numpy.ndarray): ``(H, W)`` uint8, the second frame.

        Returns:
            numpy.ndarray: ``(H, W, 2)`` float32 flow in pixels, x then y.
        """
        raise NotImplementedError

    def compute_video(self, gray_frames):
        """Computes the flow between every pair of consecutive frames.

        Args:
            gray_frames (numpy.ndarray): ``(T, H, W)`` uint8, ``T >= 1``.

        Returns:
            numpy.ndarray: ``(T - 1, H, W, 2)`` float32; ``flow[t]`` is the
            flow from frame ``t`` to frame ``t + 1``.

        Raises:
            ValueError: ``gray_frames`` is not a non-empty ``(T, H, W)``
                uint8 array.
        """
        gray_frames = numpy.asarray(gray_frames)
        if gray_frames.ndim != 3 or len(gray_frames) == 0:
            raise ValueError(
                'gray_frames must be (T, H, W) with T >= 1, got shape {}'
                .format(gray_frames.shape))
        if gray_frames.dtype != numpy.uint8:
            raise ValueError('gray_frames must be uint8, got {}'.format(
                gray_frames.dtype))
        n_frame, height, width = gray_frames.shape
        flow = numpy.empty((n_frame - 1, height, width, 2), numpy.float32)
        for t in range(n_frame - 1):
            flow[t] = self.compute(gray_frames[t], gray_frames[t + 1])
        return flow

    def __repr__(self):
        return '{}()'.format(type(self).__name__)
