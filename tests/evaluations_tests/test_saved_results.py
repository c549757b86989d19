"""SavedResults: the finished part of an evaluation, kept for a rerun."""

import json
import os

import pytest

from chainercv_i3d.evaluations import finished_summary
from chainercv_i3d.evaluations import parts_dir
from chainercv_i3d.evaluations import SavedResults

SETTINGS = {'protocol': {'num_crops': 1, 'crop_size': 224},
            'models': {'rgb': {'sha256': 'ab'}}, 'dtype': 'float32'}


def result(video_id):
    return {'video_id': video_id, 'label': 0, 'logits': {'rgb': [0.5, 1.]}}


def test_a_rerun_with_the_same_settings_finds_what_was_saved(tmp_path):
    saved = SavedResults(parts_dir(str(tmp_path / 'r.json')))
    saved.claim(SETTINGS)
    saved.save(3, [result('a'), result('b')], run='1', elapsed_s=2.5)
    saved.save(0, [result('c')], run='1', elapsed_s=4.0)
    saved.save(5, [result('d')], run='2', elapsed_s=1.0)
    again = SavedResults(saved.folder)
    again.claim(dict(SETTINGS))
    results, earlier_s = again.load()
    assert sorted(r['video_id'] for r in results) == ['a', 'b', 'c', 'd']
    assert result('a') in results
    assert earlier_s == 5.0  # the longest part of each run, added


def test_other_settings_are_refused_naming_each_difference(tmp_path):
    saved = SavedResults(str(tmp_path / 'r.json.parts'))
    saved.claim(SETTINGS)
    saved.save(0, [result('a')], run='1', elapsed_s=1.0)
    other = dict(SETTINGS, dtype='float16',
                 protocol={'num_crops': 3, 'crop_size': 224})
    with pytest.raises(ValueError) as e:
        saved.claim(other)
    message = str(e.value)
    assert "dtype: 'float32' there, 'float16' now" in message
    assert 'protocol.num_crops: 1 there, 3 now' in message
    assert '--restart' in message
    assert len(saved.load()[0]) == 1  # nothing lost
    saved.claim(other, restart=True)
    assert saved.load() == ([], 0)


def test_a_damaged_part_is_named(tmp_path):
    saved = SavedResults(str(tmp_path / 'r.json.parts'))
    saved.claim(SETTINGS)
    with open(os.path.join(saved.folder, '00000007.json'), 'w') as f:
        f.write('{"run": "1", "resu')
    with pytest.raises(ValueError, match='00000007.json is damaged'):
        saved.load()


def test_remove_leaves_nothing(tmp_path):
    saved = SavedResults(str(tmp_path / 'r.json.parts'))
    saved.claim(SETTINGS)
    saved.save(0, [result('a')], run='1', elapsed_s=1.0)
    saved.remove()
    assert os.listdir(str(tmp_path)) == []


def test_a_finished_evaluation_is_found_or_refused_by_its_settings(
        tmp_path):
    out = tmp_path / 'r.json'
    assert finished_summary(str(out), SETTINGS) is None  # nothing yet
    out.write_text(json.dumps({'top1': 0.5, 'settings': SETTINGS}))
    assert finished_summary(str(out), SETTINGS)['top1'] == 0.5
    other = dict(SETTINGS, dtype='float16')
    with pytest.raises(ValueError, match=r"other settings \(dtype: "
                       r"'float32' there, 'float16' now\): add --restart"):
        finished_summary(str(out), other)
    for text in ('{"top1": 0.5}', '{"top1": 0.'):  # no settings; damaged
        out.write_text(text)
        with pytest.raises(ValueError, match='r.json exists but records no '
                           'evaluation settings .*: add --restart'):
            finished_summary(str(out), SETTINGS)
