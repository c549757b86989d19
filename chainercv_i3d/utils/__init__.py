from chainercv_i3d.utils.sample_clip import read_sample_clip  # NOQA
