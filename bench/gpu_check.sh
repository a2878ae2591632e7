#!/usr/bin/env bash
# The checks that need a GPU, in one go: the tests marked `gpu` and the benchmarks on CUDA.
#
#   bash bench/gpu_check.sh [LOGDIR] [MODEL_DIR]
#
# LOGDIR (default gpu_logs) receives one log per step; MODEL_DIR, a trained xsomo model,
# is timed as "ours" in bench_inference_modes (an untrained model of the same size otherwise).
# ONLY="tests predict" runs just those steps (names below); TESTS chooses where pytest collects.
# Real-data parts need XSOMO_REAL_DATA (or ../shared/data/real). Each step has its own time
# limit so that one slow step cannot eat the others; the script never stops at a failure.
#
# On a GPU machine whose Python has PyTorch (with Triton), numpy, pandas, scipy, matplotlib and
# pytest but not xsomo's other dependencies, and no network (how it was run on an H200 on
# 2026-11-30): fetch wheels here for its Python (cp312, manylinux x86_64, --no-deps) of pint,
# flexcache, flexparser, platformdirs, pint-xarray, cf_xarray, cftime, xarray, dask, distributed,
# tornado, zict, tblib, partd, locket, donfig, numcodecs, zarr, google-crc32c, affine, pyproj,
# rasterio (1.4.3: a third of 1.4.4's size), cligj, click-plugins, rioxarray, sparse,
# lazy_importer (~47 MB), install them there with `pip install --no-index --no-deps --target
# /tmp/site`, then PYTHONPATH=$PWD:/tmp/site, XSOMO_REAL_DATA pointing at a copy of
# somo-ml-v1, and TESTS="tests/gpu tests/model/test_training.py" (collecting all of tests/
# would import the GIS and reader stacks too).
set -u
out=${1:-gpu_logs}
model=${2:-}
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$out"
step() {  # step NAME SECONDS CMD...
    local name=$1 limit=$2
    shift 2
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
    echo "=== $name (limit ${limit}s)"
    local t0=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "    rc $rc, $((SECONDS - t0)) s"
    tail -n 25 "$out/$name.log"
}
{ nvidia-smi -L; "$py" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN', torch.backends.cudnn.version(), torch.cuda.get_device_name(0))"; } 2>&1 | tee "$out/env.log"
# TESTS: where the gpu-marked tests are collected (default: all of tests/)
step tests 240 "$py" -m pytest -q -m gpu -p no:cacheprovider -o addopts= -p no:randomly --durations=10 ${TESTS:-tests}
step predict 150 "$py" bench/bench_predict.py --only gpu
step training 90 "$py" bench/bench_training.py --device cuda --reps 5
step training_b4096 90 "$py" bench/bench_training.py --device cuda --batch 4096 --reps 3
step tf32 60 "$py" bench/bench_tf32.py
modes=(--device cuda --days 730 --ours-cells 4096 --batches 2048,8192 --no-strided)
[ -n "$model" ] && modes+=(--model "$model")
step inference_modes 120 "$py" bench/bench_inference_modes.py "${modes[@]}"
