"""Zarr store vs netCDF files: reading a daily map and one cell's series, chunk choices, extend cost.

Issue 17 items 4 and 6. Run from the repository root::

    PYTHONPATH=$PWD .venv/bin/python bench/bench_zarr.py            # ~5-8 min on a shared 2-core box
    PYTHONPATH=$PWD .venv/bin/python bench/bench_zarr.py --quick    # smaller grid, fewer repeats

Prints, in one run:

1. **Reads.** One year (365 days) of layer 1 on the Europe grid (``conventions.EUROPE``,
   355 x 570 cells at 0.1 deg), written with xsomo's own writers: ``to_files`` (the yearly
   netCDF4 file, zlib 4, chunks 32 days x 64 x 64) and ``to_zarr`` for several chunk choices
   (days x cells x cells). For each: the bytes on disk, the write time, and the time to read
   one day's map and one cell's full series, cold (page cache of every file of the dataset
   dropped before each read) and warm (the same read again), with the raw library
   (netCDF4 / zarr) and with ``xsomo.open_somo`` (xarray + dask, what users call). The
   field is synthetic (not a prediction: generating the europe sample world and predicting
   it takes far longer than this box allows): a smooth climatology + seasonal cycle +
   spatially smooth AR(1) anomalies + small cell-scale noise, NaN over ~25 % "sea" -
   compressible about like a real soil-moisture field, which matters for the sizes.
2. **Extend vs recompute.** On a small synthetic world with a random cascade
   (``xsomo.testing.random_model``; its size is printed): predicting a year and one
   month from scratch (with the model's spin-up) vs continuing a saved state by the month
   (``predict(state=)`` + ``extend_zarr`` / ``extend_files``).

Cold cache without root: every file of the dataset is fsynced and its pages dropped with
``os.posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)`` before each cold read; the residency
left afterwards is checked with ``fincore`` (util-linux) when it is installed and printed.
The machine is shared: ``uptime`` is printed at the start and the end; timings are medians
over a few positions.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import xarray as xr

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xsomo import conventions as cv  # noqa: E402
from xsomo.prediction import output  # noqa: E402

#: Zarr chunk choices measured: (days, cells) -> one layer x days x cells x cells.
CHOICES = ((64, 64), (96, 32), (32, 64), (365, 16))


def _uptime() -> str:
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


def _files(path: pathlib.Path) -> list[pathlib.Path]:
    return [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]


def _size(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in _files(path))


def drop_cache(path: pathlib.Path) -> None:
    """Drop the page cache of every file under ``path`` (fsync first: dirty pages stay cached)."""
    for p in _files(path):
        fd = os.open(p, os.O_RDONLY)
        try:
            with contextlib.suppress(OSError):
                os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def resident_bytes(path: pathlib.Path) -> int | None:
    """Bytes of ``path``'s files in the page cache (``fincore``), or None without it."""
    if shutil.which("fincore") is None:
        return None
    total = 0
    files = [str(p) for p in _files(path)]
    for i in range(0, len(files), 500):
        out = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--raw", "-o", "RES", *files[i : i + 500]],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        total += sum(int(x) for x in out.stdout.split() if x.isdigit())
    return total


# ----------------------------------------------------------------------------- the field


def _smooth(
    rng: np.random.Generator, shape: tuple[int, int], coarse: tuple[int, int]
) -> np.ndarray:
    """A spatially smooth field in [0, 1]: coarse noise, bilinearly interpolated."""
    from scipy.ndimage import zoom

    low = rng.random(coarse)
    out = zoom(low, (shape[0] / coarse[0], shape[1] / coarse[1]), order=1)[: shape[0], : shape[1]]
    out = (out - out.min()) / (np.ptp(out) or 1.0)
    return out


def synthetic_year(nlat: int, nlon: int, seed: int = 0) -> xr.Dataset:
    """``sm(layer=1, time=365, lat, lon)`` float32, lat descending, ~25 % NaN."""
    from scipy.ndimage import zoom

    rng = np.random.default_rng(seed)
    shape = (nlat, nlon)
    land = _smooth(rng, shape, (12, 18)) > 0.4
    base = 0.08 + 0.3 * _smooth(rng, shape, (24, 36))
    amp = 0.02 + 0.06 * _smooth(rng, shape, (8, 12))
    phase = 150 + 60 * _smooth(rng, shape, (6, 9))
    times = pd.date_range("2015-01-01", periods=365, freq="D")
    data = np.empty((1, times.size, nlat, nlon), np.float32)
    anomaly = np.zeros((24, 36))
    for t in range(times.size):
        anomaly = 0.9 * anomaly + rng.normal(0, 0.3, anomaly.shape)
        field = zoom(anomaly, (nlat / 24, nlon / 36), order=1)[:nlat, :nlon]
        day = base + amp * np.cos(2 * np.pi * (t - phase) / 365.0) + 0.015 * field
        day += rng.normal(0, 0.004, shape)  # cell-scale structure (real fields have it)
        data[0, t] = np.where(land, np.clip(day, 0.02, 0.5), np.nan)
    grid = cv.EUROPE
    lat = grid.lat[::-1][:nlat] if nlat <= grid.nlat else np.arange(nlat)[::-1] * 0.1
    lon = grid.lon[:nlon]
    ds = xr.Dataset(
        {cv.SM: ((cv.LAYER, cv.TIME, cv.LAT, cv.LON), data, dict(cv.SM_ATTRS))},
        coords={**cv.layer_coords([1]), cv.TIME: times, cv.LAT: lat, cv.LON: lon},
        attrs={
            "xsomo_model_id": "bench:synthetic",
            "xsomo_drivers_period": "2015-01-01/2015-12-31",
        },
    )
    return ds


# ----------------------------------------------------------------------------- reads


def _reads(kind: str, path: pathlib.Path) -> dict[str, object]:
    """Read functions (map of day d, series of cell (i, j)) for one dataset."""
    import netCDF4
    import zarr

    import xsomo

    if kind == "nc":
        nc_file = next(path.glob("*.nc"))

        def raw_map(d: int, i: int, j: int) -> np.ndarray:
            with netCDF4.Dataset(nc_file) as ds:
                return ds.variables["layer1"][d, :, :]

        def raw_series(d: int, i: int, j: int) -> np.ndarray:
            with netCDF4.Dataset(nc_file) as ds:
                return ds.variables["layer1"][:, i, j]

    else:

        def raw_map(d: int, i: int, j: int) -> np.ndarray:
            return zarr.open_group(os.fspath(path), mode="r")[cv.SM][0, d, :, :]

        def raw_series(d: int, i: int, j: int) -> np.ndarray:
            return zarr.open_group(os.fspath(path), mode="r")[cv.SM][0, :, i, j]

    def xs_map(d: int, i: int, j: int) -> np.ndarray:
        with xsomo.open_somo(path) as ds:
            return ds[cv.SM].isel(layer=0, time=d).values

    def xs_series(d: int, i: int, j: int) -> np.ndarray:
        with xsomo.open_somo(path) as ds:
            return ds[cv.SM].isel(layer=0, lat=i, lon=j).values

    return {
        "map raw": raw_map, "series raw": raw_series, "map open_somo": xs_map,
        "series open_somo": xs_series,
    }  # fmt: skip


def _time_read(
    fn, path: pathlib.Path, positions, expected: np.ndarray, what: str
) -> tuple[float, float, int | None]:
    cold, warm, left = [], [], []
    for d, i, j in positions:
        drop_cache(path)
        res = resident_bytes(path)
        left.append(res if res is not None else -1)
        t0 = time.perf_counter()
        got = np.asarray(fn(d, i, j), dtype=np.float32)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fn(d, i, j)
        warm.append(time.perf_counter() - t0)
        want = expected[0, d] if what.startswith("map") else expected[0, :, i, j]
        np.testing.assert_array_equal(np.ma.filled(got, np.nan), want)  # the read is right
    resident = None if min(left) < 0 else max(left)
    return statistics.median(cold), statistics.median(warm), resident


def bench_reads(work: pathlib.Path, *, nlat: int, nlon: int, repeats: int) -> None:
    print(f"\n== 1. reads: one year (365 days) of layer 1 on {nlat} x {nlon} cells "
          f"(Europe grid {cv.EUROPE.nlat} x {cv.EUROPE.nlon}), synthetic field ==")  # fmt: skip
    t0 = time.perf_counter()
    ds = synthetic_year(nlat, nlon)
    expected = ds[cv.SM].values
    land = ~np.isnan(expected[0, 0])
    print(f"field generated in {time.perf_counter() - t0:.1f} s: {land.mean():.0%} land, "
          f"{expected.nbytes / 2**20:.0f} MiB float32 in memory")  # fmt: skip
    rng = np.random.default_rng(1)
    cells = np.argwhere(land)
    positions = []
    for _ in range(repeats):
        i, j = cells[rng.integers(cells.shape[0])]
        positions.append((int(rng.integers(365)), int(i), int(j)))

    datasets: list[tuple[str, str, pathlib.Path, str]] = []
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        output.to_files(ds, work / "nc", progress=False)
    nc_write = time.perf_counter() - t0
    datasets.append(("netCDF file", "nc", work / "nc", f"32 d x {min(64, nlat)} x {min(64, nlon)}"))
    writes = {"netCDF file": nc_write}
    saved = (output.ZARR_CHUNK_DAYS, output.ZARR_CHUNK_CELLS)
    try:
        for days, cells_side in CHOICES:
            output.ZARR_CHUNK_DAYS, output.ZARR_CHUNK_CELLS = days, cells_side
            name = f"zarr {days} d x {cells_side}^2"
            store = work / f"sm_{days}_{cells_side}.zarr"
            t0 = time.perf_counter()
            output.to_zarr(ds, store, progress=False)
            writes[name] = time.perf_counter() - t0
            datasets.append((name, "zarr", store, f"{days} d x {cells_side} x {cells_side}"))
    finally:
        output.ZARR_CHUNK_DAYS, output.ZARR_CHUNK_CELLS = saved

    header = (f"{'dataset':<22} {'chunks':<18} {'MiB':>6} {'files':>6} {'write s':>8} "
              f"{'read':<17} {'cold ms':>8} {'warm ms':>8} {'chunks read 1y/19y':>19}")  # fmt: skip
    print(header)
    print("-" * len(header))
    resident_max = 0
    for name, kind, path, chunk_text in datasets:
        size = _size(path) / 2**20
        nfiles = len(_files(path))
        days, c1, c2 = (int(x) for x in chunk_text.replace("d x", "x").split("x"))
        first = True
        for what, fn in _reads(kind, path).items():
            cold, warm, resident = _time_read(fn, path, positions, expected, what)
            resident_max = max(resident_max, resident or 0)
            if what.startswith("map"):
                touched = f"{-(-nlat // c1) * -(-nlon // c2)}"
            else:
                touched = f"{-(-365 // days)}/{-(-6940 // days)}"
            lead = (f"{name:<22} {chunk_text:<18} {size:>6.1f} {nfiles:>6} {writes[name]:>8.1f}"
                    if first else " " * 64)  # fmt: skip
            print(
                f"{lead} {what:<17} {cold * 1e3:>8.1f} {warm * 1e3:>8.1f} {touched:>19}", flush=True
            )
            first = False
    note = (f"after each drop at most {resident_max / 2**10:.0f} KiB of a dataset stayed in the page cache (fincore)"
            if shutil.which("fincore") else "fincore not installed: page-cache residency not checked")  # fmt: skip
    print(f"cold = page cache of every file dropped (posix_fadvise DONTNEED) before the read; "
          f"median of {repeats} random days/land cells; {note}")  # fmt: skip
    print(
        "a zarr store's file count is its chunks + metadata; the netCDF file is one per layer and year "
        "(18 years x 3 layers = 54 files for SoMo.ml-EU)"
    )


def bench_long_series(work: pathlib.Path, *, side: int, years: int, repeats: int) -> None:
    """One cell's whole series over ``years`` years: the read that grows with the period."""
    import netCDF4
    import zarr

    import xsomo

    print(f"\n== 1b. one cell's {years}-year series: a {side} x {side}-cell window of the field, "
          f"{years} years (each year the 2015 field + noise), written as above ==")  # fmt: skip
    year = synthetic_year(cv.EUROPE.nlat, cv.EUROPE.nlon)
    y0, x0 = 120, 250  # a land-rich window
    win = year[cv.SM].values[:, :, y0 : y0 + side, x0 : x0 + side]
    rng = np.random.default_rng(5)
    times = pd.date_range(f"{2019 - years + 1}-01-01", "2019-12-31", freq="D")
    data = np.empty((1, times.size, side, side), np.float32)
    t = 0
    for y in sorted(set(times.year)):
        n = int((times.year == y).sum())
        block = win[:, np.arange(n) % 365]
        data[:, t : t + n] = block + rng.normal(0, 0.004, block.shape).astype(np.float32)
        t += n
    ds = xr.Dataset(
        {cv.SM: ((cv.LAYER, cv.TIME, cv.LAT, cv.LON), data, dict(cv.SM_ATTRS))},
        coords={**cv.layer_coords([1]), cv.TIME: times,
                cv.LAT: year[cv.LAT].values[y0 : y0 + side], cv.LON: year[cv.LON].values[x0 : x0 + side]},
        attrs={"xsomo_model_id": "bench:synthetic", "xsomo_drivers_period": f"{times[0].date()}/{times[-1].date()}"},
    )  # fmt: skip
    land = np.argwhere(~np.isnan(data[0, 0]))
    cells = [tuple(int(v) for v in land[rng.integers(land.shape[0])]) for _ in range(repeats)]
    root = work / "long"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        output.to_files(ds, root / "nc", progress=False)
    stores = []
    saved = (output.ZARR_CHUNK_DAYS, output.ZARR_CHUNK_CELLS)
    try:
        for days, cells_side in CHOICES:
            output.ZARR_CHUNK_DAYS, output.ZARR_CHUNK_CELLS = days, cells_side
            store = root / f"sm_{days}_{cells_side}.zarr"
            output.to_zarr(ds, store, progress=False)
            stores.append((f"zarr {days} d x {cells_side}^2", store, -(-times.size // days)))
    finally:
        output.ZARR_CHUNK_DAYS, output.ZARR_CHUNK_CELLS = saved
    nc_files = sorted((root / "nc").glob("*.nc"))

    def nc_raw(i: int, j: int) -> np.ndarray:
        parts = []
        for f in nc_files:
            with netCDF4.Dataset(f) as nc:
                parts.append(np.ma.filled(nc.variables["layer1"][:, i, j], np.nan))
        return np.concatenate(parts)

    def zarr_raw(store: pathlib.Path):
        return lambda i, j: zarr.open_group(os.fspath(store), mode="r")[cv.SM][0, :, i, j]

    def via_open_somo(path: pathlib.Path):
        def read(i: int, j: int) -> np.ndarray:
            with xsomo.open_somo(path) as opened:
                return opened[cv.SM].isel(layer=0, lat=i, lon=j).values

        return read

    rows = [(f"netCDF files ({len(nc_files)})", root / "nc", nc_raw, via_open_somo(root / "nc"),
             len(nc_files) * -(-365 // output.FILE_CHUNK_DAYS))]  # fmt: skip
    rows += [(name, store, zarr_raw(store), via_open_somo(store), n) for name, store, n in stores]
    print(f"{'dataset':<22} {'chunks read':>11} {'raw cold ms':>12} {'open_somo cold ms':>18}")
    for name, path, raw, xs, n in rows:
        times_ms = []
        for fn in (raw, xs):
            cold = []
            for i, j in cells:
                drop_cache(path)
                t0 = time.perf_counter()
                got = np.asarray(fn(i, j), dtype=np.float32)
                cold.append(time.perf_counter() - t0)
                np.testing.assert_array_equal(got, data[0, :, i, j])
            times_ms.append(statistics.median(cold) * 1e3)
        print(f"{name:<22} {n:>11} {times_ms[0]:>12.1f} {times_ms[1]:>18.1f}", flush=True)
    shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------- extend


def bench_extend(work: pathlib.Path, *, nlat: int, nlon: int, hidden: int, lookback: int) -> None:
    from xsomo.prediction import inference
    from xsomo.testing import random_model, synthetic_drivers

    months = 1
    print(f"\n== 2. extend by one month vs recomputing the year: synthetic drivers {nlat} x {nlon} cells, "
          f"random cascade (3 layers x 2 members, {hidden} hidden units, lookback = spin-up "
          f"{lookback} days), continuous roll-out ==")  # fmt: skip
    start = pd.Timestamp("2015-01-01") - pd.Timedelta(days=lookback)
    ndays = lookback + 365 + 31 * months
    drivers = synthetic_drivers(
        nlat=nlat, nlon=nlon, start=str(start.date()), ndays=ndays, seed=3, sea_cells=4
    )
    model = random_model(hidden=hidden, lookback=lookback, ensemble=2, seed=1)
    chunks = {"lat": nlat, "lon": nlon}
    opts = {"mode": "continuous", "chunks": chunks, "check_convergence": False}
    # warm-up (torch, dask, the kernels), not timed
    inference.predict(drivers.isel(time=slice(0, lookback + 31)), model, **opts).compute()
    results = {}
    for fmt in ("zarr", "netcdf"):
        folder = work / f"extend_{fmt}"
        target = folder / "sm.zarr" if fmt == "zarr" else folder / "files"
        state = folder / "state.nc"
        # the year, with its state (the starting point of an extension; not timed)
        sm = inference.predict(
            drivers.sel(time=slice(None, "2015-12-31")), model, return_state=True, **opts
        )
        if fmt == "zarr":
            output.to_zarr(sm, target, progress=False, state_file=state)
        else:
            output.to_files(sm, target, progress=False, state_file=state)
        # recompute the year + the month from scratch (spin-up included)
        t0 = time.perf_counter()
        full = inference.predict(drivers, model, return_state=True, **opts)
        if fmt == "zarr":
            output.to_zarr(
                full, folder / "full.zarr", progress=False, state_file=folder / "full_state.nc"
            )
        else:
            output.to_files(
                full, folder / "full", progress=False, state_file=folder / "full_state.nc"
            )
        recompute = time.perf_counter() - t0
        # extend by the month
        t0 = time.perf_counter()
        ext = inference.predict(drivers, model, state=state, return_state=True, chunks=chunks)
        if fmt == "zarr":
            output.extend_zarr(ext, target, state_file=state, progress=False)
        else:
            output.extend_files(ext, target, state_file=state, progress=False)
        extend = time.perf_counter() - t0
        if fmt == "zarr":
            import xsomo

            with xsomo.open_somo(target) as a, xsomo.open_somo(folder / "full.zarr") as b:
                diff = float(np.nanmax(np.abs(a[cv.SM].values - b[cv.SM].values)))
        else:
            import xsomo

            with xsomo.open_somo(target) as a, xsomo.open_somo(folder / "full") as b:
                diff = float(np.nanmax(np.abs(a[cv.SM].values - b[cv.SM].values)))
        results[fmt] = (recompute, extend, diff)
        print(f"{fmt:<7} recompute 2015-01 .. 2016-01 ({lookback} + {365 + 31} days): {recompute:6.1f} s; "
              f"extend by 2016-01 (31 days): {extend:5.1f} s -> {recompute / extend:5.1f}x; "
              f"max |extended - recomputed| = {diff:.1e} m3 m-3", flush=True)  # fmt: skip
    print(
        f"roll-out days: recompute {lookback + 365 + 31}, extend 31 ({(lookback + 396) / 31:.0f}x fewer); "
        "the rest of the extension's time is fixed cost (reading the state and the drivers' lookback, "
        "rewriting the current year's netCDF file / resizing the store, writing the state)"
    )


def main(argv: list[str] | None = None) -> int:
    global CHOICES
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a quarter of the Europe grid, fewer repeats"
    )
    parser.add_argument(
        "--keep", type=pathlib.Path, help="write here (kept) instead of a temporary folder"
    )
    parser.add_argument(
        "--choices", metavar="DxC,...",
        help="Zarr chunk choices to measure, e.g. 96x32,64x32 (days x cells; default: "
        + ",".join(f"{d}x{c}" for d, c in CHOICES) + ")",
    )  # fmt: skip
    parser.add_argument("--skip-extend", action="store_true")
    parser.add_argument("--skip-reads", action="store_true")
    args = parser.parse_args(argv)
    if args.choices:
        CHOICES = tuple(tuple(int(v) for v in c.split("x")) for c in args.choices.split(","))  # type: ignore[assignment]
    import torch

    print(f"bench_zarr: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, torch {torch.__version__}")  # fmt: skip
    print(f"load at start: {_uptime()}")
    t_all = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = args.keep
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = pathlib.Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_zarr_"))
            )
        if not args.skip_reads:
            nlat, nlon = (
                (cv.EUROPE.nlat // 2, cv.EUROPE.nlon // 2) if args.quick else cv.EUROPE.shape
            )
            bench_reads(work, nlat=nlat, nlon=nlon, repeats=3 if args.quick else 5)
            bench_long_series(work, side=64 if args.quick else 128, years=4 if args.quick else 19,
                              repeats=3 if args.quick else 5)  # fmt: skip
        if not args.skip_extend:
            size = 8 if args.quick else 32
            bench_extend(work, nlat=size, nlon=size, hidden=16 if args.quick else 64,
                         lookback=90 if args.quick else 365)  # fmt: skip
    print(f"\nload at end: {_uptime()}; total {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
