"""Packed variables with ``_Unsigned = "true"`` (netCDF3/CF: an unsigned integer stored in a signed type).

Read as signed, a byte of 200 is -56 and a short of 40000 is -25536: values packed with scale_factor
and add_offset come out far off, without a word. xsomo's readers (xarray for netCDF, rioxarray/GDAL for
rasters) must give the physical values computed by hand from the unsigned integers.
"""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest

from xsomo.exceptions import DataFormatError
from xsomo.io import open_era5land, open_gridded
from xsomo.io.statics import open_raster

#: unsigned integers, the last one the fill value
RAW = {
    "i1": np.array([0, 1, 127, 128, 200, 254, 255], np.uint8),
    "i2": np.array([0, 1, 32767, 32768, 40000, 65534, 65535], np.uint16),
}
SCALE = {"i1": 0.25, "i2": 0.001}
OFFSET = 250.0


def _expected(typ: str) -> np.ndarray:
    raw = RAW[typ]
    return np.where(raw == raw[-1], np.nan, raw.astype(float) * SCALE[typ] + OFFSET)


def _packed(path, typ: str, *, start: int = 0, lat: str = "lat", static: bool = False):
    """A variable ``t2m`` (time, lat, lon), or a map (lat, lon) with ``static``, written as signed
    integers with _Unsigned = "true" (bytes in netCDF3, shorts in netCDF4)."""
    raw = RAW[typ]
    signed = raw.view(np.int8 if typ == "i1" else np.int16)
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC" if typ == "i1" else "NETCDF4_CLASSIC") as nc:
        nc.createDimension(lat, 1)
        nc.createDimension("lon", 1 if not static else raw.size)
        if not static:
            nc.createDimension("time", raw.size)
            t = nc.createVariable("time", "f8", ("time",))
            t.units = "days since 2000-01-01"
            t[:] = start + np.arange(raw.size)
        nc.createVariable(lat, "f8", (lat,))[:] = [45.0]
        nc.createVariable("lon", "f8", ("lon",))[:] = 5.0 + 0.1 * np.arange(1 if not static else raw.size)
        dims = (lat, "lon") if static else ("time", lat, "lon")
        v = nc.createVariable("t2m", typ, dims, fill_value=signed[-1])
        v.set_auto_maskandscale(False)  # the signed bit patterns as they are
        v._Unsigned = "true"
        v.scale_factor, v.add_offset, v.units = SCALE[typ], OFFSET, "K"
        v[:] = signed[None, :] if static else signed[:, None, None]
    return path


@pytest.mark.parametrize("typ", ["i1", "i2"])
def test_unsigned_packed_netcdf_decodes_to_the_hand_computed_values(tmp_path, typ):
    f = _packed(tmp_path / "t.nc", typ)
    for chunks in (None, {}):
        got = open_gridded(f, {"t2m": "K"}, chunks=chunks)["t2m"].values[:, 0, 0]
        np.testing.assert_allclose(got, _expected(typ), rtol=1e-6, equal_nan=True)
    # a static map read by the statics' netCDF path
    got = open_raster(_packed(tmp_path / "map.nc", typ, static=True), chunks=None).values.ravel()
    np.testing.assert_allclose(got, _expected(typ), rtol=1e-6, equal_nan=True)


def test_unsigned_packed_netcdf_over_several_files(tmp_path):
    """open_mfdataset (dask) decodes each file the same way."""
    _packed(tmp_path / "a.nc", "i2")
    _packed(tmp_path / "b.nc", "i2", start=RAW["i2"].size)
    got = open_gridded(tmp_path, {"t2m": "K"}, chunks={})["t2m"].values[:, 0, 0]
    np.testing.assert_allclose(got, np.tile(_expected("i2"), 2), rtol=1e-6, equal_nan=True)


def test_unsigned_packed_era5land_byte(tmp_path):
    """An ERA5-Land-style daily t2m in unsigned bytes (250 K + 0.25 K steps), read by open_era5land."""
    f = _packed(tmp_path / "e.nc", "i1", lat="latitude")
    want = _expected("i1")
    got = open_era5land(f)["air_temperature"].values[:, 0, 0]
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


def test_unsigned_geotiff_band_decodes_like_gdal_says(tmp_path):
    """A GeoTIFF band of signed shorts tagged _Unsigned=true with a scale and offset: rioxarray reads the
    unsigned values (the GDAL netCDF driver does the same for netCDF)."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    raw = RAW["i2"][:-1].reshape(2, 3)  # no fill value: the band has no nodata
    f = tmp_path / "u.tif"
    with rasterio.open(f, "w", driver="GTiff", height=2, width=3, count=1, dtype="int16", crs="EPSG:4326",
                       transform=from_origin(5.0, 45.02, 0.01, 0.01)) as dst:
        dst.write(raw.view(np.int16), 1)
        dst.update_tags(1, _Unsigned="true")
        dst.scales, dst.offsets = (SCALE["i2"],), (OFFSET,)
    got = open_raster(f, chunks=None).values
    np.testing.assert_allclose(got, (raw.astype(float) * SCALE["i2"] + OFFSET)[::-1], rtol=1e-6)


def test_unsigned_geotiff_band_with_a_negative_nodata(tmp_path):
    """An int16 band tagged _Unsigned=true whose nodata is -1 (65535 as unsigned): rioxarray
    failed on it ("Python integer -1 out of bounds for uint16"); it reads as the unsigned values,
    with 65535 as NaN, and keeps its CRS check."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    raw = np.array([[100, 40000, 65535], [300, 400, 500]], dtype=np.uint16)
    f = tmp_path / "u.tif"
    with rasterio.open(f, "w", driver="GTiff", height=2, width=3, count=1, dtype="int16", crs="EPSG:4326",
                       transform=from_origin(5.0, 45.02, 0.01, 0.01), nodata=-1) as dst:
        dst.write(raw.view(np.int16), 1)
        dst.update_tags(1, _Unsigned="true")
        dst.scales, dst.offsets = (0.1,), (2.0,)
    got = open_raster(f, chunks=None)
    want = np.where(raw == 65535, np.nan, raw * 0.1 + 2.0)[::-1]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.values, want, rtol=1e-6, equal_nan=True)

    p = tmp_path / "p.tif"  # the same band in a projected CRS is still refused
    with rasterio.open(p, "w", driver="GTiff", height=2, width=3, count=1, dtype="int16", crs="EPSG:3035",
                       transform=from_origin(4e6, 3e6, 1000, 1000), nodata=-1) as dst:
        dst.write(raw.view(np.int16), 1)
        dst.update_tags(1, _Unsigned="true")
    with pytest.raises(DataFormatError, match="projected"):
        open_raster(p, chunks=None)
