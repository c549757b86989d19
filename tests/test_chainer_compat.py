"""chainercv_i3d.chainer_compat makes chainer 7.8.1 import on today's stack.

CI runs the whole link suite twice: with numpy 1.26 and setuptools < 74, and
with numpy 2 and the newest setuptools. These tests add the cases neither
environment has, by hiding modules from a fresh interpreter, and check the
CuPy shims with stand-in modules (no CuPy or driver needed); the last test
uses a real CuPy where one is installed.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap
import types

import chainer
import numpy
import pytest

from chainercv_i3d import chainer_compat


def run_python(code, env=None):
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})))


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


# cuDNN: CuPy 14 has none, and chainer's warning about it is quieted.

def write_files(root, files):
    """Writes ``{relative path: source}`` under ``root``."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


@pytest.mark.parametrize('files, expected', [
    ({'cupy/__init__.py': '', 'cupy/cuda/__init__.py': ''}, True),
    ({'cupy/__init__.py': '', 'cupy/cuda/__init__.py': '',
      'cupy/cuda/cudnn.py': ''}, False),
    ({'cupy/__init__.py': 'raise ImportError("libcublas.so.11: cannot open '
      'shared object file")'}, False),
    ({}, False),
], ids=['cupy14', 'cupy13', 'broken-cupy', 'no-cupy'])
def test_cupy_lacks_cudnn(tmp_path, files, expected):
    if not files and importlib.util.find_spec('cupy') is not None:
        pytest.skip('a real CuPy is installed: no way to have none here')
    write_files(tmp_path, files)
    result = run_python('''
        import sys
        from chainercv_i3d.chainer_compat import cupy_lacks_cudnn
        for name in [n for n in sys.modules if n.split('.')[0] == 'cupy']:
            del sys.modules[name]  # a real CuPy chainer imported
        sys.path.insert(0, {root!r})  # the stand-in comes first
        print(cupy_lacks_cudnn())
    '''.format(root=str(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == str(expected)


def test_cupy_hidden_has_no_cudnn_to_miss(monkeypatch):
    monkeypatch.setitem(sys.modules, 'cupy', None)
    assert not chainer_compat.cupy_lacks_cudnn()


@pytest.fixture
def recording_chainer(tmp_path, monkeypatch):
    """A stand-in ``chainer`` that records CHAINER_CUDNN as it is imported;
    returns the file it writes. The real chainer is put back after."""
    record = tmp_path / 'seen.txt'
    write_files(tmp_path, {'chainer.py': (
        'import os\n'
        'with open({!r}, "w") as f:\n'
        '    f.write(os.environ.get("CHAINER_CUDNN", "unset"))\n'.format(
            str(record)))})
    monkeypatch.delitem(sys.modules, 'chainer')
    monkeypatch.syspath_prepend(str(tmp_path))
    return record


@pytest.mark.parametrize('cudnn_off, user_value, seen', [
    (True, None, '0'), (False, None, 'unset'), (True, '1', '1')])
def test_chainer_cudnn_is_off_only_while_chainer_imports(
        recording_chainer, monkeypatch, cudnn_off, user_value, seen):
    if user_value is None:
        monkeypatch.delenv('CHAINER_CUDNN', raising=False)
    else:
        monkeypatch.setenv('CHAINER_CUDNN', user_value)
    chainer_compat._import_chainer(cudnn_off)
    assert recording_chainer.read_text() == seen
    # Child processes see the user's environment, not the shim's.
    assert os.environ.get('CHAINER_CUDNN') == user_value


# ChainerMN: unpack_params with a cast that numpy 2 accepts.

class ByteBuffer(object):
    """Stands in for ChainerMN's DeviceMemory: bytes copied into arrays."""

    def __init__(self, values):
        self.bytes = numpy.ascontiguousarray(values).view(numpy.uint8)

    def to_device(self, array, size, offset, stream=None):
        assert stream is None and array.flags.c_contiguous
        array.reshape(-1).view(numpy.uint8)[...] = \
            self.bytes[offset:offset + size]


def params_with_grads(dtypes, shapes, seed):
    rng = numpy.random.RandomState(seed)
    params = []
    for dtype, shape in zip(dtypes, shapes):
        param = chainer.Parameter(rng.randn(*shape).astype(dtype))
        param.grad = rng.randn(*shape).astype(dtype)
        params.append(param)
    return params


@pytest.mark.parametrize('dtypes, transfer_dtype', [
    (('float16', 'float16'), 'float32'),   # fp16 model, fp32 allreduce
    (('float32', 'float16'), 'float32'),   # mixed dtypes
    (('float32', 'float32'), 'float16'),   # allreduce_grad_dtype=float16
    (('float32', 'float32'), 'float32'),   # no cast at all
])
def test_unpack_params_fills_grads_from_the_buffer(dtypes, transfer_dtype):
    shapes = [(3, 4), (5,)]
    params = params_with_grads(dtypes, shapes, seed=0)
    reduced = numpy.random.RandomState(1).randn(17).astype(transfer_dtype)
    chainer_compat.unpack_params(params, 'grad', ByteBuffer(reduced),
                                 numpy.dtype(transfer_dtype), False)
    pieces = numpy.split(reduced, [12])
    for param, piece, dtype, shape in zip(params, pieces, dtypes, shapes):
        assert param.grad.dtype == dtype
        numpy.testing.assert_array_equal(
            param.grad, piece.reshape(shape).astype(dtype))


def test_unpack_params_zero_fill_gives_missing_grads_one():
    param = chainer.Parameter(numpy.zeros((2, 2), numpy.float16))
    assert param.grad is None
    values = numpy.arange(4, dtype=numpy.float32) + 1
    chainer_compat.unpack_params([param], 'grad', ByteBuffer(values),
                                 numpy.dtype(numpy.float32), True)
    assert param.grad.dtype == numpy.float16
    numpy.testing.assert_array_equal(param.grad.ravel(), values)


def test_chainermn_gets_the_patched_unpack_params_with_numpy2():
    # A fresh interpreter: importing ChainerMN starts MPI (as a singleton).
    result = run_python('''
        import numpy
        import chainercv_i3d
        from chainercv_i3d import chainer_compat
        from chainermn.communicators import _memory_utility
        from chainermn.communicators._memory_utility import unpack_params
        numpy2 = numpy.lib.NumpyVersion(numpy.__version__) >= '2.0.0'
        assert chainer_compat.numpy_copy_false_never_copies() == numpy2
        patched = unpack_params is chainer_compat.unpack_params
        assert patched == numpy2, (patched, numpy2)
        assert _memory_utility.unpack_params is unpack_params
        if numpy2:  # what the patch is for: numpy 2 refuses this cast
            try:
                numpy.array(numpy.zeros(2, 'e'), copy=False, dtype='f')
            except ValueError:
                pass
            else:
                raise AssertionError('numpy 2 cast with copy=False')
        print('ok', numpy2)
    ''')
    if "No module named 'mpi4py'" in result.stderr:
        pytest.skip('ChainerMN needs mpi4py (pip install '
                    '"chainercv_i3d[mpi]")')
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('ok')


# ChainerMN: the batched pack/unpack kernels get cuda_fp16.h (CuPy 14).
# That the patched code compiles is tested in tests/cuda_compile_tests.

class FakeRawKernel(object):
    def __init__(self, code, name, options=()):
        self.code, self.name, self.options = code, name, options


def test_with_fp16_header_includes_it_once():
    code = '#include <cupy/carray.cuh>\nhalf x;'
    patched = chainer_compat.with_fp16_header(code)
    assert patched.startswith('#include <cuda_fp16.h>\n')
    assert patched.endswith(code)
    assert chainer_compat.with_fp16_header(patched) == patched


def test_batched_copy_kernels_get_the_header_once(monkeypatch):
    monkeypatch.setitem(sys.modules, 'cupy', types.SimpleNamespace(
        RawKernel=FakeRawKernel))
    made = []

    def make_pack():
        made.append('pack')
        return FakeRawKernel('half* p;', 'pack', ('-DX',))

    utility = types.SimpleNamespace(
        _cupy_batched_pack_params=make_pack,
        _cupy_batched_unpack_params=lambda: FakeRawKernel('half* u;', 'u'))
    chainer_compat.patch_batched_copy_kernels(utility)
    chainer_compat.patch_batched_copy_kernels(utility)  # no double wrap
    assert utility._cupy_batched_pack_params.__wrapped__ is make_pack
    kernel = utility._cupy_batched_pack_params()
    assert kernel.code == '#include <cuda_fp16.h>\nhalf* p;'
    assert (kernel.name, kernel.options) == ('pack', ('-DX',))
    assert utility._cupy_batched_pack_params() is kernel
    assert made == ['pack']  # made once, like ChainerMN's memoized one
    assert utility._cupy_batched_unpack_params().code.startswith(
        '#include <cuda_fp16.h>')


def test_chainermn_gets_the_patched_batched_kernels():
    result = run_python('''
        import chainercv_i3d
        from chainermn.communicators import _memory_utility as utility
        for name in ('_cupy_batched_pack_params',
                     '_cupy_batched_unpack_params'):
            wrapped = getattr(utility, name).__wrapped__
            assert wrapped.__module__ == utility.__name__, wrapped
        print('ok')
    ''')
    if "No module named 'mpi4py'" in result.stderr:
        pytest.skip('ChainerMN needs mpi4py (pip install '
                    '"chainercv_i3d[mpi]")')
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('ok')


def test_patch_when_imported_patches_at_first_import(tmp_path, monkeypatch):
    write_files(tmp_path, {'compat_target_module.py':
                           'def f():\n    return "original"\n'})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, 'meta_path', list(sys.meta_path))
    monkeypatch.delitem(sys.modules, 'compat_target_module', raising=False)
    patched = []

    def patch(module):
        patched.append(module.__name__)
        module.f = lambda: 'patched'
    assert not chainer_compat.patch_when_imported('compat_target_module',
                                                  patch)
    assert not chainer_compat.patch_when_imported('compat_target_module',
                                                  patch)  # one hook only
    from compat_target_module import f
    assert f() == 'patched'
    assert patched == ['compat_target_module']
    module = sys.modules['compat_target_module']
    # The module's own loader still answers (tracebacks show its source).
    assert module.__loader__.get_source(
        'compat_target_module').startswith('def f')
    assert chainer_compat.patch_when_imported('compat_target_module', patch)
    assert patched == ['compat_target_module'] * 2


# cupy-cuda11x: why chainer reports no CUDA.

def cuda_backend(available, error=None):
    return types.SimpleNamespace(available=available,
                                 _resolution_error=error)


def test_cuda_unavailable_reason_for_a_missing_cublas11():
    reason = chainer_compat.cuda_unavailable_reason(cuda_backend(
        False, OSError('libcublas.so.11: cannot open shared object file')))
    assert reason.startswith('chainer cannot use CuPy: libcublas.so.11')
    assert 'LD_LIBRARY_PATH' in reason and 'nvidia-cublas-cu11' in reason


def test_cuda_unavailable_reason_otherwise(monkeypatch):
    assert chainer_compat.cuda_unavailable_reason(cuda_backend(True)) is None
    assert chainer_compat.cuda_unavailable_reason(cuda_backend(
        False, ImportError('some other failure'))) == \
        'chainer cannot use CuPy: some other failure'
    monkeypatch.setitem(sys.modules, 'cupy', None)  # no CuPy: nothing to say
    assert chainer_compat.cuda_unavailable_reason() is None


def test_with_a_real_cupy_chainer_imports_quietly():
    """Where CuPy is installed (not in CI; no GPU needed): no cuDNN warning,
    cuDNN off where CuPy lacks it, CHAINER_CUDNN not left behind."""
    pytest.importorskip('cupy', reason='CuPy not installed')
    result = run_python('''
        import os, warnings
        warnings.simplefilter('error', UserWarning)
        import chainercv_i3d
        import chainer
        from chainercv_i3d.chainer_compat import cupy_lacks_cudnn
        cuda = chainer.backends.cuda
        assert 'CHAINER_CUDNN' not in os.environ
        assert cuda.available, cuda._resolution_error
        if cupy_lacks_cudnn():
            assert not cuda.cudnn_enabled and cuda._cudnn_disabled_by_user
            cuda.check_cuda_available()  # warns (here: raises) if noisy
        print('ok', cupy_lacks_cudnn())
    ''')
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('ok')
