"""Pictures of I3D: first-layer filters, a layer's activations, optical flow.

    python examples/i3d/visualize.py filters --model rgb_tfhub_kinetics400 \\
        --out pictures
    python examples/i3d/visualize.py activations CLIP \\
        --model rgb_tfhub_kinetics400 --layer conv3d_1a_7x7 --out pictures
    python examples/i3d/visualize.py flow VIDEO --out pictures

filters: the 64 7x7x7 filters of conv3d_1a_7x7 as an 8x8 grid, one GIF frame
per time tap, and a PNG of the middle tap; each filter min-max normalized;
RGB filters in colour, flow filters in the flow colour wheel.

activations: a layer's channels (the first --channels) on a clip, one GIF
frame per time step of the layer, beside the input frame of that step; each
channel normalized over its own values. CLIP is a video file (decoded,
resampled and center-cropped as the model's preset says; flow computed for
a flow model), one precomputed video .zip, a DeepMind sample .npy
(1, T, H, W, C) in model range, or an animated .gif of RGB frames.

flow: the video's optical flow (decoded as DeepMind's preset: 25 fps, short
side 256) beside its frames, in the Middlebury colour wheel (hue: direction,
brightness: speed), and the wheel as a PNG legend.

Every GIF frame has a red timeline strip at its bottom. Pictures are named
after their model (a pretrained name, or an .npz's file name with the first
8 hex digits of its SHA-256, model_final-3fa2c1d0: two trained models do not
overwrite each other's pictures) and their clip or video (its file name);
each flow GIF has its own legend, VIDEO_flow_wheel.png.
"""

import argparse
import os
import sys

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)

from chainercv_i3d.flow import flow_backend_names
from chainercv_i3d.flow import get_flow_backend
from chainercv_i3d.flow import video_flow
from chainercv_i3d.links import I3D
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.pretrained.models import DEFAULT_MODEL
from chainercv_i3d.utils.cli import add_device_argument
from chainercv_i3d.utils.cli import output_dir
from chainercv_i3d.utils.cli import positive_int
from chainercv_i3d.utils.device import select_device
from chainercv_i3d.utils.progress import progress_bar
from chainercv_i3d.visualization import activation_frames
from chainercv_i3d.visualization import check_layer
from chainercv_i3d.visualization import clip_pictures
from chainercv_i3d.visualization import layer_activations
from chainercv_i3d.visualization import model_label
from chainercv_i3d.visualization import read_clip
from chainercv_i3d.visualization import read_frames
from chainercv_i3d.visualization import write_activation_pictures
from chainercv_i3d.visualization import write_filter_pictures
from chainercv_i3d.visualization import write_flow_pictures
from chainercv_i3d.visualization.activations import DEFAULT_CHANNELS
from chainercv_i3d.visualization.activations import DEFAULT_TILE_SIZE
from chainercv_i3d.visualization.filters import FILTER_LAYER
from chainercv_i3d.visualization.filters import FILTER_SCALE
from chainercv_i3d.visualization.flow_video import frame_duration_ms

PROG = 'visualize'
# Errors a user can act on: one line, no traceback.
USER_ERRORS = (ValueError, OSError, ImportError, RuntimeError)


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError('must be positive, not ' + text)
    return value


def add_common_arguments(parser):
    parser.add_argument('--out', required=True, type=output_dir,
                        help='output folder (created if missing)')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar')


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    commands = parser.add_subparsers(dest='command', required=True)
    model_help = 'pretrained model name or .npz (default {})'.format(
        DEFAULT_MODEL)

    filters = commands.add_parser(
        'filters', help='the filters of {}'.format(FILTER_LAYER))
    filters.add_argument('--model', default=DEFAULT_MODEL, help=model_help)
    filters.add_argument('--scale', type=positive_int, default=FILTER_SCALE,
                         help='screen pixels per filter pixel (default '
                         '%(default)s)')
    add_common_arguments(filters)

    activations = commands.add_parser(
        'activations', help="a layer's activations on a clip")
    activations.add_argument('clip', help='video file, precomputed video '
                             '.zip, sample .npy or .gif')
    activations.add_argument('--model', default=DEFAULT_MODEL,
                             help=model_help)
    activations.add_argument('--layer', default=FILTER_LAYER,
                             help='layer to show (default %(default)s)')
    activations.add_argument('--channels', type=positive_int,
                             default=DEFAULT_CHANNELS, help='show the first '
                             'N channels (default %(default)s)')
    activations.add_argument('--tile_size', type=positive_int,
                             default=DEFAULT_TILE_SIZE, help='height of a '
                             'channel in pixels (default %(default)s)')
    add_max_frames_argument(activations)
    add_flow_backend_argument(activations, ' (flow models on video files)')
    add_device_argument(activations)
    add_common_arguments(activations)

    flow = commands.add_parser('flow', help="a video's optical flow")
    flow.add_argument('video', help='video file')
    add_flow_backend_argument(flow, '')
    add_max_frames_argument(flow)
    flow.add_argument('--max_magnitude', type=positive_float,
                      help='flow (pixels per frame) shown at full '
                      'brightness (default: the 99th percentile)')
    add_common_arguments(flow)
    return parser.parse_args(argv)


def add_max_frames_argument(parser):
    parser.add_argument('--max_frames', type=positive_int,
                        help='use only the first N frames (default all)')


def add_flow_backend_argument(parser, what):
    parser.add_argument('--flow_backend', default='tvl1',
                        help='optical-flow backend{}: {} (default '
                        '%(default)s)'.format(
                            what, ', '.join(flow_backend_names())))


def file_label(path):
    """The file name of ``path`` without its extension."""
    return os.path.splitext(os.path.basename(str(path).rstrip('/\\')))[0]


def progress_for(args):
    """A bar factory for the library: ``progress(total, unit)``."""
    return lambda total, unit: progress_bar(total, quiet=args.quiet,
                                            unit=unit)


def run_filters(args):
    model = I3D(pretrained_model=args.model)
    return write_filter_pictures(model, args.out, model_label(args.model),
                                 args.scale)


def run_activations(args):
    device = select_device(args.device)
    model = I3D(pretrained_model=args.model)
    check_layer(model, args.layer)
    get_flow_backend(args.flow_backend)  # a bad name fails before the work
    model.to_device(device)
    clip = read_clip(args.clip, model.modality, model.preset,
                     args.flow_backend, args.max_frames, progress_for(args))
    activations = layer_activations(model, clip, args.layer, device)
    print('{}: clip {} ({} frames of {}x{}) -> {} {}'.format(
        PROG, args.clip, clip.shape[1], clip.shape[2], clip.shape[3],
        args.layer, 'x'.join(map(str, activations.shape))))
    frames = activation_frames(
        clip_pictures(clip, model.modality, model.preset), activations,
        args.channels, args.tile_size, progress_for(args))
    label = '{}_{}_{}'.format(model_label(args.model), args.layer,
                              file_label(args.clip))
    return write_activation_pictures(frames, clip.shape[1], args.out, label)


def run_flow(args):
    backend = get_flow_backend(args.flow_backend)
    frames = read_frames(args.video, DEEPMIND_KINETICS, args.max_frames)
    if len(frames) < 2:
        raise ValueError('{}: {} frame(s) at {} fps; flow needs at least '
                         '2'.format(args.video, len(frames),
                                    DEEPMIND_KINETICS.fps))
    bar = progress_for(args)(len(frames) - 1, 'frame pair')
    try:
        flow = video_flow(frames, backend, bar)
    finally:
        bar.close()
    return write_flow_pictures(frames, flow, args.out,
                               file_label(args.video),
                               frame_duration_ms(DEEPMIND_KINETICS),
                               args.max_magnitude)


COMMANDS = {'filters': run_filters, 'activations': run_activations,
            'flow': run_flow}


def main(argv=None):
    args = parse_args(argv)
    try:
        paths = COMMANDS[args.command](args)
    except USER_ERRORS as e:
        sys.exit('{}: {}'.format(PROG, e))
    for path in paths:
        print('wrote {}'.format(path))


if __name__ == '__main__':
    main()
