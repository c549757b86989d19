from chainercv_i3d.flow.base import FlowBackend  # NOQA
from chainercv_i3d.flow.opencv_tvl1 import OpenCVTVL1  # NOQA
from chainercv_i3d.flow.quantization import dequantize_flow  # NOQA
from chainercv_i3d.flow.quantization import quantize_flow  # NOQA

_BACKENDS = {'tvl1': OpenCVTVL1}


def get_flow_backend(name):
    """Returns a new instance of the flow backend registered as ``name``.

    Args:
        name (str): A backend name: ``'tvl1'`` (OpenCV contrib TV-L1).

    Returns:
        FlowBackend: The backend.

    Raises:
        ValueError: No backend has this name.
    """
    if name not in _BACKENDS:
        raise ValueError('unknown flow backend {!r}; known backends: {}'
                         .format(name, ', '.join(sorted(_BACKENDS))))
    return _BACKENDS[name]()
