"""Extracts I3D features, one .npy per video, from videos or precomputed data.

    python examples/i3d/extract_features.py INPUT OUTPUT_DIR \\
        [--rgb_model NAME_OR_NPZ] [--flow_model NAME_OR_NPZ] \\
        [--endpoint avgpool|mixed_5c|logits] [--clip_frames F --clip_stride S]
    mpiexec -n K python examples/i3d/extract_features.py ... --device gpu

INPUT is a video file, a folder of videos (searched recursively), or the
output of precompute_frames_flow.py (a folder with manifest.json, whose
stored frames and flow are used). OUTPUT_DIR/<video id>.npy is float32:

    whole video  avgpool (T', D)   mixed_5c (D, T'', 7, 7)   logits (n_class,)
    --clip_*     avgpool (n, D)    mixed_5c (n, D, t, 7, 7)  logits (n, n_class)

with T'' = ceil(T / 8), T' = T'' - 1, D = 1024 per stream (RGB then flow)
and n clips; the logits of two streams are summed. Each rank of mpiexec
takes every K-th video; existing files are kept, so a run started again
does only what is missing. Exit status 3 when some videos failed.
"""

import argparse
import os
import sys

import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)

from chainercv_i3d.evaluations.features import extract_share
from chainercv_i3d.evaluations.features import open_video_source
from chainercv_i3d.flow import flow_backend_names
from chainercv_i3d.links import I3DPredictor
from chainercv_i3d.links.fast import DTYPE_HELP
from chainercv_i3d.links.fast import DTYPES
from chainercv_i3d.links import min_input_size
from chainercv_i3d.links.i3d_predictor import ENDPOINTS
from chainercv_i3d.pretrained.models import DEFAULT_MODEL
from chainercv_i3d.utils.cli import abort_on_error
from chainercv_i3d.utils.cli import add_device_argument
from chainercv_i3d.utils.cli import EXIT_SOME_FAILED
from chainercv_i3d.utils.cli import get_comm_or_exit
from chainercv_i3d.utils.cli import non_negative_int
from chainercv_i3d.utils.cli import positive_int
from chainercv_i3d.utils.comm import rank_share
from chainercv_i3d.utils.comm import sum_counts
from chainercv_i3d.utils.device import select_device
from chainercv_i3d.utils.progress import progress_bar


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('input')
    parser.add_argument('output_dir')
    parser.add_argument('--rgb_model', help='model name or .npz (default {} '
                        'when no model is given)'.format(DEFAULT_MODEL))
    parser.add_argument('--flow_model')
    parser.add_argument('--endpoint', choices=ENDPOINTS, default='avgpool')
    parser.add_argument('--clip_frames', type=positive_int)
    parser.add_argument('--clip_stride', type=positive_int)
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
    if args.clip_stride and not args.clip_frames:
        parser.error('--clip_stride needs --clip_frames')
    min_frames = min_input_size()[0]
    if args.clip_frames and args.clip_frames < min_frames and \
            args.endpoint != 'mixed_5c':
        parser.error('--endpoint {} needs clips of at least {} frames'.format(
            args.endpoint, min_frames))
    return args


def extract(args, comm):
    device = select_device(args.device, comm)
    predictor = I3DPredictor(args.rgb_model, args.flow_model,
                             flow_backend=args.flow_backend, device=device,
                             dtype=args.dtype)
    dataset = open_video_source(args.input, predictor.preset,
                                predictor.flow_backend)
    os.makedirs(args.output_dir, exist_ok=True)
    indices = rank_share(sorted(range(len(dataset)), key=dataset.video_id),
                         comm.rank, comm.size)
    bar = progress_bar(len(indices), comm, args.quiet)

    def report(video_id, message):
        bar.write('extract_features: skipped {}: {}'.format(
            video_id, message), file=sys.stderr)

    counts = extract_share(
        dataset, indices, predictor, args.output_dir, args.endpoint,
        args.clip_frames, args.clip_stride, args.num_preprocess_workers,
        on_video=bar.update, on_error=report)
    bar.close()
    return counts


def main(argv=None):
    args = parse_args(argv)
    comm = get_comm_or_exit('extract_features')
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
