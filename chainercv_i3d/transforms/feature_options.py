"""The choices that decide which frames and crops each feature sees."""

import dataclasses

from chainercv_i3d.transforms.feature_windows import ALIGNS
from chainercv_i3d.transforms.feature_windows import PADS
from chainercv_i3d.transforms.feature_windows import TAILS
from chainercv_i3d.transforms.multi_crop import CROP_SETS


@dataclasses.dataclass(frozen=True)
class FeatureOptions(object):
    """Which frames and crops each output step sees.

    Attributes:
        window (int): Frames per window; ``None``: the whole video at once
            (then ``avgpool`` keeps the network's own time axis).
        stride (int): Frames between windows (``None``: ``window``).
        align (str): ``'start'`` or ``'center'``
            (:func:`~chainercv_i3d.transforms.feature_windows.
            feature_windows`).
        tail (str): ``'drop'``, ``'pad'`` or ``'keep'``.
        pad (str): ``'edge'`` or ``'zeros'``.
        lookahead (int): Frames a full window needs after its last.
        fps (float): Frame rate the frames are resampled to by frame
            selection; ``None``: the model preset's (25 for DeepMind's
            Kinetics weights); ``0``: the video's own rate (native).
        crops (str): ``'center'``, ``'3'``, ``'5'`` or ``'10'``.
    """

    window: int = None
    stride: int = None
    align: str = 'start'
    tail: str = 'drop'
    pad: str = 'edge'
    lookahead: int = 0
    fps: float = None
    crops: str = 'center'

    def __post_init__(self):
        problems = []
        for name, choices in (('align', ALIGNS), ('tail', TAILS),
                              ('pad', PADS), ('crops', CROP_SETS)):
            if getattr(self, name) not in choices:
                problems.append('{} must be one of {}, not {!r}'.format(
                    name, ', '.join(choices), getattr(self, name)))
        for name in ('window', 'stride'):
            value = getattr(self, name)
            if value is not None and not value >= 1:
                problems.append('{} must be positive, not {!r}'.format(
                    name, value))
        if self.stride is not None and self.window is None:
            problems.append('stride needs a window')
        if self.fps is not None and self.fps < 0:
            problems.append('fps must be positive, or 0 (native), not '
                            '{!r}'.format(self.fps))
        if self.lookahead < 0:
            problems.append('lookahead must be >= 0, not {!r}'.format(
                self.lookahead))
        if problems:
            raise ValueError('; '.join(problems))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @property
    def window_options(self):
        """The keyword arguments of
        :func:`~chainercv_i3d.transforms.feature_windows.feature_windows`."""
        return {'window': self.window, 'stride': self.stride,
                'align': self.align, 'tail': self.tail, 'pad': self.pad,
                'lookahead': self.lookahead}


def with_clip_arguments(options, clip_frames=None, clip_stride=None):
    """``options`` (None: the defaults) with the older ``clip_frames`` and
    ``clip_stride`` arguments, when given, as its window and stride."""
    options = options or FeatureOptions()
    if clip_frames is not None:
        options = options.replace(window=clip_frames)
    if clip_stride is not None:
        options = options.replace(stride=clip_stride)
    return options
