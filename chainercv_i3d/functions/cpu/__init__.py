"""The CPU forms of :mod:`chainercv_i3d.functions`: Chainer FunctionNodes
on numpy arrays (numba kernels and single-threaded BLAS in threads, forward
and backward), named after what they compute. They run on every CPU call of
a link's Chainer path, training or not; :func:`~chainercv_i3d.functions.
on_numpy` sends arrays here."""

from chainercv_i3d.functions.cpu.batch_norm_relu import CPUBatchNormReLU  # NOQA
from chainercv_i3d.functions.cpu.conv3d import conv3d_padded  # NOQA
from chainercv_i3d.functions.cpu.conv3d import CPUConv3D  # NOQA
from chainercv_i3d.functions.cpu.max_pool import CPUMaxPool3D  # NOQA
from chainercv_i3d.functions.cpu.max_pool import max_pool_padded  # NOQA
