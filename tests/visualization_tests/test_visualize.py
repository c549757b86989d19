"""examples/i3d/visualize.py: each subcommand's pictures and bad inputs.

Fast tests use random-weight models and tiny synthetic clips; slow ones the
shared cricket sample and ``rgb_tfhub_kinetics400``.
"""

import hashlib
import math
import os
import shutil

import numpy
import pytest
from PIL import Image
from PIL import ImageSequence

from chainercv_i3d.links import I3D
from chainercv_i3d.pretrained.npz_weights import save_model_npz
from chainercv_i3d.testing.damaged_files import write_damaged_copies
from chainercv_i3d.testing.synthetic import moving_bar
from chainercv_i3d.testing.synthetic import write_moving_bars_set
from chainercv_i3d.visualization import flow_to_color
from chainercv_i3d.visualization import write_flow_pictures
from chainercv_i3d.visualization.grid import SEPARATOR
from chainercv_i3d.visualization.grid import TIMELINE_HEIGHT
from tests.conftest import load_example
from tests.conftest import run_script
from tests.datasets_tests.videos import write_video

CRICKET = os.path.join('samples', 'v_CricketShot_g04_c01_rgb.gif')
N_FILTERS, FILTER_TAPS, FILTER_SIDE = 64, 7, 7


@pytest.fixture(scope='module')
def visualize():
    return load_example('visualize.py').main


def random_model_npz(folder, modality, seed):
    numpy.random.seed(seed)
    path = os.path.join(str(folder), '{}_{}.npz'.format(modality, seed))
    save_model_npz(I3D(n_class=5, modality=modality), path)
    return path


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp('models')
    return {'rgb_a': random_model_npz(folder, 'rgb', 1),
            'rgb_b': random_model_npz(folder, 'rgb', 2),
            'flow': random_model_npz(folder, 'flow', 3)}


@pytest.fixture(scope='module')
def bar_video(tmp_path_factory):
    """8 frames of a bar moving right, 48x64, lossless."""
    frames, _ = moving_bar(8, 48, 64, 1, numpy.random.default_rng(0))
    return write_video(tmp_path_factory.mktemp('video') / 'bar.avi',
                       list(frames))


def read_gif(path):
    """The frames of a GIF as (H, W, 3) uint8 arrays."""
    with Image.open(str(path)) as image:
        assert image.format == 'GIF'
        return [numpy.asarray(frame.convert('RGB'))
                for frame in ImageSequence.Iterator(image)]


def read_png(path):
    with Image.open(str(path)) as image:
        assert image.format == 'PNG'
        return numpy.asarray(image.convert('RGB'))


def grid_side(n_per_side, tile):
    return n_per_side * tile + (n_per_side + 1) * SEPARATOR


def stem(path):
    return os.path.splitext(os.path.basename(str(path)))[0]


def label(model):
    """What a model's pictures are named after: a name as it is; an .npz's
    file name without its extension, '-' and 8 hex digits of its SHA-256."""
    if not os.path.isfile(str(model)):
        return str(model)
    digest = hashlib.sha256(open(str(model), 'rb').read())
    return '{}-{}'.format(stem(model), digest.hexdigest()[:8])


# filters

def write_filters(visualize, model, out, scale=4):
    visualize(['filters', '--model', model, '--out', str(out), '--scale',
               str(scale), '--quiet'])
    base = os.path.join(str(out), label(model) + '_conv3d_1a_7x7')
    return read_gif(base + '.gif'), read_png(base + '.png')


def test_rgb_filters_are_an_8x8_grid_per_tap(visualize, models, tmp_path):
    scale = 4
    frames, middle = write_filters(visualize, models['rgb_a'], tmp_path,
                                   scale)
    side = grid_side(8, FILTER_SIDE * scale)
    assert len(frames) == FILTER_TAPS
    assert all(f.shape == (side + TIMELINE_HEIGHT, side, 3) for f in frames)
    assert middle.shape == (side, side, 3)
    # The separators are white lines between the tiles.
    tile = FILTER_SIDE * scale
    assert (middle[0] == 255).all() and (middle[:, tile + SEPARATOR] == 255
                                         ).all()
    # Filter 9 (second row, second column) at the middle tap: its RGB
    # weights min-max scaled over the whole filter, each a 4x4 block.
    weight = numpy.load(models['rgb_a'])['conv3d_1a_7x7/conv/W'][9]
    scaled = (weight - weight.min()) / (weight.max() - weight.min())
    expected = numpy.round(scaled[:, FILTER_TAPS // 2] * 255).transpose(
        1, 2, 0)
    y = x = 2 * SEPARATOR + tile
    shown = middle[y:y + tile:scale, x:x + tile:scale].astype(float)
    numpy.testing.assert_allclose(shown, expected, atol=1)


def test_filters_differ_between_two_models(visualize, models, tmp_path):
    frames_a, _ = write_filters(visualize, models['rgb_a'], tmp_path / 'a')
    frames_b, _ = write_filters(visualize, models['rgb_b'], tmp_path / 'b')
    assert len(frames_a) == len(frames_b)
    assert not numpy.array_equal(frames_a[3], frames_b[3])


def test_flow_filters_show_speed_as_brightness(visualize, models, tmp_path):
    scale = 2
    frames, middle = write_filters(visualize, models['flow'], tmp_path,
                                   scale)
    assert len(frames) == FILTER_TAPS
    assert middle.shape[:2] == (grid_side(8, FILTER_SIDE * scale),) * 2
    weight = numpy.load(models['flow'])['conv3d_1a_7x7/conv/W'][0]
    speed = numpy.hypot(weight[0], weight[1])
    expected = numpy.round(speed[FILTER_TAPS // 2] / speed.max() * 255)
    shown = middle[SEPARATOR::scale, SEPARATOR::scale][:FILTER_SIDE,
                                                       :FILTER_SIDE]
    numpy.testing.assert_allclose(shown.max(axis=2), expected, atol=1)
    # And the hue is the wheel's for the weights' direction.
    numpy.testing.assert_allclose(
        shown, flow_to_color(weight[:, FILTER_TAPS // 2].transpose(1, 2, 0),
                             speed.max()), atol=1)


# activations

def write_activations(visualize, model, clip, out, *options):
    visualize(['activations', str(clip), '--model', model, '--out',
               str(out), '--quiet'] + list(options))
    base = os.path.join(str(out), '{}_{}_{}'.format(
        label(model), dict(zip(options[::2], options[1::2])).get(
            '--layer', 'conv3d_1a_7x7'), stem(clip)))
    return read_gif(base + '.gif'), read_png(base + '.png')


def test_activations_of_a_video_beside_its_frames(visualize, models,
                                                  bar_video, tmp_path):
    tile = 32
    frames, middle = write_activations(
        visualize, models['rgb_a'], bar_video, tmp_path, '--channels', '6',
        '--tile_size', str(tile))
    # conv3d_1a_7x7 has stride 2 in time: 8 frames give 4 steps.
    assert len(frames) == math.ceil(8 / 2)
    # 6 channels: 3 columns, 2 rows; the input frame as high as the grid.
    height, width = 2 * tile + 3 * SEPARATOR, 3 * tile + 4 * SEPARATOR
    assert frames[0].shape == (height + TIMELINE_HEIGHT,
                               height + SEPARATOR + width, 3)
    assert middle.shape == (height, height + SEPARATOR + width, 3)
    # The input panel shows the bar moving right between the steps.
    bar_x = [numpy.argmax(f[:height, :height].sum(axis=(0, 2)))
             for f in frames]
    assert bar_x[-1] > bar_x[0]


def test_activations_differ_between_two_models(visualize, models,
                                               bar_video, tmp_path):
    frames_a, _ = write_activations(visualize, models['rgb_a'], bar_video,
                                    tmp_path / 'a', '--channels', '4')
    frames_b, _ = write_activations(visualize, models['rgb_b'], bar_video,
                                    tmp_path / 'b', '--channels', '4')
    assert frames_a[0].shape == frames_b[0].shape
    assert not numpy.array_equal(frames_a[1], frames_b[1])


def test_activations_of_a_deeper_layer_of_a_flow_sample(visualize, models,
                                                        tmp_path):
    # A DeepMind-format flow .npy (1, T, H, W, 2) in [-1, 1].
    rng = numpy.random.default_rng(0)
    clip = rng.uniform(-0.3, 0.3, (1, 12, 32, 32, 2)).astype(numpy.float32)
    numpy.save(str(tmp_path / 'flow_clip.npy'), clip)
    frames, _ = write_activations(
        visualize, models['flow'], tmp_path / 'flow_clip.npy', tmp_path,
        '--layer', 'conv3d_2c_3x3', '--channels', '4', '--tile_size', '16')
    # Stride 2 in time up to conv3d_2c_3x3: 6 steps; 8x8 maps, 2x2 grid.
    assert len(frames) == 6
    side = 2 * 16 + 3 * SEPARATOR
    assert frames[0].shape == (side + TIMELINE_HEIGHT,
                               side + SEPARATOR + side, 3)


def test_activations_of_a_precomputed_video(visualize, models, tmp_path):
    write_moving_bars_set(str(tmp_path / 'set'), 1, n_frames=10, size=40)
    zip_path = tmp_path / 'set' / 'videos' / 'bar_0_000.zip'
    frames, _ = write_activations(visualize, models['flow'], zip_path,
                                  tmp_path, '--channels', '4',
                                  '--max_frames', '6')
    assert len(frames) == 3  # the first 6 frames, stride 2


# flow

def test_flow_pictures_colour_the_bar_by_its_direction(tmp_path):
    rng = numpy.random.default_rng(0)
    for direction, name in ((1, 'right'), (-1, 'left')):
        frames, flow = moving_bar(6, 24, 40, direction, rng)
        gif_path, legend_path = write_flow_pictures(
            list(frames), flow, str(tmp_path), name, 40)
        shown = read_gif(gif_path)
        assert len(shown) == len(flow)
        assert shown[0].shape == (24 + TIMELINE_HEIGHT, 40 + SEPARATOR + 40,
                                  3)
        moving = shown[0][:24, 40 + SEPARATOR:].astype(int)
        bar = moving[flow[0, :, :, 0] != 0]
        assert bar.max() > 200  # the bar's speed is the bound: bright
        red, blue = bar[:, 0].mean(), bar[:, 2].mean()
        assert (red > blue + 100) if direction > 0 else (blue > red + 100)
        still = moving[flow[0, :, :, 0] == 0]
        assert still.max() < 30  # no motion: black
        assert read_png(legend_path).shape[2] == 3


def test_flow_of_a_video(visualize, bar_video, tmp_path):
    visualize(['flow', bar_video, '--out', str(tmp_path), '--max_frames',
               '3', '--quiet'])
    frames = read_gif(tmp_path / 'bar_flow.gif')
    # Decoded at a short side of 256 (48x64 -> 256x341): 2 flows.
    assert len(frames) == 2
    assert frames[0].shape == (256 + TIMELINE_HEIGHT, 2 * 341 + SEPARATOR,
                               3)
    assert read_png(tmp_path / 'bar_flow_wheel.png').ndim == 3


# bad inputs

def error_of(visualize, argv):
    with pytest.raises(SystemExit) as raised:
        visualize(argv)
    message = raised.value.code
    assert isinstance(message, str) and message.startswith('visualize: ')
    assert '\n' not in message
    return message


def test_unknown_layer_lists_the_layers(visualize, models, bar_video,
                                        tmp_path):
    message = error_of(visualize, [
        'activations', bar_video, '--model', models['rgb_a'], '--layer',
        'mixed_9z', '--out', str(tmp_path)])
    assert "'mixed_9z'" in message and 'conv3d_1a_7x7' in message \
        and 'mixed_5c' in message


def test_a_head_layer_has_no_map(visualize, models, bar_video, tmp_path):
    message = error_of(visualize, [
        'activations', bar_video, '--model', models['rgb_a'], '--layer',
        'avgpool', '--out', str(tmp_path)])
    assert 'no spatial map' in message and 'mixed_5c' in message


@pytest.mark.parametrize('content, name', [
    (b'not a video', 'bad.mp4'), (None, 'missing.mp4'),
    (b'not an array', 'bad.npy')])
def test_unreadable_clip(visualize, models, tmp_path, content, name):
    clip = tmp_path / name
    if content is not None:
        clip.write_bytes(content)
    message = error_of(visualize, [
        'activations', str(clip), '--model', models['rgb_a'], '--out',
        str(tmp_path / 'out')])
    assert name in message


def test_clip_of_the_other_modality(visualize, models, tmp_path):
    numpy.save(str(tmp_path / 'f.npy'),
               numpy.zeros((1, 4, 16, 16, 2), numpy.float32))
    message = error_of(visualize, [
        'activations', str(tmp_path / 'f.npy'), '--model', models['rgb_a'],
        '--out', str(tmp_path)])
    assert 'flow clip' in message and 'rgb model' in message


def test_unwritable_out_and_unknown_model(visualize, models, tmp_path,
                                          capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    for out in (blocker, blocker / 'pictures'):
        with pytest.raises(SystemExit) as raised:
            visualize(['filters', '--model', models['rgb_a'], '--out',
                       str(out)])
        assert raised.value.code == 2  # refused before the model is read
        message = capsys.readouterr().err.strip().splitlines()[-1]
        assert 'argument --out' in message
        assert '{} is a file'.format(blocker) in message
    message = error_of(visualize, ['filters', '--model', 'no_such_model',
                                   '--out', str(tmp_path)])
    assert 'no_such_model' in message


def test_errors_are_one_line_and_status_1(models, tmp_path):
    result = run_script('visualize.py', 'activations', tmp_path / 'x.mp4',
                        '--model', models['rgb_a'], '--out', tmp_path)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines() == [
        'visualize: no such clip: {}'.format(tmp_path / 'x.mp4')]


# the shared cricket sample and the TF-Hub weights

@pytest.fixture
def tfhub_model(tfhub_cache, monkeypatch):
    monkeypatch.setenv('CHAINERCV_I3D_CACHE', str(tfhub_cache))
    return 'rgb_tfhub_kinetics400'


@pytest.mark.slow
def test_tfhub_filters_differ_from_random_ones(visualize, tfhub_model,
                                               models, tmp_path):
    frames, middle = write_filters(visualize, tfhub_model, tmp_path, 8)
    assert len(frames) == FILTER_TAPS
    assert middle.shape == (grid_side(8, 56),) * 2 + (3,)
    random_frames, _ = write_filters(visualize, models['rgb_a'],
                                     tmp_path / 'random', 8)
    assert not numpy.array_equal(frames[3], random_frames[3])


@pytest.mark.slow
def test_tfhub_activations_on_the_cricket_clip(visualize, tfhub_model,
                                               models, shared_i3d,
                                               tmp_path):
    clip = os.path.join(shared_i3d, CRICKET)
    frames, _ = write_activations(visualize, tfhub_model, clip,
                                  tmp_path / 'tfhub', '--channels', '16')
    # 79 frames, stride 2: 40 steps; 16 channels of 112 -> 56 pixels.
    assert len(frames) == 40
    side = grid_side(4, 56)
    assert frames[0].shape == (side + TIMELINE_HEIGHT, 2 * side + SEPARATOR,
                               3)
    random_frames, _ = write_activations(
        visualize, models['rgb_a'], clip, tmp_path / 'random',
        '--channels', '16')
    assert not numpy.array_equal(frames[20][:, side:],
                                 random_frames[20][:, side:])


@pytest.mark.slow
def test_flow_of_the_cricket_clip(visualize, shared_i3d, tmp_path):
    visualize(['flow', os.path.join(shared_i3d, CRICKET), '--out',
               str(tmp_path), '--max_frames', '4', '--quiet'])
    frames = read_gif(tmp_path / 'v_CricketShot_g04_c01_rgb_flow.gif')
    # 224x224 GIF frames decoded at a short side of 256: 3 flows.
    assert len(frames) == 3
    assert frames[0].shape == (256 + TIMELINE_HEIGHT, 2 * 256 + SEPARATOR,
                               3)
    # The players move: some flow is shown.
    assert frames[1][:256, 256 + SEPARATOR:].max() > 100


@pytest.fixture(scope='module')
def damaged_models(models, tmp_path_factory):
    return write_damaged_copies(models['rgb_a'],
                                tmp_path_factory.mktemp('damaged'),
                                'mixed_5c/branch1/conv/W')


@pytest.mark.parametrize('kind, says', [
    ('bad_crc', 'is damaged'), ('truncated', 'is truncated or damaged'),
    ('missing', 'lacks the array mixed_5c/branch1/conv/W'),
    ('text', 'is not an .npz file')])
def test_a_damaged_model_is_one_line(damaged_models, tmp_path, kind, says):
    """Each was a traceback of 44-47 lines, or numpy's words."""
    result = run_script('visualize.py', 'filters', '--model',
                        damaged_models[kind], '--out', tmp_path / 'pictures')
    assert result.returncode == 1
    line, = result.stderr.strip().splitlines()
    assert line.startswith('visualize: {} {}'.format(damaged_models[kind],
                                                      says))
    assert 'give another model' in line and 'pickle' not in line
    assert not os.path.exists(str(tmp_path / 'pictures'))


def test_two_models_of_one_name_keep_their_pictures(visualize, models,
                                                     tmp_path):
    """Every trained model is model_final.npz: the pictures of two used to
    have one name, the second overwriting the first."""
    runs = []
    for run, model in (('run_a', models['rgb_a']), ('run_b', models['rgb_b'])):
        os.makedirs(str(tmp_path / run))
        runs.append(str(tmp_path / run / 'model_final.npz'))
        shutil.copy(model, runs[-1])
        visualize(['filters', '--model', runs[-1], '--out',
                   str(tmp_path / 'pictures'), '--quiet'])
    names = sorted(os.listdir(str(tmp_path / 'pictures')))
    assert len(names) == 4 and all(
        name.startswith('model_final-') for name in names)
    assert label(runs[0]) != label(runs[1])
    for run in runs:
        assert label(run) + '_conv3d_1a_7x7.gif' in names


def test_each_video_has_its_own_wheel_legend(tmp_path):
    """The legend's rim is the video's own speed: a shared flow_wheel.png
    was overwritten by the next video's, of another scale."""
    rng = numpy.random.default_rng(0)
    legends = []
    for name, speed in (('slow', 1), ('fast', 4)):
        frames, flow = moving_bar(4, 24, 40, 1, rng)
        _, legend_path = write_flow_pictures(
            list(frames), flow * speed, str(tmp_path), name, 40)
        assert os.path.basename(legend_path) == name + '_flow_wheel.png'
        legends.append(read_png(legend_path))
    assert legends[0].shape == legends[1].shape
    # The wheels are alike; the speeds written at their rims differ.
    assert not numpy.array_equal(legends[0], legends[1])
