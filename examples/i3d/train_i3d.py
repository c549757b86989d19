"""Trains or fine-tunes one I3D stream on precomputed videos, on MPI ranks.

    mpiexec -n 8 python examples/i3d/train_i3d.py TRAIN_DIR --stream rgb \\
        --out result --val VAL_DIR --accumulate 8 --device gpu

TRAIN_DIR (and VAL_DIR) are outputs of precompute_frames_flow.py (any
dataset it reads). The defaults are DeepMind's recipe: random 64-frame clips,
a random 224 crop of the short-side-256 frames, left-right flips (flow: x
negated), SGD with momentum 0.9 and weight decay 1e-7, dropout 0.5, batch 6
per rank with per-rank batch normalization, and the learning rates of
DeepMind's RGB or flow schedule (115k / 155k updates). Rerunning the same
command with the same --out resumes from its last snapshot; a larger
--iterations continues a finished run. The result, OUT/model_final.npz,
holds the weights, the label names and the preset: demo.py, eval_kinetics.py
and extract_features.py take it as a model.

Fine-tuning: --pretrained_model rgb_imagenet_kinetics400 (or an .npz); a
training set with other classes gets a new head (--n_class to force a
size); --freeze_upto mixed_5b trains only what follows; --bn frozen keeps
the running statistics.

Recipes: --recipe transfer_fixed or transfer_full sets the options of the
"Fixed" (train the last layer only) and "Full-FT" (end to end) columns of
"Quo Vadis" Table 4: the Kinetics checkpoint of --stream, 5k updates of the
step schedule (0.01, 10x drops at 3k and 4k) and, for transfer_fixed,
--freeze_upto avgpool. Options given on the command line win.

Multi-label sets (Charades) train with --loss sigmoid, their default: a
binary cross-entropy per class against the classes whose actions overlap
the clip's frames; main/accuracy is then the share of clips whose top class
is one of theirs, and validation reports mAP.
"""

import argparse
import sys

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)

from chainercv_i3d.training import BN_MODES
from chainercv_i3d.training import FLIPS
from chainercv_i3d.training import LOSSES
from chainercv_i3d.training import RECIPE_NAMES
from chainercv_i3d.training import recipe_options
from chainercv_i3d.training import SAMPLERS
from chainercv_i3d.training import SCHEDULE_NAMES
from chainercv_i3d.training import TrainConfig
from chainercv_i3d.training import Trainer
from chainercv_i3d.training.snapshot import snapshot_iteration
from chainercv_i3d.utils.cli import abort_on_error
from chainercv_i3d.utils.cli import add_device_argument
from chainercv_i3d.utils.cli import get_comm_or_exit
from chainercv_i3d.utils.cli import non_negative_int
from chainercv_i3d.utils.cli import output_dir
from chainercv_i3d.utils.cli import positive_int
from chainercv_i3d.utils.comm import CHAINERMN_COMMUNICATORS
from chainercv_i3d.utils.device import select_device
from chainercv_i3d.utils.interrupts import stop_on_interrupt



def int_list(text):
    """argparse type: comma-separated positive integers."""
    try:
        values = tuple(int(v) for v in text.split(',') if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            'give comma-separated iterations such as 300,1000, not ' + text)
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError('iterations must be positive')
    return values


def non_negative_float(text):
    """argparse type: a float of at least 0."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError('must be at least 0, not ' + text)
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('train_dir', help='precomputed training videos')
    parser.add_argument('--out', required=True, type=output_dir,
                        help='output folder (snapshot, log.json, '
                        'training.png, model_final.npz); resumed if it '
                        'holds a snapshot')
    parser.add_argument('--stream', choices=('rgb', 'flow'), default='rgb')
    parser.add_argument('--recipe', choices=RECIPE_NAMES,
                        help='defaults of a published recipe: '
                        'transfer_fixed / transfer_full are "Quo Vadis" '
                        'Fixed / Full-FT (the Kinetics checkpoint of '
                        '--stream, 5000 updates, step schedule 0.01 with '
                        'drops at 3000 and 4000, fixed: --freeze_upto '
                        'avgpool); the options given win')
    parser.add_argument('--val', help='precomputed validation videos')
    parser.add_argument('--pretrained_model',
                        help='pretrained name or .npz to start from '
                        '(default: random weights)')
    parser.add_argument('--n_class', type=positive_int,
                        help="classes of the head (default the training "
                        "set's)")
    parser.add_argument('--schedule', choices=SCHEDULE_NAMES,
                        help='learning rates (default deepmind_rgb or '
                        'deepmind_flow by --stream)')
    parser.add_argument('--lr', type=float,
                        help="base learning rate (default the schedule's: "
                        "0.1; 0.01 for step)")
    parser.add_argument('--lr_steps', type=int_list, default=(),
                        help='--schedule step: iterations of the 0.1x drops')
    parser.add_argument('--iterations', type=positive_int,
                        help="updates in all (default the schedule's)")
    parser.add_argument('--batch_size', type=positive_int, default=6,
                        help='clips per rank per sub-batch')
    parser.add_argument('--accumulate', type=positive_int, default=1,
                        help='sub-batches per update (one allreduce)')
    parser.add_argument('--frames', type=positive_int,
                        help="frames per training clip (default 64, or the "
                        "preset's segment count with --sampler segments)")
    parser.add_argument('--sampler', choices=SAMPLERS,
                        help='random_clip: consecutive frames from a random '
                        'start (DeepMind); segments: a random frame of each '
                        "of --frames equal segments (default: the training "
                        "set preset's kind, segments for Something-"
                        "Something)")
    parser.add_argument('--crop_size', type=positive_int,
                        help="crop side (default the preset's: 224)")
    parser.add_argument('--bn', choices=BN_MODES, default='batch',
                        help='batch normalization: per-rank batch statistics '
                        '(DeepMind), synchronized over ranks, or frozen '
                        'running statistics')
    parser.add_argument('--freeze_upto', metavar='LAYER',
                        help='freeze the layers up to this one (e.g. '
                        'mixed_5c: train the head only)')
    parser.add_argument('--seed', type=non_negative_int, default=0)
    parser.add_argument('--momentum', type=non_negative_float, default=0.9)
    parser.add_argument('--weight_decay', type=non_negative_float,
                        default=1e-7)
    parser.add_argument('--dropout_ratio', type=non_negative_float,
                        default=0.5)
    parser.add_argument('--flip', choices=FLIPS,
                        help='left-right flips of half the clips: swap '
                        '(and give a clip of a class naming a direction, '
                        'such as "pushing something from left to right", '
                        'its mirrored class), naive (labels unchanged) or '
                        'none (default: swap when the class names have '
                        'such pairs, else naive)')
    parser.add_argument('--no_flip', dest='flip', action='store_const',
                        const='none', help='the same as --flip none')
    parser.add_argument('--no_shuffle', dest='shuffle', action='store_false',
                        help="the dataset's order every epoch")
    parser.add_argument('--snapshot_interval', type=positive_int,
                        default=1000)
    parser.add_argument('--log_interval', type=positive_int, default=20)
    parser.add_argument('--val_interval', type=positive_int,
                        help='updates between validations (default '
                        '--snapshot_interval)')
    parser.add_argument('--val_n_frame', type=positive_int,
                        help="frames of validation clips (default the "
                        "preset's evaluation: 251)")
    parser.add_argument('--val_batch_size', type=positive_int, default=1)
    parser.add_argument('--communicator', choices=CHAINERMN_COMMUNICATORS,
                        help='ChainerMN communicator under mpiexec (default '
                        'pure_nccl on GPUs, naive on the CPU; naive and flat '
                        'on GPUs need a CUDA-aware MPI)')
    parser.add_argument('--num_preprocess_workers', type=non_negative_int,
                        default=2, help='loader processes per rank (0: none)')
    parser.add_argument('--use_chainerio', '--use_pfio', dest='use_pfio',
                        action='store_true')
    parser.add_argument('--loss', choices=LOSSES,
                        help='softmax cross-entropy (one label per clip) or '
                        'sigmoid binary cross-entropy per class (label sets; '
                        'default for a multi-label set such as Charades, '
                        'softmax otherwise)')
    parser.add_argument('--arch', choices=('i3d', 'tiny'), default='i3d',
                        help='tiny: a three-layer network that checks the '
                        'training set-up in seconds')
    add_device_argument(parser)
    parser.add_argument('--restart', action='store_true',
                        help='discard the snapshot, log and final model in '
                        '--out and start again from iteration 0 (without '
                        'it, a rerun resumes)')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar')
    apply_recipe(parser, argv)
    args = parser.parse_args(argv)
    if args.dropout_ratio >= 1:
        parser.error('--dropout_ratio must be below 1')
    return args


def apply_recipe(parser, argv):
    """Makes the options of --recipe (if given) the parser's defaults, so
    that those given on the command line win."""
    known, _ = parser.parse_known_args(argv)
    if known.recipe is not None:
        parser.set_defaults(**recipe_options(known.recipe, known.stream))


def config_of(args):
    return TrainConfig(
        train_dir=args.train_dir, out_dir=args.out, stream=args.stream,
        val_dir=args.val, pretrained_model=args.pretrained_model,
        n_class=args.n_class, schedule=args.schedule, lr=args.lr,
        lr_steps=args.lr_steps, iterations=args.iterations,
        batch_size=args.batch_size, accumulate=args.accumulate,
        frames=args.frames, crop_size=args.crop_size, bn=args.bn,
        freeze_upto=args.freeze_upto, seed=args.seed,
        momentum=args.momentum, weight_decay=args.weight_decay,
        dropout_ratio=args.dropout_ratio, flip=args.flip,
        sampler=args.sampler,
        shuffle=args.shuffle, snapshot_interval=args.snapshot_interval,
        log_interval=args.log_interval, val_interval=args.val_interval,
        val_n_frame=args.val_n_frame, val_batch_size=args.val_batch_size,
        communicator=args.communicator,
        n_workers=args.num_preprocess_workers, use_pfio=args.use_pfio,
        quiet=args.quiet, arch=args.arch, loss=args.loss,
        restart=args.restart)


def main(argv=None):
    args = parse_args(argv)
    comm = get_comm_or_exit('train_i3d')
    with stop_on_interrupt('train_i3d', comm,
                           lambda: snapshot_iteration(args.out)):
        try:
            device = select_device(args.device, comm)
            Trainer(config_of(args), comm, device,
                    say=lambda message: print('train_i3d: ' + message)).run()
        except Exception as e:  # any rank's failure must end every rank
            abort_on_error('train_i3d', comm, e)


if __name__ == '__main__':
    sys.exit(main())
