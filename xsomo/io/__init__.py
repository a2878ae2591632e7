"""Readers: ISMN stations, ERA5-Land (netCDF, GRIB), MSWEP/MSWX forcing, static inputs
(sample-world netCDF, DEM tiles, land-cover classes, SoilGrids), COSMOS stations.

Every reader returns CF-annotated xarray objects with the canonical names and units of
:mod:`xsomo.conventions`; file-format names appear only in this package.
"""

from __future__ import annotations

from xsomo.io.cosmos import open_cosmos
from xsomo.io.era5land import open_era5land
from xsomo.io.gridded import open_gridded, open_mswep, open_mswx, open_static
from xsomo.io.ismn import read_ismn
from xsomo.io.statics import landcover_fractions, open_dem, open_landcover, open_soilgrids

__all__ = [
    "landcover_fractions",
    "open_cosmos",
    "open_dem",
    "open_era5land",
    "open_gridded",
    "open_landcover",
    "open_mswep",
    "open_mswx",
    "open_soilgrids",
    "open_static",
    "read_ismn",
]
