"""Precomputes RGB frames and optical flow of a list of videos.

    python examples/i3d/precompute_frames_flow.py VIDEO_DIR OUTPUT_DIR \\
        [--dataset kinetics|folders|files|something_something_v2] \\
        [--annotations CSV_OR_DIR] [--split SPLIT] [--fps FPS] \\
        [--short_side N] [--no_compute_flow] [--num_preprocess_workers N]
    mpiexec -n K python examples/i3d/precompute_frames_flow.py ...

VIDEO_DIR is read by the --dataset list reader: kinetics (the official
layout with --annotations, or a folder per Kinetics class), folders (a folder
per class, any names), files (videos searched recursively, unlabelled) or
something_something_v2 (VIDEO_DIR holds the <id>.webm files, --annotations
the folder of the release's JSON files, --split train, validation or test;
only that split is processed, the test split unlabelled).
The preprocessing is the dataset's preset unless --fps or --short_side say
otherwise: DeepMind's for Kinetics and the others (25 fps, short side 256,
flow bound 20), each video's own rate for Something-Something V2 (12 fps;
resampling to 25 would duplicate frames, whose flow is zero) with short side
256. It is stored with the output.
Each rank takes a disjoint share of the videos and runs N worker processes.
Killed and started again, it redoes only unfinished videos. Exit status: 0
when every video is done, 3 when some failed (see OUTPUT_DIR/manifest.json),
1 on a fatal error (output not writable, disk full, other settings).
"""

import argparse
import glob
import os
import sys

import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)

from chainercv_i3d.datasets.precompute import make_preset
from chainercv_i3d.datasets.precompute import PrecomputeConfig
from chainercv_i3d.datasets.precompute import PrecomputeFatalError
from chainercv_i3d.datasets.precompute import ProgressReport
from chainercv_i3d.datasets.precompute import run_precompute
from chainercv_i3d.datasets.precompute import summary_line
from chainercv_i3d.datasets.video_list import read_video_list
from chainercv_i3d.datasets.video_list import video_list_names
from chainercv_i3d.flow import flow_backend_names
from chainercv_i3d.presets import dataset_preset
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.utils.cli import abort_on_error
from chainercv_i3d.utils.cli import add_device_argument
from chainercv_i3d.utils.cli import EXIT_SOME_FAILED
from chainercv_i3d.utils.cli import get_comm_or_exit
from chainercv_i3d.utils.cli import positive_int
from chainercv_i3d.utils.cli import USER_ERRORS
from chainercv_i3d.utils.device import resolve_device_spec
from chainercv_i3d.utils.interrupts import stop_on_interrupt


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('video_dir')
    parser.add_argument('output_dir')
    parser.add_argument('--dataset', choices=video_list_names(),
                        default='kinetics', help='list reader (default '
                        'kinetics)')
    parser.add_argument('--annotations', help='kinetics: the official '
                        'annotation CSV (without it: a folder per class); '
                        'something_something_v2: the folder of the JSON '
                        'files')
    parser.add_argument('--split', help='only this split: kinetics (with '
                        '--annotations): train, val, test; '
                        'something_something_v2 (required): train, '
                        'validation, test')
    parser.add_argument('--fps', type=float, help='frame rate; 0 keeps '
                        'each video\'s own rate (default: the dataset\'s '
                        'preset: {:g}, or the own rate for '
                        'something_something_v2)'.format(
                            DEEPMIND_KINETICS.fps))
    parser.add_argument('--short_side', type=positive_int,
                        help='short side of the stored frames (default: '
                        'the dataset\'s preset: {})'.format(
                            DEEPMIND_KINETICS.short_side))
    parser.add_argument('--no_compute_flow', action='store_true')
    parser.add_argument('--flow_backend', choices=flow_backend_names(),
                        default='tvl1')
    add_device_argument(parser, default='cpu')
    parser.add_argument('--num_preprocess_workers', type=positive_int,
                        default=1, help='worker processes per rank')
    parser.add_argument('--jpeg_quality', type=int, default=95)
    parser.add_argument('--retry_failed', action='store_true',
                        help='redo videos an earlier run recorded as failed')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar (for logs)')
    args = parser.parse_args(argv)
    if args.fps is not None and args.fps < 0:
        parser.error('--fps must be positive, or 0 for the native rate')
    return args


def preprocessing_preset(args):
    """The dataset's preset, with the --fps and --short_side given."""
    base = dataset_preset(args.dataset)
    fps = base.fps if args.fps is None else args.fps or None
    short_side = base.short_side if args.short_side is None \
        else args.short_side
    return make_preset(fps, short_side, base)


def count_precomputed(output_dir):
    """Videos whose zip is written (an interrupted write leaves none)."""
    return len(glob.glob(os.path.join(glob.escape(output_dir), 'videos',
                                      '**', '*.zip'), recursive=True))


def main(argv=None):
    args = parse_args(argv)
    comm = get_comm_or_exit('precompute_frames_flow')
    progress = ProgressReport(comm, args.quiet)
    with stop_on_interrupt('precompute_frames_flow', comm,
                           lambda: count_precomputed(args.output_dir)):
        try:
            config = PrecomputeConfig(
                preprocessing_preset(args),
                compute_flow=not args.no_compute_flow,
                flow_backend=args.flow_backend,
                jpeg_quality=args.jpeg_quality,
                device=resolve_device_spec(args.device, comm))
            video_list = read_video_list(args.dataset, args.video_dir,
                                         args.annotations, args.split)
            if comm.rank == 0:
                print(video_list.summary(), file=sys.stderr)
            totals = run_precompute(
                video_list, args.output_dir, config, comm,
                args.num_preprocess_workers, args.retry_failed,
                progress.on_plan, progress.on_record)
        except Exception as e:  # any rank's failure must end every rank
            progress.close()
            abort_on_error('precompute_frames_flow', comm, e,
                           USER_ERRORS + (PrecomputeFatalError,))
            return 1
        finally:
            progress.close()
    if comm.rank != 0:
        return 0
    print(summary_line(totals, len(video_list.missing)))
    return EXIT_SOME_FAILED if totals['failed'] or totals['failed_before'] \
        else 0


if __name__ == '__main__':
    sys.exit(main())
