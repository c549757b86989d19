"""Flow backends by name: the registry every stage picks its backend from."""

import numpy

from chainercv_i3d.flow.base import check_flow_options
from chainercv_i3d.flow.base import FlowBackend

_BACKENDS = {}


def register_flow_backend(name, cls):
    """Registers a backend class under ``name`` and sets ``cls.name``.

    The registration is the one place the name is written. Registering the
    same class under the same name again does nothing.

    Example:
        >>> class MyFlow(FlowBackend):
        ...     def compute(self, prev_gray, next_gray): ...
        >>> register_flow_backend('my_flow', MyFlow)
        >>> backend = get_flow_backend('my_flow')

    Args:
        name (str): The name (``--flow_backend`` of the scripts).
        cls (type): A subclass of :class:`FlowBackend`.

    Raises:
        TypeError: ``cls`` is not a :class:`FlowBackend` subclass.
        ValueError: ``name`` is taken by another class, or ``cls`` is
            already registered under another name.
    """
    if not (isinstance(cls, type) and issubclass(cls, FlowBackend)):
        raise TypeError('a flow backend must be a subclass of FlowBackend, '
                        'not {!r}'.format(cls))
    if not isinstance(name, str) or not name:
        raise ValueError('a flow backend name must be a non-empty string, '
                         'not {!r}'.format(name))
    if _BACKENDS.get(name, cls) is not cls:
        raise ValueError('flow backend name {!r} is taken by {}'.format(
            name, _BACKENDS[name].__name__))
    # cls.__dict__, not cls.name: a subclass inherits its parent's name.
    if cls.__dict__.get('name') not in (None, name):
        raise ValueError('{} is already registered as {!r}'.format(
            cls.__name__, cls.name))
    cls.name = name
    _BACKENDS[name] = cls


def flow_backend_names():
    """Returns the registered names, sorted."""
    return tuple(sorted(_BACKENDS))


def get_flow_backend(name, device=None, **options):
    """Returns a new instance of the flow backend registered as ``name``.

    Args:
        name (str): A registered name (:func:`flow_backend_names`), e.g.
            ``'tvl1'`` (OpenCV contrib TV-L1).
        device: Where it runs (``None``: the backend's default); each
            backend says which devices it takes.
        **options: The backend's options (its ``option_names``).

    Returns:
        FlowBackend: The backend.

    Raises:
        ValueError: No backend has this name, an option is unknown (both
            messages name the known ones), or the backend refuses the device
            or an option's value.
    """
    if name not in _BACKENDS:
        raise ValueError('unknown flow backend {!r}; known backends: {}'
                         .format(name, ', '.join(flow_backend_names())))
    cls = _BACKENDS[name]
    check_flow_options(cls, options)
    return cls(device=device, **options)


def flow_backend_beside(name, device, **options):
    """The backend ``name`` for a stage whose model runs on ``device``.

    A backend that runs on GPUs (:attr:`FlowBackend.runs_on_gpu`) gets the
    model's GPU; any other runs on its default device (OpenCV's TV-L1: this
    process's CPU), so ``--device gpu`` with ``--flow_backend tvl1`` puts
    the model on the GPU and the flow on the CPU.

    Args:
        name (str): A registered name.
        device (chainer.backend.Device): The model's device, or None (CPU).
        **options: The backend's options.

    Returns:
        FlowBackend: The backend.

    Raises:
        ValueError: As :func:`get_flow_backend`.
    """
    if name not in _BACKENDS:
        get_flow_backend(name)  # raises, naming the known backends
    on_gpu = device is not None and getattr(device, 'xp', numpy) is not numpy
    if on_gpu and _BACKENDS[name].runs_on_gpu:
        return get_flow_backend(name, device, **options)
    return get_flow_backend(name, **options)
