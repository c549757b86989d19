"""Damaged copies of an ``.npz``, for the tests of one-line errors."""

import zipfile

import numpy


def write_damaged_copies(path, folder, key):
    """Writes four bad versions of the ``.npz`` ``path`` into ``folder``.

    Args:
        path (str): A good ``.npz``.
        folder (pathlib.Path): Where to write them.
        key (str): A member (without ``.npy``) to damage and to leave out.

    Returns:
        dict: ``{kind: path}`` for ``'bad_crc'`` (a byte of ``key``'s data
        flipped), ``'truncated'`` (the first half), ``'missing'`` (without
        ``key``) and ``'text'`` (a text file named ``.npz``).
    """
    with open(path, 'rb') as f:
        original = f.read()
    data = bytearray(original)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(key + '.npy')
    # The member's data start after its local header (30 bytes), name and
    # extra field; flip a byte well inside them.
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    paths = {kind: str(folder / '{}.npz'.format(kind))
             for kind in ('bad_crc', 'truncated', 'missing', 'text')}
    with open(paths['bad_crc'], 'wb') as f:
        f.write(data)
    with open(paths['truncated'], 'wb') as f:
        f.write(original[:len(original) // 2])
    with numpy.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files if name != key}
    with open(paths['missing'], 'wb') as f:
        numpy.savez(f, **arrays)
    with open(paths['text'], 'w') as f:
        f.write('not weights\n')
    return paths
