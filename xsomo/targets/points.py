"""Station series as point targets: ``sm(station, layer, time)`` for point-mode training (issue 18).

In point mode (:mod:`xsomo.drivers.points`) the model learns each sensor's own series at
its station's driver point, without scaling to a gridded reference: a sensor of layer
``k`` (its ``layer`` coordinate, as :func:`xsomo.open_ismn` gives) is a target of layer
``k`` only. :func:`xsomo.train_lstm` calls :func:`point_targets` on station targets that
have no ``layer`` dimension.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from xsomo import conventions as cv
from xsomo.exceptions import MissingVariableError

__all__ = ["point_targets"]


def point_targets(stations: xr.Dataset, layers: Sequence[int] | None = None) -> xr.Dataset:
    """``sm(station, time)`` with a ``layer`` per sensor as ``sm(station, layer, time)``.

    Parameters
    ----------
    stations
        Sensors along ``station`` with ``lat``, ``lon`` and ``layer`` coordinates.
    layers
        Layers of the result (default: the sensors' layers).

    Examples
    --------
    >>> st = xr.Dataset({"sm": (("station", "time"), [[0.2, 0.3], [0.1, np.nan]])},
    ...                 coords={"station": ["a", "b"], "lat": ("station", [1.0, 1.0]),
    ...                         "lon": ("station", [2.0, 2.0]), "layer": ("station", [1, 2])})
    >>> t = point_targets(st)
    >>> t["sm"].sel(layer=1).values.astype(float).round(3).tolist()
    [[0.2, 0.3], [nan, nan]]
    """
    if cv.SM not in stations:
        raise MissingVariableError(f"targets have no {cv.SM!r} variable; have {sorted(map(str, stations.data_vars))}")
    sm = stations[cv.SM]
    if cv.LAYER in sm.dims:
        return stations
    if cv.LAYER not in stations.coords:
        raise MissingVariableError(
            "station targets need a 'layer' coordinate per sensor (xsomo.open_ismn gives one), or a 'layer' dimension"
        )
    dim = next(d for d in sm.dims if d != cv.TIME)
    own = np.asarray(stations[cv.LAYER].values, int).reshape(-1)
    layers = sorted(set(own.tolist())) if layers is None else [int(v) for v in layers]
    values = sm.transpose(dim, cv.TIME).values.astype("float32")
    out = np.full((values.shape[0], len(layers), values.shape[1]), np.nan, "float32")
    for k, lay in enumerate(layers):
        out[own == lay, k] = values[own == lay]
    keep = {c: stations[c] for c in (cv.LAT, cv.LON, "network", "station_name", "sensor") if c in stations.coords}
    return xr.Dataset(
        {cv.SM: ((dim, cv.LAYER, cv.TIME), out, dict(sm.attrs))},
        coords={dim: stations[dim].values, cv.TIME: stations[cv.TIME].values, **cv.layer_coords(layers), **keep},
        attrs=dict(stations.attrs),
    )
