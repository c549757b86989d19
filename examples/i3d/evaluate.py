"""Top-1/top-5 accuracy of I3D streams on any precomputed set: eval_kinetics.py
under a dataset-neutral name (the same options and outputs; messages name
evaluate).

    python examples/i3d/evaluate.py UCF101_TEST1 \\
        --rgb_model_checkpoint rgb_split1/model_final.npz \\
        --flow_model_checkpoint flow_split1/model_final.npz --out split1.json
    mpiexec -n K python examples/i3d/evaluate.py ...

The default protocol is the models' preset's: for UCF101 and HMDB51 every
frame of each video with one 224 center crop ("Quo Vadis", Section 2.5).
See eval_kinetics.py --help for the options.
"""

import sys

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
import eval_kinetics  # examples/i3d/, this script's folder, is on sys.path


if __name__ == '__main__':
    sys.exit(eval_kinetics.main(prog='evaluate'))
