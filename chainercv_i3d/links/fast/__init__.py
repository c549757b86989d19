"""The fast inference engine: folded, channels-last, numpy or CuPy.

:class:`FastEngine` (``model.fast``) owns the compute dtype and the folded
layers and walks the network; :mod:`~chainercv_i3d.links.fast.forward`
holds the folded layers and their convolutions and pools,
:mod:`~chainercv_i3d.links.fast.winograd` the 3x3x3 convolutions by
Winograd's algorithm, :mod:`~chainercv_i3d.links.fast.cuda_kernels` the
CuPy kernels of the GPU path."""

from chainercv_i3d.links.fast.engine import check_dtype  # NOQA
from chainercv_i3d.links.fast.engine import DTYPE_HELP  # NOQA
from chainercv_i3d.links.fast.engine import DTYPES  # NOQA
from chainercv_i3d.links.fast.engine import FastEngine  # NOQA
