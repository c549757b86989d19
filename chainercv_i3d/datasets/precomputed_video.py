"""The on-disk format of one precomputed video: one zip file per video.

``OUTPUT_DIR/videos/<video_id>.zip`` holds, stored without zip compression
(the members are already compressed images)::

    meta.json           video_id, label, n_frames, n_flow_frames, fps,
                        source_fps, height, width, flow_bound, preset (the
                        Preset's dict, with label names), rgb/flow encodings
    rgb/000000.jpg      frame t, RGB, JPEG (quality in meta.json)
    flow/000000.png     flow from frame t to t + 1: x and y quantized to
                        uint8 (chainercv_i3d.flow.quantize_flow) and stacked
                        vertically into one (2H, W) lossless grayscale PNG

One file per video keeps the file count at the number of videos (not 15
million frames); the zip's central directory lets a reader decode only the
frames a clip needs. Member timestamps are fixed so the same input gives
byte-identical files.
"""

import json
import os
import zipfile
import zlib

import numpy

from chainercv_i3d.files import atomic_path
from chainercv_i3d.flow import dequantize_flow
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.presets import preset_from_dict

FORMAT_VERSION = 1
# The list of every video of an output folder, beside videos/.
MANIFEST_NAME = 'manifest.json'
# The bound of files written before meta.json held one (DeepMind's).
DEFAULT_FLOW_BOUND = DEEPMIND_KINETICS.flow_bound
META_NAME = 'meta.json'
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def rgb_member(t):
    return 'rgb/{:06d}.jpg'.format(t)


def flow_member(t):
    return 'flow/{:06d}.png'.format(t)


def precomputed_member(video_id):
    """Returns the path of ``video_id``'s zip relative to the output folder."""
    return 'videos/' + video_id + '.zip'


def precomputed_path(output_dir, video_id):
    """Returns where the precomputed zip of ``video_id`` lives."""
    return os.path.join(output_dir, precomputed_member(video_id))


def encode_rgb(frame, quality):
    """Encodes an (H, W, 3) uint8 RGB frame as JPEG bytes."""
    import cv2
    ok, data = cv2.imencode('.jpg', frame[:, :, ::-1],
                            [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError('OpenCV could not encode a frame of shape '
                         '{}'.format(frame.shape))
    return data.tobytes()


def encode_flow(quantized):
    """Encodes an (H, W, 2) uint8 quantized flow as one (2H, W) PNG."""
    import cv2
    stacked = numpy.concatenate((quantized[:, :, 0], quantized[:, :, 1]))
    ok, data = cv2.imencode('.png', stacked)
    if not ok:
        raise ValueError('OpenCV could not encode a flow of shape '
                         '{}'.format(quantized.shape))
    return data.tobytes()


def _add(archive, name, data):
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
    info.compress_type = zipfile.ZIP_STORED
    archive.writestr(info, data)


def write_precomputed_video(path, meta, rgb_frames, flow_frames=(),
                            jpeg_quality=95):
    """Writes one precomputed video atomically.

    The zip is written under a temporary name in the same folder, flushed to
    disk, then renamed: a reader (or a resumed run) sees the whole file or
    none. On any error the temporary file is removed.

    Args:
        path (str): Final path (``precomputed_path(...)``).
        meta (dict): JSON-serializable facts about the video.
        rgb_frames (list of numpy.ndarray): (H, W, 3) uint8 RGB frames.
        flow_frames (list of numpy.ndarray): (H, W, 2) uint8 quantized flow.
        jpeg_quality (int): JPEG quality of the RGB frames.
    """
    meta = dict(meta, format_version=FORMAT_VERSION,
                n_frames=len(rgb_frames), n_flow_frames=len(flow_frames),
                rgb_encoding='jpeg', jpeg_quality=int(jpeg_quality),
                flow_encoding='png-uint8-stacked-xy')
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        with zipfile.ZipFile(f, 'w') as archive:
            _add(archive, META_NAME, json.dumps(meta, sort_keys=True))
            for t, frame in enumerate(rgb_frames):
                _add(archive, rgb_member(t), encode_rgb(frame, jpeg_quality))
            for t, flow in enumerate(flow_frames):
                _add(archive, flow_member(t), encode_flow(flow))
        f.flush()
        os.fsync(f.fileno())


class PrecomputedVideo(object):
    """Reads frames of one precomputed video, decoding only those asked for.

    Args:
        source (str or file): Path of the zip, or a seekable binary file
            object (e.g. opened through pfio), which it then owns and closes.

    Example:

        >>> with PrecomputedVideo('out/videos/abc_000010_000020.zip') as v:
        ...     rgb = v.read_rgb(range(64))   # (3, 64, H, W) float32
    """

    def __init__(self, source):
        self.source = source
        self._zip = None
        try:
            self._zip = zipfile.ZipFile(source)
            self.meta = json.loads(self._zip.read(META_NAME))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile,
                zlib.error, EOFError) as e:
            self.close()
            raise ValueError('{} is not a precomputed video ({})'.format(
                source, e))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._zip is not None:
            self._zip.close()
        if hasattr(self.source, 'close'):
            self.source.close()

    @property
    def n_frames(self):
        return self.meta['n_frames']

    @property
    def n_flow_frames(self):
        return self.meta['n_flow_frames']

    def _decode(self, name, flags):
        import cv2
        try:
            raw = self._zip.read(name)
        except (KeyError, zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise ValueError('{}: member {} cannot be read ({})'.format(
                self.source, name, e))
        data = numpy.frombuffer(raw, dtype=numpy.uint8)
        image = cv2.imdecode(data, flags)
        if image is None:
            raise ValueError('{}: member {} is not a readable image'.format(
                self.source, name))
        return image

    def read_rgb(self, indices):
        """Returns frames ``indices`` as (3, T, H, W) float32 in [0, 255]."""
        import cv2
        frames = [self._decode(rgb_member(t), cv2.IMREAD_COLOR)[:, :, ::-1]
                  for t in self._check(indices, self.n_frames, 'rgb')]
        return numpy.stack(frames).transpose(3, 0, 1, 2).astype(numpy.float32)

    def read_flow_quantized(self, indices):
        """Returns flows ``indices`` as (2, T, H, W) uint8, quantized."""
        import cv2
        flows = []
        for t in self._check(indices, self.n_flow_frames, 'flow'):
            stacked = self._decode(flow_member(t), cv2.IMREAD_GRAYSCALE)
            flows.append(stacked.reshape(2, -1, stacked.shape[1]))
        return numpy.stack(flows, axis=1)

    @property
    def flow_bound(self):
        """The bound the flow was quantized with (20 in older files)."""
        return self.meta.get('flow_bound', DEFAULT_FLOW_BOUND)

    @property
    def preset(self):
        """The :class:`~chainercv_i3d.presets.Preset` it was made with, or
        ``None`` for files written before presets were stored."""
        if 'preset' not in self.meta:
            return None
        return preset_from_dict(self.meta['preset'])

    def read_flow(self, indices):
        """Returns flows ``indices`` as (2, T, H, W) float32 in pixels, in
        ``[-flow_bound, flow_bound]``."""
        return dequantize_flow(self.read_flow_quantized(indices),
                               self.flow_bound)

    def _check(self, indices, available, what):
        indices = [int(t) for t in indices]
        if not indices:
            raise ValueError('no {} frame asked for'.format(what))
        bad = [t for t in indices if not 0 <= t < available]
        if bad:
            raise ValueError('{}: {} frame {} asked for, it has {}'.format(
                self.source, what, bad[0], available))
        return indices
