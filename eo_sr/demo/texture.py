"""Texture for the demo landscape: fractal fields, row patterns and cast shadows.

Real farmland is rough at every scale: soil moisture and crop vigour vary inside a
field, tractors leave tramlines, single trees and hedges stand in the margins and
every tree and building casts a shadow. Natural scenes have power spectra that fall
roughly as ``1 / k**2`` (Field 1987; van der Schaaf & van Hateren 1996), so the
within-field variation is drawn as a Gaussian field with that kind of spectrum.

References
----------
.. [1] D. J. Field, "Relations between the statistics of natural images and the
       response properties of cortical cells", J. Opt. Soc. Am. A 4(12), 1987.
.. [2] A. van der Schaaf and J. H. van Hateren, "Modelling the power spectra of
       natural images: statistics and information", Vision Research 36(17), 1996.
"""
from __future__ import annotations

import numpy as np

#: Share of the sunlit reflectance a shadowed surface still shows (diffuse skylight).
SHADOW_DIFFUSE = 0.35


def fractal_field(rng: np.random.Generator, shape: tuple[int, int], *, beta: float,
                  outer_px: float | None = None) -> np.ndarray:
    """Gaussian random field with power spectrum ``k**-beta``, zero mean, unit variance.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : (int, int)
    beta : float
        Spectral exponent of the power (2 for natural scenes).
    outer_px : float, optional
        Scale (pixels) above which the spectrum flattens, so that the field has no
        trend across the whole world (default: a quarter of the larger side).

    Returns
    -------
    ndarray of float32, shape ``shape``
    """
    rows, cols = shape
    ky = np.fft.fftfreq(rows).astype(np.float32)[:, None]
    kx = np.fft.rfftfreq(cols).astype(np.float32)[None, :]
    k0 = 1.0 / (outer_px or max(shape) / 4)
    amplitude = (kx * kx + ky * ky + k0 * k0) ** np.float32(-beta / 4)
    amplitude[0, 0] = 0.0
    spectrum = amplitude * (rng.standard_normal(amplitude.shape, dtype=np.float32)
                            + 1j * rng.standard_normal(amplitude.shape, dtype=np.float32))
    del amplitude
    out = np.fft.irfft2(spectrum, s=shape).astype(np.float32)
    out -= out.mean()
    out /= out.std() + np.float32(1e-12)
    return out


def line_profile(distance_m: np.ndarray, *, width_m: float) -> np.ndarray:
    """Coverage (0-1) of a line ``width_m`` wide at ``distance_m`` from its axis, smooth
    over a pixel so that thin lines do not alias."""
    return np.exp(-0.5 * (distance_m / (0.5 * width_m)) ** 2).astype(np.float32)


def cast_shadows(height_m: np.ndarray, *, sun_azimuth: float, sun_elevation: float, pixel_m: float,
                 soft_m: float = 1.0) -> np.ndarray:
    """How much of each pixel lies in the shadow of trees and buildings (0-1).

    A pixel is shadowed when an object towards the sun rises above the ray that
    reaches the pixel: ``height(q) - distance(p, q) * tan(elevation) > height(p)``.

    Parameters
    ----------
    height_m : ndarray (rows, cols)
        Object height above the ground, metres (0 for the ground).
    sun_azimuth, sun_elevation : float
        Degrees; azimuth clockwise from north. Image rows grow southwards.
    pixel_m : float
        Pixel size in metres.
    soft_m : float, optional
        The shadow fades in over this much height, which anti-aliases its edge.

    Returns
    -------
    ndarray of float32
    """
    height = np.asarray(height_m, dtype=np.float32)
    top = float(height.max()) if height.size else 0.0
    if top <= 0 or sun_elevation <= 0:
        return np.zeros(height.shape, np.float32)
    drop = pixel_m * np.tan(np.radians(sun_elevation))  # the ray falls this much per pixel
    # towards the sun, in (row, col) pixel steps: north is -row, east is +col
    toward = np.array([-np.cos(np.radians(sun_azimuth)), np.sin(np.radians(sun_azimuth))])
    cast = np.zeros_like(height)
    rows, cols = height.shape
    for s in range(1, int(np.ceil(top / drop)) + 1):
        dr, dc = (int(round(v)) for v in s * toward)
        # cast[p] = max(cast[p], height[p + s * toward] - s * drop)
        src_r, dst_r = (slice(dr, rows), slice(0, rows - dr)) if dr >= 0 else (slice(0, rows + dr), slice(-dr, rows))
        src_c, dst_c = (slice(dc, cols), slice(0, cols - dc)) if dc >= 0 else (slice(0, cols + dc), slice(-dc, cols))
        np.maximum(cast[dst_r, dst_c], height[src_r, src_c] - np.float32(s * drop), out=cast[dst_r, dst_c])
    return np.clip((cast - height) / np.float32(soft_m), 0.0, 1.0)
