"""Radiometry: mask-aware histogram matching, robust normalisation, cloud flags.

Step 6 of the pipeline. Two sensors never see the same colours: different spectral responses,
atmospheric conditions, viewing angles and processing. Before an SR model can learn the
*spatial* detail of the HR sensor, the HR target is brought to the radiometry of the LR input:

- :func:`match_histograms` matches each band of an image to a reference distribution while
  ignoring masked pixels (nodata, clouds), exact on integer data and fast on float reflectance;
- :func:`match_to_bicubic` matches HR towards the bicubic-upsampled LR of the same place and
  time, as the multi-temporal SR seed does;
- :class:`NormStats`, :func:`compute_norm_stats`, :func:`normalize` and :func:`denormalize`
  rescale bands robustly (median, or 1st/99th percentile) with statistics computed once over a
  tile or a region, stored as JSON and reused at inference;
- :func:`consistent_pixels` finds the pixels where HR and LR agree (a fitting mask when an
  unmasked cloud shadow darkens HR; add :func:`open_water`, which it leaves out), and
  :func:`blue_threshold_cloud_mask` finds clouds on sensors without a cloud mask;
  :func:`cloud_fractions` gives the cloud fraction of every frame of a mask time series (SCL,
  QA_PIXEL or boolean); :func:`eo_sr.qc.flag_shadow_neighbours` flags patches next to cloudy
  patches of the same acquisition (shadows fall near clouds);
- :func:`degrade` simulates the LR image of an HR image (Wald's protocol: the LR sensor's PSF,
  exact block averaging, noise), for pairs where only HR imagery exists.

Everything is importable from here; the code lives in :mod:`eo_sr.radiometry.histogram`
(matching), :mod:`eo_sr.radiometry.normalize` (statistics), :mod:`eo_sr.radiometry.clouds` and
:mod:`eo_sr.radiometry.degrade`; :mod:`eo_sr.radiometry.relation` fits a band's linear relation
between the two sensors, with which :func:`match_to_bicubic` extends its map to unfitted pixels
beyond the fitted ones.
:func:`upsample_bicubic` and :func:`bicubic_matrix` are :mod:`eo_sr.bicubic`'s, re-exported.

Masks follow one convention throughout: **True means valid** (use the pixel). A cloud mask
(True = cloud) is therefore passed as ``~cloud_mask``.
"""
from __future__ import annotations

from eo_sr.bicubic import bicubic_matrix, upsample_bicubic
from eo_sr.radiometry.clouds import (blue_threshold_cloud_mask, cloud_fractions, consistent_pixels,
                                     open_water)
from eo_sr.radiometry.degrade import MTF_AT_NYQUIST, degrade, psf_sigma_from_mtf
from eo_sr.radiometry.histogram import DEFAULT_N_BINS, match_histograms, match_to_bicubic
from eo_sr.radiometry.normalize import NormStats, compute_norm_stats, denormalize, normalize

__all__ = [
    "DEFAULT_N_BINS",
    "MTF_AT_NYQUIST",
    "NormStats",
    "bicubic_matrix",
    "blue_threshold_cloud_mask",
    "cloud_fractions",
    "compute_norm_stats",
    "consistent_pixels",
    "degrade",
    "denormalize",
    "match_histograms",
    "match_to_bicubic",
    "normalize",
    "open_water",
    "psf_sigma_from_mtf",
    "upsample_bicubic",
]
