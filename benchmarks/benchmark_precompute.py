"""Throughput and storage of the precompute stage, one line per measurement.

    python benchmarks/benchmark_precompute.py [VIDEO ...] [--flow_pairs 8]

Defaults to the three videos of ../shared/i3d/videos. Per video it prints:

* ``rgb``: decode + resample to 25 fps + resize (short side 256) + JPEG
  encode + write, the whole video on one core: videos/min for the video
  and frames/s;
* ``flow``: TV-L1 on the first ``--flow_pairs`` frame pairs at that size on
  one core (OpenCV threads set to 1): pairs/s per core, the minutes one
  250-frame (10 s) Kinetics clip would take, and videos/min for this video
  with RGB and flow (the RGB time plus its pairs at the measured rate);
* ``format``: bytes per frame of the stored RGB (JPEG) and flow (PNG of the
  uint8 quantized x and y), the time to read a 64-frame clip of each, the
  RGB error the JPEG adds (mean and max absolute, in levels of 255) and the
  flow error quantization adds (mean and max, in pixels).
"""

import argparse
import os
import tempfile
import time

import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)
import cv2
import numpy

from chainercv_i3d.datasets.precomputed_video import encode_flow
from chainercv_i3d.datasets.precomputed_video import encode_rgb
from chainercv_i3d.datasets.precomputed_video import PrecomputedVideo
from chainercv_i3d.datasets.precomputed_video import write_precomputed_video
from chainercv_i3d.flow import dequantize_flow
from chainercv_i3d.flow import get_flow_backend
from chainercv_i3d.flow import quantize_flow
from chainercv_i3d.flow import video_flow
from chainercv_i3d.presets import DEEPMIND_KINETICS
from chainercv_i3d.utils.video import decode_and_resample

SHARED_VIDEOS = os.path.join(os.path.dirname(__file__), '..', '..', 'shared',
                             'i3d', 'videos')
CLIP = 64


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('videos', nargs='*')
    parser.add_argument('--flow_pairs', type=int, default=8)
    parser.add_argument('--jpeg_quality', type=int, default=95)
    args = parser.parse_args()
    if not args.videos:
        args.videos = sorted(
            os.path.join(SHARED_VIDEOS, name)
            for name in os.listdir(SHARED_VIDEOS) if name.endswith('.mp4'))
    return args


def measure_rgb(path, quality, out_dir):
    start = time.perf_counter()
    frames, _ = decode_and_resample(path, DEEPMIND_KINETICS.fps,
                                    DEEPMIND_KINETICS.short_side)
    out = os.path.join(out_dir, 'rgb.zip')
    write_precomputed_video(out, {}, frames, (), quality)
    seconds = time.perf_counter() - start
    return frames, out, seconds


def measure_flow(frames, n_pairs):
    backend = get_flow_backend('tvl1')
    # The stages' own call (gray conversion included: a few ms per pair).
    start = time.perf_counter()
    flows = list(video_flow(frames[:n_pairs + 1], backend))
    return flows, (time.perf_counter() - start) / len(flows)


def read_time(path, kind, n):
    with PrecomputedVideo(path) as video:
        available = video.n_frames if kind == 'rgb' else video.n_flow_frames
        indices = numpy.arange(n) % available
        start = time.perf_counter()
        (video.read_rgb if kind == 'rgb' else video.read_flow)(indices)
        return time.perf_counter() - start


def rgb_error(frames, path):
    with PrecomputedVideo(path) as video:
        decoded = video.read_rgb(range(video.n_frames))
    raw = numpy.stack(frames).transpose(3, 0, 1, 2).astype(numpy.float32)
    error = numpy.abs(decoded - raw)
    return error.mean(), error.max()


def main():
    args = parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.videos:
            name = os.path.splitext(os.path.basename(path))[0]
            frames, rgb_zip, seconds = measure_rgb(path, args.jpeg_quality,
                                                   tmp)
            h, w = frames[0].shape[:2]
            print('rgb    video={} frames={} size={}x{} sec={:.2f} '
                  'videos/min/core={:.1f} frames/s/core={:.0f}'.format(
                      name, len(frames), h, w, seconds, 60 / seconds,
                      len(frames) / seconds))
            flows, per_pair = measure_flow(frames, args.flow_pairs)
            with_flow = seconds + (len(frames) - 1) * per_pair
            print('flow   video={} pairs={} size={}x{} pairs/s/core={:.2f} '
                  'min_per_250_frame_clip/core={:.1f} '
                  'rgb+flow_videos/min/core={:.3f}'.format(
                      name, len(flows), h, w, 1 / per_pair,
                      249 * per_pair / 60, 60 / with_flow))
            bound = DEEPMIND_KINETICS.flow_bound
            quantized = [quantize_flow(f, bound) for f in flows]
            flow_zip = os.path.join(tmp, 'flow.zip')
            write_precomputed_video(flow_zip, {}, frames[:len(flows) + 1],
                                    quantized, args.jpeg_quality)
            flow_err = numpy.abs(numpy.stack(
                [dequantize_flow(q, bound) for q in quantized])
                - numpy.clip(numpy.stack(flows), -bound, bound))
            rgb_bytes = numpy.mean([len(encode_rgb(f, args.jpeg_quality))
                                    for f in frames])
            flow_bytes = numpy.mean([len(encode_flow(q)) for q in quantized])
            rgb_mean, rgb_max = rgb_error(frames, rgb_zip)
            print('format video={} rgb_bytes/frame={:.0f} '
                  'flow_bytes/frame={:.0f} read_{}_rgb_s={:.3f} '
                  'read_{}_flow_s={:.3f} rgb_err_mean={:.2f} rgb_err_max={:.0f} '
                  'flow_err_mean_px={:.4f} flow_err_max_px={:.4f} '
                  'video_MB_rgb={:.1f}'.format(
                      name, rgb_bytes, flow_bytes, CLIP,
                      read_time(rgb_zip, 'rgb', CLIP), CLIP,
                      read_time(flow_zip, 'flow', CLIP), rgb_mean, rgb_max,
                      flow_err.mean(), flow_err.max(),
                      os.path.getsize(rgb_zip) / 1e6), flush=True)


if __name__ == '__main__':
    main()
