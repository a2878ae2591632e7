from __future__ import annotations

import numpy as np
import pytest

from xsomo import conventions as cv


def test_europe_grid_matches_published_dataset():
    g = cv.EUROPE
    assert g.shape == (355, 570)
    assert g.lon[0] == pytest.approx(-11.95) and g.lon[-1] == pytest.approx(44.95)
    assert g.lat[0] == pytest.approx(36.05) and g.lat[-1] == pytest.approx(71.45)
    # centres on x.x5
    assert np.allclose(np.round(g.lon * 100) % 10, 5)
    assert np.allclose(np.round(np.abs(g.lat) * 100) % 10, 5)


@pytest.mark.parametrize(
    ("lat", "lon", "clat", "clon"),
    [(51.528, -1.468, 51.55, -1.45), (36.0, -12.0, 36.05, -11.95), (71.49, 44.99, 71.45, 44.95), (43.15, 2.9567, 43.15, 2.95)],
)
def test_snap_to_cell(lat, lon, clat, clon):
    got_lat, got_lon = cv.snap_to_cell(lat, lon)
    assert got_lat == pytest.approx(clat) and got_lon == pytest.approx(clon)
    # the centre of a cell snaps to itself
    again = cv.snap_to_cell(got_lat, got_lon)
    assert again[0] == pytest.approx(clat) and again[1] == pytest.approx(clon)


def test_snap_outside_grid_is_nan():
    lat, lon = cv.snap_to_cell(np.array([19.8, 50.0]), np.array([-155.3, 10.0]))
    assert np.isnan(lat[0]) and np.isnan(lon[0])
    assert lat[1] == pytest.approx(50.05)


def test_grid_from_coords_roundtrip():
    g = cv.GridSpec(-3.0, 2.0, 40.0, 42.5)
    assert cv.GridSpec.from_coords(g.lat[::-1], g.lon) == g


@pytest.mark.parametrize(
    ("top", "bottom", "layer"),
    [
        (0.05, 0.05, 1),
        (0.0, 0.05, 1),
        (0.05, 0.10, 1),
        (0.10, 0.10, 1),  # point sensor on a boundary -> shallower layer
        (0.10, 0.20, 2),
        (0.30, 0.30, 2),
        (0.3048, 0.3048, 3),
        (0.40, 0.50, 3),
        (0.20, 0.50, None),  # spans two layers
        (0.508, 0.508, None),  # below 50 cm
        (0.0, 0.19, None),  # a COSMOS probe footprint spans layers 1 and 2
    ],
)
def test_assign_layer(top, bottom, layer):
    assert cv.assign_layer(top, bottom) == layer


def test_depth_weights_era5land():
    # layer 1 (0-10 cm): 7 cm of swvl1 and 3 cm of swvl2
    assert np.allclose(cv.depth_weights(0.0, 0.10)[:3], [0.7, 0.3, 0.0])
    # layer 2 (10-30 cm): 18 cm of swvl2 and 2 cm of swvl3
    assert np.allclose(cv.depth_weights(0.10, 0.30)[:3], [0.0, 0.9, 0.1])
    # layer 3 (30-50 cm): all swvl3
    assert np.allclose(cv.depth_weights(0.30, 0.50)[:3], [0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="overlaps none"):
        cv.depth_weights(3.0, 4.0)


def test_layer_coords_and_attrs():
    c = cv.layer_coords()
    assert c["layer"].values.tolist() == [1, 2, 3]
    assert c["depth_bottom"].values.tolist() == [0.10, 0.30, 0.50]
    assert cv.cf_attrs("sm")["units"] == "m3 m-3"
    assert cv.cf_attrs("net_radiation")["units"] == "W m-2"
    with pytest.raises(KeyError, match="not a canonical"):
        cv.cf_attrs("swvl1")
    assert cv.output_filename(2, 2015) == "SoMo.ml-EU_layer2_2015.nc"
    assert len(cv.STATIC_NAMES) == 10 and len(cv.DYNAMIC_NAMES) == 4


def test_grid_of_float32_centres_has_the_written_edges():
    """float32 71.45 is 71.44999695: the grid's north edge was 71.499997 and its west edge near 170°E
    2e-6 off; the centres are read as the decimals they were written from."""
    lat = np.arange(60.05, 71.5, 0.1).astype("float32")
    lon = np.arange(170.05, 179.9, 0.1).astype("float32")
    g = cv.GridSpec.from_coords(lat, lon)
    assert (g.south, g.north, g.west, g.east, g.resolution) == (60.0, 71.5, 170.0, 179.9, 0.1)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("per_degree", "n"), [(120, 3600), (1200, 12000), (24, 500), (4, 100)])
def test_grid_from_coords_keeps_fine_steps(per_degree, n, dtype):
    """A 1/120° axis had the step 0.008333 (rounded to 6 decimals): 3 600 cells ended 0.14 of a cell
    off, and a 1/1200° axis of 12 000 cells was read as 12 005 cells."""
    lon = (-12 + (np.arange(n) + 0.5) / per_degree).astype(dtype)
    lat = (36 + (np.arange(40) + 0.5) / per_degree).astype(dtype)
    g = cv.GridSpec.from_coords(lat, lon)
    assert g.resolution == 1 / per_degree
    assert g.shape == (40, n)
    assert g.west == pytest.approx(-12.0, abs=1e-6) and g.south == pytest.approx(36.0, abs=1e-6)
    tol = 2e-6 if dtype == "float32" else 1e-6
    np.testing.assert_allclose(g.lon, lon.astype(float), rtol=0, atol=tol)
    _, j = g.snap(np.full(n, float(lat[0])), lon.astype(float))  # every centre in its own cell
    i, _ = g.snap(lat.astype(float), np.full(40, float(lon[0])))
    assert (j == np.arange(n)).all() and (i == np.arange(40)).all()
