"""Make chainer 7.8.1 import and run on today's Python, numpy and setuptools.

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

``import chainercv_i3d`` calls :func:`apply` before anything imports chainer,
so import ``chainercv_i3d`` (or this module) before ``chainer`` itself.
"""

import importlib
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


def apply():
    """Imports chainer, standing in for what it needs and today's stack lacks.

    Returns:
        list of str: the names of the modules that were stood in for while
        chainer imported (empty when the environment needed no help).
    """
    restore_numpy_aliases()
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
        importlib.import_module('chainer')
    finally:
        for name in stubs:
            del sys.modules[name]
        sys.modules.update(previous)
        if 'numpy.distutils' in stubs and not had_distutils_attr:
            del numpy.distutils
    return sorted(stubs)


STOOD_IN_FOR = apply()
