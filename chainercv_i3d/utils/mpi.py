"""Former home of the communicator; kept so old imports keep working.

Import from :mod:`chainercv_i3d.utils.comm` instead.
"""

from chainercv_i3d.utils.comm import Comm  # NOQA
from chainercv_i3d.utils.comm import get_comm  # NOQA
from chainercv_i3d.utils.comm import launched_by_mpiexec  # NOQA
from chainercv_i3d.utils.comm import MPIComm  # NOQA
from chainercv_i3d.utils.comm import rank_share  # NOQA
from chainercv_i3d.utils.comm import SerialComm  # NOQA
from chainercv_i3d.utils.comm import sum_counts  # NOQA
