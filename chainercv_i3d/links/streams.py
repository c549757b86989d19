"""One or two I3D streams, loaded and checked together, and run."""

import chainer
import numpy

from chainercv_i3d.links.i3d import I3D
from chainercv_i3d.modality import STREAMS


def load_streams(rgb_model=None, flow_model=None, device=None):
    """Loads the models of one or two streams and checks that they fit.

    Args:
        rgb_model (str or I3D): A pretrained-model name, an ``.npz``, a
            link, or ``None``.
        flow_model (str or I3D): The same for the flow stream.
        device (chainer.backend.Device): Where to put them (``None``: leave
            them where they are, the CPU for loaded ones).

    Returns:
        dict: stream -> :class:`I3D`, RGB first.

    Raises:
        ValueError: No model; a model of the wrong stream; two streams with
            different class counts or class names (they cannot be fused).
    """
    models = {}
    for stream, model in (('rgb', rgb_model), ('flow', flow_model)):
        if model is None:
            continue
        given = model
        if not isinstance(model, I3D):
            model = I3D(pretrained_model=model)  # its stream from its weights
        if model.modality != stream:
            raise ValueError(
                'the {} model given is a {} model{}: give it as the {} '
                'model'.format(stream, model.modality,
                               '' if given is model else ' ({})'.format(given),
                               model.modality))
        models[stream] = model
    if not models:
        raise ValueError('give an RGB model, a flow model, or both')
    if len(models) == 2:
        _check_same_classes(models['rgb'], models['flow'])
    if device is not None:
        for model in models.values():
            model.to_device(device)
    return {s: models[s] for s in STREAMS if s in models}


def _check_same_classes(rgb, flow):
    if rgb.n_class != flow.n_class:
        raise ValueError('the RGB model has {} classes, the flow model {}: '
                         'two streams must share their classes'.format(
                             rgb.n_class, flow.n_class))
    if tuple(rgb.label_names) != tuple(flow.label_names):
        first = next(i for i, (a, b) in enumerate(zip(
            rgb.label_names, flow.label_names)) if a != b)
        raise ValueError('the two streams name class {} differently ({!r} '
                         'vs {!r}): they cannot be fused'.format(
                             first, rgb.label_names[first],
                             flow.label_names[first]))


def predict(model, x, device=None, endpoint=None):
    """Runs ``model`` on a batch in test mode without backprop.

    Args:
        model (I3D): The model.
        x (numpy.ndarray): ``(N, C, T, H, W)`` in model range.
        device (chainer.backend.Device): Where the model is (``None``: the
            CPU).
        endpoint (str): A layer to return instead of the model's ``pick``
            (restored afterwards).

    Returns:
        numpy.ndarray: The output on the CPU, float32.
    """
    previous = model.pick
    if endpoint is not None:
        model.pick = endpoint
    try:
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            y = model(x if device is None else device.send(x))
    finally:
        model.pick = previous
    return chainer.backends.cuda.to_cpu(y.array).astype(numpy.float32)
