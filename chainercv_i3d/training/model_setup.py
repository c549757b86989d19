"""The model a training run starts from: weights, head, frozen layers and
the kind of batch normalization."""

import numpy

from chainercv_i3d.architecture import BN_DECAY
from chainercv_i3d.architecture import BN_EPS
from chainercv_i3d.links.i3d import I3D
from chainercv_i3d.links.tiny_i3d import TinyI3D
from chainercv_i3d.links.unit3d import Unit3D
from chainercv_i3d.modality import check_model_stream
from chainercv_i3d.pretrained.resolve import weights_modality

# TrainConfig.bn: per-rank batch statistics (DeepMind: TensorFlow's sync
# replicas aggregate gradients only), statistics of the global batch
# (ChainerMN's multi-node batch normalization), or the running statistics,
# frozen.
BN_MODES = ('batch', 'sync', 'frozen')
ARCHITECTURES = {'i3d': I3D, 'tiny': TinyI3D}


def build_model(stream, pretrained_model, n_class, label_names,
                dropout_ratio=0.5, arch='i3d'):
    """An I3D for ``stream`` with a head of ``n_class`` classes.

    Args:
        stream (str): ``'rgb'`` or ``'flow'``.
        pretrained_model (str): A pretrained name or an ``.npz``; None for
            random weights.
        n_class (int): Classes to train.
        label_names (tuple of str): Their names.
        dropout_ratio (float): Dropout before the logits.
        arch (str): ``'i3d'``, or ``'tiny'`` (:class:`TinyI3D`, to check
            the training machinery in seconds).

    Returns:
        I3D: The pretrained head is kept when it has the same classes;
        otherwise a new head replaces it (fine-tuning).

    Raises:
        ValueError: The pretrained model is of another stream.
    """
    if arch not in ARCHITECTURES:
        raise ValueError('unknown architecture {!r}: give one of {}'.format(
            arch, ', '.join(ARCHITECTURES)))
    if pretrained_model is None:
        model = ARCHITECTURES[arch](n_class, stream,
                                    dropout_ratio=dropout_ratio)
        model.preset = model.preset.replace(label_names=tuple(label_names))
        return model
    if arch == 'tiny':
        model = TinyI3D(_npz_n_class(pretrained_model), stream,
                        pretrained_model, dropout_ratio)
        check_model_stream(model.modality, stream, 'pretrained_model',
                           pretrained_model)
    else:
        # Before any download or load.
        check_model_stream(weights_modality(pretrained_model), stream,
                           'pretrained_model', pretrained_model)
        model = I3D(pretrained_model=pretrained_model,
                    dropout_ratio=dropout_ratio)
    if model.n_class != n_class \
            or tuple(model.label_names) != tuple(label_names):
        model.replace_head(n_class, label_names)
    return model


def _npz_n_class(path):
    with numpy.load(path) as npz:
        return npz['logits/conv/W'].shape[0]


def unit3d_links(model):
    """Every :class:`Unit3D` of ``model``."""
    return [link for link in model.links() if isinstance(link, Unit3D)]


def set_batch_norm(model, mode, chainermn_comm=None):
    """Sets how every batch normalization of ``model`` trains.

    Args:
        model (I3D): The model (changed in place).
        mode (str): One of :data:`BN_MODES`.
        chainermn_comm: A ChainerMN communicator, for ``'sync'``.

    Raises:
        ValueError: An unknown mode, or ``'sync'`` without a communicator.
    """
    if mode not in BN_MODES:
        raise ValueError('unknown batch normalization mode {!r}: give one of '
                         '{}'.format(mode, ', '.join(BN_MODES)))
    if mode == 'sync' and chainermn_comm is None:
        raise ValueError("batch normalization 'sync' needs mpiexec (a "
                         'ChainerMN communicator)')
    for unit in unit3d_links(model):
        unit.frozen_statistics = mode == 'frozen'
        if mode == 'sync':
            _synchronize(unit, chainermn_comm)


def _synchronize(unit, chainermn_comm):
    # Same parameter and persistent names as L.BatchNormalization, so
    # snapshots and the final .npz load into a plain I3D.
    import chainermn.links  # ChainerMN is optional: only mpiexec runs
    old = unit.bn
    new = chainermn.links.MultiNodeBatchNormalization(
        old.avg_mean.shape, chainermn_comm, decay=BN_DECAY, eps=BN_EPS,
        use_gamma=False)
    new.to_device(old.device)
    new.beta.array[...] = old.beta.array
    new.avg_mean[...] = old.avg_mean
    new.avg_var[...] = old.avg_var
    new.N = old.N
    del unit.bn
    with unit.init_scope():
        unit.bn = new


def average_batch_norm_statistics(model, chainermn_comm):
    """Averages the running statistics of every batch normalization over
    the ranks, in the model of every rank (per-rank statistics drift apart;
    done before evaluating and snapshotting so that a resumed run and an
    uninterrupted one hold the same statistics)."""
    if chainermn_comm is None:
        return
    import chainermn.extensions  # ChainerMN is optional: only mpiexec runs
    chainermn.extensions.AllreducePersistent(model, chainermn_comm)()


def check_trainable(model):
    """Raises ValueError when no parameter of ``model`` would be updated
    (call after the optimizer's setup and :meth:`I3D.freeze`)."""
    if not model.update_enabled:
        raise ValueError('every layer is frozen (freeze_upto {}): nothing '
                         'would train'.format(model.frozen_upto))
