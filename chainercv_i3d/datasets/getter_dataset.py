import chainer


class GetterDataset(chainer.dataset.DatasetMixin):
    """A dataset whose examples are assembled from named, lazy getters.

    Follows ChainerCV's class of the same name: ``add_getter(keys, fn)``
    registers ``fn(i)`` as the source of ``keys``; ``dataset.keys = ('rgb',
    'label')`` selects what an example holds, and only the getters of the
    selected keys run, so a key not asked for is never loaded.
    """

    def __init__(self):
        self._getters = {}
        self._keys = ()

    def add_getter(self, keys, getter):
        """Registers ``getter(i)``, returning one value or a tuple for keys."""
        names = keys if isinstance(keys, tuple) else (keys,)
        for index, key in enumerate(names):
            self._getters[key] = (getter, index if isinstance(keys, tuple)
                                  else None)
        self._keys = self._keys + names

    @property
    def keys(self):
        """tuple of str: The keys of an example, in order."""
        return self._keys

    @keys.setter
    def keys(self, keys):
        keys = keys if isinstance(keys, tuple) else (keys,)
        unknown = [k for k in keys if k not in self._getters]
        if unknown:
            raise KeyError('unknown key(s) {}; this dataset has {}'.format(
                ', '.join(unknown), ', '.join(self._getters)))
        self._keys = keys

    def get_example(self, i):
        if not 0 <= i < len(self):
            raise IndexError('index {} out of range for {} examples'.format(
                i, len(self)))
        cache = {}
        values = []
        for key in self._keys:
            getter, index = self._getters[key]
            if getter not in cache:
                cache[getter] = getter(i)
            values.append(cache[getter] if index is None
                          else cache[getter][index])
        return values[0] if len(values) == 1 else tuple(values)
