"""MSWEP- and MSWX-style yearly forcing files of the sample world.

One file per year, ``(time, lat, lon)`` with latitude descending as in the real
products: ``mswep/<YYYY>.nc`` (``precipitation``, mm d-1) and ``mswx/Temp/<YYYY>.nc``
(``air_temperature``, degC). Bands are written south to north into the reversed rows.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from xsomo.io.netcdf import NcWriter, Var, lat_coord, lon_coord, time_coord
from xsomo.sample.writers.common import WorldContext

__all__ = ["MSWEP", "MSWX_TEMP", "YearlyForcing"]

#: (variable, attributes, file title) of the two products
MSWEP = (
    "precipitation",
    {"units": "mm d-1", "long_name": "precipitation", "standard_name": "lwe_precipitation_rate"},
    "MSWEP-style daily precipitation",
)
MSWX_TEMP = (
    "air_temperature",
    {
        "units": "degC",
        "long_name": "daily mean air temperature",
        "standard_name": "air_temperature",
    },
    "MSWX-style daily mean air temperature",
)


class YearlyForcing:
    """The yearly files of one MSWEP/MSWX-style variable, filled band by band.

    Parameters
    ----------
    ctx
        The world.
    product
        :data:`MSWEP` or :data:`MSWX_TEMP`.
    path
        Year -> file path (from :class:`xsomo.io.world.WorldLayout`).
    years
        ``(year, time slice)`` pairs of the world's period.
    """

    def __init__(
        self,
        ctx: WorldContext,
        product: tuple[str, dict[str, str], str],
        path: Callable[[int], pathlib.Path],
        years: list[tuple[int, slice]],
    ) -> None:
        g = ctx.grid
        self.name, attrs, title = product
        self.nlat = g.nlat
        self.nlon = g.nlon
        self.writers: dict[int, NcWriter] = {}
        time: pd.DatetimeIndex = ctx.time
        try:
            for y, s in years:
                self.writers[y] = NcWriter(
                    path(y),
                    dims={"time": s.stop - s.start, "lat": g.nlat, "lon": g.nlon},
                    coords={
                        "time": time_coord(time[s]),
                        "lat": lat_coord(g.lat[::-1]),
                        "lon": lon_coord(g.lon),
                    },
                    variables={
                        self.name: Var(
                            ("time", "lat", "lon"),
                            "f4",
                            dict(attrs),
                            chunks=(366, ctx.bands.size, g.nlon),
                        )
                    },
                    attrs=ctx.attrs(title),
                    complevel=ctx.complevel,
                )
        except BaseException:
            self.abort()
            raise

    def write_band(
        self, year: int, band: slice, rows: np.ndarray, cols: np.ndarray, values: np.ndarray
    ) -> None:
        """Write ``values (time, point)`` at band-relative ``rows, cols`` of ``band`` (NaN elsewhere)."""
        n_rows = band.stop - band.start
        blk = np.full((values.shape[0], n_rows, self.nlon), np.nan, np.float32)
        blk[:, rows, cols] = values
        # descending latitude: band rows map to reversed file rows
        frows = slice(self.nlat - band.stop, self.nlat - band.start)
        self.writers[year].write(self.name, (slice(None), frows, slice(None)), blk[:, ::-1])

    def close(self) -> None:
        """Move every file into place."""
        for w in self.writers.values():
            w.close()

    def abort(self) -> None:
        """Remove every temporary file."""
        for w in self.writers.values():
            w.abort()
