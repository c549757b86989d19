#!/usr/bin/env bash
# Usage: scripts/build_docs.sh [PYTHON]
# Builds the Sphinx site into docs/_build/html with warnings as errors
# (--keep-going lists them all before failing). PYTHON defaults to
# .venv/bin/python, which needs the "docs" extra (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-.venv/bin/python}
if [ ! -x "$python" ] && ! command -v "$python" >/dev/null; then
    echo "build_docs.sh: no $python: make it with bash scripts/install.sh" \
        ".venv docs -c constraints/runtime.txt, or give a Python" >&2
    exit 1
fi
if ! "$python" -c 'import sphinx' 2>/dev/null; then
    echo "build_docs.sh: $python cannot import Sphinx: install the docs" \
        "extra: $python -m pip install --build-constraint" \
        "constraints/build.txt -e \".[docs]\" -c constraints/runtime.txt" >&2
    exit 1
fi
# -E: read every source again, so that no warning hides in a cached page.
"$python" -m sphinx -W --keep-going -E -b html docs docs/_build/html
