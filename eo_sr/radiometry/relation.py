"""The linear relation between two sensors' bands over the same ground."""
from __future__ import annotations

import numpy as np


def band_line(hr: np.ndarray, lr: np.ndarray, *, factor: int, valid: np.ndarray,
              cells: int = 4) -> tuple[float, float] | None:
    """Least-squares ``lr = gain * hr + offset`` for one band, fitted on blocks of ground.

    Parameters
    ----------
    hr : ndarray, shape (H, W)
        The HR band on the LR grid refined by ``factor``.
    lr : ndarray, shape (H / factor, W / factor)
    factor : int
    valid : ndarray of bool, shape (H / factor, W / factor)
        LR pixels to fit on (their HR pixels must be valid too).
    cells : int, optional
        Side of the blocks (LR pixels) averaged before fitting: single pixels disagree at
        every edge (the LR sensor blurs), which flattens a fitted gain.

    Returns
    -------
    (gain, offset) or None
        None when fewer than 10 whole blocks are valid, the HR values do not vary, or the
        gain is not positive.

    Notes
    -----
    Between two passes hours apart (other shadows, another season's light) the fitted
    gain still comes out flatter than the sensors' own, by 10-30 % on the demo world: a
    line to extend a match with, not a calibration.
    """
    h, w = (n // cells for n in lr.shape)
    if h == 0 or w == 0:
        return None
    big = factor * cells
    ok = np.asarray(valid, bool)[:h * cells, :w * cells].reshape(h, cells, w, cells).all(axis=(1, 3))
    if ok.sum() < 10:
        return None
    x = np.asarray(hr, np.float64)[:h * big, :w * big].reshape(h, big, w, big).mean(axis=(1, 3))[ok]
    y = np.asarray(lr, np.float64)[:h * cells, :w * cells].reshape(h, cells, w, cells).mean(axis=(1, 3))[ok]
    if x.std() == 0:
        return None
    gain, offset = np.polyfit(x, y, 1)
    return (float(gain), float(offset)) if gain > 0 else None
