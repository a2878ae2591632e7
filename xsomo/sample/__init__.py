"""The synthetic sample world: a deterministic, physically based world written in real file formats.

``generate(preset, seed=..., out=...)`` writes a world folder (ISMN station folders,
ERA5-Land-style netCDF, MSWEP/MSWX-style forcing, static fine grids, COSMOS-style
stations, stand-in gridded products, and the truth with a ``world.json`` manifest),
laid out as in ``docs/internals.md`` section 1. ``run_water_balance`` runs the
world's three-layer soil water balance on any labelled forcing.
"""

from __future__ import annotations

from xsomo.sample.config import PRESETS, REGIONS, WorldConfig, make_config
from xsomo.sample.physics import run_water_balance, soil_parameters
from xsomo.sample.world import PRODUCTS, generate, summary

__all__ = [
    "PRESETS",
    "PRODUCTS",
    "REGIONS",
    "WorldConfig",
    "generate",
    "make_config",
    "run_water_balance",
    "soil_parameters",
    "summary",
]
