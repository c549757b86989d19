"""The interface every optical-flow backend implements."""

import numpy

from chainercv_i3d.flow.quantization import quantize_flow

# The device specs meaning "this process's CPU" in the package's device
# rule (chainercv_i3d.utils.device), as a flow backend is given them.
CPU_DEVICES = (None, 'cpu', '@numpy', -1, '-1')


def check_flow_options(backend_class, options):
    """Checks ``options`` against the names ``backend_class`` declares.

    Raises:
        ValueError: An option is not one of ``backend_class.option_names``;
            the message names the known ones.
    """
    unknown = sorted(set(options) - set(backend_class.option_names))
    if unknown:
        known = ', '.join(backend_class.option_names) or 'none'
        raise ValueError('unknown option(s) {} for flow backend {!r} '
                         '({}); its options: {}'.format(
                             ', '.join(unknown), backend_class.name,
                             backend_class.__name__, known))


class FlowBackend(object):
    """Dense optical flow between grayscale frames.

    :meth:`compute_video` is THE call path: every stage (precompute, the
    predictor, :func:`~chainercv_i3d.flow.video_flow`) hands a backend a
    whole video (or a chunk of one) of grayscale frames, so that a backend
    may batch the pairs (e.g. on a GPU). The default :meth:`compute_video`
    loops over :meth:`compute`, which a simple backend implements for one
    pair. Flow is in pixels, x (rightwards) then y (downwards), from ``prev``
    to ``next``: the content at ``(x, y)`` in ``prev`` is at
    ``(x + flow[y, x, 0], y + flow[y, x, 1])`` in ``next``.

    Instances must be picklable, so that they can be sent to worker
    processes; a backend holding an unpicklable handle (an OpenCV object, a
    CUDA context) creates it lazily, on first use in the process that uses
    it. Worker processes start with :attr:`mp_context` and run
    :meth:`worker_init` first.

    A backend is registered by name with
    :func:`~chainercv_i3d.flow.register_flow_backend`, which sets
    :attr:`name`, and made by :func:`~chainercv_i3d.flow.get_flow_backend`.

    Example:
        >>> backend = get_flow_backend('tvl1')
        >>> flow = backend.compute_video(gray_frames)  # (T - 1, H, W, 2)

    Args:
        device: Where the backend runs (``None``: its default). Each backend
            says which devices it takes and raises ``ValueError`` for others.
        **options: Backend options, among :attr:`option_names`.

    Attributes:
        name (str): The name the backend is registered under (set by the
            registration, the one place it is written).
        option_names (tuple of str): The options the constructor takes.
        mp_context (str): How worker processes start: ``'fork'`` for CPU
            backends; a CUDA backend says ``'spawn'`` (a process that forked
            after CUDA initialised cannot use CUDA).
        runs_on_gpu (bool): Whether the backend takes a GPU device: stages
            that run a model on a GPU give it theirs
            (:func:`~chainercv_i3d.flow.flow_backend_beside`).
        device: The device given to the constructor.
        options (dict): The options given to the constructor.

    Raises:
        ValueError: An unknown option.
    """

    name = None
    option_names = ()
    mp_context = 'fork'
    runs_on_gpu = False

    def __init__(self, device=None, **options):
        check_flow_options(type(self), options)
        self.device = device
        self.options = dict(options)

    def worker_init(self):
        """Prepares a worker process before its first video (e.g. limits a
        library's threads: the parallelism comes from the processes).

        The default does nothing.
        """

    def compute(self, prev_gray, next_gray):
        """Computes the flow from one frame to the next.

        Args:
            prev_gray (numpy.ndarray): ``(H, W)`` uint8, the first frame.
            next_gray (numpy.ndarray): ``(H, W)`` uint8, the second frame.

        Returns:
            numpy.ndarray: ``(H, W, 2)`` float32 flow in pixels, x then y.
        """
        raise NotImplementedError(
            '{} implements neither compute nor compute_video'.format(
                type(self).__name__))

    def compute_video(self, gray_frames):
        """Computes the flow between every pair of consecutive frames.

        A backend that batches pairs overrides this method; the default
        calls :meth:`compute` for each pair.

        Args:
            gray_frames (numpy.ndarray): ``(T, H, W)`` uint8, ``T >= 1``.

        Returns:
            numpy.ndarray: ``(T - 1, H, W, 2)`` float32; ``flow[t]`` is the
            flow from frame ``t`` to frame ``t + 1``.

        Raises:
            ValueError: ``gray_frames`` is not a non-empty ``(T, H, W)``
                uint8 array.
        """
        gray_frames = check_gray_frames(gray_frames)
        n_frame, height, width = gray_frames.shape
        flow = numpy.empty((n_frame - 1, height, width, 2), numpy.float32)
        for t in range(n_frame - 1):
            flow[t] = self.compute(gray_frames[t], gray_frames[t + 1])
        return flow

    def compute_video_quantized(self, gray_frames, bound):
        """:meth:`compute_video` quantized to uint8 with ``bound``
        (:func:`~chainercv_i3d.flow.quantize_flow`), as the precompute stage
        stores it. A GPU backend overrides it to quantize on the device and
        copy back a quarter of the bytes.

        Returns:
            numpy.ndarray: ``(T - 1, H, W, 2)`` uint8.
        """
        return quantize_flow(self.compute_video(gray_frames), bound)

    def __repr__(self):
        # getattr: a subclass may not have called FlowBackend.__init__.
        arguments = ['{}={!r}'.format(k, v) for k, v in
                     sorted(getattr(self, 'options', {}).items())]
        if getattr(self, 'device', None) is not None:
            arguments.insert(0, 'device={!r}'.format(self.device))
        return '{}({})'.format(type(self).__name__, ', '.join(arguments))


def check_gray_frames(gray_frames):
    """Returns ``gray_frames`` as an array after checking it.

    Raises:
        ValueError: It is not a non-empty ``(T, H, W)`` uint8 array.
    """
    gray_frames = numpy.asarray(gray_frames)
    if gray_frames.ndim != 3 or len(gray_frames) == 0:
        raise ValueError(
            'gray_frames must be (T, H, W) with T >= 1, got shape {}'
            .format(gray_frames.shape))
    if gray_frames.dtype != numpy.uint8:
        raise ValueError('gray_frames must be uint8, got {}'.format(
            gray_frames.dtype))
    return gray_frames
