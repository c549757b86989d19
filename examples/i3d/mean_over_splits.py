"""Mean accuracy over a dataset's splits of per-split evaluation results.

    python examples/i3d/mean_over_splits.py split1.json split2.json \\
        split3.json [--out mean.json]

Each file is the JSON that eval_kinetics.py (or evaluate.py) --out wrote for
one split (UCF101 and HMDB51: three). Prints the mean top-1 and top-5 of
each stream (rgb, flow, two_stream) with each split's top-1, and writes the
mean and the per-split values as JSON with --out. Results of other streams
or protocols, or two results of the same videos, are refused.
"""

import argparse
import sys

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
from chainercv_i3d.evaluations.split_mean import format_split_mean
from chainercv_i3d.evaluations.split_mean import mean_over_splits
from chainercv_i3d.evaluations.split_mean import read_summary
from chainercv_i3d.files import write_json
from chainercv_i3d.utils.cli import output_file


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('results', nargs='+',
                        help='one evaluation JSON per split')
    parser.add_argument('--out', type=output_file,
                        help='write the mean and the per-split values here '
                        '(JSON)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        mean = mean_over_splits([read_summary(p) for p in args.results],
                                args.results)
        print(format_split_mean(mean))
        if args.out:
            write_json(args.out, mean, sort_keys=True)
    except (ValueError, OSError) as e:
        sys.exit('mean_over_splits: {}'.format(e))
    return 0


if __name__ == '__main__':
    sys.exit(main())
