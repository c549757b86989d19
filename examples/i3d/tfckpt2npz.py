"""Converts one of DeepMind's TensorFlow I3D checkpoints to a Chainer .npz.

    python examples/i3d/tfckpt2npz.py data/checkpoints/rgb_imagenet/model.ckpt \\
        rgb_imagenet_kinetics400.npz

Modality, class count and scope are read from the checkpoint; the .npz also
stores DeepMind's Kinetics preset with the class names of that class count.
Load the result with ``I3D(pretrained_model='rgb_imagenet_kinetics400.npz')``.
"""

import argparse
import os
import sys

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
from chainercv_i3d.pretrained import CheckpointError
from chainercv_i3d.pretrained import convert_tf_checkpoint
from chainercv_i3d.pretrained import save_model_npz
from chainercv_i3d.utils.cli import output_file


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='checkpoint prefix (.../model.ckpt)'
                        ', its directory, or its .index file')
    parser.add_argument('out', type=output_file,
                        help='the .npz to write (missing folders are made)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        arrays, summary = convert_tf_checkpoint(args.checkpoint)
        save_model_npz(arrays, args.out, summary['preset'])
    except (CheckpointError, ImportError, OSError) as e:
        sys.exit('tfckpt2npz: {}'.format(e))
    print('checkpoint: {}'.format(summary['checkpoint']))
    print('scope:      {}'.format(summary['prefix'] or '(none)'))
    print('modality:   {}'.format(summary['modality']))
    print('classes:    {}'.format(summary['n_class']))
    print('tensors:    {} converted, {} optimizer slots ignored'.format(
        summary['n_used'], summary['n_ignored']))
    print('wrote:      {} ({:.1f} MB)'.format(
        args.out, os.path.getsize(args.out) / 1e6))


if __name__ == '__main__':
    main()
