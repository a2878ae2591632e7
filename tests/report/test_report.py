"""Report and CLI on the tiny sample world, with a stand-in prediction (truth + noise)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xsomo import evaluation as ev
from xsomo.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofyear:DeprecationWarning")


@pytest.fixture(scope="module")
def prediction(tiny_world, tmp_path_factory):
    truth = xr.open_dataset(tiny_world / "truth.nc")["sm"].transpose("layer", "time", "lat", "lon")
    rng = np.random.default_rng(11)
    sm = (truth + 0.02 * rng.standard_normal(truth.shape)).astype("float32")
    path = tmp_path_factory.mktemp("pred") / "pred.nc"
    sm.to_dataset(name="sm").to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def importance_nc(tmp_path_factory):
    """A result of ``xsomo experiment importance``'s form (random drops over 4 repeats)."""
    rng = np.random.default_rng(5)
    names = ["precipitation", "air_temperature", "sand_top"]
    res = xr.Dataset(
        {
            "r_drop": (("input", "layer", "repeat"), rng.normal(0.05, 0.1, (3, 3, 4))),
            "nse_drop": (("input", "layer", "repeat"), rng.normal(0.1, 0.2, (3, 3, 4))),
            "r": (("layer",), [0.91, 0.85, 0.8]),
            "nse": (("layer",), [0.8, 0.7, 0.6]),
            "kind": (("input",), ["dynamic", "dynamic", "static"]),
        },
        coords={"input": names, "layer": [1, 2, 3], "repeat": np.arange(4)},
        attrs={"n_cells": 40, "spinup_days": 90},
    )
    path = tmp_path_factory.mktemp("imp") / "importance.nc"
    res.to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def report_dir(tiny_world, prediction, importance_nc, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    # 300 dpi is checked in test_plotting; a lower resolution keeps this fixture fast
    argv = ["report", "--world", str(tiny_world), "--pred", str(prediction), "--out", str(out), "--vector", "pdf",
            "--dpi", "100", "--importance", str(importance_nc)]
    assert main(argv) == 0
    return out


def test_report_page_shows_existing_figures(report_dir):
    text = (report_dir / "index.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) >= 8
    for rel in images:
        png = report_dir / rel
        assert png.exists(), rel
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 5000
        assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"  # --vector pdf
    html = (report_dir / "index.html").read_text()
    assert html.count("<img") == len(images)
    # the page says how its daily-anomaly maps differ from the exported period anomaly
    assert "not** the exported period anomaly" in text and "nan" not in text.lower().split()
    assert "figures/fig4_input_importance.png" in images  # --importance
    for name in ("station_summary_all", "truth_skill", "product_mean_comparison", "memory_truth", "input_importance"):
        assert (report_dir / "tables" / f"{name}.csv").exists()


def test_report_numbers_match_independent_computation(report_dir, tiny_world, prediction):
    from xsomo.io import open_cosmos

    pred = xr.open_dataset(prediction)
    cosmos = open_cosmos(tiny_world / "cosmos")
    tab = pd.read_csv(report_dir / "tables" / "station_summary_all.csv")
    # the footprint-mix r at each station recomputed with numpy: the cell by integer arithmetic on
    # the grid's edges, the layers weighted by their overlap with 0..depth, r on the common days
    sm = pred["sm"].transpose("layer", "time", "lat", "lon")
    lat, lon = sm.lat.values, sm.lon.values
    res = float(np.median(np.diff(lon)))
    south, west = lat.min() - res / 2, lon.min() - res / 2
    tops, bottoms = np.array([0.0, 0.1, 0.3]), np.array([0.1, 0.3, 0.5])
    rs = []
    for k in range(cosmos.sizes["station"]):
        st = cosmos.isel(station=k)
        i = int(np.floor((float(st.lat) - south) / res + 1e-9))
        j = int(np.floor((float(st.lon) - west) / res + 1e-9))
        if not (0 <= i < lat.size and 0 <= j < lon.size):
            continue
        depth = float(st.footprint_depth)
        w = np.clip(np.minimum(bottoms, depth) - tops, 0, None) / depth
        col = sm.sel(lat=np.sort(lat)[i], lon=np.sort(lon)[j])
        mix = sum(w[n] * col.isel(layer=n).values.astype(float) for n in range(3))
        obs = st["sm"].reindex(time=sm.time.values).values.astype(float)
        ok = np.isfinite(mix) & np.isfinite(obs)
        if ok.sum() >= 30:
            rs.append(np.corrcoef(mix[ok], obs[ok])[0, 1])
    assert len(rs) >= 1
    row = tab[(tab.dataset == "xsomo") & (tab.layer == 0)]
    assert row["n_stations"].item() == len(rs)
    assert row["pearson_r"].item() == pytest.approx(float(np.median(rs)), rel=1e-4)
    # median r against the truth, recomputed cell by cell with numpy
    truth = xr.open_dataset(tiny_world / "truth.nc")["sm"].transpose("layer", "time", "lat", "lon").values
    p = pred["sm"].values
    rs = []
    for i in range(truth.shape[2]):
        for j in range(truth.shape[3]):
            a, b = p[0, :, i, j], truth[0, :, i, j]
            ok = np.isfinite(a) & np.isfinite(b)
            if ok.sum() >= 30:
                rs.append(np.corrcoef(a[ok], b[ok])[0, 1])
    skill = pd.read_csv(report_dir / "tables" / "truth_skill.csv")
    got = skill[(skill.dataset == "xsomo") & (skill.layer == 1)]["pearson_r"].item()
    assert got == pytest.approx(float(np.median(rs)), rel=1e-3)
    # every stand-in product of the world took part
    products = sorted(p.name for p in (tiny_world / "products").iterdir())
    assert set(products) <= set(tab.dataset)


def test_cli_evaluate_writes_netcdf_csv_gpkg(tiny_world, prediction, tmp_path, capsys):
    import geopandas as gpd

    out = tmp_path / "m.nc"
    rc = main(["evaluate", "--pred", str(prediction), "--cosmos", str(tiny_world / "cosmos"), "--out", str(out),
               "--csv", str(tmp_path / "m.csv"), "--gpkg", str(tmp_path / "m.gpkg")])
    assert rc == 0
    m = xr.open_dataset(out)
    assert set(ev.METRICS) <= set(m.data_vars)
    assert "footprint" in capsys.readouterr().out
    gdf = gpd.read_file(tmp_path / "m.gpkg")
    assert len(gdf) == m.sizes["station"] * m.sizes["layer"]
    assert gdf.crs.to_epsg() == 4326
    df = pd.read_csv(tmp_path / "m.csv", float_precision="round_trip")
    assert len(df) == len(gdf)
    # numbers read back as written: the station coordinates and the metrics to the last bit
    table = ev.metrics_table(m)
    key = [c for c in ("station", "layer") if c in df.columns]
    assert key and {"lat", "lon", "pearson_r"} <= set(df.columns)
    df, table = df.sort_values(key, ignore_index=True), table.sort_values(key, ignore_index=True)
    for col in ("lat", "lon", "pearson_r"):
        np.testing.assert_array_equal(df[col].to_numpy(), table[col].to_numpy(dtype=float))


def test_extrapolated_features_counts_cells_outside_the_training_range():
    import numpy as np
    import xarray as xr

    from xsomo.report import report

    vals = np.array([[0.5, 3.0], [2.5, 1.0], [3.5, 0.2], [1.0, 1.5]])  # (cell, feature)
    res = xr.Dataset(
        {"static_inputs": (("cell", "feature"), vals)},
        coords={"feature": ["precipitation_mean", "aridity"], "group": ("cell", ["a", "a", "a", "b"])},
    )
    env = {"precipitation_mean": [0.8, 2.0], "aridity": [0.5, 2.0]}
    text = report._extrapolated_features(res, env)
    # group a: precipitation 1 below, 2 above; aridity 1 below, 1 above; group b: all inside
    assert "`precipitation_mean` 1 below (down to 0.5) and 2 above (up to 3.5)" in text
    assert "`aridity` 1 below (down to 0.2) and 1 above (up to 3)" in text
    assert "`b` (1 cells): every static feature within the training range" in text


def test_s6_regional_anomalies_are_area_weighted_means_of_the_region_masks(report_dir, tiny_world, prediction):
    """Issue 15 item 5: S6 is the cos(latitude)-weighted mean over each region's cells of the daily
    z-scores (NaN cells ignored), then the seasonal (DJF, MAM, JJA, SON) mean; recomputed with numpy."""
    import json

    tab = pd.read_csv(report_dir / "tables" / "regional_seasonal_anomalies.csv", parse_dates=["time"])
    world = xr.open_dataset(tiny_world / "truth.nc")
    names = json.loads((tiny_world / "world.json").read_text()).get("regions", {"1": "us", "2": "europe"})
    sm = xr.open_dataset(prediction)["sm"].transpose("layer", "time", "lat", "lon")
    z = ev.anomalies(sm)["sm_anomaly"].transpose("layer", "time", "lat", "lon")
    region = world["region"].transpose("lat", "lon").reindex(lat=z.lat, lon=z.lon).values
    coslat = np.cos(np.deg2rad(z.lat.values))[:, None] * np.ones(z.sizes["lon"])[None, :]
    t = pd.DatetimeIndex(z.time.values)
    checked = 0
    for code, name in names.items():
        cells = region == int(code)
        if not cells.any():
            continue
        for n, lay in enumerate(z.layer.values):
            vals = z.values[n][:, cells].astype(float)  # (time, cells)
            wts = np.where(np.isfinite(vals), coslat[cells][None, :], 0.0)
            daily = np.nansum(np.nan_to_num(vals) * wts, axis=1) / wts.sum(axis=1)
            seasonal = pd.Series(daily, index=t).resample("QS-DEC").mean()
            got = tab[(tab.region == name) & (tab.layer == lay)].set_index("time")["z_xsomo"]
            # the table holds 4 significant digits
            np.testing.assert_allclose(got.values, seasonal.reindex(got.index).values, rtol=5e-4, atol=1e-5)
            checked += 1
    assert checked >= 2 * z.sizes["layer"]
    text = (report_dir / "index.md").read_text()
    assert "area-weighted" in text


def test_report_importance_table_is_the_results_median_and_range(report_dir, importance_nc):
    """``xsomo report --importance``: the table (and the figure drawn from the same numbers, see
    tests/report/test_plotting.py) holds the median and range over repeats of the result's drops."""
    res = xr.open_dataset(importance_nc)
    tab = pd.read_csv(report_dir / "tables" / "input_importance.csv")
    assert len(tab) == res.sizes["input"] * res.sizes["layer"]
    for row in tab.itertuples():
        for m in ("r_drop", "nse_drop"):
            raw = res[m].sel(input=row.input, layer=row.layer).values
            # the CSV keeps 4 significant digits
            assert getattr(row, m) == pytest.approx(np.median(raw), rel=1e-3, abs=1e-5)
            assert getattr(row, f"{m}_min") == pytest.approx(raw.min(), rel=1e-3, abs=1e-5)
            assert getattr(row, f"{m}_max") == pytest.approx(raw.max(), rel=1e-3, abs=1e-5)
        assert row.kind == str(res.kind.sel(input=row.input).item())
    text = (report_dir / "index.md").read_text()
    assert "## Input importance" in text
    # the page names the input with the largest median drop of r per layer
    for lay in (1, 2, 3):
        med = res.r_drop.sel(layer=lay).median("repeat")
        assert f"layer {lay}: `{med.idxmax().item()}` ({float(med.max()):.3f}" in text


def test_quality_bar_shows_enough_decimals_to_tell_a_near_tie():
    from xsomo.report.report import quality_bar

    near = quality_bar(0.96443, pd.Series({"somoml_v1_like": 0.96422, "gleam_like": 0.9035}))
    assert "**0.9644**" in near and "somoml_v1 0.9642" in near
    assert "higher than every product** (by 2.1e-04 from the closest product)." in near
    clear = quality_bar(0.95, pd.Series({"gleam_like": 0.90}))
    assert "**0.950**; gleam 0.900. xsomo is **higher than every product**." in clear
    lower = quality_bar(0.9642, pd.Series({"somoml_v1_like": 0.9644}))
    assert "**not** higher" in lower and "0.9642" in lower and "0.9644" in lower
    assert "**not** higher" in quality_bar(0.9, pd.Series({"x": 0.9}))  # a tie is not higher


def test_report_on_a_prediction_of_one_layer(tiny_world, prediction, tmp_path):
    """H2 finding 2: a prediction of layer 3 alone crashed with KeyError 'layer' (station map at layer 0,
    background and station series at layer 1, summer maps of layers 1 and 3). The page reports the
    layer present and says why there is no footprint mix."""
    one = xr.open_dataset(prediction).sel(layer=[3])
    path = tmp_path / "layer3.nc"
    one.to_netcdf(path)
    out = tmp_path / "rep"
    assert main(["report", "--world", str(tiny_world), "--pred", str(path), "--out", str(out), "--dpi", "40"]) == 0
    text = (out / "index.md").read_text()
    assert "holds layer 3 only: no footprint mix" in text
    assert "Quality bar" not in text  # the bar compares footprint mixes
    assert "nan" not in text.lower().split() and "| nan |" not in text.lower()
    assert pd.read_csv(out / "tables" / "station_summary_xsomo.csv")["layer"].tolist() == [3]
    assert pd.read_csv(out / "tables" / "anomaly_pattern_correlation.csv")["layer"].tolist() == [3]
    # the comparison table shows the layer xsomo holds, not an empty footprint-mix column
    header = next(ln for ln in text.splitlines() if ln.startswith("| dataset |") and "layer3" in ln)
    assert header == "| dataset | layer3 |"
    assert (out / "figures" / "fig5a_summer_mean_layer3.png").exists()
    assert not (out / "figures" / "fig5a_summer_mean_layer1.png").exists()
    for name in ("stations_map", "stations_series", "fig5b_anomaly_xsomo"):
        assert (out / "figures" / f"{name}.png").exists()


def test_report_refuses_a_year_outside_the_prediction_before_the_slow_sections(tiny_world, prediction, tmp_path, capsys):
    """H2 finding 3: --year 2030 failed with an unexpected KeyError after the slow sections."""
    out = tmp_path / "rep"
    rc = main(["report", "--world", str(tiny_world), "--pred", str(prediction), "--out", str(out), "--year", "2030"])
    assert rc != 0
    err = capsys.readouterr().err
    assert "--year 2030" in err and "complete summer: 2015, 2016, 2017" in err and "unexpected" not in err
    assert not (out / "figures").exists()  # refused before any section was drawn


def _time(start: str, end: str) -> xr.DataArray:
    t = pd.date_range(start, end, freq="D")
    return xr.DataArray(np.zeros(t.size), dims="time", coords={"time": t})


def test_pick_year_takes_a_complete_summer_only():
    """H2 finding 3: a prediction from 2015-09-01 picked 2015 (no summer day) and wrote no report; one
    from 2015-08-20 titled 12 August days "JJA 2015"."""
    from xsomo.report.report import _complete_summers, _pick_year

    rng = np.random.default_rng(0)
    t = pd.date_range("2015-01-01", "2017-12-31", freq="D")
    truth = xr.DataArray(
        rng.random((1, t.size, 2, 2)), dims=("layer", "time", "lat", "lon"),
        coords={"layer": [1], "time": t, "lat": [40.05, 40.15], "lon": [0.05, 0.15]},
    )
    truth.loc[{"time": slice("2017-06-01", "2017-08-31")}] -= 1.0  # 2017: the driest summer
    assert _complete_summers(_time("2015-08-20", "2017-12-31").time) == [2016, 2017]
    assert _complete_summers(_time("2015-06-01", "2015-08-31").time) == [2015]
    assert _complete_summers(_time("2015-06-02", "2016-08-30").time) == []
    for start in ("2015-08-20", "2015-09-01"):
        yr, why = _pick_year(_time(start, "2017-12-31"), truth.sel(time=slice(start, None)), None)
        assert yr == 2017 and "driest complete summer" in why and "2015" in why
    assert _pick_year(_time("2015-04-01", "2017-12-31"), truth, None) == (2015, "the paper's drought year")
    assert _pick_year(_time("2015-04-01", "2017-12-31"), truth, 2016) == (2016, "chosen")
    yr, why = _pick_year(_time("2015-06-02", "2016-08-30"), truth, None)
    assert yr is None and "no complete summer" in why
    with pytest.raises(ValueError, match=r"--year 2015: .* does not hold the whole summer .* 2016"):
        _pick_year(_time("2015-08-20", "2016-12-31"), truth, 2015)


def _memory_inputs(tiny_world, start: str, end: str):
    from xsomo.io.world import open_truth
    from xsomo.report.report import ReportInputs

    truth_ds = open_truth(tiny_world)
    truth = truth_ds["sm"].sel(time=slice(start, end)).load().transpose("layer", "time", "lat", "lon")
    return ReportInputs(world=tiny_world, meta={}, truth_ds=truth_ds, truth=truth, sm=truth, datasets={},
                        training=None, cosmos=None)


def test_report_memory_of_the_truth_uses_the_whole_truth(tiny_world, tmp_path):
    """H2 finding 1: a one-year prediction gave truth e-folding times of 4/4/4 days against 10/13/16
    from the world's 3 years: the truth was cut to the prediction's period, and the 31-day moving
    climatology of one year removed the slow anomalies."""
    from xsomo.evaluation import experiments
    from xsomo.report.report import Report, section_memory

    inp = _memory_inputs(tiny_world, "2016-01-01", "2016-12-31")
    rep = Report(tmp_path, dpi=30)
    section_memory(rep, inp)
    tab = pd.read_csv(rep.tables["memory_truth"])
    whole = experiments.memory_timescales(inp.truth_ds["sm"].load().transpose("layer", "time", "lat", "lon"))
    assert tab["efold_days"].tolist() == whole["efold_days"].values.tolist()
    with pytest.warns(UserWarning, match="1.0 years"):
        cut = experiments.memory_timescales(inp.truth)
    # the cut record's answer is the high-passed one the report gave before
    assert (cut["efold_days"].values < whole["efold_days"].values).all()
    text = "\n".join(rep.sections[0][1])
    assert "the world's whole truth, 2015-01-01 to 2017-12-31" in text


def test_report_days_needed_says_no_gain(tiny_world, tmp_path):
    """H2 finding 4: where the whole window adds no skill the page said 1 day needed; it says "no gain"."""
    from xsomo.report.report import Report, section_memory

    inp = _memory_inputs(tiny_world, "2015-01-01", "2017-12-31")
    ns = [1, 10, 30, 90]
    r = np.array([[0.2, 0.5], [0.6, 0.45], [0.8, 0.4], [0.8, 0.3]])  # layer 2 falls with the window
    perm = xr.Dataset(
        {"pearson_r": (("n_kept", "layer"), r), "nse": (("n_kept", "layer"), r - 0.1)},
        coords={"n_kept": ns, "layer": [1, 2]}, attrs={"lookback": 90, "days_per_cell": 20},
    )
    rep = Report(tmp_path, dpi=30)
    section_memory(rep, inp, memory=perm)
    text = "\n".join(rep.sections[0][1])
    assert "layer 1: 30 / 30; layer 2: no gain / no gain." in text
    assert "No gain: the score with the whole window in order is not higher" in text
    assert "layer 2: 0." not in text  # no e-folding ratio for a layer without a gain


def test_report_says_when_no_station_lies_in_the_grid(tiny_world, prediction, tmp_path):
    """H2 finding 6: a prediction over a region without stations said "2 stations" and showed
    tables of dashes without saying that the stations lie outside the grid."""
    from xsomo.io import open_cosmos
    from xsomo.io.world import open_truth
    from xsomo.report.report import Report, ReportInputs, section_stations

    cosmos = open_cosmos(tiny_world / "cosmos")
    sm = xr.open_dataset(prediction)["sm"].load()
    # the columns west of every station (a station lies in the cell whose centre is within half a cell)
    west = sm.sel(lon=sm.lon[sm.lon < float(cosmos.lon.min()) - 0.1])
    assert west.sizes["lon"] >= 1
    inp = ReportInputs(world=tiny_world, meta={}, truth_ds=open_truth(tiny_world), truth=west, sm=west,
                       datasets={"xsomo": west}, training=None, cosmos=cosmos)
    rep = Report(tmp_path, dpi=30)
    section_stations(rep, inp)
    text = "\n".join(rep.sections[0][1])
    n = cosmos.sizes["station"]
    assert f"None of the world's {n} stations lies inside the prediction's grid" in text
    assert "| footprint |" not in text and not rep.figures
