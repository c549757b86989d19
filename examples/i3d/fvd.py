"""Fréchet Video Distance between two sets of videos, as the reference computes it.

    python examples/i3d/fvd.py REAL FAKE [--json out.json]
    python examples/i3d/fvd.py REAL --save_stats real_stats.npz
    python examples/i3d/fvd.py --stats real_stats.npz FAKE
    mpiexec -n K python examples/i3d/fvd.py REAL FAKE ...

REAL and FAKE are folders of videos (searched recursively; decoded with
OpenCV, every frame, or GIFs) or .npy / .npz files of one (N, T, H, W, 3)
uint8 RGB array; the videos of a set share T, H and W. Each video's frames
are resized to 224x224 (--resize reference: TensorFlow 1's
tf.image.resize_bilinear, as google-research's frechet_video_distance.py;
tf2: TensorFlow 2's tf.image.resize), scaled to [-1, 1] and embedded by
I3D (default rgb_tfhub_kinetics400, the reference's TF-Hub weights) as the
400 logits averaged over time; FVD is the Fréchet distance of the two sets'
Gaussians, as TF-GAN's frechet_classifier_distance_from_activations.
--save_stats writes REAL's statistics (with only REAL given, nothing else is
computed); --stats reads them instead of REAL. Each rank of mpiexec embeds
every K-th video of each set; the result does not depend on K.
"""

import argparse
import sys

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)

from chainercv_i3d.evaluations.fvd import describe_settings
from chainercv_i3d.evaluations.fvd import embed_ranks
from chainercv_i3d.evaluations.fvd import FVD_BATCH_SIZE
from chainercv_i3d.evaluations.fvd import FVD_MODEL
from chainercv_i3d.evaluations.fvd import fvd_from_stats
from chainercv_i3d.evaluations.fvd import load_fvd_model
from chainercv_i3d.evaluations.fvd import RESIZE_METHODS
from chainercv_i3d.evaluations.fvd import VideoSet
from chainercv_i3d.evaluations.fvd import VideoStats
from chainercv_i3d.files import write_json
from chainercv_i3d.links.fast import DTYPE_HELP
from chainercv_i3d.links.fast import DTYPES
from chainercv_i3d.utils.cli import abort_on_error
from chainercv_i3d.utils.cli import add_device_argument
from chainercv_i3d.utils.cli import output_file
from chainercv_i3d.utils.cli import get_comm_or_exit
from chainercv_i3d.utils.cli import positive_int
from chainercv_i3d.utils.device import select_device
from chainercv_i3d.utils.interrupts import stop_on_interrupt
from chainercv_i3d.utils.progress import all_ranks_bar

PROG = 'fvd'


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('sets', nargs='+', metavar='REAL FAKE',
                        help='two folders of videos or .npy/.npz arrays '
                        '(only FAKE with --stats; only REAL with '
                        '--save_stats to just save its statistics)')
    parser.add_argument('--stats', help="REAL's statistics (.npz from "
                        '--save_stats) instead of REAL')
    parser.add_argument('--save_stats', type=output_file,
                        help="write REAL's statistics (.npz) here")
    parser.add_argument('--json', type=output_file,
                        help='write the result and every setting here')
    parser.add_argument('--rgb_model', default=FVD_MODEL,
                        help='model name or .npz (default {}, the '
                        "reference's TF-Hub weights)".format(FVD_MODEL))
    parser.add_argument('--resize', choices=RESIZE_METHODS,
                        default='reference',
                        help="reference: TensorFlow 1's tf.image."
                        "resize_bilinear, the reference's (default); tf2: "
                        "TensorFlow 2's tf.image.resize (half-pixel "
                        'centres, other pixels)')
    parser.add_argument('--batch_size', type=positive_int,
                        default=FVD_BATCH_SIZE,
                        help='videos per forward pass (speed and memory '
                        'only; default {})'.format(FVD_BATCH_SIZE))
    add_device_argument(parser)
    parser.add_argument('--dtype', choices=DTYPES, default='float32',
                        help=DTYPE_HELP)
    parser.add_argument('--quiet', action='store_true')
    args = parser.parse_args(argv)
    if args.stats:
        if args.save_stats:
            parser.error("--save_stats saves REAL's statistics; with --stats "
                         'there is no REAL to save')
        if len(args.sets) != 1:
            parser.error('with --stats give only FAKE, not {} sets'.format(
                len(args.sets)))
        args.real, args.fake = None, args.sets[0]
    elif len(args.sets) == 1 and args.save_stats:
        args.real, args.fake = args.sets[0], None
    elif len(args.sets) == 2:
        args.real, args.fake = args.sets
    else:
        parser.error('give REAL and FAKE (or --stats PATH and FAKE, or REAL '
                     'and --save_stats PATH), not {} sets'.format(
                         len(args.sets)))
    return args


def embed_set(video_set, model, model_settings, args, comm, device):
    """Statistics of a :class:`VideoSet` (every rank; a collective call)."""
    bar = all_ranks_bar(len(video_set), comm, args.quiet)
    try:
        activations, shape = embed_ranks(
            video_set, model, comm, args.batch_size, args.resize, device,
            on_video=bar.update)
    finally:
        bar.close()
    settings = describe_settings(model_settings, args.resize, shape,
                                 args.dtype)
    return VideoStats.from_activations(activations, settings)


def run(args, comm):
    # The inputs are checked before the model is loaded.
    real = VideoStats.load(args.stats) if args.stats else VideoSet(args.real)
    fake = None if args.fake is None else VideoSet(args.fake)
    device = select_device(args.device, comm)
    model, model_settings = load_fvd_model(args.rgb_model)
    model.to_device(device)
    model.fast.dtype = args.dtype
    if not args.stats:
        real = embed_set(real, model, model_settings, args, comm, device)
        if args.save_stats and comm.rank == 0:
            real.save(args.save_stats)
    if fake is None:
        return None if comm.rank != 0 else {'real': real}
    fake = embed_set(fake, model, model_settings, args, comm, device)
    if comm.rank != 0:
        return None
    for key in ('frames', 'height', 'width'):
        if real.settings.get(key) != fake.settings.get(key):
            sys.stderr.write('{}: warning: the sets differ in {} ({} and '
                             '{})\n'.format(PROG, key, real.settings.get(key),
                                            fake.settings.get(key)))
    return {'real': real, 'fake': fake, 'fvd': fvd_from_stats(real, fake)}


def report(args, outcome):
    real, fake = outcome['real'], outcome.get('fake')
    settings = (fake or real).settings
    result = {
        'fvd': outcome.get('fvd'),
        'real': dict(source=args.stats or args.real, n=real.n,
                     from_stats=bool(args.stats),
                     frames=real.settings.get('frames'),
                     height=real.settings.get('height'),
                     width=real.settings.get('width')),
        'settings': {k: settings[k] for k in (
            'model', 'weights_sha256', 'embedding', 'resize', 'size',
            'dtype', 'version')},
        'batch_size': args.batch_size,
    }
    if args.save_stats:
        result['saved_stats'] = args.save_stats
    if fake is not None:
        result['fake'] = dict(source=args.fake, n=fake.n,
                              frames=fake.settings.get('frames'),
                              height=fake.settings.get('height'),
                              width=fake.settings.get('width'))
    lines = []
    if result['fvd'] is not None:
        lines.append('FVD: {:.4f}'.format(result['fvd']))
    for key in ('real', 'fake'):
        if key in result:
            r = result[key]
            lines.append('{:5s} {} videos, {} frames of {}x{}: {}{}'.format(
                key + ':', r['n'], r['frames'], r['height'], r['width'],
                r['source'], ' (statistics)' if r.get('from_stats') else ''))
    s = result['settings']
    lines.append('model: {} (weights sha256 {}), {}'.format(
        s['model'], s['weights_sha256'], s['embedding']))
    lines.append('resize: {} to {}x{}, dtype {}, chainercv_i3d {}'.format(
        s['resize'], s['size'], s['size'], s['dtype'], s['version']))
    if args.save_stats:
        lines.append('statistics of real saved to ' + args.save_stats)
    print('\n'.join(lines))
    if args.json:
        write_json(args.json, result, sort_keys=True)


def main(argv=None):
    args = parse_args(argv)
    comm = get_comm_or_exit(PROG)
    # The statistics are made at the end and the embeddings of an unfinished
    # run are not kept (FVD reads its videos in minutes, not hours): a
    # stopped run starts again.
    with stop_on_interrupt(PROG, comm, lambda: None):
        try:
            outcome = run(args, comm)
            if outcome is not None:
                report(args, outcome)
        except Exception as e:  # any rank's failure must end every rank
            abort_on_error(PROG, comm, e)


if __name__ == '__main__':
    main()
