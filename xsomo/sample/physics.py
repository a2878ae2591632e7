"""The sample world's land-surface physics: soil hydraulics, a three-layer water balance, skin temperature.

Everything here is plain numpy, vectorised over cells, with a Python loop over days
only. The water balance conserves water exactly (to float64 round-off): every flux is
limited before it is applied so that no layer leaves ``[residual, porosity]``.

References
----------
Clapp, R. B. and Hornberger, G. M. (1978): Empirical equations for some soil hydraulic
properties, Water Resour. Res. 14, 601-604, doi:10.1029/WR014i004p00601.
Cosby, B. J. et al. (1984): A statistical exploration of the relationships of soil
moisture characteristics to the physical properties of soils, Water Resour. Res. 20,
682-690, doi:10.1029/WR020i006p00682.
Priestley, C. H. B. and Taylor, R. J. (1972): On the assessment of surface heat flux
and evaporation using large-scale parameters, Mon. Weather Rev. 100, 81-92.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from xsomo.conventions import LATENT_HEAT_VAPORISATION, LAYERS, SECONDS_PER_DAY, layer_coords
from xsomo.exceptions import MissingVariableError
from xsomo.units import convert

#: Layer thicknesses of the truth (mm): 0-10, 10-30, 30-50 cm.
TRUTH_THICKNESS_MM = np.array([lay.thickness * 1000.0 for lay in LAYERS])
#: Matric suction (mm) at field capacity (33 kPa), wilting point (1500 kPa) and the dry end (~100 MPa).
_PSI_FC, _PSI_WP, _PSI_DRY = 3_365.0, 152_950.0, 1.0e7
_FREEZE_K = 273.15


@dataclass(frozen=True)
class SoilParameters:
    """Campbell/Clapp-Hornberger soil hydraulic parameters per layer and cell (arrays ``(layer, cell)``).

    ``porosity`` (saturated water content), ``field_capacity``, ``wilting_point`` and
    ``residual`` in m3 m-3; ``b`` (pore-size exponent, 1), ``psi_s`` (air-entry
    suction, mm) and ``k_sat`` (saturated conductivity, mm d-1).
    """

    porosity: np.ndarray
    field_capacity: np.ndarray
    wilting_point: np.ndarray
    residual: np.ndarray
    b: np.ndarray
    psi_s: np.ndarray
    k_sat: np.ndarray


def soil_parameters(sand: np.ndarray, clay: np.ndarray) -> SoilParameters:
    """Hydraulic parameters from sand and clay fractions (0-1) with Cosby et al. (1984).

    Parameters
    ----------
    sand, clay
        Mass fractions (0-1), any matching shapes.

    Returns
    -------
    SoilParameters
        Arrays of the input shape.

    Notes
    -----
    With ``S``, ``C`` and ``Si`` in percent:

    .. math::

        b = 3.10 + 0.157 C - 0.003 S,\\quad
        \\log_{10}\\psi_s[\\mathrm{cm}] = 1.54 - 0.0095 S + 0.0063 Si,\\\\
        \\log_{10}K_s[\\mathrm{in\\,h^{-1}}] = -0.60 + 0.0126 S - 0.0064 C,\\quad
        \\theta_s = 0.505 - 0.00142 S - 0.00037 C,

    and :math:`\\theta(\\psi) = \\theta_s (\\psi/\\psi_s)^{-1/b}` gives field capacity
    (33 kPa), wilting point (1500 kPa) and the residual content (100 MPa).

    Examples
    --------
    >>> p = xsomo.sample.soil_parameters(np.array([0.9, 0.2]), np.array([0.05, 0.5]))
    >>> bool(p.k_sat[0] > p.k_sat[1]) and bool(p.porosity[1] > p.porosity[0])
    True
    """
    s = 100.0 * np.clip(np.asarray(sand, float), 0.0, 1.0)
    c = 100.0 * np.clip(np.asarray(clay, float), 0.0, 1.0)
    si = np.clip(100.0 - s - c, 0.0, 100.0)
    b = 3.10 + 0.157 * c - 0.003 * s
    psi_s = 10.0 * 10.0 ** (1.54 - 0.0095 * s + 0.0063 * si)  # mm
    k_sat = 25.4 * 24.0 * 10.0 ** (-0.60 + 0.0126 * s - 0.0064 * c)  # mm d-1
    porosity = 0.505 - 0.00142 * s - 0.00037 * c

    def theta(psi: float) -> np.ndarray:
        return porosity * np.minimum(1.0, (psi / psi_s) ** (-1.0 / b))

    return SoilParameters(
        porosity=porosity,
        field_capacity=theta(_PSI_FC),
        wilting_point=theta(_PSI_WP),
        residual=theta(_PSI_DRY),
        b=b,
        psi_s=psi_s,
        k_sat=k_sat,
    )


def root_fractions(forest: np.ndarray, thickness_mm: np.ndarray = TRUTH_THICKNESS_MM) -> np.ndarray:
    """Fraction of roots in each layer ``(layer, cell)``: forests root deeper than short vegetation.

    Uses the Jackson et al. (1996) profile ``1 - beta**z`` (z in cm) with beta 0.966
    for forest and 0.943 for grass, renormalised over the modelled layers.
    """
    forest = np.asarray(forest, float)
    bottoms = np.cumsum(thickness_mm) / 10.0  # cm
    tops = bottoms - np.asarray(thickness_mm) / 10.0
    out = []
    for beta in (0.966, 0.943):
        cum = lambda z, beta=beta: 1.0 - beta**z  # noqa: E731
        f = np.array([cum(b) - cum(t) for t, b in zip(tops, bottoms, strict=True)])
        out.append(f / f.sum())
    return out[0][:, None] * forest[None, :] + out[1][:, None] * (1.0 - forest[None, :])


def saturation_vapour_pressure(t_kelvin: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure over water (kPa), Tetens/FAO-56."""
    tc = np.asarray(t_kelvin) - _FREEZE_K
    return 0.6108 * np.exp(17.27 * tc / (tc + 237.3))


def potential_et(t_kelvin: np.ndarray, rnet: np.ndarray, alpha: float = 1.26) -> np.ndarray:
    """Priestley-Taylor potential evapotranspiration (mm d-1) from air temperature (K) and net radiation (W m-2)."""
    tc = np.asarray(t_kelvin) - _FREEZE_K
    es = saturation_vapour_pressure(t_kelvin)
    delta = 4098.0 * es / (tc + 237.3) ** 2
    gamma = 0.066
    energy = np.maximum(rnet, 0.0) * SECONDS_PER_DAY / LATENT_HEAT_VAPORISATION
    return alpha * delta / (delta + gamma) * energy


def vertical_exchange(
    w: np.ndarray,
    *,
    w_min: np.ndarray,
    w_max: np.ndarray,
    psi_s: np.ndarray,
    b: np.ndarray,
    k_s: np.ndarray,
    dz: np.ndarray,
    substeps: int = 4,
) -> np.ndarray:
    """One day of Darcy flow between layers and free drainage at the bottom, in place on ``w``.

    Parameters
    ----------
    w
        Soil water (mm) per layer, ``(layer, cell)``; updated in place.
    w_min, w_max
        Residual and saturated storage (mm), ``(layer, cell)``.
    psi_s, b
        Campbell's air-entry suction (mm) and pore-size exponent, ``(layer, cell)``.
    k_s
        Saturated conductivity (mm d-1) of the day (frozen soil already applied), ``(layer, cell)``.
    dz
        Distances between the layer centres (mm), ``(layer - 1,)``.
    substeps
        Explicit sub-steps of the day.

    Returns
    -------
    numpy.ndarray
        Drainage out of the bottom layer (mm), ``(cell,)``.

    Notes
    -----
    Per sub-step ``q = K̄ ((ψ_lower - ψ_upper)/Δz + 1) Δt`` with Campbell's
    ``ψ = ψ_s s^{-b}`` (at most 100 MPa), ``K = K_s s^{2b+3}`` (``s = w / w_sat``, at
    least 1e-3) and the geometric mean ``K̄`` of the two layers; each flux moves at most
    half of the water available above or the space left below. With ``e = s^{-b}`` from
    one log and one exp per layer, ``ψ = ψ_s e``, ``K = K_s s^3 / e^2`` and
    ``K̄ = sqrt(K_upper K_lower)`` need no further exp or log (a third of the cost of
    ``exp`` of the mean ``log K``; the same numbers to round-off).
    """
    dt = 1.0 / substeps
    inv_wsat = 1.0 / w_max
    inv_dz = (1.0 / np.asarray(dz, float))[:, None]
    neg_b = -b
    rel, e_b, psi, k, avail, space = (np.empty_like(w) for _ in range(6))
    drain = np.zeros(w.shape[1:])
    for _ in range(substeps):
        np.multiply(w, inv_wsat, out=rel)
        np.minimum(np.maximum(rel, 1e-3, out=rel), 1.0, out=rel)
        np.exp(np.multiply(np.log(rel, out=e_b), neg_b, out=e_b), out=e_b)  # s**-b
        np.minimum(np.multiply(psi_s, e_b, out=psi), _PSI_DRY, out=psi)
        np.multiply(rel, rel, out=k)
        k *= rel
        k *= k_s
        k /= np.multiply(e_b, e_b, out=e_b)  # K_s s**3 / s**-2b
        np.subtract(w, w_min, out=avail)
        np.subtract(w_max, w, out=space)
        kbar = np.sqrt(k[:-1] * k[1:])
        q = kbar * ((psi[1:] - psi[:-1]) * inv_dz + 1.0) * dt
        down = np.minimum(np.maximum(q, 0.0), 0.5 * np.minimum(avail[:-1], space[1:]))
        up = np.minimum(np.maximum(-q, 0.0), 0.5 * np.minimum(avail[1:], space[:-1]))
        fl = down - up
        q_bot = np.minimum(k[-1] * dt, 0.5 * avail[-1])
        w[:-1] -= fl
        w[1:] += fl
        w[-1] -= q_bot
        drain += q_bot
    return drain


def water_balance_kernel(
    precip: np.ndarray,
    tair: np.ndarray,
    rnet: np.ndarray,
    *,
    soil: SoilParameters,
    thickness_mm: np.ndarray,
    forest: np.ndarray,
    veg: np.ndarray,
    spinup_days: int = 0,
    substeps: int = 4,
    runoff_shape: float = 10.0,
    interception_mm: float = 1.5,
    keep_fluxes: bool | tuple[str, ...] = True,
) -> dict[str, np.ndarray]:
    """Run the three-layer soil water balance over days for many cells at once.

    Parameters
    ----------
    precip, tair, rnet
        Daily precipitation (mm d-1), mean air temperature (K) and net radiation
        (W m-2), arrays ``(time, cell)``.
    soil
        Parameters ``(layer, cell)`` from :func:`soil_parameters`.
    thickness_mm
        Thickness of the three layers (mm).
    forest, veg
        Forest fraction and total vegetated fraction (forest + short vegetation) per cell.
    spinup_days
        The first ``spinup_days`` days are run but not returned (the state starts at
        field capacity and equilibrates with the climate).
    substeps
        Sub-steps per day of the vertical exchange (Darcy flow between layers).
    runoff_shape
        Exponent of the saturation-excess (variable contributing area) runoff.
    interception_mm
        Canopy storage of a full forest (short vegetation holds a third of it).
    keep_fluxes
        Also return the daily fluxes (precipitation, runoff, evapotranspiration,
        drainage, snowpack) in float64; ``False`` saves memory when only the states
        are wanted; a tuple of names keeps just those (as float32).

    Returns
    -------
    dict
        ``theta (time, layer, cell)`` in m3 m-3; with ``keep_fluxes`` also
        ``precip, rain, snowfall, melt, runoff, infiltration, et, interception,
        soil_evaporation, transpiration, drainage, swe, storage, storage_start,
        swe_start`` in mm (per day, or the state at the end of the day).
        ``storage_start``/``swe_start`` are the states before the first returned day.

    Notes
    -----
    Per day: snow partition and degree-day melt; canopy interception (evaporated the
    same day); infiltration limited by the frozen-soil factor and by an
    intensity-excess capacity ``0.25 K_s (1 + 2(1 - s_1))``; saturation-excess runoff
    ``s_1^{runoff_shape}`` of the remaining input; water beyond a layer's porosity
    passes to the next layer and, beyond the profile, runs off; Priestley-Taylor
    demand split into soil evaporation (layer 1, bare and under-canopy) and
    transpiration drawn by root fraction and limited by the stress factor
    ``(θ - θ_wp) / (0.7 (θ_fc - θ_wp))``; then Darcy flow between the layer centres,
    ``q = K̄ ((ψ_lower - ψ_upper)/Δz + 1)`` with Campbell's ``K(θ)`` and ``ψ(θ)`` and
    free drainage at the bottom, in sub-steps. Frozen soil (soil temperatures are
    exponential filters of air temperature, insulated under snow) damps infiltration,
    drainage and evaporation.
    """
    n_time, n_cell = precip.shape
    d = np.asarray(thickness_mm, float)[:, None] * np.ones((1, n_cell))
    por, fc, wp, res = soil.porosity, soil.field_capacity, soil.wilting_point, soil.residual
    w_max = por * d
    w_min = res * d
    w_wp = wp * d
    w_fc = fc * d
    b = soil.b
    psi_s = soil.psi_s
    ks = soil.k_sat
    roots = root_fractions(forest, thickness_mm)
    forest = np.asarray(forest, float)
    veg = np.clip(np.asarray(veg, float), 0.0, 1.0)
    bare = 1.0 - veg
    canopy = interception_mm * (forest + veg) / 2.0 + 0.2 * interception_mm * veg
    centres = np.cumsum(d[:, 0]) - d[:, 0] / 2.0
    dz = np.diff(centres)  # mm between layer centres
    ddf = 3.0  # degree-day factor, mm K-1 d-1
    swe_cap = 1500.0  # mm; a permanent snowpack cannot grow without bound
    tau = np.array([4.0, 12.0, 30.0])[:, None]  # soil temperature memory per layer (days)

    w = (
        0.5 * (w_fc + w_max) * 0.8 + 0.2 * w_wp
    )  # initial storage, between wilting point and saturation
    w = np.clip(w, w_min, w_max)
    swe = np.zeros(n_cell)
    tsoil = np.full((3, n_cell), _FREEZE_K + 8.0)

    n_out = n_time - spinup_days
    theta_out = np.empty((n_out, 3, n_cell), np.float32)
    names = [
        "precip",
        "rain",
        "snowfall",
        "melt",
        "runoff",
        "infiltration",
        "et",
        "interception",
        "soil_evaporation",
        "transpiration",
        "drainage",
        "swe",
        "storage",
    ]
    keep = names if keep_fluxes is True else [k for k in names if k in (keep_fluxes or ())]
    flux = {
        k: np.empty((n_out, n_cell), np.float32 if keep_fluxes is not True else float) for k in keep
    }
    storage_start = w.sum(0).copy()
    swe_start = swe.copy()
    inv_tau = 1.0 / tau
    inv_stress = 1.0 / (0.7 * (w_fc - w_wp))
    inv_evap = 1.0 / (w_fc[0] - w_min[0])

    block = 128
    for t in range(n_time):
        if t % block == 0:
            # forcing-only terms for a block of days at once (fewer numpy calls per day)
            sl = slice(t, min(n_time, t + block))
            P = np.maximum(precip[sl].astype(float), 0.0)
            TA = tair[sl].astype(float)
            RN = rnet[sl].astype(float)
            SNOWFALL = P * np.minimum(np.maximum((_FREEZE_K + 1.0 - TA) / 2.0, 0.0), 1.0)
            RAIN = P - SNOWFALL
            # degree-day melt plus a radiation term near the melting point
            POT_MELT = ddf * np.maximum(TA - _FREEZE_K, 0.0) + np.where(
                TA > _FREEZE_K - 5.0, 0.1 * np.maximum(RN, 0.0) * SECONDS_PER_DAY / 334_000.0, 0.0
            )
            PET = potential_et(TA, RN)
            INTERCEPTION = np.minimum(np.minimum(RAIN, canopy), PET)
            PET_LEFT = np.maximum(PET - INTERCEPTION, 0.0)
            THROUGHFALL = RAIN - INTERCEPTION
            ACTIVE_T = np.minimum(np.maximum((TA - _FREEZE_K) / 8.0, 0.0), 1.0)
            SNOW_TARGET = 0.2 * TA + 0.8 * (_FREEZE_K - 0.5)
        if t == spinup_days:
            storage_start = w.sum(0).copy()
            swe_start = swe.copy()
        k = t % block
        p = P[k]
        ta = TA[k]
        snowfall = SNOWFALL[k]
        rain = RAIN[k]
        interception = INTERCEPTION[k]
        pet_left = PET_LEFT[k]

        # ---- snow
        melt = np.minimum(swe + snowfall, POT_MELT[k])
        # snow beyond the cap leaves as ice flow (counted as melt, so it infiltrates or runs off)
        melt += np.maximum(swe + snowfall - melt - swe_cap, 0.0)
        swe = swe + snowfall - melt
        snow_cover = np.minimum(swe * 0.1, 1.0)

        # ---- soil temperature and frozen-soil factor (1 = unfrozen)
        target = np.where(swe > 5.0, SNOW_TARGET[k], ta)
        tsoil += (target[None, :] - tsoil) * inv_tau
        unfrozen = np.minimum(np.maximum((tsoil - (_FREEZE_K - 2.0)) * 0.5, 0.05), 1.0)
        water_in = THROUGHFALL[k] + melt

        # ---- infiltration and surface runoff
        rel1 = (w[0] - w_min[0]) / (w_max[0] - w_min[0])
        capacity = unfrozen[0] * 0.25 * ks[0] * (1.0 + 2.0 * (1.0 - rel1))
        runoff = np.maximum(water_in - capacity, 0.0)  # intensity excess
        rest = water_in - runoff
        sat_excess = rest * np.minimum(np.maximum(rel1, 0.0), 1.0) ** runoff_shape
        runoff += sat_excess
        infil = rest - sat_excess
        carry = infil
        for i in range(3):  # fill downward; what the profile cannot hold runs off
            add = np.minimum(carry, w_max[i] - w[i])
            w[i] += add
            carry = carry - add
        runoff += carry
        infil -= carry

        # ---- evapotranspiration limited by energy and by soil water
        active = ACTIVE_T[k] * (1.0 - snow_cover)
        demand_t = pet_left * veg * active
        stress = np.minimum(np.maximum((w - w_wp) * inv_stress, 0.0), 1.0)
        transp = demand_t[None, :] * roots * stress * unfrozen
        transp = np.minimum(transp, np.maximum(w - w_wp, 0.0))
        w -= transp
        evap_rel = np.minimum(np.maximum((w[0] - w_min[0]) * inv_evap, 0.0), 1.0) ** 2
        soil_evap = pet_left * (bare + 0.25 * veg) * (1.0 - snow_cover) * evap_rel * unfrozen[0]
        soil_evap = np.minimum(soil_evap, np.maximum(w[0] - w_min[0], 0.0))
        w[0] -= soil_evap

        # ---- vertical exchange (Darcy between layer centres) and free drainage at the bottom
        drain = vertical_exchange(
            w,
            w_min=w_min,
            w_max=w_max,
            psi_s=psi_s,
            b=b,
            k_s=ks * unfrozen,
            dz=dz,
            substeps=substeps,
        )
        np.minimum(np.maximum(w, w_min, out=w), w_max, out=w)  # round-off only

        if t >= spinup_days:
            j = t - spinup_days
            theta_out[j] = w / d
            if flux:
                values = {
                    "precip": p,
                    "rain": rain,
                    "snowfall": snowfall,
                    "melt": melt,
                    "runoff": runoff,
                    "infiltration": infil,
                    "interception": interception,
                    "soil_evaporation": soil_evap,
                    "transpiration": transp.sum(0),
                    "et": interception + soil_evap + transp.sum(0),
                    "drainage": drain,
                    "swe": swe,
                    "storage": w.sum(0),
                }
                for key, arr in flux.items():
                    arr[j] = values[key]
    out = {"theta": theta_out, **flux}
    if keep_fluxes is True:
        out["storage_start"] = storage_start
        out["swe_start"] = swe_start
    return out


def skin_temperature(
    tair: np.ndarray, rnet: np.ndarray, et: np.ndarray, swe: np.ndarray, forest: np.ndarray
) -> np.ndarray:
    """Daily mean skin temperature (K) from the surface energy balance.

    The sensible heat flux ``H = Rn - LE`` (ground heat flux neglected at daily scale)
    leaves through a bulk transfer coefficient ``h`` (W m-2 K-1, larger over rough
    forest): ``T_skin = T_air + H / h``. A snow-covered surface cannot warm above 0 °C.
    Dry soils therefore run warm, which makes skin temperature carry soil-moisture
    information, as land-surface temperature does.
    """
    f32 = np.float32
    le = np.asarray(et, f32) * f32(LATENT_HEAT_VAPORISATION / SECONDS_PER_DAY)
    h = (18.0 + 20.0 * np.asarray(forest, f32))[None, :]
    ts = np.asarray(tair, f32) + np.clip((np.asarray(rnet, f32) - le) / h, f32(-6.0), f32(15.0))
    cover = np.clip(np.asarray(swe, f32) / f32(10.0), f32(0.0), f32(1.0))
    return ((1.0 - cover) * ts + cover * np.minimum(ts, _FREEZE_K)).astype(np.float32)


# ----------------------------------------------------------------------------- xarray wrapper

_FORCING_UNITS = {"precipitation": "mm d-1", "air_temperature": "K", "net_radiation": "W m-2"}
_STATIC_UNITS = {
    "sand_top": "1",
    "clay_top": "1",
    "sand_sub": "1",
    "clay_sub": "1",
    "forest_fraction": "1",
    "shortveg_fraction": "1",
}


def _need(ds: xr.Dataset, name: Hashable, units: str, what: str) -> xr.DataArray:
    if name not in ds:
        raise MissingVariableError(
            f"{what} has no variable {name!r}; run_water_balance needs {name!r} in {units}"
        )
    return convert(ds[name], units, name=name, source=what)


def run_water_balance(
    forcing: xr.Dataset,
    statics: xr.Dataset,
    *,
    spinup_days: int = 0,
    substeps: int = 4,
) -> xr.Dataset:
    """Run the sample world's three-layer soil water balance on labelled data.

    Parameters
    ----------
    forcing
        ``precipitation`` (mm d-1), ``air_temperature`` (K) and ``net_radiation``
        (W m-2) with a ``time`` dimension and any spatial dimensions.
    statics
        ``sand_top``, ``clay_top`` (layers 1-2), ``sand_sub``, ``clay_sub`` (layer 3)
        as fractions, ``forest_fraction`` and ``shortveg_fraction``, on the spatial
        dimensions of ``forcing``.
    spinup_days
        Days at the start of ``forcing`` that are run but dropped from the result.
    substeps
        Sub-steps per day of the vertical exchange.

    Returns
    -------
    xarray.Dataset
        ``sm(time, layer, ...)`` (m3 m-3), ``porosity``/``residual(layer, ...)`` and the
        daily fluxes in mm: ``precipitation``, ``runoff``, ``evapotranspiration``,
        ``drainage`` (out of the bottom of layer 3), ``snow_water_equivalent`` and
        ``soil_water`` (end-of-day states), plus ``soil_water_start`` and
        ``snow_water_equivalent_start`` (states before the first returned day), so
        that ``precipitation - runoff - evapotranspiration - drainage`` summed over
        days equals the change of ``soil_water + snow_water_equivalent``.

    Examples
    --------
    >>> t = 60
    >>> forcing = xr.Dataset(
    ...     {
    ...         "precipitation": (("time", "cell"), np.full((t, 2), 2.0), {"units": "mm d-1"}),
    ...         "air_temperature": (("time", "cell"), np.full((t, 2), 290.0), {"units": "K"}),
    ...         "net_radiation": (("time", "cell"), np.full((t, 2), 100.0), {"units": "W m-2"}),
    ...     }
    ... )
    >>> statics = xr.Dataset(
    ...     {k: ("cell", [0.4, 0.7], {"units": "1"}) for k in ["sand_top", "sand_sub"]}
    ...     | {
    ...         k: ("cell", [0.2, 0.1], {"units": "1"})
    ...         for k in ["clay_top", "clay_sub", "forest_fraction"]
    ...     }
    ...     | {"shortveg_fraction": ("cell", [0.5, 0.5], {"units": "1"})}
    ... )
    >>> out = xsomo.sample.run_water_balance(forcing, statics)
    >>> resid = (out.precipitation - out.runoff - out.evapotranspiration - out.drainage).sum(
    ...     "time"
    ... ) - (
    ...     out.soil_water.isel(time=-1)
    ...     + out.snow_water_equivalent.isel(time=-1)
    ...     - out.soil_water_start
    ...     - out.snow_water_equivalent_start
    ... )
    >>> bool(abs(resid).max() < 1e-9)
    True
    """
    p = _need(forcing, "precipitation", _FORCING_UNITS["precipitation"], "forcing")
    ta = _need(forcing, "air_temperature", "K", "forcing")
    rn = _need(forcing, "net_radiation", "W m-2", "forcing")
    space = [dim for dim in p.dims if dim != "time"]
    st = {k: _need(statics, k, u, "statics") for k, u in _STATIC_UNITS.items()}

    def flat(da: xr.DataArray, *, with_time: bool) -> np.ndarray:
        da = da.transpose(*((["time"] if with_time else []) + space))
        arr = np.asarray(da.values, float)
        return arr.reshape((arr.shape[0], -1) if with_time else (-1,))

    sand = np.stack(
        [flat(st["sand_top"], with_time=False)] * 2 + [flat(st["sand_sub"], with_time=False)]
    )
    clay = np.stack(
        [flat(st["clay_top"], with_time=False)] * 2 + [flat(st["clay_sub"], with_time=False)]
    )
    soil = soil_parameters(sand, clay)
    forest = flat(st["forest_fraction"], with_time=False)
    veg = np.clip(forest + flat(st["shortveg_fraction"], with_time=False), 0.0, 1.0)
    res = water_balance_kernel(
        flat(p, with_time=True),
        flat(ta, with_time=True),
        flat(rn, with_time=True),
        soil=soil,
        thickness_mm=TRUTH_THICKNESS_MM,
        forest=forest,
        veg=veg,
        spinup_days=spinup_days,
        substeps=substeps,
    )
    shape = [p.sizes[dim] for dim in space]
    time = p["time"].isel(time=slice(spinup_days, None))
    coords = {dim: p[dim] for dim in space if dim in p.coords}
    lay = layer_coords()

    def to_da(arr: np.ndarray, dims: list[str], attrs: dict[str, str]) -> xr.DataArray:
        lead = arr.shape[: len(dims) - len(space)]
        return xr.DataArray(arr.reshape(*lead, *shape), dims=dims, attrs=attrs)

    mm = {"units": "mm"}
    tdims = ["time", *space]
    out = xr.Dataset(
        {
            "sm": to_da(
                res["theta"],
                ["time", "layer", *space],
                {"units": "m3 m-3", "long_name": "volumetric soil moisture"},
            ),
            "porosity": to_da(
                soil.porosity, ["layer", *space], {"units": "m3 m-3", "long_name": "porosity"}
            ),
            "residual": to_da(
                soil.residual,
                ["layer", *space],
                {"units": "m3 m-3", "long_name": "residual water content"},
            ),
            "precipitation": to_da(
                res["precip"], tdims, {**mm, "long_name": "precipitation (rain + snow)"}
            ),
            "runoff": to_da(res["runoff"], tdims, {**mm, "long_name": "surface runoff"}),
            "evapotranspiration": to_da(
                res["et"], tdims, {**mm, "long_name": "evapotranspiration"}
            ),
            "drainage": to_da(res["drainage"], tdims, {**mm, "long_name": "drainage below 0.5 m"}),
            "snow_water_equivalent": to_da(
                res["swe"], tdims, {**mm, "long_name": "snow water equivalent"}
            ),
            "soil_water": to_da(
                res["storage"], tdims, {**mm, "long_name": "soil water in 0-0.5 m"}
            ),
            "soil_water_start": to_da(
                res["storage_start"], space, {**mm, "long_name": "soil water before the first day"}
            ),
            "snow_water_equivalent_start": to_da(
                res["swe_start"], space, {**mm, "long_name": "snow before the first day"}
            ),
        },
        coords={"time": time, **coords, **lay},
    )
    return out


__all__ = [
    "TRUTH_THICKNESS_MM",
    "SoilParameters",
    "potential_et",
    "root_fractions",
    "run_water_balance",
    "skin_temperature",
    "soil_parameters",
    "vertical_exchange",
    "water_balance_kernel",
]
