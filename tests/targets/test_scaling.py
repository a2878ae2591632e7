"""xsomo.targets.scaling.scale_to: moments over the overlap, order invariance, per-cell averaging, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xsomo  # noqa: F401  (registers .somo)
from xsomo import conventions as cv
from xsomo.conventions import GridSpec
from xsomo.exceptions import GridMismatchError, UnitError, XsomoExceptionGroup, XsomoValueError
from xsomo.regrid import regrid
from xsomo.targets.scaling import reference_at_points, scale_to, target_grid_for

DAYS = pd.date_range("2010-01-01", periods=400, freq="D")
# an ERA5-Land-like reference grid: points on multiples of 0.1 deg
REF_LAT = np.round(np.arange(45.0, 46.01, 0.1), 6)
REF_LON = np.round(np.arange(5.0, 6.51, 0.1), 6)


def make_reference(seed: int = 0, time: pd.DatetimeIndex = DAYS) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    base = 0.25 + 0.05 * np.sin(np.arange(time.size) * 2 * np.pi / 365)[None, :, None, None]
    noise = 0.02 * rng.normal(size=(3, time.size, REF_LAT.size, REF_LON.size))
    sm = (base + noise + 0.01 * np.arange(3)[:, None, None, None]).astype("float32")
    return xr.Dataset(
        {"sm": (("layer", "time", "lat", "lon"), sm, cv.SM_ATTRS)},
        coords={"layer": [1, 2, 3], "time": time, "lat": REF_LAT, "lon": REF_LON},
    )


def make_stations(
    specs: list[tuple[str, float, float, int]], seed: int = 1, time: pd.DatetimeIndex = DAYS
) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    n = len(specs)
    x = 0.3 + 0.1 * rng.normal(size=(n, time.size))
    x[:, rng.random(time.size) < 0.2] = np.nan  # gaps
    return xr.Dataset(
        {"sm": (("station", "time"), x.astype("float32"))},
        coords={
            "station": [s[0] for s in specs],
            "time": time,
            "lat": ("station", [s[1] for s in specs]),
            "lon": ("station", [s[2] for s in specs]),
            "layer": ("station", [s[3] for s in specs]),
        },
    )


SPECS = [("a", 45.23, 5.31, 1), ("b", 45.27, 5.36, 1), ("c", 45.61, 6.02, 2), ("d", 45.44, 5.77, 3)]


def test_target_grid_from_era5land_points():
    g = target_grid_for(make_reference())
    assert g.west == 5.0 and g.east == 6.5 and g.south == 45.0 and g.north == 46.0
    np.testing.assert_allclose(g.lat[:2], [45.05, 45.15])


def test_reference_at_points_equals_bilinear_regrid():
    ref = make_reference()["sm"].isel(time=slice(0, 5))
    g = target_grid_for(ref)
    full = regrid(ref.astype("float64"), g, method="bilinear")
    lat = np.array([45.25, 45.65, 45.95])
    lon = np.array([5.35, 6.05, 5.05])
    pts = reference_at_points(ref.astype("float64"), lat, lon)
    expected = full.sel(
        lat=xr.DataArray(lat, dims="point"), lon=xr.DataArray(lon, dims="point"), method="nearest"
    )
    np.testing.assert_allclose(pts.transpose(*expected.dims).values, expected.values, rtol=1e-10)


def test_scaled_series_has_reference_moments_over_overlap():
    ref = make_reference()
    st = make_stations([("solo", 45.43, 5.77, 2)])
    targets, rep = scale_to(st, ref, report=True)
    g = target_grid_for(ref)
    r = (
        reference_at_points(ref["sm"].astype("float64"), g.lat[[4]], g.lon[[7]])
        .sel(layer=2)
        .squeeze()
    )
    r = r.sel(time=targets["time"]).values
    y = targets["sm"].sel(layer=2).squeeze().values.astype("float64")
    both = ~np.isnan(y) & ~np.isnan(r)
    assert rep.kept.all() and int(rep.n_overlap[0]) == both.sum()
    np.testing.assert_allclose(y[both].mean(), r[both].mean(), rtol=1e-6)
    np.testing.assert_allclose(y[both].std(ddof=1), r[both].std(ddof=1), rtol=1e-5)
    assert float(targets["lat"][0]) == pytest.approx(45.45) and float(
        targets["lon"][0]
    ) == pytest.approx(5.75)
    # the daily variation is the station's: correlation 1 with the raw series
    x = st["sm"].sel(time=targets["time"]).values[0].astype("float64")
    ok = ~np.isnan(x) & ~np.isnan(y)
    assert np.corrcoef(x[ok], y[ok])[0, 1] > 0.999999


def test_station_order_does_not_matter():
    ref = make_reference()
    st = make_stations(SPECS)
    a = scale_to(st, ref)
    b = scale_to(st.isel(station=[3, 1, 0, 2]), ref)
    xr.testing.assert_allclose(a["sm"], b["sm"].sel(cell=a["cell"]))
    assert (a["n_stations"].values == b["n_stations"].sel(cell=a["cell"]).values).all()


def test_stations_in_one_cell_are_averaged():
    ref = make_reference()
    st = make_stations(SPECS)
    targets = scale_to(st, ref)
    # a and b share the cell (45.25, 5.35), layer 1
    cell = targets.where((targets.lat == 45.25) & (targets.lon == 5.35), drop=True)
    assert cell["n_stations"].sel(layer=1).item() == 2
    assert str(cell["station_ids"].sel(layer=1).item()) == "a,b"
    single = [
        scale_to(st.sel(station=[s]), ref)["sm"].sel(layer=1).squeeze().values for s in ("a", "b")
    ]
    stack = np.vstack(single)
    n = (~np.isnan(stack)).sum(0)
    expected = np.where(n > 0, np.nansum(stack, axis=0) / np.maximum(n, 1), np.nan)
    np.testing.assert_allclose(cell["sm"].sel(layer=1).squeeze().values, expected, rtol=1e-6)
    assert targets.sizes["cell"] == 3
    assert int(targets["n_stations"].sum()) == 4


def test_short_overlap_skipped_and_reported():
    ref = make_reference()
    st = make_stations(SPECS)
    st["sm"][2, :330] = np.nan  # station c overlaps the reference on < 70 days
    targets, rep = scale_to(st, ref, report=True, min_overlap=90)
    rep = rep.set_index("station")
    assert not rep.loc["c", "kept"] and "min_overlap=90" in rep.loc["c", "reason"]
    assert rep.loc[["a", "b", "d"], "kept"].all()
    assert "c" not in ",".join(targets["station_ids"].values.ravel())
    # a reference without values at a station's cell (the sea) says so, not "0 days of overlap"
    sea = ref.copy(deep=True)
    sea["sm"].loc[{"lat": slice(45.55, 45.75), "lon": slice(5.95, 6.15)}] = np.nan  # around station c
    _, rep = scale_to(make_stations(SPECS), sea, report=True)
    assert rep.set_index("station").loc["c", "reason"].startswith("the reference has no value at this cell")
    with pytest.raises(XsomoValueError, match="no station"):
        scale_to(st, ref, min_overlap=1000)


def test_negatives_become_nan():
    ref = make_reference()
    st = make_stations([("low", 45.43, 5.77, 1)])
    st["sm"][0, 10] = -0.45  # a wild low value (above the fill-value bound), scaled far below zero
    targets = scale_to(st, ref)
    assert np.isnan(targets["sm"].sel(layer=1).squeeze().sel(time=DAYS[10]).item())
    assert (targets["sm"].values[~np.isnan(targets["sm"].values)] >= 0).all()


@pytest.mark.parametrize("fill", [-9999.0, -999.0, -1.0])
def test_fill_values_are_refused(fill):
    """-9999 on some days was kept: the station's mean became -391 and its targets were off by
    0.19 m3 m-3 on every valid day (QA); the reference's fill values as well."""
    ref = make_reference()
    st = make_stations(SPECS)
    st["sm"][1, 5:8] = fill
    with pytest.raises(XsomoValueError, match=rf"below -0.5 \('{st.station.values[1]}': down to {fill:g}\).*Mask them"):
        scale_to(st, ref)
    bad = ref.copy(deep=True)
    bad["sm"][{"time": 3}] = fill
    with pytest.raises(UnitError, match=rf"down to {fill:g} m3 m-3.*fill values"):
        scale_to(make_stations(SPECS), bad)


@pytest.mark.parametrize("fill", [9999.0, 999.0, 99.9, 1.2])
def test_high_fill_values_are_refused(fill):
    """9999 on 10 days of a station in m3 m-3 passed: the station's std became 1034 and its
    cell's targets flat (0.19) on every other day (hostile-input QA); a series in percent, which
    the scaling may take as it is, scales as its fractions do."""
    ref = make_reference()
    st = make_stations(SPECS)
    st["sm"][1, 5:8] = fill
    with pytest.raises(XsomoValueError, match=rf"too high.*'{st.station.values[1]}': up to {fill:g}.*Mask them"):
        scale_to(st, ref)
    fractions = make_stations(SPECS)
    fractions["sm"] = fractions["sm"].clip(0.0)  # -5 % of noise would read as a fill value
    percent = fractions.copy(deep=True)
    percent["sm"] = percent["sm"] * 100
    np.testing.assert_allclose(
        scale_to(percent, ref)["sm"].values, scale_to(fractions, ref)["sm"].values, rtol=1e-5, atol=1e-6
    )
    percent["sm"][1, 5:8] = 9999.0
    with pytest.raises(XsomoValueError, match=r"too high.*up to 9999"):
        scale_to(percent, ref)


def test_station_outside_grid_raises_or_skips():
    ref = make_reference()
    st = make_stations([*SPECS, ("far", 50.0, 5.5, 1)])
    with pytest.raises(GridMismatchError, match="far"):
        scale_to(st, ref)
    _, rep = scale_to(st, ref, outside="skip", report=True)
    assert rep.set_index("station").loc["far", "reason"] == "outside the target grid"


def test_all_nan_station_raises():
    ref = make_reference()
    st = make_stations(SPECS)
    st["sm"][1] = np.nan
    with pytest.raises(XsomoExceptionGroup, match="all NaN"):
        scale_to(st, ref)


def test_accessor_and_target_grid_reference():
    """A reference already on the x.x5 target grid is used as is."""
    ref = make_reference()
    g = target_grid_for(ref)
    on_target = regrid(ref["sm"], g, method="bilinear").to_dataset(name="sm")
    st = make_stations(SPECS[:1])
    a = st.somo.scale_to(on_target)
    b = scale_to(st, ref)
    np.testing.assert_allclose(a["sm"].values, b["sm"].values, rtol=1e-5)
    assert a.attrs["min_overlap_days"] == 90 and "scale_to" in a.attrs["source"]


def test_explicit_grid_and_provenance():
    ref = make_reference()
    g = GridSpec(5.0, 6.5, 45.0, 46.0)
    t = scale_to(make_stations(SPECS), ref, grid=g)
    assert (t["cell"].values == t["row"].values * g.nlon + t["col"].values).all()
    assert t["sm"].dtype == np.float32
    assert set(t.dims) == {"cell", "layer", "time"}


# ----------------------------------------------------------------------------- real data end to end


@pytest.mark.real
def test_hawaii_end_to_end(real_data):
    """SCAN Kainaliu (5 depths), PuaAkala, IslandDairy scaled to the real ERA5-Land cells beside them."""
    from xsomo.io import open_era5land
    from xsomo.targets.stations import open_ismn

    ismn = real_data / "qa4sm-testdata/input_data/ISMN"
    stations = open_ismn([ismn / "ISMN_V20250617", ismn / "ISMN_TESTDATA_HAWAII"])
    era_dir = real_data / "qa4sm-testdata/input_data/ERA5_LAND/ERA5_LAND_V20190904"
    era = open_era5land(era_dir)
    targets, rep = scale_to(stations, era, report=True)
    rep = rep.set_index("station")
    used = rep[rep.kept]
    assert sorted(used.index.str.split(".").str[1]) == ["IslandDairy", "Kainaliu", "PuaAkala"]
    assert (
        rep.loc["SCAN.Kainaliu.Hydraprobe-Analog-B.0.1016-0.1016", "reason"]
        == "reference has no layer 2"
    )
    assert (used.n_overlap >= 90).all() and (used.n_overlap <= 730).all()
    assert targets.sizes["cell"] == 3 and targets["layer"].values.tolist() == [1]

    # independent reference at each cell centre: mean of the (up to) four surrounding ERA5-Land points
    raw = xr.concat([xr.open_dataset(era_dir / f) for f in ("0165.nc", "0166.nc")], dim="locations")
    pts = pd.DataFrame(
        {
            "lat": np.round(raw.lat.values.astype(float), 1),
            "lon": np.round(raw.lon.values.astype(float), 1),
        }
    )
    for cell in targets.cell.values:
        t = targets.sel(cell=cell)
        clat, clon = float(t.lat), float(t.lon)
        corners = [
            (round(clat + dy, 1), round(clon + dx, 1))
            for dy in (-0.05, 0.05)
            for dx in (-0.05, 0.05)
        ]
        idx = [
            k
            for k, (la, lo) in enumerate(zip(pts.lat, pts.lon, strict=True))
            if (la, lo) in corners
        ]
        assert idx, (clat, clon)
        ref = pd.Series(
            raw["swvl1"].values[idx].mean(0), index=pd.DatetimeIndex(raw.time.values).floor("D")
        )
        y = t["sm"].sel(layer=1).to_series()
        both = y.dropna().index.intersection(ref.index)
        np.testing.assert_allclose(y[both].mean(), ref[both].mean(), rtol=1e-6)
        np.testing.assert_allclose(y[both].std(ddof=1), ref[both].std(ddof=1), rtol=1e-5)
        assert t["n_stations"].sel(layer=1).item() == 1


# ----------------------------------------------------------------------------- one cell identity (issue 14 item 2)


def _decimal_cell(value: float, origin: float, res: float, n: int) -> int:
    """Oracle: the half-open cell [origin + k res, origin + (k+1) res) holding ``value``, in exact
    decimal arithmetic (no floating point); -1 outside (the outer north/east edge is outside)."""
    from decimal import Decimal

    k = int(((Decimal(repr(value)) - Decimal(repr(origin))) / Decimal(repr(res))).to_integral_value("ROUND_FLOOR"))
    return k if 0 <= k < n else -1


def test_stations_on_cell_edges_follow_the_one_rule():
    """Stations on every inner edge (and the outer south/west edges) go to the cell to their
    north-east, as ``GridSpec.snap`` says; the targets carry those cells' centres."""
    ref = make_reference()
    g = GridSpec(5.0, 6.5, 45.0, 46.0)
    lats = np.round(45.0 + 0.1 * np.arange(10), 6)  # 45.0 (outer south edge) .. 45.9, every edge
    lons = np.round(5.0 + 0.1 * np.arange(15), 6)
    specs = [(f"s{i}_{j}", float(la), float(lo), 1) for i, la in enumerate(lats) for j, lo in enumerate(lons)]
    t, rep = scale_to(make_stations(specs, time=DAYS[:120]), ref, grid=g, min_overlap=30, report=True)
    rep = rep.set_index("station")
    for sid, la, lo, _ in specs:
        want_row = _decimal_cell(la, g.south, g.resolution, g.nlat)
        want_col = _decimal_cell(lo, g.west, g.resolution, g.nlon)
        assert (rep.loc[sid, "row"], rep.loc[sid, "col"]) == (want_row, want_col), sid
    snap_row, snap_col = g.snap([s[1] for s in specs], [s[2] for s in specs])
    np.testing.assert_array_equal(rep.loc[[s[0] for s in specs], "row"].to_numpy(), snap_row)
    np.testing.assert_array_equal(rep.loc[[s[0] for s in specs], "col"].to_numpy(), snap_col)
    from xsomo.targets.scaling import targets_grid

    assert targets_grid(t) == g
    # one station per cell: every cell of the grid holds exactly one target
    assert t.sizes["cell"] == g.nlat * g.nlon and (t["n_stations"].sel(layer=1) == 1).all()
    # the targets carry the centres of their cells (training reuses them, no re-matching)
    from decimal import Decimal

    for c in range(t.sizes["cell"]):
        row, col = int(t["row"][c]), int(t["col"][c])
        assert int(t["cell"][c]) == row * g.nlon + col
        assert float(t["lat"][c]) == float(Decimal("45.0") + Decimal("0.1") * row + Decimal("0.05"))
        assert float(t["lon"][c]) == float(Decimal("5.0") + Decimal("0.1") * col + Decimal("0.05"))
        ids = str(t["station_ids"].sel(layer=1)[c].values)
        la, lo = next((s[1], s[2]) for s in specs if s[0] == ids)
        assert (_decimal_cell(la, 45.0, 0.1, g.nlat), _decimal_cell(lo, 5.0, 0.1, g.nlon)) == (row, col)


@pytest.mark.parametrize(
    "lat, lon",
    [(46.0, 5.55), (45.55, 6.5), (46.0, 6.5), (46.0 - 1e-12, 5.55), (45.55, 6.5 - 1e-12)],
)
def test_station_on_the_outer_north_east_edge_is_outside(lat, lon):
    """The outer north and east edges belong to no cell of the grid (as in evaluation)."""
    ref = make_reference()
    g = GridSpec(5.0, 6.5, 45.0, 46.0)
    st = make_stations([*SPECS, ("edge", lat, lon, 1)])
    with pytest.raises(GridMismatchError, match="edge"):
        scale_to(st, ref, grid=g)
    _, rep = scale_to(st, ref, grid=g, outside="skip", report=True)
    row = rep.set_index("station").loc["edge"]
    assert row["reason"] == "outside the target grid" and (row["row"], row["col"]) != (g.nlat - 1, g.nlon - 1)
    assert g.snap(lat, lon)[0] == -1 or g.snap(lat, lon)[1] == -1


def test_a_reference_in_percent_or_on_another_grid_does_not_shift_the_targets():
    """A reference in percent made targets 100x too large (labelled m3 m-3) that trained; one on
    a 0.25° grid made 0.25° targets that training snapped onto 0.1° cells without their stations;
    float32 coordinates of the 0.1° grid were read as centres (every target half a cell off)."""
    from xsomo.exceptions import UnitError
    from xsomo.model.training import prepare_training_data

    ref, st = make_reference(), make_stations(SPECS)
    want = scale_to(st, ref)
    pct = ref.copy()
    pct["sm"] = (ref["sm"] * 100).assign_attrs(units="%")
    np.testing.assert_allclose(scale_to(st, pct)["sm"], want["sm"], rtol=1e-5, atol=1e-7)
    bare = ref.copy()
    bare["sm"] = (ref["sm"] * 100).assign_attrs({})
    with pytest.raises(UnitError, match="looks like percent"):
        scale_to(st, bare)
    f32 = ref.assign_coords(lat=ref.lat.values.astype("float32"), lon=ref.lon.values.astype("float32"))
    assert scale_to(st, f32).attrs["grid"] == want.attrs["grid"]
    # drivers on the 0.1° grid; targets scaled on a 0.25° reference are refused in training
    drv = xr.Dataset(
        {"precipitation": (("time", "lat", "lon"), np.ones((DAYS.size, 10, 15), "float32"), {"units": "mm d-1"})},
        coords={"time": DAYS, "lat": np.round(np.arange(45.05, 46.0, 0.1), 6), "lon": np.round(np.arange(5.05, 6.5, 0.1), 6)},
    )  # fmt: skip
    coarse = ref.interp(lat=np.arange(45.0, 46.01, 0.25), lon=np.arange(5.0, 6.51, 0.25))
    with pytest.raises(GridMismatchError, match=r"scaled on a grid of 0.25°"):
        prepare_training_data(drv, scale_to(st, coarse), layers=(1,), dynamic=("precipitation",), static=())
    data = prepare_training_data(drv, want, layers=(1,), dynamic=("precipitation",), static=())
    assert data.target.shape[0] == want.sizes["cell"]


def test_station_longitudes_in_0_360_meet_the_grid():
    """Stations in 0..360 (lon 365.5 for 5.5 E) were 'outside the target grid' against a
    -180..180 grid; evaluate already followed the grid's convention (QA)."""
    ref = make_reference()
    st = make_stations(SPECS)
    east = st.assign_coords(lon=st["lon"] + 360.0)
    xr.testing.assert_allclose(scale_to(east, ref)["sm"], scale_to(st, ref)["sm"])


def test_a_reference_across_0_degrees_in_0_360_is_one_block():
    """ERA5-Land cut from a global 0..360 download for a region across 0° (0..0.9 and
    359.0..359.9) implied a target grid of 3600 columns, and stations west of 0° were 'outside
    the target grid' (or dropped with outside='skip')."""
    ref = make_reference()
    shift = 5.5  # the grid now runs -0.5 .. 1.0
    ref_w = ref.assign_coords(lon=np.round(ref.lon - shift, 6))
    st = make_stations(SPECS)
    st_w = st.assign_coords(lon=st.lon - shift)
    wrapped = ref_w.assign_coords(lon=np.mod(ref_w.lon, 360.0)).sortby("lon")
    assert float(wrapped.lon.max()) > 359 and float(wrapped.lon.min()) == 0.0
    got = scale_to(st_w, wrapped)
    want = scale_to(st_w, ref_w)
    assert got.attrs["grid"] == want.attrs["grid"]
    np.testing.assert_array_equal(got["cell"].values, want["cell"].values)
    xr.testing.assert_allclose(got["sm"], want["sm"], atol=1e-5)
