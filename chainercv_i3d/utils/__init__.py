from chainercv_i3d.utils.flops import count_flops  # NOQA
from chainercv_i3d.utils.sample_clip import read_sample_clip  # NOQA
