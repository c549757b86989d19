import numpy

from chainercv_i3d.visualization.grid import add_timeline
from chainercv_i3d.visualization.grid import grid_shape
from chainercv_i3d.visualization.grid import normalize_per_tile
from chainercv_i3d.visualization.grid import resize_image
from chainercv_i3d.visualization.grid import side_by_side
from chainercv_i3d.visualization.grid import tile_grid
from chainercv_i3d.visualization.grid import upscale_nearest


def test_tiles_are_laid_out_row_by_row_between_separators():
    tiles = numpy.stack([numpy.full((3, 4, 3), i, numpy.uint8)
                         for i in range(5)])
    grid = tile_grid(tiles, separator=1, separator_color=(255, 255, 255))
    # 5 tiles: 3 columns, 2 rows.
    assert grid.shape == (2 * 3 + 3, 3 * 4 + 4, 3)
    assert grid_shape(5, 3, 4, separator=1) == grid.shape[:2]
    for i in range(5):
        row, column = divmod(i, 3)
        y, x = 1 + row * 4, 1 + column * 5
        assert (grid[y:y + 3, x:x + 4] == i).all()
    assert (grid[0] == 255).all() and (grid[:, 0] == 255).all()
    assert (grid[4] == 255).all()  # between the rows
    assert (grid[5:8, 11:15] == 255).all()  # the missing sixth tile


def test_each_tile_is_normalized_over_its_own_values():
    values = numpy.stack([numpy.arange(4.0), 10 * numpy.arange(4.0) - 5,
                          numpy.full(4, 7.0)])
    scaled = normalize_per_tile(values, axes=(1,))
    expected = numpy.arange(4.0) / 3
    numpy.testing.assert_allclose(scaled[0], expected, rtol=1e-6)
    numpy.testing.assert_allclose(scaled[1], expected, rtol=1e-6)
    numpy.testing.assert_array_equal(scaled[2], 0)  # constant: black


def test_a_percentile_clips_the_hot_pixels():
    values = numpy.concatenate([numpy.linspace(0, 1, 99), [100.0]])[None]
    scaled = normalize_per_tile(values, axes=(1,), top_percentile=98)
    assert scaled[0, -1] == 1 and scaled[0, 49] > 0.4


def test_nearest_upscaling_repeats_pixels():
    image = numpy.arange(12, dtype=numpy.uint8).reshape(2, 2, 3)
    big = upscale_nearest(image, 3)
    assert big.shape == (6, 6, 3)
    assert (big[:3, :3] == image[0, 0]).all()
    assert (big[3:, 3:] == image[1, 1]).all()
    assert (big[:3, 3:] == image[0, 1]).all()
    numpy.testing.assert_array_equal(resize_image(image, 6, 6), big)
    assert resize_image(numpy.zeros((8, 8, 3), numpy.uint8), 4, 4).shape \
        == (4, 4, 3)


def test_panels_and_timeline():
    row = side_by_side([numpy.zeros((4, 2, 3), numpy.uint8),
                        numpy.zeros((2, 3, 3), numpy.uint8)], separator=1)
    assert row.shape == (4, 6, 3)
    assert (row[:, 2] == 255).all() and (row[2:, 3:] == 255).all()
    image = numpy.zeros((5, 10, 3), numpy.uint8)
    first = add_timeline(image, 0, 4, height=2)
    last = add_timeline(image, 3, 4, height=2)
    assert first.shape == (7, 10, 3)
    filled = (first[5:].max(axis=2) > 0).all(axis=0)
    assert filled.sum() == 2 or filled.sum() == 3  # a quarter of 10
    assert (last[5:].max(axis=2) > 0).all()
    assert not numpy.array_equal(first, last)
