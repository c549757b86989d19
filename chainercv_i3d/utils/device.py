"""One meaning of ``--device`` for every script.

``'cpu'``, ``'gpu'`` (the GPU of the rank's node-local index, so the ranks
mpiexec starts on a node share out its GPUs), ``'auto'`` (a GPU when CuPy sees
one) or an explicit Chainer device spec; :data:`chainercv_i3d.utils.cli.
device_spec_help` says the same to users.

This module imports chainer, so ``chainercv_i3d.utils`` does not re-export
it; CuPy is imported only when a spec may need a GPU.
"""

import re

import chainer

from chainercv_i3d.chainer_compat import cuda_unavailable_reason


class DeviceError(ValueError):
    """A device spec that is malformed or names a device this node lacks."""


_INT_SPEC = re.compile(r'-?\d+$')
_CUPY_SPEC = re.compile(r'@cupy:(\d+)$')

_VALID_SPECS = ("give 'cpu', 'gpu', 'auto' or a Chainer device spec such as "
                "'@numpy', '@cupy:0', -1 (CPU) or 0 (GPU 0)")


def select_device(spec, comm=None):
    """Returns the Chainer device ``spec`` names, made the current one.

    Args:
        spec (str, int or chainer.backend.Device): ``'cpu'`` (NumPy);
            ``'gpu'`` (GPU ``comm.intra_rank % n``, n the GPUs CuPy sees);
            ``'auto'`` (``'gpu'`` when CuPy sees a GPU, else ``'cpu'``); or
            an explicit Chainer spec: ``'@numpy'``, ``'@cupy:1'``, an int
            (or its text) as in chainer, -1 for the CPU and N for GPU N, or
            a device.
        comm: A communicator from :func:`chainercv_i3d.utils.comm.get_comm`
            (only its ``intra_rank`` is read); None counts as node-local
            rank 0.

    Returns:
        chainer.backend.Device: The device; a CuPy device is also made
        current (``device.use()``).

    Raises:
        DeviceError: ``spec`` is malformed, or needs CuPy or a GPU this node
            does not have. It is a ValueError.
    """
    device = _get_device(resolve_device_spec(spec, comm), spec)
    device.use()
    return device


def resolve_device_spec(spec, comm=None):
    """Turns a ``--device`` value into an explicit Chainer spec.

    Checks that a spec needing a GPU can have it, but creates no device.

    Args:
        spec: As for :func:`select_device`.
        comm: As for :func:`select_device`.

    Returns:
        ``'@numpy'`` or ``'@cupy:N'`` for ``'cpu'``, ``'gpu'`` and
        ``'auto'``; an int for an integer spec; any other spec unchanged
        (``chainer.get_device`` judges it).

    Raises:
        DeviceError: ``spec`` is not a str, an int or a device, or needs CuPy
            or a GPU this node does not have.
    """
    if isinstance(spec, chainer.backend.Device):
        return spec
    if isinstance(spec, bool) or not isinstance(spec, (int, str)):
        raise DeviceError('device {!r} is not a device spec: {}'.format(
            spec, _VALID_SPECS))
    if isinstance(spec, str):
        spec = spec.strip()
        if _INT_SPEC.match(spec):
            spec = int(spec)
    if spec == 'cpu':
        return '@numpy'
    if spec == 'gpu':
        return _rank_gpu_spec(_require_gpus(spec), comm)
    if spec == 'auto':
        n_gpus = _gpu_count_or_zero()
        return _rank_gpu_spec(n_gpus, comm) if n_gpus else '@numpy'
    gpu_id = _named_gpu_id(spec)
    if gpu_id is not None:
        n_gpus = _require_gpus(spec)
        if gpu_id >= n_gpus:
            raise DeviceError(
                'device {!r} names GPU {}, but CuPy sees only {} GPU(s) on '
                'this node (0 to {})'.format(spec, gpu_id, n_gpus,
                                             n_gpus - 1))
    return spec


def _rank_gpu_spec(n_gpus, comm):
    intra_rank = 0 if comm is None else comm.intra_rank
    return '@cupy:{}'.format(intra_rank % n_gpus)


def _named_gpu_id(spec):
    """The CUDA device id an explicit spec names; None for other devices."""
    if isinstance(spec, int):
        return spec if spec >= 0 else None
    match = _CUPY_SPEC.match(spec)
    return int(match.group(1)) if match else None


def _require_gpus(spec):
    """The number of GPUs CuPy sees, which must be at least one."""
    try:
        n_gpus = _gpu_count()
    except DeviceError as e:
        raise DeviceError('device {!r} needs a GPU, but {}; or use '
                          "'cpu'".format(spec, e))
    if n_gpus == 0:
        raise DeviceError(
            'device {!r} needs a GPU, but CuPy sees none on this node (check '
            "nvidia-smi and CUDA_VISIBLE_DEVICES); or use 'cpu'".format(spec))
    return n_gpus


def _gpu_count_or_zero():
    try:
        return _gpu_count()
    except DeviceError:  # no CuPy or no CUDA driver: 'auto' means the CPU
        return 0


def _gpu_count():
    """How many GPUs CuPy sees on this node (initialises CUDA).

    Raises:
        DeviceError: CuPy is not installed, fails to import, cannot reach a
            CUDA driver, or chainer cannot use it.
    """
    try:
        import cupy
    except ModuleNotFoundError as e:
        if e.name != 'cupy':  # CuPy is there; something it needs is not
            raise DeviceError('CuPy fails to import ({})'.format(e))
        raise DeviceError('CuPy is not installed ({}): pip install '
                          '"chainercv_i3d[gpu]" (CUDA 12; [gpu-cuda13] or '
                          '[gpu-cuda11] for other drivers)'.format(e))
    except ImportError as e:  # e.g. a CUDA library that does not load
        raise DeviceError('CuPy fails to import ({})'.format(e))
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise DeviceError(reason)
    try:
        return cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as e:
        raise DeviceError('CuPy cannot reach a GPU ({})'.format(e))


def _get_device(resolved, spec):
    try:
        return chainer.get_device(resolved)
    except (ValueError, TypeError, RuntimeError) as e:
        # chainer's own words for a spec it cannot parse or a backend
        # (iDeep, ChainerX) that is not installed.
        raise DeviceError('device {!r} cannot be used ({}); {}'.format(
            spec, e, _VALID_SPECS))
