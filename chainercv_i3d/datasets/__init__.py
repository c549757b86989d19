from chainercv_i3d.datasets.getter_dataset import GetterDataset  # NOQA
from chainercv_i3d.datasets.kinetics import KineticsDataset  # NOQA
from chainercv_i3d.label_names import kinetics400_label_names  # NOQA
from chainercv_i3d.label_names import kinetics600_label_names  # NOQA
from chainercv_i3d.datasets.precomputed_kinetics import PrecomputedKineticsDataset  # NOQA
from chainercv_i3d.datasets.precomputed_video import PrecomputedVideo  # NOQA
