"""Figures of the report (matplotlib, Agg backend; every function returns a Figure).

Each function takes labelled data (xarray / pandas) and draws one figure of the
paper's kind: box plots of station and intercomparison metrics (Fig. 4), summer-mean
and anomaly maps and regional anomaly series (Fig. 5, S6), lookback-permutation
curves (Fig. 2), transfer scores (Fig. 3), input importance (O & Orth 2021 Fig. 4). :func:`save` writes a PNG (300 dpi by
default) and, when asked, PDF/SVG vector copies, each atomically.

Maps carry °E/°N tick labels, water (NaN) in light blue, colour ranges from the data
(2nd-98th percentile; diverging maps symmetric about 0).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.exceptions import XsomoValueError
from xsomo.io.atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "VECTOR_FORMATS",
    "anomaly_maps",
    "importance_bars",
    "layer_title",
    "lookback_curves",
    "memory_curves",
    "metric_boxplots",
    "metric_maps",
    "regional_series",
    "save",
    "station_map",
    "station_series",
    "summer_maps",
    "transfer_plot",
    "vector_formats",
]

#: Resolution of the PNG figures (print quality).
DPI = 300
#: Vector formats :func:`save` can add beside the PNG.
VECTOR_FORMATS = ("pdf", "svg")
#: Colour of water / cells without data on maps.
WATER = "#d4e6f1"
_LAYER_TITLES = {0: "footprint mix", 1: "layer 1 (0-10 cm)", 2: "layer 2 (10-30 cm)", 3: "layer 3 (30-50 cm)"}
_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]


def _figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] = (4.0, 3.2), **kw: Any) -> tuple[Figure, np.ndarray]:
    from matplotlib.figure import Figure  # Agg canvas by default: no display needed

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def vector_formats(formats: Sequence[str] | str | None) -> tuple[str, ...]:
    """Checked, lower-case vector formats (``"pdf"``, ``"svg"``; a comma-separated string works)."""
    if not formats:
        return ()
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    out = tuple(dict.fromkeys(str(f).strip().lower().lstrip(".") for f in items if str(f).strip()))
    bad = [f for f in out if f not in VECTOR_FORMATS]
    if bad:
        raise XsomoValueError(f"vector formats {bad} unknown; use {', '.join(VECTOR_FORMATS)}")
    return out


def save(
    fig: Figure, path: str | os.PathLike[str], *, dpi: int = DPI, vector: Sequence[str] = ()
) -> pathlib.Path:
    """Write ``fig`` as PNG at ``dpi`` and in each ``vector`` format (same name, other suffix), atomically."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for fmt in vector_formats(vector):
        with atomic_path(path.with_suffix(f".{fmt}")) as tmp:
            fig.savefig(tmp, format=fmt)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def layer_title(layer: Any) -> str:
    """``"layer 1 (0-10 cm)"``, ``"footprint mix"`` for layer 0."""
    return _LAYER_TITLES.get(int(layer), f"layer {layer}")


def _degrees(value: float, pos: Any = None, *, axis: str = "lon") -> str:
    hemi = ("E", "W") if axis == "lon" else ("N", "S")
    v = float(value)
    text = f"{abs(v):.4g}°"
    return text + (hemi[0] if v > 0 else hemi[1] if v < 0 else "")


def _geo_axes(ax: Any, lat: np.ndarray) -> None:
    """°E/°N tick labels, an equal-area-looking aspect and water-coloured background."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, p: _degrees(v, p, axis="lon")))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, p: _degrees(v, p, axis="lat")))
    ax.xaxis.set_major_locator(MaxNLocator(3))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.set_facecolor(WATER)
    ax.set_aspect(1 / np.cos(np.deg2rad(float(np.nanmean(lat)))))
    ax.tick_params(labelsize=7)


def data_range(values: Any, *, symmetric: bool = False, default: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """Colour range from the data: 2nd-98th percentile (symmetric about 0 if asked); ``default`` if no data."""
    v = np.concatenate([np.asarray(getattr(x, "values", x), float).ravel() for x in values]) if isinstance(values, list) else np.asarray(getattr(values, "values", values), float).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return default
    if symmetric:
        m = float(np.percentile(np.abs(v), 98)) or 1.0
        return -m, m
    lo, hi = (float(x) for x in np.percentile(v, [2, 98]))
    if hi <= lo:
        lo, hi = lo - 0.01, hi + 0.01
    return lo, hi


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
    products = [
        p for p in metrics["product"].values
        if any(bool(metrics[n].sel(product=p).notnull().any()) for n in names)
    ]
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
                ax.set_title(layer_title(lay), fontsize=9, pad=10)
            if b == 0:
                ax.set_ylabel({"pearson_r": "r", "urmsd": "uRMSD (m³ m⁻³)"}.get(name, name))
            ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _map(ax: Any, da: xr.DataArray, **kw: Any) -> Any:
    mesh = ax.pcolormesh(
        da[cv.LON].values,
        da[cv.LAT].values,
        np.asarray(da.transpose(cv.LAT, cv.LON).values, float),
        shading="nearest",
        **kw,
    )
    _geo_axes(ax, da[cv.LAT].values)
    return mesh


def _panels(maps: Mapping[str, xr.DataArray]) -> dict[str, xr.DataArray]:
    """The maps that hold data (a product that covers nothing gets no empty panel)."""
    return {n: m for n, m in maps.items() if bool(np.isfinite(np.asarray(m.values, float)).any())}


def _map_row(
    panels: Mapping[str, xr.DataArray], *, cmap: str, vmin: float, vmax: float, label: str, title: str
) -> Figure:
    panels = _panels(panels) or dict(panels)
    fig, axes = _figure(1, max(len(panels), 1), size=(3.2, 3.4))
    mesh = None
    for k, (n, s) in enumerate(panels.items()):
        ax = axes[0, k]
        mesh = _map(ax, s, vmin=vmin, vmax=vmax, cmap=cmap)
        ax.set_title(str(n).replace("_like", ""), fontsize=9)
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[0, :].tolist(), shrink=0.8, label=label)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def summer_maps(maps: Mapping[str, xr.DataArray], *, layer: int = 1, title: str = "") -> Figure:
    """Side-by-side maps of summer (JJA) mean soil moisture per dataset (``lat``, ``lon``[, ``layer``]).

    One colour range from all datasets' values; datasets without data are left out.
    """
    sel = {n: (m.sel({cv.LAYER: layer}) if cv.LAYER in m.dims else m) for n, m in maps.items()}
    vmin, vmax = data_range(list(sel.values()), default=(0.0, 0.5))
    return _map_row(
        sel,
        cmap="YlGnBu",
        vmin=vmin,
        vmax=vmax,
        label="soil moisture (m³ m⁻³)",
        title=title or f"summer (JJA) mean, {layer_title(layer)}",
    )


def anomaly_maps(z: Mapping[str, xr.DataArray] | xr.DataArray, *, title: str = "", vlim: float | None = None) -> Figure:
    """Maps of normalised anomalies (z-scores): one panel per layer (DataArray) or per dataset (mapping).

    The diverging colour range is symmetric about 0: ``±vlim``, by default from the data.
    """
    if isinstance(z, xr.DataArray):
        panels = {layer_title(lay): z.sel({cv.LAYER: lay}) for lay in z[cv.LAYER].values} if cv.LAYER in z.dims else {"": z}
    else:
        panels = dict(z)
    lim = float(vlim) if vlim is not None else data_range(list(panels.values()), symmetric=True, default=(-2.0, 2.0))[1]
    return _map_row(panels, cmap="BrBG", vmin=-lim, vmax=lim, label="normalised anomaly (z-score)", title=title)


def metric_maps(maps: Mapping[str, xr.DataArray], *, label: str = "", title: str = "", cmap: str = "viridis") -> Figure:
    """Maps of a skill metric (one panel each), one colour range from the data of all panels."""
    vmin, vmax = data_range(list(maps.values()))
    return _map_row(maps, cmap=cmap, vmin=vmin, vmax=vmax, label=label, title=title)


def regional_series(series: xr.DataArray, *, reference: xr.DataArray | None = None, title: str = "",
                    labels: tuple[str, str] = ("xsomo", "truth")) -> Figure:
    """Seasonal anomaly series ``(region, layer, time)``: one panel per region, one colour per layer.

    ``reference`` (same dims) is drawn dashed in the same colours. The legend sits
    below the panels, never over the data.
    """
    regions = list(series["region"].values)
    fig, axes = _figure(len(regions), 1, size=(8.0, 2.4), sharex=True)
    for k, reg in enumerate(regions):
        ax = axes[k, 0]
        for j, lay in enumerate(series[cv.LAYER].values):
            s = series.sel(region=reg, layer=lay)
            ax.plot(pd.DatetimeIndex(s[cv.TIME].values), s.values, color=_COLORS[j], lw=1.4, label=f"{labels[0]} {layer_title(lay)}")
            if reference is not None:
                r = reference.sel(region=reg, layer=lay)
                ax.plot(pd.DatetimeIndex(r[cv.TIME].values), r.values, color=_COLORS[j], lw=1.0, ls="--", label=f"{labels[1]} {layer_title(lay)}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel("z-score")
        ax.set_title(str(reg), fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=7, ncols=3, loc="outside lower center")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def station_map(background: xr.DataArray, metrics: xr.Dataset, *, layer: int = 0, metric: str = "pearson_r", title: str = "") -> Figure:
    """Stations coloured by a metric over a background map; training-cell stations drawn as squares.

    The metric's colour range comes from the stations' values; water is light blue,
    the background grey scale starts above white.
    """
    from matplotlib.colors import LinearSegmentedColormap

    fig, axes = _figure(1, 1, size=(5.0, 4.4))
    ax = axes[0, 0]
    greys = LinearSegmentedColormap.from_list("land_greys", ["#e8e8e8", "#5a5a5a"])
    bmin, bmax = data_range(background, default=(0.0, 0.5))
    mesh = _map(ax, background, cmap=greys, vmin=bmin, vmax=bmax)
    fig.colorbar(mesh, ax=ax, shrink=0.7, label=background.attrs.get("long_name", "background"))
    m = metrics.sel({cv.LAYER: layer})
    train = m["training_cell"].values.astype(bool) if "training_cell" in m.coords else np.zeros(m.sizes[cv.STATION], bool)
    vals = np.asarray(m[metric].values, float)
    vmin, vmax = data_range(vals)
    sc = None
    for mask, marker, label in ((~train, "o", "independent"), (train, "s", "training cell")):
        if mask.any():
            sc = ax.scatter(m[cv.LON].values[mask], m[cv.LAT].values[mask], c=vals[mask], vmin=vmin, vmax=vmax,
                            cmap="viridis", marker=marker, edgecolor="k", s=60, label=label)
    if sc is not None:
        fig.colorbar(sc, ax=ax, shrink=0.7, label=metric)
        fig.legend(fontsize=7, loc="outside lower center", ncols=2)
    ax.set_title(title or f"{metric} at stations ({layer_title(layer)})", fontsize=10)
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
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=7, ncols=len(sims) + 1, loc="outside lower center")
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
            ax.plot(perm["n_kept"].values, s.values, marker="o", color=_COLORS[j], label=layer_title(lay))
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
                label=f"{layer_title(lay)}: e-folding {int(scales['efold_days'].sel(layer=lay))} d")
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


#: Bar colours of the importance figure: dynamic (time-varying) and static inputs.
KIND_COLORS = {"dynamic": "#1f78b4", "static": "#e6862a"}
_DROP_LABELS = {"r_drop": "drop of median r", "nse_drop": "drop of median NSE"}


def importance_bars(result: xr.Dataset, *, metrics: Sequence[str] = ("r_drop", "nse_drop"), title: str = "") -> Figure:
    """Permutation importance (O & Orth 2021, Fig. 4 style): one panel per metric (rows) and layer (columns).

    A horizontal bar per input: the median over the repeats of the drop of the median r
    (or NSE) when that input is shuffled, whiskers spanning the repeats (min to max);
    dynamic inputs in blue above the dashed line, static inputs in orange below it. The
    numbers are :func:`xsomo.evaluation.importance.importance_table`'s; each panel's
    title gives the intact score.

    Parameters
    ----------
    result
        The Dataset of :func:`xsomo.evaluation.importance.input_importance`.
    metrics
        ``"r_drop"``, ``"nse_drop"`` or both (the rows).
    title
        Figure title (default: what was shuffled).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from xsomo.evaluation.importance import importance_table

    bad = [m for m in metrics if m not in _DROP_LABELS]
    if bad or not metrics:
        raise XsomoValueError(f"metrics={list(metrics)}: choose from {list(_DROP_LABELS)}")
    tab = importance_table(result)
    layers = list(dict.fromkeys(tab[cv.LAYER]))
    names = list(dict.fromkeys(tab["input"]))
    # dynamic inputs first (top), then static ones, each in the result's order
    kinds = dict(zip(tab["input"], tab["kind"], strict=False))
    order = [n for n in names if kinds[n] == "dynamic"] + [n for n in names if kinds[n] != "dynamic"]
    n_dyn = sum(kinds[n] == "dynamic" for n in order)
    y = np.arange(len(order))[::-1]  # first input at the top
    fig, axes = _figure(len(metrics), len(layers), size=(3.0, 0.9 + 0.24 * len(order)), sharey=True, sharex="row")
    for a, m in enumerate(metrics):
        for b, lay in enumerate(layers):
            ax = axes[a, b]
            t = tab[tab[cv.LAYER] == lay].set_index("input").loc[order]
            med = t[m].to_numpy(float)
            lo, hi = t[f"{m}_min"].to_numpy(float), t[f"{m}_max"].to_numpy(float)
            colors = [KIND_COLORS.get(k, "#999999") for k in t["kind"]]
            ax.barh(y, med, height=0.7, color=colors, xerr=np.vstack([med - lo, hi - med]),
                    error_kw={"ecolor": "k", "elinewidth": 0.8, "capsize": 2}, label=f"{m} layer {int(lay)}")
            ax.axvline(0, color="k", lw=0.6)
            if 0 < n_dyn < len(order):
                ax.axhline(y[n_dyn - 1] - 0.5, color="0.4", lw=0.6, ls="--")
            ax.grid(axis="x", alpha=0.3)
            ax.tick_params(labelsize=7)
            intact = "r" if m == "r_drop" else "nse"
            ax.set_title(f"{layer_title(lay)}\nintact median {'r' if m == 'r_drop' else 'NSE'} {float(t[intact].iloc[0]):.2f}", fontsize=8)
            ax.set_xlabel(_DROP_LABELS[m], fontsize=8)
    axes[0, 0].set_yticks(y, order)
    from matplotlib.patches import Patch

    handles = [Patch(color=KIND_COLORS[k], label=f"{k} input (shuffled across {'time' if k == 'dynamic' else 'cells'})") for k in ("dynamic", "static")]
    fig.legend(handles=handles, fontsize=7, ncols=2, loc="outside lower center")
    reps = int(result.sizes.get("repeat", 0))
    fig.suptitle(title or f"input importance: permutation, median and range over {reps} shuffles", fontsize=10)
    return fig
