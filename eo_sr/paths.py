"""Where eo-sr keeps what it generates or downloads.

Everything generated (the demo world, search caches, patch stores) lives under one
cache folder: ``$EO_SR_CACHE`` when set, else ``data/cache`` inside a source
checkout (git-ignored), else ``~/.cache/eo-sr`` for an installed package.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

CACHE_ENV = "EO_SR_CACHE"

_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def cache_dir(*parts: str, create: bool = True) -> Path:
    """Return the cache folder (or a folder inside it).

    Parameters
    ----------
    *parts : str
        Sub-folders inside the cache, e.g. ``cache_dir("demo", "default-0")``.
    create : bool, optional
        Create the folder if it does not exist (default).

    Returns
    -------
    pathlib.Path
        An absolute path.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        root = Path(env).expanduser()
    elif (_CHECKOUT_ROOT / "pyproject.toml").is_file() and (_CHECKOUT_ROOT / "eo_sr").is_dir():
        root = _CHECKOUT_ROOT / "data" / "cache"
    else:
        root = Path.home() / ".cache" / "eo-sr"
    path = root.joinpath(*parts).resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(text: str, *, max_length: int = 80) -> str:
    """``text`` as a single file name that cannot leave its folder.

    STAC ids and asset keys are chosen by whoever publishes the items: an id such as
    ``../../escape`` or ``/etc/passwd`` must not become a path. Every run of characters
    other than letters, digits, ``.``, ``_`` and ``-`` becomes ``_``, leading dots are
    dropped (no ``..``, no hidden files), and the result is cut to ``max_length``.
    Different ids can map to one name: callers that need uniqueness add a digest of the
    raw text (as :func:`eo_sr.patches.pair_id` does).

    Examples
    --------
    >>> safe_filename("../../escape")
    'escape'
    >>> safe_filename("S2B_36SWD_20220115_0_L2A")
    'S2B_36SWD_20220115_0_L2A'
    """
    name = _UNSAFE.sub("_", str(text)).lstrip("._")[:max_length].rstrip(".")
    return name or "_"
