# Sphinx configuration. Built by scripts/build_docs.sh (warnings are errors):
#   sphinx-build -W --keep-going -b html docs docs/_build/html
import os
import sys

DOCS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(DOCS_DIR))  # the package, from the clone
sys.path.insert(0, os.path.join(DOCS_DIR, '_ext'))  # model_zoo

import chainercv_i3d  # NOQA: E402, before chainer (chainer_compat)

project = 'chainercv_i3d'
author = 'the chainercv_i3d authors'
copyright = '2026, ' + author  # the footer's line
release = '0.1.0'
extensions = ['sphinx.ext.autodoc', 'sphinx.ext.napoleon', 'model_zoo']
exclude_patterns = ['_build']
html_theme = 'alabaster'
html_static_path = ['_static']
html_css_files = ['model_zoo.css']  # the model-zoo table within the page

napoleon_google_docstring = True
napoleon_numpy_docstring = False
# "Attributes:" as fields of the class, not as attribute entries that
# autodoc's :members: would describe a second time.
napoleon_use_ivar = True
autodoc_member_order = 'bysource'
# Optional heavy dependencies: the reference never needs them installed.
autodoc_mock_imports = ['tensorflow', 'cupy', 'cupyx', 'mpi4py',
                        'chainermn', 'pfio']
