from chainercv_i3d.links.i3d import I3D  # NOQA
from chainercv_i3d.links.i3d import Logits  # NOQA
from chainercv_i3d.links.i3d import max_frame_size  # NOQA
from chainercv_i3d.links.i3d import min_input_size  # NOQA
from chainercv_i3d.links.i3d_predictor import I3DPredictor  # NOQA
from chainercv_i3d.links.inception_block import InceptionBlock  # NOQA
from chainercv_i3d.links.pickable_sequential_chain import PickableSequentialChain  # NOQA
from chainercv_i3d.links.unit3d import Unit3D  # NOQA
