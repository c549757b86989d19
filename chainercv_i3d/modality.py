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
