import types

import chainercv_i3d  # NOQA: before chainer
import chainer
import pytest

from chainercv_i3d.flow import flow_backend_beside
from chainercv_i3d.flow import FlowBackend
from chainercv_i3d.flow import flow_backend_names
from chainercv_i3d.flow import get_flow_backend
from chainercv_i3d.flow import OpenCVTVL1
from chainercv_i3d.flow import register_flow_backend


class Tunable(FlowBackend):
    """A backend with two options, for the registry's checks."""

    option_names = ('iterations', 'scale')


register_flow_backend('test_tunable', Tunable)


def test_tvl1_is_registered_with_its_name_set_by_the_registration():
    assert 'tvl1' in flow_backend_names()
    backend = get_flow_backend('tvl1')
    assert isinstance(backend, OpenCVTVL1) and backend.name == 'tvl1'
    assert get_flow_backend('tvl1') is not backend


def test_options_and_device_reach_the_backend():
    backend = get_flow_backend('test_tunable', device='@numpy',
                               iterations=3)
    assert isinstance(backend, Tunable) and backend.name == 'test_tunable'
    assert backend.device == '@numpy'
    assert backend.options == {'iterations': 3}


def test_unknown_name_names_the_known_ones():
    with pytest.raises(ValueError, match=r"'farneback'.*test_tunable.*tvl1"):
        get_flow_backend('farneback')


def test_unknown_option_names_the_known_ones():
    with pytest.raises(ValueError, match=r'unknown option\(s\) iters for '
                       r"flow backend 'test_tunable'.*iterations, scale"):
        get_flow_backend('test_tunable', iters=3)
    with pytest.raises(ValueError, match=r"bogus for flow backend 'tvl1'.*"
                       r'its options: epsilon.*tau'):
        get_flow_backend('tvl1', tau=0.25, bogus=1)
    # Made directly, the class checks the same way.
    with pytest.raises(ValueError, match='unknown option'):
        Tunable(iters=3)


def test_registering_again_is_harmless_but_names_are_unique():
    register_flow_backend('test_tunable', Tunable)  # the same: no change

    class Other(FlowBackend):
        pass

    with pytest.raises(ValueError, match="'test_tunable' is taken by "
                       'Tunable'):
        register_flow_backend('test_tunable', Other)
    with pytest.raises(ValueError, match="Tunable is already registered as "
                       "'test_tunable'"):
        register_flow_backend('test_tunable_2', Tunable)
    assert 'test_tunable_2' not in flow_backend_names()


def test_only_backend_classes_register():
    with pytest.raises(TypeError, match='subclass of FlowBackend'):
        register_flow_backend('test_not_a_backend', object)
    with pytest.raises(TypeError, match='subclass of FlowBackend'):
        register_flow_backend('test_instance', Tunable())


class GpuCapable(FlowBackend):
    """A backend that takes GPU devices (records the device it got)."""

    runs_on_gpu = True


register_flow_backend('test_gpu_capable', GpuCapable)

# A model device on a GPU, as flow_backend_beside sees it (its xp is not
# numpy); no CuPy is needed.
FAKE_GPU = types.SimpleNamespace(xp=types.SimpleNamespace(__name__='cupy'),
                                 device=types.SimpleNamespace(id=0))


def test_a_gpu_backend_gets_the_models_gpu_and_others_stay_on_the_cpu():
    assert flow_backend_beside('test_gpu_capable', FAKE_GPU).device \
        is FAKE_GPU
    cpu = chainer.get_device('@numpy')
    assert flow_backend_beside('test_gpu_capable', cpu).device is None
    assert flow_backend_beside('test_gpu_capable', None).device is None
    opencv = flow_backend_beside('tvl1', FAKE_GPU)
    assert isinstance(opencv, OpenCVTVL1) and opencv.device is None


def test_tvl1_xp_beside_a_gpu_model_asks_for_that_gpu():
    # Without CuPy its refusal shows that the GPU reached it.
    try:
        import cupy  # NOQA
        pytest.skip('CuPy is installed: the refusal cannot be shown')
    except ImportError:
        pass
    with pytest.raises(ValueError, match="tvl1_xp': device 0 needs a GPU, "
                       'but CuPy is not installed'):
        flow_backend_beside('tvl1_xp', FAKE_GPU)


def test_beside_refuses_unknown_names_and_options():
    with pytest.raises(ValueError, match='known backends'):
        flow_backend_beside('no_such_backend', None)
    with pytest.raises(ValueError, match='unknown option'):
        flow_backend_beside('tvl1', None, no_such_option=1)
