"""``--device gpu`` on a real GPU: each node-local rank gets GPU
``intra_rank % n`` and it becomes CuPy's current device."""

import chainer
import pytest

from chainercv_i3d.utils.device import select_device

pytestmark = [pytest.mark.gpu]


class Comm(object):
    """Just the part of a communicator the device rule reads."""

    def __init__(self, intra_rank):
        self.intra_rank = intra_rank


def test_each_node_local_rank_gets_its_gpu(cupy):
    n_gpus = cupy.cuda.runtime.getDeviceCount()
    try:
        for intra_rank in range(2 * n_gpus + 1):
            device = select_device('gpu', Comm(intra_rank))
            assert isinstance(device, chainer.backend.GpuDevice)
            assert device.device.id == intra_rank % n_gpus
            assert cupy.cuda.Device().id == intra_rank % n_gpus
        assert select_device('auto', Comm(0)).device.id == 0
        assert select_device('@cupy:{}'.format(n_gpus - 1)).device.id == \
            n_gpus - 1
    finally:
        cupy.cuda.Device(0).use()


def test_a_gpu_beyond_the_node_is_refused(cupy):
    n_gpus = cupy.cuda.runtime.getDeviceCount()
    with pytest.raises(ValueError, match='sees only {} GPU'.format(n_gpus)):
        select_device(n_gpus)
