"""GIS outputs: Cloud-Optimized GeoTIFF maps and GeoPackage station metrics.

The public names of :mod:`~xsomo.gis.export` are re-exported here
(``from xsomo import gis; gis.to_cog(...)``).
"""

from __future__ import annotations

from xsomo.gis.export import (
    metrics_to_gpkg,
    period_anomaly,
    select_map,
    to_cog,
    to_time_stack,
    write_style,
)

__all__ = ["metrics_to_gpkg", "period_anomaly", "select_map", "to_cog", "to_time_stack", "write_style"]
