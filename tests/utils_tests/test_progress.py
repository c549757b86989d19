"""all_ranks_bar: rank 0's bar counts every rank's items."""

import json
import subprocess
import sys

import pytest

from chainercv_i3d.utils.comm import SerialComm
from chainercv_i3d.utils.progress import all_ranks_bar
from chainercv_i3d.utils.progress import NoBar
from tests.conftest import ROOT


def test_one_rank_counts_its_items_after_the_initial_ones():
    bar = all_ranks_bar(5, SerialComm(), initial=2)
    for _ in range(3):
        bar.update()
    bar.close()
    assert (bar.bar.n, bar.bar.total) == (5, 5)


def test_quiet_shows_and_sends_nothing():
    assert isinstance(all_ranks_bar(5, SerialComm(), quiet=True), NoBar)


TWO_RANKS = '''
import json
import sys
import time

from chainercv_i3d.utils.comm import get_comm
from chainercv_i3d.utils.progress import all_ranks_bar

comm = get_comm()
bar = all_ranks_bar(7, comm, initial=1)
for _ in range(2 if comm.rank == 0 else 4):
    bar.update()
    time.sleep(0.05)
bar.close()
comm.barrier()  # no message left over to block a collective
if comm.rank == 0:
    with open(sys.argv[1], 'w') as f:
        json.dump([bar.bar.n, bar.bar.total], f)
'''


@pytest.mark.slow
@pytest.mark.mpi
def test_under_mpiexec_rank_0_counts_every_ranks_items(mpiexec, tmp_path):
    script = tmp_path / 'bar.py'
    script.write_text(TWO_RANKS)
    out = tmp_path / 'counts.json'
    result = subprocess.run(
        [mpiexec, '-n', '2', sys.executable, str(script), str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == [7, 7]
    assert '7/7' in result.stderr
