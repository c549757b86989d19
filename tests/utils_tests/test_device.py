"""select_device and the --device argument: one meaning in every script.

CuPy is stood in for (a module in sys.modules, or a GPU count) so the GPU
rules are checked on machines without a GPU; one `gpu` test uses a real one.
"""

import argparse
import sys
import types

import numpy
import pytest

import chainer

from chainercv_i3d import chainer_compat
from chainercv_i3d.utils import device as device_module
from chainercv_i3d.utils.cli import add_device_argument
from chainercv_i3d.utils.cli import device_spec_help
from chainercv_i3d.utils.cli import non_negative_int
from chainercv_i3d.utils.cli import positive_int
from chainercv_i3d.utils.device import DeviceError
from chainercv_i3d.utils.device import resolve_device_spec
from chainercv_i3d.utils.device import select_device


class Comm(object):
    """Just the part of a communicator the device rule reads."""

    def __init__(self, intra_rank):
        self.intra_rank = intra_rank


@pytest.fixture
def gpus(monkeypatch):
    """Call with n to make CuPy appear to see n GPUs."""
    def set_count(n):
        monkeypatch.setattr(device_module, '_gpu_count', lambda: n)
    return set_count


@pytest.fixture
def no_cupy(monkeypatch):
    """Makes `import cupy` fail, as where CuPy is not installed."""
    monkeypatch.setitem(sys.modules, 'cupy', None)


def stand_in_cupy(monkeypatch, count=None, error=None):
    """Puts a CuPy stand-in in sys.modules whose runtime reports ``count``
    GPUs or raises ``error``."""
    class CUDARuntimeError(RuntimeError):
        pass

    def get_device_count():
        if error is not None:
            raise CUDARuntimeError(error)
        return count

    runtime = types.SimpleNamespace(CUDARuntimeError=CUDARuntimeError,
                                    getDeviceCount=get_device_count)
    cupy = types.ModuleType('cupy')
    cupy.cuda = types.SimpleNamespace(runtime=runtime)
    monkeypatch.setitem(sys.modules, 'cupy', cupy)


@pytest.mark.parametrize('spec', ['cpu', '@numpy', -1, '-1', ' cpu '])
def test_cpu_specs_give_numpy(spec, monkeypatch):
    def no_gpu_query():
        raise AssertionError('a CPU spec must not ask CuPy anything')
    monkeypatch.setattr(device_module, '_gpu_count', no_gpu_query)
    device = select_device(spec)
    assert isinstance(device, chainer.backend.CpuDevice)
    assert device.xp is numpy


def test_a_device_is_returned_as_is():
    device = chainer.get_device('@numpy')
    assert select_device(device) is device


def test_auto_without_cupy_is_the_cpu(no_cupy):
    assert select_device('auto').xp is numpy


def test_auto_with_no_gpu_is_the_cpu(gpus):
    gpus(0)
    assert resolve_device_spec('auto', Comm(1)) == '@numpy'


def test_auto_with_gpus_takes_the_ranks_gpu(gpus):
    gpus(2)
    assert resolve_device_spec('auto', Comm(3)) == '@cupy:1'


@pytest.mark.parametrize('n_gpus, intra_ranks, expected', [
    (1, [0, 1, 2], [0, 0, 0]),
    (2, [0, 1, 2, 3], [0, 1, 0, 1]),
    (4, [0, 1, 2, 3, 5], [0, 1, 2, 3, 1]),
])
def test_gpu_is_the_node_local_rank_modulo_the_gpus(
        gpus, n_gpus, intra_ranks, expected):
    gpus(n_gpus)
    assert [resolve_device_spec('gpu', Comm(r)) for r in intra_ranks] == [
        '@cupy:{}'.format(i) for i in expected]


def test_gpu_without_a_communicator_is_gpu_0(gpus):
    gpus(3)
    assert resolve_device_spec('gpu') == '@cupy:0'


def test_gpu_without_cupy_says_to_install_it(no_cupy):
    with pytest.raises(DeviceError, match="'gpu'.*CuPy is not installed"):
        select_device('gpu')


def test_gpu_when_cupy_sees_none(monkeypatch):
    stand_in_cupy(monkeypatch, count=0)
    with pytest.raises(DeviceError, match='CuPy sees none'):
        select_device('gpu', Comm(0))


def test_gpu_when_cuda_cannot_start(monkeypatch):
    stand_in_cupy(monkeypatch, error='no CUDA-capable device is detected')
    with pytest.raises(DeviceError, match='no CUDA-capable device'):
        select_device('gpu')
    assert resolve_device_spec('auto') == '@numpy'


def test_gpu_count_comes_from_cupy(monkeypatch):
    stand_in_cupy(monkeypatch, count=3)
    assert resolve_device_spec('gpu', Comm(4)) == '@cupy:1'


class FailingCupyFinder(object):
    """A finder that makes `import cupy` fail as a CuPy whose CUDA
    libraries do not load does."""

    def find_spec(self, name, path=None, target=None):
        if name == 'cupy':
            raise ImportError('libcublas.so.11: cannot open shared object '
                              'file: No such file or directory')
        return None


@pytest.fixture
def broken_cupy(monkeypatch):
    monkeypatch.delitem(sys.modules, 'cupy', raising=False)
    monkeypatch.setattr(sys, 'meta_path', [FailingCupyFinder()]
                        + sys.meta_path)


@pytest.mark.parametrize('spec', ['gpu', '@cupy:0', 0])
def test_a_cupy_that_fails_to_import_is_named_not_missing(broken_cupy, spec):
    with pytest.raises(DeviceError) as raised:
        select_device(spec)
    message = str(raised.value)
    assert 'CuPy fails to import' in message and 'libcublas.so.11' in message
    assert 'not installed' not in message


def test_auto_with_a_cupy_that_fails_to_import_is_the_cpu(broken_cupy):
    assert resolve_device_spec('auto') == '@numpy'


@pytest.fixture
def chainer_without_cuda(monkeypatch):
    """CuPy imports and sees a GPU, but chainer's CUDA backend is off (as
    with cupy-cuda11x and no libcublas.so.11)."""
    stand_in_cupy(monkeypatch, count=1)
    backend = types.SimpleNamespace(available=False, _resolution_error=(
        ImportError('libcublas.so.11: cannot open shared object file')))
    monkeypatch.setattr(device_module, 'cuda_unavailable_reason',
                        lambda: chainer_compat.cuda_unavailable_reason(
                            backend))


@pytest.mark.parametrize('spec', ['gpu', '@cupy:0', 0])
def test_gpu_when_chainer_cannot_use_cupy_says_why(chainer_without_cuda,
                                                   spec):
    with pytest.raises(DeviceError) as raised:
        select_device(spec, Comm(0))
    message = str(raised.value)
    assert repr(spec) in message
    assert 'chainer cannot use CuPy: libcublas.so.11' in message
    assert 'LD_LIBRARY_PATH' in message


def test_auto_when_chainer_cannot_use_cupy_is_the_cpu(chainer_without_cuda):
    assert resolve_device_spec('auto', Comm(0)) == '@numpy'


@pytest.mark.parametrize('spec, expected', [
    ('@cupy:1', '@cupy:1'), (1, 1), ('1', 1), ('0', 0)])
def test_explicit_gpu_specs_are_kept(gpus, spec, expected):
    gpus(2)
    assert resolve_device_spec(spec, Comm(1)) == expected


@pytest.mark.parametrize('spec', ['@cupy:2', 2, '7'])
def test_explicit_gpu_beyond_the_node(gpus, spec):
    gpus(2)
    with pytest.raises(DeviceError, match='sees only 2 GPU'):
        resolve_device_spec(spec)


@pytest.mark.parametrize('spec', ['@cupy:0', 0, '0'])
def test_explicit_gpu_without_cupy(no_cupy, spec):
    with pytest.raises(DeviceError, match='CuPy is not installed'):
        select_device(spec)


@pytest.mark.parametrize('spec', [
    'foo', 'GPU', '', '@cupy:x', '@numpy:0', '@cupy', None, 1.5, True])
def test_bad_specs_name_the_spec_and_the_choices(spec):
    with pytest.raises(ValueError) as raised:
        select_device(spec)
    assert isinstance(raised.value, DeviceError)
    message = str(raised.value)
    assert repr(spec) in message
    assert "'cpu', 'gpu', 'auto'" in message


@pytest.mark.gpu
def test_gpu_on_a_real_gpu():
    cupy = pytest.importorskip('cupy')
    try:
        n_gpus = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError:
        n_gpus = 0
    if n_gpus == 0:
        pytest.skip('CuPy sees no GPU')
    device = select_device('gpu', Comm(n_gpus + 1))
    assert isinstance(device, chainer.backend.GpuDevice)
    assert device.device.id == (n_gpus + 1) % n_gpus
    assert cupy.cuda.Device().id == device.device.id
    assert select_device('auto', Comm(0)).device.id == 0


# The --device argument and the integer types of utils/cli.py.

def test_device_argument_default_and_value():
    parser = argparse.ArgumentParser()
    add_device_argument(parser)
    assert parser.parse_args([]).device == 'auto'
    assert parser.parse_args(['--device', '@cupy:1']).device == '@cupy:1'
    parser = argparse.ArgumentParser()
    add_device_argument(parser, default='cpu')
    assert parser.parse_args([]).device == 'cpu'
    help_text = parser.format_help()
    assert "(default 'cpu')" in help_text
    assert 'intra_rank' in device_spec_help


@pytest.mark.parametrize('parse, good, bad', [
    (positive_int, ['1', '12'], ['0', '-3']),
    (non_negative_int, ['0', '5'], ['-1']),
])
def test_integer_argument_types(parse, good, bad):
    assert [parse(text) for text in good] == [int(text) for text in good]
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=text):
            parse(text)
