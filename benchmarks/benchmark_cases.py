"""The ``BATCHxFRAMES`` cases of the benchmarks' ``--cases`` options."""

import argparse


def parse_case(text, min_frames=1):
    """Parses ``'BxT'`` into ``(batch, frames)``; ``frames`` must be at
    least ``min_frames`` (9 where I3D's head runs)."""
    try:
        batch, frames = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            'a case is BATCHxFRAMES, e.g. 1x64, not {!r}'.format(text))
    if batch < 1 or frames < min_frames:
        raise argparse.ArgumentTypeError(
            'a case needs batch >= 1 and frames >= {}, got {!r}'.format(
                min_frames, text))
    return batch, frames


def parse_cases(text, min_frames=1):
    """Parses comma-separated cases (see :func:`parse_case`)."""
    return [parse_case(case, min_frames) for case in text.split(',') if case]
