"""From the frames a sampler chose to model inputs: crops, flip, range."""

import numpy

from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.transforms.flip import flip as flip_video
from chainercv_i3d.transforms.model_range import scale_to_model_range
from chainercv_i3d.transforms.spatial_crop import CROP_MODES
from chainercv_i3d.transforms.spatial_crop import crop_windows


class ClipTransform(object):
    """Turns the temporal views of a video into model inputs.

    Every temporal view is cut into the spatial windows of ``crop_mode``
    (the same windows for every view and both streams, so RGB and flow stay
    aligned), optionally flipped left-right (flow negates x), and scaled to
    the model range of ``preset``. Views are ordered temporal view first,
    then window.

    Args:
        preset (Preset): Crop size and ranges.
        crop_mode (str): ``'center'`` (evaluation), ``'three'`` (three
            crops along the long side) or ``'random'`` (training).
        random_flip (bool): Flip each video with probability 1/2
            (training).
        crop_size (int): Overrides ``preset.crop_size``.

    Example:

        >>> transform = ClipTransform(DEEPMIND_KINETICS, 'three')
        >>> inputs = transform({'rgb': views})  # views (2, 3, T, 256, 340)
        >>> inputs['rgb'].shape
        (6, 3, T, 224, 224)
    """

    def __init__(self, preset=DEEPMIND_KINETICS, crop_mode='center',
                 random_flip=False, crop_size=None):
        if crop_mode not in CROP_MODES:
            raise ValueError('crop_mode must be one of {}, not {!r}'.format(
                ', '.join(CROP_MODES), crop_mode))
        self.preset = preset
        self.crop_mode = crop_mode
        self.random_flip = random_flip
        self.crop_size = crop_size or preset.crop_size

    @property
    def n_crops(self):
        """Spatial windows per temporal view."""
        return 3 if self.crop_mode == 'three' else 1

    def __call__(self, views, rng=None):
        """Crops, flips and scales the views of one video.

        Args:
            views (dict): stream -> ``(V, C, T, H, W)`` (RGB in [0, 255],
                flow in pixels), all streams of the same ``H, W``.
            rng (numpy.random.Generator): For random crops and flips.

        Returns:
            dict: stream -> ``(V * n_crops, C, T, crop, crop)`` float32 in
            model range.
        """
        return self.apply(views, rng)[0]

    def apply(self, views, rng=None):
        """As calling the transform, and says whether it flipped: a flip
        changes the class of a video whose class names a direction (see
        :func:`chainercv_i3d.transforms.flip_label_map`).

        Returns:
            tuple: The dict of model inputs and ``flipped`` (bool).
        """
        height, width = next(iter(views.values())).shape[-2:]
        windows = crop_windows(height, width, self.crop_size, self.crop_mode,
                               rng)
        x_flip = False
        if self.random_flip:
            if rng is None:
                raise ValueError('random_flip needs rng, a '
                                 'numpy.random.Generator')
            x_flip = bool(rng.integers(0, 2))
        return {stream: self._transform(stream, video, windows, x_flip)
                for stream, video in views.items()}, x_flip

    def _transform(self, stream, views, windows, x_flip):
        crops = [flip_video(view[:, :, y, x], x_flip, is_flow=stream == 'flow')
                 for view in views for y, x in windows]
        return scale_to_model_range(numpy.stack(crops), stream, self.preset)

    def describe(self):
        """A JSON-ready dict of what this transform does."""
        return {'crop_mode': self.crop_mode, 'num_crops': self.n_crops,
                'crop_size': self.crop_size, 'random_flip': self.random_flip}
