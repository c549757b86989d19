"""Classification and features of whole videos with one or two I3D streams."""

import chainer
import numpy

from chainercv_i3d.links.i3d import I3D
from chainercv_i3d.modality import STREAMS
from chainercv_i3d.transforms.model_range import to_model_range

ENDPOINTS = ('avgpool', 'mixed_5c', 'logits')


def label_names_for(n_class):
    """The Kinetics class names for 400 or 600 classes, else ``class_<i>``."""
    from chainercv_i3d.datasets import kinetics400_label_names
    from chainercv_i3d.datasets import kinetics600_label_names
    known = {400: kinetics400_label_names, 600: kinetics600_label_names}
    return known.get(n_class) or tuple(
        'class_{}'.format(i) for i in range(n_class))


def softmax(logits):
    e = numpy.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def clip_starts(n_frames, clip_frames, clip_stride):
    """Start frames of the clips of a video (at least one)."""
    last = max(n_frames - clip_frames, 0)
    return list(range(0, last + 1, clip_stride))


class I3DPredictor(object):
    """Runs I3D streams on video files the way DeepMind preprocessed them.

    A video is decoded, resampled to 25 fps, resized to a short side of 256
    and center-cropped to 224x224; the RGB stream gets it rescaled to
    [-1, 1], the flow stream TV-L1 flow between consecutive frames clipped
    to [-20, 20] and divided by 20 (computed on the fly: minutes per 10 s of
    video on a CPU core). Two streams are fused by summing their logits.
    Models run in test mode without backprop.

    Args:
        rgb_model (str or I3D): A pretrained-model name, an ``.npz``, a
            link, or ``None``.
        flow_model (str or I3D): The same for the flow stream.
        flow_backend (str): Name of the optical-flow backend.
        device (str): A Chainer device specifier (``'@numpy'``,
            ``'@cupy:0'``), or ``None`` for the CPU.

    Example:

        >>> predictor = I3DPredictor('rgb_tfhub_kinetics400')
        >>> for row in predictor.classify('video.mp4', top_k=5):
        ...     print(row['prob'], row['name'])
        >>> features = predictor.features('video.mp4')  # (T', 1024)
    """

    def __init__(self, rgb_model=None, flow_model=None, flow_backend='tvl1',
                 device=None):
        self.models = {}
        for stream, model in (('rgb', rgb_model), ('flow', flow_model)):
            if model is not None:
                self.models[stream] = model if isinstance(model, I3D) \
                    else I3D(modality=stream, pretrained_model=model)
        if not self.models:
            raise ValueError('give an RGB model, a flow model, or both')
        n_classes = {m.n_class for m in self.models.values()}
        if len(n_classes) != 1:
            raise ValueError('the two streams have different class counts '
                             '({}); they cannot be fused'.format(
                                 sorted(n_classes)))
        self.n_class = n_classes.pop()
        self.label_names = label_names_for(self.n_class)
        self.flow_backend = flow_backend
        self.device = chainer.get_device(device or '@numpy')
        for model in self.models.values():
            model.to_device(self.device)

    @property
    def streams(self):
        return tuple(s for s in STREAMS if s in self.models)

    def load(self, source, crop_size=224):
        """Reads a video file or a sample ``.npy`` into model inputs.

        Args:
            source (str): A video file, or a ``.npy`` clip in DeepMind's
                sample format ``(1, T, H, W, C)`` already in model range
                (C = 3: RGB, 2: flow).
            crop_size (int): Side of the center crop.

        Returns:
            dict: stream -> ``(C, T, crop, crop)`` float32 in model range.

        Raises:
            ValueError: The file cannot be read, or gives no input for the
                streams of this predictor.
        """
        if str(source).endswith('.npy'):
            return self._load_sample(source)
        from chainercv_i3d.datasets.precompute import decode_and_resample
        frames, _ = decode_and_resample(str(source), 25.0, 256)
        video = numpy.stack(frames).transpose(3, 0, 1, 2)
        clip = {'rgb': video}
        if 'flow' in self.models:
            # On the whole frame, then cropped, as DeepMind's preprocessing.
            clip['flow'] = self._flow(frames)
        return {s: to_model_range(clip[s], s, crop_size)
                for s in self.streams}

    def _flow(self, frames):
        import cv2
        from chainercv_i3d.flow import get_flow_backend
        if len(frames) < 2:
            raise ValueError('a video of one frame has no optical flow')
        backend = get_flow_backend(self.flow_backend)
        flows = backend.compute_video(numpy.stack(
            [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]))
        # T - 1 flows; the last frame reuses the last flow, as the
        # precomputed dataset does.
        flows = numpy.concatenate((flows, flows[-1:]))
        return flows.transpose(3, 0, 1, 2)

    def _load_sample(self, path):
        from chainercv_i3d.utils.sample_clip import read_sample_clip
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
        if len(out) == 2:
            out['two_stream'] = out['rgb'] + out['flow']
        return out

    def _run(self, model, endpoint, x):
        previous = model.pick
        model.pick = endpoint
        try:
            with chainer.using_config('train', False), \
                    chainer.no_backprop_mode():
                y = model(self.device.send(x))
        finally:
            model.pick = previous
        return chainer.backends.cuda.to_cpu(y.array).astype(numpy.float32)

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
        scores = logits['two_stream'] if 'two_stream' in logits \
            else logits[self.streams[0]]
        prob = softmax(scores.astype(numpy.float64))
        top = numpy.argsort(-scores, kind='stable')[:top_k]
        rows = [{'label': int(i), 'name': self.label_names[i],
                 'prob': float(prob[i]), 'logit': float(scores[i])}
                for i in top]
        return rows, logits

    def features(self, source, endpoint='avgpool', clip_frames=None,
                 clip_stride=None):
        """I3D features of a video, the streams concatenated.

        Args:
            source (str or dict): A video file, a sample ``.npy``, or the
                inputs :meth:`load` returns.
            endpoint (str): ``'avgpool'``, ``'mixed_5c'`` or ``'logits'``.
            clip_frames (int): ``None``: the whole video at once; else clips
                of this many frames (the last frames that do not fill a
                clip are left out; a video shorter than a clip is looped).
            clip_stride (int): Frames between clip starts (default
                ``clip_frames``).

        Returns:
            numpy.ndarray: float32. Whole video: ``avgpool`` (T', D) with one
            D-dim feature per step (T' = ceil(T / 8) - 1), ``mixed_5c``
            (D, ceil(T / 8), 7, 7), ``logits`` (n_class,). Clips: a leading
            axis of clips, with ``avgpool`` averaged over each clip's steps:
            (n_clips, D), (n_clips, D, t, 7, 7), (n_clips, n_class). D is
            1024 per stream (RGB first); two streams' logits are summed.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError('endpoint must be one of {}, not {!r}'.format(
                ', '.join(ENDPOINTS), endpoint))
        inputs = self._inputs(source)
        if clip_frames is None:
            return self._features_of(inputs, endpoint, None)
        from chainercv_i3d.transforms import temporal_crop
        n_frames = next(iter(inputs.values())).shape[1]
        clips = [self._features_of(
            {s: temporal_crop(x, clip_frames, start) for s, x in
             inputs.items()}, endpoint, clip_frames)
            for start in clip_starts(n_frames, clip_frames,
                                     clip_stride or clip_frames)]
        return numpy.stack(clips)

    def _features_of(self, inputs, endpoint, clip_frames):
        per_stream = [self._run(self.models[s], endpoint, inputs[s][None])[0]
                      for s in self.streams]
        if endpoint == 'logits':
            return numpy.sum(per_stream, axis=0)
        features = numpy.concatenate(per_stream, axis=0)
        if endpoint == 'avgpool':
            features = features.T  # (T', D): one feature per time step
            if clip_frames is not None:
                features = features.mean(axis=0)
        return features
