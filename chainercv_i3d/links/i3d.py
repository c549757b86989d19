import chainer

from chainercv_i3d.architecture import AVGPOOL_KSIZE
from chainercv_i3d.architecture import HEAD_LAYERS
from chainercv_i3d.architecture import LAYERS
from chainercv_i3d.architecture import max_frame_size
from chainercv_i3d.architecture import min_input_size
from chainercv_i3d.functions.average_pool import AveragePoolPerStep
from chainercv_i3d.functions.tf_same_padding import MaxPool3dSame
from chainercv_i3d.label_names import numbered_label_names
from chainercv_i3d.links.fast.engine import FastEngine
from chainercv_i3d.links.inception_block import InceptionBlock
from chainercv_i3d.links.logits import Logits
from chainercv_i3d.links.logits import Softmax
from chainercv_i3d.links.pickable_sequential_chain import \
    PickableSequentialChain
from chainercv_i3d.links.unit3d import Unit3D
from chainercv_i3d.modality import MODALITY_CHANNELS
from chainercv_i3d.pretrained.npz_weights import load_model_npz
from chainercv_i3d.pretrained.resolve import damaged_file_advice
from chainercv_i3d.pretrained.resolve import resolve_pretrained_model

class I3D(PickableSequentialChain):
    """Inflated 3D ConvNet (Inception-v1 I3D), one stream, as DeepMind's.

    Carreira and Zisserman, "Quo Vadis, Action Recognition? A New Model and
    the Kinetics Dataset", CVPR 2017. Numerically the same function as
    DeepMind's TensorFlow model: TensorFlow's SAME padding computed at run time
    (asymmetric on odd sizes), batch normalization without scale and with
    ``eps = 1e-3``, a 2x7x7 VALID average pool and logits averaged over time.

    Input is ``(N, C, T, H, W)`` float32 in model range: RGB (``C = 3``)
    rescaled to [-1, 1]; optical flow (``C = 2``, x then y) clipped to
    [-20, 20] and divided by 20. Any ``T, H, W`` works up to ``mixed_5c``;
    the head needs at least :func:`min_input_size` ``= (9, 193, 193)`` and
    frames of at most :func:`max_frame_size` ``= 224`` pixels, as DeepMind's.

    Layers (``layer_names``; pick any of them with ``pick``):

    ====================  ===========================================
    name                  output shape for a (N, C, 64, 224, 224) input
    ====================  ===========================================
    ``conv3d_1a_7x7``     (N, 64, 32, 112, 112)
    ``maxpool3d_2a_3x3``  (N, 64, 32, 56, 56)
    ``conv3d_2b_1x1``     (N, 64, 32, 56, 56)
    ``conv3d_2c_3x3``     (N, 192, 32, 56, 56)
    ``maxpool3d_3a_3x3``  (N, 192, 32, 28, 28)
    ``mixed_3b``          (N, 256, 32, 28, 28)
    ``mixed_3c``          (N, 480, 32, 28, 28)
    ``maxpool3d_4a_3x3``  (N, 480, 16, 14, 14)
    ``mixed_4b`` .. 4f    (N, 512 / 512 / 512 / 528 / 832, 16, 14, 14)
    ``maxpool3d_5a_2x2``  (N, 832, 8, 7, 7)
    ``mixed_5b``          (N, 832, 8, 7, 7)
    ``mixed_5c``          (N, 1024, 8, 7, 7)
    ``avgpool``           (N, 1024, 7): one 1024-d feature per time step
    ``logits``            (N, n_class): mean over time of the per-step logits
    ``prob``              (N, n_class): softmax of ``logits``
    ====================  ===========================================

    The default ``pick`` is ``'logits'``. Use test mode for inference
    (``with chainer.using_config('train', False)``): in train mode batch
    normalization uses the batch's statistics and dropout is active.

    Args:
        n_class (int): Number of classes. ``None``: from ``pretrained_model``,
            else 400.
        modality (str): ``'rgb'`` or ``'flow'``. ``None``: from
            ``pretrained_model``, else ``'rgb'``.
        pretrained_model (str): A name of
            :data:`~chainercv_i3d.pretrained.MODELS` (built and cached on
            first use), the path of an ``.npz`` written by
            ``examples/i3d/tfckpt2npz.py``,
            :func:`~chainercv_i3d.pretrained.save_model_npz` or
            ``chainer.serializers.save_npz``, or ``None`` for random weights.
            A ``n_class`` or ``modality`` given explicitly must agree with
            the weights.
        dropout_ratio (float): Drop probability before the logits in train
            mode. DeepMind's ``dropout_keep_prob`` is ``1 - dropout_ratio``.
        initialW (callable): Initializer of the convolution weights when no
            pretrained model is loaded.
        fast_inference (bool): In test mode without backprop, compute with
            the link's fast inference engine, ``fast`` (channels-last, batch
            norm folded, Winograd for the 3x3x3 convolutions, compiled
            kernels on every core of a CPU; the same function, faster and
            with less memory).
            ``False``, or train mode, or backprop enabled, uses the Chainer
            functions (autograd). Settable later as an attribute.

    Attributes:
        preset (chainercv_i3d.presets.Preset): How the weights expect their
            videos to be prepared, with ``label_names`` always set: the
            pretrained name's, the one stored in the ``.npz`` (DeepMind's
            Kinetics protocol and class names for an ``.npz`` without one,
            ``class_<i>`` beyond 400 and 600 classes), or for random weights
            :data:`~chainercv_i3d.presets.DEEPMIND_KINETICS` with
            ``class_<i>`` names. Settable (a fine-tuned head has its own
            names).
        label_names (tuple of str): ``preset.label_names``.
        fast (chainercv_i3d.links.FastEngine): The fast inference engine:
            its compute dtype (``model.fast.dtype = 'float16'`` on a GPU),
            folded weights and kept buffers (``model.fast.forget()`` frees
            them).

    Example:

        >>> model = I3D(pretrained_model='rgb_imagenet_kinetics400.npz')
        >>> with chainer.using_config('train', False), \\
        ...         chainer.no_backprop_mode():
        ...     logits = model(clip)  # clip: (1, 3, 79, 224, 224) in [-1, 1]
        >>> model.pick = 'avgpool'  # features; nothing after avgpool is run
    """

    def __init__(self, n_class=None, modality=None, pretrained_model=None,
                 dropout_ratio=0.5, initialW=None, fast_inference=True):
        super(I3D, self).__init__()
        resolved = self._resolve(pretrained_model, n_class, modality)
        self._set_classes_and_modality(resolved.n_class, resolved.modality)
        with self.init_scope():
            self._add_layers(initialW, dropout_ratio)
        self.pick = 'logits'
        self.fast_inference = fast_inference
        self.fast = FastEngine()
        self.dropout_ratio = dropout_ratio
        self.frozen_upto = None
        self.preset = resolved.preset
        if resolved.path is not None:
            load_model_npz(resolved.path, self,
                           damaged_file_advice(pretrained_model))

    @staticmethod
    def _resolve(pretrained_model, n_class, modality):
        """What the weights imply: ``n_class``, ``modality``, ``preset`` and
        the ``.npz`` ``path`` (None for random weights)."""
        return resolve_pretrained_model(pretrained_model, n_class, modality)

    def _add_layers(self, initialW, dropout_ratio):
        """Adds the layers in their order (inside ``init_scope``)."""
        channels = self.in_channels
        for name, kind, args in LAYERS:
            layer, channels = self._make_layer(kind, args, channels, initialW)
            setattr(self, name, layer)
        self.avgpool = AveragePoolPerStep(AVGPOOL_KSIZE)
        self.logits = Logits(channels, self.n_class, dropout_ratio, initialW)
        self.prob = Softmax()

    def _set_classes_and_modality(self, n_class, modality):
        if modality not in MODALITY_CHANNELS:
            raise ValueError('modality must be one of {}, not {!r}'.format(
                sorted(MODALITY_CHANNELS), modality))
        self.n_class = n_class
        self.modality = modality
        self.in_channels = MODALITY_CHANNELS[modality]

    @property
    def label_names(self):
        """tuple of str: The class names in the order of the logits
        (``preset.label_names``)."""
        return self.preset.label_names

    def replace_head(self, n_class, label_names=None, initialW=None):
        """Replaces the logits layer by a new one for ``n_class`` classes.

        For fine-tuning on another dataset: every other layer keeps its
        weights, and the layer order (``layer_names``) is unchanged.

        Args:
            n_class (int): Classes of the new head.
            label_names (sequence of str): Their names; default
                ``class_<i>``.
            initialW (callable): Initializer of the new weights (default
                Chainer's, as for a model built without weights).

        Raises:
            ValueError: ``n_class`` is not positive, or ``label_names`` has
                another length.
        """
        if not isinstance(n_class, int) or n_class < 1:
            raise ValueError('n_class must be a positive int, not {!r}'.format(
                n_class))
        if label_names is None:
            label_names = numbered_label_names(n_class)
        if len(label_names) != n_class:
            raise ValueError('{} label names for a head of {} classes'.format(
                len(label_names), n_class))
        head = Logits(self.logits.conv.W.shape[1], n_class,
                      self.dropout_ratio, initialW)
        head.to_device(self.device)
        self.replace_layer('logits', head)
        self.n_class = n_class
        self.preset = self.preset.replace(label_names=tuple(label_names))

    def freeze(self, upto):
        """Freezes the layers up to and including ``upto`` (fine-tuning).

        Frozen layers are not updated by an optimizer and run as feature
        extractors even in train mode: running statistics, no dropout, no
        backprop, through the fast path when ``fast_inference`` is set.
        The other layers train as usual. Call it after the optimizer's
        ``setup`` (Chainer keeps the flag in the update rules it creates).

        Args:
            upto (str): A layer name; None unfreezes every layer.

        Raises:
            ValueError: ``upto`` is not a layer name.
        """
        if upto is not None and upto not in self.layer_names:
            raise ValueError('freeze: no layer named {!r}; the layers are: '
                             '{}'.format(upto, ', '.join(self.layer_names)))
        stop = -1 if upto is None else self.layer_names.index(upto)
        for index, name in enumerate(self.layer_names):
            layer = getattr(self, name)
            if isinstance(layer, chainer.Link):
                if index <= stop:
                    layer.disable_update()
                else:
                    layer.enable_update()
        self.frozen_upto = upto

    @staticmethod
    def _make_layer(kind, args, in_channels, initialW):
        if kind == 'unit':
            out_channels, ksize, stride = args
            return Unit3D(in_channels, out_channels, ksize, stride,
                          initialW), out_channels
        if kind == 'pool':
            ksize, stride = args
            return MaxPool3dSame(ksize, stride), in_channels
        block = InceptionBlock(in_channels, args, initialW)
        return block, block.out_channels

    def forward(self, x):
        self._check_input(x)
        if self.fast_inference and not chainer.config.train \
                and not chainer.config.enable_backprop:
            return self._fast_forward(x)
        self._check_chainer_dtype()
        if self.frozen_upto is not None:
            return self._forward_after_frozen(x)
        return super(I3D, self).forward(x)

    def _forward_after_frozen(self, x):
        stop = self.layer_names.index(self.frozen_upto)
        picked = [n for n in self._picked_names()
                  if self.layer_names.index(n) <= stop]
        with chainer.using_config('train', False), \
                chainer.no_backprop_mode():
            if self.fast_inference:
                names = tuple(picked) + (self.frozen_upto,)
                outputs = {name: chainer.Variable(h, requires_grad=False)
                           for name, h in self.fast.forward(
                               self, chainer.as_array(x), names).items()}
                h = outputs[self.frozen_upto]
            else:
                h, outputs = self.run_layers(x, 0, stop)
        if self.last_picked_index() > stop:
            _, later = self.run_layers(h, stop + 1)
            outputs.update(later)
        return self.picked_outputs(outputs)

    def _fast_forward(self, x):
        names = self._picked_names()
        outputs = self.fast.forward(self, chainer.as_array(x), names)
        if self._return_tuple:
            return tuple(chainer.Variable(outputs[n], requires_grad=False)
                         for n in names)
        return chainer.Variable(outputs[names[0]], requires_grad=False)

    def _check_chainer_dtype(self):
        # A reduced precision asked of the engine must not pass silently
        # through the Chainer path, which computes in float32.
        if self.fast.dtype != 'float32':
            raise ValueError(
                'model.fast.dtype is {} but this call runs the Chainer path '
                '(fast_inference off, train mode or backprop), which '
                'computes in float32; set fast_inference=True and use test '
                'mode without backprop, or model.fast.dtype = '
                "'float32'".format(self.fast.dtype.name))

    def _check_input(self, x):
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                'I3D({!r}) takes (N, {}, T, H, W) input, got shape {}'.format(
                    self.modality, self.in_channels, tuple(x.shape)))
        head_start = self.layer_names.index(HEAD_LAYERS[0])
        if self.last_picked_index() < head_start:
            return
        minimum, largest = min_input_size(), max_frame_size()
        if any(n < m for n, m in zip(x.shape[2:], minimum)) \
                or max(x.shape[3:]) > largest:
            raise ValueError(
                'input of T x H x W = {} does not fit {!r}: the 2x7x7 '
                'average pool of the head needs at least {} and frames of at '
                'most {} pixels, as in DeepMind\'s model (pick a layer up to '
                'mixed_5c for other sizes: those take any size)'.format(
                    ' x '.join(map(str, x.shape[2:])), self.pick,
                    ' x '.join(map(str, minimum)), largest))
