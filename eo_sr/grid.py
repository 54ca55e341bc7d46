"""Exact target grids for LR/HR pairs, reprojection onto them, and a
co-registration check.

Super-resolution pairs need pixels that line up: the HR grid is the LR grid refined
by the integer factor, so every LR pixel is exactly ``factor x factor`` HR pixels and
their edges coincide. Sensors deliver "almost" the nominal resolution (PlanetScope is
"not exactly 5 m", a Web Mercator product at 3 m is 2.45 m on the ground at 35 N), in
other CRSs; both are resampled onto these exact grids.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from eo_sr.errors import InvalidInputError

RESAMPLING = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode")


@dataclass(frozen=True)
class GridSpec:
    """A north-up pixel grid: CRS, top-left corner, pixel size and shape.

    Attributes
    ----------
    crs : str
        E.g. ``"EPSG:32636"``.
    left, top : float
        Coordinates of the outer top-left corner of the top-left pixel.
    res : float
        Pixel size in CRS units (square pixels).
    height, width : int
    """

    crs: str
    left: float
    top: float
    res: float
    height: int
    width: int

    def __post_init__(self):
        if not self.res > 0:
            raise InvalidInputError(f"grid resolution must be positive, got {self.res!r}")
        if self.height < 1 or self.width < 1:
            raise InvalidInputError(f"grid shape must be at least 1x1, got {(self.height, self.width)}")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def transform(self):
        from affine import Affine

        return Affine(self.res, 0.0, self.left, 0.0, -self.res, self.top)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)``."""
        return (self.left, self.top - self.height * self.res, self.left + self.width * self.res, self.top)

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(x, y)`` as xarray wants them."""
        x = self.left + (np.arange(self.width) + 0.5) * self.res
        y = self.top - (np.arange(self.height) + 0.5) * self.res
        return x, y

    def refine(self, factor: int) -> GridSpec:
        """The grid ``factor`` times finer, with the same outer edges."""
        factor = _int_factor(factor)
        return GridSpec(self.crs, self.left, self.top, self.res / factor, self.height * factor, self.width * factor)

    def coarsen(self, factor: int) -> GridSpec:
        """The grid ``factor`` times coarser; the shape must divide exactly."""
        factor = _int_factor(factor)
        if self.height % factor or self.width % factor:
            raise InvalidInputError(f"a {self.height}x{self.width} grid cannot be coarsened by {factor}: "
                                    "its shape must be a multiple of the factor")
        return GridSpec(self.crs, self.left, self.top, self.res * factor, self.height // factor,
                        self.width // factor)

    def window(self, row: int, col: int, height: int, width: int) -> GridSpec:
        """The sub-grid starting at pixel ``(row, col)``."""
        if row < 0 or col < 0 or row + height > self.height or col + width > self.width:
            raise InvalidInputError(f"window {(row, col, height, width)} lies outside the {self.shape} grid")
        return GridSpec(self.crs, self.left + col * self.res, self.top - row * self.res, self.res, height, width)

    def geobox(self):
        """The same grid as an ``odc.geo`` GeoBox (for odc-stac)."""
        from odc.geo.geobox import GeoBox

        return GeoBox(self.shape, self.transform, self.crs)


def _int_factor(factor) -> int:
    if isinstance(factor, bool) or not float(factor).is_integer() or int(factor) < 1:
        raise InvalidInputError(f"the resolution factor must be a positive integer, got {factor!r}; "
                                "see eo_sr.sensors.resolution_factor")
    return int(factor)


def aligned_grids(bounds, *, crs: str, lr_res: float, factor: int,
                  anchor: tuple[float, float] = (0.0, 0.0)) -> tuple[GridSpec, GridSpec]:
    """An LR grid exactly at ``lr_res`` covering ``bounds`` and its HR refinement.

    The LR grid's edges are snapped outwards to multiples of ``lr_res`` from
    ``anchor`` (the LR sensor's own grid: Sentinel-2 tiles start on multiples of 60 m
    in UTM, so ``(0, 0)`` keeps LR pixels unresampled).

    Parameters
    ----------
    bounds : (left, bottom, right, top)
        Area to cover, in ``crs``.
    crs : str
        The LR sensor's CRS, e.g. ``"EPSG:32636"``.
    lr_res : float
        LR pixel size, e.g. 10.
    factor : int
        Resolution factor; the HR grid has pixels ``lr_res / factor``.
    anchor : (x, y)
        A point on the LR sensor's pixel-edge lattice.

    Returns
    -------
    lr, hr : GridSpec
        ``hr == lr.refine(factor)``: pixel edges coincide.

    Raises
    ------
    InvalidInputError
        Empty or inverted bounds, a non-integer factor.
    """
    factor = _int_factor(factor)
    left, bottom, right, top = (float(v) for v in bounds)
    if not (right > left and top > bottom):
        raise InvalidInputError(f"bounds {tuple(bounds)} are empty or inverted; give (left, bottom, right, top)")
    ax, ay = anchor
    l0 = ax + np.floor((left - ax) / lr_res + 1e-9) * lr_res
    t0 = ay + np.ceil((top - ay) / lr_res - 1e-9) * lr_res
    r0 = ax + np.ceil((right - ax) / lr_res - 1e-9) * lr_res
    b0 = ay + np.floor((bottom - ay) / lr_res + 1e-9) * lr_res
    lr = GridSpec(str(crs), float(l0), float(t0), float(lr_res), int(round((t0 - b0) / lr_res)),
                  int(round((r0 - l0) / lr_res)))
    return lr, lr.refine(factor)


def inner_grid(grid: GridSpec, bounds, *, multiple: int = 1) -> GridSpec:
    """The largest sub-grid of ``grid`` lying fully inside ``bounds`` whose shape is a
    multiple of ``multiple`` (e.g. the LR patch size)."""
    left, bottom, right, top = bounds
    c0 = int(np.ceil((left - grid.left) / grid.res - 1e-9))
    r0 = int(np.ceil((grid.top - top) / grid.res - 1e-9))
    c1 = int(np.floor((right - grid.left) / grid.res + 1e-9))
    r1 = int(np.floor((grid.top - bottom) / grid.res + 1e-9))
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, grid.width), min(r1, grid.height)
    h = (r1 - r0) // multiple * multiple
    w = (c1 - c0) // multiple * multiple
    if h < 1 or w < 1:
        raise InvalidInputError(f"bounds {tuple(bounds)} hold no whole {multiple}x{multiple} block of the grid")
    return grid.window(r0, c0, h, w)


def grid_of(data) -> GridSpec:
    """The GridSpec of a rioxarray-enabled DataArray (north-up, square pixels)."""
    crs = data.rio.crs
    if crs is None:
        raise InvalidInputError("the array has no CRS; set one with .rio.write_crs(...) before gridding it")
    t = data.rio.transform()
    if abs(t.b) > 1e-12 or abs(t.d) > 1e-12 or not np.isclose(t.a, -t.e):
        raise InvalidInputError(f"only north-up grids with square pixels are supported, got transform {t}")
    return GridSpec(crs.to_string(), t.c, t.f, t.a, data.rio.height, data.rio.width)


def reproject_to_grid(data, grid: GridSpec, *, resampling: str = "bilinear", nodata=None):
    """Resample a georeferenced DataArray onto ``grid`` (rioxarray/GDAL warp).

    Parameters
    ----------
    data : xarray.DataArray
        With a CRS (``data.rio.crs``); dims ``(..., y, x)``.
    grid : GridSpec
    resampling : str
        One of :data:`RESAMPLING`. ``"average"`` for downsampling by area,
        ``"bilinear"``/``"cubic"`` for similar resolutions, ``"nearest"``/``"mode"``
        for classes and masks.
    nodata : number, optional
        Value for pixels outside the source (default: the array's nodata, else NaN
        for floats).

    Returns
    -------
    xarray.DataArray
        On exactly ``grid`` (transform equal to the last digit).

    Raises
    ------
    InvalidInputError
        No CRS, or an unknown resampling name.
    """
    from rasterio.enums import Resampling

    if resampling not in RESAMPLING:
        raise InvalidInputError(f"unknown resampling {resampling!r}; choose one of {list(RESAMPLING)}")
    if data.rio.crs is None:
        raise InvalidInputError("the array has no CRS; set one with .rio.write_crs(...) before reprojecting")
    kwargs: dict[str, Any] = {}
    if nodata is not None:
        kwargs["nodata"] = nodata
    out = data.rio.reproject(grid.crs, shape=grid.shape, transform=grid.transform,
                             resampling=getattr(Resampling, resampling), **kwargs)
    x, y = grid.coords()
    return out.assign_coords(x=x, y=y)


def check_alignment(lr: GridSpec, hr: GridSpec, factor: int, *, tolerance: float = 1e-6) -> None:
    """Raise unless ``hr`` is exactly ``lr`` refined by ``factor``."""
    factor = _int_factor(factor)
    problems = []
    if lr.crs != hr.crs:
        problems.append(f"CRS differ ({lr.crs} vs {hr.crs})")
    if abs(lr.res / factor - hr.res) > tolerance * lr.res:
        problems.append(f"HR pixel {hr.res} is not LR pixel {lr.res} / {factor}")
    if abs(lr.left - hr.left) > tolerance * lr.res or abs(lr.top - hr.top) > tolerance * lr.res:
        problems.append(f"corners differ: LR ({lr.left}, {lr.top}) vs HR ({hr.left}, {hr.top})")
    if (hr.height, hr.width) != (lr.height * factor, lr.width * factor):
        problems.append(f"HR shape {hr.shape} is not LR shape {lr.shape} x {factor}")
    if problems:
        raise InvalidInputError("LR and HR grids are not aligned: " + "; ".join(problems)
                                + ". Build them with eo_sr.grid.aligned_grids")


def coregistration_shift(reference: np.ndarray, moving: np.ndarray, *, upsample_factor: int = 20,
                         mask: np.ndarray | None = None) -> tuple[float, float, float]:
    """Sub-pixel shift ``(dy, dx)`` that registers ``moving`` onto ``reference``,
    by phase correlation (scikit-image), and the normalised correlation error.

    Parameters
    ----------
    reference, moving : ndarray, shape (rows, cols)
        Same shape, one band (use a band with texture, e.g. NIR or red).
    upsample_factor : int
        Precision: 1/upsample_factor of a pixel.
    mask : ndarray of bool, optional
        True where both images are valid; the masked variant of phase correlation
        is used (slower, no sub-pixel refinement).

    Returns
    -------
    dy, dx, error : float
        In pixels of the inputs; ``error`` in [0, 1], low is good.
    """
    from skimage.registration import phase_cross_correlation

    reference = np.asarray(reference, dtype=np.float64)
    moving = np.asarray(moving, dtype=np.float64)
    if reference.shape != moving.shape or reference.ndim != 2:
        raise InvalidInputError(f"coregistration needs two 2-D images of one shape, got {reference.shape} "
                                f"and {moving.shape}")
    if mask is not None:
        shift = phase_cross_correlation(reference, moving, reference_mask=mask, moving_mask=mask)
        return float(shift[0][0]), float(shift[0][1]), float("nan")
    shift, error, _ = phase_cross_correlation(reference - reference.mean(), moving - moving.mean(),
                                             upsample_factor=upsample_factor, normalization=None)
    return float(shift[0]), float(shift[1]), float(error)


def pair_shift(lr_band: np.ndarray, hr_band: np.ndarray, factor: int, *, upsample_factor: int = 20):
    """Residual shift of an HR image against its LR partner, in LR pixels.

    The HR band is averaged down by ``factor`` (block means) and registered against
    the LR band by phase correlation. Returns ``(dy, dx, error)``.
    """
    factor = _int_factor(factor)
    h, w = lr_band.shape
    if hr_band.shape != (h * factor, w * factor):
        raise InvalidInputError(f"HR shape {hr_band.shape} is not LR shape {lr_band.shape} x {factor}")
    down = hr_band.reshape(h, factor, w, factor).mean(axis=(1, 3))
    return coregistration_shift(lr_band, down, upsample_factor=upsample_factor)
