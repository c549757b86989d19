"""Top-1/top-5 accuracy of I3D streams on precomputed Kinetics, on MPI ranks.

    mpiexec -n 64 python examples/i3d/eval_kinetics.py PRECOMPUTED_DIR \\
        --rgb_model_checkpoint rgb_imagenet_kinetics400 \\
        --flow_model_checkpoint flow_imagenet_kinetics400 --out results.json

PRECOMPUTED_DIR is the output of precompute_frames_flow.py: a folder, the
same as a zip archive, or a pfio URL (s3://...). One process per GPU
(``--device gpu`` uses the GPU of the rank's node-local index) or CPU.
"""

import argparse
import json
import os
import sys

import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)
import chainer
import numpy

from chainercv_i3d.datasets import PrecomputedKineticsDataset
from chainercv_i3d.evaluations import evaluate_share
from chainercv_i3d.evaluations import EvalProtocol
from chainercv_i3d.evaluations import summarize
from chainercv_i3d.evaluations.kinetics_evaluation import TWO_STREAM
from chainercv_i3d.links import I3D
from chainercv_i3d.modality import STREAMS
from chainercv_i3d.utils.mpi import abort_all_ranks
from chainercv_i3d.utils.mpi import create_chainermn_communicator
from chainercv_i3d.utils.mpi import rank_share


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('precomputed_dir')
    parser.add_argument('--rgb_model_checkpoint', help='.npz or model name')
    parser.add_argument('--flow_model_checkpoint', help='.npz or model name')
    parser.add_argument('--batch_size', type=int, default=1)
    parser.add_argument('--num_preprocess_workers', type=int, default=2,
                        help='loader processes per rank (0: none)')
    parser.add_argument('--device', choices=('auto', 'cpu', 'gpu'),
                        default='auto', help='auto: the GPU of the rank '
                        'when CuPy sees one, else the CPU')
    parser.add_argument('--n_frame', type=int, default=251,
                        help='frames per clip, from the start (default 251)')
    parser.add_argument('--all_frames', action='store_true',
                        help='evaluate every frame of each video')
    parser.add_argument('--crop_size', type=int, default=224)
    parser.add_argument('--use_chainerio', '--use_pfio', dest='use_pfio',
                        action='store_true', help='read through pfio (URLs '
                        'and .zip archives always are)')
    parser.add_argument('--strict', action='store_true',
                        help='a missing or unreadable video is fatal')
    parser.add_argument('--out', help='write the results as JSON here, the '
                        'per-video top-5 (.predictions.jsonl) and logits '
                        '(.logits.npz) beside it')
    parser.add_argument('--quiet', action='store_true')
    args = parser.parse_args(argv)
    if not (args.rgb_model_checkpoint or args.flow_model_checkpoint):
        parser.error('give --rgb_model_checkpoint and/or '
                     '--flow_model_checkpoint')
    if args.batch_size < 1:
        parser.error('--batch_size must be at least 1')
    if args.out and not os.path.isdir(os.path.dirname(
            os.path.abspath(args.out))):
        parser.error('--out: folder {} does not exist'.format(
            os.path.dirname(os.path.abspath(args.out))))
    return args


def choose_device(name, comm):
    if name == 'cpu':
        return None
    try:
        import cupy
        n_gpus = cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no CuPy, no driver, no GPU
        n_gpus = 0
    if n_gpus == 0:
        if name == 'gpu':
            raise ValueError('--device gpu: CuPy sees no GPU on this node')
        return None
    device = chainer.get_device('@cupy:{}'.format(comm.intra_rank % n_gpus))
    device.use()
    return device


def load_models(args, device):
    """Loads the models before any video is read; refuses mismatches."""
    models = {}
    for stream in STREAMS:
        checkpoint = getattr(args, stream + '_model_checkpoint')
        if checkpoint:
            models[stream] = I3D(modality=stream,
                                 pretrained_model=checkpoint)
    n_classes = {m.n_class for m in models.values()}
    if len(n_classes) > 1:
        raise ValueError('the RGB model has {} classes, the flow model {}: '
                         'two streams must share their classes'.format(
                             models['rgb'].n_class, models['flow'].n_class))
    if device is not None:
        for model in models.values():
            model.to_device(device)
    return models


def load_dataset(args, n_class):
    dataset = PrecomputedKineticsDataset(
        args.precomputed_dir, n_frame=None if args.all_frames
        else args.n_frame, use_pfio=args.use_pfio)
    if len(dataset) == 0:
        raise ValueError('{} holds no precomputed video'.format(
            args.precomputed_dir))
    too_large = [r for r in dataset.records if r['label'] >= n_class]
    if too_large:
        raise ValueError('video {} has label {}, the model only {} classes '
                         '(a Kinetics-600 set with a 400-class model?)'.format(
                             too_large[0]['video_id'], too_large[0]['label'],
                             n_class))
    return dataset


def progress(comm, total, quiet):
    if comm.rank != 0 or quiet:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit='video', dynamic_ncols=True,
                desc='rank 0 of {}'.format(comm.size))


def evaluate(args, comm):
    device = choose_device(args.device, comm)
    models = load_models(args, device)
    n_class = next(iter(models.values())).n_class
    dataset = load_dataset(args, n_class)
    protocol = EvalProtocol(None if args.all_frames else args.n_frame,
                            args.crop_size)
    indices = rank_share(range(len(dataset)), comm.rank, comm.size)
    bar = progress(comm, len(indices), args.quiet)
    results = evaluate_share(
        dataset, indices, models, protocol, args.batch_size,
        args.num_preprocess_workers, device,
        on_video=bar.update if bar is not None else None)
    if bar is not None:
        bar.close()
    failed = [r for r in results if 'error' in r]
    if failed and args.strict:
        raise ValueError('{}: {} (--strict)'.format(failed[0]['video_id'],
                                                    failed[0]['error']))
    for record in failed:
        print('eval_kinetics: unreadable, not counted: {} ({})'.format(
            record['video_id'], record['error']), file=sys.stderr)
    gathered = comm.gather_obj(results)
    if comm.rank != 0:
        return None
    everything = [r for rank_results in gathered for r in rank_results]
    return summarize(everything, dataset.n_not_done), everything


def format_table(summary):
    lines = ['videos evaluated: {}   unreadable: {}   missing: {}'.format(
        summary['n_evaluated'], summary['n_unreadable'],
        summary['n_missing']),
        '{:<12} {:>8} {:>8} {:>20}'.format('stream', 'top-1', 'top-5',
                                           'mean class accuracy')]
    for stream in STREAMS + (TWO_STREAM,):
        if stream in summary:
            m = summary[stream]
            lines.append('{:<12} {:>8.4f} {:>8.4f} {:>20.4f}'.format(
                stream, m['top1'], m['top5'], m['mean_class_accuracy']))
    return '\n'.join(lines)


def top5(logits):
    return sorted(range(len(logits)), key=lambda c: (-logits[c], c))[:5]


def save_logits(path, results):
    # For programs: every evaluated video's logits per stream, by id.
    ok = sorted((r for r in results if 'logits' in r),
                key=lambda r: r['video_id'])
    arrays = {'video_id': numpy.array([r['video_id'] for r in ok]),
              'label': numpy.array([r['label'] for r in ok], numpy.int32)}
    for stream in STREAMS:
        if ok and stream in ok[0]['logits']:
            arrays[stream] = numpy.array(
                [r['logits'][stream] for r in ok], numpy.float32)
    numpy.savez(path, **arrays)


def write_outputs(out, summary, results, args):
    summary = dict(summary, precomputed_dir=args.precomputed_dir,
                   rgb_model_checkpoint=args.rgb_model_checkpoint,
                   flow_model_checkpoint=args.flow_model_checkpoint,
                   n_frame=None if args.all_frames else args.n_frame,
                   crop_size=args.crop_size)
    with open(out, 'w') as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    save_logits(os.path.splitext(out)[0] + '.logits.npz', results)
    with open(os.path.splitext(out)[0] + '.predictions.jsonl', 'w') as f:
        for r in sorted(results, key=lambda r: r['video_id']):
            line = {'video_id': r['video_id'], 'label': r['label']}
            if 'error' in r:
                line['error'] = r['error']
            else:
                line.update({s + '_top5': top5(v)
                             for s, v in r['logits'].items()})
                if len(r['logits']) == 2:
                    line[TWO_STREAM + '_top5'] = top5(
                        [a + b for a, b in zip(r['logits']['rgb'],
                                               r['logits']['flow'])])
            f.write(json.dumps(line, sort_keys=True) + '\n')


def main(argv=None):
    args = parse_args(argv)
    try:
        comm = create_chainermn_communicator()
    except ImportError as e:
        sys.exit('eval_kinetics: {}'.format(e))
    try:
        outcome = evaluate(args, comm)
        if outcome is not None:
            summary, results = outcome
            print(format_table(summary))
            if args.out:
                write_outputs(args.out, summary, results, args)
    except Exception as e:  # any rank's failure must end every rank
        print('eval_kinetics: rank {}: {}'.format(comm.rank, e),
              file=sys.stderr)
        abort_all_ranks(comm, 1)


if __name__ == '__main__':
    main()
