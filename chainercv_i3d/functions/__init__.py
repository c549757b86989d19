"""Differentiable operations as Chainer knows them: TensorFlow's SAME
convolution and max pool, the head's average pools, fused batch norm +
ReLU; :mod:`chainercv_i3d.functions.cpu` holds their CPU nodes, and
:func:`on_numpy` decides between those and Chainer's functions."""

from chainercv_i3d.functions.average_pool import AveragePoolPerStep  # NOQA
from chainercv_i3d.functions.average_pool import SpatialMean  # NOQA
from chainercv_i3d.functions.conv3d_same import conv3d_same  # NOQA
from chainercv_i3d.functions.cpu.batch_norm_relu import batch_norm_relu  # NOQA
from chainercv_i3d.functions.dispatch import on_numpy  # NOQA
from chainercv_i3d.functions.tf_same_padding import max_pooling_nd_same  # NOQA
from chainercv_i3d.functions.tf_same_padding import MaxPool3dSame  # NOQA
from chainercv_i3d.functions.tf_same_padding import same_padding_nd  # NOQA
