from chainercv_i3d.pretrained.npz_weights import describe_npz  # NOQA
from chainercv_i3d.pretrained.npz_weights import resolve_pretrained_model  # NOQA
from chainercv_i3d.pretrained.tf_checkpoint import CheckpointError  # NOQA
from chainercv_i3d.pretrained.tf_checkpoint import convert_tf_checkpoint  # NOQA
from chainercv_i3d.pretrained.tf_checkpoint import read_checkpoint  # NOQA
