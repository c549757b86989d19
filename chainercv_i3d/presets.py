"""Presets: how a set of weights expects its videos to be prepared.

A :class:`Preset` is the preprocessing a model was trained with (frame rate,
short side, crop, input ranges) and the clip sampler its evaluation uses, as
torchvision's weights carry their transforms. Every pretrained name carries
one, a converted or trained ``.npz`` stores its own, and the precompute
stage writes the one it used into ``meta.json``, so every stage reads the
constants from one place instead of repeating them.

This module is a leaf: it imports nothing of the package.
"""

import dataclasses
import json

# The clip samplers a preset may name for evaluation, with their arguments;
# chainercv_i3d.datasets.clip_samplers builds them from these descriptions.
SAMPLER_NAMES = ('first_frames', 'uniform', 'segments', 'all_frames')


@dataclasses.dataclass(frozen=True)
class Preset(object):
    """Preprocessing and evaluation sampling of a set of weights.

    Attributes:
        name (str): A short name (``'deepmind_kinetics'``).
        fps (float): Frame rate videos are resampled to; ``None`` keeps
            each video's own rate ("native").
        short_side (int): Frames are resized so that their short side has
            this many pixels (bilinear).
        crop_size (int): Side of the square crop the model sees.
        rgb_range (tuple): ``(low, high)``: RGB ``[0, 255]`` is mapped
            linearly onto it.
        flow_bound (float): Flow is clipped to ``[-b, b]`` pixels, then
            divided by ``b``; also the range of the stored 8-bit flow.
        eval_sampler (dict): The evaluation's clip sampler: ``name`` (one
            of :data:`SAMPLER_NAMES`) and its arguments.
        label_names (tuple of str): Class names in the order of the
            logits, or ``None`` where the preset is not tied to a head.
        multi_label (bool): A video may show several classes at once
            (Charades): its labels are a set, its scores independent
            sigmoid probabilities rather than a softmax.
    """

    name: str
    fps: float = 25.0
    short_side: int = 256
    crop_size: int = 224
    rgb_range: tuple = (-1.0, 1.0)
    flow_bound: float = 20.0
    eval_sampler: dict = dataclasses.field(
        default_factory=lambda: {'name': 'first_frames', 'n_frame': 251})
    label_names: tuple = None
    multi_label: bool = False

    def __post_init__(self):
        _check_preset(self)

    def replace(self, **changes):
        """A copy with ``changes`` applied (e.g. ``label_names=...``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """A JSON-ready dict; :func:`preset_from_dict` reads it back."""
        values = dataclasses.asdict(self)
        values['rgb_range'] = list(self.rgb_range)
        values['label_names'] = None if self.label_names is None \
            else list(self.label_names)
        if not self.multi_label:
            # Single-label presets are written as before the flag existed,
            # so that the settings of earlier runs still match.
            del values['multi_label']
        return values

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True)


def _check_preset(preset):
    problems = []
    if preset.fps is not None and not preset.fps > 0:
        problems.append('fps must be positive or None (native), not '
                        '{!r}'.format(preset.fps))
    for key in ('short_side', 'crop_size'):
        value = getattr(preset, key)
        if not isinstance(value, int) or value < 1:
            problems.append('{} must be a positive int, not {!r}'.format(
                key, value))
    if not preset.flow_bound > 0:
        problems.append('flow_bound must be positive, not {!r}'.format(
            preset.flow_bound))
    if len(tuple(preset.rgb_range)) != 2:
        problems.append('rgb_range must be (low, high), not {!r}'.format(
            preset.rgb_range))
    if preset.eval_sampler.get('name') not in SAMPLER_NAMES:
        problems.append('eval_sampler name must be one of {}, not {!r}'.format(
            ', '.join(SAMPLER_NAMES), preset.eval_sampler.get('name')))
    if problems:
        raise ValueError('invalid preset {!r}: {}'.format(
            preset.name, '; '.join(problems)))


def preset_from_dict(values):
    """Rebuilds a :class:`Preset` from :meth:`Preset.to_dict`'s output.

    Raises:
        ValueError: A key is unknown or a value is invalid.
    """
    known = {f.name for f in dataclasses.fields(Preset)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError('unknown preset field(s) {} (known: {})'.format(
            ', '.join(unknown), ', '.join(sorted(known))))
    values = dict(values)
    if 'rgb_range' in values:
        values['rgb_range'] = tuple(values['rgb_range'])
    if values.get('label_names') is not None:
        values['label_names'] = tuple(values['label_names'])
    return Preset(**values)


def preset_from_json(text):
    return preset_from_dict(json.loads(text))


DEEPMIND_KINETICS = Preset(name='deepmind_kinetics')
"""DeepMind's Kinetics protocol ("Quo Vadis" and ``kinetics-i3d``'s README):
25 fps, short side 256 (bilinear), 224x224 center crop, RGB in [-1, 1],
TV-L1 flow clipped to [-20, 20] and divided by 20; evaluation on the first
251 frames of each video (repeated from its start when shorter)."""

SOMETHING_SOMETHING_V2 = Preset(
    name='something_something_v2', fps=None,
    eval_sampler={'name': 'segments', 'n_segment': 32})
"""Something-Something V2 (12 fps WebM, short side 240): frames kept at
their native rate (resampling 12 fps to 25 duplicates frames, and TV-L1
between a frame and its copy is zero), short side 256 as for Kinetics (a
small upscale, as MMAction2's ``Resize(-1, 256)``), 224 crops, and clips of
32 frames, one from each of 32 equal segments of the whole video (the
middle one in test mode; SlowFast's and TSN's sampling): the videos are a
few seconds, 2 to 6 s, i.e. 24 to 72 frames."""

DEEPMIND_TRANSFER = Preset(name='deepmind_transfer',
                           eval_sampler={'name': 'all_frames'})
"""UCF101 and HMDB51 as "Quo Vadis" fine-tunes and tests on them (arXiv
1705.07750v3): DeepMind's Kinetics preprocessing (videos "processed at 25
frames per second", Section 2.4; short side 256, 224 crops, TV-L1 flow,
Section 2.5), and the test "applied convolutionally over the whole video
taking 224 x 224 center crops" (Section 2.5): every frame of each video, not
the first 251 (UCF101 and HMDB51 clips are a few seconds long)."""

# The preset a list reader's videos are prepared with by default.
DATASET_PRESETS = {'something_something_v2': SOMETHING_SOMETHING_V2,
                   'ucf101': DEEPMIND_TRANSFER,
                   'hmdb51': DEEPMIND_TRANSFER}


def dataset_preset(dataset):
    """The default preset of the videos of list reader ``dataset``:
    :data:`DATASET_PRESETS`' entry, else :data:`DEEPMIND_KINETICS`."""
    return DATASET_PRESETS.get(dataset, DEEPMIND_KINETICS)
