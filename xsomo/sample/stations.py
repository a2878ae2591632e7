"""Synthetic in-situ stations: ISMN "Header+values" folders and COSMOS-style cosmic-ray stations.

Sensors see the truth of the layers they span (depth-weighted) through their own
gain, offset, slow drift, noise, a station-scale representativeness error, a small
diurnal wiggle, gaps, spikes and quality flags. Files are formatted column-wise with
numpy (no Python loop over lines), so a few million hourly lines take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from xsomo.conventions import LAYERS
from xsomo.sample.fields import rng_for

_S_PLACE = 40

#: Layer centres (m) used to interpolate point sensors between layers.
_CENTRES = np.array([(lay.top + lay.bottom) / 2 for lay in LAYERS])


@dataclass(frozen=True)
class Network:
    name: str
    region: int
    instrument: str
    depths: tuple[tuple[float, float], ...]
    weight: float = 1.0


NETWORKS: tuple[Network, ...] = (
    Network(
        "SYNSCAN",
        1,
        "Hydraprobe-Analog",
        ((0.05, 0.05), (0.10, 0.10), (0.20, 0.20), (0.50, 0.50)),
        1.5,
    ),
    Network(
        "SYNUSCRN",
        1,
        "Stevens-Hydraprobe-II-Sdi-12",
        ((0.05, 0.05), (0.10, 0.10), (0.20, 0.20), (0.50, 0.50)),
    ),
    Network("SYNSOILSCAPE", 1, "EC5", ((0.05, 0.05), (0.20, 0.20), (0.40, 0.40)), 0.7),
    Network("SYNPROFILE", 1, "EnviroSCAN", ((0.05, 0.10), (0.10, 0.20), (0.20, 0.50)), 0.6),
    Network(
        "SYNSMOSMANIA",
        2,
        "ThetaProbe-ML2X",
        ((0.05, 0.05), (0.10, 0.10), (0.20, 0.20), (0.30, 0.30)),
    ),
    Network("SYNTERENO", 2, "Hydraprobe-II", ((0.05, 0.05), (0.20, 0.20), (0.50, 0.50))),
    Network("SYNREMEDHUS", 2, "Stevens-Hydra-Probe", ((0.00, 0.05),), 0.6),
    Network(
        "SYNRSMN", 2, "Meter-5TM", ((0.00, 0.05), (0.05, 0.10), (0.30, 0.30), (0.40, 0.40)), 0.8
    ),
)

_SYLLABLES = [
    "ka",
    "lo",
    "ve",
    "mar",
    "tin",
    "sel",
    "bra",
    "dun",
    "or",
    "ri",
    "la",
    "ne",
    "ost",
    "fel",
    "gar",
    "ham",
    "ber",
    "ton",
    "mo",
    "sa",
    "pi",
    "ran",
    "del",
    "cor",
    "vik",
    "len",
    "wa",
    "ty",
    "bu",
    "ser",
    "go",
    "hal",
    "mun",
]


def station_name(rng: np.random.Generator, used: set[str]) -> str:
    """A made-up station name not in ``used`` (added to it)."""
    while True:
        n = int(rng.integers(2, 4))
        name = "".join(rng.choice(_SYLLABLES, n)).capitalize()
        if name not in used:
            used.add(name)
            return name


def sensor_weights(top: float, bottom: float) -> np.ndarray:
    """Weights of the three truth layers seen by a sensor at ``top``-``bottom`` m.

    Interval sensors average the layers they overlap (by overlap length); point
    sensors interpolate linearly between the layer centres (clamped at the ends).
    """
    if bottom - top > 1e-9:
        w = np.array([max(0.0, min(bottom, lay.bottom) - max(top, lay.top)) for lay in LAYERS])
        return w / w.sum()
    z = float(np.clip(top, _CENTRES[0], _CENTRES[-1]))
    j = int(np.clip(np.searchsorted(_CENTRES, z) - 1, 0, len(_CENTRES) - 2))
    f = (z - _CENTRES[j]) / (_CENTRES[j + 1] - _CENTRES[j])
    w = np.zeros(3)
    w[j], w[j + 1] = 1.0 - f, f
    return w


@dataclass
class Sensor:
    sensor: str
    depth_top: float
    depth_bottom: float
    start: pd.Timestamp
    end: pd.Timestamp
    file: str = ""
    params: dict[str, float] = field(default_factory=dict)


@dataclass
class Station:
    network: str
    station: str
    lat: float
    lon: float
    row: int
    col: int
    region: int
    elevation: float = 0.0
    sensors: list[Sensor] = field(default_factory=list)

    def manifest(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "station": self.station,
            "lat": self.lat,
            "lon": self.lon,
            "row": self.row,
            "col": self.col,
            "region": self.region,
            "elevation": round(self.elevation, 1),
            "sensors": [
                {
                    "sensor": s.sensor,
                    "depth_top": s.depth_top,
                    "depth_bottom": s.depth_bottom,
                    "start": str(s.start.date()),
                    "end": str(s.end.date()),
                    "file": s.file,
                }
                for s in self.sensors
            ],
        }


def record(
    rng: np.random.Generator, time: pd.DatetimeIndex, years: tuple[float, float]
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day of a record of ``years`` (uniform range) length inside ``time``."""
    n = time.size
    length = int(min(n, max(120, rng.uniform(*years) * 365.25)))
    first = int(rng.integers(0, n - length + 1))
    return time[first], time[first + length - 1]


def place_ismn(
    *,
    seed: int,
    grid_lat: np.ndarray,
    grid_lon: np.ndarray,
    region: np.ndarray,
    n_stations: int,
    us_share: float,
    time: pd.DatetimeIndex,
    record_years: tuple[float, float],
) -> list[Station]:
    """Choose ISMN stations: networks cluster around centres inside their region.

    Stations may share a cell (their series are averaged by the target builder).
    """
    rng = rng_for(seed, _S_PLACE)
    res = float(np.round(grid_lat[1] - grid_lat[0], 6)) if grid_lat.size > 1 else 0.1
    stations: list[Station] = []
    used: set[str] = set()
    n_us = round(n_stations * us_share)
    for reg, count in ((1, n_us), (2, n_stations - n_us)):
        rows, cols = np.nonzero(region == reg)
        if count == 0 or rows.size == 0:
            continue
        nets = [n for n in NETWORKS if n.region == reg]
        weights = np.array([n.weight for n in nets])
        share = rng.multinomial(count, weights / weights.sum())
        for net, k in zip(nets, share, strict=True):
            if k == 0:
                continue
            centre = int(rng.integers(rows.size))
            spread = max(3.0, 0.25 * np.hypot(np.ptp(rows), np.ptp(cols)))
            for _ in range(k):
                d = np.hypot(rows - rows[centre], cols - cols[centre])
                p = np.exp(-0.5 * (d / spread) ** 2)
                i = int(rng.choice(rows.size, p=p / p.sum()))
                r, c = int(rows[i]), int(cols[i])
                lat = float(np.round(grid_lat[r] + rng.uniform(-0.48, 0.48) * res, 5))
                lon = float(np.round(grid_lon[c] + rng.uniform(-0.48, 0.48) * res, 5))
                st = Station(net.name, station_name(rng, used), lat, lon, r, c, reg)
                start, end = record(rng, time, record_years)
                n_sens = int(
                    min(len(net.depths), rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.2, 0.1]))
                )
                # the shallowest depth and n_sens - 1 others
                idx = [
                    0,
                    *sorted(
                        rng.choice(
                            np.arange(1, len(net.depths)), n_sens - 1, replace=False
                        ).tolist()
                    ),
                ]
                depths = [net.depths[j] for j in idx]
                if rng.uniform() < 0.12:  # a second probe at the shallowest depth
                    depths.append(depths[0])
                seen: dict[tuple[float, float], int] = {}
                for top, bottom in depths:
                    letter = "ABCD"[seen.get((top, bottom), 0)]
                    seen[(top, bottom)] = seen.get((top, bottom), 0) + 1
                    s0, s1 = start, end
                    if rng.uniform() < 0.3:  # a sensor installed later or removed earlier
                        cut = pd.Timedelta(days=int(rng.integers(30, 300)))
                        if rng.uniform() < 0.5 and s0 + cut < s1 - pd.Timedelta(days=120):
                            s0 = s0 + cut
                        elif s1 - cut > s0 + pd.Timedelta(days=120):
                            s1 = s1 - cut
                    st.sensors.append(Sensor(f"{net.instrument}-{letter}", top, bottom, s0, s1))
                stations.append(st)
    return stations


# ----------------------------------------------------------------------------- observation model


def _hourly_from_daily(
    daily: np.ndarray, first_day: pd.Timestamp, hours: pd.DatetimeIndex
) -> np.ndarray:
    """Linear interpolation of values valid at 12 UTC of each day to the given hours."""
    x_day = np.arange(daily.size) * 24.0 + 12.0
    x_hour = (hours - first_day).total_seconds().to_numpy() / 3600.0
    return np.interp(x_hour, x_day, daily)


def simulate_sensor(
    rng: np.random.Generator,
    *,
    truth: np.ndarray,
    tair: np.ndarray,
    time: pd.DatetimeIndex,
    sensor: Sensor,
    porosity: float,
    station_error: np.ndarray,
) -> pd.DataFrame:
    """Hourly readings of one sensor: ``value`` (m3 m-3, 3 decimals) and ``flag`` (ISMN codes).

    Parameters
    ----------
    truth
        Daily truth ``(time, layer)`` of the sensor's cell.
    tair
        Daily mean air temperature (K) of the cell, for the frozen-soil flags.
    station_error
        Daily representativeness error ``(time, layer)`` shared by the station's sensors.
    """
    w = sensor_weights(sensor.depth_top, sensor.depth_bottom)
    i0 = time.get_loc(sensor.start)
    i1 = time.get_loc(sensor.end) + 1
    daily = (truth[i0:i1] + station_error[i0:i1]) @ w
    t_daily = tair[i0:i1]
    hours = pd.date_range(sensor.start, sensor.end + pd.Timedelta(hours=23), freq="h")
    n = hours.size
    base = _hourly_from_daily(daily, sensor.start, hours)
    hod = hours.hour.to_numpy()
    shallow = w[0]
    base = base * (1.0 + 0.01 * shallow * np.sin(2 * np.pi * (hod - 16) / 24.0))
    gain = rng.uniform(0.8, 1.2)
    offset = rng.normal(0.0, 0.025)
    if rng.uniform() < 0.12:
        offset = -abs(offset) - rng.uniform(
            0.03, 0.07
        )  # a badly calibrated sensor, negative when dry
    drift = rng.normal(0.0, 0.006) * (np.arange(n) / 8766.0)  # per year
    noise_sd = rng.uniform(0.003, 0.01)
    eps = rng.standard_normal(n)
    phi = 0.8
    noise = np.empty(n)
    # AR(1) noise via a stable recursion on blocks (scipy's lfilter is exact and fast)
    from scipy.signal import lfilter

    noise = lfilter([np.sqrt(1 - phi**2)], [1.0, -phi], eps) * noise_sd
    value = offset + gain * base + drift + noise
    flags = np.zeros(n, np.int8)  # 0 G, 1 C01, 2 C02, 3 C03, 4 D02, 5 D06
    spikes = rng.uniform(size=n) < 0.001
    value[spikes] += rng.choice([-1.0, 1.0], spikes.sum()) * rng.uniform(0.05, 0.15, spikes.sum())
    value = np.round(value, 3)
    t_hour = _hourly_from_daily(t_daily, sensor.start, hours) + 4.0 * np.sin(
        2 * np.pi * (hod - 9) / 24.0
    )
    flags[t_hour < 273.15] = 4
    flags[spikes] = 5
    flags[value > porosity] = 3
    flags[value > 0.6] = 2
    flags[value < 0.0] = 1
    # gaps: outages of days to weeks and single missing hours
    keep = rng.uniform(size=n) > 0.004
    n_out = rng.poisson(1.5 * n / 8766.0)
    for _ in range(n_out):
        a = int(rng.integers(0, n))
        keep[a : a + int(rng.lognormal(np.log(24 * 8), 1.0))] = False
    keep[0] = keep[-1] = True  # the file's first and last hour are the sensor's record bounds
    sensor.params = {
        "gain": round(gain, 4),
        "offset": round(offset, 4),
        "noise_sd": round(noise_sd, 4),
    }
    return pd.DataFrame({"value": value[keep], "flag": flags[keep]}, index=hours[keep])


_FLAG_TEXT = np.array([b"G", b"C01", b"C02", b"C03", b"D02", b"D06"])


def _format_values(values: np.ndarray) -> np.ndarray:
    """``%.3f`` without trailing zeros (``0.22``, ``0.2``, ``-0.013``) as a byte matrix padded with NUL."""
    milli = np.round(np.asarray(values) * 1000.0).astype(np.int64)
    neg = milli < 0
    a = np.abs(milli)
    ip = a // 1000
    fp = a % 1000
    if ip.max(initial=0) > 9:
        raise ValueError("sensor values must lie in (-10, 10)")
    out = np.zeros((a.size, 6), np.uint8)
    out[:, 0] = np.where(neg, ord("-"), 0)
    out[:, 1] = ord("0") + ip
    out[:, 2] = ord(".")
    d1, d2, d3 = fp // 100, (fp // 10) % 10, fp % 10
    out[:, 3] = ord("0") + d1
    out[:, 4] = np.where((d2 == 0) & (d3 == 0), 0, ord("0") + d2)
    out[:, 5] = np.where(d3 == 0, 0, ord("0") + d3)
    return out


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as ASCII codes ``(n, width)``."""
    v = np.asarray(values, np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (ord("0") + (v[:, None] // powers[None, :]) % 10).astype(np.uint8)


def format_times(
    times: pd.DatetimeIndex,
    *,
    date_sep: str = "/",
    time_sep: str = " ",
    seconds: bool = False,
    suffix: str = " ",
) -> np.ndarray:
    """``YYYY/MM/DD HH:MM`` (or ISO-like) time stamps as an ASCII byte matrix, built column-wise."""
    n = times.size
    cols = [
        _digits(times.year.to_numpy(), 4),
        np.full((n, 1), ord(date_sep), np.uint8),
        _digits(times.month.to_numpy(), 2),
        np.full((n, 1), ord(date_sep), np.uint8),
        _digits(times.day.to_numpy(), 2),
        np.full((n, 1), ord(time_sep), np.uint8),
        _digits(times.hour.to_numpy(), 2),
        np.full((n, 1), ord(":"), np.uint8),
        _digits(times.minute.to_numpy(), 2),
    ]
    if seconds:
        cols += [np.full((n, 1), ord(":"), np.uint8), _digits(times.second.to_numpy(), 2)]
    if suffix:
        cols.append(
            np.broadcast_to(np.frombuffer(suffix.encode("ascii"), np.uint8), (n, len(suffix)))
        )
    return np.concatenate(cols, axis=1)


def format_ismn_lines(times: pd.DatetimeIndex, values: np.ndarray, flags: np.ndarray) -> bytes:
    """``YYYY/MM/DD HH:MM value flag M`` lines, built column-wise."""
    n = times.size
    stamp = format_times(times)
    vals = _format_values(values)
    flag_txt = np.zeros((n, 4), np.uint8)
    ft = np.frombuffer(b"".join(f.ljust(3, b"\0") for f in _FLAG_TEXT), np.uint8).reshape(-1, 3)
    flag_txt[:, 0] = ord(" ")
    flag_txt[:, 1:] = ft[flags]
    tail = np.frombuffer(b" M\n", np.uint8)
    mat = np.concatenate([stamp, vals, flag_txt, np.broadcast_to(tail, (n, 3))], axis=1)
    flat = mat.ravel()
    return flat[flat != 0].tobytes()


def ismn_header(st: Station, sensor: Sensor) -> str:
    return (
        f"{st.network:<10} {st.network:<10} {st.station:<15} {st.lat:10.5f} {st.lon:11.5f} "
        f"{st.elevation:21.1f} {sensor.depth_top:.4f} {sensor.depth_bottom:.4f} {sensor.sensor}\n"
    )


def ismn_filename(st: Station, sensor: Sensor, variable: str = "sm") -> str:
    return (
        f"{st.network}_{st.network}_{st.station}_{variable}_{sensor.depth_top:.6f}_{sensor.depth_bottom:.6f}_"
        f"{sensor.sensor}_{sensor.start:%Y%m%d}_{sensor.end:%Y%m%d}.stm"
    )


_HWSD = (
    'HWSD;Harmonized World Soil Database v1.1  by IIASA;IIASA;v1.1;30";None;'
    "http://webarchive.iiasa.ac.at/Research/LUC/External-World-soil-database/HTML/;"
)


def static_variables_csv(
    texture: dict[str, float],
    porosity_top: float,
    porosity_sub: float,
    landcover: int,
    climate: str,
) -> str:
    """``<NET>_<NET>_<STATION>_static_variables.csv`` in ISMN's semicolon layout."""
    head = (
        "quantity_name;unit;depth_from[m];depth_to[m];value;description;quantity_source_name;"
        "quantity_source_description;quantity_source_provider;quantity_source_version;"
        "quantity_source_resolution;quantity_source_timerange;quantity_source_url;\n"
    )
    rows = []
    for (d0, d1), key, por in (
        ((0.0, 0.3), "top", porosity_top),
        ((0.3, 1.0), "sub", porosity_sub),
    ):
        sand = 100 * texture[f"sand_{key}"]
        clay = 100 * texture[f"clay_{key}"]
        silt = max(0.0, 100 - sand - clay)
        rows += [
            f"saturation;m^3*m^-3;{d0:.2f};{d1:.2f};{por:.2f};;{_HWSD}",
            f"clay fraction;% weight;{d0:.2f};{d1:.2f};{clay:.2f};;{_HWSD}",
            f"organic carbon;% weight;{d0:.2f};{d1:.2f};{1.0 if key == 'top' else 0.4:.2f};;{_HWSD}",
            f"sand fraction;% weight;{d0:.2f};{d1:.2f};{sand:.2f};;{_HWSD}",
            f"silt fraction;% weight;{d0:.2f};{d1:.2f};{silt:.2f};;{_HWSD}",
        ]
    lc_text = {
        10: "Cropland, rainfed",
        50: "Tree cover, broadleaved, evergreen, Closed to open (>15%)",
        70: "Tree cover, needleleaved, evergreen, closed to open (>15%)",
        130: "Grassland",
        150: "Sparse vegetation (tree, shrub, herbaceous cover) (<15%)",
    }
    for year, ver in ((2000, "2000-v1.6.1"), (2005, "2005-v1.6.1"), (2010, "2010-v1.6.1")):
        rows.append(
            f"land cover classification;;;;{landcover};{lc_text.get(landcover, '')};CCI_landcover_{year};"
            f"ESA CCI Land Cover;ESA;{ver};300m;{year - 2}-{year + 2};http://www.esa-landcover-cci.org/;"
        )
    kg = {
        "BSk": "Arid - Steppe - Cold",
        "BSh": "Arid - Steppe - Hot",
        "Csa": "Temperate - Dry Summer - Hot Summer",
        "Cfb": "Temperate - Without dry season - Warm Summer",
        "Dfb": "Cold - Without dry season - Warm Summer",
        "Dfc": "Cold - Without dry season - Cold Summer",
    }
    rows.append(
        f"climate classification;;;;{climate};{kg.get(climate, '')};koeppen_geiger_2007;"
        "Koeppen-Geiger Climate Classification;None;Peel2007;0.1°;None;http://www.hydrol-earth-syst-sci.net/11/1633/2007/;"
    )
    return head + "\n".join(rows) + "\n"


README_ISMN = """This folder was written by xsomo's synthetic sample world (xsomo.sample), not by ISMN.

It follows the layout of an ISMN download in the format "Variables stored in separate
files (Header+values)":

Folder structure
	Networkname
		Stationname

Dataset Filename
	CSE_Network_Station_Variablename_depthfrom_depthto_sensorname_startdate_enddate.stm

Each file holds one header line
	CSE Network Station Latitude Longitude Elevation Depthfrom Depthto Sensorname
followed by hourly lines
	YYYY/MM/DD HH:MM value ISMN-flag provider-flag
with soil moisture in m3 m-3 and ISMN quality flags (G good; C01 < 0, C02 > 0.6,
C03 > saturation; D02 air temperature < 0 degC; D06 spike). The values are synthetic:
the truth of the sample world seen through each sensor's gain, offset, drift and noise.
"""

FLAGS_DESCRIPTION = """ISMN Quality Flags (subset used by the xsomo sample world)

variable; flag category; flag; flag is set if following condition is met
soil moisture;C - reported value exceeds output format field size;C01;soil moisture < 0.0 m3/m3
soil moisture;C - reported value exceeds output format field size;C02;soil moisture > 0.6 m3/m3
soil moisture;C - reported value exceeds output format field size;C03;soil moisture > saturation point (derived from HWSD parameter values)
soil moisture;D - questionable/dubious - geophysical based;D02;in situ air temperature < 0 degC
soil moisture;D - questionable/dubious - spectrum based;D06;a spike is detected in soil moisture spectrum
all;G - good;G;none of the above
"""


# ----------------------------------------------------------------------------- COSMOS

COSMOS_CATALOGUE_COLUMNS = [
    "station_id",
    "station",
    "country",
    "detector_type",
    "latitude",
    "longitude",
    "elevation_m",
    "processing_status",
    "N0_cph",
    "porosity",
    "raw_rows",
    "datetime_column",
    "datetime_format",
    "epithermal_column",
    "thermal_column",
    "pressure_columns",
    "temperature_columns",
    "relative_humidity_columns",
    "absolute_humidity_column",
    "wizard_detected_datetime",
    "notes",
]

COSMOS_COLUMNS = [
    "DateTime_utc",
    "NeutronCount_Epithermal_Cum1h_corrected",
    "NeutronCount_Epithermal_Cum1h_corrected_std",
    "NeutronCount_Epithermal_MovAvg24h_corrected",
    "NeutronCount_Epithermal_MovAvg24h_corrected_std",
    "Flag_Extreme_Counts",
    "Flag_AirPressure_ERA5",
    "AirHumidity_gapfilled",
    "Flag_AirHumidity_ERA5",
    "Flag_Porosity_Excess",
    "Flag_Snow_ERA5",
    "SoilMoisture_volumetric_MovAvg24h",
    "SoilMoisture_volumetric_MovAvg24h_std",
    "SoilMoisture_volumetric_MovAvg24h_lower",
    "SoilMoisture_volumetric_MovAvg24h_upper",
    "Footprint_Radius_m",
    "Footprint_Depth_m",
    "Biomass",
    "air_pressure",
    "year",
]


def crns_layer_weights(depth_m: np.ndarray) -> np.ndarray:
    """Weights ``(..., layer)`` of the three layers for a cosmic-ray sensor with penetration depth ``depth_m``.

    The sensitivity decays exponentially with depth so that 86 % of the signal comes
    from above ``depth_m`` (D86); weights are integrals over each layer, normalised.
    """
    lam = np.asarray(depth_m, float)[..., None] / 1.966
    tops = np.array([lay.top for lay in LAYERS])
    bottoms = np.array([lay.bottom for lay in LAYERS])
    w = np.exp(-tops / lam) - np.exp(-bottoms / lam)
    return w / w.sum(-1, keepdims=True)


def simulate_cosmos(
    rng: np.random.Generator,
    *,
    truth: np.ndarray,
    swe: np.ndarray,
    time: pd.DatetimeIndex,
    start: pd.Timestamp,
    end: pd.Timestamp,
    n0: float,
    bulk_density: float,
    elevation: float,
) -> tuple[pd.DataFrame, float]:
    """Hourly COSMOS-style processed series of one station and its mean footprint depth (m).

    Soil moisture is the footprint- and depth-weighted truth (sensing depth 0.15-0.22 m,
    shallower when wet), turned into neutron counts with the Desilets et al. (2010)
    calibration function, Poisson counting noise added, and back into a 24-h moving
    average of volumetric soil moisture.
    """
    i0, i1 = time.get_loc(start), time.get_loc(end) + 1
    hours = pd.date_range(start, end + pd.Timedelta(hours=23), freq="h")
    x_day = np.arange(i1 - i0) * 24.0 + 12.0
    x_hour = np.arange(hours.size, dtype=float)
    layers = np.stack([np.interp(x_hour, x_day, truth[i0:i1, k]) for k in range(3)], axis=-1)
    footprint_err = rng.normal(0.0, 0.01)
    # sensing depth from the shallow water content (Franz et al. 2012 form), kept within 0.15-0.22 m
    theta_shallow = layers[:, 0]
    depth = np.clip(0.058 / (0.0564 * bulk_density + theta_shallow + 0.0829) * 1.45, 0.15, 0.22)
    theta = np.einsum("tk,tk->t", layers, crns_layer_weights(depth)) + footprint_err
    theta = np.clip(theta, 0.01, None)
    a0, a1, a2 = 0.0808, 0.372, 0.115
    grav = theta / bulk_density
    counts_mean = n0 * (a0 / (grav + a2) + a1)
    counts = rng.poisson(counts_mean).astype(float)
    mov = pd.Series(counts).rolling(24, min_periods=12, center=False).mean().to_numpy()
    mov_std = np.sqrt(np.maximum(mov, 1.0) / 24.0)
    sm = bulk_density * (a0 / (mov / n0 - a1) - a2)
    sm_std = np.abs(bulk_density * a0 / (mov / n0 - a1) ** 2 / n0) * mov_std
    radius = 130.0 + 120.0 * np.exp(-8.0 * np.clip(sm, 0, 1))
    snow = np.repeat(swe[i0:i1] > 5.0, 24)[: hours.size].astype(int)
    sm = np.where(snow == 1, np.nan, sm)
    keep = rng.uniform(size=hours.size) > 0.01
    n_out = rng.poisson(1.0 * hours.size / 8766.0)
    for _ in range(n_out):
        a = int(rng.integers(0, hours.size))
        keep[a : a + int(rng.lognormal(np.log(24 * 5), 0.8))] = False
    pressure = np.round(1013.0 * np.exp(-elevation / 8434.0))
    frame = pd.DataFrame(
        {
            "DateTime_utc": format_times(hours, date_sep="-", seconds=True, suffix="+00:00")
            .view("S25")
            .ravel()
            .astype(str),
            "NeutronCount_Epithermal_Cum1h_corrected": counts,
            "NeutronCount_Epithermal_Cum1h_corrected_std": np.sqrt(counts),
            "NeutronCount_Epithermal_MovAvg24h_corrected": mov,
            "NeutronCount_Epithermal_MovAvg24h_corrected_std": mov_std,
            "Flag_Extreme_Counts": 0,
            "Flag_AirPressure_ERA5": 0,
            "AirHumidity_gapfilled": np.round(rng.uniform(5, 12, hours.size), 3),
            "Flag_AirHumidity_ERA5": 0,
            "Flag_Porosity_Excess": 0,
            "Flag_Snow_ERA5": snow,
            "SoilMoisture_volumetric_MovAvg24h": sm,
            "SoilMoisture_volumetric_MovAvg24h_std": sm_std,
            "SoilMoisture_volumetric_MovAvg24h_lower": -sm_std,
            "SoilMoisture_volumetric_MovAvg24h_upper": sm_std,
            "Footprint_Radius_m": radius,
            "Footprint_Depth_m": depth,
            "Biomass": np.nan,
            "air_pressure": pressure,
            "year": hours.year,
        }
    )[keep]
    return frame, float(np.nanmean(depth))


__all__ = [
    "COSMOS_CATALOGUE_COLUMNS",
    "COSMOS_COLUMNS",
    "NETWORKS",
    "Sensor",
    "Station",
    "crns_layer_weights",
    "format_ismn_lines",
    "ismn_filename",
    "ismn_header",
    "place_ismn",
    "sensor_weights",
    "simulate_cosmos",
    "simulate_sensor",
]
