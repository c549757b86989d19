#!/usr/bin/env bash
# Usage: scripts/gpu_check.sh REPORT_DIR [WHEEL_DIR]
#
# One run of every GPU check, for a fresh GPU machine without internet,
# in about 8 minutes. It makes a venv on top of the machine's Python
# (--system-site-packages: its CuPy, numpy 2 and PyTorch), installs chainer
# and mpi4py/MPICH from WHEEL_DIR (made by scripts/gpu_wheels.sh where there
# is internet) and this checkout (editable, offline), then runs, each step
# timed, logged and allowed to fail without stopping the rest:
#   versions      Python, numpy, CuPy, CUDA, driver, GPU, chainer, PyTorch
#   install       the venv and the wheels
#   pytest_gpu    pytest -m gpu tests/gpu_tests (but the fidelity tests)
#   fidelity      tests/gpu_tests/test_fidelity.py: the real checkpoint on
#                 the cricket clip against TensorFlow's logits, on the GPU
#   bench_infer   benchmarks/benchmark_i3d.py --device 0: reference, fast,
#                 torch (cuDNN) at 1x64 and 8x64 frames of 224
#   bench_train   benchmarks/benchmark_train.py --device 0: forward+backward,
#                 link and torch, at 6x64
#   mpi_eval      mpiexec -n 2 eval_kinetics.py --device gpu on a tiny set
#                 made here (both ranks share GPU 0 on a one-GPU machine)
# REPORT_DIR gets summary.txt (one line per step: ok, failed or skipped,
# with the reason, and seconds), report.log (every step's output), the
# benchmarks' JSON, the pytest XML and steps.tar.gz (one log per step):
# at most 8 files. Without a GPU every GPU step says "skipped: no GPU".
# Environment: PYTHON (the base interpreter, default python3),
# GPU_CHECK_VENV (use this venv instead of a new one),
# CHAINERCV_I3D_SHARED (reference data; default WHEEL_DIR/i3d, then
# ../shared/i3d), GPU_CHECK_SECONDS (total budget, default 470),
# GPU_CHECK_REHEARSE=1 (without a GPU, run the GPU steps' commands small
# on the CPU, to find a broken command before GPU time is spent).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
if [ $# -lt 1 ]; then
    echo "usage: scripts/gpu_check.sh REPORT_DIR [WHEEL_DIR]" >&2
    exit 2
fi
mkdir -p "$1" || exit 2
report=$(cd "$1" && pwd)
wheels=${2:+$(cd "$2" && pwd)}
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
mkdir -p "$work/steps"
: > "$report/summary.txt"
: > "$report/report.log"
start=$(date +%s)
deadline=$((start + ${GPU_CHECK_SECONDS:-470}))
n_step=0
no_gpu=""   # why this machine cannot run the GPU steps ("" if it can)

say() { echo "$*" | tee -a "$report/report.log"; }

record() {  # record NAME STATUS SECONDS
    printf '%-12s %-60s %5ss\n' "$1" "$2" "$3" | tee -a "$report/summary.txt"
}

# step NAME LIMIT_SECONDS: runs the function check_NAME in a child bash
# with a time limit (cut to what is left of the budget), tees its output,
# records how it ended.
step() {
    local name=$1 limit=$2 left
    n_step=$((n_step + 1))
    left=$((deadline - $(date +%s)))
    if [ "$left" -lt 15 ]; then
        record "$name" "skipped: out of time (budget GPU_CHECK_SECONDS)" 0
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local log t0 rc
    log=$(printf '%s/steps/%02d_%s.log' "$work" "$n_step" "$name")
    say "===== $name (limit ${limit}s) ====="
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" bash -c "check_$name" 2>&1 | tee "$log" \
        | tee -a "$report/report.log"
    rc=${PIPESTATUS[0]}
    local took=$(($(date +%s) - t0))
    if [ "$rc" -eq 0 ]; then
        local note=""
        if [ -n "$no_gpu" ]; then
            note=" (no GPU: its tests skipped)"
            case $name in bench_*|mpi_eval) [ -n "$rehearse" ] \
                && note=" (no GPU: rehearsed on the CPU)";; esac
        fi
        record "$name" "ok$note" "$took"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        record "$name" "failed: timed out after ${limit}s" "$took"
    else
        record "$name" "failed: exit $rc (see report.log)" "$took"
    fi
}

gpu_step() {  # like step, but skipped without a GPU (unless rehearsing)
    if [ -n "$no_gpu" ] && [ -z "$rehearse" ]; then
        n_step=$((n_step + 1))
        say "===== $1: skipped: no GPU ($no_gpu) ====="
        record "$1" "skipped: no GPU" 0
        return
    fi
    step "$@"
}

# ------------------------------------------------------------------ install
base_python=${PYTHON:-python3}
venv=${GPU_CHECK_VENV:-$work/venv}

check_install() {
    set -e
    if [ ! -x "$venv/bin/python" ]; then
        "$base_python" -m venv --system-site-packages "$venv"
    fi
    local pip=("$venv/bin/python" -m pip install --no-index --no-deps
               --no-cache-dir --disable-pip-version-check)
    if [ -n "$wheels" ]; then
        shopt -s nullglob
        local found=("$wheels"/*.whl)
        if [ ${#found[@]} -gt 0 ]; then
            echo "installing ${#found[@]} wheel(s) from $wheels"
            "${pip[@]}" "${found[@]}"
        fi
    fi
    # This checkout, editable: fixes made here count at the next run.
    if ! "${pip[@]}" --no-build-isolation -e "$repo" >/dev/null 2>&1; then
        echo "editable install failed (no setuptools?): using PYTHONPATH"
        echo "$repo" > "$("$venv/bin/python" -c \
            'import sysconfig; print(sysconfig.get_paths()["purelib"])')/chainercv_i3d_checkout.pth"
    fi
    "$venv/bin/python" -c 'import chainercv_i3d, chainer; print("chainer", chainer.__version__, "imports")'
}

check_versions() {
    "$venv/bin/python" - <<'PY'
import importlib, platform, shutil, subprocess, sys
print('python', sys.version.split()[0], platform.machine())
try:
    import chainercv_i3d  # NOQA: before chainer (its compat shim)
except Exception as e:
    print('chainercv_i3d does not import:', e)
def version(name):
    try:
        module = importlib.import_module(name)
        return getattr(module, '__version__', '?')
    except Exception as e:
        return 'not importable ({}: {})'.format(type(e).__name__, e)
for name in ('numpy', 'cupy', 'chainer', 'torch', 'mpi4py', 'cv2'):
    print('{:8} {}'.format(name, version(name)))
try:
    import chainercv_i3d, chainer
    cuda = chainer.backends.cuda
    print('chainer CUDA available', cuda.available, '| cuDNN enabled',
          cuda.cudnn_enabled)
    from chainercv_i3d.chainer_compat import cuda_unavailable_reason
    print('why not:', cuda_unavailable_reason())
except Exception as e:
    print('chainercv_i3d/chainer do not import:', e)
try:
    import cupy
    rt = cupy.cuda.runtime
    print('CUDA runtime', rt.runtimeGetVersion(), '| driver',
          rt.driverGetVersion(), '| GPUs', rt.getDeviceCount())
    props = rt.getDeviceProperties(0)
    print('GPU 0', props['name'].decode(), '| memory {:.0f} GiB'.format(
        props['totalGlobalMem'] / 2 ** 30), '| sm_{}{}'.format(
        props['major'], props['minor']))
except Exception as e:
    print('CuPy GPU query failed:', e)
try:
    import torch
    print('torch CUDA', torch.version.cuda, '| cuDNN',
          torch.backends.cudnn.version(), '| available',
          torch.cuda.is_available())
except Exception as e:
    print('torch:', e)
print('mpiexec', shutil.which('mpiexec'))
if shutil.which('nvidia-smi'):
    subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version,'
                    'memory.total,clocks.sm', '--format=csv'])
PY
}

gpu_reason() {
    "$venv/bin/python" -c '
import sys
sys.path.insert(0, ".")
from tests.conftest import gpu_missing_reason
print(gpu_missing_reason() or "")' 2>&1 | tail -n 1
}

# ------------------------------------------------------------- the checks
check_pytest_gpu() {
    "$venv/bin/python" -m pytest -m gpu -ra -p no:cacheprovider \
        --junitxml="$report/pytest_gpu.xml" tests/gpu_tests \
        --ignore=tests/gpu_tests/test_fidelity.py
}

check_fidelity() {
    "$venv/bin/python" -m pytest -m gpu -ra -p no:cacheprovider \
        tests/gpu_tests/test_fidelity.py
}

check_bench_infer() {
    cd benchmarks
    if [ -n "$rehearse" ]; then  # the same command, small, on the CPU
        "$venv/bin/python" benchmark_i3d.py --device -1 \
            --paths reference,fast --cases 1x9 --size 193 --warmup 0 \
            --repeat 1 --json "$report/benchmark_i3d.json"
        return
    fi
    "$venv/bin/python" benchmark_i3d.py --device 0 \
        --paths reference,fast,torch --cases 1x64,8x64 --size 224 \
        --warmup 1 --repeat 3 --json "$report/benchmark_i3d.json"
}

check_bench_train() {
    cd benchmarks
    if [ -n "$rehearse" ]; then
        "$venv/bin/python" benchmark_train.py --parts fwdbwd --device -1 \
            --cases 1x9 --paths link --warmup 0 --repeat 1 \
            --out "$report/benchmark_train.json"
        return
    fi
    "$venv/bin/python" benchmark_train.py --parts fwdbwd \
        --device 0 --cases 6x64 --paths link,torch --warmup 1 --repeat 2 \
        --out "$report/benchmark_train.json"
}

check_mpi_eval() {
    set -e
    local mpiexec device=gpu
    [ -n "$rehearse" ] && device=cpu
    mpiexec=$(PATH="$venv/bin:$PATH" command -v mpiexec) || {
        echo "no mpiexec (bring the mpich wheel: scripts/gpu_wheels.sh)"
        return 1; }
    # Five tiny videos of three classes, precomputed (RGB only) as the
    # evaluation reads them, and random RGB weights.
    "$venv/bin/python" - "$work/eval" <<'PY'
import os, sys
import numpy
import chainercv_i3d  # NOQA
import chainer
from chainercv_i3d.links import I3D
from tests.datasets_tests.videos import translating_texture, write_video
root = sys.argv[1]
for i, (label, n_frame) in enumerate([('abseiling', 12), ('abseiling', 10),
                                      ('air drumming', 11), ('zumba', 9),
                                      ('zumba', 13)]):
    frames = translating_texture(n_frame, dx=1 + i % 2, dy=1, height=193,
                                 width=230, seed=i)
    write_video(os.path.join(root, 'videos', label, 'v{}.avi'.format(i)),
                frames)
numpy.random.seed(0)
chainer.serializers.save_npz(os.path.join(root, 'rgb.npz'),
                             I3D(n_class=400, modality='rgb'))
PY
    "$venv/bin/python" examples/i3d/precompute_frames_flow.py \
        "$work/eval/videos" "$work/eval/precomputed" --short_side 193 \
        --no_compute_flow --quiet
    "$mpiexec" -n 2 "$venv/bin/python" examples/i3d/eval_kinetics.py \
        "$work/eval/precomputed" --rgb_model_checkpoint "$work/eval/rgb.npz" \
        --n_frame 9 --crop_size 193 --batch_size 2 --device "$device" \
        --out "$work/eval/result.json"
    cat "$work/eval/result.json" && echo
}

# -------------------------------------------------------------------- run
if [ -z "${CHAINERCV_I3D_SHARED:-}" ] && [ -n "$wheels" ] \
        && [ -d "$wheels/i3d" ]; then
    export CHAINERCV_I3D_SHARED=$wheels/i3d
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
say "gpu_check.sh $(date -u +%FT%TZ) on $(hostname) in $repo ($(git rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
rehearse=${GPU_CHECK_REHEARSE:+1}
export repo report work wheels venv base_python rehearse
export PATH="$venv/bin:$PATH"  # the mpich wheel's mpiexec
export -f check_install check_versions check_pytest_gpu check_fidelity \
    check_bench_infer check_bench_train check_mpi_eval
step install 180
step versions 60
no_gpu=$(gpu_reason)
if [ -z "$no_gpu" ] && [ ! -x "$venv/bin/python" ]; then
    no_gpu="the venv could not be made"
fi
say "GPU: ${no_gpu:-yes}"
step pytest_gpu 180  # runs without a GPU too: every test skips, saying why
gpu_step fidelity 90
gpu_step bench_infer 200
gpu_step bench_train 150
gpu_step mpi_eval 120
tar -czf "$report/steps.tar.gz" -C "$work" steps 2>/dev/null
say "===== summary ($(($(date +%s) - start)) s in all; GPU: ${no_gpu:-yes}) ====="
cat "$report/summary.txt"
failed=$(grep -c ' failed' "$report/summary.txt")
exit $((failed > 0 ? 1 : 0))
