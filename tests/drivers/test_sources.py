"""Issue 15 item 1: the sources file (``xsomo prepare --sources``, ``xsomo.prepare``, ``open_drivers``)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import xarray as xr
import yaml

import xsomo
from xsomo.cli import main
from xsomo.conventions import GridSpec
from xsomo.drivers.assemble import build_targets, open_drivers
from xsomo.drivers.sources import READERS, open_sources_drivers, prepare, sources_grid
from xsomo.exceptions import ConfigError, UnitError, XsomoError
from xsomo.io.sources import KINDS, read_sources, sources_for_world, write_sources


def _plain(ds: xr.Dataset) -> xr.Dataset:
    """Loaded (one thread: faster on a busy machine), without the provenance attributes."""
    import dask

    with dask.config.set(scheduler="synchronous"):
        out = ds.load().copy()
    out.attrs = {}
    return out


def _raw(world: pathlib.Path) -> dict:
    return yaml.safe_load((world / "sources.yml").read_text())


def _write(tmp_path: pathlib.Path, data: dict, name: str = "sources.yml") -> pathlib.Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_sample_world_writes_its_sources_file(tiny_world):
    data = _raw(tiny_world)
    man = json.loads((tiny_world / "world.json").read_text())
    assert data["grid"] == {k: float(man["grid"][k]) for k in ("west", "south", "east", "north", "resolution")}
    assert data["period"] == man["period"]
    # relative paths, resolved against the file's folder
    assert data["era5land"] == "era5land" and data["static"]["soil"]["path_or_glob"] == "static/soil.nc"
    src = read_sources(tiny_world / "sources.yml")
    assert src.era5land == str(tiny_world / "era5land")
    assert src.precipitation == {"source": "mswep", "path": str(tiny_world / "mswep")}


def test_relative_paths_start_at_the_sources_folder(tiny_world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the world: relative paths must not depend on the cwd
    src = read_sources(tiny_world / "sources.yml")
    assert src.static["dem"]["path"] == str(tiny_world / "static" / "dem.nc")
    assert src.ismn == str(tiny_world / "ismn")


def test_a_key_given_twice_is_refused_with_its_lines(tiny_world, tmp_path):
    """PyYAML keeps the last of two equal keys: a second precipitation line replaced MSWEP by
    ERA5-Land, and a second resolution built a 0.2° grid, without a word."""
    text = (tiny_world / "sources.yml").read_text()
    lines = text.splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith("precipitation:"))
    dup = tmp_path / "sources.yml"
    dup.write_text("\n".join([*lines[: k + 1], "precipitation: {source: era5land}", *lines[k + 1 :]]) + "\n")
    with pytest.raises(ConfigError, match=rf"the key 'precipitation' is given twice \(lines {k + 1} and {k + 2}\)"):
        read_sources(dup)
    dup.write_text(text.replace("resolution: 0.1", "resolution: 0.1, resolution: 0.2", 1))
    with pytest.raises(ConfigError, match="the key 'resolution' is given twice"):
        read_sources(dup)
    # YAML merge keys (<<: *anchor) and a key overriding a merged one stay legal
    merged = tmp_path / "merged.yml"
    merged.write_text("defaults: &d {resolution: 0.5}\n" + text.replace("resolution: 0.1", "<<: *d, resolution: 0.1", 1))
    with pytest.raises(ConfigError, match="defaults"):  # (the unknown top-level key is named, not a YAML error)
        read_sources(merged)


def test_write_read_round_trip(tiny_world, tmp_path):
    src = read_sources(tiny_world / "sources.yml")
    out = write_sources(src, tmp_path / "copy.yml")  # outside the world: absolute paths
    again = read_sources(out)
    assert again == src and again.file == out


def test_sources_file_gives_the_drivers_of_world(tiny_world):
    """``--sources world/sources.yml`` and ``--world world`` give identical drivers."""
    by_sources = open_drivers(tiny_world / "sources.yml")
    by_world = open_drivers(tiny_world)
    xr.testing.assert_identical(_plain(by_sources), _plain(by_world))
    assert "sources.yml" in by_sources.attrs["source"]


def test_sources_file_gives_the_targets_of_world(tiny_world):
    """... and identical targets and reports (``xsomo.prepare``)."""
    prepared = xsomo.prepare(tiny_world / "sources.yml")
    targets, qc, rep = build_targets(tiny_world)
    xr.testing.assert_identical(_plain(prepared.targets), _plain(targets))
    assert prepared.qc_report.equals(qc) and prepared.scaling_report.equals(rep)


@pytest.mark.slow
def test_prepare_cli_sources_equals_world(tiny_world, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["prepare", "--sources", str(tiny_world / "sources.yml"), "--out", str(a)]) == 0
    assert main(["prepare", "--world", str(tiny_world), "--out", str(b)]) == 0
    for name in ("drivers.nc", "targets.nc"):
        with xr.open_dataset(a / name) as x, xr.open_dataset(b / name) as y:
            xr.testing.assert_identical(_plain(x), _plain(y))
    for name in ("ismn_qc_report.csv", "scaling_report.csv"):
        assert (a / name).read_text() == (b / name).read_text()


@pytest.mark.parametrize(
    "edit, needles",
    [
        (lambda d: d.update(precip=d.pop("precipitation")), ["precip", "did you mean 'precipitation'"]),
        (lambda d: d["static"]["soil"].update(unit=d["static"]["soil"].pop("units")), ["static.soil", "unit"]),
        (lambda d: d["grid"].update(resolutoin=0.1), ["grid", "resolutoin", "resolution"]),
        (lambda d: d.pop("era5land"), ["era5land", "missing"]),
        (lambda d: d["static"].update(dem="nothere/dem.nc"), ["static.dem", "nothere/dem.nc", "matches no file"]),
        (lambda d: d.update(era5land="era5/*.grib"), ["era5land", "era5/*.grib"]),
        (lambda d: d.update(ismn="ISMN_2024.zip"), ["ismn", "ISMN_2024.zip"]),
        (lambda d: d["precipitation"].update(source="gpcc"), ["precipitation.source", "gpcc", "mswep"]),
        (lambda d: d["static"]["landcover"].update(kind="modis"), ["static.landcover.kind", "modis", "esa_cci"]),
        (lambda d: d["static"]["soil"].update(units="ppm"), ["static.soil.units", "ppm", "g/kg"]),
        (lambda d: d["period"].update(end="2016-02-30"), ["period.end", "2016-02-30"]),
        (lambda d: d["period"].update(start="2018-01-01"), ["period", "after"]),
        (lambda d: d["grid"].update(east=1.05), ["grid", "whole number of cells"]),
        (lambda d: d.pop("grid"), ["grid", "region"]),
    ],
)
def test_bad_sources_files_are_named(tiny_world, tmp_path, edit, needles):
    data = _raw(tiny_world)
    edit(data)
    path = _write(tiny_world_copy(tiny_world, tmp_path), data)
    with pytest.raises(ConfigError) as info:
        read_sources(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def tiny_world_copy(world: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    """A folder whose entries link to the world's, so relative paths in a sources file resolve."""
    d = tmp_path / "w"
    if not d.exists():
        d.mkdir()
        for p in world.iterdir():
            if p.name != "sources.yml":
                (d / p.name).symlink_to(p)
    return d


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "s.yml"
    bad.write_text("grid: [unclosed\n")
    with pytest.raises(ConfigError, match="not a valid YAML"):
        read_sources(bad)
    with pytest.raises(ConfigError, match="not found"):
        read_sources(tmp_path / "none.yml")


def test_kind_without_a_reader_is_not_supported_yet(tiny_world, tmp_path):
    data = _raw(tiny_world)
    data["static"]["landcover"]["kind"] = "esa_cci"
    path = _write(tiny_world_copy(tiny_world, tmp_path), data)
    src = read_sources(path)  # a kind of the format: the file itself is valid
    # every kind of the format has a reader now; one taken out stands for a future kind
    with pytest.MonkeyPatch.context() as mp:
        mp.delitem(READERS, ("landcover", "esa_cci"))
        with pytest.raises(ConfigError, match="not supported yet"):
            open_sources_drivers(src)


def test_real_layout_statics_through_the_sources_file(tmp_path):
    """Issue 15 items 1-3: a world's statics written in the real layouts (DEM GeoTIFF tiles, ESA CCI
    classes, SoilGrids rasters in g/kg) and named in a sources file give the drivers of its
    netCDF statics: the same elevation features and vegetation fractions, soil within SoilGrids'
    integer g/kg rounding."""
    world = xsomo.sample.generate(
        "tiny", seed=3, out=tmp_path / "w", real_statics=True,
        start="2016-01-01", end="2016-12-31", hourly_start="2016-07-01", hourly_end="2016-07-02",
    )  # fmt: skip
    data = _raw(world)
    data["static"]["dem"] = "static_real/dem/*.tif"
    data["static"]["landcover"] = {"path": "static_real/landcover_esa_cci.tif", "kind": "esa_cci"}
    data["static"]["soil"] = {"path_or_glob": "static_real/soilgrids/*.tif", "units": "g/kg"}
    real = _plain(open_drivers(_write(world, data, "real.yml")))
    ref = _plain(open_drivers(world))
    for name in ("elevation_mean", "elevation_std", "forest_fraction", "shortveg_fraction"):
        np.testing.assert_allclose(real[name].values, ref[name].values, rtol=1e-5, atol=1e-5, err_msg=name)
    for name in ("sand_top", "clay_top", "sand_sub", "clay_sub"):
        np.testing.assert_allclose(real[name].values, ref[name].values, atol=6e-4, err_msg=name)
    for name in ("precipitation", "air_temperature", "net_radiation", "skin_temperature"):
        xr.testing.assert_identical(real[name], ref[name])
    # the folders themselves (read as netCDF before: "no netCDF file found at '.../dem'"; QA)
    data["static"]["dem"] = "static_real/dem"
    data["static"]["soil"] = {"path_or_glob": "static_real/soilgrids", "units": "g/kg"}
    folders = _plain(open_drivers(_write(world, data, "folders.yml")))
    for name in ("elevation_mean", "elevation_std", "sand_top", "clay_sub"):
        xr.testing.assert_identical(folders[name], real[name])


def test_a_source_shifted_in_longitude_only_is_regridded():
    """A 0.1-degree source offset by half a cell in longitude only took the path for aligned
    grids and was refused as not covering the grid (QA)."""
    from xsomo.drivers.assemble import on_grid

    lat = np.round(np.arange(39.55, 42.5, 0.1), 2)
    lon = np.round(np.arange(-0.5, 1.5, 0.1), 2)  # centres on x.x0: edges half a cell off the grid's
    field = xr.DataArray(np.tile(lon, (lat.size, 1)), dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    out = on_grid(field, GridSpec(0.0, 1.0, 40.0, 42.0), method="conservative", what="x")
    np.testing.assert_allclose(out.values, np.tile(out["lon"].values, (20, 1)), atol=1e-6)


def test_readers_table_only_holds_kinds_of_the_format():
    """One table: every reader is for a kind the sources format knows; register_reader checks it."""
    from xsomo.drivers.sources import register_reader
    from xsomo.io.sources import LAYOUTS

    assert all(kind in (LAYOUTS if i in ("dem", "soil") else KINDS.get(i, (kind,))) for i, kind in READERS)
    with pytest.raises(XsomoError, match="modis"):
        register_reader("landcover", "modis", lambda path, src, chunks: None)


def test_declared_soil_units_must_match_the_file(tiny_world, tmp_path):
    data = _raw(tiny_world)
    data["static"]["soil"]["units"] = "g/kg"  # the file says percent: never relabel silently
    path = _write(tiny_world_copy(tiny_world, tmp_path), data)
    with pytest.raises(UnitError, match=r"percent.*g/kg"):
        open_drivers(path)


def test_every_soil_file_is_checked_against_the_declared_units(tiny_world, tmp_path):
    """Only the first soil file was checked and units: relabelled the others: clay labelled '1'
    in a second file was read as percent, 100x too small (QA). Each file is checked, and a
    label is never replaced."""
    world = tiny_world_copy(tiny_world, tmp_path)
    soil = tmp_path / "soil"
    soil.mkdir()
    with xr.open_dataset(tiny_world / "static" / "soil.nc") as ds:
        ds = ds.load()
    assert ds["clay_top"].attrs["units"] == "percent"
    ds[["sand_top", "sand_sub"]].to_netcdf(soil / "a_sand.nc")
    clay = ds[["clay_top", "clay_sub"]] / 100
    for v in clay.data_vars:
        clay[v].attrs["units"] = "1"
    clay.to_netcdf(soil / "b_clay.nc")
    data = _raw(tiny_world)
    data["static"]["soil"] = {"path_or_glob": str(soil), "units": "percent"}
    with pytest.raises(UnitError, match=r"b_clay.nc: 'clay_top' is labelled '1' but the sources file says units: percent"):
        open_drivers(_write(world, data))
    # the reader itself never relabels either (units= is only for variables without a label)
    from xsomo.io.gridded import open_gridded

    with pytest.raises(UnitError, match=r"b_clay.nc: 'clay_top' is labelled '1' but units 'percent' were given"):
        open_gridded(soil, {"clay_top": "1"}, units={"clay_top": "percent"})
    for v in clay.data_vars:
        del clay[v].attrs["units"]
    clay.to_netcdf(soil / "b_clay.nc")
    got = open_gridded(soil / "b_clay.nc", {"clay_top": "1"}, units={"clay_top": "1"})["clay_top"]
    np.testing.assert_allclose(float(got.mean()), float(ds["clay_top"].mean()) / 100, rtol=1e-5)


def test_a_geotiff_dem_declared_netcdf_gets_the_kind_to_set(tiny_world, tmp_path):
    """A DEM GeoTIFF declared kind: netcdf was told about land-cover kinds (QA)."""
    import rasterio
    from rasterio.transform import from_origin

    world = tiny_world_copy(tiny_world, tmp_path)
    with rasterio.open(
        tmp_path / "dem.tif", "w", driver="GTiff", height=4, width=4, count=1, dtype="float32",
        crs="EPSG:4326", transform=from_origin(0.0, 45.0, 0.01, 0.01),
    ) as dst:  # fmt: skip
        dst.write(np.full((4, 4), 500.0, "float32"), 1)
    data = _raw(tiny_world)
    data["static"]["dem"] = {"path": str(tmp_path / "dem.tif"), "kind": "netcdf"}
    with pytest.raises(ConfigError, match=r"static.dem has kind netcdf but .*dem.tif is a GeoTIFF; set its kind: geotiff"):
        open_drivers(_write(world, data))
    (tmp_path / "dem.tif").rename(tmp_path / "dem.nc")  # the name does not hide it
    data["static"]["dem"] = {"path": str(tmp_path / "dem.nc"), "kind": "netcdf"}
    with pytest.raises(ConfigError, match=r"dem.nc is a GeoTIFF; set its kind: geotiff"):
        open_drivers(_write(world, data))


def test_prepare_cli_with_a_bad_sources_file(tiny_world, tmp_path, capsys):
    data = _raw(tiny_world)
    data["static"]["landcover"]["kind"] = "modis"
    path = _write(tiny_world_copy(tiny_world, tmp_path), data)
    out = tmp_path / "prep"
    assert main(["prepare", "--sources", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "xsomo prepare: error:" in err and "modis" in err and "Traceback" not in err
    assert not out.exists()


def test_region_polygon_masks_the_land(tiny_world, tmp_path):
    """``region`` as a polygon file: the grid is its box snapped outwards, land outside it is off."""
    gpd = pytest.importorskip("geopandas")
    shapely = pytest.importorskip("shapely")
    poly = tmp_path / "box.geojson"
    gpd.GeoDataFrame({"NAME": ["box"]}, geometry=[shapely.box(0.23, 40.31, 0.77, 41.62)], crs=4326).to_file(poly)
    data = _raw(tiny_world)
    data.pop("grid")
    data["region"] = str(poly)
    path = _write(tiny_world_copy(tiny_world, tmp_path), data)
    src = read_sources(path)
    grid, mask = sources_grid(src)
    assert grid == GridSpec(0.2, 0.8, 40.3, 41.7)  # outward to whole tenths
    # cell centres inside the box (independent of regionmask)
    inside = ((grid.lat[:, None] > 40.31) & (grid.lat[:, None] < 41.62)) & (
        (grid.lon[None, :] > 0.23) & (grid.lon[None, :] < 0.77)
    )
    np.testing.assert_array_equal(mask.values, inside)
    drivers = open_sources_drivers(src).load()
    world = open_drivers(tiny_world).load().sel(lat=drivers.lat, lon=drivers.lon)
    np.testing.assert_array_equal(drivers["land_mask"].values, world["land_mask"].values & inside)
    xr.testing.assert_identical(drivers["precipitation"].reset_coords(drop=True),
                                world["precipitation"].reset_coords(drop=True))


def test_region_unknown_country(tiny_world, tmp_path):
    pytest.importorskip("regionmask")
    data = _raw(tiny_world)
    data["region"] = ["Atlantis"]
    path = _write(tiny_world_copy(tiny_world, tmp_path), data)
    with pytest.raises(XsomoError, match="Atlantis"):
        sources_grid(read_sources(path))


def test_prepare_writes_when_out_is_given(tiny_world, tmp_path):
    res = prepare(tiny_world / "sources.yml", tmp_path / "p")
    assert sorted(res.paths) == ["drivers.nc", "ismn_qc_report.csv", "scaling_report.csv", "targets.nc"]
    with xr.open_dataset(res.paths["targets.nc"]) as t:
        xr.testing.assert_identical(_plain(t), _plain(res.targets))


def test_world_shorthand_unchanged(tiny_world):
    """``sources_for_world`` is what the sample writes."""
    man = json.loads((tiny_world / "world.json").read_text())
    assert read_sources(tiny_world / "sources.yml") == sources_for_world(tiny_world, man)


def test_precipitation_and_temperature_from_era5land(tiny_world, tmp_path):
    """``source: era5land`` reads tp/t2m from the ERA5-Land files and regrids them like the rest."""
    from xsomo.io import open_era5land
    from xsomo.regrid import regrid

    data = _raw(tiny_world)
    data["precipitation"] = {"source": "era5land"}
    data["air_temperature"] = {"source": "era5land"}
    path = _write(tiny_world_copy(tiny_world, tmp_path), data)
    got = open_drivers(path)
    era = open_era5land(tiny_world / "era5land", layers=())
    grid = GridSpec(0.0, 1.0, 40.0, 42.0)
    want_p = regrid(era["precipitation"], grid, method="conservative")
    want_t = regrid(era["air_temperature"], grid, method="bilinear")
    np.testing.assert_allclose(got["precipitation"].values, want_p.values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["air_temperature"].values, want_t.values, rtol=1e-6)


def test_an_incomplete_soilgrids_set_is_named(tiny_world, tmp_path):
    """SoilGrids GeoTIFFs go to the SoilGrids reader; depth intervals that leave the top layer
    uncovered are refused, naming the gap and the files to add."""
    world = tiny_world_copy(tiny_world, tmp_path)
    (tmp_path / "sand_0-5cm_mean.tif").write_bytes(b"II*\x00")
    data = _raw(tiny_world)
    data["static"]["soil"] = {"path_or_glob": str(tmp_path / "sand_*_mean.tif"), "units": "g/kg"}
    path = _write(world, data)
    assert ("soil", "geotiff") in READERS
    with pytest.raises(XsomoError, match=r"sand: the intervals \(0-5 cm\) do not cover 0-30 cm"):
        open_drivers(path)


def test_period_cuts_the_drivers(tiny_world, tmp_path):
    """Unquoted YAML dates are days; the drivers are the world's cut to the period."""
    text = (tiny_world / "sources.yml").read_text()
    lines = [
        "period: {start: 2015-03-01, end: 2016-02-29}" if line.startswith("period:") else line
        for line in text.splitlines()
    ]
    path = tiny_world_copy(tiny_world, tmp_path) / "sources.yml"
    path.write_text("\n".join(lines) + "\n")
    assert read_sources(path).period == ("2015-03-01", "2016-02-29")
    got = open_drivers(path)
    want = open_drivers(tiny_world, period=("2015-03-01", "2016-02-29"))
    assert got.sizes["time"] == 366
    xr.testing.assert_identical(_plain(got), _plain(want))


def test_globs_anywhere_in_the_path(tiny_world, tmp_path):
    """Globs in folder names and ``**`` reach the readers as the files they match."""
    data = _raw(tiny_world)
    data["era5land"] = "era5*/era5land_20*.nc"
    data["precipitation"]["path"] = "msw?p/*.nc"
    data["air_temperature"]["path"] = "mswx/**/*.nc"
    path = _write(tiny_world_copy(tiny_world, tmp_path), data)
    xr.testing.assert_identical(_plain(open_drivers(path)), _plain(open_drivers(tiny_world)))


def test_a_file_of_the_wrong_product_is_named(tiny_world, tmp_path):
    """landcover pointing at the soil file: the missing variables and the file are named."""
    from xsomo.exceptions import MissingVariableError

    data = _raw(tiny_world)
    data["static"]["landcover"]["path"] = "static/soil.nc"
    path = _write(tiny_world_copy(tiny_world, tmp_path), data)
    with pytest.raises(MissingVariableError, match=r"soil\.nc.*forest_fraction"):
        open_drivers(path)


def test_land_mask_from_era5land_lsm(tiny_world, tmp_path):
    """Without static.land_mask the land is where ERA5-Land's lsm, upscaled to the cells, exceeds 0.5."""
    from xsomo.io import open_era5land
    from xsomo.regrid import regrid

    data = _raw(tiny_world)
    data["static"].pop("land_mask")
    path = _write(tiny_world_copy(tiny_world, tmp_path), data)
    got = open_drivers(path)["land_mask"].values
    lsm = open_era5land(tiny_world / "era5land", layers=())["land_fraction"]
    want = regrid(lsm, GridSpec(0.0, 1.0, 40.0, 42.0), method="conservative").values > 0.5
    np.testing.assert_array_equal(got, want)
    assert 0 < got.sum() < got.size


def test_region_keeps_the_targets_inside(tiny_world, tmp_path):
    """With ``region`` (and the world's grid) the targets are the world's in the region's cells."""
    gpd = pytest.importorskip("geopandas")
    shapely = pytest.importorskip("shapely")
    from xsomo.drivers.sources import sources_targets

    poly = tmp_path / "half.geojson"
    gpd.GeoDataFrame({"NAME": ["north"]}, geometry=[shapely.box(-1, 41.0, 2, 43)], crs=4326).to_file(poly)
    data = _raw(tiny_world)
    data["region"] = str(poly)
    path = _write(tiny_world_copy(tiny_world, tmp_path), data)
    targets, _, rep = sources_targets(path)
    world, _, _ = build_targets(tiny_world)
    inside = world["lat"].values > 41.0  # cell centres north of 41 N
    assert 0 < inside.sum() < inside.size, "the test needs target cells on both sides"
    want = world.isel(cell=np.flatnonzero(inside))
    xr.testing.assert_identical(_plain(targets), _plain(want))
    south = rep[rep["lat"] < 41.0]
    assert (~south["kept"]).all() and (south["reason"] != "").all()
    assert (south["reason"] == "outside the region").any()


def test_a_sources_file_declares_the_units_of_precipitation_files(tiny_world, tmp_path):
    """QA: files of daily values labelled as a rate per month are refused unless the unit is
    declared, and the message's way out (``units=``) was open in Python only: a sources file had
    no key for it. ``precipitation: {..., units: mm/month}`` now reads them as labelled."""
    d = tiny_world_copy(tiny_world, tmp_path)
    (d / "mswep").unlink()
    (d / "mswep").mkdir()
    for f in sorted((tiny_world / "mswep").glob("*.nc")):
        with xr.open_dataset(f) as ds:
            monthly = ds.load()
        monthly["precipitation"] = monthly["precipitation"] * np.float32(365.25 / 12)  # the same rain, per month
        monthly["precipitation"].attrs = {**ds["precipitation"].attrs, "units": "mm/month"}
        monthly.to_netcdf(d / "mswep" / f.name)
    data = _raw(tiny_world)
    with pytest.raises(UnitError, match=r"'mm/month'.*in a sources file: units: mm/month under precipitation"):
        open_drivers(_write(d, data))
    data["precipitation"]["units"] = "mm/month"
    path = _write(d, data)
    assert read_sources(path).precipitation["units"] == "mm/month"
    got = open_drivers(path)["precipitation"].values
    want = open_drivers(tiny_world / "sources.yml")["precipitation"].values
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)
    # written back with the key; refused for ERA5-Land, which carries its own units
    write_sources(read_sources(path), tmp_path / "again.yml")
    assert yaml.safe_load((tmp_path / "again.yml").read_text())["precipitation"]["units"] == "mm/month"
    data["precipitation"] = {"source": "era5land", "units": "mm d-1"}
    with pytest.raises(ConfigError, match=r"precipitation\.units.*ERA5-Land files carry their own units"):
        read_sources(_write(d, data))
