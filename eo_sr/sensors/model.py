"""The data model of the sensor registry: :class:`Band`, :class:`CloudMask`,
:class:`Provider` and :class:`Sensor`.

Also the small helpers the other modules of :mod:`eo_sr.sensors` share: the
read-only :class:`FrozenMap` the dataclasses store their mappings in,
:func:`join_names` and :func:`unknown_name_error` for messages.

Standard library only, no I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from eo_sr.errors import InvalidInputError, UnknownNameError

__all__ = [
    "MASK_KINDS",
    "Band",
    "CloudMask",
    "FrozenMap",
    "Provider",
    "Sensor",
    "join_names",
    "unknown_name_error",
]

#: The three kinds of quality mask that :class:`CloudMask` describes.
MASK_KINDS = ("classification", "bitmask", "bands")


class FrozenMap(Mapping):
    """A read-only, hashable, picklable mapping (a dict behind a Mapping view)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self) -> Iterator:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __setattr__(self, name, value):  # pragma: no cover - defensive
        raise AttributeError("read-only mapping")

    def __getstate__(self):
        return self._data

    def __setstate__(self, state):
        object.__setattr__(self, "_data", dict(state))


def join_names(names) -> str:
    """``names`` joined by commas for a message, or ``"(none)"``."""
    return ", ".join(names) if names else "(none)"


def unknown_name_error(what: str, name: Any, known: Sequence[str], *, extra: str = "") -> UnknownNameError:
    """Build an UnknownNameError listing the known names (and a close match)."""
    import difflib  # only on the error path

    msg = f"unknown {what} {name!r}; known {what}s: {join_names(sorted(known))}."
    close = difflib.get_close_matches(str(name), list(known), n=1)
    if close:
        msg += f" Did you mean {close[0]!r}?"
    if extra:
        msg += f" {extra}"
    return UnknownNameError(msg)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Band:
    """One spectral band of a sensor.

    Parameters
    ----------
    name : str
        The band's name in the product, e.g. ``"B04"`` (Sentinel-2) or
        ``"SR_B4"`` (Landsat Collection 2).
    common_name : str
        The band's key in eo-sr: the STAC ``eo`` common name (``blue``, ``red``,
        ``nir``, ``nir08``, ``swir16`` ...), made unique within its sensor, so
        Sentinel-2's three red-edge bands are ``rededge1``, ``rededge2`` and
        ``rededge3`` (as Earth Search names their assets).
    center_wavelength_um : float or None
        Centre wavelength in micrometres; None where it is not published
        (NAIP, whose camera changes between years and states).
    full_width_half_max_um : float or None
        Full width at half maximum of the spectral response, micrometres.
    gsd : float
        Ground sample distance of the band in metres.
    """

    name: str
    common_name: str
    center_wavelength_um: float | None
    full_width_half_max_um: float | None
    gsd: float

    def __post_init__(self) -> None:
        if not self.common_name or self.common_name != self.common_name.strip().lower():
            raise InvalidInputError(
                f"band common_name must be a non-empty lower-case name, got {self.common_name!r}"
            )
        if not (isinstance(self.gsd, (int, float)) and math.isfinite(self.gsd) and self.gsd > 0):
            raise InvalidInputError(f"band {self.name!r}: gsd must be a positive number of metres, got {self.gsd!r}")
        for label, value in (
            ("center_wavelength_um", self.center_wavelength_um),
            ("full_width_half_max_um", self.full_width_half_max_um),
        ):
            if value is not None and not (0 < value < 20):
                raise InvalidInputError(
                    f"band {self.name!r}: {label} must be in micrometres (0-20) or None, got {value!r}"
                )

    @property
    def center_wavelength_nm(self) -> float | None:
        """Centre wavelength in nanometres (None if unknown)."""
        if self.center_wavelength_um is None:
            return None
        return round(self.center_wavelength_um * 1000.0, 6)


@dataclass(frozen=True)
class CloudMask:
    """The quality / cloud mask layer that a sensor's products carry.

    Parameters
    ----------
    name : str
        The layer's name in the product (``"SCL"``, ``"QA_PIXEL"``, ``"udm2"``).
        Its *asset key* depends on the catalogue: see :attr:`Provider.mask_asset`
        and :meth:`Sensor.mask_asset`.
    kind : {"classification", "bitmask", "bands"}
        ``"classification"``: each pixel holds one class value; ``classes`` maps
        value to class name and ``invalid`` lists the values to mask, so with
        NumPy ``np.isin(scl, sorted(mask.invalid))`` marks unusable pixels.
        ``"bitmask"``: each pixel is a bit field; ``classes`` maps a bit index to
        a flag name (two-bit confidence fields are keyed by their lower bit) and
        ``invalid`` lists the bits that make a pixel unusable, so
        ``(qa & mask.invalid_bits) != 0`` marks them.
        ``"bands"``: one binary band per class in a multi-band asset; ``classes``
        maps the 1-based band index to a class name and ``invalid`` lists the
        bands whose value 1 makes a pixel unusable.
    classes : Mapping[int, str]
        See ``kind``.
    invalid : frozenset of int
        Class values, bits or band indices (see ``kind``) that mark a pixel as
        unusable (no data, cloud, cloud shadow, cirrus ...).
    notes : str, optional
        Anything a user must know to read the mask correctly.
    """

    name: str
    kind: str
    classes: Mapping[int, str]
    invalid: frozenset[int]
    notes: str = ""

    def __post_init__(self) -> None:
        if self.kind not in MASK_KINDS:
            raise InvalidInputError(
                f"cloud mask {self.name!r}: kind must be one of {', '.join(MASK_KINDS)}, got {self.kind!r}"
            )
        object.__setattr__(self, "classes", FrozenMap(self.classes))
        object.__setattr__(self, "invalid", frozenset(self.invalid))
        unknown = sorted(set(self.invalid) - set(self.classes))
        if unknown:
            raise InvalidInputError(
                f"cloud mask {self.name!r}: invalid values {unknown} are not among its classes "
                f"{sorted(self.classes)}"
            )
        if self.kind == "bitmask" and any(not 0 <= b < 64 for b in self.classes):
            raise InvalidInputError(f"cloud mask {self.name!r}: bit indices must be in 0..63")

    @property
    def invalid_names(self) -> tuple[str, ...]:
        """Names of the invalid classes / bits / bands, in value order."""
        return tuple(self.classes[v] for v in sorted(self.invalid))

    @property
    def invalid_bits(self) -> int:
        """For a ``"bitmask"``: the integer with every invalid bit set.

        Raises
        ------
        InvalidInputError
            If the mask is not a bitmask.
        """
        if self.kind != "bitmask":
            raise InvalidInputError(
                f"cloud mask {self.name!r} is a {self.kind} mask, not a bitmask; use its `invalid` values"
            )
        return sum(1 << b for b in self.invalid)

    def class_value(self, name: str) -> int:
        """Return the value (class, bit or band index) of a class name.

        Parameters
        ----------
        name : str
            A class name, e.g. ``"water"`` or ``"cloud_shadow"``.

        Returns
        -------
        int

        Raises
        ------
        UnknownNameError
            If the mask has no such class; the message lists its classes.
        """
        for value, class_name in self.classes.items():
            if class_name == name:
                return value
        raise unknown_name_error(f"{self.name} class", name, list(self.classes.values()))

    def is_invalid(self, value: int) -> bool:
        """Whether one mask pixel value marks the pixel unusable.

        Parameters
        ----------
        value : int
            A class value (``"classification"``) or a bit field (``"bitmask"``).

        Returns
        -------
        bool

        Raises
        ------
        InvalidInputError
            For a ``"bands"`` mask, whose pixel is a vector, not one value.
        """
        if self.kind == "classification":
            return int(value) in self.invalid
        if self.kind == "bitmask":
            return (int(value) & self.invalid_bits) != 0
        raise InvalidInputError(
            f"cloud mask {self.name!r} stores one binary band per class; a pixel is unusable where any of "
            f"bands {sorted(self.invalid)} ({', '.join(self.invalid_names)}) is 1"
        )


@dataclass(frozen=True)
class Provider:
    """A catalogue (STAC API or vendor API) that serves a sensor's products.

    Parameters
    ----------
    name : str
        Short provider id, e.g. ``"earth-search"`` or ``"planetary-computer"``.
    collection : str
        The collection id in that catalogue (STAC collection, or Planet item
        type), exactly as the catalogue spells it.
    assets : Mapping[str, str]
        Band common name -> asset key, exactly as the catalogue names the asset.
    mask_asset : str or None
        Asset key of the quality / cloud mask, or None.
    requires_signing : bool, optional
        Whether asset URLs must be signed first (Planetary Computer: call
        ``planetary_computer.sign``).
    url : str or None, optional
        Root URL of the API.
    band_index : Mapping[str, int], optional
        For bands stored in a *multi-band* asset: common name -> 1-based band
        index inside that asset (the index rasterio and GDAL use). Bands absent
        here are single-band assets. E.g. NAIP's ``red`` is band 1 of asset
        ``"image"``.
    requester_pays : bool, optional
        Whether the data lie in a requester-pays bucket (reading them needs
        AWS credentials and costs the reader money).
    api_key_env : str or None, optional
        Name of the environment variable that holds the API key the provider
        needs (never the key itself).
    notes : str, optional
        Anything else a user must know about this provider.
    catalogue : str, optional
        The catalogue the provider belongs to, when one catalogue serves a sensor in
        several collections (Earth Search's ``sentinel-2-l2a`` and
        ``sentinel-2-c1-l2a``); default ``name``.
    """

    name: str
    collection: str
    assets: Mapping[str, str]
    mask_asset: str | None = None
    requires_signing: bool = False
    url: str | None = None
    band_index: Mapping[str, int] = field(default_factory=dict)
    requester_pays: bool = False
    api_key_env: str | None = None
    notes: str = ""
    catalogue: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "catalogue", self.catalogue or self.name)
        object.__setattr__(self, "assets", FrozenMap(self.assets))
        object.__setattr__(self, "band_index", FrozenMap(self.band_index))
        stray = sorted(set(self.band_index) - set(self.assets))
        if stray:
            raise InvalidInputError(
                f"provider {self.name!r}: band_index names {stray} that have no asset; "
                f"known: {join_names(list(self.assets))}"
            )
        bad = {k: v for k, v in self.band_index.items() if not (isinstance(v, int) and v >= 1)}
        if bad:
            raise InvalidInputError(f"provider {self.name!r}: band indices are 1-based integers, got {bad}")

    @property
    def access(self) -> str:
        """One line saying what reading this provider's assets needs."""
        needs = []
        if self.requires_signing:
            needs.append("signed URLs")
        if self.requester_pays:
            needs.append("AWS credentials (requester pays)")
        if self.api_key_env:
            needs.append(f"an API key in ${self.api_key_env}")
        return ", ".join(needs) if needs else "anonymous access"


@dataclass(frozen=True, repr=False)
class Sensor:
    """A sensor (product level included) and how catalogues serve it.

    Parameters
    ----------
    id : str
        Registry id, lower case, e.g. ``"sentinel-2-l2a"``.
    name : str
        Human-readable name.
    platform : str
        Platform(s) in words, e.g. ``"sentinel-2a/b/c"``.
    gsd : float
        Nominal ground sample distance in metres of the sensor's finest
        (or main) bands; the one :func:`resolution_factor` uses.
    bands : tuple of Band
        Spectral bands, common names unique.
    dtype : str
        Data type of the stored digital numbers (``"uint16"``, ``"uint8"``).
    scale, offset : float or None
        ``reflectance = DN * scale + offset``; both None where the digital
        numbers are not calibrated reflectance (NAIP).
    nodata : int or None
        The digital number that marks missing data, or None if none is declared.
    cloud_mask : CloudMask or None
        The product's quality / cloud mask, or None if it has none.
    providers : Mapping[str, Provider] or sequence of Provider
        Catalogues serving the sensor, by provider name (a sequence is keyed
        by each provider's ``name``).
    notes : str, optional
        Caveats worth reading before using the sensor.
    harmonization : str, optional
        How to make its digital numbers comparable across processing versions
        and with other sensors (e.g. Sentinel-2's BOA offset).
    band_aliases : Mapping[str, str], optional
        Extra names accepted by :meth:`band`: alias -> common name. Landsat maps
        ``"nir"`` to ``"nir08"`` so that it pairs with Sentinel-2's ``nir``.
    aliases : tuple of str, optional
        Other names :func:`get_sensor` accepts for this sensor.
    stac_platforms : tuple of str, optional
        Values of the STAC ``platform`` property this sensor's items carry
        (compare case-insensitively: Planetary Computer writes
        ``"Sentinel-2A"``), to filter out other platforms sharing a collection.
    """

    id: str
    name: str
    platform: str
    gsd: float
    bands: tuple[Band, ...]
    dtype: str
    scale: float | None
    offset: float | None
    nodata: int | None
    cloud_mask: CloudMask | None
    providers: Mapping[str, Provider]
    notes: str = ""
    harmonization: str = ""
    band_aliases: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    stac_platforms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("bands", tuple(self.bands))
        set_("aliases", tuple(self.aliases))
        set_("stac_platforms", tuple(self.stac_platforms))
        if isinstance(self.providers, Mapping):
            providers = dict(self.providers)
        else:  # a sequence of Provider
            providers = {p.name: p for p in self.providers}
        set_("providers", FrozenMap(providers))
        set_("band_aliases", FrozenMap(self.band_aliases))

        if not self.id or self.id != self.id.strip().lower():
            raise InvalidInputError(f"sensor id must be a non-empty lower-case name, got {self.id!r}")
        if not (isinstance(self.gsd, (int, float)) and math.isfinite(self.gsd) and self.gsd > 0):
            raise InvalidInputError(f"sensor {self.id!r}: gsd must be a positive number of metres, got {self.gsd!r}")
        if not self.bands:
            raise InvalidInputError(f"sensor {self.id!r} has no bands")
        names = [b.common_name for b in self.bands]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInputError(f"sensor {self.id!r}: band common names {dupes} are not unique")
        if (self.scale is None) != (self.offset is None):
            raise InvalidInputError(f"sensor {self.id!r}: give both scale and offset, or neither")
        for alias, target in self.band_aliases.items():
            if alias in names:
                raise InvalidInputError(f"sensor {self.id!r}: band alias {alias!r} hides a real band")
            if target not in names:
                raise InvalidInputError(
                    f"sensor {self.id!r}: band alias {alias!r} points to unknown band {target!r}"
                )
        for key, provider in self.providers.items():
            if key != provider.name:
                raise InvalidInputError(
                    f"sensor {self.id!r}: provider stored under {key!r} is named {provider.name!r}"
                )
            stray = sorted(set(provider.assets) - set(names))
            if stray:
                raise InvalidInputError(
                    f"sensor {self.id!r}, provider {key!r}: assets for unknown bands {stray}; "
                    f"bands: {join_names(names)}"
                )

    def __repr__(self) -> str:
        return (
            f"Sensor(id={self.id!r}, gsd={self.gsd:g}, bands={list(self.common_names)}, "
            f"providers={list(self.providers)})"
        )

    def __hash__(self) -> int:
        return hash(self.id)

    # ------------------------------------------------------------------ bands

    @property
    def common_names(self) -> tuple[str, ...]:
        """Common names of the bands, in band order."""
        return tuple(b.common_name for b in self.bands)

    def _resolve(self, name: str) -> str | None:
        if not isinstance(name, str):
            return None
        if name in self.common_names:
            return name
        key = name.strip().lower()
        if key in self.common_names:
            return key
        if key in self.band_aliases:
            return self.band_aliases[key]
        for b in self.bands:  # the product's own band name, e.g. "B04"
            if b.name.lower() == key:
                return b.common_name
        return None

    def has_band(self, name: str) -> bool:
        """Whether :meth:`band` accepts ``name``."""
        return self._resolve(name) is not None

    def band(self, name: str) -> Band:
        """Return a band by common name, alias or product band name.

        Parameters
        ----------
        name : str
            ``"red"``, an alias (``"nir"`` for Landsat's ``nir08``) or the
            product's band name (``"B04"``); case-insensitive.

        Returns
        -------
        Band

        Raises
        ------
        UnknownNameError
            If the sensor has no such band; the message lists its bands.
        """
        common = self._resolve(name)
        if common is None:
            extra = ""
            if self.band_aliases:
                extra = "Aliases: " + ", ".join(f"{a} -> {t}" for a, t in self.band_aliases.items()) + "."
            raise unknown_name_error(f"{self.id} band", name, list(self.common_names), extra=extra)
        return self.bands[self.common_names.index(common)]

    def bands_at(self, gsd: float | None = None) -> tuple[Band, ...]:
        """Bands whose GSD is ``gsd`` metres (default: the sensor's nominal GSD).

        Parameters
        ----------
        gsd : float, optional
            Ground sample distance in metres.

        Returns
        -------
        tuple of Band
        """
        target = self.gsd if gsd is None else gsd
        return tuple(b for b in self.bands if math.isclose(b.gsd, target, rel_tol=1e-9))

    @property
    def is_reflectance(self) -> bool:
        """Whether ``DN * scale + offset`` gives (surface) reflectance."""
        return self.scale is not None

    # -------------------------------------------------------------- providers

    def provider(self, name: str) -> Provider:
        """Return one of the providers serving this sensor.

        Parameters
        ----------
        name : str
            Provider name, e.g. ``"earth-search"``; case-insensitive.

        Returns
        -------
        Provider

        Raises
        ------
        UnknownNameError
            If no such provider serves the sensor; the message lists them.
        """
        if isinstance(name, str):
            key = name.strip().lower().replace("_", "-").replace(" ", "-")
            for pname, provider in self.providers.items():
                if pname.lower() == key:
                    return provider
        raise unknown_name_error(f"{self.id} provider", name, list(self.providers))

    def collection(self, provider: str) -> str:
        """Collection id of this sensor at ``provider``.

        Parameters
        ----------
        provider : str
            Provider name.

        Returns
        -------
        str

        Raises
        ------
        UnknownNameError
            If the provider is unknown.
        """
        return self.provider(provider).collection

    def asset_key(self, common_name: str, provider: str) -> str:
        """Asset key of a band at a provider, exactly as the provider names it.

        Parameters
        ----------
        common_name : str
            Band common name (or alias, or product band name).
        provider : str
            Provider name.

        Returns
        -------
        str
            E.g. ``"red"`` at Earth Search and ``"B04"`` at Planetary Computer
            for Sentinel-2's red band. For a band stored in a multi-band asset
            see :meth:`band_index`.

        Raises
        ------
        UnknownNameError
            If the band or the provider is unknown.
        InvalidInputError
            If the provider does not serve that band.
        """
        band = self.band(common_name)
        prov = self.provider(provider)
        try:
            return prov.assets[band.common_name]
        except KeyError:
            raise InvalidInputError(
                f"{prov.name} does not serve band {band.common_name!r} of {self.id}; "
                f"it serves: {join_names(list(prov.assets))}"
            ) from None

    def band_index(self, common_name: str, provider: str) -> int | None:
        """1-based index of a band inside its asset, or None for a single-band asset.

        Parameters
        ----------
        common_name : str
            Band common name (or alias).
        provider : str
            Provider name.

        Returns
        -------
        int or None

        Raises
        ------
        UnknownNameError
            If the band or the provider is unknown.
        InvalidInputError
            If the provider does not serve that band.
        """
        self.asset_key(common_name, provider)  # validates both
        return self.provider(provider).band_index.get(self.band(common_name).common_name)

    def mask_asset(self, provider: str) -> str | None:
        """Asset key of the cloud / quality mask at ``provider`` (None if none)."""
        return self.provider(provider).mask_asset

