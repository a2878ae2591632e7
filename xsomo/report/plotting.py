"""Figures of the report (matplotlib, Agg backend; every function returns a Figure).

Each function takes labelled data (xarray / pandas) and draws one figure of the
paper's kind: box plots of station and intercomparison metrics (Fig. 4), summer-mean
and anomaly maps and regional anomaly series (Fig. 5, S6), lookback-permutation
curves (Fig. 2), transfer scores (Fig. 3). :func:`save` writes a PNG atomically.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "anomaly_maps",
    "lookback_curves",
    "memory_curves",
    "metric_boxplots",
    "regional_series",
    "save",
    "station_map",
    "station_series",
    "summer_maps",
    "transfer_plot",
]

_UMASK = os.umask(0)
os.umask(_UMASK)
#: Permissions of written files (mkstemp makes 0600; outputs are meant to be shared).
_FILE_MODE = 0o666 & ~_UMASK
_LAYER_TITLES = {0: "footprint mix", 1: "layer 1 (0-10 cm)", 2: "layer 2 (10-30 cm)", 3: "layer 3 (30-50 cm)"}
_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]


def _figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] = (4.0, 3.2), **kw: Any) -> tuple[Figure, np.ndarray]:
    from matplotlib.figure import Figure  # Agg canvas by default: no display needed

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 110) -> pathlib.Path:
    """Write ``fig`` as PNG via a temporary file and ``os.replace``."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _layer_title(layer: Any) -> str:
    return _LAYER_TITLES.get(int(layer), f"layer {layer}")


def metric_boxplots(
    metrics: xr.Dataset,
    names: Sequence[str] = ("pearson_r", "urmsd"),
    *,
    sample_dim: str = cv.STATION,
    layers: Sequence[int] | None = None,
    title: str = "",
) -> Figure:
    """Box plots of metrics per ``product`` (one box each) and layer (one panel each), rows = metrics."""
    layers = list(metrics[cv.LAYER].values) if layers is None else list(layers)
    products = list(metrics["product"].values)
    fig, axes = _figure(len(names), len(layers), size=(max(2.2, 0.7 * len(products) + 1.0), 2.8), sharey="row")
    for a, name in enumerate(names):
        for b, lay in enumerate(layers):
            ax = axes[a, b]
            data = []
            for p in products:
                v = np.asarray(metrics[name].sel(product=p, layer=lay).values, float).ravel()
                data.append(v[np.isfinite(v)])
            parts = ax.boxplot(data, patch_artist=True, widths=0.6, showfliers=True)
            for k, patch in enumerate(parts["boxes"]):
                patch.set_facecolor(_COLORS[k % len(_COLORS)])
                patch.set_alpha(0.7)
            ax.set_xticks(range(1, len(products) + 1), [str(p).replace("_like", "") for p in products], rotation=35, ha="right", fontsize=8)
            for k, v in enumerate(data):
                ax.text(k + 1, 1.0, f"n={v.size}", transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=6)
            if a == 0:
                ax.set_title(_layer_title(lay), fontsize=9, pad=10)
            if b == 0:
                ax.set_ylabel({"pearson_r": "r", "urmsd": "uRMSD (m³ m⁻³)"}.get(name, name))
            ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _map(ax: Any, da: xr.DataArray, **kw: Any) -> Any:
    return ax.pcolormesh(da[cv.LON].values, da[cv.LAT].values, np.asarray(da.transpose(cv.LAT, cv.LON).values, float), shading="nearest", **kw)


def summer_maps(maps: Mapping[str, xr.DataArray], *, layer: int = 1, title: str = "") -> Figure:
    """Side-by-side maps of summer (JJA) mean soil moisture per dataset (``lat``, ``lon``[, ``layer``])."""
    names = list(maps)
    sel = [maps[n].sel({cv.LAYER: layer}) if cv.LAYER in maps[n].dims else maps[n] for n in names]
    vals = np.concatenate([np.asarray(s.values, float).ravel() for s in sel])
    vals = vals[np.isfinite(vals)]
    vmin, vmax = (np.percentile(vals, [2, 98]) if vals.size else (0.0, 0.5))
    fig, axes = _figure(1, len(names), size=(3.2, 3.4))
    mesh = None
    for k, (n, s) in enumerate(zip(names, sel, strict=True)):
        ax = axes[0, k]
        mesh = _map(ax, s, vmin=vmin, vmax=vmax, cmap="YlGnBu")
        ax.set_title(str(n).replace("_like", ""), fontsize=9)
        ax.set_aspect(1 / np.cos(np.deg2rad(float(s[cv.LAT].mean()))))
        ax.tick_params(labelsize=7)
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[0, :].tolist(), shrink=0.8, label="soil moisture (m³ m⁻³)")
    fig.suptitle(title or f"summer (JJA) mean, {_layer_title(layer)}", fontsize=10)
    return fig


def anomaly_maps(z: Mapping[str, xr.DataArray] | xr.DataArray, *, title: str = "", vlim: float = 2.0) -> Figure:
    """Maps of normalised anomalies (z-scores): one panel per layer (DataArray) or per dataset (mapping)."""
    if isinstance(z, xr.DataArray):
        panels = {_layer_title(lay): z.sel({cv.LAYER: lay}) for lay in z[cv.LAYER].values} if cv.LAYER in z.dims else {"": z}
    else:
        panels = dict(z)
    fig, axes = _figure(1, len(panels), size=(3.2, 3.4))
    mesh = None
    for k, (n, s) in enumerate(panels.items()):
        ax = axes[0, k]
        mesh = _map(ax, s, vmin=-vlim, vmax=vlim, cmap="BrBG")
        ax.set_title(str(n).replace("_like", ""), fontsize=9)
        ax.set_aspect(1 / np.cos(np.deg2rad(float(s[cv.LAT].mean()))))
        ax.tick_params(labelsize=7)
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[0, :].tolist(), shrink=0.8, label="normalised anomaly (z-score)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def regional_series(series: xr.DataArray, *, reference: xr.DataArray | None = None, title: str = "",
                    labels: tuple[str, str] = ("xsomo", "truth")) -> Figure:
    """Seasonal anomaly series ``(region, layer, time)``: one panel per region, one colour per layer.

    ``reference`` (same dims) is drawn dashed in the same colours.
    """
    regions = list(series["region"].values)
    fig, axes = _figure(len(regions), 1, size=(8.0, 2.4), sharex=True)
    for k, reg in enumerate(regions):
        ax = axes[k, 0]
        for j, lay in enumerate(series[cv.LAYER].values):
            s = series.sel(region=reg, layer=lay)
            ax.plot(pd.DatetimeIndex(s[cv.TIME].values), s.values, color=_COLORS[j], lw=1.4, label=f"{labels[0]} {_layer_title(lay)}")
            if reference is not None:
                r = reference.sel(region=reg, layer=lay)
                ax.plot(pd.DatetimeIndex(r[cv.TIME].values), r.values, color=_COLORS[j], lw=1.0, ls="--", label=f"{labels[1]} {_layer_title(lay)}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel("z-score")
        ax.set_title(str(reg), fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=6, ncols=3, loc="lower left")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def station_map(background: xr.DataArray, metrics: xr.Dataset, *, layer: int = 0, metric: str = "pearson_r", title: str = "") -> Figure:
    """Stations coloured by a metric over a background map; training-cell stations drawn as squares."""
    fig, axes = _figure(1, 1, size=(5.0, 4.4))
    ax = axes[0, 0]
    mesh = _map(ax, background, cmap="Greys", alpha=0.6)
    fig.colorbar(mesh, ax=ax, shrink=0.7, label=background.attrs.get("long_name", "background"))
    m = metrics.sel({cv.LAYER: layer})
    train = m["training_cell"].values.astype(bool) if "training_cell" in m.coords else np.zeros(m.sizes[cv.STATION], bool)
    for mask, marker, label in ((~train, "o", "independent"), (train, "s", "training cell")):
        if mask.any():
            sc = ax.scatter(m[cv.LON].values[mask], m[cv.LAT].values[mask], c=m[metric].values[mask], vmin=0, vmax=1,
                            cmap="viridis", marker=marker, edgecolor="k", s=60, label=label)
    if train.any() or (~train).any():
        fig.colorbar(sc, ax=ax, shrink=0.7, label=metric)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_aspect(1 / np.cos(np.deg2rad(float(background[cv.LAT].mean()))))
    ax.set_title(title or f"{metric} at stations ({_layer_title(layer)})", fontsize=10)
    return fig


def station_series(obs: xr.DataArray, sims: Mapping[str, xr.DataArray], *, title: str = "") -> Figure:
    """Time series at a few stations: observed (black) and each dataset; ``(station, time)`` each."""
    stations = list(obs[cv.STATION].values)
    fig, axes = _figure(len(stations), 1, size=(8.0, 1.9), sharex=False)
    for k, st in enumerate(stations):
        ax = axes[k, 0]
        o = obs.sel({cv.STATION: st})
        valid = o.dropna(cv.TIME)
        if valid.sizes[cv.TIME]:
            t0, t1 = valid[cv.TIME].values[0], valid[cv.TIME].values[-1]
        else:
            t0, t1 = obs[cv.TIME].values[0], obs[cv.TIME].values[-1]
        o = o.sel({cv.TIME: slice(t0, t1)})  # gaps stay NaN and break the line
        for j, (name, s) in enumerate(sims.items()):
            ss = s.sel({cv.STATION: st}).sel({cv.TIME: slice(t0, t1)})
            ax.plot(pd.DatetimeIndex(ss[cv.TIME].values), ss.values, lw=1.0, color=_COLORS[j % len(_COLORS)], label=str(name).replace("_like", ""))
        ax.plot(pd.DatetimeIndex(o[cv.TIME].values), o.values, color="k", lw=1.0, label="station")
        ax.set_title(str(st), fontsize=8, loc="left")
        ax.set_ylabel("m³ m⁻³", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=6, ncols=len(sims) + 1, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def lookback_curves(perm: xr.Dataset, *, title: str = "") -> Figure:
    """NSE and r against the number of unpermuted days, one line per layer (log x axis)."""
    fig, axes = _figure(1, 2, size=(4.2, 3.2))
    for a, name in enumerate(("nse", "pearson_r")):
        ax = axes[0, a]
        for j, lay in enumerate(perm[cv.LAYER].values):
            s = perm[name].sel(layer=lay)
            ax.plot(perm["n_kept"].values, s.values, marker="o", color=_COLORS[j], label=_layer_title(lay))
        ax.set_xscale("log")
        ax.set_xlabel("days kept in order at the window end")
        ax.set_ylabel({"nse": "NSE", "pearson_r": "r"}[name])
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title or "lookback permutation", fontsize=10)
    return fig


def memory_curves(scales: xr.Dataset, *, title: str = "") -> Figure:
    """Median autocorrelation of daily anomalies against lag, one line per layer, with e-folding times."""
    fig, axes = _figure(1, 1, size=(5.0, 3.2))
    ax = axes[0, 0]
    for j, lay in enumerate(scales[cv.LAYER].values):
        ax.plot(scales["lag"].values, scales["acf"].sel(layer=lay).values, color=_COLORS[j],
                label=f"{_layer_title(lay)}: e-folding {int(scales['efold_days'].sel(layer=lay))} d")
    ax.axhline(np.exp(-1), color="k", lw=0.6, ls="--")
    ax.set_xlabel("lag (days)")
    ax.set_ylabel("autocorrelation of anomalies")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(0, float(scales["lag"].max()))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title or "memory of the truth", fontsize=10)
    return fig


def transfer_plot(result: xr.Dataset, *, title: str = "") -> Figure:
    """Transfer experiment: r per layer and group (box plots) and r against feature-space novelty."""
    groups = list(pd.unique(result["group"].values))
    layers = list(result[cv.LAYER].values)
    fig, axes = _figure(1, 2, size=(4.4, 3.4))
    ax = axes[0, 0]
    width = 0.8 / max(len(groups), 1)
    for g, grp in enumerate(groups):
        mask = result["group"].values == grp
        data = []
        for lay in layers:
            v = result["pearson_r"].sel(layer=lay).values[mask]
            data.append(v[np.isfinite(v)])
        pos = np.arange(len(layers)) + (g - (len(groups) - 1) / 2) * width
        parts = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=False)
        for patch in parts["boxes"]:
            patch.set_facecolor(_COLORS[g % len(_COLORS)])
            patch.set_alpha(0.7)
        ax.plot([], [], color=_COLORS[g % len(_COLORS)], lw=6, alpha=0.7, label=str(grp))
    ax.set_xticks(range(len(layers)), [f"layer {lay}" for lay in layers])
    ax.set_ylabel("r against the truth")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    ax = axes[0, 1]
    for g, grp in enumerate(groups):
        mask = result["group"].values == grp
        out = result["outside_envelope"].values.astype(bool)
        r = result["pearson_r"].sel(layer=layers[-1]).values
        nov = result["novelty"].values
        ax.scatter(nov[mask & ~out], r[mask & ~out], s=12, color=_COLORS[g % len(_COLORS)], label=f"{grp} inside")
        ax.scatter(nov[mask & out], r[mask & out], s=14, marker="x", color=_COLORS[g % len(_COLORS)], label=f"{grp} outside")
    ax.set_xlabel("distance to the nearest training cell\n(standardised static features)")
    ax.set_ylabel(f"r, layer {layers[-1]}")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    fig.suptitle(title or "transfer: trained on one region, scored on another", fontsize=10)
    return fig
