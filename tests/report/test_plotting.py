"""Figures fit for a paper (issue 19 item 7): 300 dpi and vector files, °E/°N labels, colour
ranges from the data, no empty panels, legends outside the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

from xsomo import conventions as cv
from xsomo.exceptions import XsomoValueError
from xsomo.report import plotting


def _field(seed: int = 0, nan: bool = False) -> xr.DataArray:
    g = cv.GridSpec(west=-1.0, east=1.0, south=40.0, north=41.0)
    rng = np.random.default_rng(seed)
    vals = np.full(g.shape, np.nan) if nan else 0.2 + 0.1 * rng.random(g.shape)
    return xr.DataArray(vals, dims=("lat", "lon"), coords=g.coords())


def test_save_writes_300_dpi_png_and_vector_files(tmp_path):
    fig = plotting.summer_maps({"a": _field(0), "b": _field(1)})
    path = plotting.save(fig, tmp_path / "f.png", vector=("pdf", "svg"))
    with Image.open(path) as im:
        dpi = im.info["dpi"]
    assert dpi == pytest.approx((300, 300), abs=0.5)
    assert (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:2000]
    assert plotting.vector_formats("pdf, SVG") == ("pdf", "svg")
    with pytest.raises(XsomoValueError, match="eps"):
        plotting.vector_formats(["eps"])


def _tick_texts(ax) -> list[str]:
    ax.figure.canvas.draw()
    return [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]


def test_maps_have_degree_labels_and_leave_empty_products_out():
    fig = plotting.summer_maps({"xsomo": _field(0), "covers_nothing": _field(nan=True), "truth": _field(2)})
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["xsomo", "truth"]
    texts = _tick_texts(panels[0])
    assert any(t.endswith(("°E", "°W")) for t in texts), texts
    assert any(t.endswith("°N") for t in texts), texts
    assert "nan" not in " ".join(texts).lower()


def test_colour_ranges_come_from_the_data():
    m = _field(0)
    # station r between 0.90 and 0.99: the colour range spans those values, not 0..1
    rs = np.linspace(0.90, 0.99, 10)
    metrics = xr.Dataset(
        {"pearson_r": (("station", "layer"), rs[:, None])},
        coords={"station": np.arange(10), "layer": [0], "lat": ("station", np.linspace(40.1, 40.9, 10)),
                "lon": ("station", np.linspace(-0.9, 0.9, 10))},
    )
    fig = plotting.station_map(m, metrics)
    sc = next(c for c in fig.axes[0].collections if c.get_array() is not None and c.get_array().size == 10)
    lo, hi = sc.get_clim()
    assert (lo, hi) == pytest.approx(tuple(np.percentile(rs, [2, 98])))
    # anomaly maps: a diverging range symmetric about 0, from the data
    z = _field(3) - 0.25
    fig = plotting.anomaly_maps({"z": z})
    mesh = fig.axes[0].collections[0]
    lo, hi = mesh.get_clim()
    assert lo == -hi == pytest.approx(-np.percentile(np.abs(z.values), 98))


def test_regional_series_legend_is_outside_the_panels():
    t = pd.date_range("2015-03-01", periods=8, freq="QS-DEC")
    s = xr.DataArray(np.random.default_rng(0).standard_normal((2, 3, t.size)), dims=("region", "layer", "time"),
                     coords={"region": ["a", "b"], "layer": [1, 2, 3], "time": t})
    fig = plotting.regional_series(s, reference=s * 0.9)
    fig.canvas.draw()
    assert fig.legends and not any(ax.get_legend() for ax in fig.axes)
    legend_box = fig.legends[0].get_window_extent()
    for ax in fig.axes:
        assert not legend_box.overlaps(ax.get_window_extent())


def _importance_result(seed: int = 0) -> xr.Dataset:
    """A result of input_importance's form with random drops (some negative, one NaN input)."""
    rng = np.random.default_rng(seed)
    names = ["precipitation", "net_radiation", "sand_top", "clay_top"]
    drops = rng.normal(0.05, 0.1, (4, 3, 5))
    drops[3, 2] = np.nan  # an input never scored in layer 3
    return xr.Dataset(
        {
            "r_drop": (("input", "layer", "repeat"), drops),
            "nse_drop": (("input", "layer", "repeat"), 2 * drops + 0.01),
            "r": (("layer",), [0.9, 0.8, 0.7]),
            "nse": (("layer",), [0.7, 0.6, 0.5]),
            "kind": (("input",), ["dynamic", "static", "static", "dynamic"]),
        },
        coords={"input": names, "layer": [1, 2, 3], "repeat": np.arange(5)},
    )


def test_importance_bars_draw_the_results_numbers():
    """Each bar is the median over repeats of the result's drop, its whisker spans min..max; dynamic
    inputs above static ones, coloured by kind (read back from the figure's artists)."""
    res = _importance_result()
    fig = plotting.importance_bars(res)
    axes = fig.axes[:6]
    order = ["precipitation", "clay_top", "net_radiation", "sand_top"]  # dynamic first, result order kept
    assert [t.get_text() for t in axes[0].get_yticklabels()] == order
    for a, metric in enumerate(("r_drop", "nse_drop")):
        for b, lay in enumerate((1, 2, 3)):
            ax = axes[3 * a + b]
            (bars,) = [c for c in ax.containers if c.get_label() == f"{metric} layer {lay}"]
            raw = res[metric].sel(layer=lay, input=order).values  # (input, repeat)
            with np.errstate(all="ignore"), pytest.warns(RuntimeWarning) if lay == 3 else _nullcontext():
                med, lo, hi = np.nanmedian(raw, 1), np.nanmin(raw, 1), np.nanmax(raw, 1)
            widths = np.array([r.get_width() for r in bars.patches])
            np.testing.assert_allclose(widths, med, rtol=1e-12, equal_nan=True)
            ys = np.array([r.get_y() + r.get_height() / 2 for r in bars.patches])
            assert np.all(np.diff(ys) < 0)  # first input on top
            segs = bars.errorbar.lines[2][0].get_segments()
            # an input without a number (NaN) draws no whisker (an empty segment)
            ends = np.array([[s[0][0], s[1][0]] if len(s) else [np.nan, np.nan] for s in segs])
            np.testing.assert_allclose(ends[:, 0], lo, rtol=1e-12, equal_nan=True)
            np.testing.assert_allclose(ends[:, 1], hi, rtol=1e-12, equal_nan=True)
            kinds = [str(res.kind.sel(input=n).item()) for n in order]
            colors = [plotting.KIND_COLORS[k] for k in kinds]
            assert [r.get_facecolor() for r in bars.patches] == [_rgba(c) for c in colors]
            intact = float(res["r" if metric == "r_drop" else "nse"].sel(layer=lay))
            assert f"{intact:.2f}" in ax.get_title()


def test_importance_bars_reject_unknown_metrics():
    with pytest.raises(XsomoValueError, match="choose from"):
        plotting.importance_bars(_importance_result(), metrics=("kge_drop",))


def _rgba(color: str) -> tuple[float, ...]:
    from matplotlib.colors import to_rgba

    return to_rgba(color)


def _nullcontext():
    import contextlib

    return contextlib.nullcontext()
