import os

import pytest

from chainercv_i3d.datasets import kinetics400_label_names
from chainercv_i3d.datasets import kinetics600_label_names


@pytest.mark.parametrize('n_class,names', [
    (400, kinetics400_label_names), (600, kinetics600_label_names)])
def test_label_names_equal_deepminds_label_maps(shared_i3d, n_class, names):
    path = os.path.join(shared_i3d, 'labels',
                        'kinetics{}_label_map.txt'.format(n_class))
    with open(path) as f:
        expected = tuple(line.rstrip('\n') for line in f if line.strip())
    assert names == expected
    assert len(names) == n_class
    assert list(names) == sorted(names)
