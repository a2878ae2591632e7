"""Europe-sized GIS export (slow): three years of one layer on the 355 x 570 SoMo.ml-EU grid.

Prints the timings quoted in docs/gis.md: ``pytest -m slow -s tests/gis/test_gis_europe.py``.
"""

from __future__ import annotations

import pathlib
import time

import numpy as np
import pandas as pd
import pytest
import rasterio
from somo_files import expected_value, write_somo_file
from test_gis import _assert_cog

import xsomo
from xsomo import conventions as cv
from xsomo.gis import export as gis

pytestmark = pytest.mark.slow


def test_europe_day_mean_anomaly(tmp_path: pathlib.Path) -> None:
    t0 = time.perf_counter()
    for year in (2016, 2017, 2018):
        write_somo_file(tmp_path / cv.output_filename(1, year), 1, year, grid=cv.EUROPE)
    t_write = time.perf_counter() - t0

    t0 = time.perf_counter()
    ds = xsomo.open_somo(tmp_path)
    t_open = time.perf_counter() - t0
    assert ds.sizes == {"layer": 1, "time": 366 + 365 + 365, "lat": 355, "lon": 570}

    t0 = time.perf_counter()
    day = gis.to_cog(ds, tmp_path / "day.tif", time="2018-07-15")
    t_day = time.perf_counter() - t0
    _assert_cog(day)
    with rasterio.open(day) as src:
        assert src.bounds == pytest.approx(
            (cv.EUROPE.west, cv.EUROPE.south, cv.EUROPE.east, cv.EUROPE.north)
        )
        assert len(src.overviews(1)) == 2
        got = src.read(1)
    want = expected_value(
        1, np.array(["2018-07-15"], dtype="datetime64[ns]"), cv.EUROPE.lat[::-1], cv.EUROPE.lon
    )[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)

    t0 = time.perf_counter()
    anom = gis.to_cog(
        ds, tmp_path / "anom.tif", stat="anomaly", period=("2018-06-01", "2018-08-31")
    )
    t_anom = time.perf_counter() - t0
    _assert_cog(anom)
    with rasterio.open(anom) as src:
        z = src.read(1)
    lat, lon = cv.EUROPE.lat[::-1], cv.EUROPE.lon
    means = np.stack(
        [
            expected_value(1, pd.date_range(f"{y}-06-01", f"{y}-08-31").to_numpy(), lat, lon).mean(
                0
            )
            for y in (2016, 2017, 2018)
        ]
    ).astype(float)
    np.testing.assert_allclose(
        z, (means[2] - means.mean(0)) / means.std(0, ddof=1), rtol=1e-3, atol=1e-3
    )
    print(
        f"\nEurope grid 355x570, layer 1, 3 years: write {t_write:.1f} s, open_somo {t_open:.2f} s, "
        f"one-day COG {t_day:.2f} s ({day.stat().st_size / 1e3:.0f} kB), "
        f"JJA anomaly COG {t_anom:.2f} s ({anom.stat().st_size / 1e3:.0f} kB)"
    )
