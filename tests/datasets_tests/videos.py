"""Small videos that the tests write with OpenCV's VideoWriter."""

import os

import numpy


# FFV1 is lossless; .mp4 takes only lossy codecs; Something-Something V2's
# .webm files are VP9.
_FOURCC = {'.mp4': 'mp4v', '.webm': 'VP90'}


def write_video(path, frames, fps=25.0, fourcc=None):
    """Writes (H, W, 3) uint8 RGB frames with a codec the container takes."""
    import cv2
    if fourcc is None:
        fourcc = _FOURCC.get(os.path.splitext(str(path))[1], 'FFV1')
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc),
                             fps, (width, height))
    assert writer.isOpened(), path
    for frame in frames:
        writer.write(numpy.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    return str(path)


def noise_frames(n, height=48, width=64, seed=0):
    rng = numpy.random.RandomState(seed)
    return [rng.randint(0, 256, (height, width, 3)).astype(numpy.uint8)
            for _ in range(n)]


def translating_texture(n, dx, dy, height=96, width=128, seed=0):
    """Frames of a smooth texture moving by (dx, dy) whole pixels a frame."""
    import cv2
    rng = numpy.random.RandomState(seed)
    margin = n * max(abs(dx), abs(dy)) + 1
    big = rng.uniform(0, 255, (height + 2 * margin, width + 2 * margin))
    big = cv2.GaussianBlur(big, (0, 0), 2.0)
    big = (255 * (big - big.min()) / (big.max() - big.min())).astype('uint8')
    frames = []
    for t in range(n):
        # Content moving right/down by (dx, dy): the window moves left/up.
        y0, x0 = margin - t * dy, margin - t * dx
        gray = big[y0:y0 + height, x0:x0 + width]
        frames.append(numpy.repeat(gray[:, :, None], 3, axis=2))
    return frames
