from chainercv_i3d.transforms.flip import flip  # NOQA
from chainercv_i3d.transforms.flip import random_flip  # NOQA
from chainercv_i3d.transforms.resample_frame_indices import resample_frame_indices  # NOQA
from chainercv_i3d.transforms.scale_short_side import scale_short_side  # NOQA
from chainercv_i3d.transforms.scale_short_side import short_side_shape  # NOQA
from chainercv_i3d.transforms.spatial_crop import center_crop  # NOQA
from chainercv_i3d.transforms.spatial_crop import random_crop  # NOQA
from chainercv_i3d.transforms.temporal_crop import temporal_crop  # NOQA
