#!/usr/bin/env bash
# The device check, on a GPU machine, with its image's Python itself:
#   bash scripts/gpu_check.sh [--report DIR] [--only SECTIONS] [--rehearse]
# Prepare its kit first where there is internet (python scripts/gpu_check.py
# --prepare); everything else is in scripts/gpu_check.py's docstring.
set -uo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" scripts/gpu_check.py "$@"
