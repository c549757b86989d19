"""Precomputes RGB frames and TV-L1 optical flow of a Kinetics folder.

    python examples/i3d/precompute_frames_flow.py VIDEO_DIR OUTPUT_DIR \\
        [--annotations CSV] [--no_compute_flow] [--num_preprocess_workers N]
    mpiexec -n K python examples/i3d/precompute_frames_flow.py ...

VIDEO_DIR is the official layout (with --annotations) or a folder per class.
Each rank takes a disjoint share of the videos and runs N worker processes.
Killed and started again, it redoes only unfinished videos. Exit status: 0
when every video is done, 3 when some failed (see OUTPUT_DIR/manifest.json),
1 on a fatal error (output not writable, disk full).
"""

import argparse
import sys

import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)

from chainercv_i3d.datasets import KineticsDataset
from chainercv_i3d.datasets.precompute import check_output_dir
from chainercv_i3d.datasets.precompute import ManifestShard
from chainercv_i3d.datasets.precompute import plan_share
from chainercv_i3d.datasets.precompute import PrecomputeConfig
from chainercv_i3d.datasets.precompute import PrecomputeFatalError
from chainercv_i3d.datasets.precompute import run_share
from chainercv_i3d.datasets.precompute import write_manifest
from chainercv_i3d.utils.mpi import get_comm
from chainercv_i3d.utils.mpi import sum_counts

EXIT_SOME_FAILED = 3


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('video_dir')
    parser.add_argument('output_dir')
    parser.add_argument('--annotations', help='official annotation CSV '
                        '(without it: one subfolder per class)')
    parser.add_argument('--split', help='with --annotations: only this '
                        'split (train, val, test)')
    parser.add_argument('--no_compute_flow', action='store_true')
    parser.add_argument('--num_preprocess_workers', type=int, default=1,
                        help='worker processes per rank (default 1)')
    parser.add_argument('--short_side', type=int, default=256)
    parser.add_argument('--fps', type=float, default=25.0)
    parser.add_argument('--jpeg_quality', type=int, default=95)
    parser.add_argument('--flow_backend', default='tvl1')
    parser.add_argument('--retry_failed', action='store_true',
                        help='redo videos an earlier run recorded as failed')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar (for logs)')
    args = parser.parse_args(argv)
    if args.num_preprocess_workers < 1:
        parser.error('--num_preprocess_workers must be at least 1')
    return args


def progress_bar(comm, plan, quiet):
    if comm.rank != 0 or quiet:
        return None
    from tqdm import tqdm
    total = len(plan['todo']) + plan['already_done'] + plan['failed_before']
    return tqdm(total=total, initial=total - len(plan['todo']),
                unit='video', desc='rank 0 of {}'.format(comm.size),
                dynamic_ncols=True)


def process_share(args, comm, dataset, config):
    plan = plan_share(dataset.entries, args.output_dir, comm.rank, comm.size,
                      args.retry_failed)
    counts = {'done': 0, 'failed': 0}
    bar = progress_bar(comm, plan, args.quiet)
    shard = ManifestShard(args.output_dir, comm.rank)

    def on_record(record):
        shard.append(record)
        counts[record['status']] += 1
        if bar is not None:
            bar.update()
            bar.set_postfix(failed=counts['failed'], refresh=False)
        if record['status'] == 'failed' and not args.quiet:
            message = 'failed: {} ({})'.format(record['video_id'],
                                               record['error'])
            (bar.write if bar is not None else print)(message,
                                                      file=sys.stderr)
    try:
        run_share(plan['todo'], args.output_dir, config,
                  args.num_preprocess_workers, on_record)
    finally:
        shard.close()
        if bar is not None:
            bar.close()
    counts['already_done'] = plan['already_done']
    counts['failed_before'] = plan['failed_before']
    return counts


def main(argv=None):
    args = parse_args(argv)
    comm = get_comm()
    config = PrecomputeConfig(
        fps=args.fps, short_side=args.short_side,
        compute_flow=not args.no_compute_flow,
        flow_backend=args.flow_backend, jpeg_quality=args.jpeg_quality)
    try:
        dataset = KineticsDataset(args.video_dir, args.annotations,
                                  args.split)
        if comm.rank == 0:
            check_output_dir(args.output_dir)
            print(dataset.summary(), file=sys.stderr)
        comm.barrier()
        counts = process_share(args, comm, dataset, config)
    except (ValueError, PrecomputeFatalError, OSError) as e:
        print('precompute_frames_flow: rank {}: {}'.format(comm.rank, e),
              file=sys.stderr)
        comm.abort(1)
        return 1
    totals = sum_counts(comm, counts)
    if comm.rank != 0:
        return 0
    write_manifest(args.output_dir, dataset.entries, dataset.missing)
    line = '{done} done, {failed} failed, {already_done} already done'.format(
        **totals)
    if totals['failed_before']:
        line += (', {} failed before and skipped (--retry_failed redoes '
                 'them)'.format(totals['failed_before']))
    if dataset.missing:
        line += ', {} listed but missing'.format(len(dataset.missing))
    print(line)
    return EXIT_SOME_FAILED if totals['failed'] or totals['failed_before'] \
        else 0


if __name__ == '__main__':
    sys.exit(main())
