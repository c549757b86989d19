"""Every CUDA kernel of the GPU path, and a compile as CuPy 14.2 does it,
with NVRTC alone (no GPU, no driver).

CuPy compiles a kernel when it is first launched, which needs a device. This
module generates the same source without one, through CuPy's own generators
(private API):

* an ``ElementwiseKernel``'s with ``cupy._core._kernel.
  _get_elementwise_kernel_code``, a ``ReductionKernel``'s with ``cupy._core.
  _reduction._ReductionKernel_get_cached_function_code``, each fed the
  argument descriptions (``_ArgInfo``: dtype, ndim, C-contiguity, 32/64-bit
  indexing) and the ``_TypeMap`` that a launch would compute;
* ``RawKernel`` / ``RawModule`` code as written (CuPy prepends no headers).

:func:`compile_cuda` then compiles to a cubin for ``sm_90`` with the options
of ``cupy._core.core.compile_with_cache`` and ``cupy.cuda.compiler.
_compile_with_cache_cuda`` / ``_compile_using_nvrtc_no_warning`` in CuPy 14.2:
``assemble_cupy_compiler_options(options)`` (the bundled CCCL folders,
``--std=c++17`` unless the kernel names a standard, CuPy's include folder,
the CUDA runtime wheel's headers), then ``-ftz=true``, ``-arch=sm_90`` and
``--device-as-default-execution-space`` (``--pch`` is off by default).

Argument descriptions are what a launch has after CuPy's ``_broadcast``
and ``_reduce_dims``: non-``raw`` arrays are reshaped to the fewest axes
their strides allow (all C-contiguous: one axis; a broadcast bias or a
channel slice: two or three), ``raw`` ones keep their ``reduced_view()``
(or their own) shape, and scalars take their parameter's type. Each variant
below says which call it stands for.

Where the kernels come from (chosen to need no device and no patching):

* the project's: its own factories (``cuda_kernels._bias_relu_kernel``,
  ``_winograd_kernel`` with the real ``B_T`` / ``A_T``) and
  ``tvl1_xp_kernels._SOURCE`` / ``_OPTIONS``;
* chainer 7.8.1's N-d generators (``conv_nd_kernel``, the pooling
  ``*_nd_kernel`` classes), called for 3-d;
* chainer's and ChainerMN's inline ``cuda.elementwise`` / ``cuda.reduce`` /
  ``cuda.raw`` literals, read by AST from the installed module's source and
  found by kernel name (:func:`chainer_kernel_literals`): it fails, not
  skips, when a name is no longer there.

:func:`unavailable_reason` says why the check cannot run here (no NVRTC, or
CuPy's private API moved: the reason names CuPy 14.2, which this module was
written for); a compile error is never a skip.
"""

import ast
import collections
import dataclasses
import importlib.util
import re

import chainercv_i3d  # NOQA: patches the environment before chainer loads

import cupy
import numpy

WRITTEN_FOR = '14.2'
ARCH = '90'

F32 = 'float32'
F16 = 'float16'
I32 = 'int32'


# ------------------------------------------------------------ availability

def _private_api():
    """CuPy's private modules this check uses."""
    from cupy._core import _carray
    from cupy._core import _kernel
    from cupy._core import _reduction
    from cupy._core import _scalar
    from cupy._core import core
    from cupy.cuda import compiler
    return dict(_carray=_carray, _kernel=_kernel, _reduction=_reduction,
                _scalar=_scalar, core=core, compiler=compiler)


_NEEDED = (
    ('_kernel', '_ArgInfo'), ('_kernel', '_TypeMap'),
    ('_kernel', '_decide_params_type'),
    ('_kernel', '_get_elementwise_kernel_code'),
    ('_reduction', '_ReductionKernel_get_cached_function_code'),
    ('_scalar', 'CScalar'), ('_carray', 'Indexer'),
    ('core', 'assemble_cupy_compiler_options'),
    ('core', '_cupy_header_list'),
    ('compiler', '_NVRTCProgram'), ('compiler', 'CompileException'),
)


def _api_reason():
    where = 'CuPy {} (this check is written for CuPy {}.x)'.format(
        cupy.__version__, WRITTEN_FOR)
    try:
        api = _private_api()
        missing = ['cupy.{}.{}'.format(
            api[m].__name__.split('cupy.', 1)[1], name)
            for m, name in _NEEDED if not hasattr(api[m], name)]
        if missing:
            return '{}: private API moved: {} not found'.format(
                where, ', '.join(missing))
        # A trivial kernel must come out as CuPy 14.2 writes it.
        code = elementwise_code(
            cupy.ElementwiseKernel('T x', 'T y', 'y = x', 'probe'),
            [Array(F32), Array(F32)])
        if 'CArray<float, 1, 1, 1> _raw_y' not in code:
            return '{}: the elementwise code generator writes other ' \
                'code:\n{}'.format(where, code)
        options = api['core'].assemble_cupy_compiler_options(())
        if '--std=c++17' not in options:
            return '{}: assemble_cupy_compiler_options changed: {}'.format(
                where, options)
    except Exception as e:  # NOQA: anything here means the API moved
        return '{}: private API moved: {}: {}'.format(
            where, type(e).__name__, e)
    return None


def _nvrtc_reason():
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()
    except Exception as e:  # NOQA
        return 'NVRTC cannot be loaded (pip install nvidia-cuda-nvrtc, see ' \
            'constraints/cuda_compile.txt): {}: {}'.format(
                type(e).__name__, e)
    return None


def unavailable_reason():
    """Why kernels cannot be compiled here, or None."""
    return _nvrtc_reason() or _api_reason()


def nvrtc_version():
    from cupy_backends.cuda.libs import nvrtc
    return nvrtc.getVersion()


# ------------------------------------------------------- code generation

@dataclasses.dataclass(frozen=True)
class Array(object):
    """A CuPy array argument as the kernel sees it after ``_reduce_dims``."""
    dtype: str
    ndim: int = 1
    contiguous: bool = True
    index_32: bool = True


class _Scalar(object):
    def __repr__(self):
        return 'SCALAR'


# A Python or numpy scalar argument: CuPy gives it its parameter's type.
SCALAR = _Scalar()

_ARG_KIND_NDARRAY, _ARG_KIND_INDEXER, _ARG_KIND_SCALAR = 1, 2, 3


def _arginfos(params, args, types):
    api = _private_api()
    infos = []
    for p, a, t in zip(params, args, types):
        if a is SCALAR:
            infos.append(api['_kernel']._ArgInfo(
                _ARG_KIND_SCALAR, api['_scalar'].CScalar, numpy.dtype(t), 0,
                True, True))
        else:
            infos.append(api['_kernel']._ArgInfo(
                _ARG_KIND_NDARRAY, cupy.ndarray, numpy.dtype(a.dtype),
                a.ndim, a.contiguous, a.index_32))
    return infos


def _indexer(ndim, index_32):
    api = _private_api()
    return api['_kernel']._ArgInfo(
        _ARG_KIND_INDEXER, api['_carray'].Indexer, None, ndim, True,
        index_32)


def _types(kernel, args):
    """(in_types, out_types, type_map) as a launch decides them."""
    api = _private_api()
    if len(args) != kernel.nin + kernel.nout:
        raise ValueError('{}: {} arguments for {} parameters'.format(
            kernel.name, len(args), kernel.nin + kernel.nout))
    in_types = tuple(None if a is SCALAR else numpy.dtype(a.dtype)
                     for a in args[:kernel.nin])
    out_types = tuple(numpy.dtype(a.dtype) for a in args[kernel.nin:])
    return api['_kernel']._decide_params_type(
        kernel.in_params, kernel.out_params, in_types, out_types)


def _loop_ndim(params, args):
    """The ndim of the launch: that of every non-raw array (CuPy reduces
    them all to the same shape)."""
    ndims = {a.ndim for p, a in zip(params, args)
             if a is not SCALAR and not p.raw}
    if len(ndims) != 1:
        raise ValueError('non-raw arrays of different ndim: {}'.format(args))
    return ndims.pop()


def elementwise_code(kernel, args, index_32=True):
    """The source CuPy 14.2 compiles for ``kernel(*args)``.

    Args:
        kernel (cupy.ElementwiseKernel): The kernel.
        args (list): :class:`Array` or :data:`SCALAR` per input and output.
        index_32 (bool): The indexer's width (False: the loop has more than
            2**31 elements).
    """
    api = _private_api()
    in_types, out_types, type_map = _types(kernel, args)
    params = kernel.in_params + kernel.out_params
    infos = _arginfos(params, args, in_types + out_types)
    infos.append(_indexer(_loop_ndim(params, args), index_32))
    return api['_kernel']._get_elementwise_kernel_code(
        tuple(infos), type_map, kernel.params, kernel.operation, kernel.name,
        kernel.preamble, **kernel.kwargs)


# _reduction._default_block_size on CUDA; every launch without an optimizer
# context uses it (_get_block_specs(..., -1)).
REDUCTION_BLOCK_SIZE = 512


def reduction_code(kernel, args, in_ndim, out_ndim, index_64=False):
    """The source CuPy 14.2 compiles for a ``ReductionKernel`` launch that
    does not go to CUB (CUB takes only one input and one output).

    Args:
        kernel (cupy.ReductionKernel): The kernel.
        args (list): :class:`Array` or :data:`SCALAR` per input and output.
        in_ndim (int): The reduced input shape's ndim.
        out_ndim (int): The output shape's ndim.
        index_64 (bool): More than 2**31 inputs per output (``IndexT``).
    """
    api = _private_api()
    in_types, out_types, type_map = _types(kernel, args)
    type_map = api['_kernel']._TypeMap(
        type_map._pairs + (('IndexT', 'int64' if index_64 else 'int32'),))
    params = kernel.in_params + kernel.out_params
    infos = _arginfos(params, args, in_types + out_types)
    infos += [_indexer(in_ndim, True), _indexer(out_ndim, True),
              api['_kernel']._ArgInfo(
                  _ARG_KIND_SCALAR, api['_scalar'].CScalar,
                  numpy.dtype(numpy.int32), 0, True, True)]
    return api['_reduction']._ReductionKernel_get_cached_function_code(
        kernel.nin, kernel.nout, kernel._params, tuple(infos), type_map,
        kernel.name, REDUCTION_BLOCK_SIZE, kernel.reduce_type,
        kernel.identity, kernel.map_expr, kernel.reduce_expr,
        kernel.post_map_expr, kernel.preamble, kernel.options)


# ------------------------------------------------------------- compiling

class CompileError(AssertionError):
    """NVRTC rejected a kernel; the message holds NVRTC's log."""

    def __init__(self, label, log, source, options):
        self.label = label
        self.log = log
        self.source = source
        self.options = options
        super().__init__(
            '{}: NVRTC {} could not compile it for sm_{}:\n{}\n'
            'options: {}'.format(label, '.'.join(map(str, nvrtc_version())),
                                 ARCH, log.strip(), ' '.join(options)))


def compiler_options(options):
    """The options CuPy 14.2 passes NVRTC for a kernel compiled with
    ``options`` on a device of compute capability 9.0."""
    core = _private_api()['core']
    return tuple(core.assemble_cupy_compiler_options(tuple(options))) + (
        '-ftz=true', '-arch=sm_' + ARCH,
        '--device-as-default-execution-space')


def compile_cuda(label, source, options=(), prepend_cupy_headers=True,
                 kernel_names=()):
    """Compiles ``source`` to a cubin as ``compile_with_cache`` would.

    Args:
        label (str): Names the kernel in errors.
        source (str): CUDA C++.
        options (tuple of str): The kernel's own options.
        prepend_cupy_headers (bool): True for element-wise and reduction
            kernels, False for RawKernel / RawModule code (as CuPy does).
        kernel_names (iterable of str): ``extern "C"`` kernels the cubin
            must hold (what ``get_function`` would look up).

    Returns:
        bytes: The cubin.

    Raises:
        CompileError: NVRTC failed (its log in the message), or a named
            kernel is not in the cubin.
    """
    api = _private_api()
    if prepend_cupy_headers:
        source = ''.join('#include <{}>\n'.format(h)
                         for h in api['core']._cupy_header_list) + source
    options = compiler_options(options)
    program = api['compiler']._NVRTCProgram(
        source, label + '.cu', method='cubin')
    try:
        cubin, _ = program.compile(options)
    except api['compiler'].CompileException as e:
        raise CompileError(label, e.get_message(), source, options) from None
    missing = [n for n in kernel_names if n.encode() not in cubin]
    if missing:
        raise CompileError(label, 'no kernel {} in the cubin'.format(
            ', '.join(missing)), source, options)
    return cubin


# ---------------------------------------------- kernels in chainer's source

class FormatTemplate(str):
    """A ``'...'.format(...)`` argument: the template, to format."""


_NAME_INDEX = {'elementwise': 3, 'reduce': 6, 'raw': 1}


def _is_cuda(node):
    return (isinstance(node, ast.Name) and node.id == 'cuda') or (
        isinstance(node, ast.Attribute) and node.attr == 'cuda')


def _literal(node):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr == 'format' \
            and isinstance(node.func.value, ast.Constant):
        return FormatTemplate(node.func.value.value)
    return ast.literal_eval(node)


def chainer_kernel_literals(module, name):
    """The arguments of the ``cuda.elementwise`` / ``cuda.reduce`` /
    ``cuda.raw`` call that makes kernel ``name`` in ``module``'s source.

    Returns:
        (kind, args, kwargs): ``kind`` is ``'elementwise'``, ``'reduce'`` or
        ``'raw'``; a ``'...'.format(...)`` argument comes as its
        :class:`FormatTemplate`.

    Raises:
        LookupError: No such call (the source changed).
    """
    path = importlib.util.find_spec(module).origin
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _NAME_INDEX
                and _is_cuda(node.func.value)):
            continue
        index = _NAME_INDEX[node.func.attr]
        if len(node.args) > index \
                and isinstance(node.args[index], ast.Constant) \
                and node.args[index].value == name:
            return (node.func.attr, [_literal(a) for a in node.args],
                    {k.arg: _literal(k.value) for k in node.keywords})
    raise LookupError(
        'no cuda.elementwise/reduce/raw making {!r} in {}'.format(name, path))


def chainer_kernel(module, name, formats=None):
    """The CuPy kernel object ``chainer.backends.cuda`` would make (it passes
    its arguments through to ``cupy.ElementwiseKernel`` /
    ``ReductionKernel`` / ``RawKernel``); ``formats`` fills the
    ``.format`` templates, in order."""
    kind, args, kwargs = chainer_kernel_literals(module, name)
    formats = list(formats or ())
    args = [a.format(*formats.pop(0)) if isinstance(a, FormatTemplate) else a
            for a in args]
    if formats:
        raise ValueError('unused formats {}'.format(formats))
    make = {'elementwise': cupy.ElementwiseKernel,
            'reduce': cupy.ReductionKernel, 'raw': cupy.RawKernel}[kind]
    return make(*args, **kwargs)


# --------------------------------------------------------------- variants

Source = collections.namedtuple(
    'Source', 'code options prepend_cupy_headers kernel_names')


def _elementwise(kernel, args, index_32=True):
    return Source(elementwise_code(kernel, args, index_32),
                  kernel.kwargs.get('options', ()), True, (kernel.name,))


@dataclasses.dataclass(frozen=True)
class Variant(object):
    """One kernel as one launch compiles it."""
    id: str
    build: object  # () -> Source; called by the test, not at collection

    def compile(self):
        source = self.build()
        return compile_cuda(self.id, source.code, source.options,
                            source.prepend_cupy_headers,
                            source.kernel_names)


def _project_variants():
    from chainercv_i3d.functions.winograd_f23 import A_T
    from chainercv_i3d.functions.winograd_f23 import B_T
    from chainercv_i3d.links.fast import cuda_kernels as ck
    out = []
    for dt in (F32, F16):
        for layout in ('contiguous', 'channel_slice'):
            for idx in (32, 64):
                small = idx == 32

                # bias_relu(product, bias, out): product a C-contiguous
                # (..., O), bias (O,) broadcast (strides 0 but the last),
                # out the same shape, C-contiguous or a channel slice of an
                # Inception block's output; the bias's strides leave two
                # axes (rows, O). 64-bit: product and out over 2 GiB.
                def bias_relu(dt=dt, layout=layout, small=small):
                    return _elementwise(ck._bias_relu_kernel(), [
                        Array(dt, 2, True, small), Array(F32, 2, False),
                        Array(dt, 2, layout == 'contiguous', small)], small)
                out.append(Variant(
                    'i3d_bias_relu-{}-{}-idx{}'.format(dt, layout, idx),
                    bias_relu))

                # winograd_output(m, bias, out, ...): m raw (16, tiles, O)
                # contiguous, bias raw (O,), six int64 and a bool, out
                # y[i, t0:t1] (T, H, W, O): one axis when contiguous, two
                # (rows, O) when a channel slice.
                def winograd_output(dt=dt, layout=layout, small=small):
                    kernel = ck._winograd_kernel(
                        'output', ck._c_matrix('A_T', A_T))
                    y = Array(dt, 1, True, small) if layout == 'contiguous' \
                        else Array(dt, 2, False, small)
                    return _elementwise(kernel, [
                        Array(dt, 3, True, small), Array(F32, 1)]
                        + [SCALAR] * 7 + [y], small)
                out.append(Variant(
                    'i3d_winograd_output-{}-{}-idx{}'.format(dt, layout, idx),
                    winograd_output))
        for idx in (32, 64):
            small = idx == 32

            # winograd_input_tiles: frames raw (T + 2, Hp, Wp, C)
            # C-contiguous, six int64, the new stacked output (one axis).
            def winograd_input(dt=dt, small=small):
                kernel = ck._winograd_kernel(
                    'input', ck._c_matrix('B_T', B_T))
                return _elementwise(kernel, [
                    Array(dt, 4, True, small)] + [SCALAR] * 6
                    + [Array(dt, 1, True, small)], small)
            out.append(Variant(
                'i3d_winograd_input-{}-idx{}'.format(dt, idx),
                winograd_input))

    def tvl1():
        from chainercv_i3d.flow import tvl1_xp_kernels
        with open(tvl1_xp_kernels.__file__) as f:
            used = set(re.findall(r"get_function\('(\w+)'\)", f.read()))
        defined = set(re.findall(r'__global__\s+void\s+(\w+)',
                                 tvl1_xp_kernels._SOURCE))
        if not used or not used <= defined:
            raise LookupError('tvl1_xp_kernels calls {} but defines {}'.format(
                sorted(used), sorted(defined)))
        # cupy.RawModule(code=_SOURCE, options=_OPTIONS): no CuPy headers.
        return Source(tvl1_xp_kernels._SOURCE, tvl1_xp_kernels._OPTIONS,
                      False, tuple(sorted(used)))
    out.append(Variant('tvl1_cuda-module', tvl1))
    return out


_POOL_SCALARS = [SCALAR] * 15  # d, out, k, s, p for 3 axes (int32)
_CONV_SCALARS = [SCALAR] * 18  # the same and the dilation


def _nd_kernel(module, cls):
    mod = importlib.import_module(module)
    in_params, out_params, operation, name = getattr(mod, cls).generate(3)
    return cupy.ElementwiseKernel(in_params, out_params, operation, name)


def _chainer_variants():
    conv = 'chainer.utils.conv_nd_kernel'
    maxp = 'chainer.functions.pooling.max_pooling_nd_kernel'
    avgp = 'chainer.functions.pooling.average_pooling_nd_kernel'
    bn = 'chainer.functions.normalization.batch_normalization'
    sce = 'chainer.functions.loss.softmax_cross_entropy'
    out = []

    def add(id_, build):
        out.append(Variant(id_, build))

    for dt in (F32, F16):
        # im2col_nd_gpu: img.reduced_view() raw (a C-contiguous input: one
        # axis), 18 int32, the new col (one axis). Training's im2col of
        # the stem goes past 2 GiB: the 64-bit variant too.
        for idx in (32, 64):
            small = idx == 32
            add('im2col_3d-{}-idx{}'.format(dt, idx),
                lambda dt=dt, small=small: _elementwise(
                    _nd_kernel(conv, 'Im2colNDKernel'),
                    [Array(dt, 1, True, small)] + _CONV_SCALARS
                    + [Array(dt, 1, True, small)], small))
        # col2im_nd_gpu: col.reduced_view() raw. The gradient of a
        # convolution (deconvolution_nd) passes rollaxis(tensordot(...)),
        # (N, C, k..., out...) with N moved first, which reduced_view()
        # leaves as three strided axes; C-contiguous col: one axis.
        for layout, col in (('contiguous', Array(dt, 1)),
                            ('rolled', Array(dt, 3, False))):
            add('col2im_3d-{}-{}-idx32'.format(dt, layout),
                lambda dt=dt, col=col: _elementwise(
                    _nd_kernel(conv, 'Col2imNDKernel'),
                    [col] + _CONV_SCALARS + [Array(dt)]))
        add('col2im_3d-{}-contiguous-idx64'.format(dt),
            lambda dt=dt: _elementwise(
                _nd_kernel(conv, 'Col2imNDKernel'),
                [Array(dt, 1, True, False)] + _CONV_SCALARS
                + [Array(dt, 1, True, False)], False))

        # Pooling: the input (or gy) reduced_view() raw, 15 int32, new
        # outputs; indexes int32.
        add('max_pool_3d_fwd-' + dt, lambda dt=dt: _elementwise(
            _nd_kernel(maxp, 'MaxPoolingNDKernelForward'),
            [Array(dt)] + _POOL_SCALARS + [Array(dt), Array(I32)]))
        add('max_pool_3d_bwd-' + dt, lambda dt=dt: _elementwise(
            _nd_kernel(maxp, 'MaxPoolingNDKernelBackward'),
            [Array(dt), Array(I32)] + _POOL_SCALARS + [Array(dt)]))
        # Double backward (MaxPoolingNDWithIndexes).
        add('max_index_pool_3d_fwd-' + dt, lambda dt=dt: _elementwise(
            _nd_kernel(maxp, 'MaxPoolingNDKernelForwardWithIndexes'),
            [Array(dt)] + _POOL_SCALARS + [Array(I32), Array(dt)]))
        # Its cuDNN variant (CuPy 14 has no cuDNN: not reached; compiled
        # all the same).
        add('max_index1_pool_3d_fwd-' + dt, lambda dt=dt: _elementwise(
            _nd_kernel(maxp, 'MaxPoolingNDKernelForwardWithIndexes1'),
            [Array(dt)] + _POOL_SCALARS + [Array(dt), Array(dt)]))
        # pad_value=0 (F.average_pooling_nd's default, AveragePoolPerStep):
        # coeff is a Python float.
        add('avg_pool_3d_fwd-' + dt, lambda dt=dt: _elementwise(
            _nd_kernel(avgp, 'AveragePoolingNDKernelForward'),
            [Array(dt)] + _POOL_SCALARS + [SCALAR, Array(dt)]))
        add('avg_pool_3d_bwd-' + dt, lambda dt=dt: _elementwise(
            _nd_kernel(avgp, 'AveragePoolingNDKernelBackward'),
            [Array(dt)] + _POOL_SCALARS + [Array(dt)]))

        # relu backward: y C-contiguous; gy C-contiguous, or a channel
        # slice of F.concat's gradient (two axes: N, C * T * H * W).
        add('relu_bwd-{}-contiguous'.format(dt), lambda dt=dt: _elementwise(
            chainer_kernel('chainer.functions.activation.relu', 'relu_bwd'),
            [Array(dt), Array(dt), Array(dt)]))
        add('relu_bwd-{}-channel_slice'.format(dt),
            lambda dt=dt: _elementwise(
                chainer_kernel('chainer.functions.activation.relu',
                               'relu_bwd'),
                [Array(dt, 2), Array(dt, 2, False), Array(dt, 2)]))

        # dropout: x, a float32 uniform array, two scalars.
        add('dropout_fwd-' + dt, lambda dt=dt: _elementwise(
            chainer_kernel('chainer.functions.noise.dropout', 'dropout_fwd'),
            [Array(dt), Array(F32), SCALAR, SCALAR, Array(dt), Array(dt)]))

        # softmax cross entropy; labels int32, the reduction in float32
        # for float16 (_reduction_dtype).
        add('crossent_fwd-' + dt, lambda dt=dt: Source(reduction_code(
            chainer_kernel(sce, 'crossent_fwd'),
            [Array(I32), Array(dt), SCALAR, Array(F32, 0), SCALAR,
             Array(F32, 0)], in_ndim=1, out_ndim=0), (), True,
            ('crossent_fwd',)))
        add('softmax_crossent_no_reduce_fwd-' + dt,
            lambda dt=dt: _elementwise(
                chainer_kernel(sce, 'softmax_crossent_no_reduce_fwd'),
                [Array(I32), Array(dt), SCALAR, SCALAR, Array(dt)]))
        # y (N, C); t[:, None], gloss and coeff broadcast to it.
        add('softmax_crossent_bwd-' + dt, lambda dt=dt: _elementwise(
            chainer_kernel(sce, 'softmax_crossent_bwd'),
            [Array(dt, 2), Array(I32, 2, False), Array(dt, 2, False),
             Array(F32, 2, False), SCALAR, SCALAR, SCALAR, Array(dt, 2)]))
        add('softmax_crossent_weight_bwd-' + dt, lambda dt=dt: _elementwise(
            chainer_kernel(sce, 'softmax_crossent_weight_bwd'),
            [Array(dt, 2), Array(dt), Array(I32, 2, False),
             Array(dt, 2, False), Array(F32, 2, False), SCALAR, SCALAR,
             SCALAR, Array(dt, 2)]))

        # MomentumSGD and WeightDecay on a parameter (C-contiguous).
        add('momentum_sgd-' + dt, lambda dt=dt: _elementwise(
            chainer_kernel('chainer.optimizers.momentum_sgd',
                           'momentum_sgd'),
            [Array(dt), SCALAR, SCALAR, Array(dt), Array(dt)]))
        add('weight_decay-' + dt, lambda dt=dt: _elementwise(
            chainer_kernel('chainer.optimizer_hooks.weight_decay',
                           'weight_decay'),
            [Array(dt), SCALAR, Array(dt)]))

        # pure_nccl's allreduce: '{} x'.format(dtype.name),
        # 'x *= (1.0/{})'.format(self.size), here with 2 ranks.
        add('div_by_size-' + dt, lambda dt=dt: _elementwise(
            chainer_kernel(
                'chainermn.communicators.pure_nccl_communicator',
                'div_by_size', formats=[(dt,), (2,)]),
            [Array(dt)]))

    # Batch normalization: (x dtype, parameter dtype): float32 as the
    # suite trains, float16 with float16 parameters, and float16 with
    # float32 parameters (mixed16). x (N, C, T, H, W) C-contiguous, the
    # per-channel arrays broadcast: three axes (N, C, T * H * W).
    for dt, gt in ((F32, F32), (F16, F16), (F16, F32)):
        it = numpy.promote_types(dt, gt).name
        tag = '{}-{}'.format(dt, gt)
        add('bn_fwd-' + tag, lambda dt=dt, gt=gt: _elementwise(
            chainer_kernel(bn, 'bn_fwd'),
            [Array(dt, 3)] + [Array(gt, 3, False)] * 4 + [Array(dt, 3)]))
        add('bn_bwd-' + tag, lambda dt=dt, gt=gt, it=it: _elementwise(
            chainer_kernel(bn, 'bn_bwd'),
            [Array(dt, 3), Array(it, 3), Array(gt, 3, False),
             Array(it, 3, False), Array(gt, 3, False), Array(gt, 3, False),
             SCALAR, Array(dt, 3)]))
        add('update_mean_var-' + tag, lambda gt=gt, it=it: _elementwise(
            chainer_kernel(bn, 'update_mean_var'),
            [Array(it), Array(it), SCALAR, SCALAR, Array(gt), Array(gt)]))
    return out


VARIANTS = _project_variants() + _chainer_variants()

# ChainerMN's batched pack/unpack RawKernels (chainer.cuda.raw).
MEMORY_UTILITY = 'chainermn.communicators._memory_utility'
BATCHED = {'pack': ('_cupy_batched_pack_params', 'cupy_batched_pack_params'),
           'unpack': ('_cupy_batched_unpack_params',
                      'cupy_batched_unpack_params')}


def compile_raw_kernel(label, kernel):
    """Compiles a ``cupy.RawKernel`` as its first launch would."""
    return compile_cuda(label, kernel.code, kernel.options,
                        prepend_cupy_headers=False,
                        kernel_names=(kernel.name,))
