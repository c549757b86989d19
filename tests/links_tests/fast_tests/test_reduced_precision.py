"""The fast path in float16, its fused operations, and their CuPy kernels.

On numpy, float16 runs the same code as on a GPU (float16 storage, products
accumulated in float32, bias and ReLU in float32): its error against float32
here is the error the GPU's is held to. The ``gpu`` tests compare each CuPy
kernel with its array version and the GPU's results with the CPU's; they
skip without CuPy and a GPU.
"""

import os

import chainer
import numpy
import pytest

from chainercv_i3d.links.fast import check_dtype
from chainercv_i3d.links.fast import DTYPES
from chainercv_i3d.links.fast import FastEngine
from chainercv_i3d.links.fast import cuda_kernels as gpu_kernels
from chainercv_i3d.links import I3D
from chainercv_i3d.links.fast import winograd
from chainercv_i3d.utils.sample_clip import read_sample_clip

# float16 against float32 on the real checkpoint and DeepMind's cricket
# clip: measured 0.0141 (max |logit| 17.64, the same top-5 in the same
# order) with numpy; stated with a margin of 3.5x.
CRICKET_FLOAT16_LOGIT_TOLERANCE = 0.05
# float16 against float32 at mixed_5c, random weights, relative to the
# largest activation: measured 1.1e-3 to 1.5e-3 over three seeds.
RANDOM_FLOAT16_TOLERANCE = 5e-3


@pytest.mark.parametrize('dtype', ['float32', numpy.float16, 'f2'])
def test_known_dtypes_are_accepted(dtype):
    assert check_dtype(dtype).name in DTYPES


@pytest.mark.parametrize('dtype', ['float64', 'bfloat16', 'int8', None,
                                   'half precision'])
def test_unknown_dtypes_are_refused(dtype):
    with pytest.raises(ValueError, match='float32 or float16, not'):
        check_dtype(dtype)


def test_an_unknown_dtype_is_refused_by_the_engine():
    model = I3D(n_class=3)
    with pytest.raises(ValueError, match='float32 or float16'):
        model.fast.dtype = 'float64'
    assert model.fast.dtype == numpy.float32


def test_reduced_precision_never_passes_silently_through_chainer():
    model = I3D(n_class=3, fast_inference=False)
    model.fast.dtype = 'float16'
    x = numpy.zeros((1, 3, 9, 193, 193), numpy.float32)
    with chainer.using_config('train', False), \
            chainer.no_backprop_mode(), \
            pytest.raises(ValueError, match='computes in float32'):
        model(x)
    model.fast.dtype = 'float32'
    assert model.fast.dtype == numpy.float32


@pytest.fixture(scope='module')
def random_model():
    numpy.random.seed(0)
    return I3D(n_class=5)


@pytest.fixture(scope='module')
def small_clip():
    return numpy.random.RandomState(1).uniform(
        -1, 1, (1, 3, 16, 112, 112)).astype(numpy.float32)


def test_float16_stays_close_to_float32(random_model, small_clip):
    out = {dtype: FastEngine(dtype).forward(
        random_model, small_clip, ('mixed_5c',))['mixed_5c']
        for dtype in ('float32', 'float16')}
    assert out['float16'].dtype == numpy.float32  # outputs are float32
    error = numpy.abs(out['float16'] - out['float32']).max() \
        / numpy.abs(out['float32']).max()
    assert error < RANDOM_FLOAT16_TOLERANCE
    assert error > 1e-5  # it did compute in float16


def test_the_model_engine_selects_the_dtype(random_model, small_clip):
    x = small_clip[:, :, :9, :32, :32]
    random_model.fast.dtype = 'float16'
    try:
        random_model.pick = 'mixed_3b'
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            by_attribute = random_model(x).array
    finally:
        random_model.fast.dtype = 'float32'
        random_model.pick = 'logits'
    explicit = FastEngine('float16').forward(random_model, x, ('mixed_3b',))
    numpy.testing.assert_array_equal(by_attribute, explicit['mixed_3b'])


def test_weights_are_folded_again_for_another_dtype(random_model):
    engine = FastEngine('float32')
    single = engine.folded(random_model)
    engine.dtype = 'float16'
    half = engine.folded(random_model)
    assert half is not single
    assert engine.folded(random_model) is half
    unit = half['conv3d_2c_3x3']  # Winograd
    assert unit.winograd and unit.weight.dtype == numpy.float16
    assert unit.bias.dtype == numpy.float32
    assert half['mixed_3b'].weight.dtype == numpy.float16


def test_float16_products_accumulate_in_float32():
    rng = numpy.random.RandomState(2)
    a = rng.normal(0, 1, (7, 300)).astype(numpy.float16)
    b = rng.normal(0, 1, (300, 5)).astype(numpy.float16)
    expected = (a.astype(numpy.float64) @ b.astype(numpy.float64)).astype(
        numpy.float16)
    product = gpu_kernels.matmul(a, b)
    assert product.dtype == numpy.float16
    # Rounded once: within one float16 ulp of the exact product.
    ulp = numpy.spacing(numpy.abs(expected))
    assert (numpy.abs(product.astype(numpy.float64) - expected) <= ulp).all()
    out = numpy.full((7, 8), 3, numpy.float16)
    gpu_kernels.matmul(a, b, out=out[:, 1:6])
    numpy.testing.assert_array_equal(out[:, 1:6], product)
    assert (out[:, 0] == 3).all() and (out[:, 6:] == 3).all()


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float16])
def test_bias_relu_array_rounds_once(dtype):
    rng = numpy.random.RandomState(3)
    product = rng.normal(0, 1, (4, 6, 5)).astype(dtype)
    bias = rng.normal(0, 1, 5).astype(numpy.float32)
    expected = numpy.maximum(product.astype(numpy.float32) + bias, 0).astype(
        dtype)
    out = numpy.full((4, 6, 9), 7, dtype)
    gpu_kernels.bias_relu_array(product, bias, out[..., 2:7])
    numpy.testing.assert_array_equal(out[..., 2:7], expected)
    assert (out[..., :2] == 7).all() and (out[..., 7:] == 7).all()
    gpu_kernels.bias_relu_array(product, bias, product)  # in place
    numpy.testing.assert_array_equal(product, expected)


def direct_input_tiles(frames, out_t, tiles_h, tiles_w):
    """B^T d B of every tile and time tap, by definition, in float64."""
    b_t = winograd.B_T
    c = frames.shape[3]
    stacked = numpy.empty((16, out_t, tiles_h, tiles_w, 3, c))
    for t in range(out_t):
        for dt in range(3):
            for th in range(tiles_h):
                for tw in range(tiles_w):
                    d = frames[t + dt, 2 * th:2 * th + 4, 2 * tw:2 * tw + 4]
                    v = numpy.einsum('ik,klc,jl->ijc', b_t, d, b_t)
                    stacked[:, t, th, tw, dt] = v.reshape(16, c)
    return stacked.reshape(16, out_t * tiles_h * tiles_w, 3 * c)


def test_the_input_transform_array_version_is_b_t_d_b():
    rng = numpy.random.RandomState(4)
    out_t, tiles_h, tiles_w, c = 3, 2, 3, 5
    frames = rng.normal(0, 1, (out_t + 2, 2 * tiles_h + 2, 2 * tiles_w + 2,
                               c)).astype(numpy.float32)
    v = numpy.empty((16, out_t + 2, tiles_h * tiles_w, c), numpy.float32)
    winograd.input_transform(frames, tiles_h, tiles_w, v)
    stacked = winograd.stack_time_taps(v, out_t)
    numpy.testing.assert_allclose(
        stacked, direct_input_tiles(frames, out_t, tiles_h, tiles_w),
        rtol=1e-6, atol=1e-6)


def test_the_output_transform_array_version_is_a_t_m_a():
    rng = numpy.random.RandomState(5)
    out_t, h, w, o = 2, 3, 5, 4  # odd sizes: cropped tiles
    tiles_h, tiles_w = 2, 3
    m = rng.normal(0, 1, (16, out_t * tiles_h * tiles_w, o)).astype(
        numpy.float32)
    y = numpy.empty((out_t, h, w, o), numpy.float32)
    winograd.output_transform(m, out_t, tiles_h, tiles_w, y)
    tiles = m.reshape(4, 4, out_t, tiles_h, tiles_w, o)
    full = numpy.einsum('ak,kltpqo,bl->tpaqbo', winograd.A_T, tiles,
                        winograd.A_T).reshape(out_t, 2 * tiles_h,
                                              2 * tiles_w, o)
    numpy.testing.assert_allclose(y, full[:, :h, :w], rtol=1e-6, atol=1e-6)


@pytest.mark.slow  # the real checkpoint, twice through the fast path
def test_float16_on_the_cricket_clip(tfhub_cache, shared_i3d,
                                     fidelity_report):
    model = I3D(pretrained_model=os.path.join(
        str(tfhub_cache), 'rgb_tfhub_kinetics400.npz'))
    clip = read_sample_clip(os.path.join(
        shared_i3d, 'samples', 'v_CricketShot_g04_c01_rgb.gif'))
    logits = {dtype: FastEngine(dtype).forward(
        model, clip, ('logits',))['logits'][0]
        for dtype in ('float32', 'float16')}
    error = numpy.abs(logits['float16'] - logits['float32']).max()
    fidelity_report('fast path float16 vs float32 (numpy), cricket clip: '
                    'max |logit difference| {:.2e} (tolerance {})'.format(
                        error, CRICKET_FLOAT16_LOGIT_TOLERANCE))
    assert error < CRICKET_FLOAT16_LOGIT_TOLERANCE
    assert list(numpy.argsort(-logits['float16'])[:5]) == list(
        numpy.argsort(-logits['float32'])[:5])


# GPU: each kernel against its array version, and the GPU path against the
# CPU's.

@pytest.mark.gpu
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float16])
def test_bias_relu_kernel_equals_its_array_version(cupy, dtype):
    rng = numpy.random.RandomState(6)
    product = rng.normal(0, 1, (3, 4, 7, 6)).astype(dtype)
    bias = rng.normal(0, 1, 6).astype(numpy.float32)
    expected = numpy.full((3, 4, 7, 10), 7, dtype)
    gpu_kernels.bias_relu_array(product, bias, expected[..., 1:7])
    out = cupy.full((3, 4, 7, 10), 7, dtype)
    gpu_kernels.bias_relu(cupy.asarray(product), cupy.asarray(bias),
                          out[..., 1:7])
    numpy.testing.assert_array_equal(out.get(), expected)


@pytest.mark.gpu
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float16])
def test_winograd_input_kernel_equals_its_array_version(cupy, dtype):
    rng = numpy.random.RandomState(7)
    out_t, tiles_h, tiles_w, c = 3, 4, 3, 6
    frames = rng.normal(0, 1, (out_t + 2, 2 * tiles_h + 2, 2 * tiles_w + 2,
                               c)).astype(dtype)
    v = numpy.empty((16, out_t + 2, tiles_h * tiles_w, c), dtype)
    winograd.input_transform(frames, tiles_h, tiles_w, v)
    expected = winograd.stack_time_taps(v, out_t)
    stacked = gpu_kernels.winograd_input_tiles(
        cupy.asarray(frames), out_t, tiles_h, tiles_w, winograd.B_T)
    if dtype == numpy.float32:  # the same additions in the same order
        numpy.testing.assert_array_equal(stacked.get(), expected)
    else:  # rounded once, numpy after every addition
        numpy.testing.assert_allclose(stacked.get().astype(numpy.float32),
                                      expected.astype(numpy.float32),
                                      rtol=4e-3, atol=4e-3)


@pytest.mark.gpu
@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float16])
def test_winograd_output_kernel_equals_its_array_version(cupy, dtype):
    rng = numpy.random.RandomState(8)
    out_t, h, w, o = 2, 5, 3, 4
    tiles_h, tiles_w = 3, 2
    m = rng.normal(0, 1, (16, out_t * tiles_h * tiles_w, o)).astype(dtype)
    bias = rng.normal(0, 1, o).astype(numpy.float32)
    expected = numpy.full((out_t, h, w, o + 3), 7, dtype)
    winograd.output_transform(m, out_t, tiles_h, tiles_w,
                              expected[..., 1:o + 1])
    gpu_kernels.bias_relu_array(expected[..., 1:o + 1], bias,
                                expected[..., 1:o + 1])
    out = cupy.full(expected.shape, 7, dtype)
    gpu_kernels.winograd_output(cupy.asarray(m), cupy.asarray(bias),
                                out[..., 1:o + 1], winograd.A_T)
    if dtype == numpy.float32:
        numpy.testing.assert_array_equal(out.get(), expected)
    else:
        numpy.testing.assert_allclose(out.get().astype(numpy.float32),
                                      expected.astype(numpy.float32),
                                      rtol=4e-3, atol=4e-3)


@pytest.mark.gpu
@pytest.mark.parametrize('dtype', ['float32', 'float16'])
def test_the_gpu_fast_path_equals_the_cpu_fast_path(cupy, dtype):
    numpy.random.seed(9)
    model = I3D(n_class=5)
    x = numpy.random.RandomState(10).uniform(
        -1, 1, (2, 3, 9, 64, 80)).astype(numpy.float32)
    names = ('conv3d_1a_7x7', 'conv3d_2c_3x3', 'mixed_3c', 'mixed_5c')
    cpu = FastEngine(dtype).forward(model, x, names)
    model.to_device('@cupy:0')
    try:
        gpu = FastEngine(dtype).forward(model, cupy.asarray(x), names)
    finally:
        model.to_cpu()
    tolerance = 1e-5 if dtype == 'float32' else RANDOM_FLOAT16_TOLERANCE
    for name in names:
        expected = cpu[name]
        got = gpu[name].get()
        assert got.dtype == numpy.float32
        assert numpy.abs(got - expected).max() \
            <= tolerance * numpy.abs(expected).max(), name


@pytest.mark.gpu
@pytest.mark.slow
def test_float16_on_the_cricket_clip_on_a_gpu(cupy, tfhub_cache,
                                              shared_i3d, fidelity_report):
    model = I3D(pretrained_model=os.path.join(
        str(tfhub_cache), 'rgb_tfhub_kinetics400.npz'))
    model.to_device('@cupy:0')
    clip = cupy.asarray(read_sample_clip(os.path.join(
        shared_i3d, 'samples', 'v_CricketShot_g04_c01_rgb.gif')))
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        logits = {dtype: FastEngine(dtype).forward(
        model, clip, ('logits',))['logits'][0].get()
            for dtype in ('float32', 'float16')}
    reference = numpy.load(os.path.join(shared_i3d, 'reference',
                                        'cricket_rgb.logits.npy'))[0]
    error = numpy.abs(logits['float16'] - logits['float32']).max()
    fidelity_report('GPU fast path: float32 vs TensorFlow {:.2e}; float16 vs '
                    'float32 {:.2e} (tolerance {})'.format(
                        numpy.abs(logits['float32'] - reference).max(),
                        error, CRICKET_FLOAT16_LOGIT_TOLERANCE))
    assert numpy.abs(logits['float32'] - reference).max() < 5e-5
    assert error < CRICKET_FLOAT16_LOGIT_TOLERANCE
    assert list(numpy.argsort(-logits['float16'])[:5]) == list(
        numpy.argsort(-logits['float32'])[:5])
