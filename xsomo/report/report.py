"""The evaluation report of a prediction on a sample world: CSV tables, PNG figures, an index page.

:func:`write_report` gathers what steps 5-6 of the method produce — skill at the
independent COSMOS-like stations, the intercomparison with the stand-in products
(paper Fig. 4), summer-mean and anomaly maps and regional anomaly series (Fig. 5,
S6), the memory of the truth and, when given, the lookback-permutation and transfer
experiments (Figs. 2, 3) — into one folder::

    out/index.md, out/index.html      the page (Markdown and HTML, same content)
    out/tables/*.csv                   every number on the page
    out/figures/*.png                  the figures

Every number on the page is computed here from the files; nothing is typed in.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import logging
import os
import pathlib
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from xsomo import conventions as cv
from xsomo.evaluation import scores as evaluation
from xsomo.evaluation import intercomparison
from xsomo.report import plotting
from xsomo.io.world import WorldLayout, is_world, open_truth, read_manifest

if TYPE_CHECKING:
    from xsomo.model import TrainedModel

__all__ = ["Report", "open_prediction", "write_report"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


@dataclass
class Report:
    """Sections of the page being written: ``(title, [blocks])``, blocks are Markdown strings."""

    out: pathlib.Path
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    tables: dict[str, pathlib.Path] = field(default_factory=dict)
    figures: dict[str, pathlib.Path] = field(default_factory=dict)

    def section(self, title: str) -> list[str]:
        blocks: list[str] = []
        self.sections.append((title, blocks))
        return blocks

    def table(self, name: str, df: pd.DataFrame, *, index: bool = False) -> pathlib.Path:
        path = self.out / "tables" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_text(path, df.to_csv(index=index, float_format="%.4g"))
        self.tables[name] = path
        return path

    def figure(self, name: str, fig: Any) -> pathlib.Path:
        path = plotting.save(fig, self.out / "figures" / f"{name}.png")
        self.figures[name] = path
        return path


def _atomic_text(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, plotting._FILE_MODE)
    os.replace(tmp, path)


def _md_table(df: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float | np.floating):
                cells.append("" if not np.isfinite(v) else floatfmt.format(v))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def open_prediction(prediction: PathLike | xr.Dataset | xr.DataArray) -> xr.DataArray:
    """``sm(layer, time, lat, lon)`` with ascending lat/lon from a Dataset or a folder of SoMo.ml-EU files."""
    from xsomo.regrid import normalise_latlon

    if isinstance(prediction, xr.Dataset | xr.DataArray):
        da = evaluation._layered(prediction)
    else:
        from xsomo.io.somo import open_somo

        da = open_somo(prediction)[cv.SM]
    da = normalise_latlon(da)
    return da.transpose(cv.LAYER, cv.TIME, cv.LAT, cv.LON)


def _maybe_open(obj: PathLike | xr.Dataset | None) -> xr.Dataset | None:
    if obj is None or isinstance(obj, xr.Dataset):
        return obj
    return xr.open_dataset(obj)


def _pick_year(truth: xr.DataArray, year: int | None) -> tuple[int, str]:
    years = sorted(set(pd.DatetimeIndex(truth[cv.TIME].values).year))
    if year is not None:
        return int(year), "chosen"
    if 2015 in years:
        return 2015, "the paper's drought year"
    jja = evaluation.summer_mean(truth.sel({cv.LAYER: 1}), by_year=True)
    dims = [d for d in jja.dims if d != "year"]
    driest = int(jja.mean(dims).idxmin("year"))
    return driest, "the world's driest summer (JJA mean of layer 1)"


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
    year: int | None = None,
    products: bool = True,
    block: int | None = None,
    seed: int = 0,
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
        a Dataset or a netCDF path; the section is skipped when None.
    transfer
        Result of :func:`xsomo.evaluation.experiments.transfer`, a Dataset or a netCDF path.
    year
        Year of the anomaly maps (default 2015 if in the period, else the driest summer).
    products
        Include the stand-in products (intercomparison).
    block, seed
        Sampling of the cells compared with the average of the datasets: one random cell
        per ``block`` × ``block`` cells. Default: 20 (the paper's, about 300 cells on the
        Europe grid), smaller on small grids so that about 300 blocks remain.

    Returns
    -------
    pathlib.Path
        The ``index.md`` page (``index.html`` lies beside it).
    """
    world = pathlib.Path(world)
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rep = Report(out)
    lay = WorldLayout(world)
    truth_ds = open_truth(world)  # DataFormatError when world is not a sample world
    meta = read_manifest(world) if is_world(world) else {}
    sm = open_prediction(prediction)
    truth = truth_ds[cv.SM].transpose(cv.LAYER, cv.TIME, cv.LAT, cv.LON)
    truth = truth.sel({cv.TIME: slice(sm[cv.TIME].values[0], sm[cv.TIME].values[-1])})
    training = targets if targets is not None else model
    logger.info("report: loading the prediction")
    sm = sm.load()
    truth = truth.load()

    # ------------------------------------------------------------- datasets on the 0.1° grid
    datasets: dict[str, xr.DataArray] = {"xsomo": sm}
    if products and lay.products.is_dir():
        for name, prod in intercomparison.open_products(world).items():
            try:
                reg = intercomparison.regrid_product(prod, sm)
            except Exception as err:  # a product that cannot be regridded is reported, not fatal
                warnings.warn(f"product {name!r} left out of the report: {err}", stacklevel=2)
                continue
            datasets[name] = reg.sel(
                {cv.TIME: slice(sm[cv.TIME].values[0], sm[cv.TIME].values[-1])}
            ).load()

    intro = rep.section("Overview")
    period = f"{pd.Timestamp(sm[cv.TIME].values[0]).date()} to {pd.Timestamp(sm[cv.TIME].values[-1]).date()}"
    intro.append(
        f"Sample world `{world}` (preset `{meta.get('preset', '?')}`, seed {meta.get('seed', '?')}); "
        f"prediction {sm.sizes[cv.LAT]} × {sm.sizes[cv.LON]} cells, {period}. "
        f"Datasets compared: {', '.join(f'`{n}`' for n in datasets)}. Generated by xsomo on "
        f"{_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}."
    )

    # ------------------------------------------------------------- stations
    cosmos = None
    if lay.cosmos.is_dir():
        from xsomo.io import open_cosmos

        cosmos = open_cosmos(lay.cosmos)
    if cosmos is not None:
        sec = rep.section("Skill at the independent COSMOS-like stations")
        if metrics is None:
            metrics = evaluation.evaluate(sm, cosmos, training_cells=training)
        summary = evaluation.summarize(metrics)
        rep.table("station_summary_xsomo", summary)
        df = (
            metrics.drop_vars(["footprint_weights", "weight_layer"], errors="ignore")
            .to_dataframe()
            .reset_index()
        )
        rep.table("station_metrics_xsomo", df)
        n_train = int(metrics["training_cell"].sum()) if "training_cell" in metrics.coords else 0
        sec.append(
            f"{metrics.sizes[cv.STATION]} stations, {n_train} of them in cells that held training targets "
            "(left out of the medians below). Layer 0 is the footprint mix: each station's cosmic-ray "
            "footprint depth (0.15-0.22 m) weighs the layers by their overlap with 0..depth "
            "(`xsomo.evaluation.scores.footprint_weights`); layers 1-3 compare the station with each layer alone."
        )
        sec.append(
            _md_table(
                summary[
                    [
                        c
                        for c in (
                            "layer_label",
                            "n_stations",
                            "pearson_r",
                            "anomaly_r",
                            "urmsd",
                            "bias",
                            "nse",
                            "kge",
                        )
                        if c in summary
                    ]
                ]
            )
        )
        comp = intercomparison.compare_stations(datasets, cosmos, training_cells=training)
        rows = []
        for p in comp["product"].values:
            s = evaluation.summarize(comp.sel(product=p, drop=True))
            s.insert(0, "dataset", str(p))
            rows.append(s)
        comp_sum = pd.concat(rows, ignore_index=True)
        rep.table("station_summary_all", comp_sum)
        sec.append("**All datasets at the same stations** (median over independent stations):")
        pivot = comp_sum.pivot_table(
            index="dataset", columns="layer_label", values="pearson_r", sort=False
        ).reset_index()
        sec.append(_md_table(pivot))
        fp = comp_sum[comp_sum["layer"] == evaluation.FOOTPRINT_LAYER].set_index("dataset")[
            "pearson_r"
        ]
        if "xsomo" in fp and len(fp) > 1:
            others = fp.drop("xsomo")
            beats = bool(np.all(fp["xsomo"] > others.dropna())) and others.notna().any()
            sec.append(
                f"Quality bar — xsomo's median r at the stations (footprint mix) is **{fp['xsomo']:.3f}**; "
                + ", ".join(f"{k.replace('_like', '')} {v:.3f}" for k, v in others.items())
                + (
                    ". xsomo is **higher than every product**."
                    if beats
                    else ". xsomo is **not** higher than every product."
                )
            )
        rep.figure(
            "fig4a_stations_boxplot",
            plotting.metric_boxplots(
                comp, title="datasets against the COSMOS-like stations (all stations)"
            ),
        )
        sec.append("![Station box plots](figures/fig4a_stations_boxplot.png)")
        background = evaluation.summer_mean(sm.sel({cv.LAYER: 1})).assign_attrs(
            long_name="JJA mean layer 1 (m³ m⁻³)"
        )
        rep.figure(
            "stations_map",
            plotting.station_map(
                background, metrics, title="xsomo r at the stations (footprint mix)"
            ),
        )
        sec.append("![Station map](figures/stations_map.png)")
        st_ids = metrics[cv.STATION].values[
            np.argsort(-metrics["n"].sel(layer=metrics[cv.LAYER].values[0]).values)
        ][:4]
        obs = cosmos[cv.SM].sel({cv.STATION: st_ids})
        w = (
            metrics["footprint_weights"].sel({cv.STATION: st_ids})
            if "footprint_weights" in metrics.coords
            else None
        )
        sims = {}
        for name, da in datasets.items():
            rr, cc, _ = evaluation.match_stations(da, obs[cv.LAT].values, obs[cv.LON].values)
            pts = da.isel(
                {
                    cv.LAT: xr.DataArray(rr, dims=cv.STATION),
                    cv.LON: xr.DataArray(cc, dims=cv.STATION),
                }
            )
            pts = pts.assign_coords({cv.STATION: st_ids})
            if w is not None:
                pts = (
                    pts.sel({cv.LAYER: [1, 2, 3]})
                    * w.rename(weight_layer=cv.LAYER).assign_coords({cv.LAYER: [1, 2, 3]})
                ).sum(cv.LAYER, skipna=False)
            else:
                pts = pts.sel({cv.LAYER: 1})
            sims[name] = pts.transpose(cv.STATION, cv.TIME)
        rep.figure(
            "stations_series",
            plotting.station_series(
                obs, sims, title="footprint mix of each dataset and the station"
            ),
        )
        sec.append("![Station series](figures/stations_series.png)")

    # ------------------------------------------------------------- against the truth
    sec = rep.section("Skill against the known truth (every land cell)")
    grid_rows = []
    maps = {}
    for name, da in datasets.items():
        m = evaluation.evaluate_grid(da, truth, anomaly=name == "xsomo")
        maps[name] = m
        for lay in m[cv.LAYER].values:
            mm = m.sel({cv.LAYER: lay})
            row = {
                "dataset": name,
                "layer": int(lay),
                "n_cells": int(mm["pearson_r"].notnull().sum()),
            }
            for k in ("pearson_r", "urmsd", "bias", "nse", "anomaly_r"):
                if k in mm:
                    row[k] = float(mm[k].median())
            grid_rows.append(row)
    truth_tab = pd.DataFrame(grid_rows)
    rep.table("truth_skill", truth_tab)
    if training is not None:
        lat_lon = evaluation._training_latlon(training)
        if lat_lon is not None and lat_lon.size:
            rr, cc, inside = evaluation.match_stations(sm, lat_lon[:, 0], lat_lon[:, 1])
            flag = np.zeros((sm.sizes[cv.LAT], sm.sizes[cv.LON]), bool)
            flag[rr[inside], cc[inside]] = True
            flag_da = xr.DataArray(
                flag, dims=(cv.LAT, cv.LON), coords={cv.LAT: sm[cv.LAT], cv.LON: sm[cv.LON]}
            )
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
            sec.append(
                "xsomo against the truth, cells that held training targets vs independent cells (medians):"
            )
            sec.append(_md_table(split_df))
    sec.append("Median over land cells of each dataset against the truth:")
    sec.append(
        _md_table(
            truth_tab.pivot_table(index="dataset", columns="layer", values="pearson_r", sort=False)
            .add_prefix("r layer ")
            .reset_index()
        )
    )
    fig = plotting.anomaly_maps(
        {
            f"r {plotting._layer_title(k)}": maps["xsomo"]["pearson_r"].sel({cv.LAYER: k}) * 2 - 1
            for k in maps["xsomo"][cv.LAYER].values
        },
        vlim=1.0,
        title="xsomo r against the truth (colour scale 2r-1: -1 = r 0, +1 = r 1)",
    )
    rep.figure("truth_r_maps", fig)
    sec.append("![r maps](figures/truth_r_maps.png)")

    # ------------------------------------------------------------- intercomparison with the product average
    if len(datasets) > 2:
        sec = rep.section("Intercomparison: each dataset against the average of the others")
        if block is None:
            block = int(min(20, max(2, np.sqrt(sm.sizes[cv.LAT] * sm.sizes[cv.LON] / 300))))
        cmp = intercomparison.compare_to_mean(datasets, block=block, seed=seed)
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
            plotting.metric_boxplots(
                cmp, sample_dim=cv.CELL, title="datasets against the average of the other datasets"
            ),
        )
        sec.append("![Product-mean box plots](figures/fig4b_product_mean_boxplot.png)")

    # ------------------------------------------------------------- maps and anomalies (Fig. 5)
    sec = rep.section("Summer means and anomalies")
    summer = {name: evaluation.summer_mean(da) for name, da in {**datasets, "truth": truth}.items()}
    for lay in (1, 3):
        rep.figure(f"fig5a_summer_mean_layer{lay}", plotting.summer_maps(summer, layer=lay))
        sec.append(f"![JJA mean layer {lay}](figures/fig5a_summer_mean_layer{lay}.png)")
    yr, why = _pick_year(truth, year)
    z = {
        name: evaluation.anomalies(da)["sm_anomaly"]
        for name, da in {"xsomo": sm, "truth": truth}.items()
    }
    z_year = {name: evaluation.summer_mean(v.sel({cv.TIME: str(yr)})) for name, v in z.items()}
    rep.figure(
        "fig5b_anomaly_xsomo",
        plotting.anomaly_maps(z_year["xsomo"], title=f"xsomo: JJA {yr} normalised anomaly ({why})"),
    )
    rep.figure(
        "fig5b_anomaly_truth",
        plotting.anomaly_maps(z_year["truth"], title=f"truth: JJA {yr} normalised anomaly"),
    )
    sec.append(
        f"Normalised anomalies (z-scores against the 31-day moving daily climatology of {period}), summer {yr}, {why}:"
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
    if "region" in truth_ds:
        region = truth_ds["region"]
        names = meta.get("regions", {"1": "us", "2": "europe"})
        series: dict[str, list[xr.DataArray]] = {"xsomo": [], "truth": []}
        for code, rname in sorted(names.items()):
            mask = region == int(code)
            if not bool(mask.any()):
                continue
            for src, zz in z.items():
                s = zz.where(mask).mean((cv.LAT, cv.LON)).resample({cv.TIME: "QS-DEC"}).mean()
                series[src].append(s.expand_dims(region=[str(rname)]))
        if series["xsomo"]:
            ser = xr.concat(series["xsomo"], dim="region")
            ref = xr.concat(series["truth"], dim="region")
            rep.figure(
                "figS6_regional_anomalies",
                plotting.regional_series(
                    ser,
                    reference=ref,
                    title="seasonal (DJF, MAM, JJA, SON) mean normalised anomaly per region; dashed: truth",
                ),
            )
            sec.append(
                "Seasonal mean anomalies per region (region masks from the world's `region` variable):"
            )
            sec.append("![regional anomalies](figures/figS6_regional_anomalies.png)")
            both = xr.Dataset({"z_xsomo": ser, "z_truth": ref})
            rep.table("regional_seasonal_anomalies", both.to_dataframe().reset_index())

    # ------------------------------------------------------------- memory and experiments
    from xsomo.evaluation import experiments

    sec = rep.section("Memory of the truth and the lookback permutation")
    scales = experiments.memory_timescales(truth, seed=seed)
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
        f"median over {scales.attrs['n_cells']} land cells; e-folding time per layer:"
    )
    sec.append(_md_table(tab, floatfmt="{:.0f}"))
    sec.append("![memory](figures/memory_truth_acf.png)")
    perm = _maybe_open(memory)
    if perm is not None:
        rep.figure("fig2_lookback_permutation", plotting.lookback_curves(perm))
        ptab = perm[["nse", "pearson_r"]].to_dataframe().reset_index()
        rep.table("lookback_permutation", ptab)
        sec.append(
            f"Lookback permutation ({perm.attrs.get('days_per_cell', '?')} random days at each of "
            f"{perm.sizes.get(cv.CELL, '?')} cells; window {perm.attrs.get('lookback', '?')} days): all but the last n days "
            "of each input window shuffled in time; median over cells of NSE and r against the truth."
        )
        sec.append(_md_table(perm["nse"].to_pandas().add_prefix("NSE layer ").reset_index()))
        sec.append(_md_table(perm["pearson_r"].to_pandas().add_prefix("r layer ").reset_index()))
        need_r = experiments.days_needed(perm, metric="pearson_r")
        need_nse = experiments.days_needed(perm, metric="nse")
        days, ratios = [], []
        for lay in perm[cv.LAYER].values:
            n_r = int(need_r.sel({cv.LAYER: lay}))
            days.append(f"layer {int(lay)}: {n_r} / {int(need_nse.sel({cv.LAYER: lay}))}")
            efold = float(scales["efold_days"].sel({cv.LAYER: lay})) if lay in scales[cv.LAYER].values else 0.0
            if efold > 0:
                ratios.append(f"layer {int(lay)}: {n_r / efold:.1f}×")
        sec.append(
            "Days that must stay in order for 95 % of the skill the whole window adds (r / NSE): "
            + "; ".join(days)
            + ". In units of the truth's median e-folding time (above): "
            + "; ".join(ratios)
            + " (r)."
        )
        sec.append("![lookback](figures/fig2_lookback_permutation.png)")
    else:
        sec.append(
            "The lookback permutation was not run for this report (`xsomo experiment memory`)."
        )
    res = _maybe_open(transfer)
    if res is not None:
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

    # ------------------------------------------------------------- tables list and page
    sec = rep.section("Files")
    sec.append("\n".join(f"- [`tables/{p.name}`](tables/{p.name})" for p in rep.tables.values()))
    index = _write_pages(rep, title="xsomo evaluation report")
    return index


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
    _atomic_text(index, "\n".join(md))
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
    _atomic_text(rep.out / "index.html", page)
    return index


def _inline(text: str) -> str:
    import re

    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
    t = re.sub(r"\[(.+?)\]\((.+?)\)", r"<a href='\2'>\1</a>", t)
    return t


def _md_block_to_html(block: str) -> str:
    import re

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
