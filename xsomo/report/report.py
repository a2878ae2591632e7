"""The evaluation report of a prediction on a sample world: CSV tables, figures, an index page.

:func:`write_report` gathers what steps 5-6 of the method produce — skill at the
independent COSMOS-like stations, the intercomparison with the stand-in products
(paper Fig. 4), summer-mean and anomaly maps and regional anomaly series (Fig. 5,
S6), the memory of the truth and, when given, the lookback-permutation and transfer
experiments (Figs. 2, 3) and the permutation importance of the inputs (O & Orth 2021,
Fig. 4) — into one folder::

    out/index.md, out/index.html      the page (Markdown and HTML, same content)
    out/tables/*.csv                   every number on the page
    out/figures/*.png                  the figures (300 dpi; also PDF/SVG with ``vector=``)

Each section of the page is one function (``section_*``) of the inputs gathered by
:func:`load_inputs`. Every number on the page is computed here from the files; nothing
is typed in. Every file is written atomically (:mod:`xsomo.io.atomic`).
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import logging
import os
import pathlib
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo import evaluation
from xsomo.evaluation import intercomparison
from xsomo.evaluation.arrays import open_prediction
from xsomo.exceptions import DataFormatError, XsomoValueError
from xsomo.io.atomic import atomic_write_text
from xsomo.io.world import WorldLayout, is_world, open_truth, read_manifest
from xsomo.report import plotting
from xsomo.runtime import user_stacklevel

if TYPE_CHECKING:
    from xsomo.model import TrainedModel

__all__ = [
    "Report",
    "ReportInputs",
    "load_inputs",
    "open_prediction",
    "quality_bar",
    "section_anomalies",
    "section_importance",
    "section_intercomparison",
    "section_memory",
    "section_overview",
    "section_stations",
    "section_transfer",
    "section_truth",
    "write_report",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


@dataclass
class Report:
    """Sections of the page being written: ``(title, [blocks])``, blocks are Markdown strings.

    ``dpi`` is the figures' resolution; ``vector`` the extra vector formats written
    beside each PNG (``("pdf",)``, ``("svg",)``).
    """

    out: pathlib.Path
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    tables: dict[str, pathlib.Path] = field(default_factory=dict)
    figures: dict[str, pathlib.Path] = field(default_factory=dict)
    dpi: int = plotting.DPI
    vector: tuple[str, ...] = ()

    def section(self, title: str) -> list[str]:
        blocks: list[str] = []
        self.sections.append((title, blocks))
        return blocks

    def table(self, name: str, df: pd.DataFrame, *, index: bool = False) -> pathlib.Path:
        path = self.out / "tables" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, df.to_csv(index=index, float_format="%.4g"))
        self.tables[name] = path
        return path

    def figure(self, name: str, fig: Any) -> pathlib.Path:
        path = plotting.save(fig, self.out / "figures" / f"{name}.png", dpi=self.dpi, vector=self.vector)
        self.figures[name] = path
        return path


@dataclass
class ReportInputs:
    """What the sections read: the world, the prediction and the datasets on its grid."""

    world: pathlib.Path
    meta: dict[str, Any]
    truth_ds: xr.Dataset
    truth: xr.DataArray
    sm: xr.DataArray
    datasets: dict[str, xr.DataArray]
    training: Any
    cosmos: xr.Dataset | None
    left_out: dict[str, str] = field(default_factory=dict)

    @property
    def period(self) -> str:
        t = self.sm[cv.TIME].values
        return f"{pd.Timestamp(t[0]).date()} to {pd.Timestamp(t[-1]).date()}"


def _md_table(df: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float | np.floating):
                cells.append("–" if not np.isfinite(v) else floatfmt.format(v))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _maybe_open(obj: PathLike | xr.Dataset | None) -> xr.Dataset | None:
    if obj is None or isinstance(obj, xr.Dataset):
        return obj
    return xr.open_dataset(obj)


def _complete_summers(time: Any) -> list[int]:
    """Years whose every June-August day (92 days) is among ``time``."""
    t = pd.DatetimeIndex(np.asarray(time)).normalize()
    jja = t[t.month.isin([6, 7, 8])]
    counts = pd.Series(1, index=jja).groupby(jja.year).size() if jja.size else pd.Series(dtype=int)
    return [int(y) for y, n in counts.items() if n >= 92]


def _pick_year(sm: xr.DataArray, truth: xr.DataArray, year: int | None) -> tuple[int | None, str]:
    """Year of the anomaly maps: ``year`` if its June-August lies whole in ``sm``, else refused; by default
    2015 when complete, else the driest complete summer of the truth; ``(None, why)`` when none is complete."""
    full = _complete_summers(sm[cv.TIME].values)
    t = pd.DatetimeIndex(sm[cv.TIME].values)
    period = f"{t[0].date()} to {t[-1].date()}"
    if year is not None:
        if int(year) not in full:
            raise XsomoValueError(
                f"--year {year}: the prediction ({period}) does not hold the whole summer (June-August) of {year}; "
                + (f"years with a complete summer: {', '.join(map(str, full))}." if full else "it holds no complete summer.")
                + " Give one of them, or leave --year out."
            )
        return int(year), "chosen"
    if not full:
        return None, f"the prediction ({period}) holds no complete summer (June-August)"
    if 2015 in full:
        return 2015, "the paper's drought year"
    lay = 1 if 1 in _layers(truth) else _layers(truth)[0]
    jja = evaluation.summer_mean(truth.sel({cv.LAYER: lay}), by_year=True).sel(year=full)
    dims = [d for d in jja.dims if d != "year"]
    driest = int(jja.mean(dims).idxmin("year"))
    why = f"the world's driest complete summer in the prediction (JJA mean of layer {lay})"
    if 2015 in set(t.year):
        why += "; the summer of 2015, the paper's drought year, is not complete in the prediction"
    return driest, why


def load_inputs(
    world: PathLike,
    prediction: PathLike | xr.Dataset | xr.DataArray,
    *,
    model: TrainedModel | None = None,
    targets: xr.Dataset | None = None,
    products: bool = True,
) -> ReportInputs:
    """Open the world's truth, the prediction (:func:`xsomo.evaluation.open_prediction`) and the products.

    Products are regridded to the prediction's grid; a product that cannot be regridded
    or that covers no cell with data in the prediction's period is left out (and named
    on the page) instead of drawing empty panels.
    """
    world = pathlib.Path(world)
    lay = WorldLayout(world)
    truth_ds = open_truth(world)  # DataFormatError when world is not a sample world
    meta = read_manifest(world) if is_world(world) else {}
    sm = open_prediction(prediction)
    t0, t1 = sm[cv.TIME].values[0], sm[cv.TIME].values[-1]
    logger.info("report: loading the prediction")
    sm = sm.load()
    # loaded in the file's order, then transposed: a lazy transpose of the netCDF-backed
    # truth read it through index arrays (16 s instead of 1 s on the demo world)
    truth = truth_ds[cv.SM].sel({cv.TIME: slice(t0, t1)}).load().transpose(cv.LAYER, cv.TIME, cv.LAT, cv.LON)
    datasets: dict[str, xr.DataArray] = {"xsomo": sm}
    left_out: dict[str, str] = {}
    if products and lay.products.is_dir():
        for name, prod in intercomparison.open_products(world).items():
            try:
                reg = intercomparison.regrid_product(prod, sm)
            except Exception as err:  # a product that cannot be regridded is reported, not fatal
                warnings.warn(f"product {name!r} left out of the report: {err}", stacklevel=2)
                left_out[name] = str(err)
                continue
            reg = reg.sel({cv.TIME: slice(t0, t1)}).load()
            if reg.sizes[cv.TIME] == 0 or not bool(reg.notnull().any()):
                left_out[name] = "no data in the prediction's period and grid"
                continue
            datasets[name] = reg
    cosmos = None
    if lay.cosmos.is_dir():
        from xsomo.io import open_cosmos

        cosmos = open_cosmos(lay.cosmos)
    return ReportInputs(
        world=world,
        meta=meta,
        truth_ds=truth_ds,
        truth=truth,
        sm=sm,
        datasets=datasets,
        training=targets if targets is not None else model,
        cosmos=cosmos,
        left_out=left_out,
    )


def write_report(
    *,
    world: PathLike,
    prediction: PathLike | xr.Dataset | xr.DataArray,
    out: PathLike,
    model: TrainedModel | None = None,
    targets: xr.Dataset | None = None,
    metrics: xr.Dataset | None = None,
    memory: PathLike | xr.Dataset | None = None,
    transfer: PathLike | xr.Dataset | None = None,
    importance: PathLike | xr.Dataset | None = None,
    year: int | None = None,
    products: bool = True,
    block: int | None = None,
    seed: int = 0,
    dpi: int = plotting.DPI,
    vector: Sequence[str] = (),
) -> pathlib.Path:
    """Write the evaluation report of ``prediction`` on a sample ``world`` into ``out``.

    Parameters
    ----------
    world
        Sample-world folder (``truth.nc``, ``world.json``, ``cosmos/``, ``products/``).
    prediction
        Folder of ``SoMo.ml-EU_layer{N}_{YYYY}.nc`` files or a Dataset ``sm(layer, time, lat, lon)``.
    out
        Output folder (created).
    model, targets
        Where the training cells come from (targets' cells, else ``model.training_cells``);
        stations in those cells are flagged and left out of the headline numbers.
    metrics
        Station metrics already computed (else computed here).
    memory
        Result of the lookback permutation (:func:`xsomo.evaluation.experiments.lookback_permutation`),
        a Dataset or a netCDF path; the figure is left out when None.
    transfer
        Result of :func:`xsomo.evaluation.experiments.transfer`, a Dataset or a netCDF path.
    importance
        Result of :func:`xsomo.evaluation.importance.input_importance` (``xsomo experiment
        importance``'s ``importance.nc``), a Dataset or a netCDF path; the section is left out
        when None (the experiment is not run by the report: it costs a roll-out per input and
        repeat).
    year
        Year of the anomaly maps; its June-August must lie whole in the prediction (else
        :class:`~xsomo.exceptions.XsomoValueError`, before any section is drawn). Default:
        2015 if its summer is complete, else the driest complete summer; none complete: the
        maps are left out, with a warning and a note on the page.
    products
        Include the stand-in products (intercomparison).
    block, seed
        Sampling of the cells compared with the average of the datasets: one random cell
        per ``block`` × ``block`` cells. Default: 20 (the paper's, about 300 cells on the
        Europe grid), smaller on small grids so that about 300 blocks remain.
    dpi
        Resolution of the PNG figures (300: print quality).
    vector
        Also write every figure in these vector formats (``"pdf"``, ``"svg"``).

    Returns
    -------
    pathlib.Path
        The ``index.md`` page (``index.html`` lies beside it).
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rep = Report(out, dpi=int(dpi), vector=plotting.vector_formats(vector))
    inp = load_inputs(world, prediction, model=model, targets=targets, products=products)
    _pick_year(inp.sm, inp.truth, year)  # an impossible --year is refused before the slow sections
    section_overview(rep, inp)
    if inp.cosmos is not None:
        section_stations(rep, inp, metrics)
    section_truth(rep, inp)
    if len(inp.datasets) > 2:
        section_intercomparison(rep, inp, block=block, seed=seed)
    section_anomalies(rep, inp, year=year)
    section_memory(rep, inp, memory=_maybe_open(memory), seed=seed)
    res = _maybe_open(transfer)
    if res is not None:
        section_transfer(rep, res)
    imp = _maybe_open(importance)
    if imp is not None:
        section_importance(rep, imp)
    sec = rep.section("Files")
    sec.append("\n".join(f"- [`tables/{p.name}`](tables/{p.name})" for p in rep.tables.values()))
    return _write_pages(rep, title="xsomo evaluation report")


def section_overview(rep: Report, inp: ReportInputs) -> None:
    """What was compared: the world, the prediction's grid and period, the datasets."""
    sec = rep.section("Overview")
    sm = inp.sm
    text = (
        f"Sample world `{inp.world}` (preset `{inp.meta.get('preset', '?')}`, seed {inp.meta.get('seed', '?')}); "
        f"prediction {sm.sizes[cv.LAT]} × {sm.sizes[cv.LON]} cells, {inp.period}. "
        f"Datasets compared: {', '.join(f'`{n}`' for n in inp.datasets)}. Generated by xsomo on "
        f"{_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}."
    )
    if inp.left_out:
        text += " Left out: " + "; ".join(f"`{k}` ({v})" for k, v in inp.left_out.items()) + "."
    sec.append(text)


def _station_points(
    da: xr.DataArray, obs: xr.DataArray, weights: xr.DataArray | None, *, layer: int = 1
) -> xr.DataArray:
    """``(station, time)`` of ``da`` at the stations' cells: the footprint mix (``weights``) or ``layer``."""
    rr, cc, inside = evaluation.match_stations(da, obs[cv.LAT].values, cv.lon_like_grid(obs[cv.LON].values, da[cv.LON].values))
    pts = da.isel({cv.LAT: xr.DataArray(rr, dims=cv.STATION), cv.LON: xr.DataArray(cc, dims=cv.STATION)})
    pts = pts.assign_coords({cv.STATION: obs[cv.STATION].values}).where(xr.DataArray(inside, dims=cv.STATION))
    if weights is not None:
        w = weights.rename(weight_layer=cv.LAYER).assign_coords({cv.LAYER: list(cv.LAYER_NUMBERS)})
        pts = (pts.sel({cv.LAYER: list(cv.LAYER_NUMBERS)}) * w).sum(cv.LAYER, skipna=False)
    else:
        pts = pts.sel({cv.LAYER: layer})
    return pts.transpose(cv.STATION, cv.TIME)


def _layers(da: xr.DataArray) -> list[int]:
    """The layer numbers ``da`` holds."""
    return [int(v) for v in da[cv.LAYER].values]


def _has_all_layers(da: xr.DataArray) -> bool:
    return set(cv.LAYER_NUMBERS) <= set(_layers(da))


def quality_bar(xsomo_r: float, others: pd.Series) -> str:
    """The report's quality-bar sentence: xsomo's footprint-mix median r against each product's.

    Printed with enough decimals to tell xsomo from the closest product (at 3 decimals a
    0.9644 against 0.9642 read "0.964; somoml_v1 0.964. xsomo is higher"), and the gap
    where it is under 1e-3.
    """
    beats = bool(np.all(xsomo_r > others))
    gap = float(np.min(np.abs(xsomo_r - others)))
    digits = 3 if gap >= 1e-3 else (min(6, -int(np.floor(np.log10(gap)))) if gap > 0 else 4)
    return (
        f"Quality bar — xsomo's median r at the stations (footprint mix) is **{xsomo_r:.{digits}f}**; "
        + ", ".join(f"{k.replace('_like', '')} {v:.{digits}f}" for k, v in others.items())
        + (". xsomo is **higher than every product**" if beats else ". xsomo is **not** higher than every product")
        + (f" (by {gap:.1e} from the closest product)." if gap < 1e-3 else ".")
    )


def section_stations(rep: Report, inp: ReportInputs, metrics: xr.Dataset | None = None) -> xr.Dataset:
    """Skill at the COSMOS-like stations: xsomo's metrics, every dataset at the same stations, figures."""
    if inp.cosmos is None:
        raise DataFormatError(f"{inp.world} has no cosmos/ folder: no stations to score against")
    cosmos, sm, datasets, training = inp.cosmos, inp.sm, inp.datasets, inp.training
    sec = rep.section("Skill at the independent COSMOS-like stations")
    if metrics is None:
        metrics = evaluation.evaluate(sm, cosmos, training_cells=training)
    summary = evaluation.summarize(metrics)
    rep.table("station_summary_xsomo", summary)
    rep.table("station_metrics_xsomo", evaluation.metrics_table(metrics))
    n_train = int(metrics["training_cell"].sum()) if "training_cell" in metrics.coords else 0
    layers = _layers(sm)
    mix = evaluation.FOOTPRINT_LAYER in _layers(metrics)
    if mix:
        layer_text = (
            "Layer 0 is the footprint mix: each station's cosmic-ray "
            "footprint depth (0.15-0.22 m) weighs the layers by their overlap with 0..depth "
            "(`xsomo.evaluation.footprint_weights`); layers 1-3 compare the station with each layer alone."
        )
    else:
        layer_text = (
            f"The prediction holds layer{'s' if len(layers) > 1 else ''} {', '.join(map(str, layers))} only: "
            "no footprint mix (it weighs all three layers), each layer present compared with the station alone."
        )
    n_all = metrics.sizes[cv.STATION]
    n_in = int(metrics["in_grid"].sum()) if "in_grid" in metrics.coords else n_all
    outside = f", {n_all - n_in} of them outside the prediction's grid (not scored)" if n_in < n_all else ""
    if n_in == 0:
        sec.append(
            f"None of the world's {n_all} stations lies inside the prediction's grid (cell centres lat "
            f"{float(sm[cv.LAT].min()):g}..{float(sm[cv.LAT].max()):g}, lon {float(sm[cv.LON].min()):g}.."
            f"{float(sm[cv.LON].max()):g}): no skill at the stations to report."
        )
        return metrics
    sec.append(
        f"{n_all} stations{outside}, {n_train} of them in cells that held training targets "
        f"(left out of the medians below). {layer_text}"
    )
    cols = ("layer_label", "n_stations", "pearson_r", "anomaly_r", "urmsd", "bias", "nse", "kge")
    sec.append(_md_table(summary[[c for c in cols if c in summary]]))
    comp = intercomparison.compare_stations(datasets, cosmos, training_cells=training)
    rows = []
    for p in comp["product"].values:
        s = evaluation.summarize(comp.sel(product=p, drop=True))
        s.insert(0, "dataset", str(p))
        rows.append(s)
    comp_sum = pd.concat(rows, ignore_index=True)
    rep.table("station_summary_all", comp_sum)
    sec.append("**All datasets at the same stations** (median over independent stations; – : no station in the product's cover):")
    # the layers xsomo's metrics hold (no footprint-mix column when the prediction lacks a layer)
    shown = comp_sum[comp_sum["layer"].isin(_layers(metrics))]
    pivot = shown.pivot_table(
        index="dataset", columns="layer_label", values="pearson_r", sort=False, dropna=False
    ).reset_index()
    sec.append(_md_table(pivot))
    if comp.attrs.get("left_out"):
        sec.append(f"Left out of this comparison: {comp.attrs['left_out']}.")
    fp = comp_sum[comp_sum["layer"] == evaluation.FOOTPRINT_LAYER].set_index("dataset")["pearson_r"]
    if mix and "xsomo" in fp and len(fp) > 1 and np.isfinite(fp["xsomo"]):
        others = fp.drop("xsomo").dropna()
        if len(others):
            sec.append(quality_bar(float(fp["xsomo"]), others))
    rep.figure(
        "fig4a_stations_boxplot",
        plotting.metric_boxplots(comp, title="datasets against the COSMOS-like stations (all stations)"),
    )
    sec.append("![Station box plots](figures/fig4a_stations_boxplot.png)")
    map_layer = evaluation.FOOTPRINT_LAYER if mix else int(_layers(metrics)[0])
    what = "footprint mix" if mix else f"layer {map_layer}"
    background = evaluation.summer_mean(sm.sel({cv.LAYER: layers[0]})).assign_attrs(
        long_name=f"JJA mean layer {layers[0]} (m³ m⁻³)"
    )
    rep.figure(
        "stations_map",
        plotting.station_map(background, metrics, layer=map_layer, title=f"xsomo r at the stations ({what})"),
    )
    sec.append("![Station map](figures/stations_map.png)")
    st_ids = metrics[cv.STATION].values[
        np.argsort(-metrics["n"].sel(layer=metrics[cv.LAYER].values[0]).values)
    ][:4]
    obs = cosmos[cv.SM].sel({cv.STATION: st_ids})
    w = metrics["footprint_weights"].sel({cv.STATION: st_ids}) if mix and "footprint_weights" in metrics.coords else None
    sims = {
        name: _station_points(da, obs, w, layer=map_layer)
        for name, da in datasets.items()
        if (_has_all_layers(da) if w is not None else map_layer in _layers(da))
    }
    sims = {name: s for name, s in sims.items() if bool(s.notnull().any())}
    rep.figure(
        "stations_series",
        plotting.station_series(obs, sims, title=f"{what} of each dataset and the station"),
    )
    sec.append("![Station series](figures/stations_series.png)")
    return metrics


def _training_mask(inp: ReportInputs) -> xr.DataArray | None:
    """``(lat, lon)`` True in the cells that held training targets (None: no training cells given)."""
    lat_lon = evaluation.training_latlon(inp.training)
    if lat_lon is None or not lat_lon.size:
        return None
    sm = inp.sm
    rr, cc, inside = evaluation.match_stations(sm, lat_lon[:, 0], cv.lon_like_grid(lat_lon[:, 1], sm[cv.LON].values))
    flag = np.zeros((sm.sizes[cv.LAT], sm.sizes[cv.LON]), bool)
    flag[rr[inside], cc[inside]] = True
    return xr.DataArray(flag, dims=(cv.LAT, cv.LON), coords={cv.LAT: sm[cv.LAT], cv.LON: sm[cv.LON]})


def section_truth(rep: Report, inp: ReportInputs) -> dict[str, xr.Dataset]:
    """Every dataset against the known truth at every land cell; training vs independent cells."""
    sec = rep.section("Skill against the known truth (every land cell)")
    grid_rows = []
    maps = {}
    for name, da in inp.datasets.items():
        m = evaluation.evaluate_grid(da, inp.truth, anomaly=name == "xsomo")
        maps[name] = m
        for lay in m[cv.LAYER].values:
            mm = m.sel({cv.LAYER: lay})
            row = {"dataset": name, "layer": int(lay), "n_cells": int(mm["pearson_r"].notnull().sum())}
            for k in ("pearson_r", "urmsd", "bias", "nse", "anomaly_r"):
                if k in mm:
                    row[k] = float(mm[k].median())
            grid_rows.append(row)
    truth_tab = pd.DataFrame(grid_rows)
    rep.table("truth_skill", truth_tab)
    flag_da = _training_mask(inp)
    if flag_da is not None:
        m = maps["xsomo"]
        split = []
        for lay in m[cv.LAYER].values:
            for label, mask in (("training cells", flag_da), ("independent cells", ~flag_da)):
                v = m["pearson_r"].sel({cv.LAYER: lay}).where(mask)
                split.append(
                    {
                        "layer": int(lay),
                        "cells": label,
                        "n_cells": int(v.notnull().sum()),
                        "pearson_r": float(v.median()),
                        "urmsd": float(m["urmsd"].sel({cv.LAYER: lay}).where(mask).median()),
                    }
                )
        split_df = pd.DataFrame(split)
        rep.table("truth_skill_xsomo_training_vs_independent", split_df)
        sec.append("xsomo against the truth, cells that held training targets vs independent cells (medians):")
        sec.append(_md_table(split_df))
    sec.append("Median over land cells of each dataset against the truth:")
    sec.append(
        _md_table(
            truth_tab.pivot_table(index="dataset", columns="layer", values="pearson_r", sort=False)
            .add_prefix("r layer ")
            .reset_index()
        )
    )
    r = maps["xsomo"]["pearson_r"]
    rep.figure(
        "truth_r_maps",
        plotting.metric_maps(
            {plotting.layer_title(k): r.sel({cv.LAYER: k}) for k in r[cv.LAYER].values},
            label="r against the truth",
            title="xsomo r against the truth (colour range from the data)",
        ),
    )
    sec.append("![r maps](figures/truth_r_maps.png)")
    return maps


def section_intercomparison(rep: Report, inp: ReportInputs, *, block: int | None = None, seed: int = 0) -> xr.Dataset:
    """Each dataset against the average of the others at one random cell per block (Fig. 4b)."""
    sm = inp.sm
    sec = rep.section("Intercomparison: each dataset against the average of the others")
    if block is None:
        block = int(min(20, max(2, np.sqrt(sm.sizes[cv.LAT] * sm.sizes[cv.LON] / 300))))
    cmp = intercomparison.compare_to_mean(inp.datasets, block=block, seed=seed)
    rows = []
    for p in cmp["product"].values:
        for lay in cmp[cv.LAYER].values:
            s = cmp.sel(product=p, layer=lay)
            rows.append(
                {
                    "dataset": str(p),
                    "layer": int(lay),
                    "n_cells": int(s["pearson_r"].notnull().sum()),
                    "pearson_r": float(s["pearson_r"].median()),
                    "urmsd": float(s["urmsd"].median()),
                }
            )
    tab = pd.DataFrame(rows)
    rep.table("product_mean_comparison", tab)
    sec.append(
        f"{cmp.sizes[cv.CELL]} cells, one random cell (seed {seed}) per {block} × {block}-cell block among cells "
        "where every dataset has data; each dataset against the mean of the other datasets (leave-one-out). "
        "Products are regridded bilinearly to 0.1° (`xsomo.regrid`)."
    )
    sec.append(
        _md_table(
            tab.pivot_table(index="dataset", columns="layer", values="pearson_r", sort=False)
            .add_prefix("r layer ")
            .reset_index()
        )
    )
    rep.figure(
        "fig4b_product_mean_boxplot",
        plotting.metric_boxplots(cmp, sample_dim=cv.CELL, title="datasets against the average of the other datasets"),
    )
    sec.append("![Product-mean box plots](figures/fig4b_product_mean_boxplot.png)")
    return cmp


def region_polygons(region: xr.DataArray, names: Mapping[str, str]) -> Any:
    """The world's region raster (``lat``, ``lon`` codes) as polygons: the union of each region's cells.

    A GeoDataFrame (EPSG:4326) with ``NAME``, for :func:`xsomo.drivers.regions.regional_mean`,
    the area-weighted regional mean used for Natural Earth countries too.
    """
    import geopandas as gpd
    import shapely

    g = cv.GridSpec.from_coords(region[cv.LAT].values, region[cv.LON].values)
    half = g.resolution / 2
    codes = np.asarray(region.transpose(cv.LAT, cv.LON).values)
    lat, lon = region[cv.LAT].values, region[cv.LON].values
    rows, geoms = [], []
    for code, name in sorted(names.items()):
        ii, jj = np.nonzero(codes == int(code))
        if not ii.size:
            continue
        boxes = shapely.box(lon[jj] - half, lat[ii] - half, lon[jj] + half, lat[ii] + half)
        geoms.append(shapely.union_all(boxes))
        rows.append(str(name))
    return gpd.GeoDataFrame({"NAME": rows}, geometry=geoms, crs=cv.CRS)


def section_anomalies(rep: Report, inp: ReportInputs, *, year: int | None = None) -> None:
    """Summer means, the daily-anomaly maps of one summer (Fig. 5) and regional seasonal anomalies (S6)."""
    sm, truth, datasets = inp.sm, inp.truth, inp.datasets
    sec = rep.section("Summer means and anomalies")
    has_summer = bool(pd.DatetimeIndex(sm[cv.TIME].values).month.isin([6, 7, 8]).any())
    summer = {name: evaluation.summer_mean(da) for name, da in {**datasets, "truth": truth}.items()} if has_summer else {}
    shown = ([lay for lay in (1, 3) if lay in _layers(sm)] or _layers(sm)[:1]) if has_summer else []
    if not has_summer:
        sec.append("No summer-mean maps: the prediction holds no June-August day.")
    for lay in shown:
        rep.figure(f"fig5a_summer_mean_layer{lay}", plotting.summer_maps(summer, layer=lay))
        sec.append(f"![JJA mean layer {lay}](figures/fig5a_summer_mean_layer{lay}.png)")
    yr, why = _pick_year(sm, truth, year)
    truth_layers = truth.sel({cv.LAYER: [lay for lay in _layers(sm) if lay in _layers(truth)]})
    z = {name: evaluation.anomalies(da)["sm_anomaly"] for name, da in {"xsomo": sm, "truth": truth_layers}.items()}
    if yr is None:
        warnings.warn(f"report: {why}: the anomaly maps of one summer are left out.", stacklevel=user_stacklevel())
        sec.append(f"No anomaly maps of one summer: {why}.")
    else:
        _summer_anomaly_maps(rep, sec, inp, z, yr, why)
    if "region" in inp.truth_ds:
        _regional_anomalies(rep, sec, inp, z)


def _summer_anomaly_maps(
    rep: Report, sec: list[str], inp: ReportInputs, z: Mapping[str, xr.DataArray], yr: int, why: str
) -> None:
    """Fig. 5b: the JJA ``yr`` mean of the daily z-scores of xsomo and the truth, and their pattern r."""
    z_year = {name: evaluation.summer_mean(v.sel({cv.TIME: str(yr)})) for name, v in z.items()}
    rep.figure(
        "fig5b_anomaly_xsomo",
        plotting.anomaly_maps(z_year["xsomo"], title=f"xsomo: JJA {yr} mean of daily z-scores ({why})"),
    )
    rep.figure(
        "fig5b_anomaly_truth",
        plotting.anomaly_maps(z_year["truth"], title=f"truth: JJA {yr} mean of daily z-scores"),
    )
    sec.append(
        f"Daily normalised anomalies (z-scores against the 31-day moving daily climatology of {inp.period}, "
        f"`xsomo.evaluation.anomalies`) averaged over summer {yr}, {why}. These maps are **not** the exported "
        "period anomaly (`xsomo export --stat anomaly`, QGIS `xsomo:anomalymap`), which is the z-score of the "
        "period mean among the same window's means in every year: both have the sign of the deviation, but "
        "the daily z-scores are scaled by the day-to-day spread and the period anomaly by the smaller "
        "year-to-year spread of period means, so it is larger in magnitude."
    )
    sec.append("![anomaly xsomo](figures/fig5b_anomaly_xsomo.png)")
    sec.append("![anomaly truth](figures/fig5b_anomaly_truth.png)")
    corr = [
        {
            "layer": int(lay),
            "pattern_r_xsomo_vs_truth": float(
                xr.corr(z_year["xsomo"].sel({cv.LAYER: lay}), z_year["truth"].sel({cv.LAYER: lay}))
            ),
        }
        for lay in z_year["xsomo"][cv.LAYER].values
    ]
    corr_df = pd.DataFrame(corr)
    rep.table("anomaly_pattern_correlation", corr_df)
    sec.append(f"Spatial correlation of the JJA {yr} anomaly maps, xsomo vs truth:")
    sec.append(_md_table(corr_df))


def regional_seasonal_anomalies(z: xr.DataArray, polygons: Any) -> xr.DataArray:
    """Seasonal (DJF, MAM, JJA, SON) means of the area-weighted regional mean of ``z``: ``(region, layer, time)``.

    The regional mean is :func:`xsomo.drivers.regions.regional_mean` (cell areas ∝ cos φ,
    NaN cells ignored); seasons start in December (``QS-DEC``).
    """
    from xsomo.drivers import regions

    reg = regions.regional_mean(z, polygons, key="NAME")
    return reg.resample({cv.TIME: "QS-DEC"}).mean().transpose("region", cv.LAYER, cv.TIME)


def _regional_anomalies(rep: Report, sec: list[str], inp: ReportInputs, z: Mapping[str, xr.DataArray]) -> None:
    names = inp.meta.get("regions", {"1": "us", "2": "europe"})
    polygons = region_polygons(inp.truth_ds["region"], names)
    if not len(polygons):
        return
    ser = regional_seasonal_anomalies(z["xsomo"], polygons)
    ref = regional_seasonal_anomalies(z["truth"], polygons)
    rep.figure(
        "figS6_regional_anomalies",
        plotting.regional_series(
            ser,
            reference=ref,
            title="seasonal (DJF, MAM, JJA, SON) mean normalised anomaly per region; dashed: truth",
        ),
    )
    sec.append(
        "Seasonal means of the daily anomalies per region: area-weighted means (cell areas ∝ cos latitude, "
        "`xsomo.drivers.regions.regional_mean`) over the world's `region` masks:"
    )
    sec.append("![regional anomalies](figures/figS6_regional_anomalies.png)")
    both = xr.Dataset({"z_xsomo": ser, "z_truth": ref})
    rep.table("regional_seasonal_anomalies", both.to_dataframe().reset_index())


#: Random land cells of the truth whose memory the report measures.
_MEMORY_CELLS = 500


def _whole_truth_at_cells(inp: ReportInputs, *, cells: int = _MEMORY_CELLS, seed: int = 0) -> xr.DataArray:
    """``sm(layer, cell, time)``: the world's whole truth (every day of ``truth.nc``, not the prediction's
    period) at up to ``cells`` random land cells, read in slices of ~80 MB
    (:func:`xsomo.evaluation.experiments.truth_at`) so that a large world's truth is never whole in memory."""
    from xsomo.evaluation import experiments

    cut = inp.truth  # (layer, time, lat, lon), loaded: land cells are those with data
    valid = np.asarray(cut.notnull().all((cv.LAYER, cv.TIME)).transpose(cv.LAT, cv.LON).values)
    ii, jj = np.nonzero(valid)
    if ii.size > cells:
        pick = np.sort(np.random.default_rng(seed).choice(ii.size, cells, replace=False))
        ii, jj = ii[pick], jj[pick]
    full = inp.truth_ds[cv.SM]
    return xr.DataArray(
        experiments.truth_at(full, ii, jj, full[cv.TIME].values),
        dims=(cv.LAYER, cv.CELL, cv.TIME),
        coords={cv.LAYER: full[cv.LAYER].values, cv.TIME: full[cv.TIME].values},
    )


def section_memory(rep: Report, inp: ReportInputs, *, memory: xr.Dataset | None = None, seed: int = 0) -> None:
    """The truth's memory (autocorrelation of daily anomalies) and the lookback permutation (Fig. 2)."""
    from xsomo.evaluation import experiments

    sec = rep.section("Memory of the truth and the lookback permutation")
    # the world's whole truth, not its cut to the prediction's period: the moving climatology of
    # a short record follows the record and removes the slow anomalies (one year: 4/4/4 days
    # on the tiny world against 10/13/16 from its 3 years)
    whole = _whole_truth_at_cells(inp, cells=_MEMORY_CELLS, seed=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="memory_timescales: the record covers")
        scales = experiments.memory_timescales(whole, cells=None)
    t = pd.DatetimeIndex(whole[cv.TIME].values)
    span = f"the world's whole truth, {t[0].date()} to {t[-1].date()} ({scales.attrs['n_years']:.1f} years)"
    rep.figure("memory_truth_acf", plotting.memory_curves(scales))
    tab = pd.DataFrame(
        {
            "layer": scales[cv.LAYER].values,
            "efold_days": scales["efold_days"].values,
            "efold_days_p10": np.nanpercentile(scales["efold_days_cells"].values, 10, axis=1),
            "efold_days_p90": np.nanpercentile(scales["efold_days_cells"].values, 90, axis=1),
        }
    )
    rep.table("memory_truth", tab)
    sec.append(
        f"Does the truth have memory? Autocorrelation of daily anomalies (31-day moving climatology removed), "
        f"median over {scales.attrs['n_cells']} land cells of {span}; e-folding time per layer:"
    )
    if scales.attrs["short_record"]:
        msg = (
            f"the truth covers {scales.attrs['n_years']:.1f} years, fewer than "
            f"{experiments.MEMORY_MIN_YEARS:g}: its moving climatology follows the record itself, so these "
            "e-folding times are too short"
        )
        warnings.warn(f"report: {msg}.", stacklevel=user_stacklevel())
        sec.append(f"**Warning**: {msg}.")
    sec.append(_md_table(tab, floatfmt="{:.0f}"))
    sec.append("![memory](figures/memory_truth_acf.png)")
    if memory is None:
        sec.append("The lookback permutation was not run for this report (`xsomo experiment memory`).")
        return
    perm = memory
    rep.figure("fig2_lookback_permutation", plotting.lookback_curves(perm))
    rep.table("lookback_permutation", perm[["nse", "pearson_r"]].to_dataframe().reset_index())
    sec.append(
        f"Lookback permutation ({perm.attrs.get('days_per_cell', '?')} random days at each of "
        f"{perm.sizes.get(cv.CELL, '?')} cells; window {perm.attrs.get('lookback', '?')} days): all but the last n days "
        "of each input window shuffled in time; median over cells of NSE and r against the truth."
    )
    sec.append(_md_table(perm["nse"].to_pandas().add_prefix("NSE layer ").reset_index()))
    sec.append(_md_table(perm["pearson_r"].to_pandas().add_prefix("r layer ").reset_index()))
    need = {m: experiments.days_needed(perm, metric=m) for m in ("pearson_r", "nse")}
    days, ratios = [], []
    for lay in perm[cv.LAYER].values:
        texts = [_days_text(perm[m].sel({cv.LAYER: lay}), float(need[m].sel({cv.LAYER: lay}))) for m in need]
        days.append(f"layer {int(lay)}: {' / '.join(texts)}")
        n_r = float(need["pearson_r"].sel({cv.LAYER: lay}))
        efold = float(scales["efold_days"].sel({cv.LAYER: lay})) if lay in scales[cv.LAYER].values else 0.0
        if efold > 0 and np.isfinite(n_r):
            ratios.append(f"layer {int(lay)}: {n_r / efold:.1f}×")
    text = "Days that must stay in order for 95 % of the skill the whole window adds (r / NSE): " + "; ".join(days) + "."
    if any("no gain" in d for d in days):
        text += (
            " No gain: the score with the whole window in order is not higher than with only the last "
            f"{int(perm['n_kept'].values[0])} day(s) in order, so no number of days is needed."
        )
    if ratios:
        text += " In units of the truth's median e-folding time (above): " + "; ".join(ratios) + " (r)."
    sec.append(text)
    sec.append("![lookback](figures/fig2_lookback_permutation.png)")


def _days_text(score: xr.DataArray, days: float) -> str:
    """``days_needed`` on the page: whole days, "no gain" (the window adds no skill) or "–" (no score)."""
    if np.isfinite(days):
        return str(int(days))
    s = score.transpose("n_kept").values
    return "no gain" if np.isfinite(s[0]) and np.isfinite(s[-1]) else "–"


def section_transfer(rep: Report, res: xr.Dataset) -> None:
    """Trained on one region, scored on another (Fig. 3), with where the model extrapolates."""
    from xsomo.evaluation import experiments

    sec = rep.section("Transfer: trained on one region, scored on another")
    tsum = experiments.transfer_summary(res)
    rep.table("transfer_summary", tsum)
    rep.figure("fig3_transfer", plotting.transfer_plot(res))
    sec.append(
        f"Trained on region `{res.attrs.get('train_region', '?')}` only ({res.attrs.get('n_train_cells', '?')} target cells); "
        f"scored against the truth on random cells of `{res.attrs.get('test_region', '?')}` and on held-out cells of the training region."
    )
    sec.append(_md_table(tsum))
    env = res.attrs.get("training_envelope")
    if env:
        sec.append(_extrapolation_text(res, json.loads(env)))
    sec.append("![transfer](figures/fig3_transfer.png)")


def section_importance(rep: Report, res: xr.Dataset) -> None:
    """Permutation importance of the inputs per layer (O & Orth 2021, Fig. 4 style)."""
    from xsomo.evaluation.importance import importance_table

    sec = rep.section("Input importance")
    tab = importance_table(res)
    rep.table("input_importance", tab)
    rep.figure("fig4_input_importance", plotting.importance_bars(res))
    reps = int(res.sizes.get("repeat", 0))
    sec.append(
        f"Permutation importance ({reps} shuffles per input; cells scored: {res.attrs.get('n_scored', res.attrs.get('n_cells', '?'))}; the first "
        f"{res.attrs.get('spinup_days', '?')} days of spin-up not scored): each dynamic input shuffled across time, "
        "each static input across cells; the drop of the median r and NSE per layer against the intact inputs "
        "(`xsomo.evaluation.importance.input_importance`). Bars: median over the shuffles; whiskers: their range."
    )
    if res.attrs.get("scored_against"):
        sec.append(f"Scored against {res.attrs['scored_against']}.")
    wide = tab.pivot_table(index=["input", "kind"], columns=cv.LAYER, values="r_drop", sort=False)
    wide.columns = [f"r drop layer {int(c)}" for c in wide.columns]
    sec.append(_md_table(wide.reset_index()))
    tops = []
    for lay, t in tab.groupby(cv.LAYER, sort=True):
        t = t.dropna(subset=["r_drop"])
        if len(t):
            best = t.loc[t["r_drop"].idxmax()]
            tops.append(f"layer {int(lay)}: `{best['input']}` ({best['r_drop']:.3f}; intact r {best['r']:.3f})")
    if tops:
        sec.append("Most important input (largest drop of r) — " + "; ".join(tops) + ".")
    sec.append("![input importance](figures/fig4_input_importance.png)")


def _extrapolation_text(res: xr.Dataset, envelope: Mapping[str, list[float]]) -> str:
    grp = res["group"].values
    out = res["outside_envelope"].values.astype(bool)
    lines = []
    for g in pd.unique(grp):
        m = grp == g
        lines.append(
            f"{int(out[m].sum())} of {int(m.sum())} `{g}` cells have a static feature outside the training cells' range"
        )
    text = "Where the model extrapolates: " + "; ".join(lines) + ". "
    r = res["pearson_r"].values  # (layer, cell)
    parts = []
    for k, lay in enumerate(res[cv.LAYER].values):
        inside = np.nanmedian(r[k, ~out]) if (~out).any() else np.nan
        outside = np.nanmedian(r[k, out]) if out.any() else np.nan
        parts.append(f"layer {int(lay)}: r {inside:.2f} inside vs {outside:.2f} outside")
    text += "Median r inside vs outside the envelope — " + "; ".join(parts) + ". "
    if "static_inputs" in res:
        text += "\n\n" + _extrapolated_features(res, envelope)
    text += (
        "\n\nTraining ranges: "
        + ", ".join(f"{k} {a:.3g}..{b:.3g}" for k, (a, b) in envelope.items())
        + "."
    )
    return text


def _extrapolated_features(res: xr.Dataset, envelope: Mapping[str, list[float]]) -> str:
    """Which static features (climate, terrain, soil, vegetation) leave the training range, per group."""
    grp = res["group"].values
    feats = [str(f) for f in res["feature"].values]
    vals = np.asarray(res["static_inputs"].values, float)  # (cell, feature)
    rows = []
    for g in pd.unique(grp):
        m = grp == g
        parts = []
        for j, name in enumerate(feats):
            if name not in envelope:
                continue
            lo, hi = envelope[name]
            v = vals[m, j]
            below, above = int((v < lo).sum()), int((v > hi).sum())
            if below or above:
                side = []
                if below:
                    side.append(f"{below} below (down to {np.nanmin(v):.3g})")
                if above:
                    side.append(f"{above} above (up to {np.nanmax(v):.3g})")
                parts.append(f"`{name}` {' and '.join(side)} the training range {lo:.3g}..{hi:.3g}")
        if parts:
            rows.append(f"- `{g}` ({int(m.sum())} cells): " + "; ".join(parts) + ".")
        else:
            rows.append(f"- `{g}` ({int(m.sum())} cells): every static feature within the training range.")
    return "Static features outside the training cells' range (climate: `precipitation_mean`, `aridity`):\n" + "\n".join(rows)


def _write_pages(rep: Report, *, title: str) -> pathlib.Path:
    md = [f"# {title}", ""]
    for name, blocks in rep.sections:
        md += [f"## {name}", ""]
        for b in blocks:
            md += [b, ""]
    index = rep.out / "index.md"
    atomic_write_text(index, "\n".join(md))
    body = []
    for name, blocks in rep.sections:
        body.append(f"<h2>{html.escape(name)}</h2>")
        body.extend(_md_block_to_html(b) for b in blocks)
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "img{max-width:100%;margin:0.5em 0}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>" + "\n".join(body) + "</body></html>"
    )
    atomic_write_text(rep.out / "index.html", page)
    return index


def _inline(text: str) -> str:
    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
    t = re.sub(r"\[(.+?)\]\((.+?)\)", r"<a href='\2'>\1</a>", t)
    return t


def _md_block_to_html(block: str) -> str:
    lines = block.strip().splitlines()
    if not lines:
        return ""
    img = re.fullmatch(r"!\[(.*)\]\((.+)\)", lines[0].strip())
    if img and len(lines) == 1:
        return f"<p><img alt='{html.escape(img.group(1))}' src='{html.escape(img.group(2))}'></p>"
    if lines[0].startswith("|"):
        rows = [
            ln.strip().strip("|").split("|") for ln in lines if not set(ln.strip()) <= set("|-")
        ]
        head, *rest = rows
        h = "".join(f"<th>{_inline(c.strip())}</th>" for c in head)
        b = "".join(
            "<tr>" + "".join(f"<td>{_inline(c.strip())}</td>" for c in r) + "</tr>" for r in rest
        )
        return f"<table><tr>{h}</tr>{b}</table>"
    if lines[0].startswith("- "):
        return "<ul>" + "".join(f"<li>{_inline(ln[2:])}</li>" for ln in lines) + "</ul>"
    return "<p>" + _inline(" ".join(lines)) + "</p>"
