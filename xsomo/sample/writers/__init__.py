"""One writer per file format of the sample world, mirroring the readers of :mod:`xsomo.io`.

:mod:`~xsomo.sample.writers.common` holds the world's shared state (grid, land, stations,
row bands) and the soil-water runs several formats need; each other module writes one
format: :mod:`~.static` (land mask, soil, DEM, land cover), :mod:`~.truth` (``truth.nc``
with the MSWEP/MSWX-style forcing computed in the same pass, and ``world.json``),
:mod:`~.msw` (MSWEP/MSWX yearly files), :mod:`~.era5land` (daily and hourly),
:mod:`~.products`, :mod:`~.ismn` and :mod:`~.cosmos`. Paths come from
:class:`xsomo.io.world.WorldLayout`, netCDF files are written by
:class:`xsomo.io.netcdf.NcWriter`.
"""
