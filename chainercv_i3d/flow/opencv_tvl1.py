"""TV-L1 optical flow from OpenCV contrib, as in DeepMind's preprocessing."""

import cv2
import numpy

from chainercv_i3d.flow.base import FlowBackend


def _create_tvl1():
    # cv2.optflow only exists in the contrib build; opencv-python lacks it.
    optflow = getattr(cv2, 'optflow', None)
    if optflow is None or not hasattr(optflow, 'DualTVL1OpticalFlow_create'):
        raise RuntimeError(
            'TV-L1 optical flow needs cv2.optflow from OpenCV contrib, which '
            'the installed OpenCV {} lacks: pip uninstall opencv-python '
            'opencv-python-headless, then pip install '
            'opencv-contrib-python-headless'.format(cv2.__version__))
    return optflow.DualTVL1OpticalFlow_create()


class OpenCVTVL1(FlowBackend):
    """Dual TV-L1 optical flow of OpenCV contrib with default parameters.

    DeepMind computed the flow of Kinetics with OpenCV's TV-L1 and its default
    parameters, so none are exposed here. The OpenCV object is created on first
    use and is not pickled: a pickled backend creates its own in the process
    that unpickles it. One instance must not be used by two threads at once.

    Example:
        >>> backend = OpenCVTVL1()
        >>> flow = backend.compute(prev_gray, next_gray)  # (H, W, 2) float32

    Raises:
        RuntimeError: On first use, when OpenCV has no ``cv2.optflow`` (it is
            not the contrib build).
    """

    name = 'tvl1'

    def __init__(self):
        self._tvl1 = None

    def compute(self, prev_gray, next_gray):
        """Computes the TV-L1 flow from one frame to the next.

        Args:
            prev_gray (numpy.ndarray): ``(H, W)`` uint8, the first frame.
            next_gray (numpy.ndarray): ``(H, W)`` uint8, the second frame.

        Returns:
            numpy.ndarray: ``(H, W, 2)`` float32 flow in pixels, x then y.
        """
        if self._tvl1 is None:
            self._tvl1 = _create_tvl1()
        flow = self._tvl1.calc(numpy.ascontiguousarray(prev_gray),
                               numpy.ascontiguousarray(next_gray), None)
        return flow.astype(numpy.float32, copy=False)

    def __getstate__(self):
        # The cv2 object cannot be pickled; the copy recreates it lazily.
        state = self.__dict__.copy()
        state['_tvl1'] = None
        return state
