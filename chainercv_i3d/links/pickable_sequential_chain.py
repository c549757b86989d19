import chainer


class PickableSequentialChain(chainer.Chain):
    """A chain of named layers whose intermediate outputs can be picked.

    Follows ChainerCV's class of the same name. Layers (links or plain
    callables) assigned inside ``init_scope`` are called in the order they were
    assigned. ``pick`` selects which outputs ``forward`` returns: one name
    gives one output, a tuple or list of names gives a tuple. Nothing after
    the last picked layer is computed.

    Example:

        >>> model.layer_names
        ['conv1', 'pool1', 'fc']
        >>> model.pick = ('conv1', 'pool1')
        >>> conv1, pool1 = model(x)  # 'fc' is not computed
    """

    def __init__(self):
        super(PickableSequentialChain, self).__init__()
        self.layer_names = []
        self._pick = None
        self._return_tuple = False

    def __setattr__(self, name, value):
        super(PickableSequentialChain, self).__setattr__(name, value)
        if getattr(self, 'within_init_scope', False) and callable(value) \
                and name not in self.layer_names:
            self.layer_names.append(name)

    def __delattr__(self, name):
        super(PickableSequentialChain, self).__delattr__(name)
        if name in self.layer_names:
            self.layer_names.remove(name)

    def replace_layer(self, name, layer):
        """Replaces layer ``name`` by ``layer`` at the same position.

        Deleting and assigning again would move the layer to the end.

        Raises:
            ValueError: There is no layer ``name``.
        """
        if name not in self.layer_names:
            raise ValueError('replace_layer: no layer named {!r}; the layers '
                             'are: {}'.format(name, ', '.join(self.layer_names)))
        names = list(self.layer_names)
        delattr(self, name)
        with self.init_scope():
            setattr(self, name, layer)
        self.layer_names[:] = names

    @property
    def pick(self):
        """str or tuple of str: The layer names whose outputs are returned.

        Defaults to the last layer.
        """
        if self._pick is None:
            return self.layer_names[-1]
        return self._pick if self._return_tuple else self._pick[0]

    @pick.setter
    def pick(self, names):
        if names is None:
            self._pick, self._return_tuple = None, False
            return
        return_tuple = isinstance(names, (tuple, list))
        names = tuple(names) if return_tuple else (names,)
        for name in names:
            if name not in self.layer_names:
                raise ValueError(
                    'pick: no layer named {!r}; the layers are: {}'.format(
                        name, ', '.join(self.layer_names)))
        self._pick, self._return_tuple = names, return_tuple

    def _picked_names(self):
        return (self.layer_names[-1],) if self._pick is None else self._pick

    def last_picked_index(self):
        """Returns the index in ``layer_names`` of the last layer computed."""
        return max(self.layer_names.index(name)
                   for name in self._picked_names())

    def forward(self, x):
        _, outputs = self.run_layers(x)
        return self.picked_outputs(outputs)

    def run_layers(self, h, first=0, last=None):
        """Runs the layers of indices ``first`` to ``last`` on ``h``.

        Args:
            h: The input of layer ``first``.
            first (int): Index of the first layer to run.
            last (int): Index of the last one; default the last picked.

        Returns:
            tuple: The output of layer ``last`` and a dict of the outputs of
            the picked layers among those run.
        """
        last = self.last_picked_index() if last is None else last
        picked = self._picked_names()
        outputs = {}
        for name in self.layer_names[first:last + 1]:
            h = getattr(self, name)(h)
            if name in picked:
                outputs[name] = h
        return h, outputs

    def picked_outputs(self, outputs):
        """What ``forward`` returns, from a dict of the picked outputs."""
        picked = self._picked_names()
        if self._return_tuple:
            return tuple(outputs[name] for name in picked)
        return outputs[picked[0]]
