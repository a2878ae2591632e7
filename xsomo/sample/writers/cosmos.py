"""COSMOS-style cosmic-ray neutron stations of the sample world (``cosmos/``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xsomo.io.atomic import atomic_write_text
from xsomo.sample import stations as stn
from xsomo.sample.fields import rng_for
from xsomo.sample.writers.common import S_COSMOS, WorldContext

__all__ = ["frame_csv", "write_cosmos"]


def frame_csv(frame: pd.DataFrame, float_format: str = "%.5g") -> str:
    """``frame.to_csv(index=False, float_format=float_format, lineterminator="\\n")``, 20x faster.

    pandas formats every float through a Python callback with a missing-value check;
    here each float column is formatted in one list comprehension (the same
    ``float_format % value`` text, empty for NaN) before pandas writes the strings.
    """
    out = {}
    for name, col in frame.items():
        values = col.to_numpy()
        if values.dtype.kind == "f":
            text = np.array([float_format % v for v in values.tolist()], dtype=object)
            text[np.isnan(values)] = ""
            out[name] = text
        else:
            out[name] = values
    return pd.DataFrame(out, columns=frame.columns).to_csv(index=False, lineterminator="\n")


def write_cosmos(ctx: WorldContext) -> None:
    """Write ``cosmos/``: one CRNS file per station and the ``stations.csv`` catalogue."""
    root = ctx.layout.cosmos
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for c in ctx.cosmos:
        series = ctx.station_series[(c["row"], c["col"])]
        rng = rng_for(ctx.seed, S_COSMOS, c["row"], c["col"])
        start, end = stn.record(rng, ctx.time, ctx.cfg.cosmos_years)
        frame, depth = stn.simulate_cosmos(
            rng,
            truth=series["theta"],
            swe=series["swe"],
            time=ctx.time,
            start=start,
            end=end,
            n0=c["n0"],
            bulk_density=c["bulk_density"],
            elevation=c["elevation"],
        )
        c["start"], c["end"] = str(start.date()), str(end.date())
        c["footprint_depth_m"] = round(depth, 4)
        c["file"] = f"{c['station_id']}-CRNS.csv"
        atomic_write_text(root / c["file"], frame_csv(frame))
        rows.append(
            {
                "station_id": c["station_id"],
                "station": c["station"],
                "country": "Synthetica" if c["region"] == 2 else "Synthetic States",
                "detector_type": "CRS2000/B",
                "latitude": c["lat"],
                "longitude": c["lon"],
                "elevation_m": round(c["elevation"], 1),
                "processing_status": "full",
                "N0_cph": c["n0"],
                "porosity": round(float(series["porosity"][0]), 3),
                "raw_rows": len(frame),
                "datetime_column": "DateTime_utc",
                "datetime_format": "%Y-%m-%d %H:%M:%S%z",
                "epithermal_column": "NeutronCount_Epithermal_Cum1h",
                "thermal_column": "",
                "pressure_columns": "AirPressure",
                "temperature_columns": "AirTemperature",
                "relative_humidity_columns": "AirHumidity_Relative",
                "absolute_humidity_column": "",
                "wizard_detected_datetime": "DateTime_utc",
                "notes": "synthetic (xsomo sample world)",
            }
        )
    cat = pd.DataFrame(rows, columns=stn.COSMOS_CATALOGUE_COLUMNS)
    atomic_write_text(ctx.layout.cosmos_catalogue, cat.to_csv(index=False, lineterminator="\n"))
