"""Feature crops in one batch against one crop at a time, one line each.

    python benchmarks/benchmark_feature_crops.py [--model NAME_OR_NPZ]
        [--n_crop 10] [--n_frame 16] [--repeat 3]

Runs ``I3DPredictor.features`` on one window of ``n_frame`` frames of
``n_crop`` random 224x224 crops: once as a batch of crops (what
``extract_features.py --crops`` does), then crop by crop; prints seconds
per crop for each, after a warm-up forward of each shape.
"""

import argparse
import time

import numpy

import chainercv_i3d  # NOQA: before chainer

from chainercv_i3d.links import I3DPredictor
from chainercv_i3d.transforms.feature_options import FeatureOptions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default='rgb_tfhub_kinetics400')
    parser.add_argument('--n_crop', type=int, default=10)
    parser.add_argument('--n_frame', type=int, default=16)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args(argv)
    predictor = I3DPredictor(args.model)
    crops = numpy.random.default_rng(0).uniform(
        -1, 1, (args.n_crop, 3, args.n_frame, 224, 224)).astype(numpy.float32)
    options = FeatureOptions(window=args.n_frame)
    # Warm-up: the fast path prepares its buffers per input shape.
    predictor.features({'rgb': crops[0]}, options=options)
    predictor.features({'rgb': crops}, options=options)
    for _ in range(args.repeat):
        start = time.perf_counter()
        predictor.features({'rgb': crops}, options=options)
        batched = (time.perf_counter() - start) / args.n_crop
        start = time.perf_counter()
        for crop in crops:
            predictor.features({'rgb': crop}, options=options)
        single = (time.perf_counter() - start) / args.n_crop
        print('{} crops x {} frames: one batch {:.3f} s/crop, one crop at a '
              'time {:.3f} s/crop'.format(args.n_crop, args.n_frame, batched,
                                          single))


if __name__ == '__main__':
    main()
