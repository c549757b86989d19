"""Snapshots read back what was written; a snapshot of another run is
refused before anything is loaded."""

import chainer
import chainer.links as L
import numpy
import pytest

from chainercv_i3d.testing.damaged_files import write_damaged_copies
from chainercv_i3d.training import load_snapshot
from chainercv_i3d.training import save_final_model
from chainercv_i3d.training import save_snapshot

SETTINGS = {'batch_size': 2, 'seed': 0, 'schedule': {'name': 'step'}}


class Net(chainer.Chain):
    """Parameters and running statistics (persistent values)."""

    def __init__(self):
        super(Net, self).__init__()
        with self.init_scope():
            self.fc = L.Linear(3, 4)
            self.bn = L.BatchNormalization(4)

    def forward(self, x):
        return self.bn(self.fc(x))


def trained(seed):
    """A net and its optimizer after two updates: the weights, the running
    statistics and the momentum all depend on ``seed``."""
    numpy.random.seed(seed)
    model = Net()
    optimizer = chainer.optimizers.MomentumSGD(lr=0.1)
    optimizer.setup(model)
    x = numpy.random.uniform(-1, 1, (5, 3)).astype(numpy.float32)
    for _ in range(2):
        model.cleargrads()
        chainer.functions.sum(model(x) ** 2).backward()
        optimizer.update()
    return model, optimizer


def state(link_or_optimizer):
    serializer = chainer.serializers.DictionarySerializer()
    serializer.save(link_or_optimizer)
    return {key: numpy.array(value)
            for key, value in serializer.target.items()}


def assert_same_state(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        numpy.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_snapshot_loads_back_the_weights_state_and_iteration(tmp_path):
    path = str(tmp_path / 'snapshot.npz')
    model, optimizer = trained(0)
    save_snapshot(path, model, optimizer, 7, SETTINGS)
    other, other_optimizer = trained(1)
    assert not numpy.array_equal(other.fc.W.array, model.fc.W.array)
    iteration = load_snapshot(path, other, other_optimizer, SETTINGS)
    assert iteration == 7
    assert_same_state(state(other), state(model))  # incl. avg_mean, N
    assert_same_state(state(other_optimizer), state(optimizer))  # v, t
    assert other_optimizer.t == 2


def test_without_settings_nothing_is_checked(tmp_path):
    path = str(tmp_path / 'snapshot.npz')
    model, optimizer = trained(0)
    save_snapshot(path, model, optimizer, 3, SETTINGS)
    other, other_optimizer = trained(1)
    assert load_snapshot(path, other, other_optimizer) == 3
    assert_same_state(state(other), state(model))


class Wrapper(object):
    """Stands for ChainerMN's multi-node optimizer: it wraps the one that
    holds the state."""

    def __init__(self, actual_optimizer):
        self.actual_optimizer = actual_optimizer


def test_a_wrapped_optimizer_saves_and_loads_the_one_it_wraps(tmp_path):
    path = str(tmp_path / 'snapshot.npz')
    model, optimizer = trained(0)
    save_snapshot(path, model, Wrapper(optimizer), 1, SETTINGS)
    other, other_optimizer = trained(1)
    load_snapshot(path, other, Wrapper(other_optimizer), SETTINGS)
    assert_same_state(state(other_optimizer), state(optimizer))


def test_a_snapshot_of_other_settings_is_refused_untouched(tmp_path):
    path = str(tmp_path / 'snapshot.npz')
    model, optimizer = trained(0)
    save_snapshot(path, model, optimizer, 5, SETTINGS)
    other, other_optimizer = trained(1)
    before = state(other)
    now = dict(SETTINGS, batch_size=3, schedule={'name': 'deepmind_rgb'})
    with pytest.raises(ValueError) as error:
        load_snapshot(path, other, other_optimizer, now)
    message = str(error.value)
    assert path in message
    assert 'batch_size: 2 there, 3 now' in message
    assert "schedule.name: 'step' there, 'deepmind_rgb' now" in message
    assert_same_state(state(other), before)


def test_the_final_weights_of_another_architecture(tmp_path):
    path = str(tmp_path / 'model_final.npz')
    model, _ = trained(0)
    save_final_model(path, model, arch='tiny')
    other, _ = trained(1)
    chainer.serializers.load_npz(path, other)
    assert_same_state(state(other), state(model))


@pytest.mark.parametrize('kind, says', [
    ('truncated', 'is truncated or damaged'), ('bad_crc', 'is damaged'),
    ('missing', 'lacks the array model/fc/W')])
def test_a_damaged_snapshot_is_one_line_naming_it(tmp_path, kind, says):
    """A truncated snapshot said only "File is not a zip file"."""
    model, optimizer = trained(0)
    save_snapshot(str(tmp_path / 'snapshot.npz'), model, optimizer, 2,
                  SETTINGS)
    path = write_damaged_copies(str(tmp_path / 'snapshot.npz'), tmp_path,
                                'model/fc/W')[kind]
    with pytest.raises(ValueError) as error:
        load_snapshot(path, *trained(1), settings=SETTINGS)
    message = str(error.value)
    assert message.startswith('{} {}'.format(path, says))
    assert message.endswith('add --restart (restart=True) to start the run '
                            'again from iteration 0, or give another '
                            'out_dir')
