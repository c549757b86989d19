"""Pictures of an evaluation: per-class top-1, confused pairs, top-k by stream.

    python examples/i3d/plot_results.py results.json --out report/

RESULTS is the --out file of eval_kinetics.py; its results.logits.npz must be
beside it. Writes to --out: per_class_top1_NN.png (the classes sorted by
top-1, --classes_per_image per picture), confused_pairs.png (the
--top_pairs most frequent "true -> predicted" mistakes), streams_topk.png
(top-1 and top-5 of RGB, flow and their sum) and plots.json (an index of
the files), and prints the paths written.
"""

import argparse
import os
import sys

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)

from chainercv_i3d.evaluations.plots import CLASSES_PER_IMAGE
from chainercv_i3d.evaluations.plots import INDEX_NAME
from chainercv_i3d.evaluations.plots import plot_results
from chainercv_i3d.evaluations.plots import TOP_PAIRS
from chainercv_i3d.utils.cli import output_dir
from chainercv_i3d.utils.cli import positive_int


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('results', help='results.json of eval_kinetics.py '
                        '--out')
    parser.add_argument('--out', required=True, type=output_dir,
                        help='folder of the pictures (created if missing)')
    parser.add_argument('--classes_per_image', type=positive_int,
                        default=CLASSES_PER_IMAGE,
                        help='classes per per-class picture (default '
                        '%(default)s)')
    parser.add_argument('--top_pairs', type=positive_int, default=TOP_PAIRS,
                        help='confused pairs drawn (default %(default)s)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        index = plot_results(args.results, args.out, args.classes_per_image,
                             args.top_pairs)
    except (ValueError, OSError) as e:
        sys.exit('plot_results: {}'.format(e))
    for path in index['per_class'] + [index['confused_pairs'],
                                      index['streams']]:
        print(path)
    print(os.path.join(args.out, INDEX_NAME))


if __name__ == '__main__':
    main()
