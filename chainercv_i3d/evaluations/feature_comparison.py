"""Compares two sets of features of the same videos: ours and a released set.

Features are numpy arrays (``.npy``, or ``.npz`` holding one array or the
array named by ``key``; other formats, such as PyTorch's ``.pt``, are not
read: save them with numpy first) of shape

==================  ==========================================================
``(D,)``            one vector (a clip or a whole video); compared with the
                    other side's mean over time when that one has steps
``(T, D)``          one vector per time step (``extract_features.py``'s
                    ``avgpool``)
``(T, n_crop, D)``  one vector per step and crop
==================  ==========================================================

The two may be offset in time or of different lengths (another tail rule,
other windows): every offset in ``[-max_offset, max_offset]`` is tried, the
overlapping steps compared, and the offset with the highest mean cosine
similarity kept (ties: the smallest ``|offset|``). Offset ``k`` means that
their step ``t`` is our step ``t + k``.

The verdict is read from the mean cosine similarity of the aligned steps:

==================  ===========  ==============================================
verdict             mean cosine  what it usually means
==================  ===========  ==============================================
``same``            >= 0.999     the same features up to arithmetic (float16
                                 gives 0.999999 on ``bikes.mp4``)
``close``           >= 0.99      the same network, small differences in
                                 preprocessing (the video re-encoded as MJPEG:
                                 0.9966; resized to 320 first: 0.9936)
``different``       < 0.99       another network, weights or preprocessing
                                 (crop, fps, value range), or steps that do
                                 not line up (one step off: 0.93)
``not_comparable``               feature sizes differ (D 1024 vs 2048)
==================  ===========  ==============================================

Neighbouring steps of one video have cosines of about 0.8 to 0.97 with each
other, so a misalignment by one step reads as ``different``, never as
``close``.
"""

import os
import zipfile

import numpy

# Mean cosine similarity at or above which features are the same / close.
SAME_COSINE = 0.999
CLOSE_COSINE = 0.99
# |norm ratio - 1| above which the verdict says that the scale differs
# (cosine similarity does not see it).
SCALE_TOLERANCE = 0.01
# Offsets tried by default, in steps (8 frames each for DeepMind's I3D).
MAX_OFFSET = 8
CROP_MODES = ('mean', 'each')
STREAM_CHOICES = ('rgb', 'flow')
# The files a folder comparison reads, matched by path without extension.
FEATURE_EXTENSIONS = ('.npy', '.npz')
VERDICTS = ('same', 'close', 'different', 'not_comparable')
# Exit status of compare_features.py: 0 same or close, 1 different or not
# comparable, 2 bad input.
EXIT_DIFFERENT = 1
EXIT_BAD_INPUT = 2

# What a feature size usually is, for the not-comparable message.
_KNOWN_SIZES = {
    400: 'Kinetics-400 logits, not features',
    512: 'a ResNet-18 3D network (R3D-18, R(2+1)D-18)',
    600: 'Kinetics-600 logits, not features',
    1024: 'Inception-I3D, one stream',
    2048: 'two-stream Inception-I3D (RGB then flow) or I3D-ResNet50',
}

_NPY_MAGIC = b'\x93NUMPY'
_ZIP_MAGIC = b'PK'


def load_features(path, key=None):
    """Reads one feature array, checked.

    Args:
        path (str): A ``.npy`` file, or an ``.npz`` with one array or an
            array named ``key``. The format is recognized from the bytes,
            not the extension.
        key (str): The array of an ``.npz`` to read (needed when it holds
            several); ignored for ``.npy``.

    Returns:
        numpy.ndarray: float64, ``(D,)``, ``(T, D)`` or ``(T, n_crop, D)``,
        finite and not empty.

    Raises:
        ValueError: A missing or unreadable file, not a numpy file, a zip
            archive that is not an ``.npz``, an unknown ``key``, an empty
            array, a shape of another rank, a non-numeric dtype, NaN or
            infinity. The message names ``path``.

    Example:
        >>> features = load_features('features/bikes.npy')  # (T, 1024)
    """
    if not os.path.exists(path):
        raise ValueError('{}: no such file'.format(path))
    if os.path.isdir(path):
        raise ValueError('{}: is a folder, not a feature file'.format(path))
    try:
        with open(path, 'rb') as f:
            magic = f.read(len(_NPY_MAGIC))
    except OSError as e:
        raise ValueError('{}: cannot be read: {}'.format(path, e))
    if magic.startswith(_NPY_MAGIC):
        try:
            array = numpy.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise ValueError('{}: not a readable numpy array: {}'.format(
                path, e))
    elif magic.startswith(_ZIP_MAGIC) and zipfile.is_zipfile(path):
        array = _load_npz(path, key)
    else:
        raise ValueError('{}: not a numpy file (.npy or .npz; other formats '
                         'such as .pt: save them with numpy.save '
                         'first)'.format(path))
    return _checked(array, path)


def _load_npz(path, key):
    try:
        npz = numpy.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError('{}: a broken zip archive: {}'.format(path, e))
    with npz:
        names = npz.zip.namelist()
        arrays = [n[:-len('.npy')] for n in names if n.endswith('.npy')]
        if not arrays:
            raise ValueError('{}: a zip archive that is not an .npz (no .npy '
                             'inside: {})'.format(path, _listed(names)))
        if key is None:
            if len(arrays) > 1:
                raise ValueError('{}: holds {} arrays ({}); choose one with '
                                 '--key'.format(path, len(arrays),
                                                _listed(arrays)))
            key = arrays[0]
        elif key not in arrays:
            raise ValueError('{}: has no array {!r} (it has {})'.format(
                path, key, _listed(arrays)))
        try:
            return npz[key]
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise ValueError('{}: array {!r} cannot be read: {}'.format(
                path, key, e))


def _listed(names, at_most=5):
    shown = ', '.join(names[:at_most])
    return shown + (', ...' if len(names) > at_most else '')


def _checked(array, path):
    if not isinstance(array, numpy.ndarray):
        raise ValueError('{}: not a numpy array'.format(path))
    kind = array.dtype.kind
    if kind not in 'fiu':
        raise ValueError('{}: dtype {} is not a real number type'.format(
            path, array.dtype))
    if array.size == 0:
        raise ValueError('{}: empty array, shape {}'.format(
            path, array.shape))
    if array.ndim not in (1, 2, 3):
        raise ValueError(
            '{}: shape {} is not (D,), (T, D) or (T, n_crop, D) (feature '
            'maps such as mixed_5c are not compared: use avgpool '
            'features)'.format(path, array.shape))
    array = array.astype(numpy.float64)
    finite = numpy.isfinite(array)
    if not finite.all():
        n_nan = int(numpy.isnan(array).sum())
        raise ValueError('{}: {} NaN and {} infinite values of {}'.format(
            path, n_nan, int(array.size - finite.sum()) - n_nan, array.size))
    return array


def compare_arrays(ours, theirs, max_offset=MAX_OFFSET, crops=None,
                   streams=None):
    """Aligns two feature arrays in time and measures how far apart they are.

    Args:
        ours, theirs (numpy.ndarray): ``(D,)``, ``(T, D)`` or
            ``(T, n_crop, D)`` (:func:`load_features`).
        max_offset (int): Offsets tried: ``-max_offset`` to ``max_offset``
            steps. Offsets where fewer than half of the shorter side's steps
            overlap are not tried.
        crops (str): ``None`` (crop counts must match; each crop compared
            with its counterpart), ``'each'`` (the same, said explicitly) or
            ``'mean'`` (each side averaged over its crops first).
        streams (str): When one side's D is twice the other's (two streams
            concatenated, RGB then flow, against one stream): ``'rgb'``
            compares the first half of the longer side, ``'flow'`` the
            second half. ``None``: such sizes are not comparable.

    Returns:
        dict: ``verdict`` (one of :data:`VERDICTS`), ``verdict_text``,
        ``notes`` (list of str), and unless the verdict is
        ``not_comparable``: ``offset``, ``n_steps_compared``,
        ``offset_cosines`` (``{offset: mean cosine}`` of every offset tried),
        ``length_ratio`` (our steps / theirs), ``cosine`` (``mean``,
        ``min``, ``min_step``), ``norm_ratio`` (``|ours| / |theirs|``,
        which the verdict mentions when it is not within
        :data:`SCALE_TOLERANCE` of 1), ``pearson`` (``per_dimension_mean``,
        ``overall``; ``None`` where undefined), ``error`` (``max_abs``,
        ``mean_abs``, ``rms``, ``relative`` = ``|ours - theirs| /
        |theirs|``), ``worst_step`` and ``worst_dimension`` (the index with
        the highest RMS error and its ``max_abs``, ``mean_abs``, ``rms``),
        ``per_crop_cosine`` (mean cosine of each crop, with several crops),
        ``per_step`` (lists over the compared steps, indexed by our steps
        from ``steps[0]``: ``cosine``, ``max_abs``, ``mean_abs``, ``rms``)
        and ``per_dimension`` (lists of D: ``max_abs``, ``mean_abs``,
        ``rms``, ``pearson``).

    Raises:
        ValueError: Crop counts that differ without ``crops='mean'``, or an
            invalid option.

    Example:
        >>> r = compare_arrays(ours, theirs)          # (T, D) each
        >>> r['verdict'], r['offset'], r['cosine']['mean']
        ('same', 3, 0.99997)
    """
    if crops not in (None,) + CROP_MODES:
        raise ValueError('crops must be one of {}, not {!r}'.format(
            CROP_MODES, crops))
    if streams not in (None,) + STREAM_CHOICES:
        raise ValueError('streams must be one of {}, not {!r}'.format(
            STREAM_CHOICES, streams))
    if max_offset < 0:
        raise ValueError('max_offset must be at least 0, not {}'.format(
            max_offset))
    notes = []
    ours, theirs = _Side.of('ours', ours), _Side.of('theirs', theirs)
    ours, theirs = _match_crops(ours, theirs, crops, notes)
    ours, theirs, problem = _match_sizes(ours, theirs, streams, notes)
    if problem:
        return {'verdict': 'not_comparable', 'verdict_text':
                'not comparable: ' + problem, 'notes': notes}
    ours, theirs = _match_single_vectors(ours, theirs, notes)
    ours, theirs = ours.x, theirs.x

    offset_cosines = _offset_cosines(ours, theirs, max_offset)
    best = max(offset_cosines.values())
    offset = min((k for k, c in offset_cosines.items()
                  if c >= best - 1e-12), key=lambda k: (abs(k), k))
    a, b, steps = _overlap(ours, theirs, offset)
    result = {'offset': offset, 'n_steps_compared': len(steps),
              'offset_cosines': offset_cosines,
              'length_ratio': len(ours) / len(theirs)}
    result.update(_measures(a, b, steps))
    longer, shorter = max(len(ours), len(theirs)), min(len(ours), len(theirs))
    if longer >= 1.5 * shorter:
        notes.append('{} has {:.2f} times the steps of the other ({} vs {}): '
                     'perhaps another step between features (frames per '
                     'step); offsets cannot align that'.format(
                         'ours' if len(ours) > len(theirs) else 'theirs',
                         longer / shorter, len(ours), len(theirs)))
    elif longer != shorter:
        notes.append('lengths differ: {} steps vs {} (another tail rule or '
                     'window?)'.format(len(ours), len(theirs)))
    verdict, text = verdict_of(result['cosine']['mean'])
    ratio = result['norm_ratio']
    if ratio is not None and abs(ratio - 1) > SCALE_TOLERANCE:
        text += ('; but the scale differs: our norm is {:.3g} times theirs '
                 '(one side L2-normalized or scaled?)'.format(ratio))
    if verdict != 'different' and result['cosine']['min'] < CLOSE_COSINE:
        notes.append('the lowest step, {}, has cosine {:.4f} < {}'.format(
            result['cosine']['min_step'], result['cosine']['min'],
            CLOSE_COSINE))
    result.update(verdict=verdict, verdict_text=text, notes=notes)
    return result


def verdict_of(mean_cosine):
    """The verdict and its sentence for a mean cosine similarity.

    Returns:
        tuple: ``('same' | 'close' | 'different', text)``; the text states
        the threshold.
    """
    if mean_cosine >= SAME_COSINE:
        return 'same', 'same features (mean cosine {:.5f} >= {})'.format(
            mean_cosine, SAME_COSINE)
    if mean_cosine >= CLOSE_COSINE:
        return 'close', ('close (mean cosine {:.5f} >= {}, < {}): the same '
                         'network, small preprocessing differences'.format(
                             mean_cosine, CLOSE_COSINE, SAME_COSINE))
    return 'different', ('different network or preprocessing (mean cosine '
                         '{:.5f} < {})'.format(mean_cosine, CLOSE_COSINE))


class _Side(object):
    """One side's features as (T, n_crop, D), with the shape it came as."""

    def __init__(self, name, x, single, crop_axis):
        self.name = name
        self.x = x
        self.single = single        # it was one vector (D,)
        self.crop_axis = crop_axis  # it was (T, n_crop, D)

    @classmethod
    def of(cls, name, array):
        x = numpy.asarray(array, dtype=numpy.float64)
        if x.ndim not in (1, 2, 3):
            raise ValueError('{}: features must be (D,), (T, D) or (T, '
                             'n_crop, D), not {}'.format(name, x.shape))
        single, crop_axis = x.ndim == 1, x.ndim == 3
        if x.ndim == 1:
            x = x[None, None]
        elif x.ndim == 2:
            x = x[:, None]
        return cls(name, x, single, crop_axis)

    def replaced(self, x):
        return _Side(self.name, x, self.single, self.crop_axis)

    def crops(self):
        n = self.x.shape[1]
        return str(n) if self.crop_axis else '1 (no crop axis)'


def _match_crops(ours, theirs, crops, notes):
    n_ours, n_theirs = ours.x.shape[1], theirs.x.shape[1]
    if crops == 'mean':
        if n_ours > 1 or n_theirs > 1:
            notes.append('averaged over crops: ours {}, theirs {}'.format(
                n_ours, n_theirs))
        return (ours.replaced(ours.x.mean(axis=1, keepdims=True)),
                theirs.replaced(theirs.x.mean(axis=1, keepdims=True)))
    if n_ours != n_theirs:
        raise ValueError(
            'crop counts differ: ours {}, theirs {}{}; --crops mean compares '
            'the means over crops'.format(
                ours.crops(), theirs.crops(),
                '' if crops is None else ' (--crops each needs the same '
                'count)'))
    if n_ours > 1:
        notes.append('compared crop by crop ({} crops)'.format(n_ours))
    return ours, theirs


def _match_sizes(ours, theirs, streams, notes):
    """Returns ``ours, theirs, problem`` (a sentence, or None)."""
    d_ours, d_theirs = ours.x.shape[2], theirs.x.shape[2]
    if d_ours == d_theirs:
        if streams is not None:
            notes.append('--streams {} unused: both sides have D {}'.format(
                streams, d_ours))
        return ours, theirs, None
    wide, narrow = (ours, theirs) if d_ours > d_theirs else (theirs, ours)
    half = narrow.x.shape[2]
    double = wide.x.shape[2] == 2 * half
    if double and streams is not None:
        part = slice(0, half) if streams == 'rgb' else slice(half, 2 * half)
        notes.append('{} has D {} = 2 x {}: compared its {} half, dims {} to '
                     '{} (two streams, RGB first)'.format(
                         wide.name, 2 * half, half, streams, part.start,
                         part.stop - 1))
        wide = wide.replaced(wide.x[:, :, part])
        if wide.name == 'ours':
            return wide, narrow, None
        return narrow, wide, None
    problem = 'D {} vs {} - ours {}, theirs {}'.format(
        d_ours, d_theirs, _size_hint(d_ours, 'is'),
        _size_hint(d_theirs, 'perhaps'))
    if double:
        problem += ('; if one side is two streams (RGB then flow) and the '
                    'other one stream, --streams rgb (or flow) compares that '
                    'half')
    for side, other in ((ours, theirs), (theirs, ours)):
        t, d = side.x.shape[0], side.x.shape[2]
        if not side.crop_axis and not side.single and t == other.x.shape[2]:
            problem += '; {} ({}, {}) looks like (D, T): transpose it'.format(
                side.name, t, d)
    return ours, theirs, problem


def _size_hint(d, verb):
    return '{} {}'.format(verb, _KNOWN_SIZES[d]) if d in _KNOWN_SIZES \
        else 'of an unknown network'


def _match_single_vectors(ours, theirs, notes):
    """A single vector (D,) is compared with the other side's time mean."""
    for side, other in ((ours, theirs), (theirs, ours)):
        if side.single and len(other.x) > 1:
            notes.append('{} is one vector (D,): compared with the mean of '
                         'the other side\'s {} steps'.format(side.name,
                                                              len(other.x)))
            other = other.replaced(other.x.mean(axis=0, keepdims=True))
            return (side, other) if side.name == 'ours' else (other, side)
    return ours, theirs


def _unit(x):
    norm = numpy.linalg.norm(x, axis=-1, keepdims=True)
    return x / numpy.where(norm > 0, norm, 1)


def _cosines(a, b):
    """Cosine of each pair of vectors along the last axis; two zero vectors
    have cosine 1, one zero vector 0."""
    cos = (_unit(a) * _unit(b)).sum(axis=-1)
    both_zero = (~a.any(axis=-1)) & (~b.any(axis=-1))
    return numpy.clip(numpy.where(both_zero, 1.0, cos), -1.0, 1.0)


def _overlap(ours, theirs, offset):
    """Our steps ``t + offset`` against their steps ``t``; returns the two
    (N, n_crop, D) arrays and our step indices."""
    start = max(0, offset)
    stop = min(len(ours), len(theirs) + offset)
    steps = numpy.arange(start, stop)
    return ours[start:stop], theirs[start - offset:stop - offset], steps


def _offset_cosines(ours, theirs, max_offset):
    min_overlap = max(1, min(len(ours), len(theirs)) // 2)
    found = {}
    for k in range(-max_offset, max_offset + 1):
        a, b, steps = _overlap(ours, theirs, k)
        if len(steps) >= min_overlap:
            found[k] = float(_cosines(a, b).mean())
    if not found:  # cannot happen: offset 0 overlaps min(T) steps
        raise AssertionError('no offset overlaps')
    return found


def _pearson(x, y, axis=None):
    """Pearson correlation along ``axis``; NaN where a side is constant."""
    x = x - x.mean(axis=axis, keepdims=True)
    y = y - y.mean(axis=axis, keepdims=True)
    denominator = numpy.sqrt((x * x).sum(axis=axis) * (y * y).sum(axis=axis))
    with numpy.errstate(invalid='ignore', divide='ignore'):
        return numpy.where(denominator > 0,
                           (x * y).sum(axis=axis) / denominator, numpy.nan)


def _optional(value):
    value = float(value)
    return value if numpy.isfinite(value) else None


def _errors_of(diff, axis):
    absolute = numpy.abs(diff)
    return {'max_abs': absolute.max(axis=axis),
            'mean_abs': absolute.mean(axis=axis),
            'rms': numpy.sqrt((diff * diff).mean(axis=axis))}


def _worst(errors, index_name, offset=0):
    """The index of the highest RMS error, with its errors."""
    i = int(numpy.argmax(errors['rms']))
    worst = {index_name: i + offset}
    worst.update({k: float(v[i]) for k, v in errors.items()})
    return worst


def _measures(a, b, steps):
    """Every number of :func:`compare_arrays` on aligned (N, n_crop, D)."""
    n_crop, d = a.shape[1], a.shape[2]
    diff = a - b
    cos = _cosines(a, b)                         # (N, n_crop)
    step_cos = cos.mean(axis=1)
    per_step = _errors_of(diff.reshape(len(steps), -1), axis=1)
    per_dim = _errors_of(diff.reshape(-1, d), axis=0)
    flat_a, flat_b = a.reshape(-1, d), b.reshape(-1, d)
    dim_pearson = _pearson(flat_a, flat_b, axis=0) if len(flat_a) > 1 \
        else numpy.full(d, numpy.nan)
    finite = dim_pearson[numpy.isfinite(dim_pearson)]
    norm_b = float(numpy.linalg.norm(b))
    result = {
        'cosine': {'mean': float(cos.mean()), 'min': float(step_cos.min()),
                   'min_step': int(steps[numpy.argmin(step_cos)])},
        'pearson': {
            'per_dimension_mean': float(finite.mean()) if len(finite)
            else None,
            'overall': _optional(_pearson(a.ravel(), b.ravel()))},
        'error': {'max_abs': float(numpy.abs(diff).max()),
                  'mean_abs': float(numpy.abs(diff).mean()),
                  'rms': float(numpy.sqrt((diff * diff).mean())),
                  'relative': float(numpy.linalg.norm(diff)) / norm_b
                  if norm_b > 0 else None},
        'norm_ratio': float(numpy.linalg.norm(a)) / norm_b if norm_b > 0
        else None,
        'worst_step': _worst(per_step, 'step', int(steps[0])),
        'worst_dimension': _worst(per_dim, 'dimension'),
        'per_step': dict({'steps': [int(steps[0]), int(steps[-1])],
                          'cosine': step_cos.tolist()},
                         **{k: v.tolist() for k, v in per_step.items()}),
        'per_dimension': dict(
            {'pearson': [_optional(p) for p in dim_pearson]},
            **{k: v.tolist() for k, v in per_dim.items()}),
    }
    if n_crop > 1:
        result['per_crop_cosine'] = cos.mean(axis=0).tolist()
    return result


def compare_files(ours_path, theirs_path, key=None, details=True, **options):
    """:func:`compare_arrays` of two files read by :func:`load_features`.

    Args:
        ours_path, theirs_path (str): The two files.
        key (str): The array of an ``.npz`` with several.
        details (bool): Keep ``per_step`` and ``per_dimension`` (lists of T
            and D numbers).
        **options: ``max_offset``, ``crops``, ``streams`` of
            :func:`compare_arrays`.

    Returns:
        dict: :func:`compare_arrays`'s, with ``ours``, ``theirs`` (paths)
        and ``ours_shape``, ``theirs_shape``.

    Raises:
        ValueError: A bad file (:func:`load_features`) or crop counts that
            differ.
    """
    ours = load_features(ours_path, key)
    theirs = load_features(theirs_path, key)
    result = {'ours': ours_path, 'theirs': theirs_path,
              'ours_shape': list(ours.shape),
              'theirs_shape': list(theirs.shape)}
    result.update(compare_arrays(ours, theirs, **options))
    if not details:
        result.pop('per_step', None)
        result.pop('per_dimension', None)
    return result


def feature_files(folder):
    """``{relative path without extension: path}`` of the ``.npy`` and
    ``.npz`` files under ``folder`` (recursively; other files are ignored).

    Raises:
        ValueError: ``folder`` is not a folder, or two files share a name
            without extension (``a.npy`` and ``a.npz``).
    """
    if not os.path.isdir(folder):
        raise ValueError('{}: no such folder'.format(folder))
    found = {}
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in FEATURE_EXTENSIONS:
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(os.path.join(root, stem), folder)
            rel = rel.replace(os.sep, '/')
            if rel in found:
                raise ValueError('{}: two files for {}: {} and {}'.format(
                    folder, rel, os.path.basename(found[rel]), name))
            found[rel] = path
    return found


def compare_folders(ours_dir, theirs_dir, key=None, on_file=None,
                    **options):
    """Compares the files of two folders matched by relative path without
    extension (``a/b.npy`` with ``a/b.npz``).

    A bad file does not stop the others: its entry has verdict ``error``
    and the message.

    Args:
        ours_dir, theirs_dir (str): The folders.
        key (str): The array of an ``.npz`` with several.
        on_file (callable): Called after each matched file with its entry
            and the number of matched files, for progress.
        **options: ``max_offset``, ``crops``, ``streams`` of
            :func:`compare_arrays`.

    Returns:
        dict: ``files`` (one entry per matched file: ``name`` and
        :func:`compare_files`'s result without per-step and per-dimension
        lists, or ``verdict: 'error'`` and ``message``), ``only_in_ours``,
        ``only_in_theirs`` (sorted names) and ``summary``
        (:func:`summarize_files`).

    Raises:
        ValueError: A path that is not a folder, or two files of one name.
    """
    ours = feature_files(ours_dir)
    theirs = feature_files(theirs_dir)
    entries = []
    matched = sorted(set(ours) & set(theirs))
    for name in matched:
        try:
            entry = compare_files(ours[name], theirs[name], key,
                                  details=False, **options)
        except ValueError as e:
            entry = {'ours': ours[name], 'theirs': theirs[name],
                     'verdict': 'error', 'message': str(e)}
        entries.append(dict(entry, name=name))
        if on_file is not None:
            on_file(entries[-1], len(matched))
    only_ours = sorted(set(ours) - set(theirs))
    only_theirs = sorted(set(theirs) - set(ours))
    return {'files': entries, 'only_in_ours': only_ours,
            'only_in_theirs': only_theirs,
            'summary': summarize_files(entries, only_ours, only_theirs)}


def summarize_files(entries, only_ours=(), only_theirs=()):
    """Counts, the mean cosine over compared files and the worst file.

    Returns:
        dict: ``n_matched``, ``n_only_in_ours``, ``n_only_in_theirs``,
        ``verdicts`` (count of each verdict), ``mean_cosine`` (mean of the
        files' mean cosines) and ``worst`` (``name``, ``cosine``,
        ``verdict`` of the lowest mean cosine), both over the files
        compared (not the errors and not comparable ones), ``None`` when
        there are none.
    """
    counts = {}
    for e in entries:
        counts[e['verdict']] = counts.get(e['verdict'], 0) + 1
    compared = [e for e in entries if 'cosine' in e]
    cosines = [e['cosine']['mean'] for e in compared]
    worst = None
    if compared:
        e = min(compared, key=lambda e: (e['cosine']['mean'], e['name']))
        worst = {'name': e['name'], 'verdict': e['verdict'],
                 'cosine': e['cosine']['mean']}
    return {'n_matched': len(entries), 'n_only_in_ours': len(only_ours),
            'n_only_in_theirs': len(only_theirs), 'verdicts': counts,
            'mean_cosine': float(numpy.mean(cosines)) if cosines else None,
            'worst': worst}


def exit_status(verdicts):
    """0 when every verdict is same or close, 1 when one is different or
    not comparable, 2 when one is an error (a bad input)."""
    verdicts = set(verdicts)
    if 'error' in verdicts:
        return EXIT_BAD_INPUT
    if verdicts & {'different', 'not_comparable'}:
        return EXIT_DIFFERENT
    return 0


def _number(value, fmt='{:.5f}'):
    return 'n/a' if value is None else fmt.format(value)


def format_comparison(result):
    """A comparison of two files as lines of text for people."""
    lines = ['ours    {}  {}'.format(result['ours'],
                                     _shape(result['ours_shape'])),
             'theirs  {}  {}'.format(result['theirs'],
                                     _shape(result['theirs_shape']))]
    if 'cosine' in result:
        k = result['offset']
        tried = sorted(result['offset_cosines'])
        lines.append(
            'offset  {:+d} (their step t is our step t{}), {} steps compared;'
            ' offsets {:+d}..{:+d} tried'.format(
                k, '' if k == 0 else '{:+d}'.format(k),
                result['n_steps_compared'], tried[0], tried[-1]))
        c, p = result['cosine'], result['pearson']
        lines.append('cosine  mean {}  min {} (step {})'.format(
            _number(c['mean']), _number(c['min']), c['min_step']))
        lines.append('pearson per dimension (mean) {}  overall {}'.format(
            _number(p['per_dimension_mean']), _number(p['overall'])))
        if 'per_crop_cosine' in result:
            lines.append('cosine per crop  ' + '  '.join(
                _number(x) for x in result['per_crop_cosine']))
        lines.append('{:<22} {:>10} {:>10} {:>10}'.format(
            'error', 'max abs', 'mean abs', 'rms'))
        rows = [('all', result['error']),
                ('worst step {}'.format(result['worst_step']['step']),
                 result['worst_step']),
                ('worst dimension {}'.format(
                    result['worst_dimension']['dimension']),
                 result['worst_dimension'])]
        for label, e in rows:
            lines.append('{:<22} {:>10.3g} {:>10.3g} {:>10.3g}'.format(
                label, e['max_abs'], e['mean_abs'], e['rms']))
        lines.append('relative error |ours - theirs| / |theirs|  {}   norm '
                     'ratio |ours| / |theirs|  {}'.format(
                         _number(result['error']['relative'], '{:.3g}'),
                         _number(result['norm_ratio'], '{:.4f}')))
    for note in result['notes']:
        lines.append('note: ' + note)
    lines.append('verdict: ' + result['verdict_text'])
    return '\n'.join(lines)


def _shape(shape):
    return '(' + ', '.join(str(s) for s in shape) + \
        (',)' if len(shape) == 1 else ')')


def _n_steps(shape):
    return shape[0] if len(shape) > 1 else 1


def format_folder_comparison(result, max_rows=None):
    """A folder comparison as a table: one row per matched file (the worst
    ``max_rows`` when given), the unmatched names, the summary."""
    entries = result['files']
    shown = entries
    if max_rows is not None and len(entries) > max_rows:
        shown = sorted(entries, key=lambda e: (
            e['cosine']['mean'] if 'cosine' in e else -numpy.inf,
            e['name']))[:max_rows]
    width = max([len(e['name']) for e in shown] + [4])
    lines = ['{:<{w}} {:>9} {:>7} {:>9} {:>9} {:>9}  {}'.format(
        'file', 'steps', 'offset', 'cos mean', 'cos min', 'rel err',
        'verdict', w=width)]
    for e in shown:
        if 'cosine' in e:
            lines.append('{:<{w}} {:>9} {:>+7d} {:>9.5f} {:>9.5f} {:>9} '
                         ' {}'.format(
                             e['name'], '{}/{}'.format(
                                 _n_steps(e['ours_shape']),
                                 _n_steps(e['theirs_shape'])),
                             e['offset'], e['cosine']['mean'],
                             e['cosine']['min'],
                             _number(e['error']['relative'], '{:.3g}'),
                             e['verdict'], w=width))
        else:
            lines.append('{:<{w}}  {}: {}'.format(
                e['name'], e['verdict'],
                e.get('message') or e['verdict_text'], w=width))
    if len(shown) < len(entries):
        lines.append('({} more files in the JSON; the {} lowest cosines '
                     'shown)'.format(len(entries) - len(shown), len(shown)))
    s = result['summary']
    lines.append('matched {}, only in ours {}, only in theirs {}'.format(
        s['n_matched'], s['n_only_in_ours'], s['n_only_in_theirs']))
    for side in ('ours', 'theirs'):
        names = result['only_in_' + side]
        if names:
            lines.append('only in {}: {}'.format(side, _listed(names, 10)))
    if s['verdicts']:
        lines.append('verdicts: ' + ', '.join(
            '{} {}'.format(n, v) for v, n in sorted(s['verdicts'].items())))
    if s['worst'] is not None:
        lines.append('mean cosine over {} compared files: {}; worst: {} '
                     '({}, cosine {})'.format(
                         sum(1 for e in entries if 'cosine' in e),
                         _number(s['mean_cosine']), s['worst']['name'],
                         s['worst']['verdict'],
                         _number(s['worst']['cosine'])))
    return '\n'.join(lines)
