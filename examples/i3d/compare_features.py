"""Compares our features of videos with a released set, file by file.

    python examples/i3d/compare_features.py OURS THEIRS [--json out.json] \\
        [--max_offset 8] [--crops mean|each] [--streams rgb|flow] [--key K]

OURS and THEIRS are two feature files of one video, or two folders whose
files are matched by relative path without extension (a/b.npy with
a/b.npz). A file is a .npy, or an .npz with one array or the one named by
--key (numpy formats only: save others, such as .pt, with numpy first), of
shape (D,), (T, D) or (T, n_crop, D). The steps are aligned by the offset
with the highest mean cosine similarity (|offset| <= --max_offset), then
the errors, cosine similarities, Pearson correlations and a verdict are
printed: same (mean cosine >= 0.999), close (>= 0.99), different, or not
comparable (feature sizes differ). --json writes every number.

Exit status: 0 when every file compared is same or close; 1 when one is
different or not comparable; 2 for a bad input (a missing or unreadable
file, not a numpy array, NaN, empty, crop counts that differ, no file in
common), said in one line on stderr. Files found in one folder only are
listed and do not change the status (a released set often has videos that
can no longer be downloaded).
"""

import argparse
import json
import os
import sys

import quiet_interrupt  # NOQA: first: Ctrl-C while starting is one line
import chainercv_i3d  # NOQA: before chainer (see chainercv_i3d.chainer_compat)
from tqdm import tqdm

from chainercv_i3d.evaluations.feature_comparison import CLOSE_COSINE
from chainercv_i3d.evaluations.feature_comparison import compare_files
from chainercv_i3d.evaluations.feature_comparison import compare_folders
from chainercv_i3d.evaluations.feature_comparison import CROP_MODES
from chainercv_i3d.evaluations.feature_comparison import EXIT_BAD_INPUT
from chainercv_i3d.evaluations.feature_comparison import exit_status
from chainercv_i3d.evaluations.feature_comparison import \
    format_comparison
from chainercv_i3d.evaluations.feature_comparison import \
    format_folder_comparison
from chainercv_i3d.evaluations.feature_comparison import MAX_OFFSET
from chainercv_i3d.evaluations.feature_comparison import SAME_COSINE
from chainercv_i3d.evaluations.feature_comparison import STREAM_CHOICES
from chainercv_i3d.files import atomic_path
from chainercv_i3d.utils.cli import output_file
from chainercv_i3d.utils.cli import non_negative_int

PROG = 'compare_features'
# Folder comparisons with more files print the lowest cosines only.
MAX_ROWS_PRINTED = 50


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('ours', help='our features: a .npy/.npz or a folder')
    parser.add_argument('theirs', help='the released features: a file or '
                        'folder, as OURS')
    parser.add_argument('--json', type=output_file,
                        help='also write every number here')
    parser.add_argument('--max_offset', type=non_negative_int,
                        default=MAX_OFFSET,
                        help='offsets tried, in steps (default %(default)s)')
    parser.add_argument('--crops', choices=CROP_MODES,
                        help='(T, n_crop, D) features: compare each crop '
                        'with its counterpart, or the means over crops '
                        '(default: each, and crop counts that differ are '
                        'an error)')
    parser.add_argument('--streams', choices=STREAM_CHOICES,
                        help='when one side has twice the D of the other '
                        '(two streams, RGB then flow, as ours): compare '
                        'this half of it')
    parser.add_argument('--key', help='the array of an .npz holding several')
    parser.add_argument('--quiet', action='store_true',
                        help='no progress bar for folders')
    return parser.parse_args(argv)


def compare(args):
    """Returns the JSON document, the text for people and the exit status;
    raises ValueError for a bad input."""
    options = {'max_offset': args.max_offset, 'crops': args.crops,
               'streams': args.streams}
    document = {'ours': args.ours, 'theirs': args.theirs,
                'options': dict(options, key=args.key),
                'thresholds': {'same': SAME_COSINE, 'close': CLOSE_COSINE}}
    dirs = [os.path.isdir(p) for p in (args.ours, args.theirs)]
    if dirs[0] != dirs[1]:
        raise ValueError('{} is a folder and {} is not: give two files or '
                         'two folders'.format(
                             *((args.ours, args.theirs) if dirs[0]
                               else (args.theirs, args.ours))))
    if not dirs[0]:
        result = compare_files(args.ours, args.theirs, args.key, **options)
        document.update(result, mode='files',
                        exit_status=exit_status([result['verdict']]))
        return document, format_comparison(result), document['exit_status']

    bar = None

    def on_file(entry, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit='file', disable=args.quiet,
                       dynamic_ncols=True)
        if entry['verdict'] == 'error':
            bar.write('{}: {}'.format(PROG, entry['message']),
                      file=sys.stderr)
        bar.update()

    result = compare_folders(args.ours, args.theirs, args.key,
                             on_file=on_file, **options)
    if bar is not None:
        bar.close()
    status = exit_status(e['verdict'] for e in result['files'])
    if not result['files']:
        status = EXIT_BAD_INPUT
    document.update(result, mode='folders', exit_status=status)
    return document, format_folder_comparison(result, MAX_ROWS_PRINTED), \
        status


def main(argv=None):
    args = parse_args(argv)
    try:
        document, text, status = compare(args)
    except (ValueError, OSError) as e:
        sys.stderr.write('{}: {}\n'.format(PROG, e))
        return EXIT_BAD_INPUT
    print(text)
    if args.json:
        try:
            with atomic_path(args.json) as tmp, open(tmp, 'w') as f:
                json.dump(document, f, indent=2, sort_keys=True)
        except OSError as e:
            sys.stderr.write('{}: cannot write {}: {}\n'.format(
                PROG, args.json, e))
            return EXIT_BAD_INPUT
    if document['mode'] == 'folders' and not document['files']:
        sys.stderr.write('{}: no file in common between {} and {}\n'.format(
            PROG, args.ours, args.theirs))
    return status


if __name__ == '__main__':
    sys.exit(main())
