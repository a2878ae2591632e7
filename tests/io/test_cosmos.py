"""open_cosmos: the real COSMOS-Europe catalogue and Sheepdrove2 file, and hand-made files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xsomo.exceptions import DataFormatError
from xsomo.io import open_cosmos
from xsomo.io.cosmos import read_catalogue


@pytest.mark.real
def test_catalogue_quoted_comma(real_data):
    cat = read_catalogue(real_data / "neptoon/examples/cosmos_europe/stations.csv")
    assert len(cat) == 66
    assert cat.loc["Weisssee", "detector_type"] == "CRS1000, CRS2000/B"
    assert cat.loc["Weisssee", "latitude"] == pytest.approx(46.873)


@pytest.mark.real
def test_sheepdrove2(real_data):
    n = real_data / "neptoon"
    f = n / "neptoon/interface/example_data/Sheepdrove2-CRNS.csv"
    ds = open_cosmos(f, catalogue=n / "examples/cosmos_europe/stations.csv")
    assert ds["station"].values.tolist() == ["SHC002"]
    assert ds.lat.item() == pytest.approx(51.528) and ds.lon.item() == pytest.approx(-1.468)
    assert 0.15 <= ds.footprint_depth.item() <= 0.22
    assert ds["sees_layer"].values.tolist() == [[True, True, False]]
    # independent daily means of the unflagged hourly values; the flags of meteorology gap-filled
    # from ERA5 (Flag_AirPressure_ERA5, Flag_AirHumidity_ERA5) do not flag the soil moisture (they
    # had cost 49 good hours and 2 days, QA)
    raw = pd.read_csv(f)
    t = pd.to_datetime(raw["DateTime_utc"], utc=True).dt.tz_localize(None)
    quality = [c for c in raw.columns if c.startswith("Flag_") and c not in ("Flag_AirPressure_ERA5", "Flag_AirHumidity_ERA5")]
    assert "Flag_Snow_ERA5" in quality and len(quality) < len(raw.filter(like="Flag_").columns)
    flags = raw[quality].fillna(0).ne(0).any(axis=1)
    s = pd.Series(raw["SoilMoisture_volumetric_MovAvg24h"].where(~flags).values, index=t).dropna()
    g = s.groupby(s.index.floor("D"))
    exp = g.mean()[g.count() >= 12]
    got = ds["sm"].isel(station=0).to_series().dropna()
    assert len(got) == len(exp) == 456
    np.testing.assert_allclose(got.values, exp.values, rtol=1e-6)


def test_handmade_folder_and_errors(tmp_path):
    (tmp_path / "stations.csv").write_text(
        "station_id,station,country,detector_type,latitude,longitude,elevation_m\n"
        'XXC001,Alpha,Germany,"CRS1000, CRS2000/B",50.01,10.02,100\n'
    )
    t = pd.date_range("2020-01-01", periods=72, freq="h", tz="UTC")
    df = pd.DataFrame(
        {
            "DateTime_utc": t.astype(str),
            "SoilMoisture_volumetric_MovAvg24h": np.r_[np.full(48, 0.3), np.full(24, 0.2)],
            "Footprint_Depth_m": 0.35,
            "Flag_Snow_ERA5": np.r_[np.zeros(60), np.ones(12)],
        }
    )
    df.to_csv(tmp_path / "Alpha-CRNS.csv", index=False)
    ds = open_cosmos(tmp_path)
    assert ds.sizes["time"] == 3 and ds["station_name"].item() == "Alpha"
    np.testing.assert_allclose(
        ds["sm"].values[0], [0.3, 0.3, 0.2], rtol=1e-6
    )  # day 3: 12 unflagged hours
    assert ds["sees_layer"].values.tolist() == [[True, True, True]]
    df.to_csv(tmp_path / "Beta-CRNS.csv", index=False)
    with pytest.raises(DataFormatError, match="Beta"):
        open_cosmos(tmp_path)


def _one_station(folder, **columns):
    (folder / "stations.csv").write_text(
        "station_id,station,latitude,longitude\nXXC001,Alpha,50.01,10.02\n"
    )
    t = pd.date_range("2020-01-01", periods=72, freq="h", tz="UTC")
    df = pd.DataFrame({"DateTime_utc": t.astype(str), "SoilMoisture_volumetric_MovAvg24h": 0.3, **columns})
    df.to_csv(folder / "Alpha-CRNS.csv", index=False)


def test_hostile_columns(tmp_path):
    """Text flags, -9999 footprint depths and a record without a valid day (hostile-input QA:
    a bare ValueError, a median pulled down to 0.212 from 0.220, a bare min() error)."""
    hours = np.arange(72)
    _one_station(tmp_path, Flag_Extreme_Counts=np.where(hours >= 60, "E", ""),
                 Footprint_Depth_m=np.where(hours % 2 == 0, -9999.0, 0.22))  # fmt: skip
    ds = open_cosmos(tmp_path)
    # day 3 keeps 12 unflagged hours; the text flag is a set flag
    assert ds["sm"].notnull().sum().item() == 3
    _one_station(tmp_path, Flag_Extreme_Counts=np.where(hours >= 48, "E", ""), Footprint_Depth_m=np.where(hours % 2 == 0, -9999.0, 0.22))
    ds = open_cosmos(tmp_path)
    assert ds.sizes["time"] == 2
    assert ds["footprint_depth"].item() == pytest.approx(0.22)
    assert ds["sees_layer"].values.tolist() == [[True, True, False]]
    _one_station(tmp_path, Flag_Snow_ERA5=1)
    with pytest.raises(DataFormatError, match=r"no station has a valid day.*use_flags=False"):
        open_cosmos(tmp_path)
    # soil moisture in percent (COSMOS-UK's VWC) read as m3 m-3 (mean 40.4), refused only later by
    # evaluate, naming neither the file nor the station
    _one_station(tmp_path, SoilMoisture_volumetric_MovAvg24h=30.0)
    with pytest.raises(DataFormatError, match=r"Alpha-CRNS.csv: SoilMoisture_volumetric_MovAvg24h reaches 30.*percent"):
        open_cosmos(tmp_path)


def test_sample_world_cosmos(tiny_world):
    import json

    man = json.loads((tiny_world / "world.json").read_text())["cosmos_stations"]
    ds = open_cosmos(tiny_world / "cosmos")
    assert sorted(ds["station"].values.tolist()) == sorted(c["station_id"] for c in man)
    for c in man:
        st = ds.sel(station=c["station_id"])
        assert st.lat.item() == pytest.approx(c["lat"]) and st.lon.item() == pytest.approx(c["lon"])
        assert st.footprint_depth.item() == pytest.approx(c["footprint_depth_m"], abs=0.03)
        assert st["sm"].notnull().sum() > 30 and float(st["sm"].max()) < 1.0
