"""How the two demo sensors see the truth landscape.

Public facts the simulation follows (stated in notebook 00):

* Sentinel-2 MSI 10 m bands have an MTF at Nyquist of 0.15-0.30, close to a Gaussian
  point spread function (PSF) of 0.5-0.6 pixel sigma; SNR at reference radiance is
  about 154 (B2), 168 (B3), 142 (B4) and 174 (B8); multi-temporal co-registration is
  within about 0.3 pixel.
* L2A digital numbers are reflectance x 10000; from processing baseline 04.00
  (25 January 2022) a BOA offset of +1000 is added (reflectance = (DN - 1000) / 10000).
* The scene classification layer (SCL) uses 0 no data, 3 cloud shadow, 4 vegetation,
  5 not vegetated, 6 water, 8/9 cloud of medium/high probability.
* Clouds are bright in every band, most of all relative to the ground in blue; their
  shadows fall away from the sun, at a distance of cloud height / tan(sun elevation).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from eo_sr.demo.landscape import smooth_noise

LR_PSF_SIGMA_PX = 0.55
LR_SNR = np.array([154.0, 168.0, 142.0, 174.0])
HR_SNR = np.array([110.0, 120.0, 110.0, 130.0])
REFERENCE_REFLECTANCE = 0.10
QUANTIFICATION = 10000
BOA_OFFSET_DN = 1000
CLOUD_SPECTRUM = np.array([0.46, 0.45, 0.44, 0.42], dtype=np.float32)

# SCL classes written by the demo LR sensor.
SCL_NODATA, SCL_SHADOW, SCL_VEG, SCL_BARE, SCL_WATER, SCL_CLOUD_MED, SCL_CLOUD_HIGH = 0, 3, 4, 5, 6, 8, 9
SCL_CLOUDY = (8, 9, 10)

# Cloud optical-thickness thresholds: above ``CLOUD_HIGH`` a pixel is flagged high
# probability, above ``CLOUD_MED`` medium; thinner haze stays unflagged, as it does
# in real masks.
CLOUD_HIGH, CLOUD_MED, SHADOW_MIN = 0.6, 0.25, 0.25
# What the truth masks record: any visible haze or shadow, flagged by a mask or not.
HAZE_MIN, SHADOW_VISIBLE = 0.03, 0.1


def truth_mask(thick: np.ndarray, shadow: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Bit flags of what really happened to each pixel: 1 cloud, 2 cloud shadow,
    8 thin cloud or haze (too thin for the cloud masks)."""
    cloud = (thick > CLOUD_MED) & valid
    haze = (thick > HAZE_MIN) & ~cloud & valid
    shade = (shadow > SHADOW_VISIBLE) & (thick <= CLOUD_MED) & valid
    return (cloud * 1 + shade * 2 + haze * 8).astype(np.uint8)


class CloudField:
    """Cloud thickness and shadow strength over the world for one acquisition.

    Drawn on a coarse grid (``step`` metres) that extends past the world, so clouds
    outside the world still cast shadows into it.

    Parameters
    ----------
    rng : numpy.random.Generator
    extent_m : float
        Size of the (square) world.
    fraction : float
        Wanted fraction of the world covered by cloud (thickness above ``CLOUD_MED``).
    sun_azimuth, sun_elevation : float
        Degrees; azimuth clockwise from north.
    cloud_height : float
        Metres above ground.
    region : (x0, x1, y0, y1), optional
        World-local bounds over which ``fraction`` is reached (default: the world and
        the margin its shadows can come from).
    """

    def __init__(self, rng, extent_m, fraction, *, sun_azimuth, sun_elevation, cloud_height, step=20.0,
                 region=None):
        self.step = step
        self.extent_m = extent_m
        reach = cloud_height / np.tan(np.radians(sun_elevation))
        # Shadows fall opposite to the sun: image x grows east, image rows grow south.
        self.shadow_offset_m = (-reach * np.sin(np.radians(sun_azimuth)), -reach * np.cos(np.radians(sun_azimuth)))
        self.pad = int(np.ceil(reach / step)) + 2
        n = int(np.ceil(extent_m / step)) + 2 * self.pad
        noise = smooth_noise(rng, (n, n), 400.0 / step) + 0.35 * smooth_noise(rng, (n, n), 120.0 / step)
        if region is None:  # the whole padded field: clouds just outside the world cast shadows into it
            inner = noise
        else:
            x0, x1, y0, y1 = region
            sel = lambda v: slice(self.pad + int(v[0] // step), self.pad + int(np.ceil(v[1] / step)))  # noqa: E731
            inner = noise[sel((y0, y1)), sel((x0, x1))]
        if fraction <= 0:
            thick = np.zeros_like(noise)
        else:
            thr = np.quantile(inner, 1 - min(fraction, 0.999))
            thick = np.clip((noise - thr) / 0.6 + CLOUD_MED, 0, 1)
            thick[noise < thr - 0.15 * 0.6 / 0.25] = 0  # no haze far from clouds
        self.thickness = thick.astype(np.float32)
        # Shadow = cloud thickness moved by the shadow offset (east = +x, north = -row).
        dx, dy = self.shadow_offset_m
        self.shadow = ndimage.shift(self.thickness, (-dy / step, dx / step), order=1, mode="constant", cval=0.0)

    def sample(self, x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cloud thickness and shadow strength at world coordinates (metres from the
        world's top-left corner, y growing southwards)."""
        rows = y_m / self.step + self.pad - 0.5
        cols = x_m / self.step + self.pad - 0.5
        coords = np.stack([rows.ravel(), cols.ravel()])
        thick = ndimage.map_coordinates(self.thickness, coords, order=1, mode="nearest").reshape(x_m.shape)
        shadow = ndimage.map_coordinates(self.shadow, coords, order=1, mode="nearest").reshape(x_m.shape)
        return thick, shadow


def apply_atmosphere(refl: np.ndarray, thick: np.ndarray, shadow: np.ndarray) -> np.ndarray:
    """Top-of-canopy reflectance seen through clouds and in their shadows."""
    dark = 1.0 - 0.65 * np.clip(shadow, 0, 1) * (thick < CLOUD_MED)
    return (refl * dark[None]) * (1 - thick[None]) + CLOUD_SPECTRUM[:, None, None] * thick[None]


def add_noise(rng, refl: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """Signal-dependent (shot) noise with the given SNR at the reference reflectance."""
    sigma = (REFERENCE_REFLECTANCE / snr)[:, None, None] * np.sqrt(
        np.clip(refl, 1e-4, None) / REFERENCE_REFLECTANCE
    )
    return refl + sigma * rng.standard_normal(refl.shape, dtype=np.float32)


def scene_classification(refl: np.ndarray, thick: np.ndarray, shadow: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """An SCL-like classification layer from what the LR sensor recorded."""
    blue, red, nir = refl[0], refl[2], refl[3]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    scl = np.full(thick.shape, SCL_BARE, dtype=np.uint8)
    scl[ndvi > 0.4] = SCL_VEG
    scl[(nir < 0.05) & (blue > nir)] = SCL_WATER
    scl[(shadow > SHADOW_MIN) & (thick < CLOUD_MED)] = SCL_SHADOW
    scl[thick > CLOUD_MED] = SCL_CLOUD_MED
    scl[thick > CLOUD_HIGH] = SCL_CLOUD_HIGH
    scl[~valid] = SCL_NODATA
    return scl


def to_dn(refl: np.ndarray, valid: np.ndarray, *, offset: int = 0, gain=None, bias=None) -> np.ndarray:
    """Quantise reflectance to uint16 digital numbers; 0 stays no data."""
    values = refl
    if gain is not None:
        values = values * np.asarray(gain, dtype=np.float32)[:, None, None]
    if bias is not None:
        values = values + np.asarray(bias, dtype=np.float32)[:, None, None]
    dn = np.rint(values * QUANTIFICATION) + offset
    dn = np.clip(dn, 1, 65535).astype(np.uint16)
    dn[:, ~valid] = 0
    return dn


def displacement_field(rng, shape: tuple[int, int], amplitude_px: float, scale_px: float) -> np.ndarray:
    """A smooth non-rigid displacement ``(2, rows, cols)`` in pixels, strongest in one
    part of the image, as uneven orthorectification leaves it."""
    dr = smooth_noise(rng, shape, scale_px)
    dc = smooth_noise(rng, shape, scale_px)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    cr, cc = rng.uniform(0.3, 0.7) * shape[0], rng.uniform(0.3, 0.7) * shape[1]
    envelope = np.exp(-(((rows - cr) / (0.3 * shape[0])) ** 2 + ((cols - cc) / (0.3 * shape[1])) ** 2))
    return amplitude_px * envelope[None] * np.stack([dr, dc])
