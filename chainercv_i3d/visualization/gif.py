"""Writing pictures: animated GIFs and PNGs (Pillow).

The folder is checked before the work (``examples/i3d/visualize.py`` takes
``--out`` as :func:`chainercv_i3d.utils.cli.output_dir`) and created, with
its missing parents, by the first picture written
(:func:`chainercv_i3d.files.atomic_path`)."""

from PIL import Image

from chainercv_i3d.files import atomic_path


def write_gif(path, frames, frame_ms):
    """Writes frames as an animated GIF that loops forever.

    Each frame gets its own palette of 256 colours, without dithering
    (dithering adds noise to small tiles and bytes to the file). Identical
    consecutive
    frames would be merged by the writer: give distinct frames (see
    :func:`~chainercv_i3d.visualization.grid.add_timeline`).

    Args:
        path (str): The ``.gif`` to write (whole or not at all).
        frames (list of numpy.ndarray): ``(H, W, 3)`` uint8 RGB, one size.
        frame_ms (int): Display time of each frame in milliseconds.

    Returns:
        str: ``path``.
    """
    if not frames:
        raise ValueError('no frame to write to {}'.format(path))
    images = [Image.fromarray(frame).quantize(256, dither=Image.Dither.NONE)
              for frame in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format='GIF', save_all=True,
                       append_images=images[1:], duration=int(frame_ms),
                       loop=0)
    return path


def write_png(path, image):
    """Writes an ``(H, W, 3)`` uint8 RGB image as a PNG; returns ``path``."""
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format='PNG', optimize=True)
    return path
