"""TV-L1 flow per backend and device: pairs/s, iterations, error to OpenCV.

    python benchmarks/benchmark_flow.py [--videos bikes,carphone_pristine]
        [--pairs 4] [--backends tvl1,tvl1_xp] [--gpu auto] [--json PATH]
        [--save_reference DIR | --load_reference DIR]

Cases: the first ``--pairs + 1`` frames of each video of ../shared/i3d/videos
at short side 256 (``--short_side``), centre-cropped to 256x340
(``--crop_width``), and whole (the video's real size at that short side;
``--no_full`` skips these unless the video is narrower than the crop).
Backends, in one run on the same frames:

* ``tvl1``: OpenCV contrib, one thread (the CPU default and the reference);
* ``tvl1_xp``: the batched array TV-L1 on numpy (all pairs of a case in one
  ``compute_video`` call);
* ``tvl1_xp@cupy:N``: the same on GPU N, when ``--gpu`` names one or
  (``auto``) CuPy sees one; a warm-up call runs first (kernel compilation).

Per case and backend: pairs/s, the inner iterations each pair ran (OpenCV's
early stop; 7,500 allowed) and the end-point error to OpenCV's flow (mean,
99th percentile, max, the share over 0.5 px, and the share of uint8 levels
that differ after DeepMind's quantization, bound 20). ``--save_reference
DIR`` writes each case's gray frames and OpenCV flow as .npy;
``--load_reference DIR`` reads them instead of decoding and running OpenCV
(for a GPU machine without opencv-contrib).
"""

import argparse
import json
import os
import sys
import time

import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)
import numpy

from chainercv_i3d.flow import get_flow_backend
from chainercv_i3d.flow import quantize_flow
from chainercv_i3d.utils.device import resolve_device_spec

SHARED_VIDEOS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             '..', '..', 'shared', 'i3d', 'videos')
DEFAULT_VIDEOS = 'bikes,bigbuckbunny,carphone_pristine'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--videos', default=DEFAULT_VIDEOS,
                        help='comma-separated names (or paths) of .mp4 '
                        'files; names are looked up in ' + SHARED_VIDEOS)
    parser.add_argument('--pairs', type=int, default=4,
                        help='frame pairs per case')
    parser.add_argument('--short_side', type=int, default=256)
    parser.add_argument('--crop_width', type=int, default=340)
    parser.add_argument('--no_full', action='store_true',
                        help='only the centre-cropped cases')
    parser.add_argument('--backends', default='tvl1,tvl1_xp',
                        help='comma-separated: tvl1 (OpenCV), tvl1_xp '
                        '(numpy); the GPU run is added by --gpu')
    parser.add_argument('--gpu', default='auto',
                        help="GPU id for tvl1_xp on CuPy, 'auto' (a GPU when "
                        "CuPy sees one) or 'none'")
    parser.add_argument('--memory_mb', type=float, default=None,
                        help='tvl1_xp chunk memory (default: the '
                        "backend's on numpy, 16384 on a GPU)")
    parser.add_argument('--throughput_frames', type=int, default=0,
                        help='also time the GPU run on each case extended '
                        'to this many frames (played forwards and backwards)'
                        ', e.g. 250 for a 10 s Kinetics clip')
    parser.add_argument('--json', dest='json_path',
                        help='also write the results as JSON here')
    reference = parser.add_mutually_exclusive_group()
    reference.add_argument('--save_reference', metavar='DIR',
                           help='write frames and OpenCV flow as .npy')
    reference.add_argument('--load_reference', metavar='DIR',
                           help='read frames and OpenCV flow from .npy')
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error('--pairs must be at least 1')
    return args


def video_path(name):
    if os.path.exists(name):
        return name
    return os.path.join(SHARED_VIDEOS, name + '.mp4')


def read_gray(path, n_frame, short_side):
    """The first ``n_frame`` frames, decoded and scaled as every stage does,
    converted to gray as the flow stages do."""
    from chainercv_i3d.flow import gray_video
    from chainercv_i3d.utils.video import decode_and_resample
    frames = decode_and_resample(path, None, short_side)[0][:n_frame]
    if len(frames) < 2:
        raise ValueError('{}: fewer than 2 frames could be read'.format(path))
    return gray_video(frames)


def make_cases(args):
    """Returns ``[(case name, gray frames (T, H, W) uint8)]``."""
    cases = []
    for name in args.videos.split(','):
        gray = read_gray(video_path(name), args.pairs + 1, args.short_side)
        label = os.path.splitext(os.path.basename(name))[0]
        width = gray.shape[2]
        if width >= args.crop_width:
            left = (width - args.crop_width) // 2
            cropped = numpy.ascontiguousarray(
                gray[:, :, left:left + args.crop_width])
            cases.append(('{}_{}x{}'.format(label, *cropped.shape[1:]),
                          cropped))
        # A video narrower than the crop is a case at its own size only.
        if width < args.crop_width or (not args.no_full
                                       and width != args.crop_width):
            cases.append(('{}_{}x{}'.format(label, *gray.shape[1:]), gray))
    return cases


def run_backend(backend, gray, warm_up):
    """Runs ``backend.compute_video``; returns flow, seconds, iterations."""
    if warm_up:
        backend.compute_video(gray[:2])
    start = time.perf_counter()
    flow = backend.compute_video(gray)
    seconds = time.perf_counter() - start
    iterations = getattr(backend, 'last_iterations', None)
    return flow, seconds, iterations


def ping_pong(gray, n_frame):
    """``gray`` played forwards, backwards, forwards... to ``n_frame``
    frames (real content and motion for a long-video throughput)."""
    order = list(range(len(gray))) + list(range(len(gray) - 2, 0, -1))
    return gray[[order[t % len(order)] for t in range(n_frame)]]


def flow_errors(flow, reference):
    error = numpy.sqrt(((flow - reference) ** 2).sum(axis=-1))
    levels = quantize_flow(flow) != quantize_flow(reference)
    return {'epe_mean': float(error.mean()),
            'epe_p99': float(numpy.percentile(error, 99)),
            'epe_max': float(error.max()),
            'over_half_px': float((error > 0.5).mean()),
            'uint8_levels_differing': float(levels.mean())}


def make_backends(args):
    """Returns ``[(label, backend, warm_up)]``."""
    backends = []
    for name in args.backends.split(','):
        if name == 'tvl1':
            backends.append(('tvl1', get_flow_backend('tvl1'), False))
        elif name == 'tvl1_xp':
            options = {} if args.memory_mb is None else {
                'memory_mb': args.memory_mb}
            backends.append(('tvl1_xp', get_flow_backend('tvl1_xp',
                                                         **options), False))
        elif name:
            raise ValueError('unknown backend {!r}: give tvl1 or tvl1_xp'
                             .format(name))
    gpu = gpu_id(args.gpu)
    if gpu is not None:
        backend = get_flow_backend('tvl1_xp', device='@cupy:{}'.format(gpu),
                                   memory_mb=args.memory_mb or 16384)
        backends.append(('tvl1_xp@cupy:{}'.format(gpu), backend, True))
    return backends


def gpu_id(text):
    if text == 'none':
        return None
    if text != 'auto':
        return int(text)
    # The package's rule: GPU 0 when CuPy sees one, else no GPU run.
    return None if resolve_device_spec('auto') == '@numpy' else 0


def reference_paths(folder, case):
    return (os.path.join(folder, case + '_frames.npy'),
            os.path.join(folder, case + '_opencv_flow.npy'))


def load_cases(folder):
    """Cases and OpenCV flows saved by ``--save_reference``."""
    cases = []
    references = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith('_frames.npy'):
            case = name[:-len('_frames.npy')]
            frames_path, flow_path = reference_paths(folder, case)
            cases.append((case, numpy.load(frames_path)))
            references[case] = numpy.load(flow_path)
    if not cases:
        raise ValueError('no *_frames.npy in {}: make them with '
                         '--save_reference'.format(folder))
    return cases, references


def main(argv=None):
    args = parse_args(argv)
    if args.load_reference:
        cases, references = load_cases(args.load_reference)
        if 'tvl1' in args.backends.split(','):
            args.backends = ','.join(
                b for b in args.backends.split(',') if b != 'tvl1')
    else:
        cases, references = make_cases(args), {}
    try:
        backends = make_backends(args)
    except ValueError as e:  # a bad backend name, no CuPy, no GPU
        sys.exit('benchmark_flow.py: {}'.format(e))
    if args.load_reference is None:
        import cv2
        cv2.setNumThreads(1)
    results = []
    header = '{:<28} {:<18} {:>8} {:>10} {:>17} {:>8} {:>8} {:>7} {:>8}'
    print(header.format('case', 'backend', 'pairs/s', 's/pair',
                        'iterations', 'EPE', 'p99', 'max', 'uint8%'))
    for case, gray in cases:
        n_pair = len(gray) - 1
        for label, backend, warm_up in backends:
            flow, seconds, iterations = run_backend(backend, gray, warm_up)
            if label == 'tvl1':
                references[case] = flow
            row = {'case': case, 'backend': label, 'pairs': n_pair,
                   'height': gray.shape[1], 'width': gray.shape[2],
                   'seconds': seconds, 'pairs_per_s': n_pair / seconds,
                   'iterations': None if iterations is None
                   else [int(i) for i in iterations]}
            if case in references and label != 'tvl1':
                row.update(flow_errors(flow, references[case]))
            results.append(row)
            print(format_row(header, row))
        if args.save_reference:
            os.makedirs(args.save_reference, exist_ok=True)
            frames_path, flow_path = reference_paths(args.save_reference,
                                                     case)
            numpy.save(frames_path, gray)
            numpy.save(flow_path, references[case])
    if args.throughput_frames > 1:
        for case, gray in cases:
            long_gray = ping_pong(gray, args.throughput_frames)
            for label, backend, warm_up in backends:
                if '@cupy' not in label:
                    continue
                _, seconds, iterations = run_backend(backend, long_gray,
                                                     warm_up)
                row = {'case': '{} x{}'.format(case, len(long_gray) - 1),
                       'backend': label, 'pairs': len(long_gray) - 1,
                       'height': gray.shape[1], 'width': gray.shape[2],
                       'seconds': seconds,
                       'pairs_per_s': (len(long_gray) - 1) / seconds,
                       'iterations': [int(i) for i in iterations]}
                results.append(row)
                print(format_row(header, row))
    if args.json_path:
        with open(args.json_path, 'w') as f:
            json.dump({'args': vars(args), 'results': results}, f, indent=1)
    return results


def format_row(header, row):
    iterations = row['iterations']
    if iterations:
        iterations = '{}-{} (mean {:.0f})'.format(
            min(iterations), max(iterations), numpy.mean(iterations))
    else:
        iterations = '-'
    if 'epe_mean' in row:
        errors = ['{:.2e}'.format(row['epe_mean']),
                  '{:.3f}'.format(row['epe_p99']),
                  '{:.2f}'.format(row['epe_max']),
                  '{:.2f}'.format(100 * row['uint8_levels_differing'])]
    else:
        errors = ['ref' if row['backend'] == 'tvl1' else '-'] + ['-'] * 3
    return header.format(row['case'], row['backend'],
                         '{:.2f}'.format(row['pairs_per_s']),
                         '{:.3f}'.format(row['seconds'] / row['pairs']),
                         iterations, *errors)


if __name__ == '__main__':
    main()
