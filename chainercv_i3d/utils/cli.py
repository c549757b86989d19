"""Small helpers the command-line scripts share."""

import argparse


def positive_int(text):
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('must be at least 1, not ' + text)
    return value
