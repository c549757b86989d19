from chainercv_i3d.datasets.kinetics_label_names import kinetics400_label_names  # NOQA
from chainercv_i3d.datasets.kinetics_label_names import kinetics600_label_names  # NOQA
