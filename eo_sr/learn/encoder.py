"""A feature encoder trained on this domain's HR images, for the perceptual loss term.

The perceptual loss compares features of the SR output and of the target. The usual features
come from VGG trained on ImageNet; those weights cannot be downloaded here, and they are RGB
photographs' features, not those of 4-band reflectance. So eo-sr trains its own: a small
convolutional encoder, trained as a denoising autoencoder on the HR patches of a store's
training split (the HR image blurred to LR sharpness and noised, reconstructed sharp), so that its
features respond to the edges and textures that separate HR from bicubic.

``train_encoder(store, out="encoder.pt")`` writes a file that :func:`load_encoder` reads with
``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from torch import nn

from eo_sr.errors import InvalidInputError, NotFoundError

__all__ = ["FORMAT", "DomainEncoder", "load_encoder", "train_encoder"]

FORMAT = "eo-sr-encoder/1"


class DomainEncoder(nn.Module):
    """Two stages of convolutions; :meth:`forward` returns the features of both.

    Parameters
    ----------
    bands : int
    width : int
        Feature maps of the first stage (the second has twice as many).
    """

    def __init__(self, *, bands: int, width: int = 16):
        super().__init__()
        self.config = {"bands": int(bands), "width": int(width)}
        self.stage1 = nn.Sequential(nn.Conv2d(bands, width, 3, padding=1), nn.ReLU(),
                                    nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.stage2 = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
                                    nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        a = self.stage1(x)
        return [a, self.stage2(a)]


class _Decoder(nn.Module):
    def __init__(self, bands: int, width: int):
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                nn.Conv2d(2 * width, width, 3, padding=1), nn.ReLU())
        self.out = nn.Conv2d(2 * width, bands, 3, padding=1)

    def forward(self, feats):
        a, b = feats
        return self.out(torch.cat([a, self.up(b)], dim=1))


def _blur(x: torch.Tensor, factor: int) -> torch.Tensor:
    """HR seen at LR sharpness and back: block mean, then bilinear upsampling."""
    down = nn.functional.avg_pool2d(x, factor)
    return nn.functional.interpolate(down, scale_factor=factor, mode="bilinear", align_corners=False)


def train_encoder(store, *, out: str | Path, width: int = 16, minutes: float = 1.0, batch_size: int = 16,
                  seed: int = 0, noise: float = 0.02, store_checksum: str | None = None) -> DomainEncoder:
    """Train a :class:`DomainEncoder` on the HR patches of a store's training split.

    Parameters
    ----------
    store : path or eo_sr.store.PatchStore
    out : path
        Where to write it (atomically); an existing file of the same store is reused.
    width : int
    minutes : float
        Training time.
    batch_size, seed : int
    noise : float
        Standard deviation of the added noise, in the store's scaled units.
    store_checksum : str, optional
        The store's checksum when the caller has it (computing it reads every array).

    Returns
    -------
    DomainEncoder
        Frozen, in eval mode.
    """
    from eo_sr.dataset import Normalize, PatchDataset, collate_samples
    from eo_sr.store import PatchStore, open_store

    store = store if isinstance(store, PatchStore) else open_store(store)
    out = Path(out)
    checksum = store_checksum or store.checksum()
    if out.is_file():
        try:
            encoder, meta = _read(out)
            if meta.get("store_checksum") == checksum and encoder.config["width"] == width:
                return encoder
        except InvalidInputError:
            pass  # unreadable: train again
    stats = store.norm_stats()["lr"]
    data = PatchDataset(store, "train", frames=1, transforms=Normalize(stats, stats))
    if len(data) == 0:
        raise InvalidInputError("the store's training split is empty: the encoder learns from its HR patches")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    bands = len(store.bands)
    encoder, decoder = DomainEncoder(bands=bands, width=width), _Decoder(bands, width)
    params = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, collate_fn=collate_samples,
                                         generator=generator)
    deadline = time.perf_counter() + minutes * 60
    while time.perf_counter() < deadline:
        for batch in loader:
            hr = torch.nan_to_num(batch["hr"])
            corrupted = _blur(hr, store.factor) + noise * torch.randn(hr.shape, generator=generator)
            loss = (decoder(encoder(corrupted)) - hr).abs().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if time.perf_counter() >= deadline:
                break
    encoder.eval().requires_grad_(False)
    _write(out, encoder, {"store_checksum": checksum, "loss": float(loss)})
    return encoder


def _write(path: Path, encoder: DomainEncoder, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "config": json.dumps(encoder.config), "meta": json.dumps(meta),
               "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}}
    tmp = path.with_name(path.name + ".part")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _read(path: Path):
    import pickle

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise InvalidInputError(f"{path} is not a readable eo-sr encoder: {str(exc)[:200]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InvalidInputError(f"{path} is not an eo-sr encoder (format {FORMAT!r}): make one with train_encoder")
    encoder = DomainEncoder(**json.loads(payload["config"]))
    encoder.load_state_dict(payload["state_dict"])
    return encoder.eval().requires_grad_(False), json.loads(payload["meta"])


def load_encoder(path: str | Path) -> DomainEncoder:
    """Read an encoder that :func:`train_encoder` wrote (``weights_only=True``).

    Raises
    ------
    NotFoundError
        No file at ``path``.
    InvalidInputError
        A corrupt file or one of another kind.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no encoder at {path}: train one with eo_sr.learn.encoder.train_encoder")
    return _read(path)[0]
