"""Reading precomputed data from a folder, or through pfio.

pfio (the maintained successor of chainerio) opens ``file://`` folders, zip
archives (``/data/kinetics_val.zip``) and object stores (``s3://bucket/dir``)
behind one interface.
"""

import os


def needs_pfio(root):
    """True for a URL or a zip archive, False for a plain local folder."""
    return '://' in root or root.endswith('.zip')


class Storage(object):
    """Files below ``root``: a local folder, or anything pfio opens.

    The pfio file system is opened lazily in each process: its handles (a
    zip's file descriptor) must not be shared by processes forked for data
    loading, which would move one another's file position.

    Args:
        root (str): A folder, a ``.zip`` archive, or a pfio URL.
        use_pfio (bool): Force pfio for a local folder too.
    """

    def __init__(self, root, use_pfio=False):
        self.root = root
        self.use_pfio = use_pfio or needs_pfio(root)
        self._fs = None
        self._pid = None

    def _filesystem(self):
        if self._fs is None or self._pid != os.getpid():
            try:
                from pfio.v2 import from_url
            except ImportError as e:
                raise ImportError('reading {} needs pfio ({}): pip install '
                                  '"chainercv_i3d[pfio]"'.format(self.root, e))
            self._fs = from_url(self.root)
            self._pid = os.getpid()
        return self._fs

    def open(self, path, mode='rb'):
        """Opens ``path`` (relative to the root)."""
        if not self.use_pfio:
            return open(os.path.join(self.root, path), mode)
        return self._filesystem().open(path, mode)

    def exists(self, path):
        if not self.use_pfio:
            return os.path.exists(os.path.join(self.root, path))
        return self._filesystem().exists(path)

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_fs'] = None  # reopened by whoever unpickles it
        return state
