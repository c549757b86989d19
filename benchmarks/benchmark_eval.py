"""Evaluation throughput on 1 and 2 MPI ranks, one line per case.

    python benchmarks/benchmark_eval.py [--videos 8] [--n_frame 64] [--ranks 1,2]

Builds a small precomputed set (RGB only: TV-L1 flow costs minutes per
video, measured by benchmark_precompute.py) from synthetic 256x340 videos
with the precompute script, then for each rank count runs this script under
``mpiexec -n K``; every rank evaluates its share with a random-weight RGB
I3D (224x224 center crops of ``--n_frame`` frames) and rank 0 prints:

    ranks=K videos=N n_frame=T batch=B videos/s=... load=..% compute=..%

``load`` is the share of the ranks' time spent waiting for clips from the
loader processes, ``compute`` the forward passes (summed over ranks).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)
import numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--videos', type=int, default=8)
    parser.add_argument('--n_frame', type=int, default=64)
    parser.add_argument('--batch_size', type=int, default=1)
    parser.add_argument('--workers', type=int, default=1,
                        help='loader processes per rank')
    parser.add_argument('--ranks', default='1,2')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--one-run', dest='one_run', help=argparse.SUPPRESS)
    return parser.parse_args()


def make_precomputed(tmp, n_videos, n_frame):
    import cv2
    rng = numpy.random.RandomState(0)
    for i in range(n_videos):
        path = os.path.join(tmp, 'videos', 'abseiling', 'v{}.avi'.format(i))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 25.0,
                                 (340, 256))
        for _ in range(n_frame):
            writer.write(rng.randint(0, 256, (256, 340, 3), numpy.uint8))
        writer.release()
    out = os.path.join(tmp, 'precomputed')
    subprocess.run([sys.executable, os.path.join(
        ROOT, 'examples', 'i3d', 'precompute_frames_flow.py'),
        os.path.join(tmp, 'videos'), out, '--no_compute_flow', '--quiet'],
        check=True, capture_output=True)
    return out


def one_run(args):
    """Runs inside mpiexec: evaluates this rank's share, rank 0 reports."""
    from chainercv_i3d.datasets import PrecomputedVideoDataset
    from chainercv_i3d.evaluations import evaluate_share
    from chainercv_i3d.evaluations import EvalProtocol
    from chainercv_i3d.links import I3D
    from chainercv_i3d.utils.comm import get_comm
    from chainercv_i3d.utils.comm import rank_share
    from chainercv_i3d.utils.device import select_device
    comm = get_comm()
    device = select_device(args.device, comm)
    numpy.random.seed(0)
    model = I3D(n_class=400, modality='rgb')
    model.to_device(device)
    protocol = EvalProtocol.multi_view(num_clips=1, n_frame=args.n_frame)
    dataset = PrecomputedVideoDataset(args.one_run, protocol.sampler)
    timings = {}
    comm.barrier()
    start = time.perf_counter()
    evaluate_share(dataset, rank_share(range(len(dataset)), comm.rank,
                                       comm.size),
                   {'rgb': model}, protocol, args.batch_size, args.workers,
                   device, timings=timings)
    comm.barrier()
    seconds = time.perf_counter() - start
    all_timings = comm.gather(timings)
    if comm.rank == 0:
        load = sum(t['load_s'] for t in all_timings)
        compute = sum(t['compute_s'] for t in all_timings)
        print('ranks={} videos={} n_frame={} batch={} videos/s={:.3f} '
              'load={:.0f}% compute={:.0f}%'.format(
                  comm.size, len(dataset), args.n_frame, args.batch_size,
                  len(dataset) / seconds, 100 * load / (load + compute),
                  100 * compute / (load + compute)), flush=True)


def main():
    args = parse_args()
    if args.one_run:
        one_run(args)
        return
    launcher = shutil.which('mpiexec', path=os.path.dirname(sys.executable)) \
        or shutil.which('mpiexec')
    if launcher is None:
        sys.exit('benchmark_eval.py: mpiexec not found (pip install '
                 '"chainercv_i3d[mpi]")')
    with tempfile.TemporaryDirectory() as tmp:
        precomputed = make_precomputed(tmp, args.videos, args.n_frame)
        for ranks in args.ranks.split(','):
            # BLAS threads per rank: the cores shared out, not oversubscribed.
            threads = str(max(1, os.cpu_count() // int(ranks)))
            env = dict(os.environ, OMP_NUM_THREADS=threads,
                       OPENBLAS_NUM_THREADS=threads)
            print('mpiexec -n {} (BLAS threads per rank: {})'.format(
                ranks, threads), flush=True)
            subprocess.run([launcher, '-n', ranks, sys.executable,
                            os.path.abspath(__file__), '--one-run',
                            precomputed, '--n_frame', str(args.n_frame),
                            '--batch_size', str(args.batch_size),
                            '--workers', str(args.workers),
                            '--device', args.device], check=True, env=env)


if __name__ == '__main__':
    main()
