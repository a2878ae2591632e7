"""Small SoMo.ml-EU files (and, where xsomo is importable, its COGs and GeoPackage) for the QGIS tests.

Runs under the project's venv (then the SoMo.ml-EU files are written by xsomo's own writer,
``xsomo.prediction.output.to_files``, and the COGs and the station GeoPackage come from
xsomo too) or under Debian's system python (numpy + python3-netcdf4: stand-in files written
with netCDF4, the GeoPackage with OGR; the xsomo-COG tests skip). The SoMo.ml v1 files (lat
ascending, per-layer folders) are stand-ins of the published files in both cases. Values are
the known function :func:`value`.

    python make_test_data.py OUTDIR
"""

import datetime as dt
import json
import os
import sys

import numpy as np

WEST, EAST, SOUTH, NORTH, RES = 10.0, 11.6, 50.0, 51.2, 0.1
YEARS = (2010, 2011, 2012)
NDAYS = 40  # 1 January ... 9 February of each year
#: whole years around the leap day 2016-02-29, for the anomaly of 2015-12-01 ... 2016-02-29
LEAP_YEARS = tuple(range(2013, 2019))
LEAP_PERIOD = ("2015-12-01", "2016-02-29")
EUROPE_DAY = dt.date(2018, 7, 15)
WKT_4326 = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
    'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],'
    'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],'
    'AUTHORITY["EPSG","4326"]]'
)
#: station points: (id, lon, lat); the last one lies on the 'sea' (NaN), one outside the grid
STATIONS = [
    ("S1", 10.05, 51.15),
    ("S2", 10.73, 50.42),
    ("S3", 11.21, 50.98),
    ("S4", 11.45, 51.1),
    ("S5", 12.5, 50.5),
]


#: grids across 0 deg (-10..10) and across 180 deg in 0..360 (170..190) for polygons drawn in the other
#: longitude convention: folder -> (west, east, south, north)
WRAP_GRIDS = {"somo_zero": (-10.0, 10.0, 50.0, 50.5), "somo_360": (170.0, 190.0, 50.0, 50.5)}
WRAP_DAYS = 5
#: polygons (EPSG:4326 WKT) over the WRAP_GRIDS: the same cells drawn in both conventions (and split at 180)
WRAP_ZONES = {
    "somo_zero": {
        "-5..5": "POLYGON ((-5.03 50.12, 5.03 50.12, 5.03 50.38, -5.03 50.38, -5.03 50.12))",
        "355..365": "POLYGON ((354.97 50.12, 365.03 50.12, 365.03 50.38, 354.97 50.38, 354.97 50.12))",
        "361..365": "POLYGON ((361.03 50.12, 364.97 50.12, 364.97 50.38, 361.03 50.38, 361.03 50.12))",
        "1..5": "POLYGON ((1.03 50.12, 4.97 50.12, 4.97 50.38, 1.03 50.38, 1.03 50.12))",
    },
    "somo_360": {
        "175..185": "POLYGON ((175.03 50.12, 184.97 50.12, 184.97 50.38, 175.03 50.38, 175.03 50.12))",
        "175..-175, split at 180": (
            "MULTIPOLYGON (((175.03 50.12, 180 50.12, 180 50.38, 175.03 50.38, 175.03 50.12)),"
            "((-180 50.12, -175.03 50.12, -175.03 50.38, -180 50.38, -180 50.12)))"
        ),
        "-179..-172": "POLYGON ((-178.97 50.12, -172.03 50.12, -172.03 50.38, -178.97 50.38, -178.97 50.12))",
        "181..188": "POLYGON ((181.03 50.12, 187.97 50.12, 187.97 50.38, 181.03 50.38, 181.03 50.12))",
    },
}


def grid(west=WEST, east=EAST, south=SOUTH, north=NORTH):
    """Cell-centre lat (descending, as in the files) and lon."""
    nlat, nlon = round((north - south) / RES), round((east - west) / RES)
    lat = np.round(north - RES * (np.arange(nlat) + 0.5), 6)
    lon = np.round(west + RES * (np.arange(nlon) + 0.5), 6)
    return lat, lon


def value(layer, day, lat, lon):
    """Soil moisture at (layer, day, lat, lon) in every test file (broadcasts); NaN on the 'sea'."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    doy = day.timetuple().tm_yday
    v = (
        0.1
        + 0.02 * layer
        + 0.002 * doy
        + 0.01 * (lat - 50.0)
        + 0.004 * (lon - 10.0)
        + 0.01 * (day.year - 2010) ** 2 * (lon - 10.0)
        + 0.003 * (day.year - 2010)
    )
    sea = (lat > 51.0) & (lon > 11.3)
    return np.where(sea, np.nan, v).astype(np.float32)


def leap_value(day, lat, lon):
    """The values of the leap-day files: physical (0.1-0.4 m3 m-3) over 2013-2018, a seasonal cycle
    and a year-to-year change that differs between cells (so z-scores differ between cells)."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    doy = day.timetuple().tm_yday
    wet = ((day.year * 7) % 5) / 4.0  # 0 ... 1, not monotonic in the year
    v = (
        0.22
        + 0.08 * np.sin(2 * np.pi * doy / 366.0)
        + 0.03 * wet * (lon - 10.0)
        + 0.02 * (lat - 50.0)
        + 0.0005 * doy * (lat - 50.0)
    )
    sea = (lat > 51.0) & (lon > 11.3)
    return np.where(sea, np.nan, v).astype(np.float32)


def days(year, ndays=NDAYS):
    return [dt.date(year, 1, 1) + dt.timedelta(days=i) for i in range(ndays)]


def year_days(year):
    return days(year, (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days)


def write_somo_xsomo(folder, layer, year, day_list, fn=None):
    """One layer-year file written by xsomo itself (``to_files``) with the values of :func:`value`
    (or ``fn(day, lat, lon)``)."""
    import pandas as pd
    import xarray as xr

    from xsomo import conventions as cv
    from xsomo.prediction.output import to_files

    g = cv.GridSpec(west=WEST, east=EAST, south=SOUTH, north=NORTH, resolution=RES)
    fn = fn or (lambda d, la, lo: value(layer, d, la, lo))
    vals = np.stack([fn(d, g.lat[:, None], g.lon[None, :]) for d in day_list])
    sm = xr.DataArray(
        vals[None],
        dims=("layer", "time", "lat", "lon"),
        coords={"time": pd.DatetimeIndex(day_list), **g.coords(), **cv.layer_coords([layer])},
    )
    return to_files(sm.to_dataset(name="sm"), folder, progress=False)


#: int16 packing of the packed stand-ins (as other producers write netCDF): value = raw * scale + offset
PACKING = (1e-4, 0.05, -32768)


def write_somo(
    folder, layer, year, *, name=None, ascending=False, bounds=None, ndays=NDAYS, coord_dtype="f8",
    packed=False, grid_mapping=True,
):
    """One layer-year file; ``name``: another file name, ``ascending``: lat south to north,
    ``bounds``: (west, east, south, north) of another grid, ``ndays``: its first days,
    ``coord_dtype``: of lat/lon ("f4": float32 coordinates, as many published files), ``packed``: int16
    with scale_factor/add_offset and a _FillValue (:data:`PACKING`), ``grid_mapping``: False for a file
    without one (older v1 files)."""
    import netCDF4

    lat, lon = grid(*bounds) if bounds else grid()
    if ascending:
        lat = lat[::-1]
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name or f"SoMo.ml-EU_layer{layer}_{year}.nc")
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.Conventions = "CF-1.8"
        nc.createDimension("time", None)
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        t = nc.createVariable("time", "i8", ("time",))
        t.units = f"days since {year}-01-01"
        t.calendar = "proleptic_gregorian"
        t.standard_name = "time"
        t[:] = np.arange(ndays)
        for name, vals, attrs in (
            ("lat", lat, ("latitude", "degrees_north", "Y")),
            ("lon", lon, ("longitude", "degrees_east", "X")),
        ):
            v = nc.createVariable(name, coord_dtype, (name,))
            v.standard_name, v.units, v.axis = attrs
            v[:] = vals
        if grid_mapping:
            crs = nc.createVariable("spatial_ref", "i4")
            crs.crs_wkt = WKT_4326
            crs.spatial_ref = WKT_4326
            crs.grid_mapping_name = "latitude_longitude"
            crs.semi_major_axis = 6378137.0
            crs.inverse_flattening = 298.257223563
        vals = np.stack([value(layer, d, lat[:, None], lon[None, :]) for d in days(year, ndays)])
        if packed:
            scale, offset, fill = PACKING
            v = nc.createVariable(f"layer{layer}", "i2", ("time", "lat", "lon"), zlib=True, fill_value=np.int16(fill))
            v.set_auto_maskandscale(False)
            v.scale_factor = np.float32(scale)
            v.add_offset = np.float32(offset)
            raw = np.round((vals.astype(np.float64) - offset) / scale)
            vals = np.where(np.isfinite(raw), raw, fill).astype(np.int16)
        else:
            v = nc.createVariable(
                f"layer{layer}", "f4", ("time", "lat", "lon"), zlib=True, fill_value=np.float32(np.nan)
            )
        v.units = "m3 m-3"
        v.standard_name = "volume_fraction_of_condensed_water_in_soil"
        if grid_mapping:
            v.grid_mapping = "spatial_ref"
        v[:] = vals
    return path


def write_gpkg_ogr(path):
    from osgeo import ogr, osr

    drv = ogr.GetDriverByName("GPKG")
    ds = drv.CreateDataSource(path, options=["VERSION=1.3"])
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lyr = ds.CreateLayer("station_metrics", srs, ogr.wkbPoint)
    lyr.CreateField(ogr.FieldDefn("station", ogr.OFTString))
    lyr.CreateField(ogr.FieldDefn("pearson_r", ogr.OFTReal))
    for i, (sid, x, y) in enumerate(STATIONS):
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetField("station", sid)
        f.SetField("pearson_r", 0.5 + 0.1 * i)
        f.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({x!r} {y!r})"))
        lyr.CreateFeature(f)
    ds = None


def xsomo_wrap_series(folder, key):
    """``{name: (n_cells, [sm of each day])}`` of :data:`WRAP_ZONES` over the files in ``folder``, by
    ``xsomo.gis.zonal.polygon_series`` (xsomo's masks, which bring polygons to the grid's longitudes)."""
    import geopandas as gpd
    import shapely

    import xsomo
    from xsomo.gis.zonal import polygon_series

    zones = WRAP_ZONES[key]
    gdf = gpd.GeoDataFrame(
        {"NAME": list(zones)}, geometry=[shapely.from_wkt(w) for w in zones.values()], crs="EPSG:4326"
    )
    s = polygon_series(xsomo.open_somo(folder), gdf, layer=1).load()
    return {
        str(name): (int(s.n_cells.sel(region=name)), [float(v) for v in s.sel(region=name).values.ravel()])
        for name in zones
    }


def _have_xsomo():
    try:
        import xarray  # noqa: F401

        import xsomo  # noqa: F401
        from xsomo.prediction.output import to_files  # noqa: F401
    except ImportError:
        return False
    return True


def main(out):
    somo = os.path.join(out, "somo")
    leap = os.path.join(out, "somo_leap")
    os.makedirs(somo, exist_ok=True)
    with_xsomo = _have_xsomo()
    if with_xsomo:
        for year in YEARS:
            write_somo_xsomo(somo, 1, year, days(year))
        write_somo_xsomo(somo, 2, 2010, days(2010))
        for year in LEAP_YEARS:
            write_somo_xsomo(leap, 1, year, year_days(year), fn=leap_value)
    else:
        for year in YEARS:
            write_somo(somo, 1, year)
        write_somo(somo, 2, 2010)
    # SoMo.ml v1 names in per-layer folders, lat ascending (a stand-in of the published files)
    v1 = os.path.join(out, "somo_v1", "SoMo.ml_v1_layer3")
    write_somo(v1, 3, 2011, name="SoMo.ml_v1_layer3_2011.nc", ascending=True)
    # a file with a SoMo name that is not netCDF, alone in its folder
    bad = os.path.join(out, "not_somo")
    os.makedirs(bad, exist_ok=True)
    with open(os.path.join(bad, "SoMo.ml-EU_layer1_2010.nc"), "w") as f:
        f.write("this is text, not netCDF\n")
    # layer 1 again, its 2011 file on a grid shifted 0.5 deg east (files of two grids in one folder)
    import shutil

    import netCDF4

    mixed = os.path.join(out, "somo_mixed")
    os.makedirs(mixed, exist_ok=True)
    for year in YEARS:
        shutil.copy(os.path.join(somo, f"SoMo.ml-EU_layer1_{year}.nc"), mixed)
    with netCDF4.Dataset(os.path.join(mixed, f"SoMo.ml-EU_layer1_{YEARS[1]}.nc"), "a") as nc:
        nc["lon"][:] = nc["lon"][:] + 0.5
    made = {"somo": somo, "xsomo": with_xsomo, "leap": leap if with_xsomo else None, "mixed": mixed}
    # files as other producers write them: float32 lat/lon, int16 packed with a _FillValue, no grid mapping
    for year in YEARS:
        write_somo(os.path.join(out, "somo_f32"), 1, year, coord_dtype="f4")
        write_somo(os.path.join(out, "somo_packed"), 1, year, packed=True)
        write_somo(os.path.join(out, "somo_nogm"), 1, year, coord_dtype="f4", grid_mapping=False)
    # a folder without the middle year's file, and one mixing SoMo.ml-EU and SoMo.ml v1 files
    for folder, names in (
        ("somo_gap", {y: f"SoMo.ml-EU_layer1_{y}.nc" for y in (YEARS[0], YEARS[2])}),
        ("somo_products", {YEARS[0]: f"SoMo.ml-EU_layer1_{YEARS[0]}.nc", YEARS[1]: f"SoMo.ml_v1_layer1_{YEARS[1]}.nc"}),
    ):
        os.makedirs(os.path.join(out, folder), exist_ok=True)
        for year, name in names.items():
            shutil.copy(os.path.join(somo, f"SoMo.ml-EU_layer1_{year}.nc"), os.path.join(out, folder, name))
    # grids across 0 deg and (in 0..360) across 180 deg; with xsomo, its own zonal cells and means of WRAP_ZONES
    for folder, bounds in WRAP_GRIDS.items():
        write_somo(os.path.join(out, folder), 1, YEARS[0], bounds=bounds, ndays=WRAP_DAYS)
    # the grid across 0 deg with its longitudes in 0..360, stored ascending (0.05..9.95, 350.05..359.95), as
    # a region cut from a global 0..360 file: GDAL's geotransform for it spans 0..360 with 1.8-degree pixels
    split = os.path.join(out, "somo_split")
    os.makedirs(split, exist_ok=True)
    name = f"SoMo.ml-EU_layer1_{YEARS[0]}.nc"
    shutil.copy(os.path.join(out, "somo_zero", name), split)
    with netCDF4.Dataset(os.path.join(split, name), "a") as nc:
        lon = np.asarray(nc["lon"][:], dtype=float)
        order = np.argsort(np.round(lon % 360.0, 6), kind="stable")
        nc["lon"][:] = np.round(lon % 360.0, 6)[order]
        nc["layer1"][:] = np.asarray(nc["layer1"][:])[:, :, order]
    if with_xsomo:
        made["wrap_xsomo"] = {folder: xsomo_wrap_series(os.path.join(out, folder), folder) for folder in WRAP_GRIDS}
    if not with_xsomo:
        write_gpkg_ogr(os.path.join(out, "stations.gpkg"))
    else:
        import xarray as xr

        import xsomo
        from xsomo.gis import export as gis

        metrics = xr.Dataset(
            {"pearson_r": ("station", [0.5 + 0.1 * i for i in range(len(STATIONS))])},
            coords={
                "station": [s[0] for s in STATIONS],
                "lon": ("station", [s[1] for s in STATIONS]),
                "lat": ("station", [s[2] for s in STATIONS]),
            },
        )
        gis.metrics_to_gpkg(metrics, os.path.join(out, "stations.gpkg"))
        gis.metrics_to_gpkg(metrics, os.path.join(out, "stations_styled.gpkg"), style=True)
        ds = xsomo.open_somo(somo)
        gis.to_cog(ds, os.path.join(out, "xsomo_day.tif"), layer=1, time="2011-01-20", blocksize=16)
        gis.to_cog(
            ds,
            os.path.join(out, "xsomo_anomaly.tif"),
            layer=1,
            stat="anomaly",
            period=("2012-01-05", "2012-01-25"),
            blocksize=16,
        )
        gis.to_cog(
            xsomo.open_somo(leap),
            os.path.join(out, "xsomo_leap_anomaly.tif"),
            layer=1,
            stat="anomaly",
            period=LEAP_PERIOD,
            blocksize=16,
        )
        gis.to_time_stack(somo, os.path.join(out, "xsomo_stack.vrt"), layer=1)
        # a day on the full 355 x 570 Europe grid with the default 256-pixel tiles (two overviews)
        from xsomo import conventions as cv

        eu = xr.DataArray(
            value(1, EUROPE_DAY, cv.EUROPE.lat[:, None], cv.EUROPE.lon[None, :]),
            dims=("lat", "lon"),
            coords=cv.EUROPE.coords(),
        )
        gis.to_cog(eu, os.path.join(out, "xsomo_europe.tif"))
    with open(os.path.join(out, "made.json"), "w") as f:
        json.dump(made, f)
    print("test data in", out, "(written by xsomo: {})".format(made["xsomo"]))


if __name__ == "__main__":
    main(sys.argv[1])
