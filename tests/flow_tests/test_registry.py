import pytest

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
