"""The device check (scripts/gpu_check.py) without a GPU: its kit, its
rehearsal up to each section's first CUDA call, every section's own code
past that call with numpy standing in for CuPy, and how it reports."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy
import pytest

from tests.conftest import ROOT

SCRIPT = os.path.join(ROOT, 'scripts', 'gpu_check.py')


def load_gpu_check():
    spec = importlib.util.spec_from_file_location('gpu_check', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = load_gpu_check()


def run(*args, timeout=600):
    return subprocess.run([sys.executable, SCRIPT] + list(args), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def kit(tmp_path_factory):
    """The kit's references, made here (no wheel: this Python has chainer;
    building it would need the package index)."""
    folder = tmp_path_factory.mktemp('kit')
    result = run('--prepare', '--no_wheel', '--kit', str(folder))
    assert result.returncode == 0, result.stderr
    assert 'with the tracked tree' in result.stdout
    return str(folder)


def report_of(folder):
    with open(os.path.join(folder, 'report.json')) as f:
        return json.load(f)


@pytest.mark.slow
def test_the_kit_holds_every_reference(kit):
    with numpy.load(os.path.join(kit, gpu_check.REFERENCES)) as refs:
        names = set(refs.files)
        assert {'logits_reference', 'logits_fast', 'weight_checksum',
                'train_loss', 'flow_prev', 'flow_next', 'flow_numpy',
                'flow_opencv'} <= names
        assert refs['logits_fast'].shape == (2, gpu_check.N_CLASS)
        assert numpy.isfinite(refs['logits_fast']).all()
        # The two CPU paths agree, so either is a fair reference.
        numpy.testing.assert_allclose(refs['logits_fast'],
                                      refs['logits_reference'], atol=1e-4)
        grads = [n for n in names if n.startswith('grad_norm')]
        assert len(grads) > 100 and all(refs[n] > 0 for n in grads)
        assert refs['flow_opencv'].shape == refs['flow_numpy'].shape == (
            gpu_check.FLOW_PAIRS,) + gpu_check.FLOW_SIZE + (2,)
    manifest = json.load(open(os.path.join(kit, gpu_check.MANIFEST)))
    assert gpu_check.REFERENCES in manifest['files']


@pytest.mark.slow
def test_rehearsal_reaches_every_sections_cuda_call(kit, tmp_path):
    result = run('--rehearse', '--kit', kit, '--report', str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    report = report_of(tmp_path)
    assert list(report['sections']) == list(gpu_check.SECTION_NAMES)
    for name, section in report['sections'].items():
        assert section['status'] == 'rehearsed', (name, section)
    kernels = report['sections']['kernels']['checks']
    assert kernels[0]['ok'] and 'collected' in kernels[0]['detail']
    assert report['rehearse'] and report['kit']['files']


@pytest.mark.slow
def test_every_section_runs_past_cuda_on_the_cpu_stand_in(kit, tmp_path,
                                                          mpiexec):
    result = run('--cpu_standin', '--kit', kit, '--report', str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    sections = report_of(tmp_path)['sections']
    ran_past_cuda = ('environment', 'fast_path', 'reference_path', 'training',
                     'tvl1', 'chainermn_1rank', 'chainermn_2ranks')
    for name in ran_past_cuda:
        assert sections[name]['status'] == 'ok', (name, sections[name])
    for name in ('kernels', 'bench_infer', 'bench_train'):  # need a GPU
        assert sections[name]['status'] == 'rehearsed'
    fast = sections['fast_path']['results']
    assert fast['float32_logits_relative_error'] <= 1e-4
    assert 0 < fast['float16_max_error'] <= 0.05
    assert fast['clips_per_s_float16_1x9'] > 0
    training = sections['training']
    assert training['results']['gradients'] > 100
    assert all(c['ok'] for c in training['checks'])
    assert sections['tvl1']['results']['pairs_per_s_256x340'] > 0
    two = sections['chainermn_2ranks']['results']
    for rank in ('rank0', 'rank1'):
        checks = {c['check']: c for c in two[rank]['checks']}
        refusal = checks['the rule refuses NCCL for them at once']
        assert refusal['ok'] and 'a GPU per rank' in refusal['detail']
        assert any('2 ranks, naive' in name and c['ok']
                   for name, c in checks.items())


class Args(object):
    kit = report = '.'
    rehearse = cpu_standin = False


def test_an_import_error_is_an_error_not_a_missing_gpu():
    def section(s):
        import chainercv_i3d_no_such_module  # NOQA

    result = gpu_check.run_section(section, Args())
    assert result['status'] == 'error'
    assert "No module named 'chainercv_i3d_no_such_module'" in \
        result['error']


def test_a_false_check_fails_the_section():
    def section(s):
        s.check('first', True)
        s.check('second', False, 'why')

    result = gpu_check.run_section(section, Args())
    assert result['status'] == 'failed'
    assert [c['ok'] for c in result['checks']] == [True, False]


def test_rehearsing_stops_at_the_first_cuda_call():
    reached = []

    def section(s):
        reached.append('before')
        s.cupy()
        reached.append('after')

    args = Args()
    args.rehearse = True
    assert gpu_check.run_section(section, args)['status'] == 'rehearsed'
    assert reached == ['before']


@pytest.mark.parametrize('got, expected, problem', [
    ([1.0, numpy.nan], [1.0, 2.0], 'non-finite'),
    ([1.0, 2.0], [1.0, numpy.inf], 'non-finite'),
    ([], [], 'empty'),
    ([[1.0, 2.0]], [1.0, 2.0], 'shape'),
    ([0.0, 0.0], [0.0, 0.0], 'all zeros'),
])
def test_comparisons_that_cannot_pass_trivially(got, expected, problem):
    s = gpu_check.Section('.', '.', False)
    assert not s.check_close('x', got, expected, 1e-4)
    assert problem in s.checks[0]['detail']


def test_check_close_holds_the_tolerance():
    s = gpu_check.Section('.', '.', False)
    assert s.check_close('near', [1.0, 2.00001], [1.0, 2.0], 1e-4)
    assert not s.check_close('far', [1.0, 2.01], [1.0, 2.0], 1e-4)


def test_a_missing_kit_says_how_to_make_it(tmp_path):
    s = gpu_check.Section(str(tmp_path), '.', False)
    with pytest.raises(FileNotFoundError, match='--prepare'):
        s.references


def test_the_kit_must_travel_without_carry():
    assert 'with the tracked tree 7.00 MiB' in gpu_check.check_kit_size(4, 3)
    with pytest.raises(SystemExit, match='without carry'):
        gpu_check.check_kit_size(10, 3)


@pytest.mark.slow
def test_sections_out_of_budget_are_skipped_and_fail_the_run(tmp_path):
    result = run('--rehearse', '--budget', '5', '--kit', str(tmp_path),
                 '--report', str(tmp_path / 'report'))
    assert result.returncode == 1
    sections = report_of(tmp_path / 'report')['sections']
    assert {s['status'] for s in sections.values()} == {'skipped'}


def test_unknown_sections_are_named():
    result = run('--only', 'fast_path,warp_drive')
    assert result.returncode == 2
    assert 'unknown section(s) warp_drive' in result.stderr


def test_git_does_not_ignore_the_kit():
    # The device tool copies untracked files only when git does not ignore
    # them (and *.npz is ignored elsewhere).
    paths = ['gpu_kit/' + name for name in (
        gpu_check.REFERENCES, gpu_check.MANIFEST,
        'chainer-7.8.1-py3-none-any.whl', 'mpich-5.0.2-py3-none-any.whl')]
    ignored = subprocess.run(['git', 'check-ignore'] + paths, cwd=ROOT,
                             capture_output=True, text=True)
    if ignored.returncode == 128:
        pytest.skip('not a git checkout: ' + ignored.stderr.strip())
    assert ignored.stdout == ''
    assert os.path.dirname(gpu_check.KIT) == ROOT
