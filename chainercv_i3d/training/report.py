"""The training log: printed for people, ``log.json`` for programs, and a
PNG of loss, accuracy and learning rate."""

import json
import math
import os

from chainercv_i3d.files import atomic_path

LOG_NAME = 'log.json'
PLOT_NAME = 'training.png'
# Columns printed per log entry, with their widths.
COLUMNS = (('iteration', 9), ('epoch', 8), ('lr', 9), ('main/loss', 10),
           ('main/accuracy', 13), ('validation/top1', 15),
           ('validation/map', 14), ('elapsed_time', 12))


class TrainingLog(object):
    """Entries (dicts) of a run, kept in ``out_dir/log.json``.

    A resumed run reads the entries of the run it continues, up to its
    snapshot's iteration, and appends.

    Args:
        out_dir (str): The run's output folder.
        resume_iteration (int): Iteration of the snapshot resumed from (0:
            a new run).
    """

    def __init__(self, out_dir, resume_iteration=0):
        self.path = os.path.join(out_dir, LOG_NAME)
        self.plot_path = os.path.join(out_dir, PLOT_NAME)
        self.entries = []
        if resume_iteration and os.path.exists(self.path):
            with open(self.path) as f:
                self.entries = [e for e in json.load(f)
                                if e['iteration'] <= resume_iteration]

    def elapsed_time(self):
        """Seconds of training the kept entries record (0 for a new run):
        where a resumed run's clock starts, so that ``elapsed_time`` adds
        up across resumes (the updates redone after the snapshot count
        once)."""
        return self.entries[-1].get('elapsed_time', 0) if self.entries else 0

    def append(self, entry):
        """Adds ``entry`` and rewrites ``log.json``."""
        self.entries.append(entry)
        with atomic_path(self.path) as tmp, open(tmp, 'w') as f:
            json.dump(self.entries, f, indent=1)

    def header(self):
        """The column titles of :meth:`format_entry`."""
        return '  '.join(name.ljust(width) for name, width in COLUMNS)

    @staticmethod
    def format_entry(entry):
        """One line of the entry's values under :meth:`header`."""
        cells = []
        for name, width in COLUMNS:
            value = entry.get(name)
            if value is None:
                text = ''
            elif name == 'lr':
                text = '{:.3g}'.format(value)
            elif isinstance(value, float):
                text = '{:.5g}'.format(value)
            else:
                text = str(value)
            cells.append(text.ljust(width))
        return '  '.join(cells).rstrip()

    def plot(self):
        """Writes loss, accuracy and learning rate against the iteration
        to ``training.png``."""
        write_plot(self.entries, self.plot_path)


def _series(entries, key):
    points = [(e['iteration'], e[key]) for e in entries
              if e.get(key) is not None and math.isfinite(e[key])]
    return [p[0] for p in points], [p[1] for p in points]


def _plot(axes, entries, key, **style):
    """Plots the series ``key`` if it has points: a run without validation
    (or a single-label one, without mAP) lists no empty series in its
    legend."""
    iterations, values = _series(entries, key)
    if values:
        axes.plot(iterations, values, **style)


def write_plot(entries, path):
    """Writes :func:`training_figure` of ``entries`` to the PNG ``path``."""
    figure = training_figure(entries)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format='png')


def training_figure(entries):
    """Loss, accuracy (train and validation) and learning rate of log
    ``entries`` against the iteration: a matplotlib figure of three
    panels."""
    # The object API, not pyplot: no global backend or state is touched.
    from matplotlib.figure import Figure  # heavy: only when a plot is made
    figure = Figure(figsize=(7, 8), dpi=100, layout='constrained')
    loss, accuracy, lr = figure.subplots(3, 1, sharex=True)
    _plot(loss, entries, 'main/loss', label='train', marker='.')
    _plot(loss, entries, 'validation/loss', label='validation', marker='o')
    loss.set_ylabel('cross-entropy')
    _plot(accuracy, entries, 'main/accuracy', label='train (clips)',
          marker='.')
    _plot(accuracy, entries, 'validation/top1',
          label='validation top-1 (videos)', marker='o')
    _plot(accuracy, entries, 'validation/top5',
          label='validation top-5 (videos)', marker='o')
    _plot(accuracy, entries, 'validation/map',
          label='validation mAP (videos)', marker='o')
    accuracy.set_ylabel('accuracy')
    accuracy.set_ylim(-0.02, 1.02)
    _plot(lr, entries, 'lr', drawstyle='steps-post', marker='.')
    lr.set_ylabel('learning rate')
    lr.set_yscale('log')
    lr.set_xlabel('iteration (updates)')
    for axes in (loss, accuracy):
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc='best', fontsize='small')
    for axes in (loss, accuracy, lr):
        axes.grid(True, alpha=0.3)
    figure.suptitle('I3D training')
    return figure
