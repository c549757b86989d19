#!/usr/bin/env bash
# Usage: scripts/build_docs.sh [PYTHON]
# Builds the Sphinx site into docs/_build/html with warnings as errors
# (--keep-going lists them all before failing). PYTHON defaults to
# .venv/bin/python, which needs the "docs" extra (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-.venv/bin/python}
# -E: read every source again, so that no warning hides in a cached page.
"$python" -m sphinx -W --keep-going -E -b html docs docs/_build/html
