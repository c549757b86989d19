"""Top-1/top-5 accuracy of I3D streams on precomputed videos, on MPI ranks.

    mpiexec -n 64 python examples/i3d/eval_kinetics.py PRECOMPUTED_DIR \\
        --rgb_model_checkpoint rgb_imagenet_kinetics400 \\
        --flow_model_checkpoint flow_imagenet_kinetics400 --out results.json
    ... --num_clips 10 --num_crops 3 --n_frame 64      # multi-view testing

PRECOMPUTED_DIR is the output of precompute_frames_flow.py (any dataset it
reads): a folder, the same as a zip archive, or a pfio URL (s3://...). The
default protocol is the models' preset's (DeepMind's: the first 251 frames,
one 224 center crop). With --num_clips K, K clips of --n_frame frames spread
evenly over each video (the first at its start, the last at its end) times
--num_crops 1 or 3 crops; a video scores the mean of its views' logits per
stream, two streams the sum of both. One process per GPU (--device gpu) or
CPU; results are the same for any number of ranks and any batch size.
A multi-label set (Charades) is scored by mAP over classes instead of
top-k, with each class's AP in the JSON (see evaluations/multilabel.py).

With --out, each finished batch of videos is saved at once in OUT.parts/:
a stopped run (Ctrl-C, a killed rank, a lost node) continues where it
stopped when the same command is run again, with any number of ranks, and
writes the same results; other settings are refused, naming what differs
(--restart starts over). The folder is removed once OUT is written; OUT
records the settings, so a rerun of a finished evaluation prints its table
and writes nothing, and one of other settings is refused (--restart
overwrites it). Without --out nothing is saved: a stopped run starts over.
"""

import argparse
import os
import signal
import sys
import time

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)

from chainercv_i3d.datasets import check_model_inputs
from chainercv_i3d.datasets import PrecomputedVideoDataset
from chainercv_i3d.evaluations import check_labels
from chainercv_i3d.evaluations import evaluate_ranks
from chainercv_i3d.evaluations import EvalProtocol
from chainercv_i3d.evaluations import evaluation_settings
from chainercv_i3d.evaluations import finished_summary
from chainercv_i3d.evaluations import format_table
from chainercv_i3d.evaluations import parts_dir
from chainercv_i3d.evaluations import preset_differences
from chainercv_i3d.evaluations import SavedResults
from chainercv_i3d.evaluations import summarize
from chainercv_i3d.evaluations import write_results
from chainercv_i3d.files import check_output_dir
from chainercv_i3d.files import OutputPathError
from chainercv_i3d.links import load_streams
from chainercv_i3d.links.fast import DTYPE_HELP
from chainercv_i3d.links.fast import DTYPES
from chainercv_i3d.utils.cli import abort_on_error
from chainercv_i3d.utils.cli import add_device_argument
from chainercv_i3d.utils.cli import output_file
from chainercv_i3d.utils.cli import get_comm_or_exit
from chainercv_i3d.utils.cli import non_negative_int
from chainercv_i3d.utils.cli import positive_int
from chainercv_i3d.utils.device import select_device
from chainercv_i3d.utils.interrupts import stop_on_interrupt


def parse_args(argv, prog='eval_kinetics'):
    parser = argparse.ArgumentParser(prog=prog + '.py',
                                     description=__doc__.splitlines()[0])
    # Messages start with the name the script was run under (evaluate.py).
    parser.set_defaults(prog=prog)
    parser.add_argument('precomputed_dir')
    parser.add_argument('--rgb_model_checkpoint', help='.npz or model name')
    parser.add_argument('--flow_model_checkpoint', help='.npz or model name')
    parser.add_argument('--batch_size', type=positive_int, default=1,
                        help='views per forward pass (speed only)')
    parser.add_argument('--num_preprocess_workers', type=non_negative_int,
                        default=2, help='loader processes per rank (0: none)')
    add_device_argument(parser)
    parser.add_argument('--dtype', choices=DTYPES, default='float32',
                        help=DTYPE_HELP)
    parser.add_argument('--num_clips', type=positive_int, default=1,
                        help='clips per video, spread evenly (default 1)')
    parser.add_argument('--num_crops', type=int, choices=(1, 3), default=1,
                        help='crops per clip: center, or 3 along the long '
                        'side')
    parser.add_argument('--n_frame', type=positive_int,
                        help="frames per clip (default the preset's: 251)")
    parser.add_argument('--all_frames', action='store_true',
                        help='evaluate every frame of each video')
    parser.add_argument('--crop_size', type=positive_int,
                        help="crop side (default the preset's: 224)")
    parser.add_argument('--use_chainerio', '--use_pfio', dest='use_pfio',
                        action='store_true', help='read through pfio (URLs '
                        'and .zip archives always are)')
    parser.add_argument('--strict', action='store_true',
                        help='a missing or unreadable video is fatal')
    parser.add_argument('--out', type=output_file,
                        help='write the results as JSON here, the per-video '
                        'top-5 (.predictions.jsonl) and logits (.logits.npz) '
                        'beside it')
    parser.add_argument('--restart', action='store_true',
                        help='discard the saved part of an earlier run of '
                        '--out (OUT.parts/) and start over')
    parser.add_argument('--quiet', action='store_true')
    args = parser.parse_args(argv)
    if args.out:
        try:
            check_output_dir(parts_dir(args.out))
        except OutputPathError as e:
            parser.error('argument --out: ' + str(e))
    if args.restart and not args.out:
        parser.error('--restart discards what an earlier run of --out '
                     'saved: give --out')
    if not (args.rgb_model_checkpoint or args.flow_model_checkpoint):
        parser.error('give --rgb_model_checkpoint and/or '
                     '--flow_model_checkpoint')
    if args.all_frames and (args.n_frame or args.num_clips > 1):
        parser.error('--all_frames takes whole videos: no --n_frame or '
                     '--num_clips')
    return args


# A test hook: "RANK:N" makes rank RANK kill itself (SIGKILL, as the
# system would) once it has saved N batches, to test that a rerun resumes.
KILL_HOOK_VARIABLE = 'CHAINERCV_I3D_TEST_KILL_AFTER'


def evaluate(args, comm):
    started = time.time()
    device = select_device(args.device, comm)
    checkpoints = {'rgb': args.rgb_model_checkpoint,
                   'flow': args.flow_model_checkpoint}
    models = load_streams(checkpoints['rgb'], checkpoints['flow'], device)
    for stream_model in models.values():
        stream_model.fast.dtype = args.dtype
    model = next(iter(models.values()))
    protocol = EvalProtocol.multi_view(
        args.num_clips, args.n_frame, args.num_crops, model.preset,
        args.crop_size, args.all_frames)
    dataset = PrecomputedVideoDataset(args.precomputed_dir, protocol.sampler,
                                      use_pfio=args.use_pfio)
    check_labels(dataset, model.n_class, model.label_names)
    check_model_inputs(dataset, models, protocol.transform.crop_size)
    if dataset.n_not_done and args.strict:
        raise ValueError('{} listed video(s) were not precomputed (missing '
                         'or failed; see its manifest.json) (--strict)'.format(
                             dataset.n_not_done))
    if comm.rank == 0:
        for line in preset_differences(dataset.preset, model.preset):
            print(args.prog + ': warning: ' + line, file=sys.stderr)
    settings = evaluation_settings(protocol, checkpoints, args.dtype,
                                   dataset)
    saved = done = None
    earlier_s = 0.0
    on_batch = None
    if args.out:
        saved = SavedResults(parts_dir(args.out))
        finished = None
        if comm.rank == 0 and not args.restart:
            finished = finished_summary(args.out, settings)
        if comm.bcast(finished is not None):
            # results None: finished before, nothing to do or write.
            return (finished, None, None, saved) if comm.rank == 0 else None
        if comm.rank == 0:
            saved.claim(settings, args.restart)
            done, earlier_s = saved.load()
        done_ids = comm.bcast({r['video_id'] for r in done or ()})
        run = comm.bcast(repr(started))
        on_batch = batch_saver(saved, dataset, run, started, comm.rank)
    else:
        done_ids = set()
    evaluated = evaluate_ranks(
        dataset, models, protocol, comm, args.batch_size,
        args.num_preprocess_workers, device, args.quiet, done_ids, on_batch)
    if comm.rank != 0:
        return None
    everything = (done or []) + evaluated
    failed = [r for r in everything if 'error' in r]
    if failed and args.strict:
        raise ValueError('{}: {} (--strict)'.format(failed[0]['video_id'],
                                                    failed[0]['error']))
    for record in failed:
        print('{}: unreadable, not counted: {} ({})'.format(
            args.prog, record['video_id'], record['error']), file=sys.stderr)
    summary = summarize(everything, dataset.n_not_done, model.label_names)
    summary.update(protocol=protocol.describe(),
                   precomputed_dir=args.precomputed_dir,
                   rgb_model_checkpoint=args.rgb_model_checkpoint,
                   flow_model_checkpoint=args.flow_model_checkpoint,
                   dtype=args.dtype, settings=settings,
                   elapsed_time=round(earlier_s + time.time() - started, 2))
    return summary, everything, model.label_names, saved


def batch_saver(saved, dataset, run, started, rank):
    """on_batch for evaluate_ranks: saves each finished batch at once."""
    kill_after = os.environ.get(KILL_HOOK_VARIABLE, '').split(':')
    n_saved = [0]

    def save(batch, results):
        saved.save(min(batch), results, run, time.time() - started)
        n_saved[0] += 1
        if kill_after == [str(rank), str(n_saved[0])]:
            os.kill(os.getpid(), signal.SIGKILL)
    return save


def count_saved_videos(out):
    """Videos whose results a stopped run keeps (in OUT.parts/)."""
    if not out:
        return 0
    return len(SavedResults(parts_dir(out)).load()[0])


def main(argv=None, prog='eval_kinetics'):
    args = parse_args(argv, prog)
    comm = get_comm_or_exit(prog)
    with stop_on_interrupt(prog, comm,
                           lambda: count_saved_videos(args.out)):
        try:
            outcome = evaluate(args, comm)
            if outcome is not None:
                summary, results, label_names, saved = outcome
                if results is None:
                    print('{}: {} holds this evaluation already (the '
                          'same settings): its table follows; add --restart '
                          'to evaluate again'.format(prog, args.out),
                          file=sys.stderr)
                elif args.out:
                    write_results(args.out, summary, results, label_names)
                print(format_table(summary))
                if saved is not None:
                    saved.remove()  # OUT holds all of it now
        except Exception as e:  # any rank's failure must end every rank
            abort_on_error(prog, comm, e)


if __name__ == '__main__':
    main()
