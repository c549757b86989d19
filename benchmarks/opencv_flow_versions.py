"""How far OpenCV's own TV-L1 moves between OpenCV versions.

Run ``save`` once in each environment (one opencv-contrib-python-headless
version each), then ``compare`` two of the files::

    python benchmarks/opencv_flow_versions.py save flow_4.11.npz
    python benchmarks/opencv_flow_versions.py save flow_5.0.npz  # other env
    python benchmarks/opencv_flow_versions.py compare flow_4.11.npz \\
        flow_5.0.npz

``save`` computes ``cv2.optflow.DualTVL1OpticalFlow_create()`` flow (a fresh
object per pair, default parameters) for three pairs of the shared bikes
video (frames 0-1, 5-6, 10-11 at short side 128) and stores it with the
OpenCV version; ``compare`` prints the end-point error between two files.
It needs only numpy and OpenCV (not this package), so that a throw-away
environment per OpenCV version is enough.
"""

import argparse
import os

import numpy

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIKES = os.path.join(
    os.environ.get('CHAINERCV_I3D_SHARED',
                   os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'i3d')),
    'videos', 'bikes.mp4')
PAIRS = ((0, 1), (5, 6), (10, 11))
SHORT_SIDE = 128


def first_gray_frames(n_frame):
    """The first frames of the bikes video, short side scaled (bilinear),
    in gray."""
    import cv2
    capture = cv2.VideoCapture(BIKES)
    gray = []
    while len(gray) < n_frame:
        ok, frame = capture.read()
        if not ok:
            raise ValueError('{}: fewer than {} frames'.format(BIKES, n_frame))
        height, width = frame.shape[:2]
        scale = SHORT_SIDE / min(height, width)
        size = (int(round(width * scale)), int(round(height * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
        gray.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    return numpy.stack(gray)


def save(path):
    import cv2
    gray = first_gray_frames(12)
    flows = [cv2.optflow.DualTVL1OpticalFlow_create().calc(
        gray[a], gray[b], None) for a, b in PAIRS]
    numpy.savez(path, flow=numpy.stack(flows), version=cv2.__version__)
    print('OpenCV {}: {} pairs of {}x{} -> {}'.format(
        cv2.__version__, len(flows), gray.shape[1], gray.shape[2], path))


def compare(path_a, path_b):
    a, b = numpy.load(path_a), numpy.load(path_b)
    error = numpy.sqrt(((a['flow'] - b['flow']) ** 2).sum(axis=-1))
    print('OpenCV {} vs {}: end-point error mean {:.4f} px, p99 {:.3f}, '
          'max {:.2f}'.format(a['version'], b['version'], error.mean(),
                              numpy.percentile(error, 99), error.max()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('save').add_argument('path')
    pair = sub.add_parser('compare')
    pair.add_argument('path_a')
    pair.add_argument('path_b')
    args = parser.parse_args()
    if args.command == 'save':
        save(args.path)
    else:
        compare(args.path_a, args.path_b)


if __name__ == '__main__':
    main()
