"""A day-by-day stack of one soil layer for QGIS's Temporal Controller: a VRT and a layer definition.

Standard library only: this one file is shared by xsomo (``xsomo export --out sm.vrt``) and
the QGIS plugin (``xsomo:timelayer``; ``plugins/qgis/xsomo_qgis/time_stack.py`` is a git
symlink to it, copied into the plugin zip).

- :func:`vrt_xml`: a GDAL VRT with one band per day, each band a band of the SoMo.ml files
  (``NETCDF:"file.nc":layerN``), its description the date (``2018-07-15``, not
  ``time=17727 (days since 1970...)``), unit ``m3 m-3``, NaN as nodata. A packed or filled
  file's band (int16 with ``scale_factor``/``add_offset``, a ``_FillValue`` such as -9999)
  is read through a ``ComplexSource`` that unpacks it (``ScaleRatio``/``ScaleOffset``) and
  leaves its fill value NaN (``NODATA``): the VRT holds soil moisture in m3 m-3 as
  :func:`xsomo.open_somo` reads it, and GDAL, rasterio and QGIS read the same numbers.
- :func:`qlr_xml`: a QGIS layer definition (``.qlr``) of one group with one raster layer per
  day: the VRT drawn with that day's band, temporal mode "fixed range" on that day and
  the sequential soil-moisture ramp. Loading it (Layer > Add from Layer Definition File,
  or drag and drop) gives a group the Temporal Controller steps through, in QGIS 3.22
  and in later releases alike.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Sequence
from typing import Optional, Union
from xml.sax.saxutils import escape, quoteattr

__all__ = ["qlr_xml", "vrt_xml"]

# (Optional/Union, not X | None: these aliases are evaluated on import, and the plugin's
# Python may be 3.9, as QGIS 3.22 bundles on Windows)

#: how GDAL unpacks a source band: (scale, offset, nodata): value = raw * scale + offset, raw
#: values equal to nodata (the file's _FillValue; None: none) are NaN
Packing = tuple[float, float, Optional[float]]  # noqa: UP045
#: one day of the stack: (GDAL dataset name, band in it, date), and optionally its Packing
#: (None, or left out: the band's values are the data, NaN the missing ones)
Source = Union[tuple[str, int, dt.date], tuple[str, int, dt.date, Optional[Packing]]]  # noqa: UP007, UP045


def _num(x: float) -> str:
    """A number as GDAL's VRT parser reads it back exactly (nan, inf, -32768.0, 9.99999974737875e-05)."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


def _source_lines(name: str, band: int, packing: Packing | None) -> list[str]:
    """The ``<SimpleSource>`` of a plain band, or the ``<ComplexSource>`` unpacking a packed one."""
    head = [
        f'      <SourceFilename relativeToVRT="0">{escape(name)}</SourceFilename>',
        f"      <SourceBand>{int(band)}</SourceBand>",
    ]
    scale, offset, nodata = packing if packing is not None else (1.0, 0.0, None)
    scaled = (float(scale), float(offset)) != (1.0, 0.0)
    if not scaled and (nodata is None or math.isnan(float(nodata))):
        # the raw values are the data and NaN already the missing ones
        return ["    <SimpleSource>", *head, "    </SimpleSource>"]
    lines = ["    <ComplexSource>", *head]
    if scaled:
        lines += [f"      <ScaleOffset>{_num(offset)}</ScaleOffset>", f"      <ScaleRatio>{_num(scale)}</ScaleRatio>"]
    if nodata is not None:
        # compared with the raw values, before scaling; those pixels keep the band's NaN
        lines.append(f"      <NODATA>{_num(nodata)}</NODATA>")
    return [*lines, "    </ComplexSource>"]


def vrt_xml(
    sources: Sequence[Source],
    *,
    nx: int,
    ny: int,
    geotransform: Sequence[float],
    srs_wkt: str,
    unit: str = "m3 m-3",
    layer: int | None = None,
) -> str:
    """The text of a VRT stacking ``sources`` (one band per day, in the order given).

    A source with a :data:`Packing` is unpacked by GDAL as it reads (the VRT's bands are
    Float32 soil moisture, NaN where the source holds its fill value).

    Examples
    --------
    >>> text = vrt_xml([('NETCDF:"a.nc":layer1', 3, dt.date(2010, 1, 3))], nx=2, ny=1,
    ...                geotransform=(0, 0.1, 0, 1, 0, -0.1), srs_wkt="EPSG:4326")
    >>> "<Description>2010-01-03</Description>" in text and "<SourceBand>3</SourceBand>" in text
    True
    >>> packed = vrt_xml([('NETCDF:"p.nc":layer1', 1, dt.date(2010, 1, 1), (1e-4, 0.0, -32768))], nx=2, ny=1,
    ...                  geotransform=(0, 0.1, 0, 1, 0, -0.1), srs_wkt="EPSG:4326")
    >>> "<ScaleRatio>0.0001</ScaleRatio>" in packed and "<NODATA>-32768.0</NODATA>" in packed
    True
    """
    gt = ", ".join(repr(float(v)) for v in geotransform)
    lines = [
        f'<VRTDataset rasterXSize="{int(nx)}" rasterYSize="{int(ny)}">',
        f'  <SRS dataAxisToSRSAxisMapping="2,1">{escape(srs_wkt)}</SRS>',
        f"  <GeoTransform>{gt}</GeoTransform>",
        "  <Metadata>",
        f'    <MDI key="xsomo_layer">{"" if layer is None else int(layer)}</MDI>',
        f'    <MDI key="first_day">{sources[0][2].isoformat() if sources else ""}</MDI>',
        f'    <MDI key="last_day">{sources[-1][2].isoformat() if sources else ""}</MDI>',
        "  </Metadata>",
    ]
    for k, src in enumerate(sources, start=1):
        name, band, day = src[0], src[1], src[2]
        packing = src[3] if len(src) > 3 else None  # type: ignore[misc]
        lines += [
            f'  <VRTRasterBand dataType="Float32" band="{k}">',
            f"    <Description>{day.isoformat()}</Description>",
            "    <NoDataValue>nan</NoDataValue>",
            f"    <UnitType>{escape(unit)}</UnitType>",
            "    <Metadata>",
            f'      <MDI key="date">{day.isoformat()}</MDI>',
            "    </Metadata>",
            *_source_lines(name, int(band), packing),
            "  </VRTRasterBand>",
        ]
    lines.append("</VRTDataset>")
    return "\n".join(lines) + "\n"


def _pipe(style_qml: str, band: int) -> str:
    """The ``<pipe>`` of a QML style, drawing ``band``."""
    start = style_qml.index("<pipe>")
    end = style_qml.index("</pipe>") + len("</pipe>")
    return style_qml[start:end].replace('band="1"', f'band="{int(band)}"', 1)


def qlr_xml(vrt_path: str, days: Sequence[dt.date], *, group: str, style_qml: str, id_prefix: str = "xsomo") -> str:
    """A QGIS layer definition: group ``group`` with one layer per day of ``vrt_path`` (band k = ``days[k-1]``).

    Every layer has temporal mode 0 ("fixed temporal range") over its day and the
    ``style_qml`` renderer on its band; only the first layer is checked, the Temporal
    Controller shows each in turn.
    """
    src = os.path.abspath(vrt_path)
    tree, layers = [], []
    for k, day in enumerate(days, start=1):
        lid = f"{id_prefix}_{day:%Y%m%d}_{k}"
        name = day.isoformat()
        tree.append(
            f'      <layer-tree-layer checked="Qt::Checked" expanded="0" id={quoteattr(lid)} '
            f"name={quoteattr(name)} source={quoteattr(src)} providerKey=\"gdal\"><customproperties/></layer-tree-layer>"
        )
        layers.append(
            "    <maplayer type=\"raster\" refreshOnNotifyEnabled=\"0\" autoRefreshEnabled=\"0\" styleCategories=\"AllStyleCategories\">\n"
            f"      <id>{escape(lid)}</id>\n"
            f"      <datasource>{escape(src)}</datasource>\n"
            f"      <layername>{escape(name)}</layername>\n"
            "      <srs><spatialrefsys><authid>EPSG:4326</authid></spatialrefsys></srs>\n"
            "      <provider>gdal</provider>\n"
            '      <temporal mode="0" fetchMode="0" enabled="1">\n'
            f"        <fixedRange><start>{day:%Y-%m-%d}T00:00:00Z</start><end>{day:%Y-%m-%d}T23:59:59Z</end></fixedRange>\n"
            "      </temporal>\n"
            f"      {_pipe(style_qml, k)}\n"
            "      <blendMode>0</blendMode>\n"
            "    </maplayer>"
        )
    return (
        "<!DOCTYPE qgis-layer-definition>\n<qlr>\n"
        '  <layer-tree-group checked="Qt::Checked" expanded="1" name="">\n    <customproperties/>\n'
        f'    <layer-tree-group checked="Qt::Checked" expanded="0" name={quoteattr(group)} mutually-exclusive="0">\n'
        "      <customproperties/>\n" + "\n".join(tree) + "\n    </layer-tree-group>\n  </layer-tree-group>\n"
        "  <maplayers>\n" + "\n".join(layers) + "\n  </maplayers>\n</qlr>\n"
    )
