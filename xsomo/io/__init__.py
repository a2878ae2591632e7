"""Readers: ISMN stations, ERA5-Land, MSWEP/MSWX-style forcing, static inputs, COSMOS stations.

Every reader returns CF-annotated xarray objects with the canonical names and units of
:mod:`xsomo.conventions`; file-format names appear only in this package.
"""

from __future__ import annotations

from xsomo.io.era5land import open_era5land
from xsomo.io.ismn import open_ismn

__all__ = ["open_era5land", "open_ismn"]
