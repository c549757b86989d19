"""The hint of a dataset whose labels the model does not predict."""

import pytest

from chainercv_i3d.evaluations import check_labels
from chainercv_i3d.label_names import kinetics600_label_names
from chainercv_i3d.presets import DEEPMIND_KINETICS


class OneVideo(object):
    """What check_labels reads of a precomputed dataset: one video."""

    def __init__(self, label, label_names):
        self.records = [{'video_id': 'v', 'label': label}]
        self.preset = DEEPMIND_KINETICS.replace(label_names=label_names)

    def __len__(self):
        return len(self.records)


def test_a_kinetics600_set_and_a_400_class_model_say_so():
    with pytest.raises(ValueError, match="^video v has label 450, the model "
                       "only 400 classes: the videos are labelled in "
                       "Kinetics-600's classes; give a Kinetics-600 model$"):
        check_labels(OneVideo(450, kinetics600_label_names), 400)


def test_other_sets_get_no_kinetics600_hint():
    with pytest.raises(ValueError) as refused:
        check_labels(OneVideo(2, ('a', 'b', 'c')), 2)
    assert str(refused.value) == (
        "video v has label 2, the model only 2 classes: give a model of the "
        "dataset's classes")
