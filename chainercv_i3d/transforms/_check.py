def check_video(video, name='video'):
    """Raises ValueError unless ``video`` is a 4-d ``(C, T, H, W)`` array."""
    if getattr(video, 'ndim', None) != 4:
        raise ValueError('{} must be a (C, T, H, W) array, got shape {}'
                         .format(name, getattr(video, 'shape', None)))
