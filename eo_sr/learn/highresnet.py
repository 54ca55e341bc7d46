"""HighRes-Net (Deudon et al. 2020): multi-frame SR by recursive pairwise fusion.

Each valid LR frame is encoded together with a shared reference (the per-pixel median of the
valid frames), the encodings are fused two by two until one is left, and a decoder upsamples it
with pixel shuffle. Missing and padding frames take no part at all: the frames of each sample
are compacted to its valid ones (in order) before fusion, so an output never depends on how
many padding frames a batch carries.
"""
from __future__ import annotations

import torch
from torch import nn

from eo_sr.learn.base import SRModel, median_valid
from eo_sr.learn.resampling import bicubic_upsample

__all__ = ["HighResNet", "PReLUBlock", "fuse_recursively"]


class PReLUBlock(nn.Module):
    """HighRes-Net's residual block: (conv - PReLU) twice, added to the input."""

    def __init__(self, width: int, kernel_size: int = 3):
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(nn.Conv2d(width, width, kernel_size, padding=pad), nn.PReLU(),
                                  nn.Conv2d(width, width, kernel_size, padding=pad), nn.PReLU())

    def forward(self, x):
        return x + self.body(x)


def fuse_recursively(states: torch.Tensor, fuse: nn.Module) -> torch.Tensor:
    """Fuse hidden states ``(B, n, C, h, w)`` pairwise into ``(B, C, h, w)``.

    Each round pairs state ``i`` with state ``n - 1 - i`` (HighRes-Net's "alice" and the
    reversed "bob") and replaces the pair by ``alice + fuse([alice, bob])``; with an odd count
    the middle state passes to the next round unpaired (HighRes-Net drops it), so every frame
    counts for any ``n``.

    Parameters
    ----------
    states : Tensor, shape (B, n, C, h, w)
    fuse : nn.Module
        ``(N, 2C, h, w) -> (N, C, h, w)``.

    Returns
    -------
    Tensor, shape (B, C, h, w)
    """
    B, n, C, h, w = states.shape
    while n > 1:
        half = n // 2
        alice = states[:, :half]
        bob = states[:, n - half:].flip(1)
        pairs = torch.cat([alice, bob], dim=2).reshape(B * half, 2 * C, h, w)
        fused = alice + fuse(pairs).reshape(B, half, C, h, w)
        states = torch.cat([fused, states[:, half:half + 1]], dim=1) if n % 2 else fused
        n = states.shape[1]
    return states[:, 0]


class HighResNet(SRModel):
    """HighRes-Net for up to ``frames`` LR frames, with pixel-shuffle decoding.

    1. Reference: the per-pixel median of the valid frames (:func:`~eo_sr.learn.base.median_valid`).
    2. Encoder: each valid frame stacked with the reference (``2 C`` channels), a convolution,
       ``blocks`` residual blocks and a convolution to ``width`` maps.
    3. Fusion: :func:`fuse_recursively` over the valid frames of each sample.
    4. Decoder: a convolution to ``width * f^2`` maps, :class:`torch.nn.PixelShuffle` to factor
       ``f``, PReLU and a convolution to the bands; with ``skip``, added to the bicubic
       upsampling of the reference.

    Parameters
    ----------
    factor, bands, frames, project, psf_sigma, standardize
        As :class:`~eo_sr.learn.base.SRModel`; the projection (``project=True``) makes the output
        consistent with the reference.
    width : int, optional
        Hidden feature maps (default 32; the paper's 64).
    blocks : int, optional
        Residual blocks of the encoder (default 2).
    kernel_size : int, optional
        Convolution kernels (default 3).
    skip : bool, optional
        Add the bicubic upsampling of the reference to the output (default True; not in the
        paper, whose decoder outputs the image itself).

    References
    ----------
    .. [1] M. Deudon, A. Kalaitzis, I. Goytom, M. R. Arefin, Z. Lin, K. Sankaran, V. Michalski,
       S. E. Kahou, J. Cornebise and Y. Bengio, "HighRes-net: recursive fusion for multi-frame
       super-resolution of satellite imagery", arXiv:2002.06460, 2020;
       github.com/ElementAI/HighRes-net.
    .. [2] J. Cornebise, I. Oršolić and F. Kalaitzis, "Open high-resolution satellite imagery: the
       WorldStrat dataset", NeurIPS Datasets and Benchmarks 2022.
    """

    name = "highresnet"

    def __init__(self, *, factor: int, bands: int, frames: int = 8, project: bool = False, psf_sigma: float = 0.5,
                 standardize: bool = True, width: int = 32, blocks: int = 2, kernel_size: int = 3,
                 skip: bool = True):
        super().__init__(factor=factor, bands=bands, frames=frames, project=project, psf_sigma=psf_sigma,
                         standardize=standardize, width=int(width), blocks=int(blocks),
                         kernel_size=int(kernel_size), skip=bool(skip))
        self.skip = bool(skip)
        pad = kernel_size // 2
        self.encoder = nn.Sequential(nn.Conv2d(2 * bands, width, kernel_size, padding=pad), nn.PReLU(),
                                     *[PReLUBlock(width, kernel_size) for _ in range(blocks)],
                                     nn.Conv2d(width, width, kernel_size, padding=pad))
        self.fuse = nn.Sequential(PReLUBlock(2 * width, kernel_size),
                                  nn.Conv2d(2 * width, width, kernel_size, padding=pad), nn.PReLU())
        f = self.factor
        self.decoder = nn.Sequential(nn.Conv2d(width, width * f * f, kernel_size, padding=pad), nn.PixelShuffle(f),
                                     nn.PReLU(), nn.Conv2d(width, bands, kernel_size, padding=pad))

    def super_resolve(self, lr, mask):
        B, T, C, h, w = lr.shape
        ref = median_valid(lr, mask)
        counts = mask.sum(dim=1)
        hidden = None
        # Samples with the same number of valid frames share a fusion tree: run them together,
        # each compacted to its valid frames (a stable sort keeps their order).
        for n in counts.unique().tolist():
            rows = (counts == n).nonzero().flatten()
            order = torch.argsort((~mask[rows]).to(torch.int8), dim=1, stable=True)[:, :n]
            frames = lr[rows[:, None], order]  # (b, n, C, h, w)
            pairs = torch.cat([frames, ref[rows, None].expand(-1, n, -1, -1, -1)], dim=2)
            states = self.encoder(pairs.reshape(-1, 2 * C, h, w)).reshape(len(rows), n, -1, h, w)
            fused = fuse_recursively(states, self.fuse)
            if hidden is None:
                hidden = fused.new_zeros(B, *fused.shape[1:])
            hidden = hidden.index_copy(0, rows, fused)
        out = self.decoder(hidden)
        return (out + bicubic_upsample(ref, self.factor) if self.skip else out), ref
