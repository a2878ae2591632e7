"""COSMOS-Europe-style cosmic-ray (CRNS) stations: catalogue + per-station hourly CSVs.

Layout (COSMOS-Europe processed product, as in neptoon's examples): a catalogue
``stations.csv`` (``station_id, station, country, detector_type, latitude, longitude,
elevation_m, ...``; some fields are quoted and hold commas) and per station an hourly
``<station>-CRNS.csv`` with ``DateTime_utc`` (ISO, ``+00:00``),
``SoilMoisture_volumetric_MovAvg24h`` (m3 m-3), ``Footprint_Depth_m``, ``Footprint_Radius_m``
and ``Flag_*`` columns (0 = good).
"""

from __future__ import annotations

import os
import pathlib
import re

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.exceptions import DataFormatError, MissingVariableError
from xsomo.io.stations import daily_mean

__all__ = ["open_cosmos", "read_catalogue"]

SM_COLUMN = "SoilMoisture_volumetric_MovAvg24h"
TIME_COLUMN = "DateTime_utc"
DEPTH_COLUMN = "Footprint_Depth_m"



#: ``Flag_*`` columns that mark a correction input gap-filled from ERA5 (air pressure,
#: humidity), not a doubtful soil moisture: :func:`open_cosmos` keeps those hours.
GAP_FILLED_FLAG = re.compile(r"Flag_Air\w*_ERA5")

def read_catalogue(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a COSMOS-Europe station catalogue (CSV with quoted fields) indexed by ``station``."""
    path = pathlib.Path(path)
    try:
        cat = pd.read_csv(path, dtype={"station_id": str, "station": str})
    except Exception as err:
        raise DataFormatError(f"{path}: cannot read the COSMOS station catalogue ({err}).") from err
    need = {"station", "latitude", "longitude"}
    if missing := need - set(cat.columns):
        raise DataFormatError(
            f"{path}: catalogue lacks column(s) {sorted(missing)}; columns: {list(cat.columns)}."
        )
    return cat.set_index("station", drop=False)


def _read_crns(path: pathlib.Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except Exception as err:
        raise DataFormatError(f"{path}: cannot read the CRNS file ({err}).") from err
    for col in (TIME_COLUMN, SM_COLUMN):
        if col not in df:
            raise MissingVariableError(
                f"{path}: column {col!r} missing; columns: {list(df.columns)[:8]} ..."
            )
    t = pd.to_datetime(df[TIME_COLUMN], utc=True, errors="coerce")
    if t.isna().any():
        raise DataFormatError(
            f"{path}: {int(t.isna().sum())} unparseable {TIME_COLUMN} value(s) (truncated file?)."
        )
    df.index = pd.DatetimeIndex(t.dt.tz_convert("UTC").dt.tz_localize(None))
    return df


def open_cosmos(
    path: str | os.PathLike[str],
    *,
    catalogue: str | os.PathLike[str] | None = None,
    min_hourly: int = 12,
    use_flags: bool = True,
) -> xr.Dataset:
    """Read COSMOS-style CRNS stations into a daily station Dataset.

    Parameters
    ----------
    path
        Folder with ``stations.csv`` and ``<station>-CRNS.csv`` files, or one CRNS file.
    catalogue
        Station catalogue, when it is not ``<folder>/stations.csv``.
    min_hourly
        Minimum number of valid hourly values for a daily mean.
    use_flags
        Drop hours where any ``Flag_*`` column is non-zero, except the flags of meteorology
        gap-filled from ERA5 (``Flag_Air*_ERA5``, :data:`GAP_FILLED_FLAG`).

    Returns
    -------
    xarray.Dataset
        ``sm(station, time)`` float32 m3 m-3 (daily means of the 24 h moving average),
        ``station`` = catalogue ``station_id``; coords ``lat``, ``lon``, ``station_name``,
        ``elevation``, ``footprint_depth`` (m, median over the record), ``depth_top`` (0),
        ``depth_bottom`` (= footprint depth) and ``sees_layer(station, layer)``: whether the
        footprint reaches into each target layer (its top lies above the footprint depth).

    Raises
    ------
    DataFormatError, MissingVariableError
        Unreadable files, missing columns, a station absent from the catalogue.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise DataFormatError(
            f"COSMOS path {str(path)!r} does not exist. Pass the folder with stations.csv and *-CRNS.csv files."
        )
    if path.is_dir():
        files = sorted(path.glob("*-CRNS.csv"))
        cat_path = pathlib.Path(catalogue) if catalogue else path / "stations.csv"
    else:
        files = [path]
        cat_path = pathlib.Path(catalogue) if catalogue else path.parent / "stations.csv"
    if not files:
        raise DataFormatError(f"no '*-CRNS.csv' file in {str(path)!r}.")
    if not cat_path.exists():
        raise DataFormatError(
            f"station catalogue {str(cat_path)!r} not found; pass catalogue=PATH."
        )
    cat = read_catalogue(cat_path)
    by_id = cat.set_index("station_id", drop=False) if "station_id" in cat else None
    rows = []
    for f in files:
        name = f.name[: -len("-CRNS.csv")]
        if name in cat.index:
            meta = cat.loc[name]
        elif by_id is not None and name in by_id.index:
            meta = by_id.loc[name]
        else:
            raise DataFormatError(
                f"{f}: station {name!r} is not in the catalogue {cat_path}; add it there."
            )
        if isinstance(meta, pd.DataFrame):
            meta = meta.iloc[0]
        df = _read_crns(f)
        sm = pd.to_numeric(df[SM_COLUMN], errors="coerce")
        if use_flags:
            # Flag_AirPressure_ERA5 / Flag_AirHumidity_ERA5 mark hours whose correction used ERA5's
            # meteorology for a gap in the station's own: the soil moisture is valid there (QA:
            # 49 good hours and 2 days of Sheepdrove2 were lost); snow, extreme counts and
            # porosity flags stay
            flag_cols = [c for c in df.columns if c.startswith("Flag_") and not GAP_FILLED_FLAG.fullmatch(c)]
            if flag_cols:
                raw = df[flag_cols]
                num = raw.apply(pd.to_numeric, errors="coerce")
                # a flag written as text ('E', 'snow') is set too (astype(float) had failed on it
                # with no file named); blank cells are unset
                text = raw.notna() & num.isna() & raw.astype(str).apply(lambda c: c.str.strip().ne(""))
                bad = (num.fillna(0).ne(0) | text).any(axis=1)
                sm = sm.where(~bad)
        sm = sm.where(sm >= 0)
        daily, _ = daily_mean(sm, min_hourly=min_hourly)
        if daily.notna().any() and float(daily.max()) > 1.0:
            # (a file in percent, as COSMOS-UK publishes, had read as m3 m-3: mean 40.4; only evaluate
            # refused it later, naming neither the file nor the station)
            raise DataFormatError(
                f"{f}: {SM_COLUMN} reaches {float(daily.max()):.3g} (median {float(daily.median()):.3g}), but it is "
                "read as m3 m-3, which cannot exceed 1: the file is in percent (as COSMOS-UK's VWC) or holds fill "
                "values. Divide the column by 100 for percent, or drop the fill values, and read it again."
            )
        # fill values (-9999) and zero depths are no footprint: they had pulled the median down
        # (45 % of -9999 hours: 0.220 -> 0.212 m) or made it negative
        hourly_depth = pd.to_numeric(df[DEPTH_COLUMN], errors="coerce") if DEPTH_COLUMN in df else None
        depth = float(hourly_depth.where(hourly_depth > 0).median()) if hourly_depth is not None else np.nan
        rows.append((meta, daily.dropna(), depth))
    if not any(len(d) for _, d, _ in rows):
        raise DataFormatError(
            f"{path}: no station has a valid day (soil moisture >= 0 in at least {min_hourly} unflagged hours"
            + (", with use_flags=True dropping every hour that has a Flag_* column set" if use_flags else "")
            + "). Check the files' flags and soil-moisture column, or pass use_flags=False / a smaller min_hourly."
        )
    start = min(d.index.min() for _, d, _ in rows if len(d))
    end = max(d.index.max() for _, d, _ in rows if len(d))
    days = pd.date_range(start, end, freq="D")
    data = np.full((len(rows), days.size), np.nan, dtype="float32")
    for k, (_, d, _) in enumerate(rows):
        data[k, days.get_indexer(d.index)] = d.to_numpy("float32")
    depths = np.array([r[2] for r in rows])
    tops = np.array([lay.top for lay in cv.LAYERS])
    sees = depths[:, None] > tops[None, :]
    ids = [str(m.get("station_id", m["station"])) for m, _, _ in rows]
    ds = xr.Dataset(
        {cv.SM: ((cv.STATION, cv.TIME), data, dict(cv.SM_ATTRS))},
        coords={
            cv.STATION: ids,
            cv.TIME: (cv.TIME, days.values, cv.TIME_ATTRS),
            cv.LAYER: (cv.LAYER, list(cv.LAYER_NUMBERS), {"long_name": "soil layer"}),
            "lat": (cv.STATION, [float(m["latitude"]) for m, _, _ in rows], cv.LAT_ATTRS),
            "lon": (cv.STATION, [float(m["longitude"]) for m, _, _ in rows], cv.LON_ATTRS),
            "station_name": (cv.STATION, [str(m["station"]) for m, _, _ in rows]),
            "elevation": (
                cv.STATION,
                [float(m.get("elevation_m", np.nan)) for m, _, _ in rows],
                {"units": "m"},
            ),
            "footprint_depth": (
                cv.STATION,
                depths,
                {"units": "m", "long_name": "median CRNS footprint depth"},
            ),
            "depth_top": (cv.STATION, np.zeros(len(rows)), {"units": "m"}),
            "depth_bottom": (cv.STATION, depths, {"units": "m"}),
            "sees_layer": (
                (cv.STATION, cv.LAYER),
                sees,
                {"long_name": "footprint reaches into the layer"},
            ),
        },
        attrs={
            "title": "COSMOS-style CRNS soil moisture, daily means",
            "source": f"{path}",
            "references": "Bogena et al. (2022), ESSD 14, 1125, doi:10.5194/essd-14-1125-2022",
        },
    )
    return ds
