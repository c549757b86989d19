"""Every CUDA kernel of the GPU path compiles with NVRTC for sm_90, as
CuPy 14.2 would compile it on first launch; no GPU or driver needed
(:mod:`tests.cuda_compile_tests.kernels` says how).

Skips where CuPy or NVRTC is missing (the numpy-only venvs) or CuPy's
private code generators moved (another CuPy than 14.2); a kernel that does
not compile fails. ``scripts/test.sh`` runs it in ``.venv-cuda``.
"""

import pytest

pytest.importorskip(
    'cupy', reason='CuPy not installed (scripts/test.sh runs these tests in '
    '.venv-cuda, see constraints/cuda_compile.txt)')

from tests.cuda_compile_tests import kernels  # NOQA: E402

_REASON = kernels.unavailable_reason()
if _REASON is not None:
    pytest.skip(_REASON, allow_module_level=True)

import chainer  # NOQA: E402
import cupy  # NOQA: E402

import chainercv_i3d  # NOQA: E402


@pytest.mark.parametrize('variant', kernels.VARIANTS,
                         ids=[v.id for v in kernels.VARIANTS])
def test_kernel_compiles(variant):
    cubin = variant.compile()
    assert len(cubin) > 0


def test_variant_ids_unique():
    ids = [v.id for v in kernels.VARIANTS]
    assert len(ids) == len(set(ids))


def test_broken_kernel_fails_with_nvrtc_log():
    """The check is not vacuous: a wrong body fails, with NVRTC's log."""
    kernel = cupy.ElementwiseKernel(
        'T x', 'T y', 'y = no_such_function(x);', 'broken_kernel')
    code = kernels.elementwise_code(
        kernel, [kernels.Array('float32'), kernels.Array('float32')])
    with pytest.raises(kernels.CompileError) as e:
        kernels.compile_cuda('broken_kernel', code,
                             kernel_names=('broken_kernel',))
    message = str(e.value)
    assert 'identifier "no_such_function" is undefined' in message
    assert 'broken_kernel' in message and 'sm_90' in message


def test_missing_kernel_name_fails():
    """A kernel that compiles but is not the one looked up fails too."""
    with pytest.raises(kernels.CompileError, match='no kernel absent'):
        kernels.compile_cuda(
            'raw', 'extern "C" __global__ void present() {}',
            prepend_cupy_headers=False, kernel_names=('present', 'absent'))


@pytest.mark.parametrize('which', sorted(kernels.BATCHED))
def test_shipped_batched_kernel_lacks_half(which):
    """ChainerMN 7.8.1's batched pack/unpack kernels, as shipped, do not
    compile with CuPy 14: its cupy/carray.cuh no longer includes
    cuda_fp16.h. (The defect that chainer_compat works around.)"""
    factory, name = kernels.BATCHED[which]
    kernel = kernels.chainer_kernel(kernels.MEMORY_UTILITY, name)
    assert kernel.name == name
    with pytest.raises(kernels.CompileError,
                       match='identifier "half" is undefined'):
        kernels.compile_raw_kernel(name + '-shipped', kernel)


@pytest.mark.parametrize('which', sorted(kernels.BATCHED))
def test_patched_batched_kernel_compiles(which, monkeypatch):
    """What ChainerMN gets after ``import chainercv_i3d`` compiles."""
    pytest.importorskip('mpi4py.MPI')  # _memory_utility imports it
    import importlib
    memory_utility = importlib.import_module(kernels.MEMORY_UTILITY)
    # chainer.cuda.raw refuses without a device; as it does with one:
    monkeypatch.setattr(
        chainer.backends.cuda, 'raw',
        lambda code, name, *args, **kwargs: cupy.RawKernel(
            code, name, *args, **kwargs))
    factory, name = kernels.BATCHED[which]
    kernel = getattr(memory_utility, factory)()
    assert isinstance(kernel, cupy.RawKernel) and kernel.name == name
    kernels.compile_raw_kernel(name + '-patched', kernel)
