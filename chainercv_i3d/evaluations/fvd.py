"""The Fréchet Video Distance (FVD) without TensorFlow.

Unterthiner et al., "Towards Accurate Generative Models of Video: A New
Metric & Challenges", 2018. The reference is google-research's
``frechet_video_distance/frechet_video_distance.py``; this module computes
the same three steps with numpy and the project's I3D:

1. ``preprocess``: the videos' frames, reshaped to ``(N * T, H, W, 3)``, are
   resized to 224x224 by ``tf.image.resize_bilinear`` (TensorFlow 1's op:
   ``align_corners=False``, ``half_pixel_centers=False``), then mapped to
   [-1, 1] by ``2 * x / 255 - 1``. :func:`resize_bilinear` is that op in
   numpy; ``resize='tf2'`` is the variant later copies use, TensorFlow 2's
   ``tf.image.resize`` (bilinear, antialias off: the same op with
   ``half_pixel_centers=True``), which gives other pixels.
2. ``create_id3_embedding``: the TF-Hub module ``deepmind/i3d-kinetics-400/1``
   and its tensor ``RGB/inception_i3d/Mean:0``, which the reference's comment
   calls "the kinetics-i3d-400-logits layer". In DeepMind's
   ``kinetics-i3d`` ``i3d.py`` (commit 0667e88, lines 459-474) the
   ``Logits`` block is a 2x7x7 average pool, dropout and a 1x1x1
   convolution to ``num_classes`` outputs, squeezed to (N, T', 400); then,
   outside the ``Logits`` variable scope but inside the module's
   ``inception_i3d`` name scope (entered under ``RGB``), line 472
   ``averaged_logits = tf.reduce_mean(logits, axis=1)`` creates the one
   op named ``Mean`` directly in that scope (the pool is ``AvgPool3D`` in
   ``Logits/``, batch-norm moments live in their units' scopes). So
   ``RGB/inception_i3d/Mean:0`` is the 400-way logits averaged over time,
   not a 1024-d pool: the project's ``I3D`` layer ``logits``
   (:func:`embed`).
3. ``calculate_fvd``: TF-GAN's ``frechet_classifier_distance_from_
   activations`` (``tensorflow_gan/python/eval/classifier_metrics.py``):
   activations cast to float64, means, unbiased covariances
   (``n / (n - 1)`` times ``tfp.stats.covariance``), and
   ``|mu1 - mu2|^2 + tr(sigma1 + sigma2) - 2 tr(sqrt(sigma1 sigma2))`` with
   the last trace taken through symmetric square roots
   (:func:`trace_sqrt_product`).
"""

import json
import os

import numpy

import chainercv_i3d
from chainercv_i3d.architecture import min_input_size
from chainercv_i3d.datasets.video_list import list_video_files
from chainercv_i3d.files import atomic_path
from chainercv_i3d.files import reading_npz
from chainercv_i3d.links.i3d import I3D
from chainercv_i3d.links.streams import predict
from chainercv_i3d.pretrained.cache import sha256sum
from chainercv_i3d.pretrained.models import get_model_path
from chainercv_i3d.pretrained.models import MODELS
from chainercv_i3d.utils.comm import rank_share
from chainercv_i3d.utils.sample_clip import read_animated_image
from chainercv_i3d.utils.video import read_video

#: The model the reference embeds with (TF-Hub ``i3d-kinetics-400``).
FVD_MODEL = 'rgb_tfhub_kinetics400'

#: Frame side the reference resizes to.
FVD_SIZE = 224

#: The reference's videos per I3D call (speed only here: test mode runs
#: every video on its own statistics).
FVD_BATCH_SIZE = 16

#: Resize methods by name: ``reference`` (TensorFlow 1's
#: ``tf.image.resize_bilinear``, the reference's) and ``tf2``
#: (``tf.image.resize``, bilinear, half-pixel centres).
RESIZE_METHODS = ('reference', 'tf2')

#: What the embedding is, in the reference's words (for settings).
EMBEDDING = 'logits averaged over time (TF-Hub RGB/inception_i3d/Mean:0)'

#: Extensions of the image sequences read besides the video files.
IMAGE_SEQUENCE_EXTENSIONS = ('.gif',)

#: Array names of a statistics file.
STATS_KEYS = ('mu', 'sigma', 'n', 'settings')


def _interpolation_weights(in_size, out_size, half_pixel_centers):
    """TensorFlow's ``compute_interpolation_weights`` (float32 arithmetic).

    Returns:
        tuple: ``(lower, upper, lerp)``: source indices and the float32
        weight of ``upper``, per output index.
    """
    scale = numpy.float32(in_size) / numpy.float32(out_size)
    out = numpy.arange(out_size, dtype=numpy.float32)
    if half_pixel_centers:
        source = (out + numpy.float32(0.5)) * scale - numpy.float32(0.5)
    else:
        source = out * scale
    floor = numpy.floor(source)
    lower = numpy.maximum(floor, 0).astype(numpy.int64)
    upper = numpy.minimum(numpy.ceil(source), in_size - 1).astype(numpy.int64)
    return lower, upper, (source - floor).astype(numpy.float32)


def resize_bilinear(frames, size, half_pixel_centers=False):
    """TensorFlow's bilinear resize op, in numpy.

    ``half_pixel_centers=False`` is TensorFlow 1's
    ``tf.image.resize_bilinear`` (``tf.compat.v1.image.resize_bilinear``
    with its defaults, ``align_corners=False``): output pixel ``i`` samples
    the source at ``i * in / out``. ``True`` is TensorFlow 2's
    ``tf.image.resize(method='bilinear', antialias=False)``: at
    ``(i + 0.5) * in / out - 0.5``. Both clamp to the border and, as
    TensorFlow's kernel, interpolate along x, then along y, in float32.

    Args:
        frames (numpy.ndarray): ``(M, H, W, C)``, any real dtype.
        size (tuple of int): ``(height, width)`` of the output.
        half_pixel_centers (bool): See above.

    Returns:
        numpy.ndarray: ``(M, height, width, C)`` float32.

    Example:

        >>> resize_bilinear(numpy.zeros((16, 64, 64, 3), numpy.uint8),
        ...                 (224, 224)).shape
        (16, 224, 224, 3)
    """
    frames = numpy.asarray(frames)
    if frames.ndim != 4:
        raise ValueError('frames must be (M, H, W, C), not of shape {}'
                         .format(frames.shape))
    height, width = (int(s) for s in size)
    y0, y1, wy = _interpolation_weights(frames.shape[1], height,
                                        half_pixel_centers)
    x0, x1, wx = _interpolation_weights(frames.shape[2], width,
                                        half_pixel_centers)
    # Only the source rows some output row reads, as float32.
    rows = numpy.unique(numpy.concatenate([y0, y1]))
    source = frames[:, rows].astype(numpy.float32)
    y0 = numpy.searchsorted(rows, y0)
    y1 = numpy.searchsorted(rows, y1)
    wx = wx[None, None, :, None]
    left = source[:, :, x0]
    across = left + (source[:, :, x1] - left) * wx
    top = across[:, y0]
    return top + (across[:, y1] - top) * wy[None, :, None, None]


def check_videos(videos, what='videos'):
    """Checks a batch of videos as the reference takes them; returns it.

    Args:
        videos (numpy.ndarray): ``(N, T, H, W, 3)``: uint8, or any integer
            or float dtype with values in [0, 255].
        what (str): What to call them in messages.

    Returns:
        numpy.ndarray: ``videos`` (not copied).

    Raises:
        ValueError: Another rank or channel count, no video, a dtype that is
            not a real number, or values outside [0, 255].
    """
    videos = numpy.asarray(videos)
    if videos.ndim != 5:
        raise ValueError('{} must be an (N, T, H, W, 3) array, not of shape '
                         '{}'.format(what, videos.shape))
    if videos.shape[4] != 3:
        raise ValueError('{} have {} channels; FVD takes RGB videos (N, T, '
                         'H, W, 3)'.format(what, videos.shape[4]))
    if videos.shape[0] < 1 or 0 in videos.shape:
        raise ValueError('{} are empty (shape {})'.format(what, videos.shape))
    if videos.dtype == numpy.bool_ or videos.dtype.kind not in 'uif':
        raise ValueError('{} are {}; give uint8 RGB (or numbers in [0, '
                         '255])'.format(what, videos.dtype))
    if videos.dtype != numpy.uint8:
        low, high = videos.min(), videos.max()
        if not (numpy.isfinite(low) and numpy.isfinite(high)
                and 0 <= low and high <= 255):
            raise ValueError('{} hold values from {} to {}; FVD takes RGB '
                             'values in [0, 255]'.format(what, low, high))
    return videos


def preprocess_videos(videos, resize='reference', size=FVD_SIZE):
    """The reference's ``preprocess``: resize every frame, then [-1, 1].

    Args:
        videos (numpy.ndarray): ``(N, T, H, W, 3)`` RGB, uint8 (or numbers
            in [0, 255]).
        resize (str): ``'reference'`` (TensorFlow 1's
            ``tf.image.resize_bilinear``, the reference's) or ``'tf2'``
            (TensorFlow 2's ``tf.image.resize``); see
            :func:`resize_bilinear`.
        size (int): Side of the resized frames (224).

    Returns:
        numpy.ndarray: ``(N, T, size, size, 3)`` float32 in [-1, 1],
        ``2 * x / 255 - 1`` of the resized frames.

    Raises:
        ValueError: Bad videos (:func:`check_videos`) or an unknown
            ``resize``.

    Example:

        >>> x = preprocess_videos(numpy.zeros((2, 16, 64, 64, 3),
        ...                                   numpy.uint8))
        >>> x.shape, x.min()
        ((2, 16, 224, 224, 3), -1.0)
    """
    videos = check_videos(videos)
    if resize not in RESIZE_METHODS:
        raise ValueError('resize must be one of {}, not {!r}'.format(
            ', '.join(RESIZE_METHODS), resize))
    n, t = videos.shape[:2]
    frames = resize_bilinear(videos.reshape((n * t,) + videos.shape[2:]),
                             (size, size), resize == 'tf2')
    scaled = numpy.float32(2) * frames / numpy.float32(255) - numpy.float32(1)
    return scaled.reshape((n, t, size, size, 3))


def load_fvd_model(model=FVD_MODEL):
    """The I3D link FVD embeds with, and a description of its weights.

    Args:
        model (str or chainercv_i3d.links.I3D): A pretrained name (default
            :data:`FVD_MODEL`, the reference's TF-Hub weights), an ``.npz``,
            or a link (described by ``None`` weights).

    Returns:
        tuple: ``(link, settings)``: the RGB link, and a dict with
        ``model`` (the name or path) and ``weights_sha256`` (of its
        ``.npz``, ``None`` for a link given as such).

    Raises:
        ValueError: Not an RGB model, or unknown weights.
    """
    if isinstance(model, I3D):
        link, name, path = model, 'link', None
    else:
        name = str(model)
        path = get_model_path(name) if name in MODELS else name
        link = I3D(pretrained_model=name)
    if link.modality != 'rgb':
        raise ValueError('FVD embeds RGB videos; {} is a {} model'.format(
            name, link.modality))
    return link, {'model': name, 'weights_sha256':
                  None if path is None else sha256sum(path)}


def embed(videos, model, batch_size=FVD_BATCH_SIZE, resize='reference',
          device=None):
    """The reference's I3D embedding of videos: 400 logits each, float64.

    Each batch is preprocessed (:func:`preprocess_videos`) and run in test
    mode through ``model``'s ``logits`` layer: the logits averaged over
    time, TF-Hub's ``RGB/inception_i3d/Mean:0`` (see the module's
    docstring).

    Args:
        videos (numpy.ndarray): ``(N, T, H, W, 3)`` RGB in [0, 255],
            ``T >= 9``.
        model (chainercv_i3d.links.I3D): An RGB link (e.g. from
            :func:`load_fvd_model`).
        batch_size (int): Videos per forward pass (speed and memory only).
        resize (str): See :func:`preprocess_videos`.
        device (chainer.backend.Device): Where ``model`` is (``None``: the
            CPU).

    Returns:
        numpy.ndarray: ``(N, n_class)`` float64.

    Raises:
        ValueError: Bad videos, too few frames, or a model that is not RGB.

    Example:

        >>> model, _ = load_fvd_model()
        >>> embed(videos, model).shape  # videos: (N, 16, 64, 64, 3) uint8
        (N, 400)
    """
    videos = check_videos(videos)
    if model.modality != 'rgb':
        raise ValueError('FVD embeds RGB videos, not with a {} model'.format(
            model.modality))
    if videos.shape[1] < min_input_size()[0]:
        raise ValueError('videos of {} frames are too short for I3D\'s head '
                         '(at least {})'.format(videos.shape[1],
                                                min_input_size()[0]))
    if batch_size < 1:
        raise ValueError('batch_size must be at least 1, not {}'.format(
            batch_size))
    out = []
    for start in range(0, len(videos), batch_size):
        x = preprocess_videos(videos[start:start + batch_size], resize)
        x = numpy.ascontiguousarray(x.transpose(0, 4, 1, 2, 3))
        out.append(predict(model, x, device, endpoint='logits').astype(
            numpy.float64))
    return numpy.concatenate(out)


def activation_statistics(activations):
    """Mean and unbiased covariance of activations, as TF-GAN computes them.

    Args:
        activations (numpy.ndarray): ``(N, D)``, ``N >= 2``.

    Returns:
        tuple: ``(mu, sigma)``: ``(D,)`` and ``(D, D)`` float64 (the
        covariance divides by ``N - 1``).

    Raises:
        ValueError: Not 2-D, fewer than 2 rows, or not finite.
    """
    activations = numpy.asarray(activations, dtype=numpy.float64)
    if activations.ndim != 2:
        raise ValueError('activations must be (N, D), not of shape {}'.format(
            activations.shape))
    if len(activations) < 2:
        raise ValueError('a covariance needs at least 2 videos, not {}'.format(
            len(activations)))
    if not numpy.isfinite(activations).all():
        raise ValueError('activations are not all finite')
    mu = activations.mean(axis=0)
    centred = activations - mu
    return mu, centred.T.dot(centred) / (len(activations) - 1)


def symmetric_matrix_sqrt(matrix, eps=1e-10):
    """TF-GAN's ``_symmetric_matrix_square_root``: ``U diag(s') V^T``.

    From the SVD ``matrix = U diag(s) V^T``, with ``s' = sqrt(s)`` where
    ``s >= eps`` and ``s' = s`` below (TF-GAN's guard against the square
    root's slope at 0). For a symmetric positive semi-definite matrix it is
    its square root.

    Args:
        matrix (numpy.ndarray): ``(D, D)`` symmetric.
        eps (float): TF-GAN's threshold, 1e-10.

    Returns:
        numpy.ndarray: ``(D, D)`` float64.
    """
    u, s, vt = numpy.linalg.svd(numpy.asarray(matrix, numpy.float64))
    s = numpy.where(s < eps, s, numpy.sqrt(s))
    return (u * s).dot(vt)


def trace_sqrt_product(sigma1, sigma2):
    """``tr(sqrt(sigma1 sigma2))`` as TF-GAN's ``trace_sqrt_product``.

    ``sigma1 sigma2`` is not symmetric, but with ``A = sqrt(sigma1)`` it has
    the eigenvalues of the symmetric positive semi-definite ``A sigma2 A``,
    so the trace is ``tr(sqrt(A sigma2 A))``, two symmetric square roots by
    SVD (:func:`symmetric_matrix_sqrt`). Taken this way rather than by a
    general ``scipy.linalg.sqrtm(sigma1 @ sigma2)`` because that is what the
    reference runs: the two agree on well-conditioned covariances, but FVD
    sets are often smaller than the 400 dimensions, the covariances are then
    singular, and there the symmetric form's SVD stays real and stable
    where a Schur-based ``sqrtm`` can return complex parts.

    Args:
        sigma1, sigma2 (numpy.ndarray): ``(D, D)`` covariances.

    Returns:
        float: The trace.
    """
    root = symmetric_matrix_sqrt(sigma1)
    return float(numpy.trace(symmetric_matrix_sqrt(
        root.dot(numpy.asarray(sigma2, numpy.float64)).dot(root))))


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """The Fréchet distance of two Gaussians, in float64, as TF-GAN.

    ``|mu1 - mu2|^2 + tr(sigma1 + sigma2) - 2 tr(sqrt(sigma1 sigma2))``,
    the trace of the root through :func:`trace_sqrt_product` (TF-GAN's
    ``_calculate_fid``; TF-GAN then casts to the activations' dtype,
    float32 in the reference; this returns the float64).

    Args:
        mu1, mu2 (numpy.ndarray): ``(D,)`` means.
        sigma1, sigma2 (numpy.ndarray): ``(D, D)`` covariances.

    Returns:
        float: The distance.

    Raises:
        ValueError: Shapes that do not fit together.

    Example:

        >>> frechet_distance(*activation_statistics(a),
        ...                  *activation_statistics(b))
    """
    mu1, mu2 = (numpy.asarray(m, numpy.float64) for m in (mu1, mu2))
    sigma1, sigma2 = (numpy.asarray(s, numpy.float64) for s in (sigma1,
                                                                sigma2))
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    for name, array, shape in (('mu1', mu1, (d,)), ('mu2', mu2, (d,)),
                               ('sigma1', sigma1, (d, d)),
                               ('sigma2', sigma2, (d, d))):
        if array.shape != shape:
            raise ValueError('{} has shape {}; expected {} (mu1 is {})'.format(
                name, array.shape, shape, mu1.shape))
    mean_term = float(numpy.sum(numpy.square(mu1 - mu2)))
    trace = float(numpy.trace(sigma1 + sigma2)) \
        - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return trace + mean_term


class VideoStats(object):
    """The statistics of one set of videos: what FVD needs of it.

    Attributes:
        mu (numpy.ndarray): ``(D,)`` mean embedding, float64.
        sigma (numpy.ndarray): ``(D, D)`` unbiased covariance, float64.
        n (int): Videos.
        settings (dict): How the embeddings were made (model, weights
            SHA-256, resize, frames, frame size, ...), JSON-serializable.
    """

    def __init__(self, mu, sigma, n, settings=None):
        self.mu = numpy.asarray(mu, numpy.float64)
        self.sigma = numpy.asarray(sigma, numpy.float64)
        self.n = int(n)
        self.settings = dict(settings or {})

    @classmethod
    def from_activations(cls, activations, settings=None):
        """Statistics of ``(N, D)`` activations (:func:`activation_
        statistics`)."""
        mu, sigma = activation_statistics(activations)
        return cls(mu, sigma, len(activations), settings)

    def save(self, path):
        """Writes ``mu``, ``sigma``, ``n`` and ``settings`` (JSON text) to
        the ``.npz`` ``path`` whole (missing folders are created)."""
        with atomic_path(path) as tmp, open(tmp, 'wb') as f:
            numpy.savez(f, mu=self.mu, sigma=self.sigma,
                        n=numpy.int64(self.n),
                        settings=numpy.array(json.dumps(self.settings,
                                                        sort_keys=True)))

    @classmethod
    def load(cls, path):
        """Reads what :meth:`save` wrote.

        Raises:
            ValueError: The file is missing, not an ``.npz``, lacks an
                array, or holds arrays of the wrong shapes.
        """
        if not os.path.isfile(path):
            raise ValueError('no such statistics file: {}'.format(path))
        advice = 'write it again with fvd.py --save_stats'
        with reading_npz(path, advice):
            f = numpy.load(path, allow_pickle=False)
            names = getattr(f, 'files', None)
            if names is not None:
                with f:
                    arrays = {k: f[k] for k in STATS_KEYS if k in names}
        missing = [k for k in STATS_KEYS if names is None or k not in names]
        if missing:
            raise ValueError(
                '{} is not FVD statistics: it has no {} array (it has {}): '
                '{}'.format(path, ', '.join(missing),
                            ', '.join(names or ()) or 'one array', advice))
        try:
            settings = json.loads(str(arrays['settings']))
        except ValueError as e:
            raise ValueError('{}: its settings are not JSON ({}): {}'.format(
                path, e, advice))
        mu, sigma = arrays['mu'], arrays['sigma']
        if mu.ndim != 1 or sigma.shape != mu.shape * 2:
            raise ValueError('{}: mu of shape {} and sigma of shape {} do not '
                             'fit'.format(path, mu.shape, sigma.shape))
        return cls(mu, sigma, int(arrays['n']), settings)


#: Settings two sets must share for their FVD to mean anything.
MATCHING_SETTINGS = ('weights_sha256', 'resize', 'embedding', 'size')


def settings_conflicts(settings1, settings2):
    """The settings in :data:`MATCHING_SETTINGS` two sets disagree on.

    Returns:
        list of str: ``'key: a != b'``, empty when they agree (a setting
        missing from either is not compared).
    """
    return ['{}: {!r} != {!r}'.format(k, settings1[k], settings2[k])
            for k in MATCHING_SETTINGS
            if k in settings1 and k in settings2
            and settings1[k] != settings2[k]]


def fvd_from_stats(stats1, stats2):
    """FVD of two :class:`VideoStats`.

    Raises:
        ValueError: The sets were embedded with other weights or
            preprocessing (:func:`settings_conflicts`), or have other sizes.
    """
    conflicts = settings_conflicts(stats1.settings, stats2.settings)
    if conflicts:
        raise ValueError('the two sets were embedded differently ({})'.format(
            '; '.join(conflicts)))
    return frechet_distance(stats1.mu, stats1.sigma, stats2.mu, stats2.sigma)


def fvd(real, fake, model=FVD_MODEL, batch_size=FVD_BATCH_SIZE,
        resize='reference', device=None):
    """The Fréchet Video Distance between two sets of videos.

    Args:
        real, fake (numpy.ndarray): ``(N, T, H, W, 3)`` RGB in [0, 255]
            (uint8), at least 2 videos each; both of the same ``T, H, W``.
        model: As :func:`load_fvd_model` (default the reference's weights).
        batch_size, resize, device: As :func:`embed`.

    Returns:
        float: FVD (float64).

    Raises:
        ValueError: Bad videos, fewer than 2 in a set, or sets of
            different frame counts or sizes.

    Example:

        >>> fvd(real_videos, generated_videos)  # (N, 16, 64, 64, 3) uint8
    """
    real = check_videos(real, 'real videos')
    fake = check_videos(fake, 'fake videos')
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError('real videos are {} and fake videos {} (T, H, W, C): '
                         'give both sets the same shape'.format(
                             real.shape[1:], fake.shape[1:]))
    for what, videos in (('real', real), ('fake', fake)):
        if len(videos) < 2:
            raise ValueError('{} videos: {}; FVD needs at least 2 per set'
                             .format(what, len(videos)))
    link, _ = load_fvd_model(model)
    if device is not None:
        link.to_device(device)
    return frechet_distance(
        *activation_statistics(embed(real, link, batch_size, resize, device)),
        *activation_statistics(embed(fake, link, batch_size, resize, device)))


class VideoSet(object):
    """Videos to embed: a folder of video files, or an ``.npy``/``.npz``.

    A folder is searched recursively for video files (the project's
    extensions, decoded by OpenCV as :func:`chainercv_i3d.utils.video.
    read_video`: every frame, uint8 RGB) and GIFs (Pillow), in sorted
    order. An ``.npy`` holds one ``(N, T, H, W, 3)`` uint8 array; an
    ``.npz`` one array of that shape (or one named ``videos``). A video is
    read only when asked for (:meth:`read`), so that each MPI rank decodes
    its own share; an array file is memory-mapped where numpy can.

    Args:
        path (str): The folder or file.

    Raises:
        ValueError: Nothing to read at ``path``.
    """

    def __init__(self, path):
        self.path = path
        self._array = None
        self._files = None
        if os.path.isdir(path):
            self._files = sorted(
                list_video_files(path)
                + [os.path.relpath(os.path.join(root, name), path)
                   for root, _, names in os.walk(path) for name in names
                   if os.path.splitext(name)[1].lower()
                   in IMAGE_SEQUENCE_EXTENSIONS])
            if not self._files:
                raise ValueError('no video file in {}'.format(path))
        elif os.path.isfile(path) and path.endswith(('.npy', '.npz')):
            array = _load_array(path)
            # Checked first: check_videos reads a whole non-uint8 array.
            if array.dtype != numpy.uint8:
                raise ValueError('{} holds {}; store the videos as uint8 RGB'
                                 .format(path, array.dtype))
            self._array = check_videos(array, path)
        elif os.path.isfile(path):
            raise ValueError('{} is neither a folder of videos nor an .npy / '
                             '.npz array'.format(path))
        else:
            raise ValueError('no such file or folder: {}'.format(path))

    def __len__(self):
        return len(self._array) if self._files is None else len(self._files)

    def name(self, i):
        """The ``i``-th video's file (relative) or ``path[i]``."""
        if self._files is None:
            return '{}[{}]'.format(self.path, i)
        return self._files[i]

    def read(self, i):
        """The ``i``-th video, ``(T, H, W, 3)`` uint8 RGB.

        Raises:
            ValueError: The file cannot be decoded (the message names it).
        """
        if self._files is None:
            return numpy.asarray(self._array[i])
        path = os.path.join(self.path, self._files[i])
        if path.lower().endswith(IMAGE_SEQUENCE_EXTENSIONS):
            return read_animated_image(path)
        try:
            frames, _ = read_video(path)
        except ValueError as e:
            raise ValueError('{}: {}'.format(path, e))
        return numpy.stack(frames)


def _load_array(path):
    with reading_npz(path, 'write the videos again'):
        loaded = numpy.load(path, mmap_mode='r', allow_pickle=False)
        if isinstance(loaded, numpy.ndarray):
            return loaded
        with loaded:
            names = loaded.files
            if len(names) == 1 or 'videos' in names:
                return loaded['videos' if 'videos' in names else names[0]]
    raise ValueError('{} holds the arrays {}; give one array, or name it '
                     'videos'.format(path, ', '.join(names) or 'none'))


def embed_ranks(video_set, model, comm, batch_size=FVD_BATCH_SIZE,
                resize='reference', device=None, on_video=None):
    """Embeds a :class:`VideoSet` on every rank, each its own share.

    Rank ``r`` reads and embeds videos ``r, r + size, ...``
    (:func:`~chainercv_i3d.utils.comm.rank_share`); the embeddings are
    gathered back in the set's order, so the result does not depend on the
    number of ranks. A collective call.

    Args:
        video_set (VideoSet): The videos.
        model (chainercv_i3d.links.I3D): The RGB link.
        comm: The communicator (:func:`chainercv_i3d.utils.comm.get_comm`).
        batch_size, resize, device: As :func:`embed`.
        on_video (callable): Called with the count after each batch.

    Returns:
        tuple: ``(activations, shape)``: ``(N, 400)`` float64 on every rank,
        and the videos' common ``(T, H, W, 3)``.

    Raises:
        ValueError: Fewer than 2 videos, or videos of different shapes (the
            message names one of each); the same on every rank.
    """
    if len(video_set) < 2:
        raise ValueError('{}: {} video(s); FVD needs at least 2 per set'
                         .format(video_set.path, len(video_set)))
    indices = rank_share(range(len(video_set)), comm.rank, comm.size)
    shape, first, out, error = None, None, [], None
    try:
        for start in range(0, len(indices), batch_size):
            batch = []
            for i in indices[start:start + batch_size]:
                video = video_set.read(i)
                if shape is None:
                    shape, first = video.shape, i
                elif video.shape != shape:
                    raise ValueError(_shape_message(video_set, first, shape,
                                                    i, video.shape))
                batch.append(video)
            out.append(embed(numpy.stack(batch), model, batch_size, resize,
                             device))
            if on_video is not None:
                on_video(len(batch))
    except ValueError as e:
        error = str(e)
    shares = comm.allgather((indices, shape, first, out, error))
    for _, _, _, _, error in shares:
        if error is not None:
            raise ValueError(error)
    shapes = [(s, f) for _, s, f, _, _ in shares if s is not None]
    for s, f in shapes[1:]:
        if s != shapes[0][0]:
            raise ValueError(_shape_message(video_set, shapes[0][1],
                                            shapes[0][0], f, s))
    activations = numpy.empty((len(video_set), model.n_class), numpy.float64)
    for indices, _, _, out, _ in shares:
        if indices:
            activations[indices] = numpy.concatenate(out)
    return activations, tuple(shapes[0][0])


def _shape_message(video_set, i, shape, j, other):
    return ('videos differ in shape: {} is {} but {} is {} (T, H, W, 3); '
            'FVD takes videos of one frame count and size'.format(
                video_set.name(i), tuple(shape), video_set.name(j),
                tuple(other)))


def describe_settings(model_settings, resize, shape, dtype='float32'):
    """Every setting of an embedding, for statistics files and JSON.

    Args:
        model_settings (dict): From :func:`load_fvd_model`.
        resize (str): The resize method.
        shape (tuple): The videos' ``(T, H, W, 3)``.
        dtype (str): The fast path's compute dtype.

    Returns:
        dict: ``model``, ``weights_sha256``, ``embedding``, ``resize``,
        ``size``, ``frames``, ``height``, ``width``, ``dtype``,
        ``version`` (of this package).
    """
    return dict(model_settings, embedding=EMBEDDING, resize=resize,
                size=FVD_SIZE, frames=int(shape[0]), height=int(shape[1]),
                width=int(shape[2]), dtype=dtype,
                version=chainercv_i3d.__version__)
