"""TV-L1 optical flow from OpenCV contrib, as in DeepMind's preprocessing."""

import numbers

import cv2
import numpy

from chainercv_i3d.flow.base import CPU_DEVICES
from chainercv_i3d.flow.base import FlowBackend
from chainercv_i3d.flow.registry import register_flow_backend

# option -> (setter of cv2.optflow.DualTVL1OpticalFlow, kind, valid when,
# the rule in words). Checked when the backend is made, without OpenCV.
_OPTIONS = {
    'tau': ('setTau', float, lambda v: v > 0, 'a positive number'),
    'lambda_': ('setLambda', float, lambda v: v > 0, 'a positive number'),
    'theta': ('setTheta', float, lambda v: v > 0, 'a positive number'),
    'n_scales': ('setScalesNumber', int, lambda v: v >= 1,
                 'an integer of at least 1'),
    'warps': ('setWarpingsNumber', int, lambda v: v >= 1,
              'an integer of at least 1'),
    'epsilon': ('setEpsilon', float, lambda v: v > 0, 'a positive number'),
    'inner_iterations': ('setInnerIterations', int, lambda v: v >= 1,
                         'an integer of at least 1'),
    'outer_iterations': ('setOuterIterations', int, lambda v: v >= 1,
                         'an integer of at least 1'),
    'scale_step': ('setScaleStep', float, lambda v: 0 < v < 1,
                   'a number in (0, 1)'),
    'gamma': ('setGamma', float, lambda v: v >= 0, 'a non-negative number'),
    'median_filtering': ('setMedianFiltering', int, lambda v: v >= 1,
                         'an integer of at least 1'),
}


def _check_option(name, value):
    _, kind, valid, rule = _OPTIONS[name]
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind is int:
        is_number = is_number and float(value).is_integer()
    if not (is_number and valid(value)):
        raise ValueError('tvl1 option {} must be {}, not {!r}'.format(
            name, rule, value))
    return kind(value)


def _create_tvl1(options):
    # cv2.optflow only exists in the contrib build; opencv-python lacks it.
    optflow = getattr(cv2, 'optflow', None)
    if optflow is None or not hasattr(optflow, 'DualTVL1OpticalFlow_create'):
        raise RuntimeError(
            'TV-L1 optical flow needs cv2.optflow from OpenCV contrib, which '
            'the installed OpenCV {} lacks: pip uninstall opencv-python '
            'opencv-python-headless, then pip install '
            'opencv-contrib-python-headless'.format(cv2.__version__))
    tvl1 = optflow.DualTVL1OpticalFlow_create()
    for name, value in sorted(options.items()):
        getattr(tvl1, _OPTIONS[name][0])(value)
    return tvl1


class OpenCVTVL1(FlowBackend):
    """Dual TV-L1 optical flow of OpenCV contrib, on the CPU.

    DeepMind computed the flow of Kinetics with OpenCV's TV-L1 and its
    default parameters, which are the defaults here. The options change
    them, through the setters of ``cv2.optflow.DualTVL1OpticalFlow``:
    ``tau``, ``lambda_``, ``theta``, ``n_scales``, ``warps``, ``epsilon``,
    ``inner_iterations``, ``outer_iterations``, ``scale_step``, ``gamma``,
    ``median_filtering``; they are checked when the backend is made.

    The OpenCV object is created on first use and is not pickled: a pickled
    backend creates its own in the process that unpickles it. One instance
    must not be used by two threads at once. Worker processes are forked
    and run OpenCV on one thread each (:meth:`worker_init`).

    Example:
        >>> backend = get_flow_backend('tvl1')
        >>> flow = backend.compute_video(gray)  # (T - 1, H, W, 2) float32

    Args:
        device: ``None`` or ``'cpu'`` (also ``'@numpy'`` or ``-1``): this
            backend runs on the CPU only.
        **options: TV-L1 parameters, among those above.

    Raises:
        ValueError: Another device, an unknown option or a bad value.
        RuntimeError: On first use, when OpenCV has no ``cv2.optflow`` (it
            is not the contrib build).
    """

    option_names = tuple(sorted(_OPTIONS))
    mp_context = 'fork'

    def __init__(self, device=None, **options):
        super(OpenCVTVL1, self).__init__(device, **options)
        if device not in CPU_DEVICES:
            raise ValueError(
                "flow backend 'tvl1' (OpenCV TV-L1) runs on the CPU only: "
                "device must be 'cpu' or None, not {!r}".format(device))
        self.options = {name: _check_option(name, value)
                        for name, value in options.items()}
        self._tvl1 = None

    def worker_init(self):
        # Parallelism comes from the worker processes; OpenCV's own threads
        # would oversubscribe the cores.
        cv2.setNumThreads(1)

    def compute(self, prev_gray, next_gray):
        """Computes the TV-L1 flow from one frame to the next.

        Args:
            prev_gray (numpy.ndarray): ``(H, W)`` uint8, the first frame.
            next_gray (numpy.ndarray): ``(H, W)`` uint8, the second frame.

        Returns:
            numpy.ndarray: ``(H, W, 2)`` float32 flow in pixels, x then y.
        """
        if self._tvl1 is None:
            self._tvl1 = _create_tvl1(self.options)
        flow = self._tvl1.calc(numpy.ascontiguousarray(prev_gray),
                               numpy.ascontiguousarray(next_gray), None)
        return flow.astype(numpy.float32, copy=False)

    def __getstate__(self):
        # The cv2 object cannot be pickled; the copy recreates it lazily.
        state = self.__dict__.copy()
        state['_tvl1'] = None
        return state


register_flow_backend('tvl1', OpenCVTVL1)
