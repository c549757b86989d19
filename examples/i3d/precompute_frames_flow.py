"""Precomputes RGB frames and optical flow of a list of videos.

    python examples/i3d/precompute_frames_flow.py VIDEO_DIR OUTPUT_DIR \\
        [--dataset kinetics|folders|files|something_something_v2|ucf101|\\
                   hmdb51|charades] \\
        [--annotations CSV_OR_DIR] [--split SPLIT] [--subset train|test] \\
        [--fps FPS] \\
        [--short_side N] [--no_compute_flow] [--num_preprocess_workers N]
    mpiexec -n K python examples/i3d/precompute_frames_flow.py ...

VIDEO_DIR is read by the --dataset list reader: kinetics (the official
layout with --annotations, or a folder per Kinetics class), folders (a folder
per class, any names), files (videos searched recursively, unlabelled) or
something_something_v2 (VIDEO_DIR holds the <id>.webm files, --annotations
the folder of the release's JSON files, --split train, validation or test;
only that split is processed, the test split unlabelled), ucf101 or hmdb51
(--annotations the folder of the release's split files, --split 1, 2 or 3
and --subset train or test: that part of that split; see
chainercv_i3d.datasets.ucf_hmdb) or charades
(VIDEO_DIR holds the <id>.mp4 files, --annotations is Charades_v1_train.csv
or Charades_v1_test.csv with Charades_v1_classes.txt beside it; each video
keeps its set of labels and its actions' intervals: multi-label).
The preprocessing is the dataset's preset unless --fps or --short_side say
otherwise: DeepMind's for Kinetics and the others (25 fps, short side 256,
flow bound 20), each video's own rate for Something-Something V2 (12 fps;
resampling to 25 would duplicate frames, whose flow is zero) with short side
256, DeepMind's again for UCF101 and HMDB51 but evaluated on every frame.
It is stored with the output.
Each rank takes a disjoint share of the videos and runs N worker processes.
Killed and started again, it redoes only unfinished videos. Exit status: 0
when every video is done, 3 when some failed (see OUTPUT_DIR/manifest.json),
1 on a fatal error (output not writable, disk full, other settings).
"""

import argparse
import glob
import os
import sys

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)

from chainercv_i3d.datasets.precompute import make_preset
from chainercv_i3d.datasets.precompute import PrecomputeConfig
from chainercv_i3d.datasets.precompute import PrecomputeFatalError
from chainercv_i3d.datasets.precompute import ProgressReport
from chainercv_i3d.datasets.precompute import run_precompute
from chainercv_i3d.datasets.precompute import summary_line
from chainercv_i3d.datasets.ucf_hmdb import transfer_split
from chainercv_i3d.datasets.ucf_hmdb import TRANSFER_DATASETS
from chainercv_i3d.datasets.ucf_hmdb import TRANSFER_SUBSETS
from chainercv_i3d.datasets.video_list import read_video_list
from chainercv_i3d.datasets.video_list import video_list_names
from chainercv_i3d.flow import flow_backend_names
from chainercv_i3d.presets import dataset_preset
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.utils.cli import abort_on_error
from chainercv_i3d.utils.cli import add_device_argument
from chainercv_i3d.utils.cli import EXIT_SOME_FAILED
from chainercv_i3d.utils.cli import get_comm_or_exit
from chainercv_i3d.utils.cli import output_dir
from chainercv_i3d.utils.cli import positive_int
from chainercv_i3d.utils.cli import USER_ERRORS
from chainercv_i3d.utils.device import resolve_device_spec
from chainercv_i3d.utils.interrupts import stop_on_interrupt


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('video_dir')
    parser.add_argument('output_dir', type=output_dir)
    parser.add_argument('--dataset', choices=video_list_names(),
                        default='kinetics', help='list reader (default '
                        'kinetics)')
    parser.add_argument('--annotations', help='kinetics: the official '
                        'annotation CSV (without it: a folder per class); '
                        'something_something_v2: the folder of the JSON '
                        'files; charades: Charades_v1_train.csv or '
                        'Charades_v1_test.csv (Charades_v1_classes.txt '
                        'beside it)')
    parser.add_argument('--split', help='only this split: kinetics (with '
                        '--annotations): train, val, test; '
                        'something_something_v2 (required): train, '
                        'validation, test; ucf101, hmdb51 (required): 1, '
                        '2, 3')
    parser.add_argument('--subset', choices=TRANSFER_SUBSETS,
                        help='ucf101, hmdb51 (required): the train or test '
                        'videos of --split')
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
    try:
        args.list_split = list_split(args)
    except ValueError as e:
        parser.error(str(e))
    return args


def list_split(args):
    """The list reader's split: ucf101 and hmdb51 name it by --subset and
    --split (``'train1'``), the other readers take --split as it is."""
    if args.dataset not in TRANSFER_DATASETS:
        if args.subset is not None:
            raise ValueError('--subset is for {} only'.format(
                ' and '.join(TRANSFER_DATASETS)))
        return args.split
    if args.split not in ('1', '2', '3') or args.subset is None:
        raise ValueError('--dataset {} needs --split 1, 2 or 3 and --subset '
                         'train or test (not --split {})'.format(
                             args.dataset, args.split))
    return transfer_split(args.subset, int(args.split))


def preprocessing_preset(args):
    """The dataset's preset, with the --fps and --short_side given."""
    base = dataset_preset(args.dataset)
    fps = base.fps if args.fps is None else args.fps or None
    short_side = base.short_side if args.short_side is None \
        else args.short_side
    return make_preset(fps, short_side, base)


def missing_line(missing, n_shown=5):
    """One line naming the first videos listed but missing on disk."""
    more = len(missing) - n_shown
    return 'listed but missing: {}{} (all of them in the manifest)'.format(
        ', '.join(missing[:n_shown]),
        ' and {} more'.format(more) if more > 0 else '')


def check_videos_found(video_list, video_dir):
    """Refuses a list with no video to precompute."""
    if not video_list.records:
        raise ValueError('{}: no video found ({} listed but missing): '
                         'nothing to precompute'.format(
                             video_dir, len(video_list.missing)))


def classes_without_videos_warning(video_list, video_dir, shown=5):
    """One line naming the classes with no video (an empty class folder
    trains and evaluates its class on nothing), or None."""
    empty = video_list.classes_without_videos()
    if not empty:
        return None
    names = ', '.join(repr(n) for n in empty[:shown])
    return ('warning: {} of the {} classes have no video in {} ({}{}): they '
            'keep their labels; add their videos, or remove their folders '
            'if they are no classes'.format(
                len(empty), video_list.n_class, video_dir, names,
                ', ...' if len(empty) > shown else ''))


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
                                         args.annotations, args.list_split)
            check_videos_found(video_list, args.video_dir)
            if comm.rank == 0:
                print(video_list.summary(), file=sys.stderr)
                if video_list.missing:
                    print(missing_line(video_list.missing), file=sys.stderr)
                warning = classes_without_videos_warning(video_list,
                                                         args.video_dir)
                if warning:
                    print('precompute_frames_flow: ' + warning,
                          file=sys.stderr)
            totals = run_precompute(
                video_list, args.output_dir, config, comm,
                args.num_preprocess_workers, args.retry_failed,
                progress.on_plan, progress.on_record)
            progress.finish()
        except Exception as e:  # any rank's failure must end every rank
            progress.close()
            abort_on_error('precompute_frames_flow', comm, e,
                           USER_ERRORS + (PrecomputeFatalError,))
            return 1
        finally:
            progress.close()  # stopped: no wait for the other ranks
    if comm.rank != 0:
        return 0
    print(summary_line(totals, len(video_list.missing)))
    return EXIT_SOME_FAILED if totals['failed'] or totals['failed_before'] \
        else 0


if __name__ == '__main__':
    sys.exit(main())
