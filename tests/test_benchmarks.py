"""The benchmarks' bookkeeping, on the CPU: PyTorch's TF32 set explicitly
(and recorded as not applicable on a CPU), and a failed case recorded
without losing the finished ones (``benchmarks/``)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BENCHMARKS = os.path.join(ROOT, 'benchmarks')


@pytest.fixture
def bench(monkeypatch):
    """``benchmarks/`` importable, as the scripts import each other."""
    monkeypatch.syspath_prepend(BENCHMARKS)
    import benchmark_cases
    return benchmark_cases


@pytest.fixture
def torch_i3d(bench):
    pytest.importorskip('torch')
    import torch
    import torch_i3d
    saved = (torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32)
    yield torch_i3d
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 \
        = saved


def test_set_tf32_sets_both_flags(torch_i3d):
    import torch
    for enabled in (True, False, True, False):
        flags = torch_i3d.set_tf32(enabled)
        assert torch.backends.cudnn.allow_tf32 is enabled
        assert torch.backends.cuda.matmul.allow_tf32 is enabled
        assert flags['cudnn_allow_tf32'] is enabled
        assert flags['matmul_allow_tf32'] is enabled
        assert flags == torch_i3d.tf32_flags()
    assert torch.get_float32_matmul_precision() == 'highest'


def test_tf32_does_not_apply_on_the_cpu(torch_i3d):
    import torch
    assert torch_i3d.tf32_setting('cpu', True) == 'not applicable'
    assert torch_i3d.tf32_setting('cpu', False) == 'not applicable'
    assert torch_i3d.tf32_setting('cuda:0', True) is True
    assert torch_i3d.tf32_setting('cuda:0', False) is False
    torch_i3d.set_tf32(False)
    torch_i3d.prepare_device('cpu', tf32=True)  # sets nothing on a CPU
    assert not torch.backends.cudnn.allow_tf32
    assert not torch.backends.cuda.matmul.allow_tf32


def test_torch_runs_twice_on_a_gpu_and_once_on_the_cpu(bench):
    expand = bench.expand_torch_paths
    assert expand(['fast', 'torch'], 0) == ['fast', 'torch', 'torch_tf32']
    assert expand(['torch_tf32', 'link'], 0) == ['torch', 'torch_tf32',
                                                 'link']
    assert expand(['fast', 'torch'], -1) == ['fast', 'torch']
    assert expand(['torch', 'torch_tf32'], -1) == ['torch']
    assert expand(['reference', 'fast'], 0) == ['reference', 'fast']


def test_each_path_records_its_tf32_setting(bench, monkeypatch):
    import benchmark_i3d
    import benchmark_train
    for module in (benchmark_i3d, benchmark_train):
        assert module.tf32_of('torch', -1) == 'not applicable'
        assert module.tf32_of('torch_tf32', -1) == 'not applicable'
        assert module.tf32_of('torch', 0) is False
        assert module.tf32_of('torch_tf32', 0) is True
        monkeypatch.delenv('CUPY_TF32', raising=False)
        assert module.tf32_of('fast' if module is benchmark_i3d else 'link',
                              0) is False
        monkeypatch.setenv('CUPY_TF32', '1')
        assert module.tf32_of('reference' if module is benchmark_i3d
                              else 'link', 0) is True
        assert module.tf32_of('reference', -1) == 'not applicable'


def test_the_summary_lines_leave_failed_paths_out(bench):
    import benchmark_i3d
    done = {'path': 'fast', 'batch': 1, 'frames': 9, 'clips_per_s': 2.0,
            'logits': [[1.0, 2.0]]}
    failed = {'path': 'torch', 'batch': 1, 'frames': 9, 'error': 'boom'}
    results = [failed, done]
    paths = ['torch', 'fast']
    assert 'torch' not in benchmark_i3d.format_agreement(results, (1, 9),
                                                         paths)
    assert 'torch' not in benchmark_i3d.format_ratios(results, (1, 9), paths)
    assert 'no path finished' in benchmark_i3d.format_ratios(
        [failed], (1, 9), paths)
    assert 'no path finished' in benchmark_i3d.format_agreement(
        [failed], (1, 9), paths)
    assert 'FAILED: boom' in benchmark_i3d.format_result(dict(
        failed, device='cpu', size=193, tf32='not applicable'))


def test_results_are_written_whole(bench, tmp_path):
    path = str(tmp_path / 'results.json')
    bench.write_results(path, [{'a': 1}])
    bench.write_results(path, [{'a': 1}, {'b': 2}])
    with open(path) as f:
        assert json.load(f) == [{'a': 1}, {'b': 2}]
    with pytest.raises(TypeError):  # fails half-way through json.dump
        bench.write_results(path, [{'a': 1}, {'c': object()}])
    with open(path) as f:
        assert json.load(f) == [{'a': 1}, {'b': 2}]
    assert os.listdir(str(tmp_path)) == ['results.json']
    bench.write_results(None, [{'a': 1}])  # no --json: nothing


def test_only_rank_0_writes_under_mpiexec(bench, tmp_path, monkeypatch):
    path = str(tmp_path / 'results.json')
    monkeypatch.setenv('PMI_RANK', '1')
    bench.write_results(path, [{'a': 1}])
    assert not os.path.exists(path)
    monkeypatch.setenv('PMI_RANK', '0')
    bench.write_results(path, [{'a': 1}])
    assert os.path.exists(path)


def test_a_forced_failure_names_its_case(bench, monkeypatch):
    monkeypatch.setenv(bench.FAIL_ENV, '2x16:torch, 1x9')
    bench.raise_if_forced_to_fail((2, 16), 'fast')
    with pytest.raises(RuntimeError, match='2x16 path torch'):
        bench.raise_if_forced_to_fail((2, 16), 'torch')
    with pytest.raises(RuntimeError, match='1x9 path fast'):
        bench.raise_if_forced_to_fail((1, 9), 'fast')


def python(code):
    return [sys.executable, '-c', code]


def test_a_child_s_result_or_its_error_on_one_line(bench):
    result, error = bench.run_child(python(
        'import json; print("noise"); print(json.dumps({"x": 1}))'))
    assert (result, error) == ({'x': 1}, None)
    result, error = bench.run_child(python(
        'import sys; sys.exit("out of patience\\n")'))
    assert result is None and error == 'exit 1: out of patience'
    result, error = bench.run_child(python(
        'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'))
    assert result is None and error.startswith('killed by signal 9')
    result, error = bench.run_child(python('print("not json")'))
    assert result is None and error.startswith('no result')


def run_benchmark(name, *args, fail):
    return subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, name)] + list(args),
        capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, BENCHMARK_FAIL_CASES=fail))


def read_json(path):
    with open(path) as f:
        return json.load(f)


@pytest.mark.slow
def test_benchmark_i3d_keeps_finished_cases_after_a_failure(tmp_path):
    pytest.importorskip('torch')
    out = str(tmp_path / 'i3d.json')
    proc = run_benchmark('benchmark_i3d.py', '--cases', '1x9', '--size',
                         '193', '--paths', 'fast,torch', '--warmup', '0',
                         '--repeat', '1', '--json', out, fail='1x9:fast')
    assert proc.returncode == 1, proc.stderr
    assert '1 of 2 case runs failed' in proc.stderr
    failed, torch = read_json(out)
    assert failed['path'] == 'fast' and 'forced to fail' in failed['error']
    assert '\n' not in failed['error']
    assert torch['path'] == 'torch' and 'error' not in torch
    assert torch['tf32'] == 'not applicable' and torch['clips_per_s'] > 0
    assert 'path=torch device=cpu tf32=not applicable' in proc.stdout
    assert os.listdir(str(tmp_path)) == ['i3d.json']


@pytest.mark.slow
def test_benchmark_train_keeps_finished_cases_after_a_failure(tmp_path):
    pytest.importorskip('torch')
    out = str(tmp_path / 'train.json')
    proc = run_benchmark('benchmark_train.py', '--parts', 'fwdbwd',
                         '--cases', '1x9', '--paths', 'link,torch',
                         '--warmup', '0', '--repeat', '1', '--out', out,
                         fail='1x9:link')
    assert proc.returncode == 1, proc.stderr
    failed, torch = read_json(out)
    assert failed['path'] == 'link' and 'forced to fail' in failed['error']
    assert torch['path'] == 'torch' and 'error' not in torch
    assert torch['tf32'] == 'not applicable' and torch['clips_per_s'] > 0
    assert os.listdir(str(tmp_path)) == ['train.json']
