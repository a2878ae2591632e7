"""Prediction benchmark: roll-out vs windows, FLOP efficiency, memory vs domain, Europe projection.

Run from the repository root::

    .venv/bin/python bench/bench_predict.py            # full (several minutes on 2 cores)
    .venv/bin/python bench/bench_predict.py --quick    # smaller sizes

Prints, in one run:

1. roll-out vs window-by-window cell-days per second (goal >= 250x) for the SoMo.ml
   network shape (128 hidden units, 365-day lookback);
2. the roll-out's GFLOP/s as a fraction of a plain float32 matmul on this machine
   (goal >= 65 %), counting 2*4H*(H+D) + 2H FLOPs per cell-day and network;
3. the agreement of the continuous roll-out with window-by-window prediction after the
   spin-up (distribution of |difference|; goal max < 0.005 m3 m-3);
4. peak memory of ``predict`` + ``to_files`` for a small domain and a 4x larger one,
   each in a fresh subprocess reading lazy drivers from disk (goal ratio <= 1.3);
5. ``predict`` + ``to_files`` on a demo-size world (wall time, cell-days per second);
6. the projected time of the full Europe job (130 k land cells x 6 940 days x 3 layers x
   5 members, 128 hidden units, plus the 365-day spin-up) on this machine;
7. where CUDA is available: the roll-out on the GPU -- the cuDNN kernel's fraction of the
   GPU's full-float32 matmul rate, ``predict_block`` from numpy, the cascade and the
   projected Europe job on that GPU (``--only gpu`` runs this alone).

Timings on a shared machine vary with its load; CPU seconds are printed beside wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]

EUROPE_CELLS = 130_000
EUROPE_DAYS = 6_940
EUROPE_SPINUP = 365
EUROPE_LAYERS = 3
EUROPE_MEMBERS = 5


def _model(
    *,
    hidden: int,
    layers=(1, 2, 3),
    ensemble: int = 1,
    lookback: int = 365,
    forget_bias: float = 3.0,
    seed=0,
):
    """A random cascade (xsomo.testing.random_model) with this benchmark's defaults."""
    from xsomo.testing import random_model

    return random_model(
        layers=tuple(layers), forget_bias=forget_bias, hidden=hidden, ensemble=ensemble,
        lookback=lookback, seed=seed,
    )  # fmt: skip


def _inputs(cells: int, days: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    season = np.cos(2 * np.pi * (t - 200) / 365.25)
    tair = 285 + 9 * season + rng.normal(0, 3, (cells, days))
    precip = np.where(rng.random((cells, days)) < 0.35, rng.gamma(0.8, 6.0, (cells, days)), 0.0)
    rnet = 90 + 80 * season + rng.normal(0, 15, (cells, days))
    tskin = tair + 0.03 * rnet + rng.normal(0, 0.5, (cells, days))
    dyn = np.stack([tair, precip, rnet, tskin], axis=-1).astype("float32")
    stat = np.column_stack(
        [
            rng.uniform(0.5, 4, cells),
            rng.uniform(0.5, 3, cells),
            rng.uniform(0, 1500, cells),
            rng.uniform(5, 200, cells),
        ]
        + [rng.uniform(0.05, 0.6, cells) for _ in range(6)]
    ).astype("float32")
    return dyn, stat


class _Clock:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def _flops_per_cell_day(hidden: int, n_in: int) -> float:
    return 2 * 4 * hidden * (hidden + n_in) + 2 * hidden


def section_throughput(quick: bool) -> dict:
    from xsomo.model import rollout

    hidden, lookback = 128, 365
    model = _model(hidden=hidden, layers=(1,), lookback=lookback)
    cells, days = (512, 365) if quick else (1024, 730)
    dyn, stat = _inputs(cells, days + 1)
    rollout.predict_block(model, dyn[:64, :40], stat[:64], mode="continuous", spinup=1)  # warm-up
    clocks = []
    for _ in range(3):  # the median of three runs by CPU time (a shared machine is noisy)
        with _Clock() as c:
            rollout.predict_block(
                model, dyn, stat, mode="continuous", spinup=1, batch_size=cells, time_chunk=256
            )
        clocks.append(c)
    c = sorted(clocks, key=lambda k: k.cpu)[1]
    cont_rate = cells * days / c.wall
    cont_rate_cpu = cells * days / c.cpu
    n_win_cells, n_windows = (8, 32) if quick else (16, 64)
    wdyn, wstat = _inputs(n_win_cells, lookback - 1 + n_windows, seed=1)
    with _Clock() as w:
        rollout.predict_block(model, wdyn, wstat, mode="windowed", spinup=lookback)
    win_rate = n_win_cells * n_windows / w.wall
    win_rate_cpu = n_win_cells * n_windows / w.cpu
    flops = _flops_per_cell_day(hidden, model.config.n_inputs(1))
    gflops = cont_rate * flops / 1e9
    gflops_cpu = cont_rate_cpu * flops / 1e9
    # plain float32 matmuls on this machine: the recurrent step's shape and a large square one
    b = cells
    x = torch.randn(b, hidden + 4)
    wmat = torch.randn(hidden + 4, 4 * hidden)
    for _ in range(3):
        x @ wmat
    reps = 2000
    with _Clock() as m1:
        for _ in range(reps):
            x @ wmat
    step_gflops = reps * 2 * b * (hidden + 4) * 4 * hidden / m1.wall / 1e9
    step_gflops_cpu = reps * 2 * b * (hidden + 4) * 4 * hidden / m1.cpu / 1e9
    a = torch.randn(2048, 2048)
    a @ a
    with _Clock() as m2:
        for _ in range(5):
            a @ a
    peak_gflops = 5 * 2 * 2048**3 / m2.wall / 1e9
    peak_gflops_cpu = 5 * 2 * 2048**3 / m2.cpu / 1e9
    print("\n1. roll-out vs window-by-window (one network, 128 hidden, 365-day lookback)")
    print(
        f"   continuous: {cells} cells x {days} days in {c.wall:.2f} s wall ({c.cpu:.2f} s CPU; median of 3): "
        f"{cont_rate:,.0f} cell-days/s"
    )
    print(
        f"   windowed:   {n_win_cells} cells x {n_windows} windows of {lookback} days in {w.wall:.2f} s: "
        f"{win_rate:,.0f} cell-days/s"
    )
    ratio = cont_rate / win_rate
    ratio_cpu = cont_rate_cpu / win_rate_cpu
    print(
        f"   ratio: {ratio:,.0f}x by wall time, {ratio_cpu:,.0f}x by CPU time (goal >= 250x) "
        f"{'OK' if max(ratio, ratio_cpu) >= 250 else 'MISSED'}"
    )
    print("\n2. roll-out FLOP efficiency (float32, EALSTM.rollout on the CPU, torch threads as set)")
    print(
        f"   {flops / 1e3:.1f} kFLOP per cell-day (2*4H*(H+D) + 2H, H=128, D=4): {gflops:.1f} GFLOP/s wall, "
        f"{gflops_cpu:.1f} GFLOP per CPU-second"
    )
    print(
        f"   plain matmul {b}x{hidden + 4} @ {hidden + 4}x{4 * hidden} (the step's shape): {step_gflops:.1f} GFLOP/s wall, "
        f"{step_gflops_cpu:.1f} per CPU-s"
    )
    print(
        f"   plain matmul 2048^3: {peak_gflops:.1f} GFLOP/s wall, {peak_gflops_cpu:.1f} per CPU-s"
    )
    frac_step, frac_peak = gflops_cpu / step_gflops_cpu, gflops_cpu / peak_gflops_cpu
    print(
        f"   roll-out / same-shape matmul: {100 * frac_step:.0f} %, / large matmul: {100 * frac_peak:.0f} % "
        f"(per CPU-second; goal >= 65 %) {'OK' if frac_step >= 0.65 else 'MISSED'}"
    )
    return {
        "continuous_cell_days_per_s": cont_rate,
        "windowed_cell_days_per_s": win_rate,
        "ratio": ratio,
        "ratio_cpu": ratio_cpu,
        "gflops": gflops,
        "gflops_per_cpu_s": gflops_cpu,
        "fraction_of_step_matmul_cpu": frac_step,
        "fraction_of_large_matmul_cpu": frac_peak,
        "matmul_step_gflops": step_gflops,
        "matmul_peak_gflops": peak_gflops,
    }


def _agreement(model, label: str, quick: bool, *, compare: bool = True) -> dict:
    from xsomo.model import rollout

    lookback = model.config.lookback
    cells, extra = (4, 20) if quick else (8, 40)
    # windows of deeper layers read windowed upper-layer outputs: 2 lookbacks of history
    dyn, stat = _inputs(cells, 2 * lookback + extra, seed=2)
    dist = rollout.convergence_distance(model, dyn[:, : lookback + 30], stat)
    forgets = np.nanmax(dist) < rollout.DEFAULT_TOLERANCE
    if not compare:
        print(f"   {label}:")
        print(
            f"      convergence distance after {lookback} days: {np.nanmax(dist):.1e} m3 m-3 -> "
            f"{'forgets: auto uses the roll-out' if forgets else 'does NOT forget: auto falls back to windows'}"
        )
        return {"convergence_distance": float(np.nanmax(dist)), "forgets": bool(forgets)}
    cont = rollout.predict_block(model, dyn, stat, mode="continuous", spinup=lookback)
    win = rollout.predict_block(model, dyn, stat, mode="windowed", spinup=lookback)
    # the output period starts after the spin-up (day index `lookback`)
    diff = np.abs(cont - win)[..., lookback:]
    diff = diff[np.isfinite(diff)]
    q = np.quantile(diff, [0.5, 0.9, 0.99, 1.0])
    print(f"   {label}:")
    print(
        f"      convergence distance after {lookback} days: {np.nanmax(dist):.1e} m3 m-3 -> "
        f"{'forgets: auto uses the roll-out' if forgets else 'does NOT forget: auto falls back to windows'}"
    )
    verdict = ("OK" if q[3] < 0.005 else "MISSED") if forgets else "(not expected to agree)"
    print(
        f"      |continuous - windowed| over {diff.size} cell-days after the spin-up: median {q[0]:.1e}, "
        f"p90 {q[1]:.1e}, p99 {q[2]:.1e}, max {q[3]:.1e} m3 m-3 (goal max < 0.005 where it forgets) {verdict}"
    )
    return {
        "convergence_distance": float(np.nanmax(dist)),
        "forgets": bool(forgets),
        "diff_q50_q90_q99_max": q.tolist(),
    }


def section_agreement(quick: bool, model_dir: pathlib.Path | None = None) -> dict:
    print(
        "\n3. continuous roll-out vs window-by-window after the spin-up (3 layers, 365-day lookback)"
    )
    out = {
        "forgetting_random_128": _agreement(
            _model(hidden=128, ensemble=1, forget_bias=1.0, seed=3),
            "random weights, 128 hidden, forget bias 1",
            quick,
        ),
        "slow_random_128": _agreement(
            _model(hidden=128, ensemble=1, forget_bias=3.0, seed=3),
            "random weights, 128 hidden, forget bias 3",
            quick,
            compare=not quick,
        ),
    }
    if model_dir is not None:
        from xsomo.model import TrainedModel

        out["trained"] = _agreement(
            TrainedModel.load(model_dir), f"trained model {model_dir}", quick
        )
    return out


_MEMORY_CHILD = r"""
import json, resource, sys, time, tracemalloc, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, {bench!r})
import xarray as xr
from bench_predict import _model
from xsomo.prediction import inference
from xsomo.prediction import output
if {trace}:
    tracemalloc.start()
drivers = xr.open_dataset({path!r}, chunks={{}})
model = _model(hidden=32, ensemble=2, lookback=100, forget_bias=1.0)
t = time.perf_counter()
sm = inference.predict(drivers, model, chunks={{"lat": 32, "lon": 32}}, mode="continuous")
files = output.to_files(sm, {out!r}, progress=False)
wall = time.perf_counter() - t
_, peak = tracemalloc.get_traced_memory() if {trace} else (0, 0)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent (the bench,
# which had just built the 4x drivers), VmHWM is this process's own peak
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({{"maxrss_mb": hwm / 1024,
                  "traced_peak_mb": peak / 2**20, "wall_s": wall, "files": len(files)}}))
"""


def _write_drivers(path: pathlib.Path, n: int, days: int) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    from xsomo import testing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = testing.synthetic_drivers(
            nlat=n, nlon=n, ndays=days, seed=n, sea_cells=n // 3, start="2010-01-01"
        )
    enc = {
        v: {"chunksizes": (days, 32, 32)}
        for v in ds.data_vars
        if ds[v].dims == ("time", "lat", "lon")
    }
    ds.to_netcdf(path, encoding=enc)


def section_memory(quick: bool) -> dict:
    n_small = 48 if quick else 64
    days = 500 if quick else 830
    results = {}
    with tempfile.TemporaryDirectory(prefix="xsomo-bench-") as tmp:
        tmp_path = pathlib.Path(tmp)
        for label, n in (("small", n_small), ("4x", 2 * n_small)):
            path = tmp_path / f"drivers_{label}.nc"
            _write_drivers(path, n, days)
            # two children: peak RSS without tracemalloc (its bookkeeping of every live
            # allocation adds to the RSS), then the traced peak
            runs = []
            for trace in (False, True):
                code = _MEMORY_CHILD.format(
                    bench=str(ROOT / "bench"), path=str(path), out=str(tmp_path / f"out_{label}_{trace}"),
                    trace=trace,
                )  # fmt: skip
                proc = subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=False
                )
                if proc.returncode:
                    print(proc.stderr[-3000:])
                    raise SystemExit(f"memory child failed for {label}")
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            res = {**runs[0], "traced_peak_mb": runs[1]["traced_peak_mb"], "rss_with_tracemalloc_mb": runs[1]["maxrss_mb"]}
            res["cells"] = n * n
            res["days"] = days
            results[label] = res
    s, b = results["small"], results["4x"]
    print(
        "\n4. peak memory of predict + to_files, lazy drivers from disk, 32x32-cell blocks (fresh subprocesses;\n"
        "   RSS measured without tracemalloc, the traced peak in a second run)"
    )
    for label, r in results.items():
        print(
            f"   {label:>5}: {r['cells']:6d} cells x {r['days']} days: max RSS {r['maxrss_mb']:.0f} MB, "
            f"traced (numpy/python) peak {r['traced_peak_mb']:.0f} MB (another run: RSS with tracemalloc on "
            f"{r['rss_with_tracemalloc_mb']:.0f} MB), {r['wall_s']:.1f} s"
        )
    ratio_rss = b["maxrss_mb"] / s["maxrss_mb"]
    ratio_traced = b["traced_peak_mb"] / max(s["traced_peak_mb"], 1e-9)
    verdict = "OK" if max(ratio_rss, ratio_traced) <= 1.3 else "MISSED"
    print(
        f"   4x domain / small: RSS {ratio_rss:.2f}x, traced {ratio_traced:.2f}x (goal <= 1.3x) "
        + (f"{verdict} at the --quick sizes (the goal is set for the full sizes: 64x64 and 128x128 cells "
           "x 830 days)" if quick else verdict)
    )  # fmt: skip
    full = 2 * 3 * b["cells"] * days * 4 / 2**20
    print(
        f"   (holding the 4x prediction in memory would take {full:.0f} MB for sm + sm_spread alone)"
    )
    return {"small": s, "4x": b, "ratio_rss": ratio_rss, "ratio_traced": ratio_traced}


def section_demo(quick: bool) -> dict:
    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    from xsomo import testing
    from xsomo.prediction import inference, output

    n = 40 if quick else 60
    days = 4 * 365 if quick else 2922  # the demo preset: 2013-2020
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        drivers = testing.synthetic_drivers(
            nlat=n, nlon=n, ndays=days, seed=1, sea_cells=n // 3, start="2013-01-01"
        )
    # training.DEMO_DEFAULTS shape; forget bias 1 makes random weights forget (see section 3)
    model = _model(hidden=32, ensemble=2, lookback=365, forget_bias=1.0)
    land = int(drivers["land_mask"].sum())
    with tempfile.TemporaryDirectory(prefix="xsomo-demo-") as tmp, _Clock() as c:
        sm = inference.predict(drivers, model, mode="auto")
        files = output.to_files(sm, tmp, progress=False)
    rate = land * days / c.wall
    print("\n5. demo world: predict + to_files (3 layers x 2 members, 32 hidden, mode auto)")
    print(
        f"   {land} land cells x {days} days -> {len(files)} files in {c.wall:.1f} s wall ({c.cpu:.1f} s CPU): "
        f"{rate:,.0f} cell-days/s for the whole cascade and ensemble"
    )
    return {"land_cells": land, "days": days, "wall_s": c.wall, "cpu_s": c.cpu, "files": len(files)}


def section_europe(quick: bool) -> dict:
    from xsomo.model import rollout

    model = _model(hidden=128, layers=(1, 2, 3), ensemble=1, lookback=365)
    cells, days = (256, 365) if quick else (1024, 730)
    dyn, stat = _inputs(cells, days)
    with _Clock() as c:
        rollout.predict_block(
            model, dyn, stat, mode="continuous", spinup=1, batch_size=cells, time_chunk=256
        )
    rate = cells * days / c.wall  # cascade (3 layers) cell-days/s for one member
    total_days = EUROPE_DAYS + EUROPE_SPINUP
    cascade_s = EUROPE_CELLS * total_days * EUROPE_MEMBERS / rate
    from xsomo.prediction import inference

    # auto's per-block check: 3 initial states x (spin-up + 30 days) on check_cells of each block
    block = inference.default_chunks(355, 570, total_days)
    sampled = inference.predict.__kwdefaults__["check_cells"] / (block["lat"] * block["lon"])
    check_s = cascade_s * 3 * (365 + rollout.CHECK_EXTRA_DAYS) / total_days * min(1.0, sampled)
    print("\n6. projected full Europe job on this machine (continuous roll-out, CPU)")
    print(
        f"   cascade of 3 layers, 128 hidden: {rate:,.0f} cell-days/s per member ({cells} cells x {days} days in {c.wall:.1f} s)"
    )
    print(
        f"   {EUROPE_CELLS:,} cells x ({EUROPE_DAYS} + {EUROPE_SPINUP} spin-up) days x {EUROPE_MEMBERS} members: "
        f"{cascade_s / 3600:.1f} h roll-out (+ {check_s / 3600:.1f} h for mode='auto''s per-block convergence check "
        f"on {min(1.0, sampled):.0%} of the cells)"
    )
    print(
        f"   wall time measured on this shared machine (load {os.getloadavg()[0]:.0f}); "
        f"{cells * days / c.cpu:,.0f} cell-days per CPU-second per member"
    )
    return {
        "cascade_cell_days_per_s_per_member": rate,
        "europe_hours": cascade_s / 3600,
        "check_hours": check_s / 3600,
    }


def _cuda_clock(fn, reps: int = 3) -> float:
    """Best wall seconds of ``fn()`` on the GPU (after one warm-up call), queue drained."""
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def section_gpu(quick: bool) -> dict:
    """The roll-out on a GPU: kernel FLOP rate against the GPU's full-float32 matmul, the
    path from numpy (transfers included), the 3-layer cascade and the Europe projection."""
    from bench_training import gpu_matmul_peak  # (bench/ is on the path of a script run from it)

    from xsomo.model import rollout

    dev = torch.device("cuda")
    n = 8192
    peak = gpu_matmul_peak(dev, n)
    hidden = 128
    model = _model(hidden=hidden, layers=(1, 2, 3), lookback=365)
    cells, days = (8192, 365) if quick else (65536, 730)
    dyn, stat = _inputs(cells, days)
    net = model.networks(1, device=dev)[0]
    n_in = model.config.n_inputs(1)
    flops = _flops_per_cell_day(hidden, n_in)
    print(f"\n7. the roll-out on the GPU ({torch.cuda.get_device_name(0)}, full float32: TF32 off)")
    print(f"   plain matmul {n}^3 float32: {peak / 1e12:.1f} TFLOP/s")
    results: dict = {"matmul_fp32_tflops": peak / 1e12}
    # cuDNN's LSTM holds ~24 bytes per step, unit and byte of the dtype: all cells fit in one
    # call for `fit` days only; xsomo's own kernel (EALSTM.rollout) takes them all at once
    fit = rollout._gpu_time_chunk(dev, days, cells, hidden, 4)
    net.eval()
    from xsomo.model import _ealstm_gpu

    def own(xd, xs, triton: bool = True):
        _ealstm_gpu.ENABLED = triton
        try:
            return net.rollout(xd, xs)
        finally:
            _ealstm_gpu.ENABLED = True

    kernels = (
        ("cuDNN LSTM + head (forward)", lambda xd, xs: net(xd, xs), ((cells, fit), (cells // 4, min(days, 4 * fit)))),
        ("EALSTM.rollout, PyTorch ops", lambda xd, xs: own(xd, xs, False), ((cells, days),)),
        ("EALSTM.rollout, Triton cell", own, ((cells, fit), (cells, days))),
    )
    print(f"   Triton cell update available: {_ealstm_gpu.available(torch.zeros(1, device=dev), 1)}")
    x_norm, s_norm = model.prepare_dynamic(dyn), model.prepare_static(stat)  # what the kernels get
    with torch.no_grad(), rollout.full_float32(dev):
        for label, kernel, shapes in kernels:
            for n_cells, chunk in shapes:
                xs = torch.from_numpy(s_norm[:n_cells]).to(dev)
                xd = torch.from_numpy(np.ascontiguousarray(x_norm[:n_cells, :chunk])).to(dev)
                t = _cuda_clock(lambda xd=xd, xs=xs, kernel=kernel: kernel(xd, xs))
                rate = n_cells * chunk / t
                frac = rate * flops / peak
                print(
                    f"   {label}, inputs on the GPU: {n_cells} cells x {chunk} days in {t * 1e3:.1f} ms: "
                    f"{rate / 1e6:,.1f} M cell-days/s, {rate * flops / 1e12:.1f} TFLOP/s = {frac:.0%} of the fp32 matmul"
                )
                results[f"{label}_{n_cells}x{chunk}_fraction"] = frac
                kernel_rate = rate  # the last: the Triton kernel on all cells and days
                del xd, xs
                torch.cuda.empty_cache()
    # the same numbers? (float32 rounding apart)
    with torch.no_grad(), rollout.full_float32(dev):
        xs = torch.from_numpy(s_norm[:4096]).to(dev)
        xd = torch.from_numpy(np.ascontiguousarray(x_norm[:4096, :365])).to(dev)
        del x_norm, s_norm
        diff = float((net(xd, xs)[0] - net.rollout(xd, xs)[0]).abs().max())
    print(f"   cuDNN vs own kernel (Triton), 4096 cells x 365 days: max |difference| of the normalised output {diff:.1e}")
    results["kernel_difference"] = diff
    one = _model(hidden=hidden, layers=(1,), lookback=365)
    t = _cuda_clock(lambda: rollout.predict_block(one, dyn, stat, mode="continuous", spinup=1, device=dev), reps=2)
    rate = cells * days / t
    print(
        f"   rollout.predict_block(mode='continuous', device='cuda') from numpy, one network: "
        f"{t:.2f} s, {rate / 1e6:,.1f} M cell-days/s = {rate * flops / peak:.0%} of the fp32 matmul"
    )
    results["predict_block_fraction"] = rate * flops / peak
    t = _cuda_clock(lambda: rollout.predict_block(model, dyn, stat, mode="continuous", spinup=1, device=dev), reps=2)
    rate = cells * days / t  # cascade cell-days per second, one member
    total_days = EUROPE_DAYS + EUROPE_SPINUP
    europe_s = EUROPE_CELLS * total_days * EUROPE_MEMBERS / rate
    limit_s = EUROPE_CELLS * total_days * EUROPE_MEMBERS * EUROPE_LAYERS * flops / peak
    print(
        f"   cascade of 3 layers from numpy: {cells} cells x {days} days in {t:.2f} s: {rate / 1e6:,.2f} M cell-days/s per member"
    )
    # the host's share (z-score, NaN masks, transfers, de-normalisation) overlaps the GPU when
    # several blocks run at once, as predict's dask threads run them
    import concurrent.futures

    n_threads = 4
    w0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(n_threads) as pool:
        futures = [
            pool.submit(rollout.predict_block, model, dyn, stat, mode="continuous", spinup=1, device=dev)
            for _ in range(n_threads)
        ]
        for fut in futures:
            fut.result()
    torch.cuda.synchronize()
    t_par = time.perf_counter() - w0
    rate_par = n_threads * cells * days / t_par
    print(
        f"   the same, {n_threads} blocks in {n_threads} threads at once: {t_par:.2f} s, {rate_par / 1e6:,.2f} M cell-days/s per member"
    )
    units = EUROPE_CELLS * total_days * EUROPE_MEMBERS
    kernel_s = units * EUROPE_LAYERS / kernel_rate
    print(
        f"   projected Europe job ({EUROPE_CELLS:,} cells x ({EUROPE_DAYS} + {EUROPE_SPINUP}) days x {EUROPE_MEMBERS} members "
        f"x 3 layers) on this GPU: {kernel_s:.0f} s of kernel compute (goal <= 60 s; {limit_s:.0f} s at the fp32 matmul "
        f"rate); from numpy {europe_s:.0f} s one block at a time, {units / rate_par:.0f} s with {n_threads} blocks at once"
    )
    results.update(
        cascade_cell_days_per_s=rate, europe_s=europe_s, europe_limit_s=limit_s, europe_kernel_s=kernel_s,
        europe_threads_s=units / rate_par,
    )  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a minute or two)")
    parser.add_argument(
        "--json", type=pathlib.Path, help="also write the numbers to this JSON file"
    )
    parser.add_argument(
        "--only", nargs="+", choices=("throughput", "agreement", "memory", "demo", "europe", "gpu")
    )
    parser.add_argument(
        "--model", type=pathlib.Path, help="also check the agreement of this trained model (folder)"
    )
    args = parser.parse_args(argv)
    gpu = torch.cuda.is_available()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(
                line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    print(f"xsomo prediction benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"   CPU: {cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads"
    )
    print(f"   load average at start: {os.getloadavg()[0]:.1f}")
    if gpu:
        print(
            f"   GPU: {torch.cuda.get_device_name(0)} (sections 1-6 use the CPU, section 7 the GPU)"
        )
    else:
        print("   GPU: none — no GPU is lent to this task; every number below is CPU-only")
    sections = {
        "throughput": section_throughput,
        "agreement": section_agreement,
        "memory": section_memory,
        "demo": section_demo,
        "europe": section_europe,
    }
    if gpu:
        sections["gpu"] = section_gpu
    results = {}
    for name, fn in sections.items():
        if args.only and name not in args.only:
            continue
        results[name] = fn(args.quick, args.model) if name == "agreement" else fn(args.quick)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    print(
        f"\n   peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
