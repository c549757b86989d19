"""I3D action recognition for Chainer and CuPy, exact to DeepMind's TensorFlow original."""

# Must run before anything imports chainer: see the module's docstring.
from chainercv_i3d import chainer_compat  # NOQA

__version__ = '0.1.0'
