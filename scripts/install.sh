#!/usr/bin/env bash
# Usage: scripts/install.sh VENV EXTRAS [PIP ARGS...]
# Makes the virtual environment VENV with Python 3 and installs this package
# (editable) with EXTRAS (e.g. "tf,test"; "" for none). chainer 7.8.1 ships
# only an sdist whose build needs setuptools < 82: pip >= 25.3 passes that as a
# build constraint. Further arguments go to pip (constraints, requirements).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1
extras=$2
shift 2
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade "pip>=25.3"
spec=.
if [ -n "$extras" ]; then spec=".[$extras]"; fi
"$venv/bin/python" -m pip install -q --build-constraint constraints/build.txt \
    -e "$spec" "$@"
