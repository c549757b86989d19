"""Classification and features of whole videos with one or two I3D streams."""

import numpy

from chainercv_i3d.architecture import min_input_size
from chainercv_i3d.datasets.video_files import read_video_streams
from chainercv_i3d.flow import flow_backend_beside
from chainercv_i3d.links.fast.engine import check_dtype
from chainercv_i3d.links.streams import load_streams
from chainercv_i3d.links.streams import predict
from chainercv_i3d.scores import final_scores
from chainercv_i3d.scores import fuse_streams
from chainercv_i3d.scores import probabilities
from chainercv_i3d.scores import top_k
from chainercv_i3d.transforms.clip_transform import ClipTransform
from chainercv_i3d.transforms.feature_options import with_clip_arguments
from chainercv_i3d.transforms.feature_windows import feature_windows
from chainercv_i3d.transforms.feature_windows import ZERO_FRAME
from chainercv_i3d.transforms.multi_crop import crop_boxes
from chainercv_i3d.transforms.multi_crop import multi_crop
from chainercv_i3d.transforms.model_range import scale_to_model_range
from chainercv_i3d.utils.device import select_device
from chainercv_i3d.utils.sample_clip import read_sample_clip

ENDPOINTS = ('avgpool', 'mixed_5c', 'logits')


def clip_starts(n_frames, clip_frames, clip_stride):
    """Start frames of the clips of a video (at least one)."""
    return [int(w[0]) for w in feature_windows(n_frames, clip_frames,
                                               clip_stride)]


class I3DPredictor(object):
    """Runs I3D streams on video files as the models' preset prescribes.

    A video is decoded, resampled and resized as the models' preset says
    (DeepMind's Kinetics weights: 25 fps, short side 256) and
    center-cropped (224x224); the RGB stream gets it scaled to the model
    range, the flow stream optical flow computed on the fly (minutes per
    10 s of video on a CPU core with TV-L1). Two streams are fused by
    summing their logits. Models run in test mode without backprop; classes
    are named by the models' own label names.

    Args:
        rgb_model (str or I3D): A pretrained-model name, an ``.npz``, a
            link, or ``None``.
        flow_model (str or I3D): The same for the flow stream.
        flow_backend (str): Name of the optical-flow backend; one that runs
            on GPUs (``'tvl1_xp'``) runs on the predictor's device
            (:func:`~chainercv_i3d.flow.flow_backend_beside`).
        device (chainer.backend.Device or str): Where to run: a device, or
            a spec as ``--device`` takes it (``'cpu'``, ``'gpu'``,
            ``'auto'``, ``'@cupy:0'``); ``None``: the CPU.
        dtype (str): The compute dtype of the fast inference path,
            ``'float32'`` or ``'float16'`` (weights and activations in
            float16, products accumulated in float32: for GPUs; on a CPU it
            is slower than float32). Set on the models (links given are
            changed too). Outputs are float32 either way.

    Raises:
        ValueError: An unknown dtype, or float16 for a model whose
            ``fast_inference`` is off.

    Example:

        >>> predictor = I3DPredictor('rgb_tfhub_kinetics400')
        >>> rows, logits = predictor.classify('video.mp4', top_k=5)
        >>> features = predictor.features('video.mp4')  # (T', 1024)
    """

    def __init__(self, rgb_model=None, flow_model=None, flow_backend='tvl1',
                 device=None, dtype='float32'):
        check_dtype(dtype)  # before the models load
        self.device = select_device(device or 'cpu')
        self.models = load_streams(rgb_model, flow_model, self.device)
        for name, model in self.models.items():
            if check_dtype(dtype) != numpy.float32 \
                    and not model.fast_inference:
                raise ValueError(
                    '{} runs on the fast inference path only, and the {} '
                    'model has fast_inference=False (its Chainer path '
                    'computes in float32)'.format(dtype, name))
            model.fast.dtype = dtype
        self.dtype = dtype
        first = next(iter(self.models.values()))
        self.n_class = first.n_class
        self.preset = first.preset
        self.label_names = first.label_names
        self.flow_backend = flow_backend_beside(flow_backend, self.device)

    @property
    def streams(self):
        return tuple(self.models)

    def load(self, source, crop_size=None, crops='center',
             flow_progress=None):
        """Reads a video file or a sample ``.npy`` into model inputs.

        Args:
            source (str): A video file, or a ``.npy`` clip in DeepMind's
                sample format ``(1, T, H, W, C)`` already in model range
                (C = 3: RGB, 2: flow).
            crop_size (int): Side of the crops (default the preset's).
            crops (str): ``'center'``, ``'3'``, ``'5'`` or ``'10'``
                (:func:`~chainercv_i3d.transforms.multi_crop.crop_boxes`;
                video files only).
            flow_progress (callable): Given the number of frame pairs,
                returns a progress bar for the flow computed
                (:func:`~chainercv_i3d.datasets.read_video_streams`).

        Returns:
            dict: stream -> ``(C, T, crop, crop)`` float32 in model range;
            ``(n_crops, C, T, crop, crop)`` for crops other than
            ``'center'``.

        Raises:
            ValueError: The file cannot be read, or gives no input for the
                streams of this predictor.
        """
        if str(source).endswith('.npy'):
            if crops != 'center':
                raise ValueError('{} is a sample clip, already cropped: '
                                 'crops must be center'.format(source))
            return self._load_sample(source)
        videos = read_video_streams(source, self.streams, self.preset,
                                    self.flow_backend, flow_progress)
        if crops != 'center':
            return crop_views(videos, self.preset, crops, crop_size)
        center = ClipTransform(self.preset, 'center', crop_size=crop_size)
        return {s: v[0] for s, v in center(
            {s: v[None] for s, v in videos.items()}).items()}

    def _load_sample(self, path):
        clip = read_sample_clip(str(path))[0]
        stream = 'rgb' if clip.shape[0] == 3 else 'flow'
        if stream not in self.models:
            raise ValueError('{} is a {} clip; this predictor has no {} '
                             'model'.format(path, stream, stream))
        if len(self.models) == 2:
            raise ValueError('{} holds one stream; a two-stream predictor '
                             'needs a video file'.format(path))
        return {stream: clip}

    def logits(self, inputs):
        """Logits per stream and fused, for a batch of inputs.

        Args:
            inputs (dict): stream -> ``(N, C, T, H, W)`` or ``(C, T, H, W)``.

        Returns:
            dict: stream -> ``(N, n_class)`` (or ``(n_class,)``) float32,
            plus ``'two_stream'``, the sum, when both streams ran.
        """
        out = {}
        for stream, x in inputs.items():
            single = x.ndim == 4
            out[stream] = self._run(self.models[stream], 'logits',
                                    x[None] if single else x)
            if single:
                out[stream] = out[stream][0]
        return fuse_streams(out)

    def _run(self, model, endpoint, x):
        return predict(model, x, self.device, endpoint)

    def _inputs(self, source):
        return source if isinstance(source, dict) else self.load(source)

    def classify(self, source, top_k=5):
        """The top classes of a video, ranked by the (fused) logits.

        Args:
            source (str or dict): A video file, a sample ``.npy``, or the
                inputs :meth:`load` returns.
            top_k (int): How many classes.

        Returns:
            tuple: ``(rows, logits)``: rows of ``label``, ``name``, ``prob``
            and ``logit``, best first; logits the dict of :meth:`logits`.
        """
        logits = self.logits(self._inputs(source))
        return self.rank(final_scores(logits), top_k), logits

    def rank(self, scores, k):
        """Rows of ``label``, ``name``, ``prob``, ``logit`` for the ``k``
        best classes of one ``(n_class,)`` score vector; ``prob`` is the
        softmax, or for a multi-label model (``preset.multi_label``) the
        sigmoid of each class's score on its own."""
        prob = probabilities(scores, self.preset.multi_label)
        return [{'label': int(i), 'name': self.label_names[i],
                 'prob': float(prob[i]), 'logit': float(scores[i])}
                for i in top_k(scores, k)]

    def features(self, source, endpoint='avgpool', clip_frames=None,
                 clip_stride=None, options=None, return_windows=False):
        """I3D features of a video, the streams concatenated.

        Args:
            source (str or dict): A video file, a sample ``.npy``, or model
                inputs: stream -> ``(C, T, crop, crop)`` (one crop, as
                :meth:`load` returns) or ``(n_crops, C, T, crop, crop)``
                (crops, all run through the network in one batch).
            endpoint (str): ``'avgpool'``, ``'mixed_5c'`` or ``'logits'``.
            clip_frames (int): ``None``: the whole video at once; else
                windows of this many frames (the last frames that do not
                fill a window are left out; a video shorter than a window is
                looped). The same as ``options.window``.
            clip_stride (int): Frames between window starts (default
                ``clip_frames``); ``options.stride``.
            options (FeatureOptions): Windows, alignment, tail, padding and
                crops (:class:`~chainercv_i3d.transforms.feature_options.
                FeatureOptions`; its ``fps`` is for decoding, done before);
                ``clip_frames`` and ``clip_stride``, when given, win.
            return_windows (bool): Also return the frame indices of each
                window (:func:`~chainercv_i3d.transforms.feature_windows.
                feature_windows`).

        Returns:
            numpy.ndarray: float32. Whole video: ``avgpool`` (T', D) with one
            D-dim feature per step (T' = ceil(T / 8) - 1), ``mixed_5c``
            (D, ceil(T / 8), 7, 7), ``logits`` (n_class,). Windows: a
            leading axis of windows, with ``avgpool`` averaged over each
            window's steps: (n_windows, D), (n_windows, D, t, 7, 7),
            (n_windows, n_class). Several crops (5-D inputs, or ``crops``
            other than ``'center'``): a crop axis after the window axis
            (or first, for the whole video). D is 1024 per stream (RGB
            first); two streams' logits are summed. With
            ``return_windows``, also the list of windows.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError('endpoint must be one of {}, not {!r}'.format(
                ', '.join(ENDPOINTS), endpoint))
        options = with_clip_arguments(options, clip_frames, clip_stride)
        if isinstance(source, dict):
            inputs = source
        else:
            inputs = self.load(source, crops=options.crops)
        single = next(iter(inputs.values())).ndim == 4
        if single:
            inputs = {s: x[None] for s, x in inputs.items()}
        n_frames = next(iter(inputs.values())).shape[2]
        windows = feature_windows(n_frames, **options.window_options)
        if options.window is None:
            out = self._features_of(inputs, endpoint, None)
        else:
            if options.tail == 'keep' and endpoint == 'mixed_5c':
                raise ValueError("tail 'keep' gives windows of different "
                                 'lengths: use avgpool or logits with it')
            if options.tail == 'keep' and len(windows) > 1 \
                    and len(windows[-1]) < min_input_size()[0]:
                windows = windows[:-1]  # too short for the head: left out
            out = numpy.stack([self._features_of(
                {s: take_frames(x, w) for s, x in inputs.items()},
                endpoint, len(w)) for w in windows])
        if single:
            out = out[:, 0] if options.window is not None else out[0]
        return (out, windows) if return_windows else out

    def _features_of(self, inputs, endpoint, clip_frames):
        # inputs: stream -> (n_crops, C, T, h, w), one forward per stream.
        per_stream = {s: self._run(self.models[s], endpoint, inputs[s])
                      for s in self.streams}
        if endpoint == 'logits':
            return final_scores(per_stream)
        features = numpy.concatenate([per_stream[s] for s in self.streams],
                                     axis=1)
        if endpoint == 'avgpool':
            # (n_crops, T', D): one feature per time step
            features = features.transpose(0, 2, 1)
            if clip_frames is not None:
                features = features.mean(axis=1)
        return features


def crop_views(videos, preset, crops, crop_size=None):
    """Model inputs of the crops of a crop set.

    Args:
        videos (dict): stream -> ``(C, T, H, W)`` (RGB in [0, 255], flow in
            pixels).
        preset (Preset): Crop size and ranges.
        crops (str): A set of
            :func:`~chainercv_i3d.transforms.multi_crop.crop_boxes`.
        crop_size (int): Overrides ``preset.crop_size``.

    Returns:
        dict: stream -> ``(n_crops, C, T, s, s)`` float32 in model range
        (mirrored crops of flow have x negated).
    """
    height, width = next(iter(videos.values())).shape[-2:]
    boxes = crop_boxes(height, width, crop_size or preset.crop_size, crops)
    return {s: scale_to_model_range(multi_crop(v, boxes, s == 'flow'), s,
                                    preset)
            for s, v in videos.items()}


def take_frames(x, indices):
    """Frames ``indices`` of ``x`` (``(..., C, T, H, W)``) along T, frames
    of zeros where an index is
    :data:`~chainercv_i3d.transforms.feature_windows.ZERO_FRAME`."""
    axis = x.ndim - 3
    zero = indices == ZERO_FRAME
    out = numpy.take(x, numpy.where(zero, 0, indices), axis=axis)
    if zero.any():
        index = [slice(None)] * x.ndim
        index[axis] = zero
        out[tuple(index)] = 0
    return out
