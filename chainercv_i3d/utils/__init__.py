from chainercv_i3d.utils.flops import count_flops  # NOQA
