import chainer
import pytest

from chainercv_i3d.links import I3D
from chainercv_i3d.links import load_streams
from chainercv_i3d.pretrained.npz_weights import save_model_npz
from chainercv_i3d.presets import DEEPMIND_KINETICS


def test_two_checked_streams_rgb_first():
    models = load_streams(I3D(n_class=4), I3D(n_class=4, modality='flow'))
    assert list(models) == ['rgb', 'flow']
    assert models['flow'].modality == 'flow'


@pytest.mark.parametrize('rgb,flow,message', [
    (None, None, 'give an RGB model, a flow model, or both'),
    (I3D(n_class=4, modality='flow'), None,
     'rgb_model link is a flow model; stream is rgb'),
    (I3D(n_class=4), I3D(n_class=5, modality='flow'),
     'the RGB model has 4 classes, the flow model 5'),
])
def test_streams_that_do_not_fit_are_refused(rgb, flow, message):
    with pytest.raises(ValueError, match=message):
        load_streams(rgb, flow)


def test_streams_naming_classes_differently_cannot_be_fused(tmp_path):
    paths = []
    for stream, names in (('rgb', ('a', 'b')), ('flow', ('a', 'c'))):
        path = str(tmp_path / (stream + '.npz'))
        save_model_npz(I3D(n_class=2, modality=stream), path,
                       DEEPMIND_KINETICS.replace(label_names=names))
        paths.append(path)
    with pytest.raises(ValueError, match="name class 1 differently "
                       "\\('b' vs 'c'\\)"):
        load_streams(*paths)


def test_loaded_models_move_to_the_device():
    models = load_streams(I3D(n_class=2), device=chainer.get_device('@numpy'))
    assert models['rgb'].device == chainer.get_device('@numpy')
