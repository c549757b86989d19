"""Extracts I3D features, one .npy per video, from videos or precomputed data.

    python examples/i3d/extract_features.py INPUT OUTPUT_DIR \\
        [--rgb_model NAME_OR_NPZ] [--flow_model NAME_OR_NPZ] \\
        [--endpoint avgpool|mixed_5c|logits] [--clip_frames F --clip_stride S]
    mpiexec -n K python examples/i3d/extract_features.py ...

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
import numpy

from chainercv_i3d.datasets.kinetics import index_video_files
from chainercv_i3d.links.i3d_predictor import ENDPOINTS
from chainercv_i3d.links import min_input_size
from chainercv_i3d.links.i3d_predictor import I3DPredictor
from chainercv_i3d.files import atomic_path
from chainercv_i3d.utils.mpi import get_comm
from chainercv_i3d.utils.mpi import rank_share
from chainercv_i3d.utils.mpi import sum_counts

EXIT_SOME_FAILED = 3


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('input')
    parser.add_argument('output_dir')
    parser.add_argument('--rgb_model', help='model name or .npz (default '
                        'rgb_tfhub_kinetics400 when no model is given)')
    parser.add_argument('--flow_model')
    parser.add_argument('--endpoint', choices=ENDPOINTS, default='avgpool')
    parser.add_argument('--clip_frames', type=int)
    parser.add_argument('--clip_stride', type=int)
    parser.add_argument('--device', default=None,
                        help="Chainer device, e.g. '@cupy:0' (default CPU)")
    parser.add_argument('--quiet', action='store_true')
    args = parser.parse_args(argv)
    if not args.rgb_model and not args.flow_model:
        args.rgb_model = 'rgb_tfhub_kinetics400'
    if args.clip_stride and not args.clip_frames:
        parser.error('--clip_stride needs --clip_frames')
    for name in ('clip_frames', 'clip_stride'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error('--{} must be at least 1'.format(name))
    min_frames = min_input_size()[0]
    if args.clip_frames and args.clip_frames < min_frames and \
            args.endpoint != 'mixed_5c':
        parser.error('--endpoint {} needs clips of at least {} frames'.format(
            args.endpoint, min_frames))
    return args


class VideoFiles(object):
    """Videos to read from files: a single file or a folder of them."""

    def __init__(self, path):
        if os.path.isfile(path):
            stem = os.path.splitext(os.path.basename(path))[0]
            self.sources = {stem: path}
        elif os.path.isdir(path):
            self.sources = {
                os.path.splitext(os.path.relpath(p, path))[0]: p
                for p in index_video_files(path).values()}
        else:
            raise ValueError('no such file or folder: {}'.format(path))
        if not self.sources:
            raise ValueError('{} holds no video file'.format(path))

    def ids(self):
        return sorted(self.sources)

    def inputs(self, predictor, video_id):
        return predictor.load(self.sources[video_id])


class PrecomputedVideos(object):
    """Videos from the precompute stage's output (all frames, 224 crops)."""

    def __init__(self, path):
        from chainercv_i3d.datasets import PrecomputedKineticsDataset
        self.dataset = PrecomputedKineticsDataset(path)
        self.index = {r['video_id']: i
                      for i, r in enumerate(self.dataset.records)}

    def ids(self):
        return sorted(self.index)

    def inputs(self, predictor, video_id):
        from chainercv_i3d.transforms import to_model_range
        clip = self.dataset.read_clip(self.index[video_id], predictor.streams)
        return {s: to_model_range(clip[s], s) for s in predictor.streams}


def open_input(path):
    if os.path.isfile(os.path.join(path, 'manifest.json')):
        return PrecomputedVideos(path)
    return VideoFiles(path)


def extract_share(args, comm, source, predictor):
    ids = rank_share(source.ids(), comm.rank, comm.size)
    counts = {'done': 0, 'failed': 0, 'already_done': 0}
    bar = None
    if comm.rank == 0 and not args.quiet:
        from tqdm import tqdm
        bar = tqdm(total=len(ids), unit='video', dynamic_ncols=True,
                   desc='rank 0 of {}'.format(comm.size))
    for video_id in ids:
        out = os.path.join(args.output_dir, video_id + '.npy')
        if os.path.exists(out):
            counts['already_done'] += 1
        else:
            try:
                features = predictor.features(
                    source.inputs(predictor, video_id), args.endpoint,
                    args.clip_frames, args.clip_stride)
            except (ValueError, OSError) as e:
                counts['failed'] += 1
                message = 'extract_features: skipped {}: {}'.format(
                    video_id, e)
                (bar.write if bar else print)(message, file=sys.stderr)
            else:
                # A video id may name a subfolder.
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with atomic_path(out) as tmp:
                    with open(tmp, 'wb') as f:
                        numpy.save(f, features.astype(numpy.float32))
                counts['done'] += 1
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return counts


def main(argv=None):
    args = parse_args(argv)
    comm = get_comm()
    try:
        source = open_input(args.input)
        predictor = I3DPredictor(args.rgb_model, args.flow_model,
                                 device=args.device)
        os.makedirs(args.output_dir, exist_ok=True)
        counts = extract_share(args, comm, source, predictor)
    except Exception as e:  # any rank's failure must end every rank
        print('extract_features: rank {}: {}'.format(comm.rank, e),
              file=sys.stderr)
        comm.abort(1)
        return 1
    totals = sum_counts(comm, counts)
    if comm.rank == 0:
        print('{done} done, {failed} failed, {already_done} already '
              'done'.format(**totals))
    return EXIT_SOME_FAILED if totals['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
