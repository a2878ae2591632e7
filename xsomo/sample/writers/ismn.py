"""ISMN station files of the sample world, in ISMN's "Header + values" layout (``ismn/``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.signal import lfilter

from xsomo.io.atomic import atomic_write_bytes, atomic_write_text
from xsomo.sample import physics as ph
from xsomo.sample import stations as stn
from xsomo.sample.fields import rng_for
from xsomo.sample.writers.common import S_SENSORS, WorldContext, koeppen, zlib_hash

__all__ = ["write_ismn"]


def write_ismn(ctx: WorldContext, bar: Any) -> None:
    """Write ``ismn/``: ISMN's readme files, and per station its sensor files and static variables."""
    root = ctx.layout.ismn
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "Readme.txt", stn.README_ISMN)
    atomic_write_text(root / "ISMN_qualityflags_description.txt", stn.FLAGS_DESCRIPTION)
    time = ctx.time
    for st in ctx.ismn:
        series = ctx.station_series[(st.row, st.col)]
        rng = rng_for(ctx.seed, S_SENSORS, st.row, st.col, zlib_hash(st.station))
        # station-scale representativeness error: slow AR(1) per layer, shared by the sensors
        eps = rng.standard_normal((time.size, 3))
        st_err = lfilter([np.sqrt(1 - 0.98**2)], [1.0, -0.98], eps, axis=0) * 0.012
        folder = root / st.network / st.station
        folder.mkdir(parents=True, exist_ok=True)
        for sensor in st.sensors:
            frame = stn.simulate_sensor(
                rng,
                truth=series["theta"],
                tair=series["tair"],
                time=time,
                sensor=sensor,
                porosity=float(series["porosity"][0]),
                station_error=st_err,
            )
            sensor.file = stn.ismn_filename(st, sensor)
            body = stn.format_ismn_lines(
                frame.index, frame["value"].to_numpy(), frame["flag"].to_numpy()
            )
            atomic_write_bytes(
                folder / sensor.file, stn.ismn_header(st, sensor).encode("ascii") + body
            )
        tex = ctx.world.texture(np.array([st.lat]), np.array([st.lon]))
        tex1 = {k: float(v[0]) for k, v in tex.items()}
        por = ph.soil_parameters(
            np.array([tex1["sand_top"], tex1["sand_sub"]]),
            np.array([tex1["clay_top"], tex1["clay_sub"]]),
        ).porosity
        veg = ctx.world.vegetation(np.array([st.lat]), np.array([st.lon]))
        lc = 70 if veg["forest"][0] > 0.5 else (130 if veg["shortveg"][0] > 0.4 else 150)
        clim = ctx.world.climate(np.array([st.lat]), np.array([st.lon]))
        kg = koeppen(
            float(clim["t_mean"][0]) - 273.15, float(clim["p_mean"][0]), int(clim["region"][0])
        )
        csv = stn.static_variables_csv(tex1, float(por[0]), float(por[1]), lc, kg)
        atomic_write_bytes(
            folder / f"{st.network}_{st.network}_{st.station}_static_variables.csv",
            csv.encode("utf-8"),
        )
        bar.update(1)

