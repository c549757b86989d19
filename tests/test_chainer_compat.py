"""chainercv_i3d.chainer_compat makes chainer 7.8.1 import on today's stack.

CI runs the whole link suite twice: with numpy 1.26 and setuptools < 74, and
with numpy 2 and the newest setuptools. These tests add the cases neither
environment has, by hiding modules from a fresh interpreter.
"""

import subprocess
import sys
import textwrap

import numpy
import pytest

from chainercv_i3d import chainer_compat


def run_python(code):
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True)


@pytest.mark.parametrize('hidden', [
    ['numpy.distutils'], ['pkg_resources'],
    ['numpy.distutils', 'pkg_resources']])
def test_chainer_imports_without_distutils_or_pkg_resources(hidden):
    # A None entry in sys.modules makes `import name` raise ImportError, as
    # with setuptools >= 74 (numpy.distutils) or >= 82 (pkg_resources).
    result = run_python('''
        import sys
        for name in {hidden!r}:
            sys.modules[name] = None
        import chainercv_i3d
        import chainer.functions as F
        import numpy
        y = F.max_pooling_nd(numpy.arange(8, dtype='f').reshape(1, 1, 2, 2, 2), 2)
        assert float(y.array.ravel()[0]) == 7.0
        stood_in = chainercv_i3d.chainer_compat.STOOD_IN_FOR
        for name in {hidden!r}:
            assert name in stood_in, stood_in
            assert sys.modules[name] is None, 'stub left behind: ' + name
        print('ok', stood_in)
    '''.format(hidden=hidden))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('ok')


def test_chainer_imported_first_is_left_alone():
    result = run_python('''
        import chainercv_i3d.chainer_compat as compat
        assert compat.apply() == []
        print('ok')
    ''')
    assert result.returncode == 0, result.stderr


def test_numpy_names_chainer_uses_exist():
    chainer_compat.restore_numpy_aliases()
    assert numpy.float is float
    assert numpy.int32 in numpy.sctypes['int']
    assert numpy.float32 in numpy.sctypes['float']


def test_chainer_functions_that_read_removed_numpy_names_run():
    import chainer.functions as F
    x = numpy.arange(16, dtype='f').reshape(1, 1, 4, 4)
    # resize_images uses numpy.float; as_strided reads numpy.sctypes.
    assert F.resize_images(x, (2, 2)).shape == (1, 1, 2, 2)
    assert F.as_strided(numpy.arange(4, dtype='f'), (2,), (1,)).shape == (2,)
