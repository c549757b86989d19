"""A faster inference path for :class:`~chainercv_i3d.links.I3D`.

The same function as the link's Chainer path, computed differently:

* activations are kept channels-last, ``(N, T, H, W, C)``, so that every
  convolution is a matrix product over the channels;
* each batch normalization is folded into its convolution (weights scaled
  by ``1 / sqrt(var + eps)``, a bias added), ReLU applied in place;
* the three 1x1x1 convolutions of an Inception block that read the same
  input are one matrix product;
* a k x k x k convolution is ``kt`` products accumulated over time shifts
  of an im2col over (height, width) only, built for a chunk of output
  frames at a time, so its buffer is ``kh * kw`` times a chunk of the input
  instead of ``kt * kh * kw`` times all of it (Chainer's im2col);
* max pools are separable: a running maximum along one axis at a time.

It runs with numpy or cupy alike (``xp``), without autograd: the link uses it
in test mode without backprop (see ``I3D.fast_inference``). Weights are
folded again at every call, so it never serves stale weights after training
or loading (about 0.05 s on a CPU).
"""

import chainer
import numpy

from chainercv_i3d.links.tf_same_padding import same_padding_nd

# Upper bound of the im2col buffer of one chunk, in elements (256 MiB).
CHUNK_ELEMENTS = 64 * 2 ** 20


def _relu_(x):
    xp = chainer.backend.get_array_module(x)
    return xp.maximum(x, 0, out=x)


class FoldedUnit(object):
    """A Unit3D with its batch normalization folded into the convolution."""

    def __init__(self, unit):
        xp = chainer.backend.get_array_module(unit.conv.W.array)
        bn = unit.bn
        scale = 1 / xp.sqrt(bn.avg_var + bn.eps)
        w = unit.conv.W.array * scale[:, None, None, None, None]
        out_c, in_c, kt, kh, kw = w.shape
        # (kt, kh * kw * in_c, out_c): one matrix per time shift, rows in
        # the order of the (height, width, channel) im2col.
        self.weight = xp.ascontiguousarray(
            w.transpose(2, 3, 4, 1, 0).reshape(kt, kh * kw * in_c, out_c))
        self.bias = bn.beta.array - bn.avg_mean * scale
        self.ksize = unit.ksize
        self.stride = unit.stride
        self.out_channels = out_c

    def __call__(self, x):
        return conv_same(x, self.weight, self.bias, self.ksize, self.stride)


def _pad(x, pads, value):
    xp = chainer.backend.get_array_module(x)
    if not any(b or a for b, a in pads):
        return x
    return xp.pad(x, ((0, 0),) + tuple(pads) + ((0, 0),), mode='constant',
                  constant_values=value)


def conv_same(x, weight, bias, ksize, stride):
    """ReLU of a SAME convolution plus bias, channels-last.

    Args:
        x: ``(N, T, H, W, C)``.
        weight: ``(kt, kh * kw * C, O)`` from :class:`FoldedUnit`.
        bias: ``(O,)``.
        ksize (tuple of int): ``(kt, kh, kw)``.
        stride (tuple of int): ``(st, sh, sw)``.

    Returns:
        ``(N, T', H', W', O)``, ``T' = ceil(T / st)`` and so on.
    """
    xp = chainer.backend.get_array_module(x)
    n, t, h, w, c = x.shape
    out_shape = tuple(-(-size // s) for size, s in zip((t, h, w), stride))
    out_c = weight.shape[2]
    if ksize == (1, 1, 1) and stride == (1, 1, 1):
        y = xp.matmul(x.reshape(-1, c), weight[0])
    else:
        pads = same_padding_nd((t, h, w), ksize, stride)
        x = xp.ascontiguousarray(_pad(x, pads, 0))
        y = xp.empty((n, out_shape[0], out_shape[1] * out_shape[2], out_c),
                     dtype=x.dtype)
        conv = _shifted_conv if stride == (1, 1, 1) else _strided_conv
        for i in range(n):
            conv(x[i], weight, ksize, stride, out_shape, y[i])
    y += bias
    return _relu_(y).reshape((n,) + out_shape + (out_c,))


def _chunks(out_t, elements_per_frame):
    # Output frames per chunk, so that an im2col chunk stays under the cap.
    size = max(1, CHUNK_ELEMENTS // elements_per_frame)
    for t0 in range(0, out_t, size):
        yield t0, min(t0 + size, out_t)


def _shifted_conv(x, weight, ksize, stride, out_shape, y):
    """Stride 1: an im2col over (height, width), kt products accumulated
    over time shifts. ``x`` (Tp, Hp, Wp, C) padded, ``y`` (T, H * W, O)."""
    xp = chainer.backend.get_array_module(x)
    kt, kh, kw = ksize
    out_t, out_h, out_w = out_shape
    for t0, t1 in _chunks(out_t, out_h * out_w * kh * kw * x.shape[3]):
        cols = _spatial_im2col(x[t0:t1 + kt - 1], kh, kw, out_h, out_w)
        acc = y[t0:t1]
        for dt in range(kt):
            part = cols[dt:dt + t1 - t0]
            product = xp.matmul(part.reshape(-1, part.shape[-1]), weight[dt])
            if dt == 0:
                acc[...] = product.reshape(acc.shape)
            else:
                acc += product.reshape(acc.shape)


def _spatial_im2col(frames, kh, kw, out_h, out_w):
    """(T, Hp, Wp, C) -> (T, out_h * out_w, kh * kw * C), stride 1."""
    xp = chainer.backend.get_array_module(frames)
    t, _, _, c = frames.shape
    cols = xp.empty((t, out_h, out_w, kh, kw, c), dtype=frames.dtype)
    for dh in range(kh):
        for dw in range(kw):
            cols[:, :, :, dh, dw] = frames[:, dh:dh + out_h, dw:dw + out_w]
    return cols.reshape(t, out_h * out_w, kh * kw * c)


def _strided_conv(x, weight, ksize, stride, out_shape, y):
    """A strided convolution (the stem: 7x7x7, stride 2, 3 or 2 channels).

    With so few channels the full im2col (K = kt * kh * kw * C = 1029) is
    small per output frame and makes one well-shaped product per chunk. It
    is copied from a strided view of the contiguous padded input: for an
    output position and a (dt, dh) tap, the kw * C values are contiguous.
    """
    xp = chainer.backend.get_array_module(x)
    kt, kh, kw = ksize
    st, sh, sw = stride
    out_t, out_h, out_w = out_shape
    _, hp, wp, c = x.shape
    e = x.itemsize
    view = xp.lib.stride_tricks.as_strided(
        x, shape=(out_t, out_h, out_w, kt, kh, kw * c),
        strides=(st * hp * wp * c * e, sh * wp * c * e, sw * c * e,
                 hp * wp * c * e, wp * c * e, e))
    weight = weight.reshape(-1, weight.shape[2])  # rows (dt, dh, dw, c)
    for t0, t1 in _chunks(out_t, out_h * out_w * weight.shape[0]):
        cols = xp.ascontiguousarray(view[t0:t1]).reshape(-1, weight.shape[0])
        y[t0:t1] = xp.matmul(cols, weight).reshape(t1 - t0, out_h * out_w, -1)


def max_pool_same(x, ksize, stride):
    """TensorFlow's SAME max pool, channels-last, one axis at a time."""
    xp = chainer.backend.get_array_module(x)
    pads = same_padding_nd(x.shape[1:4], ksize, stride)
    x = _pad(x, pads, -numpy.inf)
    for axis, (k, s) in enumerate(zip(ksize, stride), start=1):
        out = -(-(x.shape[axis] - k + 1) // s)
        y = _window(x, axis, 0, out, s).copy()
        for d in range(1, k):
            xp.maximum(y, _window(x, axis, d, out, s), out=y)
        x = y
    return x


def _window(x, axis, offset, out, stride):
    # The elements at offset + i * stride, i < out, along axis.
    index = [slice(None)] * x.ndim
    index[axis] = slice(offset, offset + (out - 1) * stride + 1, stride)
    return x[tuple(index)]


class FastInception(object):
    """An InceptionBlock with its three 1x1x1 input convolutions merged."""

    def __init__(self, block):
        xp = chainer.backend.get_array_module(block.branch0.conv.W.array)
        units = [FoldedUnit(block.branch0), FoldedUnit(block.branch1_reduce),
                 FoldedUnit(block.branch2_reduce)]
        self.split = numpy.cumsum([u.out_channels for u in units])[:-1]
        self.weight = xp.concatenate([u.weight for u in units], axis=2)
        self.bias = xp.concatenate([u.bias for u in units])
        self.branch1 = FoldedUnit(block.branch1)
        self.branch2 = FoldedUnit(block.branch2)
        self.branch3 = FoldedUnit(block.branch3)

    def __call__(self, x):
        xp = chainer.backend.get_array_module(x)
        merged = conv_same(x, self.weight, self.bias, (1, 1, 1), (1, 1, 1))
        b0, b1, b2 = xp.split(merged, self.split, axis=4)
        b1 = self.branch1(xp.ascontiguousarray(b1))
        b2 = self.branch2(xp.ascontiguousarray(b2))
        b3 = self.branch3(max_pool_same(x, (3, 3, 3), (1, 1, 1)))
        return xp.concatenate((b0, b1, b2, b3), axis=4)


def _to_ncthw(name, h):
    xp = chainer.backend.get_array_module(h)
    if h.ndim == 5:
        return xp.ascontiguousarray(h.transpose(0, 4, 1, 2, 3))
    if name == 'avgpool':  # (N, T', C) -> (N, C, T')
        return xp.ascontiguousarray(h.transpose(0, 2, 1))
    return h


def fast_forward(model, x, names):
    """Computes the layers ``names`` of ``model`` on ``x`` (NCTHW).

    Args:
        model (I3D): The link (its current weights are used).
        x: ``(N, C, T, H, W)`` array.
        names (tuple of str): Layers to return, in ``model.layer_names``.

    Returns:
        dict: name -> array in the layout of the link's own outputs.
    """
    from chainercv_i3d.links.inception_block import InceptionBlock
    from chainercv_i3d.links.unit3d import Unit3D
    xp = chainer.backend.get_array_module(x)
    last = max(model.layer_names.index(n) for n in names)
    h = xp.ascontiguousarray(x.transpose(0, 2, 3, 4, 1))
    outputs = {}
    for name in model.layer_names[:last + 1]:
        layer = getattr(model, name)
        if isinstance(layer, Unit3D):
            h = FoldedUnit(layer)(h)
        elif isinstance(layer, InceptionBlock):
            h = FastInception(layer)(h)
        elif name.startswith('maxpool3d'):
            h = max_pool_same(h, layer.keywords['ksize'],
                              layer.keywords['stride'])
        elif name == 'avgpool':
            # 2x7x7 VALID; mixed_5c is exactly 7x7 (the link checks it).
            h = h.mean(axis=(2, 3))
            h = (h[:, :-1] + h[:, 1:]) / 2
        elif name == 'logits':
            conv = layer.conv
            w = conv.W.array.reshape(conv.W.shape[:2]).T
            h = (xp.matmul(h, w) + conv.b.array).mean(axis=1)
        elif name == 'prob':
            e = xp.exp(h - h.max(axis=1, keepdims=True))
            h = e / e.sum(axis=1, keepdims=True)
        else:
            raise ValueError('the fast path cannot compute layer ' + name)
        if name in names:
            outputs[name] = _to_ncthw(name, h)
    return outputs
