"""Spatially correlated random fields that can be evaluated at any set of points.

A field is a sum of random Fourier modes (random direction, wavelength and phase).
Because it is an analytic function of position, the same world can be evaluated on
the 0.1° target grid, on ERA5-Land's shifted grid, on a 0.01° DEM grid or in any
spatial chunk, and the values agree exactly wherever the points coincide. Dynamic
fields give each mode an AR(1) amplitude in time, so weather anomalies are smooth in
space and persistent from day to day.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """An independent, reproducible random generator for ``(seed, *stream)``."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *(int(s) for s in stream)])


class SmoothField:
    """A stationary random field with unit variance built from random cosine modes.

    Parameters
    ----------
    rng
        Random generator (consumed at construction only).
    n_modes
        Number of modes; more modes make the field more Gaussian.
    wavelength
        (shortest, longest) wavelength in degrees; wavelengths are log-uniform.
    slope
        Spectral slope: mode amplitude is proportional to ``wavelength ** slope``
        (larger values favour large scales).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        n_modes: int = 48,
        wavelength: tuple[float, float] = (0.5, 8.0),
        slope: float = 1.0,
    ) -> None:
        lo, hi = np.log(wavelength[0]), np.log(wavelength[1])
        wl = np.exp(rng.uniform(lo, hi, n_modes))
        angle = rng.uniform(0.0, np.pi, n_modes)
        k = 2.0 * np.pi / wl
        self.kx = k * np.cos(angle)
        self.ky = k * np.sin(angle)
        self.phase = rng.uniform(0.0, 2.0 * np.pi, n_modes)
        amp = wl**slope
        # sum of a_k cos(.) with random phases has variance sum(a_k^2)/2
        self.amp = amp / np.sqrt(0.5 * np.sum(amp**2))

    def basis(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Cosine and sine of every mode at the points: ``(2 * n_modes, n_points)``."""
        arg = np.outer(self.kx, np.asarray(lon, float)) + np.outer(self.ky, np.asarray(lat, float))
        arg += self.phase[:, None]
        return np.concatenate([np.cos(arg), np.sin(arg)], axis=0)

    def __call__(self, lat: np.ndarray, lon: np.ndarray, *, chunk: int = 200_000) -> np.ndarray:
        """Field values (unit variance, zero mean) at the points (any shape)."""
        lat = np.asarray(lat, float)
        lon = np.asarray(lon, float)
        shape = np.broadcast_shapes(lat.shape, lon.shape)
        lat_f = np.broadcast_to(lat, shape).ravel()
        lon_f = np.broadcast_to(lon, shape).ravel()
        out = np.empty(lat_f.size)
        for i in range(0, lat_f.size, chunk):
            arg = np.outer(self.kx, lon_f[i : i + chunk]) + np.outer(self.ky, lat_f[i : i + chunk])
            arg += self.phase[:, None]
            out[i : i + chunk] = self.amp @ np.cos(arg)
        return out.reshape(shape)

    def grid(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Field values on the regular grid ``lat x lon`` (1-D axes), as two matrix products.

        ``cos(kx x + ky y + p) = cos(kx x + p) cos(ky y) - sin(kx x + p) sin(ky y)``
        separates the modes into latitude and longitude factors, so a fine grid costs
        ``O(modes * (nlat + nlon))`` trigonometric calls. Equal to :meth:`__call__` up to
        round-off.
        """
        a = np.outer(np.asarray(lon, float), self.kx) + self.phase[None, :]  # (nlon, mode)
        b = np.outer(np.asarray(lat, float), self.ky)  # (nlat, mode)
        return (np.cos(b) * self.amp) @ np.cos(a).T - (np.sin(b) * self.amp) @ np.sin(a).T


def ar1(
    rng: np.random.Generator, n_time: int, n_series: int, phi: float | np.ndarray
) -> np.ndarray:
    """Unit-variance AR(1) series ``(n_time, n_series)`` started in their stationary state."""
    phi_arr = np.broadcast_to(np.asarray(phi, float), (n_series,))
    eps = rng.standard_normal((n_time, n_series))
    out = np.empty((n_time, n_series))
    for p in np.unique(phi_arr):
        cols = np.flatnonzero(phi_arr == p)
        e = eps[:, cols] * np.sqrt(1.0 - p**2)
        e[0] = eps[0, cols]  # stationary start
        out[:, cols] = lfilter([1.0], [1.0, -p], e, axis=0)
    return out


class DynamicField:
    """A space-time random field: modes of a :class:`SmoothField` with AR(1) amplitudes.

    ``value(t, x) = sum_k a_k(t) cos(k.x + p_k) + b_k(t) sin(k.x + p_k)`` with
    independent unit-variance AR(1) amplitudes, so the field has unit variance, the
    spatial correlation of the mode spectrum and lag-1 autocorrelation ``phi``.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        n_time: int,
        *,
        n_modes: int = 40,
        wavelength: tuple[float, float] = (0.6, 10.0),
        slope: float = 1.0,
        phi: float = 0.7,
    ) -> None:
        self.space = SmoothField(rng, n_modes=n_modes, wavelength=wavelength, slope=slope)
        amp = np.concatenate([self.space.amp, self.space.amp])
        # larger scales persist longer: phi rises with wavelength
        wl = 2 * np.pi / np.hypot(self.space.kx, self.space.ky)
        rel = (np.log(wl) - np.log(wl.min())) / max(np.log(wl.max()) - np.log(wl.min()), 1e-9)
        phis = np.clip(phi + 0.15 * (rel - 0.5), 0.0, 0.97)
        self.series = ar1(rng, n_time, 2 * n_modes, np.round(np.concatenate([phis, phis]), 3))
        self.series *= amp[None, :]

    def __call__(self, lat: np.ndarray, lon: np.ndarray, time: slice = slice(None)) -> np.ndarray:
        """Values ``(time, point)`` as float32 for 1-D point arrays."""
        b = self.space.basis(lat, lon)
        return (self.series[time] @ b).astype(np.float32) / np.float32(np.sqrt(2.0))


class Events:
    """Space-time events (storms, droughts): Gaussian blobs in space, boxcars in time.

    Parameters
    ----------
    day, duration
        First day index (on the world's extended time axis) and length in days.
    lat, lon, radius
        Centre and e-folding radius in degrees.
    intensity
        Peak amplitude.
    """

    def __init__(
        self,
        day: np.ndarray,
        duration: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        radius: np.ndarray,
        intensity: np.ndarray,
        *,
        ramp: int = 0,
    ) -> None:
        self.day = np.asarray(day, int)
        self.duration = np.asarray(duration, int)
        self.lat = np.asarray(lat, float)
        self.lon = np.asarray(lon, float)
        self.radius = np.asarray(radius, float)
        self.intensity = np.asarray(intensity, float)
        self.ramp = ramp

    def __len__(self) -> int:
        return int(self.day.size)

    def __call__(self, lat: np.ndarray, lon: np.ndarray, t0: int, t1: int) -> np.ndarray:
        """Summed event amplitude ``(t1 - t0, point)`` (float32) on days ``t0 .. t1-1``."""
        lat = np.asarray(lat, float)
        lon = np.asarray(lon, float)
        out = np.zeros((t1 - t0, lat.size), np.float32)
        active = (self.day < t1) & (self.day + self.duration > t0)
        for i in np.flatnonzero(active):
            r2 = (
                (lat - self.lat[i]) ** 2
                + ((lon - self.lon[i]) * np.cos(np.radians(self.lat[i]))) ** 2
            ) / (self.radius[i] ** 2)
            near = r2 < 9.0
            if not near.any():
                continue
            w = np.exp(-0.5 * r2[near]).astype(np.float32)
            days = np.arange(self.day[i], self.day[i] + self.duration[i])
            env = np.ones(days.size)
            if self.ramp and days.size > 2:
                ramp = min(self.ramp, days.size // 2)
                env[:ramp] = np.linspace(0.3, 1.0, ramp)
                env[-ramp:] = np.linspace(1.0, 0.3, ramp)
            keep = (days >= t0) & (days < t1)
            if not keep.any():
                continue
            rows = days[keep] - t0
            idx = np.flatnonzero(near)
            out[np.ix_(rows, idx)] += (self.intensity[i] * env[keep])[:, None].astype(
                np.float32
            ) * w[None, :]
        return out


__all__ = ["DynamicField", "Events", "SmoothField", "ar1", "rng_for"]
