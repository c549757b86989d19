"""What a training run is asked to do (:class:`TrainConfig`), and the
defaults a training set implies (:func:`resolve_defaults`)."""

import dataclasses

from chainercv_i3d.architecture import max_frame_size
from chainercv_i3d.architecture import min_input_size
from chainercv_i3d.datasets.clip_samplers import make_clip_sampler
from chainercv_i3d.datasets.clip_samplers import RandomClip
from chainercv_i3d.datasets.clip_samplers import Segments
from chainercv_i3d.transforms.flip import flip_label_map

# TrainConfig.sampler: DeepMind's consecutive frames, or TSN/SlowFast
# segments.
SAMPLERS = ('random_clip', 'segments')
# TrainConfig.flip
FLIPS = ('swap', 'naive', 'none')
DEFAULT_FRAMES = 64  # Carreira in google-deepmind/kinetics-i3d#93
# TrainConfig.loss: softmax cross-entropy over one label per clip, or binary
# cross-entropy of a sigmoid per class over label sets (multi-label).
LOSSES = ('softmax', 'sigmoid')

# "Quo Vadis" (arXiv 1705.07750v3), Section 5 and Table 4: "Fixed" trains
# only the last layer on features of the Kinetics network, "Full-FT"
# fine-tunes it end to end. Both start from DeepMind's Kinetics checkpoint
# of the stream and train "for up to 5k steps on UCF-101 and HMDB-51 using a
# similar learning rate adaptation procedure as for Kinetics" (10x drops,
# Section 2.5); the paper gives no rate. Our choice: the 'step' schedule's
# 0.01 (10x below the Kinetics rate, the weights being trained already),
# 10x drops at fixed points, 3k and 4k (reproducible and resumable, where
# the paper drops when the validation loss saturates).
TRANSFER_SCHEDULE = dict(schedule='step', lr=0.01, lr_steps=(3000, 4000),
                         iterations=5000)
RECIPES = {
    # Every layer up to the pooled feature frozen (avgpool has no weights:
    # the same as mixed_5c); frozen layers run on their running statistics.
    'transfer_fixed': dict(TRANSFER_SCHEDULE, freeze_upto='avgpool'),
    'transfer_full': dict(TRANSFER_SCHEDULE, freeze_upto=None),
}
RECIPE_NAMES = tuple(sorted(RECIPES))
RECIPE_PRETRAINED_MODEL = '{}_imagenet_kinetics400'


def recipe_options(name, stream):
    """The :class:`TrainConfig` options of recipe ``name`` for ``stream``:
    :data:`RECIPES`' entry and DeepMind's ImageNet+Kinetics checkpoint of
    the stream as ``pretrained_model``.

    Example:
        >>> recipe_options('transfer_fixed', 'flow')['pretrained_model']
        'flow_imagenet_kinetics400'

    Raises:
        ValueError: An unknown recipe.
    """
    if name not in RECIPES:
        raise ValueError('unknown recipe {!r}: give one of {}'.format(
            name, ', '.join(RECIPE_NAMES)))
    return dict(RECIPES[name],
                pretrained_model=RECIPE_PRETRAINED_MODEL.format(stream))


@dataclasses.dataclass
class TrainConfig(object):
    """The options of one training run; defaults follow DeepMind's recipe.

    Attributes:
        train_dir (str): Precomputed training videos (a folder, a zip or a
            pfio URL).
        out_dir (str): Snapshots, logs, plot and ``model_final.npz``; a
            rerun with the same ``out_dir`` resumes.
        stream (str): ``'rgb'`` or ``'flow'``.
        val_dir (str): Precomputed validation videos, or None.
        pretrained_model (str): A pretrained name or ``.npz``; None for
            random weights.
        n_class (int): Classes of the head; None for the training set's.
        schedule (str): ``'deepmind_rgb'``, ``'deepmind_flow'`` or
            ``'step'``; None for DeepMind's of the stream.
        lr (float): The schedule's base rate; None for its own.
        lr_steps (tuple of int): 0.1x drops of ``'step'``.
        iterations (int): Updates in all; None for the schedule's length.
        batch_size (int): Clips per sub-batch on each rank.
        accumulate (int): Sub-batches per update (one allreduce).
        frames (int): Frames per training clip; None for 64, or for
            ``'segments'`` the preset's segment count.
        sampler (str): ``'random_clip'`` (consecutive frames from a random
            start, DeepMind's) or ``'segments'`` (a random frame of each of
            ``frames`` equal segments); None for the training set preset's
            kind (segments for Something-Something).
        crop_size (int): Crop side; None for the preset's (224).
        bn (str): ``'batch'`` (per rank), ``'sync'`` or ``'frozen'``.
        freeze_upto (str): Freeze the layers up to this one; None: none.
        seed (int): Seed of the example order, crops, flips and dropout.
        momentum (float): Momentum of SGD.
        weight_decay (float): L2 weight decay (DeepMind: 1e-7).
        dropout_ratio (float): Dropout before the logits.
        flip (str): Left-right flips (flow: x negated) of half the clips:
            ``'swap'`` (flip, and give a flipped clip of a class that names
            a direction its mirrored class: Something-Something's "left to
            right" pairs), ``'naive'`` (flip, labels unchanged), ``'none'``;
            None for ``'swap'`` when the class names have mirrored pairs,
            else ``'naive'``.
        shuffle (bool): A new example order every epoch.
        snapshot_interval (int): Updates between snapshots.
        log_interval (int): Updates per log entry.
        val_interval (int): Updates between validations; None: at every
            snapshot.
        val_n_frame (int): Frames of the validation clips; None for the
            preset's evaluation protocol (DeepMind: the first 251).
        val_batch_size (int): Views per validation forward pass.
        communicator (str): ChainerMN communicator under mpiexec; None
            for ``pure_nccl`` on GPUs and ``naive`` on the CPU
            (:func:`chainercv_i3d.utils.comm.choose_chainermn_communicator`).
        n_workers (int): Loader processes per rank.
        use_pfio (bool): Read through pfio.
        quiet (bool): No progress bar.
        restart (bool): Discard the snapshot, log and final model that
            ``out_dir`` holds and start again from iteration 0 (instead of
            resuming).
        arch (str): ``'i3d'``, or ``'tiny'`` (a three-layer network to
            check the training machinery in seconds).
        loss (str): ``'softmax'`` (cross-entropy, one label per clip) or
            ``'sigmoid'`` (binary cross-entropy per class, the mean over
            classes and clips, against the classes the clip's frames show);
            None for ``'sigmoid'`` on a multi-label training set
            (Charades), else ``'softmax'``.
    """

    train_dir: str
    out_dir: str
    stream: str = 'rgb'
    val_dir: str = None
    pretrained_model: str = None
    n_class: int = None
    schedule: str = None
    lr: float = None
    lr_steps: tuple = ()
    iterations: int = None
    batch_size: int = 6
    accumulate: int = 1
    frames: int = None
    sampler: str = None
    crop_size: int = None
    bn: str = 'batch'
    freeze_upto: str = None
    seed: int = 0
    momentum: float = 0.9
    weight_decay: float = 1e-7
    dropout_ratio: float = 0.5
    flip: str = None
    shuffle: bool = True
    snapshot_interval: int = 1000
    log_interval: int = 20
    val_interval: int = None
    val_n_frame: int = None
    val_batch_size: int = 1
    communicator: str = None
    n_workers: int = 2
    use_pfio: bool = False
    quiet: bool = False
    arch: str = 'i3d'
    restart: bool = False
    loss: str = None

    def run_settings(self, size, schedule):
        """What a resumed run must share with the run it continues (the
        rest, such as ``iterations`` or the intervals, may change)."""
        settings = {
            'train_dir': self.train_dir, 'stream': self.stream,
            'pretrained_model': self.pretrained_model,
            'n_class': self.n_class, 'schedule': schedule.describe(),
            'batch_size': self.batch_size, 'accumulate': self.accumulate,
            'ranks': size, 'frames': self.frames,
            'crop_size': self.crop_size, 'bn': self.bn,
            'freeze_upto': self.freeze_upto, 'seed': self.seed,
            'momentum': self.momentum, 'weight_decay': self.weight_decay,
            'dropout_ratio': self.dropout_ratio,
            'flip': self.flip, 'sampler': self.sampler,
            'shuffle': self.shuffle,
            'arch': self.arch}
        if self.loss == 'sigmoid':
            # Absent means softmax: snapshots written before the option.
            settings['loss'] = self.loss
        return settings


def resolve_defaults(config, preset):
    """``config`` with the defaults a training set's preset implies.

    The sampler kind and clip length: segments and the preset's segment
    count for Something-Something, DeepMind's 64 consecutive frames
    otherwise. The flip policy: ``'swap'`` when the class names have
    mirrored pairs, else ``'naive'``. The loss: ``'sigmoid'`` for a
    multi-label set, else ``'softmax'``. What ``config`` sets is kept.

    Args:
        config (TrainConfig): The options as given.
        preset (chainercv_i3d.presets.Preset): The training set's preset.

    Returns:
        TrainConfig: A copy with ``sampler``, ``frames``, ``flip`` and
        ``loss`` set.

    Raises:
        ValueError: An unknown sampler (not in :data:`SAMPLERS`), flip
            policy (not in :data:`FLIPS`) or loss (not in :data:`LOSSES`),
            or ``'softmax'`` on a multi-label set.

    Example:

        >>> config = resolve_defaults(config, dataset.preset)
        >>> config.sampler, config.frames
        ('random_clip', 64)
    """
    evaluation = make_clip_sampler(preset.eval_sampler)
    sampler = config.sampler or (
        'segments' if isinstance(evaluation, Segments) else 'random_clip')
    if sampler not in SAMPLERS:
        raise ValueError('unknown sampler {!r}: give one of {}'.format(
            sampler, ', '.join(SAMPLERS)))
    frames = config.frames or (
        evaluation.n_frame if sampler == 'segments' else DEFAULT_FRAMES)
    flip = config.flip
    if flip is None:
        names = preset.label_names or ()
        flip = 'swap' if flip_label_map(names) else 'naive'
    if flip not in FLIPS:
        raise ValueError('unknown flip policy {!r}: give one of {}'.format(
            flip, ', '.join(FLIPS)))
    loss = resolve_loss(config, preset)
    return dataclasses.replace(config, sampler=sampler, frames=frames,
                               flip=flip, loss=loss)


def resolve_loss(config, preset):
    """``config.loss``, or the training set's: ``'sigmoid'`` when it is
    multi-label, else ``'softmax'``; refuses softmax on label sets."""
    loss = config.loss or ('sigmoid' if preset.multi_label else 'softmax')
    if loss not in LOSSES:
        raise ValueError('unknown loss {!r}: give one of {}'.format(
            loss, ', '.join(LOSSES)))
    if loss == 'softmax' and preset.multi_label:
        raise ValueError('{} is multi-label (clips show several classes): '
                         "the softmax loss takes one label per clip; use "
                         "loss 'sigmoid'".format(config.train_dir))
    return loss


def training_sampler(config):
    """The clip sampler of a resolved ``config``.

    Args:
        config (TrainConfig): Resolved by :func:`resolve_defaults`.

    Returns:
        ClipSampler: :class:`~chainercv_i3d.datasets.clip_samplers.Segments`
        (a random frame of each of ``frames`` segments) or
        :class:`~chainercv_i3d.datasets.clip_samplers.RandomClip`
        (``frames`` consecutive frames from a random start).
    """
    if config.sampler == 'segments':
        return Segments(config.frames, random=True)
    return RandomClip(config.frames)


def check_clip_fits_head(config, crop_size):
    """Refuses clips that I3D's head cannot take, before any work.

    The head's 2 x 7 x 7 VALID average pool needs ``mixed_5c`` of at least
    2 x 7 x 7 after the network's strides (8 in time, 32 in space), and
    DeepMind's head squeezes a 7 x 7 one
    (:func:`~chainercv_i3d.architecture.min_input_size`,
    :func:`~chainercv_i3d.architecture.max_frame_size`). The ``'tiny'``
    network takes any size.

    Args:
        config (TrainConfig): Resolved by :func:`resolve_defaults`.
        crop_size (int): The crop side the run uses.

    Raises:
        ValueError: Too few frames (``frames``, ``val_n_frame``), or a crop
            too small or too large.
    """
    if config.arch != 'i3d':
        return
    min_frames, min_side, _ = min_input_size()
    largest = max_frame_size()
    for name in ('frames', 'val_n_frame'):
        n_frame = getattr(config, name)
        if n_frame is not None and n_frame < min_frames:
            raise ValueError(
                '{} {} is too few for I3D: its head needs clips of at least '
                '{} frames; give {} of {} or more'.format(
                    name, n_frame, min_frames, name, min_frames))
    if not min_side <= crop_size <= largest:
        raise ValueError(
            'crop_size {} does not fit I3D: its head takes crops of {} to {} '
            'pixels; give a crop_size in that range'.format(
                crop_size, min_side, largest))
