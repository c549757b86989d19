"""The two input streams of I3D and their number of channels."""

MODALITY_CHANNELS = {'rgb': 3, 'flow': 2}
# The streams in the order they are listed and fused (RGB first).
STREAMS = tuple(MODALITY_CHANNELS)


def modality_of_channels(n_channels):
    """Returns ``'rgb'`` for 3 input channels, ``'flow'`` for 2."""
    for modality, channels in MODALITY_CHANNELS.items():
        if channels == n_channels:
            return modality
    raise ValueError('no I3D stream takes {} input channels (RGB takes 3, '
                     'flow 2)'.format(n_channels))


def check_model_stream(model_modality, stream, argument, model):
    """Refuses a model of the other stream, in one message for every tool.

    Args:
        model_modality (str): The stream the model's weights are for.
        stream (str): The stream it was given for.
        argument (str): What it was given as (``'pretrained_model'``,
            ``'flow_model'``).
        model (str): The model as the user named it.

    Raises:
        ValueError: The two streams differ.
    """
    if model_modality != stream:
        raise ValueError(
            '{} {} is a {} model; stream is {}: give a model of the {} '
            'stream'.format(argument, model, model_modality, stream, stream))
