# Sphinx configuration: sphinx-build -b html docs docs/_build
import os
import sys

sys.path.insert(0, os.path.abspath('..'))

project = 'chainercv_i3d'
extensions = ['sphinx.ext.autodoc', 'sphinx.ext.napoleon']
napoleon_google_docstring = True
autodoc_mock_imports = ['tensorflow', 'cupy']
