"""Make chainer 7.8.1 run on today's Python, numpy, setuptools and CuPy.

chainer 7.8.1 (2020) is the last release. Importing it fails today in three ways:

1. ``chainer._environment_check`` imports ``numpy.distutils.system_info``.
   ``numpy.distutils`` breaks with setuptools 74 or newer (``No module named
   'distutils.msvccompiler'``) and does not exist with numpy 2 or on Python 3.12.
   chainer uses it only on macOS, to warn about Accelerate.
2. The same module imports ``pkg_resources`` (removed in setuptools 82) to warn
   about mismatched optional packages (CuPy, iDeep).
3. ``chainer.functions`` reads ``numpy.sctypes`` at import time and some
   functions use ``numpy.float``; numpy 2 removed both.

:func:`apply` fixes all three without touching anything that already works:
while chainer imports, a missing ``numpy.distutils.system_info`` or
``pkg_resources`` is stood in for by a stub (``get_info`` returns no BLAS
information; ``require`` reports every optional package as absent, so no
version warning is printed), and the stubs are removed again afterwards so
other libraries see the real state of the environment. The removed numpy
names are restored permanently, with the values numpy 1.x gave them, because
chainer looks them up at run time too.

With CuPy (12 to 14) three more things need help:

4. CuPy 14 has no cuDNN. chainer notices (``cudnn_enabled`` is False, every
   cuDNN call sits behind it) and convolves with im2col and cuBLAS, but warns
   "cuDNN is not enabled ... reinstall CuPy" at import, advice no CuPy 14
   can follow. When CuPy has no ``cupy.cuda.cudnn`` module at all,
   ``CHAINER_CUDNN=0`` is set while chainer imports (and removed after, so
   child processes see the user's environment): chainer then takes cuDNN to
   be switched off on purpose and stays quiet. Nothing else reads it. The
   cuDNN modules are never stood in for: chainer would call them.
5. ChainerMN's ``_memory_utility.unpack_params`` casts with
   ``xp.array(v, copy=False, dtype=...)``, which numpy 2 (and CuPy 14, which
   follows it) rejects whenever a cast is needed (fp16 parameters, or
   ``allreduce_grad_dtype``). With numpy 2, :func:`unpack_params` (the same
   with ``astype``) replaces it as soon as that module is imported.
6. ChainerMN's batched pack/unpack kernels (``batched_copy=True``, its
   default) use ``half`` after including only ``cupy/carray.cuh``, which
   stopped including ``cuda_fp16.h`` in CuPy 14: they fail to compile at the
   first gradient all-reduce. :func:`patch_batched_copy_kernels` puts
   ``#include <cuda_fp16.h>`` in front of their code as soon as that module
   is imported (harmless with older CuPy, whose headers include it too).
7. cupy-cuda11x (CuPy 13.6) needs the CUDA 11 libraries on the loader's path;
   without ``libcublas.so.11`` chainer just reports CUDA as unavailable.
   :func:`cuda_unavailable_reason` says why and what to do.

``import chainercv_i3d`` calls :func:`apply` before anything imports chainer,
so import ``chainercv_i3d`` (or this module) before ``chainer`` itself.
"""

import importlib
import importlib.abc
import importlib.util
import os
import sys
import types

import numpy

_REMOVED_NUMPY_ALIASES = {
    'float': float, 'int': int, 'bool': bool, 'object': object,
    'complex': complex, 'str': str,
}


def _numpy_sctypes():
    return {
        'int': [numpy.int8, numpy.int16, numpy.int32, numpy.int64],
        'uint': [numpy.uint8, numpy.uint16, numpy.uint32, numpy.uint64],
        'float': [numpy.float16, numpy.float32, numpy.float64,
                  numpy.longdouble],
        'complex': [numpy.complex64, numpy.complex128, numpy.clongdouble],
        'others': [bool, object, bytes, str, numpy.void],
    }


def restore_numpy_aliases():
    """Puts back the numpy names that numpy 2 removed and chainer uses."""
    # vars(), not hasattr(): numpy 1.2x warns on every access to a removed name.
    if 'sctypes' not in vars(numpy):
        numpy.sctypes = _numpy_sctypes()
    for name, value in _REMOVED_NUMPY_ALIASES.items():
        if name not in vars(numpy):
            setattr(numpy, name, value)


def _importable(name):
    try:
        importlib.import_module(name)
        return True
    except Exception:  # numpy.distutils can fail with errors other than ImportError
        return False


def _system_info_stub():
    distutils = types.ModuleType('numpy.distutils')
    system_info = types.ModuleType('numpy.distutils.system_info')
    system_info.get_info = lambda name, notfound_action=0: {}
    distutils.system_info = system_info
    return {'numpy.distutils': distutils,
            'numpy.distutils.system_info': system_info}


def _pkg_resources_stub():
    module = types.ModuleType('pkg_resources')

    class DistributionNotFound(Exception):
        pass

    class VersionConflict(Exception):
        pass

    def require(requirement):
        raise DistributionNotFound(requirement)

    def get_distribution(name):
        raise DistributionNotFound(name)

    module.DistributionNotFound = DistributionNotFound
    module.VersionConflict = VersionConflict
    module.require = require
    module.get_distribution = get_distribution
    return {'pkg_resources': module}


def _stubs_needed():
    stubs = {}
    if not _importable('numpy.distutils.system_info'):
        stubs.update(_system_info_stub())
    if not _importable('pkg_resources'):
        stubs.update(_pkg_resources_stub())
    return stubs


def _cupy_installed():
    try:
        return importlib.util.find_spec('cupy') is not None
    except ValueError:  # a None entry in sys.modules: hidden on purpose
        return False


def cupy_lacks_cudnn():
    """True when CuPy is installed but has no cuDNN module (CuPy 14).

    False without CuPy, with a CuPy that fails to import (chainer reports
    that itself), and with a CuPy 13 or older whose cuDNN module exists,
    even if libcudnn cannot load there (then chainer's warning is right).
    """
    if not _cupy_installed():
        return False
    try:
        return importlib.util.find_spec('cupy.cuda.cudnn') is None
    except Exception:  # CuPy fails to import (missing CUDA libraries)
        return False


def _import_chainer(cudnn_off):
    """Imports chainer, with ``CHAINER_CUDNN=0`` meanwhile if ``cudnn_off``
    and the user has not set it."""
    set_here = cudnn_off and 'CHAINER_CUDNN' not in os.environ
    if set_here:
        os.environ['CHAINER_CUDNN'] = '0'
    try:
        importlib.import_module('chainer')
    finally:
        if set_here:
            del os.environ['CHAINER_CUDNN']


def apply():
    """Imports chainer, standing in for what it needs and today's stack lacks.

    Also quiets chainer's cuDNN warning where CuPy has no cuDNN, and patches
    ChainerMN's memory utility (:func:`patch_memory_utility`).

    Returns:
        list of str: the names of the modules that were stood in for while
        chainer imported (empty when the environment needed no help).
    """
    restore_numpy_aliases()
    patch_when_imported(MEMORY_UTILITY, patch_memory_utility)
    if 'chainer' in sys.modules:
        return []
    stubs = _stubs_needed()
    previous = {name: sys.modules[name] for name in stubs if name in sys.modules}
    had_distutils_attr = 'distutils' in vars(numpy)
    sys.modules.update(stubs)
    if 'numpy.distutils' in stubs:
        # `import numpy.distutils.system_info` reads the attribute path too.
        numpy.distutils = stubs['numpy.distutils']
    try:
        _import_chainer(cudnn_off=cupy_lacks_cudnn())
    finally:
        for name in stubs:
            del sys.modules[name]
        sys.modules.update(previous)
        if 'numpy.distutils' in stubs and not had_distutils_attr:
            del numpy.distutils
    return sorted(stubs)


# ---------------------------------------------------------------- ChainerMN

MEMORY_UTILITY = 'chainermn.communicators._memory_utility'


def numpy_copy_false_never_copies():
    """True with numpy 2: ``array(a, copy=False, dtype=other)`` raises
    instead of copying (CuPy 14 does the same)."""
    return int(numpy.__version__.split('.')[0]) >= 2


def unpack_params(params, attr_name, buffer, transfer_dtype, zero_fill,
                  stream=None):
    """ChainerMN's ``_memory_utility.unpack_params`` with a cast numpy 2
    accepts.

    Fills ``getattr(param, attr_name)`` of every parameter, in order, from
    consecutive pieces of ``buffer`` holding ``transfer_dtype`` values, cast
    back to each array's own dtype.

    Args:
        params (list of chainer.Parameter): The parameters.
        attr_name (str): ``'grad'`` or ``'data'``.
        buffer: A ChainerMN ``DeviceMemory`` (or anything with
            ``to_device(array, size, offset, stream)`` copying ``size``
            bytes at ``offset`` into ``array``).
        transfer_dtype (numpy.dtype): The dtype in the buffer.
        zero_fill (bool): Give parameters without a gradient one (its values
            come from the buffer).
        stream: A CuPy stream, or None.
    """
    offset = 0
    itemsize = numpy.dtype(transfer_dtype).itemsize
    for param in params:
        v = getattr(param, attr_name)
        if attr_name == 'grad' and v is None and zero_fill:
            v = param.xp.empty_like(param.data)
            setattr(param, attr_name, v)
        own_dtype = v.dtype
        if own_dtype != transfer_dtype:
            # ChainerMN's xp.array(v, copy=False, dtype=...) raises here with
            # numpy 2; astype copies once, as that did with numpy 1.
            v = v.astype(transfer_dtype)
        size = v.size * itemsize
        buffer.to_device(v, size, offset, stream)
        offset += size
        if own_dtype != transfer_dtype:
            getattr(param, attr_name)[...] = v.astype(own_dtype)


def patch_unpack_params(memory_utility):
    """Puts :func:`unpack_params` into ChainerMN's ``_memory_utility``."""
    memory_utility.unpack_params = unpack_params


BATCHED_COPY_KERNELS = ('_cupy_batched_pack_params',
                        '_cupy_batched_unpack_params')
CUDA_FP16_INCLUDE = '#include <cuda_fp16.h>\n'


def with_fp16_header(code):
    """``code`` with ``cuda_fp16.h`` included first (once)."""
    if 'cuda_fp16.h' in code:
        return code
    return CUDA_FP16_INCLUDE + code


def _kernel_with_fp16_header(make_kernel):
    """Wraps a ChainerMN kernel factory: the same RawKernel, with
    :func:`with_fp16_header` applied to its code. Made once, like
    ChainerMN's own (a RawKernel compiles lazily, per device)."""
    made = []

    def make_patched_kernel():
        if not made:
            import cupy
            kernel = make_kernel()
            made.append(cupy.RawKernel(
                with_fp16_header(kernel.code), kernel.name,
                options=kernel.options))
        return made[0]

    make_patched_kernel.__name__ = make_kernel.__name__
    make_patched_kernel.__wrapped__ = make_kernel
    return make_patched_kernel


def patch_batched_copy_kernels(memory_utility):
    """Makes ChainerMN's batched pack/unpack kernels compile on CuPy 14."""
    for name in BATCHED_COPY_KERNELS:
        make_kernel = getattr(memory_utility, name)
        if not hasattr(make_kernel, '__wrapped__'):
            setattr(memory_utility, name,
                    _kernel_with_fp16_header(make_kernel))


def patch_memory_utility(memory_utility):
    """Everything ChainerMN's ``_memory_utility`` needs today: the batched
    kernels' header always, :func:`unpack_params` with numpy 2."""
    patch_batched_copy_kernels(memory_utility)
    if numpy_copy_false_never_copies():
        patch_unpack_params(memory_utility)


class _PatchingLoader(importlib.abc.Loader):
    """A module's own loader, then ``patch(module)`` before anyone sees it."""

    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name):  # get_source and the like, for tracebacks
        return getattr(self._loader, name)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds module ``name`` through the other finders and patches it as it
    is executed: ``from name import f`` then also gets the patched ``f``."""

    def __init__(self, name, patch):
        self.name = name
        self.patch = patch

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                spec.loader = _PatchingLoader(spec.loader, self.patch)
                return spec
        return None


def patch_when_imported(name, patch):
    """Calls ``patch(module)`` on module ``name`` now if it is imported,
    else as soon as it is (once).

    Returns:
        bool: True if it was patched now.
    """
    module = sys.modules.get(name)
    if module is not None:
        patch(module)
        return True
    if not any(isinstance(f, _PatchOnImport) and f.name == name
               for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport(name, patch))
    return False


# -------------------------------------------------------------------- CUDA

CUDA11_LIBRARIES_HELP = (
    'cupy-cuda11x needs the CUDA 11 libraries on the loader\'s path: load a '
    'CUDA 11 toolkit (e.g. `module load cuda/11.8`), or pip install '
    'nvidia-cublas-cu11 nvidia-cuda-runtime-cu11 nvidia-cuda-nvrtc-cu11 '
    'nvidia-cufft-cu11 nvidia-curand-cu11 nvidia-cusolver-cu11 '
    'nvidia-cusparse-cu11 and put their nvidia/*/lib folders on '
    'LD_LIBRARY_PATH; on a CUDA 12 or 13 driver, use the CuPy 14 wheels '
    'instead (pip install "chainercv_i3d[gpu]" or "[gpu-cuda13]")')


def cuda_unavailable_reason(cuda_backend=None):
    """Why chainer's CUDA backend is off although CuPy is installed.

    Args:
        cuda_backend: ``chainer.backends.cuda`` (the default), or a stand-in
            with ``available`` and ``_resolution_error``.

    Returns:
        str or None: None when the backend is available or CuPy is not
        installed; else chainer's error, followed by what to do when a
        CUDA 11 library failed to load.
    """
    if cuda_backend is None:
        if not _cupy_installed():
            return None
        cuda_backend = importlib.import_module('chainer.backends.cuda')
    if cuda_backend.available:
        return None
    error = str(getattr(cuda_backend, '_resolution_error', 'unknown error'))
    reason = 'chainer cannot use CuPy: {}'.format(error)
    if '.so.11' in error:
        reason += '. ' + CUDA11_LIBRARIES_HELP
    return reason


STOOD_IN_FOR = apply()
