"""Readers for the published SoMo.ml v1 model-run folder and SoMo.ml gridded products.

SoMo.ml v1 (O & Orth 2021, Sci Data 8, 170) published its model code with a small
model-run archive ``somo_model/somo_lstm.zip``. Unpacked, it holds::

    somo_lstm/
      ismn/forcing/features_<lat>_<lon>.dat   daily ERA5 forcing of one 0.25° cell (CSV, date index;
                                              t2m K, tp mm/day, log_tp = ln(1+tp), snr and ssrd
                                              MJ m-2 day-1, skt K, q kg/kg)
      ismn/attri/global_attri.dat             the ten static features per cell (index "<lat>_<lon>")
      ismn/attri/scaler_ALL_statics.dat       rows aveK (mean) and stdK (std) of the statics
      ismn/lis/scaler_ALL_layer0.dat          aveK/stdK of the dynamic inputs and of the target ``sm``
      ismn/lis/run_global_grid0.lis           the cells of the run (``IDX_<lat>_<lon>_dep0-0.dat``)
      model/model_epoch15.pt                  the trained layer-1 EA-LSTM (Kratzert et al. 2019 layout)
      model/somo_out.csv                      its published output (date, pixel, somo), m3 m-3

:func:`open_somoml_v1_run` reads all of it (except the weights, which
:func:`xsomo.model.importers.load_somoml_v1` imports) into a :class:`SomoMLv1Run`.
File and column names of this layout appear only here.

The gridded SoMo.ml products (v1 at 0.25°, SoMo.ml-EU at 0.1°; one file per layer and
year) are opened by :func:`xsomo.io.somo.open_somo` (``xr.open_dataset(..., engine="somo")``).

References
----------
O, S. and Orth, R. (2021): Global soil moisture data derived through machine learning
trained with in-situ measurements. Sci Data 8, 170, doi:10.1038/s41597-021-00964-1.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.exceptions import DataFormatError, MissingVariableError, XsomoValueError

__all__ = [
    "SOMOML_V1_DYNAMIC",
    "SOMOML_V1_STATIC",
    "SomoMLv1Run",
    "cell_coords",
    "find_somoml_v1_folder",
    "open_somoml_v1_run",
    "read_attributes",
    "read_forcing",
    "read_output",
    "read_scaler",
]

#: Dynamic inputs of the published SoMo.ml v1 model, in the order of its ``weight_ih`` rows.
SOMOML_V1_DYNAMIC: tuple[str, ...] = ("log_tp", "t2m", "snr", "ssrd", "q", "skt")
#: Static inputs of the published model, in ``global_attri.dat`` column order.
SOMOML_V1_STATIC: tuple[str, ...] = (
    "ETOPOavg",
    "ETOPOsd",
    "tp",
    "arid",
    "clay",
    "sand",
    "silt",
    "poro_top",
    "poro_mid",
    "domveg",
)
#: The target column of the dynamic scaler (layer 0 = 0-10 cm).
SOMOML_V1_TARGET = "sm"

_FORCING_COLUMNS = ("t2m", "tp", "log_tp", "snr", "ssrd", "skt", "q")
_FORCING_UNITS = {
    "t2m": "K",
    "tp": "mm d-1",
    "log_tp": "1",
    "snr": "MJ m-2 d-1",
    "ssrd": "MJ m-2 d-1",
    "skt": "K",
    "q": "kg kg-1",
}
_FORCING_LONG_NAMES = {
    "t2m": "2 m air temperature (daily mean)",
    "tp": "total precipitation (daily sum)",
    "log_tp": "ln(1 + precipitation in mm/day)",
    "snr": "surface net radiation (daily sum)",
    "ssrd": "surface solar radiation downwards (daily sum)",
    "skt": "skin temperature (daily mean)",
    "q": "specific humidity (daily mean)",
}
_CELL_RE = re.compile(r"(-?\d+(?:\.\d+)?)_(-?\d+(?:\.\d+)?)")


# ----------------------------------------------------------------------------- small readers
def _read_csv(path: pathlib.Path, *, what: str) -> pd.DataFrame:
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SoMo.ml v1 {what} file not found: {path}")
    try:
        return pd.read_csv(path, index_col=0)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataFormatError(f"cannot read the SoMo.ml v1 {what} file {path}: {err}") from err


def _require_columns(
    df: pd.DataFrame, columns: Sequence[str], path: pathlib.Path, what: str
) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MissingVariableError(
            f"SoMo.ml v1 {what} file {path} lacks column(s) {missing}; found {list(df.columns)}. "
            "Is this the file from somo_model/somo_lstm.zip?"
        )


def cell_coords(cell: str) -> tuple[float, float]:
    """``(lat, lon)`` of a SoMo.ml v1 cell id ``"<lat>_<lon>"``."""
    m = _CELL_RE.fullmatch(str(cell).strip())
    if m is None:
        raise XsomoValueError(f"not a SoMo.ml v1 cell id '<lat>_<lon>': {cell!r}")
    return float(m.group(1)), float(m.group(2))


def read_forcing(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read one ``features_<lat>_<lon>.dat`` forcing file.

    Parameters
    ----------
    path
        The CSV file (first column the date, then ``t2m, tp, log_tp, snr, ssrd, skt, q``).

    Returns
    -------
    pandas.DataFrame
        Daily rows indexed by a ``DatetimeIndex`` named ``time``; float64 columns.

    Raises
    ------
    DataFormatError
        If the dates cannot be parsed, are not strictly increasing daily, or values are not numeric.
    MissingVariableError
        If a forcing column is missing.
    """
    path = pathlib.Path(path)
    df = _read_csv(path, what="forcing")
    _require_columns(df, _FORCING_COLUMNS, path, "forcing")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(df.index, format="%Y-%m-%d"), name="time")
        df = df.astype("float64")
    except (ValueError, TypeError) as err:
        raise DataFormatError(
            f"SoMo.ml v1 forcing file {path} has unparsable dates or values: {err}"
        ) from err
    df.index = index
    if len(index) > 1 and not (np.diff(index.values) == np.timedelta64(1, "D")).all():
        raise DataFormatError(
            f"SoMo.ml v1 forcing file {path} is not a gap-free daily series "
            f"({index[0].date()} .. {index[-1].date()}, {len(index)} rows)"
        )
    return df


def read_attributes(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``attri/global_attri.dat``: one row per cell id ``"<lat>_<lon>"``, the statics as columns."""
    path = pathlib.Path(path)
    df = _read_csv(path, what="static attributes")
    _require_columns(df, SOMOML_V1_STATIC, path, "static attributes")
    df.index = df.index.astype(str).rename("cell")
    return df.astype("float64")


def read_scaler(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a SoMo.ml v1 scaler file: rows ``aveK`` (mean) and ``stdK`` (std), one column per feature.

    Raises
    ------
    DataFormatError
        If the ``aveK``/``stdK`` rows are missing or a standard deviation is not positive.
    """
    path = pathlib.Path(path)
    df = _read_csv(path, what="scaler")
    if not {"aveK", "stdK"} <= set(df.index):
        raise DataFormatError(
            f"SoMo.ml v1 scaler file {path} needs rows 'aveK' and 'stdK'; found {list(df.index)}"
        )
    df = df.loc[["aveK", "stdK"]].astype("float64")
    bad = [c for c in df.columns if not np.isfinite(df.at["stdK", c]) or df.at["stdK", c] <= 0]
    if bad:
        raise DataFormatError(f"SoMo.ml v1 scaler file {path}: non-positive stdK for {bad}")
    return df


def read_output(path: str | os.PathLike[str]) -> xr.DataArray:
    """Read ``somo_out.csv`` (columns ``date, pixel, somo``) as ``sm(cell, time)`` in m3 m-3."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SoMo.ml v1 output file not found: {path}")
    df = pd.read_csv(path)
    missing = [c for c in ("date", "pixel", "somo") if c not in df.columns]
    if missing:
        raise MissingVariableError(f"SoMo.ml v1 output file {path} lacks column(s) {missing}")
    df["date"] = pd.to_datetime(df["date"], format="%Y-%m-%d")
    df["pixel"] = df["pixel"].astype(str)
    cells = list(dict.fromkeys(df["pixel"]))  # order of first appearance
    wide = df.pivot(index="pixel", columns="date", values="somo").loc[cells]
    lat, lon = zip(*(cell_coords(c) for c in cells), strict=True)
    return xr.DataArray(
        wide.to_numpy(dtype="float32"),
        dims=("cell", "time"),
        coords={
            "cell": ("cell", cells),
            "time": ("time", pd.DatetimeIndex(wide.columns, name="time")),
            "lat": ("cell", np.asarray(lat)),
            "lon": ("cell", np.asarray(lon)),
        },
        name=cv.SM,
        attrs={
            **cv.SM_ATTRS,
            "comment": "SoMo.ml v1 published output, layer 1 (0-10 cm)",
            "source": str(path),
        },
    )


# ----------------------------------------------------------------------------- the run folder
@dataclasses.dataclass(frozen=True)
class SomoMLv1Run:
    """The inputs (and published output) of a SoMo.ml v1 model run.

    Attributes
    ----------
    folder
        The ``somo_lstm`` folder.
    forcing
        ``Dataset`` of the seven forcing columns, each ``(cell, time)`` float64, with
        ``lat(cell)``/``lon(cell)`` coordinates.
    statics
        ``Dataset`` of the ten static features, each ``(cell,)`` float64.
    dynamic_scaler, static_scaler
        The ``aveK``/``stdK`` tables (``dynamic_scaler`` also holds the target ``sm``).
    output
        The published output ``sm(cell, time)`` if ``model/somo_out.csv`` exists, else None.
    checkpoint
        Path of ``model/model_epoch15.pt`` if it exists, else None.
    """

    folder: pathlib.Path
    forcing: xr.Dataset
    statics: xr.Dataset
    dynamic_scaler: pd.DataFrame
    static_scaler: pd.DataFrame
    output: xr.DataArray | None
    checkpoint: pathlib.Path | None

    @property
    def cells(self) -> list[str]:
        return [str(c) for c in self.forcing["cell"].values]

    def dynamic_array(
        self, names: Sequence[str] = SOMOML_V1_DYNAMIC, *, dtype: str = "float64"
    ) -> np.ndarray:
        """Raw (unscaled) dynamic inputs ``(cell, time, len(names))`` in the given order."""
        return np.stack([self.forcing[n].values for n in names], axis=-1).astype(dtype)

    def to_drivers(self, *, dynamic: Sequence[str] = SOMOML_V1_DYNAMIC) -> xr.Dataset:
        """The run's inputs as a drivers Dataset for :func:`xsomo.prediction.inference.predict`.

        The cells are placed on the coarsest regular lat/lon grid that holds them all
        (``land_mask`` True only at the cells). Dynamic variables are ``(time, lat, lon)``
        under their names in the forcing files, statics ``(lat, lon)`` under theirs
        (the static ``tp`` is mean annual precipitation; the forcing's ``tp`` is left out,
        the model reads ``log_tp``).

        Raises
        ------
        XsomoValueError
            If the regular grid holding the cells would exceed a million cells.
        """
        lat = self.forcing["lat"].values
        lon = self.forcing["lon"].values
        glat, iy = _regular_axis(lat, "lat")
        glon, ix = _regular_axis(lon, "lon")
        if glat.size * glon.size > 1_000_000:
            raise XsomoValueError(
                f"the {len(lat)} cells need a regular grid of {glat.size} x {glon.size} points; "
                "select fewer or closer cells (open_somoml_v1_run(..., cells=[...]))"
            )
        ntime = self.forcing.sizes["time"]
        data_vars: dict[str, xr.DataArray] = {}
        for name in dynamic:
            arr = np.full((ntime, glat.size, glon.size), np.nan)
            arr[:, iy, ix] = self.forcing[name].values.T
            data_vars[name] = xr.DataArray(
                arr, dims=(cv.TIME, cv.LAT, cv.LON), attrs=dict(self.forcing[name].attrs)
            )
        for key in self.statics.data_vars:
            static = np.full((glat.size, glon.size), np.nan)
            static[iy, ix] = self.statics[key].values
            data_vars[str(key)] = xr.DataArray(static, dims=(cv.LAT, cv.LON))
        mask = np.zeros((glat.size, glon.size), dtype=bool)
        mask[iy, ix] = True
        data_vars[cv.LAND_MASK] = xr.DataArray(mask, dims=(cv.LAT, cv.LON))
        return xr.Dataset(
            data_vars,
            coords={
                cv.TIME: (cv.TIME, self.forcing["time"].values, cv.TIME_ATTRS),
                cv.LAT: (cv.LAT, glat, cv.LAT_ATTRS),
                cv.LON: (cv.LON, glon, cv.LON_ATTRS),
            },
            attrs={"source": str(self.folder), "title": "SoMo.ml v1 model-run inputs as drivers"},
        )

    def static_array(
        self, names: Sequence[str] = SOMOML_V1_STATIC, *, dtype: str = "float64"
    ) -> np.ndarray:
        """Raw (unscaled) static inputs ``(cell, len(names))`` in the given order."""
        return np.stack([self.statics[n].values for n in names], axis=-1).astype(dtype)


def _regular_axis(values: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The coarsest regular axis holding ``values`` (to 1e-6°) and each value's index on it."""
    uniq = np.unique(np.round(np.asarray(values, dtype=float), 6))
    if uniq.size == 1:
        return uniq, np.zeros(len(values), dtype=int)
    steps = np.round(np.diff(uniq) * 1e6).astype(np.int64)
    step = int(np.gcd.reduce(steps)) / 1e6
    n = round((uniq[-1] - uniq[0]) / step) + 1
    axis = np.round(uniq[0] + step * np.arange(n), 6)
    idx = np.round((np.asarray(values, dtype=float) - uniq[0]) / step).astype(int)
    if not np.allclose(axis[idx], values, atol=1e-6):  # pragma: no cover - guarded by the gcd
        raise XsomoValueError(f"cannot place the cells' {name} on a regular axis")
    return axis, idx


def find_somoml_v1_folder(folder: str | os.PathLike[str]) -> pathlib.Path:
    """Locate the ``somo_lstm`` folder at or below ``folder`` (``somo-ml-v1``, ``somo_model``, ``somo_lstm``)."""
    folder = pathlib.Path(folder)
    for cand in (folder, folder / "somo_lstm", folder / "somo_model" / "somo_lstm"):
        if (cand / "ismn" / "forcing").is_dir():
            return cand
    raise FileNotFoundError(
        f"no SoMo.ml v1 model-run folder (with ismn/forcing/) at or below {folder}; "
        "unpack somo_model/somo_lstm.zip from osungmin/paper_SciData2021_SoMo_v1 and pass its folder"
    )


def _run_cells(base: pathlib.Path, attri: pd.DataFrame) -> list[str]:
    lis = base / "ismn" / "lis" / "run_global_grid0.lis"
    if lis.is_file():
        cells = []
        for line in lis.read_text().split():
            m = re.fullmatch(r"IDX_(.+)_dep\d+-\d+\.dat", line.strip())
            if m is None:
                raise DataFormatError(
                    f"unexpected line {line!r} in {lis} (want IDX_<lat>_<lon>_dep0-0.dat)"
                )
            cells.append(m.group(1))
        return cells
    files = sorted((base / "ismn" / "forcing").glob("features_*.dat"))
    found = {f.name[len("features_") : -len(".dat")] for f in files}
    return [c for c in attri.index if c in found]


def open_somoml_v1_run(
    folder: str | os.PathLike[str], *, cells: Sequence[str] | None = None
) -> SomoMLv1Run:
    """Read a SoMo.ml v1 model-run folder (forcing, statics, scalers, published output).

    Parameters
    ----------
    folder
        ``somo_lstm`` or a folder above it (``somo_model``, the ``somo-ml-v1`` data folder).
    cells
        Cell ids ``"<lat>_<lon>"`` to read; default: those of ``ismn/lis/run_global_grid0.lis``
        (or every cell with a forcing file and attributes).

    Returns
    -------
    SomoMLv1Run

    Raises
    ------
    FileNotFoundError
        If the folder or a cell's forcing file is missing.
    DataFormatError, MissingVariableError
        If a file is not in the published layout, or the forcing files cover different dates.
    """
    base = find_somoml_v1_folder(folder)
    attri = read_attributes(base / "ismn" / "attri" / "global_attri.dat")
    static_scaler = read_scaler(base / "ismn" / "attri" / "scaler_ALL_statics.dat")
    dynamic_scaler = read_scaler(base / "ismn" / "lis" / "scaler_ALL_layer0.dat")
    _require_columns(
        static_scaler, SOMOML_V1_STATIC, base / "ismn/attri/scaler_ALL_statics.dat", "scaler"
    )
    _require_columns(
        dynamic_scaler,
        (*SOMOML_V1_DYNAMIC, SOMOML_V1_TARGET),
        base / "ismn/lis/scaler_ALL_layer0.dat",
        "scaler",
    )
    cells = list(cells) if cells is not None else _run_cells(base, attri)
    if not cells:
        raise DataFormatError(f"no cells found in the SoMo.ml v1 folder {base}")
    missing = [c for c in cells if c not in attri.index]
    if missing:
        raise MissingVariableError(
            f"cells {missing} have no row in {base / 'ismn/attri/global_attri.dat'}"
        )
    frames = [read_forcing(base / "ismn" / "forcing" / f"features_{c}.dat") for c in cells]
    time = frames[0].index
    for c, f in zip(cells, frames, strict=True):
        if not f.index.equals(time):
            raise DataFormatError(
                f"forcing of cell {c} covers {f.index[0].date()}..{f.index[-1].date()}, "
                f"cell {cells[0]} covers {time[0].date()}..{time[-1].date()}; all cells must share dates"
            )
    lat, lon = (np.asarray(v) for v in zip(*(cell_coords(c) for c in cells), strict=True))
    coords = {
        "cell": ("cell", cells),
        "lat": ("cell", lat, cv.LAT_ATTRS),
        "lon": ("cell", lon, cv.LON_ATTRS),
    }
    forcing = xr.Dataset(
        {
            name: xr.DataArray(
                np.stack([f[name].to_numpy() for f in frames]),
                dims=("cell", "time"),
                attrs={"units": _FORCING_UNITS[name], "long_name": _FORCING_LONG_NAMES[name]},
            )
            for name in _FORCING_COLUMNS
        },
        coords={**coords, "time": ("time", time)},
        attrs={"source": str(base), "title": "SoMo.ml v1 model-run forcing (ERA5)"},
    )
    statics = xr.Dataset(
        {name: ("cell", attri.loc[cells, name].to_numpy()) for name in attri.columns},
        coords=coords,
        attrs={"source": str(base / "ismn/attri/global_attri.dat")},
    )
    out_path = base / "model" / "somo_out.csv"
    output = read_output(out_path).sel(cell=list(cells)) if out_path.is_file() else None
    ckpt = base / "model" / "model_epoch15.pt"
    return SomoMLv1Run(
        folder=base,
        forcing=forcing,
        statics=statics,
        dynamic_scaler=dynamic_scaler,
        static_scaler=static_scaler,
        output=output,
        checkpoint=ckpt if ckpt.is_file() else None,
    )
