"""Imported first by the scripts here, before anything slow: Ctrl-C while a
script starts (importing chainer, starting MPI, reading its options), or in
a script without resumable work, ends it with one line, ``<script>:
stopped``, never a traceback; the exit status stays Ctrl-C's (130 in a
shell). The long scripts' work has its own line, which says what is kept
(chainercv_i3d.utils.interrupts.stop_on_interrupt)."""

import os
import signal
import sys

_previous_hook = sys.excepthook
_interrupted = False


def _on_ctrl_c(signum, frame):
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def _one_line_after_ctrl_c(kind, value, traceback):
    # Not only KeyboardInterrupt: Ctrl-C within an extension module's
    # import comes out as that import's ImportError (numpy's, measured).
    if not (_interrupted or issubclass(kind, KeyboardInterrupt)):
        _previous_hook(kind, value, traceback)
        return
    prog = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    sys.stderr.write(prog + ': stopped\n')
    sys.stderr.flush()
    # Ended by SIGINT, as an uncaught KeyboardInterrupt ends Python.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


# Unless Ctrl-C is ignored (Python's rule: a shell starts background jobs
# so), as Python sets it for itself.
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _on_ctrl_c)
sys.excepthook = _one_line_after_ctrl_c
