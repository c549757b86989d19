"""The fast inference engine of a network: its dtype, its folded layers,
and the walk over the layers.

:class:`FastEngine` is what a link's ``fast`` attribute holds
(:class:`~chainercv_i3d.links.I3D` and :class:`~chainercv_i3d.links.TinyI3D`
make one). It owns the compute dtype and the cache of folded layers, and
runs any network of typed layers: :class:`~chainercv_i3d.links.Unit3D`,
:class:`~chainercv_i3d.links.InceptionBlock`,
:class:`~chainercv_i3d.functions.MaxPool3dSame`,
:class:`~chainercv_i3d.functions.AveragePoolPerStep`,
:class:`~chainercv_i3d.functions.SpatialMean`,
:class:`~chainercv_i3d.links.Logits` and
:class:`~chainercv_i3d.links.Softmax`; it refuses any other layer by name.

The compute dtype is float32, or float16 (:data:`DTYPES`): weights and
activations in float16, products accumulated in float32, batch
normalization folded in float32 and the biases kept in float32, the head
(average pool, logits, softmax) in float32; every output is float32. On
numpy float16 is slow (no float16 BLAS) and rounds as the GPU does: it is
there to check the precision. The folded weights are kept between calls
with a copy of the weights and statistics they came from, and folded again
whenever any of those differs (compared exactly, a few milliseconds;
folding takes 0.2 s on a CPU): they are never stale after training,
loading or editing the weights.
"""

import threading

import chainer
import numpy

from chainercv_i3d.functions.average_pool import AveragePoolPerStep
from chainercv_i3d.functions.average_pool import SpatialMean
from chainercv_i3d.functions.tf_same_padding import MaxPool3dSame
from chainercv_i3d.functions.tf_same_padding import same_output_shape
from chainercv_i3d.links.fast.cpu_layout import to_channels_last
from chainercv_i3d.links.fast.forward import FastInception
from chainercv_i3d.links.fast.forward import FoldedUnit
from chainercv_i3d.links.fast.forward import max_pool_same
from chainercv_i3d.links.fast.forward import Workspace
from chainercv_i3d.links.inception_block import InceptionBlock
from chainercv_i3d.links.logits import Logits
from chainercv_i3d.links.logits import Softmax
from chainercv_i3d.links.unit3d import Unit3D
from chainercv_i3d.utils.threads import cpu_chunks

# The compute dtypes of the fast path.
DTYPES = ('float32', 'float16')
# What ``--dtype`` of the example scripts means.
DTYPE_HELP = ('compute dtype of the fast inference path (default float32): '
              'float16 keeps weights and activations in half precision and '
              'accumulates products in float32, for GPUs (on a CPU it is '
              'slower than float32); logits within 0.05 of float32 on '
              "DeepMind's cricket clip")


def check_dtype(dtype):
    """The compute dtype ``dtype`` names, checked.

    Args:
        dtype (str or numpy.dtype): ``'float32'`` or ``'float16'``.

    Returns:
        numpy.dtype

    Raises:
        ValueError: Any other dtype.
    """
    try:
        checked = numpy.dtype(dtype)
    except TypeError:
        checked = None
    if dtype is None or checked is None or checked.name not in DTYPES:
        raise ValueError('the fast path computes in {}, not {!r}'.format(
            ' or '.join(DTYPES), dtype))
    return checked


class FastEngine(object):
    """Runs a network's layers on the fast inference path.

    Args:
        dtype (str or numpy.dtype): The compute dtype, one of
            :data:`DTYPES`.

    Example:

        >>> model = I3D(n_class=400)
        >>> model.fast.dtype = 'float16'   # on a GPU
        >>> with chainer.using_config('train', False), \\
        ...         chainer.no_backprop_mode():
        ...     logits = model(clip)        # computed by model.fast
    """

    def __init__(self, dtype='float32'):
        self.dtype = dtype
        self._cache = None
        self.workspace = Workspace()
        # One forward at a time uses the workspace; another thread's
        # allocates its own arrays.
        self._workspace_lock = threading.Lock()

    def __getstate__(self):
        # A copy (or pickle) of a link gets an engine of the same dtype;
        # folded layers and buffers are made again when needed.
        return {'dtype': self.dtype.name}

    def __setstate__(self, state):
        self.__init__(state['dtype'])

    @property
    def dtype(self):
        """numpy.dtype: The compute dtype; set it with a name or a dtype
        of :data:`DTYPES` (anything else raises ValueError)."""
        return self._dtype

    @dtype.setter
    def dtype(self, dtype):
        self._dtype = check_dtype(dtype)

    def forward(self, model, x, names):
        """Computes the layers ``names`` of ``model`` on ``x`` (NCTHW).

        Args:
            model (PickableSequentialChain): The network (its current
                weights are used), e.g. an I3D.
            x: ``(N, C, T, H, W)`` numpy or cupy array.
            names (tuple of str): Layers to return, in
                ``model.layer_names``.

        Returns:
            dict: name -> float32 array in the layout of the link's own
            outputs.

        Raises:
            ValueError: A layer the engine does not know.
        """
        xp = chainer.backend.get_array_module(x)
        last = max(model.layer_names.index(n) for n in names)
        folded = self.folded(model)
        layers = [folded.get(n, getattr(model, n))
                  for n in model.layer_names[:last + 1]]
        placements = self._reserve_workspace(layers, x)
        try:
            outputs = {}
            with cpu_chunks(xp):
                h = _channels_last(x, self.dtype, None if placements is None
                                   else self.workspace)
                for index, name in enumerate(model.layer_names[:last + 1]):
                    out = scratch = None
                    if placements is not None and index < len(placements):
                        out, scratch = self._place(placements[index])
                    h = fast_layer(name, layers[index], h, out, scratch)
                    if name in names:  # copied out of the workspace
                        outputs[name] = _to_ncthw(h).astype(numpy.float32,
                                                            copy=False)
        finally:
            if placements is not None:
                self._workspace_lock.release()
        return outputs

    def _reserve_workspace(self, layers, x):
        """The placements of :func:`workspace_plan` with the workspace
        reserved for this forward, or None: a GPU, a plan larger than
        ``workspace.max_bytes``, or another thread's forward using it."""
        if chainer.backend.get_array_module(x) is not numpy:
            return None
        size, placements = workspace_plan(layers, x.shape, self.dtype)
        if not self._workspace_lock.acquire(blocking=False):
            return None
        try:
            reserved = self.workspace.reserve(size)
        except BaseException:  # MemoryError: not left held
            self._workspace_lock.release()
            raise
        if not reserved:
            self._workspace_lock.release()
            return None
        return placements

    def _place(self, placement):
        (offset, shape), scratch = placement
        return (self.workspace.array(offset, shape, self.dtype),
                {name: self.workspace.array(o, s, self.dtype)
                 for name, (o, s) in scratch.items()})

    def folded(self, model):
        """``{name: FoldedUnit or FastInception}`` for the convolution
        layers of ``model`` in this engine's dtype, folded again only when a
        weight or statistic, or the dtype, changed."""
        units = [unit for unit in model.links() if isinstance(unit, Unit3D)]
        # Everything folding reads, in a fixed order.
        arrays = [a for unit in units for a in (
            unit.conv.W.array, unit.bn.beta.array, unit.bn.avg_mean,
            unit.bn.avg_var)]
        eps = [unit.bn.eps for unit in units]
        cache = self._cache
        if cache is None or cache['eps'] != eps \
                or cache['dtype'] != self.dtype \
                or not _all_equal(cache['arrays'], arrays):
            layers = {}
            for name in model.layer_names:
                layer = getattr(model, name)
                if isinstance(layer, Unit3D):
                    layers[name] = FoldedUnit(layer, self.dtype)
                elif isinstance(layer, InceptionBlock):
                    layers[name] = FastInception(layer, self.dtype)
            cache = {'arrays': [a.copy() for a in arrays], 'eps': eps,
                     'dtype': self.dtype, 'layers': layers}
            self._cache = cache
        return cache['layers']

    def forget(self):
        """Drops the folded layers (the next forward folds again) and frees
        the workspace's buffers."""
        self._cache = None
        self.workspace.clear()


def _all_equal(saved, current):
    if len(saved) != len(current):
        return False
    # A model moved between devices has arrays of another type.
    if any(type(a) is not type(b) or a.shape != b.shape
           for a, b in zip(saved, current)):
        return False
    if not saved:
        return True
    xp = chainer.backend.get_array_module(saved[0])
    if xp is numpy:
        return all((a == b).all() for a, b in zip(saved, current))
    # On a GPU one answer comes back to the host, not one per array.
    return bool(xp.stack([(a == b).all() for a, b in zip(saved, current)])
                .all())


def _channels_last(x, dtype, workspace):
    """``x`` (N, C, T, H, W) as (N, T, H, W, C) of ``dtype``: on numpy by a
    compiled kernel, at the start of the workspace if one is given; on CuPy
    by the array module."""
    xp = chainer.backend.get_array_module(x)
    if xp is not numpy:
        return xp.ascontiguousarray(x.transpose(0, 2, 3, 4, 1), dtype=dtype)
    n, c, t, h, w = x.shape
    shape = (n, t, h, w, c)
    h_last = numpy.empty(shape, dtype) if workspace is None \
        else workspace.array(0, shape, dtype)
    return to_channels_last(x, h_last)


def _to_ncthw(h):
    xp = chainer.backend.get_array_module(h)
    if h.ndim == 5:
        return xp.ascontiguousarray(h.transpose(0, 4, 1, 2, 3))
    if h.ndim == 3:  # per-step features (N, T', C) -> (N, C, T')
        return xp.ascontiguousarray(h.transpose(0, 2, 1))
    return h


def output_shape(layer, shape):
    """The channels-last output shape of a convolution or max pool of the
    engine (folded) for an input of ``shape``; None for any other layer."""
    if isinstance(layer, (FoldedUnit, FastInception)):
        return layer.output_shape(shape)
    if isinstance(layer, MaxPool3dSame):
        return tuple(shape[:1]) + same_output_shape(
            shape[1:4], layer.stride) + tuple(shape[4:])
    return None


# Arrays in the workspace start on a page.
WORKSPACE_ALIGN = 4096


def workspace_plan(layers, x_shape, dtype):
    """Where a forward through ``layers`` (folded, as
    :meth:`FastEngine.forward` runs them) puts its activations in the
    workspace for a clip of ``x_shape`` (N, C, T, H, W).

    The clip, channels-last, starts the buffer; each layer's output goes to
    the other end from its input, and an Inception block's temporaries just
    after whichever comes first. The buffer is as long as the largest
    input + output + temporaries of one layer.

    Returns:
        tuple: ``(bytes, placements)``, one placement per convolution or
        max pool from the first layer on (the head is not placed):
        ``((offset, shape) of the output, {name: (offset, shape)} of the
        temporaries)``.
    """
    itemsize = numpy.dtype(dtype).itemsize

    def length(shape):
        size = int(numpy.prod(shape)) * itemsize
        return -(-size // WORKSPACE_ALIGN) * WORKSPACE_ALIGN

    n, c, t, h, w = x_shape
    clip = (n, t, h, w, c)
    shape = clip
    steps = []
    for layer in layers:
        out = output_shape(layer, shape)
        if out is None:
            break
        scratch = layer.scratch_shapes(shape) \
            if isinstance(layer, FastInception) else {}
        steps.append((shape, out, scratch))
        shape = out
    total = max([length(clip)] + [
        length(i) + length(o) + sum(length(s) for s in scratch.values())
        for i, o, scratch in steps])
    placements = []
    for index, (i, o, scratch) in enumerate(steps):
        if index % 2 == 0:  # the input at the start, the output at the end
            out_offset, cursor = total - length(o), length(i)
        else:
            out_offset, cursor = 0, length(o)
        offsets = {}
        for name, s in sorted(scratch.items()):
            offsets[name] = (cursor, s)
            cursor += length(s)
        placements.append(((out_offset, o), offsets))
    return total, placements


def fast_layer(name, layer, h, out=None, scratch=None):
    """One layer on channels-last ``h``, as :meth:`FastEngine.forward` runs
    it (inside its :func:`~chainercv_i3d.utils.threads.cpu_chunks`);
    ``layer`` is folded for the convolutions (:meth:`FastEngine.folded`).
    The convolutions and max pools write to ``out`` if given, an Inception
    block's temporaries to ``scratch``. The head computes in float32
    whatever the dtype."""
    xp = chainer.backend.get_array_module(h)
    if isinstance(layer, FoldedUnit):
        return layer(h, out)
    if isinstance(layer, FastInception):
        return layer(h, out, scratch)
    if isinstance(layer, MaxPool3dSame):
        return max_pool_same(h, layer.ksize, layer.stride, out)
    if isinstance(layer, AveragePoolPerStep):
        return _average_pool_per_step(h, layer.ksize)
    if isinstance(layer, SpatialMean):
        return h.astype(numpy.float32, copy=False).mean(axis=(2, 3))
    if isinstance(layer, Logits):
        conv = layer.conv
        w = conv.W.array.reshape(conv.W.shape[:2]).T
        return (xp.matmul(h, w) + conv.b.array).mean(axis=1)
    if isinstance(layer, Softmax):
        e = xp.exp(h - h.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError('the fast path cannot compute layer {} ({}); turn '
                     'fast_inference off for this network'.format(
                         name, type(layer).__name__))


def _average_pool_per_step(h, ksize):
    """VALID average pool of ``ksize``, stride 1, on ``(N, T, kh, kw, C)``:
    ``(N, T - kt + 1, C)``. The frames must be exactly ``kh x kw`` (the
    link checks its input for that)."""
    kt, kh, kw = ksize
    if h.shape[2:4] != (kh, kw):
        raise ValueError('the {}x{}x{} average pool needs {}x{} frames, got '
                         '{}x{}'.format(kt, kh, kw, kh, kw, *h.shape[2:4]))
    h = h.astype(numpy.float32, copy=False).mean(axis=(2, 3))
    steps = h.shape[1] - kt + 1
    pooled = h[:, :steps].copy()
    for dt in range(1, kt):
        pooled += h[:, dt:dt + steps]
    return pooled / kt
