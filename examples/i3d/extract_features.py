"""Extracts I3D features, one .npy per video, from videos or precomputed data.

    python examples/i3d/extract_features.py INPUT OUTPUT_DIR \\
        [--rgb_model NAME_OR_NPZ] [--flow_model NAME_OR_NPZ] \\
        [--endpoint avgpool|mixed_5c|logits] [--recipe NAME] \\
        [--window F [--stride S]] [--align start|center] [--pad edge|zeros] \\
        [--tail drop|pad|keep] [--fps FPS] [--crops center|3|5|10]
    mpiexec -n K python examples/i3d/extract_features.py ... --device gpu

INPUT is a video file, a folder of videos (searched recursively), or the
output of precompute_frames_flow.py (a folder with manifest.json, whose
stored frames and flow are used). OUTPUT_DIR/<video id>.npy is float32:

    whole video  avgpool (T', D)   mixed_5c (D, T'', 7, 7)   logits (n_class,)
    --window     avgpool (n, D)    mixed_5c (n, D, t, 7, 7)  logits (n, n_class)

with T'' = ceil(T / 8), T' = T'' - 1, D = 1024 per stream (RGB then flow)
and n windows; the logits of two streams are summed. --crops 3, 5 or 10
adds a crop axis after the window axis (first for the whole video), e.g.
avgpool (n, n_crops, D); all crops of a window run in one batch.
--clip_frames/--clip_stride are the old names of --window/--stride.

Frames: --fps resamples by frame selection (frame k shows source frame
floor(k * source_fps / fps)); default the model preset's rate (25 fps for
DeepMind's weights); --fps 0 keeps the video's own rate.

Beside each .npy, <video id>.json says how it was made (models and the
SHA-256 of their weights, every option, frame rates, frame count, and per
output step its first and last source frame and its start, end and centre
in seconds). OUTPUT_DIR/extraction.json holds the run's settings: a run
with other settings into the same folder is refused before any work, and
so is a folder with .npy files but no extraction.json (an older run).
Each rank of mpiexec takes every K-th video; a video with a sidecar is
done, so a run started again does only what is missing. Exit status 3 when
some videos failed.

A recipe (--recipe) sets the options of a published feature set (see
chainercv_i3d.evaluations.feature_recipes for each one's source); options
given explicitly win, and the sidecar lists them in recipe_overrides.
"""

import argparse
import glob
import os
import sys

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)

from chainercv_i3d.evaluations.feature_recipes import describe_recipe
from chainercv_i3d.evaluations.feature_recipes import recipe_names
from chainercv_i3d.evaluations.feature_recipes import RECIPES
from chainercv_i3d.evaluations.feature_recipes import resolve_options
from chainercv_i3d.evaluations.features import check_source_options
from chainercv_i3d.evaluations.features import claim_output_dir
from chainercv_i3d.evaluations.features import extract_share
from chainercv_i3d.evaluations.features import extraction_settings
from chainercv_i3d.evaluations.features import SETTINGS_NAME
from chainercv_i3d.evaluations.features import open_video_source
from chainercv_i3d.flow import flow_backend_names
from chainercv_i3d.links import I3DPredictor
from chainercv_i3d.links.fast import DTYPE_HELP
from chainercv_i3d.links.fast import DTYPES
from chainercv_i3d.links import min_input_size
from chainercv_i3d.links.i3d_predictor import ENDPOINTS
from chainercv_i3d.pretrained.models import DEFAULT_MODEL
from chainercv_i3d.transforms.feature_windows import ALIGNS
from chainercv_i3d.transforms.feature_windows import PADS
from chainercv_i3d.transforms.feature_windows import TAILS
from chainercv_i3d.transforms.multi_crop import CROP_SETS
from chainercv_i3d.utils.cli import abort_on_error
from chainercv_i3d.utils.cli import add_device_argument
from chainercv_i3d.utils.cli import EXIT_SOME_FAILED
from chainercv_i3d.utils.cli import get_comm_or_exit
from chainercv_i3d.utils.cli import non_negative_int
from chainercv_i3d.utils.cli import output_dir
from chainercv_i3d.utils.cli import positive_int
from chainercv_i3d.utils.comm import rank_share
from chainercv_i3d.utils.comm import sum_counts
from chainercv_i3d.utils.device import select_device
from chainercv_i3d.utils.interrupts import stop_on_interrupt
from chainercv_i3d.utils.progress import all_ranks_bar


OPTION_NAMES = ('window', 'stride', 'align', 'tail', 'pad', 'lookahead',
                'fps', 'crops')


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog='recipes: ' + '; '.join(
            '{} ({})'.format(name, describe_recipe(name))
            for name in recipe_names()))
    parser.add_argument('input')
    parser.add_argument('output_dir', type=output_dir)
    parser.add_argument('--rgb_model', help='model name or .npz (default {} '
                        'when no model is given)'.format(DEFAULT_MODEL))
    parser.add_argument('--flow_model')
    parser.add_argument('--endpoint', choices=ENDPOINTS,
                        help='default avgpool, or the recipe\'s')
    parser.add_argument('--recipe', choices=recipe_names())
    parser.add_argument('--window', '--clip_frames', dest='window',
                        type=positive_int,
                        help='frames per window (default: the whole video)')
    parser.add_argument('--stride', '--clip_stride', dest='stride',
                        type=positive_int,
                        help='frames between windows (default --window)')
    parser.add_argument('--align', choices=ALIGNS,
                        help='start (default): windows start every stride '
                        'frames; center: one window centred on every '
                        'stride-th frame, padded by --pad')
    parser.add_argument('--tail', choices=TAILS,
                        help='frames after the last whole window: drop '
                        '(default), pad (one more window, padded by --pad) '
                        'or keep (one more, shorter window)')
    parser.add_argument('--pad', choices=PADS,
                        help='edge (default): repeat the first/last frame; '
                        'zeros: frames of zeros in model range')
    parser.add_argument('--lookahead', type=non_negative_int,
                        help='frames a whole window needs after its last '
                        '(default 0)')
    parser.add_argument('--fps', type=non_negative_float,
                        help='resample to this rate by frame selection; 0: '
                        'the video\'s own; default the preset\'s')
    parser.add_argument('--crops', choices=CROP_SETS,
                        help='center (default), 3 along the long side, 5 '
                        '(corners and centre), 10 (the 5 and their mirrors)')
    parser.add_argument('--flow_backend', default='tvl1',
                        choices=flow_backend_names())
    parser.add_argument('--num_preprocess_workers', type=non_negative_int,
                        default=1, help='loader processes per rank')
    add_device_argument(parser)
    parser.add_argument('--dtype', choices=DTYPES, default='float32',
                        help=DTYPE_HELP)
    parser.add_argument('--quiet', action='store_true')
    args = parser.parse_args(argv)
    if not args.rgb_model and not args.flow_model:
        args.rgb_model = DEFAULT_MODEL
    try:
        args.options, args.overrides = resolve_options(
            args.recipe, **{k: getattr(args, k) for k in OPTION_NAMES})
    except ValueError as e:
        if args.stride and not args.window:
            parser.error('--stride needs --window (--clip_stride needs '
                         '--clip_frames)')
        parser.error(str(e))
    recipe_endpoint = RECIPES[args.recipe]['endpoint'] if args.recipe \
        else 'avgpool'
    if args.endpoint is None:
        args.endpoint = recipe_endpoint
    elif args.recipe and args.endpoint != recipe_endpoint:
        args.overrides = sorted(args.overrides + ['endpoint'])
    min_frames = min_input_size()[0]
    window = args.options.window
    if window and window < min_frames and args.endpoint != 'mixed_5c':
        parser.error('--endpoint {} needs clips of at least {} frames '
                     '(--window, --clip_frames)'.format(args.endpoint,
                                                        min_frames))
    return args


def non_negative_float(text):
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError('must be >= 0, got {}'.format(text))
    return value


def extract(args, comm):
    device = select_device(args.device, comm)
    predictor = I3DPredictor(args.rgb_model, args.flow_model,
                             flow_backend=args.flow_backend, device=device,
                             dtype=args.dtype)
    dataset = open_video_source(args.input, predictor.preset,
                                predictor.flow_backend)
    check_source_options(dataset, args.options)
    settings = extraction_settings(
        predictor, args.endpoint, args.options, args.recipe, args.overrides,
        {'rgb': args.rgb_model, 'flow': args.flow_model})
    claim_output_dir(args.output_dir, settings)  # before any work
    indices = rank_share(sorted(range(len(dataset)), key=dataset.video_id),
                         comm.rank, comm.size)
    bar = all_ranks_bar(len(dataset), comm, args.quiet)

    def report(video_id, message):
        bar.write('extract_features: skipped {}: {}'.format(
            video_id, message), file=sys.stderr)

    counts = extract_share(
        dataset, indices, predictor, args.output_dir, args.endpoint,
        n_workers=args.num_preprocess_workers, on_video=bar.update,
        on_error=report, options=args.options, settings=settings)
    bar.close()
    return counts


def count_extracted(output_dir):
    """Videos whose features are written: a video's sidecar is written
    after its .npy."""
    sidecars = glob.glob(os.path.join(glob.escape(output_dir), '**', '*.json'),
                         recursive=True)
    return len([path for path in sidecars if os.path.relpath(
        path, output_dir) != SETTINGS_NAME])


def main(argv=None):
    args = parse_args(argv)
    comm = get_comm_or_exit('extract_features')
    with stop_on_interrupt('extract_features', comm,
                           lambda: count_extracted(args.output_dir)):
        try:
            counts = extract(args, comm)
        except Exception as e:  # any rank's failure must end every rank
            abort_on_error('extract_features', comm, e)
            return 1
    totals = sum_counts(comm, counts)
    if comm.rank == 0:
        print('{done} done, {failed} failed, {already_done} already '
              'done'.format(**totals))
    return EXIT_SOME_FAILED if totals['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
