"""Classifies a sample clip the way DeepMind's evaluate_sample.py does.

    python examples/i3d/evaluate_sample.py CLIP --model rgb.npz [--top_k 20]

CLIP is a .npy in DeepMind's sample format, (1, T, 224, 224, C) in model
range, or an animated GIF of RGB frames. Prints the norm of the logits and
the top classes with probability and logit; --reference compares the logits
with a saved (1, n_class) .npy, e.g. TensorFlow's.
"""

import argparse
import sys
import time

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)
import numpy

from chainercv_i3d.links import I3D
from chainercv_i3d.links import predict
from chainercv_i3d.scores import softmax
from chainercv_i3d.scores import top_k
from chainercv_i3d.files import write_json
from chainercv_i3d.utils.cli import output_file
from chainercv_i3d.utils.cli import positive_int
from chainercv_i3d.utils.sample_clip import read_sample_clip


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('clip', help='.npy (1, T, H, W, C) or .gif clip')
    parser.add_argument('--model', required=True,
                        help='I3D .npz made by tfckpt2npz.py')
    parser.add_argument('--top_k', type=positive_int, default=20)
    parser.add_argument('--reference', help='(1, n_class) .npy of logits '
                        'to compare with')
    parser.add_argument('--json', type=output_file,
                        help='also write the results here')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        model = I3D(pretrained_model=args.model)
        clip = read_sample_clip(args.clip)
        start = time.perf_counter()
        logits = predict(model, clip)[0]
    except ValueError as e:
        sys.exit('evaluate_sample: {}'.format(e))
    seconds = time.perf_counter() - start
    names = model.label_names
    prob = softmax(logits.astype(numpy.float64))
    top = top_k(logits, args.top_k)

    print('Clip {} {}, {} model, forward pass {:.1f} s'.format(
        args.clip, 'x'.join(map(str, clip.shape[1:])), model.modality,
        seconds))
    print('Norm of logits: {:f}'.format(numpy.linalg.norm(logits)))
    print('Top classes and probabilities')
    for i in top:
        print('{:e} {:f} {}'.format(prob[i], logits[i], names[i]))
    result = {'clip': args.clip, 'model': args.model,
              'logits_norm': float(numpy.linalg.norm(logits)),
              'top': [{'label': int(i), 'name': names[i],
                       'prob': float(prob[i]), 'logit': float(logits[i])}
                      for i in top]}
    try:
        if args.reference:
            result['max_abs_logit_difference'] = compare_with_reference(
                logits, args.reference)
            print('Max |logit difference| against {}: {:.2e}'.format(
                args.reference, result['max_abs_logit_difference']))
        if args.json:
            write_json(args.json, result)
    except (OSError, ValueError) as e:
        sys.exit('evaluate_sample: {}'.format(e))


def compare_with_reference(logits, path):
    reference = numpy.load(path, allow_pickle=False)
    if not isinstance(reference, numpy.ndarray) \
            or reference.size != logits.size:
        raise ValueError('{} does not hold {} logits'.format(
            path, logits.size))
    return float(numpy.abs(logits - reference.reshape(-1)).max())


if __name__ == '__main__':
    main()
