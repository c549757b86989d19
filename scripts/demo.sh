#!/usr/bin/env bash
# Installs the package with the converter and classifies DeepMind's cricket
# sample clip with the real RGB Kinetics-400 checkpoint from ../shared/i3d
# (CHAINERCV_I3D_SHARED moves it): converts the checkpoint once into
# models/, then prints the top classes and the difference from TensorFlow's
# logits.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${CHAINERCV_I3D_SHARED:-../shared/i3d}
bash scripts/install.sh .venv tf -c constraints/runtime.txt
mkdir -p models
npz=models/rgb_tfhub_kinetics400.npz
if [ ! -f "$npz" ]; then
    .venv/bin/python examples/i3d/tfckpt2npz.py \
        "$shared/checkpoints/rgb_tfhub_kinetics400" "$npz"
fi
.venv/bin/python examples/i3d/evaluate_sample.py \
    "$shared/samples/v_CricketShot_g04_c01_rgb.gif" --model "$npz" \
    --top_k 5 --reference "$shared/reference/cricket_rgb.logits.npy"
