"""A registry of satellite (and aerial) sensors.

Each :class:`Sensor` records what eo-sr needs to know to search, load and pair
imagery from it: its spectral bands (:class:`Band`), how digital numbers map to
reflectance, its quality / cloud mask (:class:`CloudMask`) and, for every STAC
catalogue that serves it (:class:`Provider`), the collection id and the exact
asset key of every band.

This module is pure: standard library only, no I/O, so ``import eo_sr.sensors``
is instant.

Examples
--------
>>> from eo_sr import sensors
>>> s2 = sensors.get_sensor("s2")
>>> s2.id
'sentinel-2-l2a'
>>> s2.asset_key("red", "earth-search"), s2.asset_key("red", "planetary-computer")
('red', 'B04')
>>> sensors.resolution_factor("demo-lr", "demo-hr")
4
>>> sensors.check_pair("landsat-c2-l2", "sentinel-2-l2a").band_pairs["nir"][0].name
'SR_B5'
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence, Union

from eo_sr.errors import InvalidInputError, UnknownNameError

__all__ = [
    "Band",
    "CloudMask",
    "PairCheck",
    "Provider",
    "Sensor",
    "check_pair",
    "find_sensor_for_collection",
    "get_sensor",
    "list_sensors",
    "register_sensor",
    "resolution_factor",
    "sensor_table",
]

#: The three kinds of quality mask that :class:`CloudMask` describes.
MASK_KINDS = ("classification", "bitmask", "bands")


class _FrozenMap(Mapping):
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


def _names(names) -> str:
    return ", ".join(names) if names else "(none)"


def _unknown(what: str, name: Any, known: Sequence[str], *, extra: str = "") -> UnknownNameError:
    """Build an UnknownNameError listing the known names (and a close match)."""
    import difflib  # only on the error path

    msg = f"unknown {what} {name!r}; known {what}s: {_names(sorted(known))}."
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
        object.__setattr__(self, "classes", _FrozenMap(self.classes))
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
        raise _unknown(f"{self.name} class", name, list(self.classes.values()))

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

    def __post_init__(self) -> None:
        object.__setattr__(self, "assets", _FrozenMap(self.assets))
        object.__setattr__(self, "band_index", _FrozenMap(self.band_index))
        stray = sorted(set(self.band_index) - set(self.assets))
        if stray:
            raise InvalidInputError(
                f"provider {self.name!r}: band_index names {stray} that have no asset; "
                f"known: {_names(list(self.assets))}"
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
        set_("providers", _FrozenMap(providers))
        set_("band_aliases", _FrozenMap(self.band_aliases))

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
                    f"bands: {_names(names)}"
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
            raise _unknown(f"{self.id} band", name, list(self.common_names), extra=extra)
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
        raise _unknown(f"{self.id} provider", name, list(self.providers))

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
                f"it serves: {_names(list(prov.assets))}"
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


# --------------------------------------------------------------------- the data

_S2_BOA_NOTE = (
    "From processing baseline 04.00 (products from 2022-01-25 on) Sentinel-2 L2A digital numbers carry a "
    "BOA add-offset of -1000: reflectance = (DN - 1000) / 10000, while older products use DN / 10000. "
    "Catalogues flag this differently: Earth Search v1 writes `raster:bands` offset -0.1 on each band asset "
    "and the item property `earthsearch:boa_offset_applied`; Planetary Computer exposes "
    "`s2:processing_baseline` (apply the offset when it is >= '04.00'). Decide per item and never subtract "
    "the offset twice: a double offset drives dark surfaces (water) negative."
)

_SCL = CloudMask(
    name="SCL",
    kind="classification",
    classes={
        0: "no_data",
        1: "saturated_or_defective",
        2: "dark_area_pixels",
        3: "cloud_shadows",
        4: "vegetation",
        5: "not_vegetated",
        6: "water",
        7: "unclassified",
        8: "cloud_medium_probability",
        9: "cloud_high_probability",
        10: "thin_cirrus",
        11: "snow",
    },
    invalid=frozenset({0, 1, 3, 8, 9, 10}),
    notes=(
        "Sen2Cor scene classification at 20 m; upsample it with nearest-neighbour to the 10 m grid. "
        "Class 2 (dark area pixels: topographic or dark-feature shadow) is kept valid."
    ),
)

_QA_PIXEL = CloudMask(
    name="QA_PIXEL",
    kind="bitmask",
    classes={
        0: "fill",
        1: "dilated_cloud",
        2: "cirrus",
        3: "cloud",
        4: "cloud_shadow",
        5: "snow",
        6: "clear",
        7: "water",
        8: "cloud_confidence",
        10: "cloud_shadow_confidence",
        12: "snow_ice_confidence",
        14: "cirrus_confidence",
    },
    invalid=frozenset({0, 1, 2, 3, 4}),
    notes=(
        "Landsat Collection 2 QA_PIXEL (CFMask) bit field. Bits 8-9, 10-11, 12-13 and 14-15 are two-bit "
        "confidence fields (0 none, 1 low, 2 medium, 3 high), keyed here by their lower bit. The cirrus "
        "bit (2) is set for OLI (Landsat 8/9) only."
    ),
)

_UDM2 = CloudMask(
    name="udm2",
    kind="bands",
    classes={
        1: "clear",
        2: "snow",
        3: "shadow",
        4: "light_haze",
        5: "heavy_haze",
        6: "cloud",
        7: "confidence",
        8: "unusable",
    },
    invalid=frozenset({3, 5, 6}),
    notes=(
        "Planet usable data mask 2: bands 1-6 are binary (1 = class present); band 7 is the classification "
        "confidence (0-100 %) and band 8 the legacy UDM bit field (non-zero = unusable). The simplest test "
        "is band 1 (clear) == 1; light haze (band 4) is left valid here."
    ),
)

_EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
_PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1"

_S2_BANDS = (
    # name, common name, centre um, FWHM um, gsd m (values as in the STAC eo extension of both catalogues)
    Band("B01", "coastal", 0.443, 0.027, 60.0),
    Band("B02", "blue", 0.490, 0.098, 10.0),
    Band("B03", "green", 0.560, 0.045, 10.0),
    Band("B04", "red", 0.665, 0.038, 10.0),
    Band("B05", "rededge1", 0.704, 0.019, 20.0),
    Band("B06", "rededge2", 0.740, 0.018, 20.0),
    Band("B07", "rededge3", 0.783, 0.028, 20.0),
    Band("B08", "nir", 0.842, 0.145, 10.0),
    Band("B8A", "nir08", 0.865, 0.033, 20.0),
    Band("B09", "nir09", 0.945, 0.026, 60.0),
    Band("B11", "swir16", 1.610, 0.143, 20.0),
    Band("B12", "swir22", 2.190, 0.242, 20.0),
)

SENTINEL_2_L2A = Sensor(
    id="sentinel-2-l2a",
    name="Sentinel-2 MSI Level-2A",
    platform="sentinel-2a/b/c",
    gsd=10.0,
    bands=_S2_BANDS,
    dtype="uint16",
    scale=0.0001,
    offset=0.0,
    nodata=0,
    cloud_mask=_SCL,
    providers=(
        Provider(
            name="earth-search",
            collection="sentinel-2-l2a",
            assets={b.common_name: b.common_name for b in _S2_BANDS},
            mask_asset="scl",
            requires_signing=False,
            url=_EARTH_SEARCH,
            notes="Cloud-optimised GeoTIFFs in the public s3://sentinel-cogs bucket (us-west-2).",
        ),
        Provider(
            name="planetary-computer",
            collection="sentinel-2-l2a",
            assets={b.common_name: b.name for b in _S2_BANDS},
            mask_asset="SCL",
            requires_signing=True,
            url=_PLANETARY_COMPUTER,
        ),
    ),
    notes=(
        "Bands come at 10 m (blue, green, red, nir), 20 m (red edge, nir08, swir) and 60 m (coastal, "
        "nir09); `Sensor.bands_at()` lists the 10 m ones. Items are 110 km MGRS tiles in UTM."
    ),
    harmonization=_S2_BOA_NOTE,
    aliases=("s2", "sentinel2", "sentinel-2", "s2-l2a", "sentinel2-l2a"),
    stac_platforms=("sentinel-2a", "sentinel-2b", "sentinel-2c"),
)

_OLI_BANDS = (
    # values as in the STAC eo extension of the landsat-c2-l2 collections (stactools-landsat)
    Band("SR_B1", "coastal", 0.44, 0.02, 30.0),
    Band("SR_B2", "blue", 0.48, 0.06, 30.0),
    Band("SR_B3", "green", 0.56, 0.06, 30.0),
    Band("SR_B4", "red", 0.65, 0.04, 30.0),
    Band("SR_B5", "nir08", 0.87, 0.03, 30.0),
    Band("SR_B6", "swir16", 1.61, 0.09, 30.0),
    Band("SR_B7", "swir22", 2.20, 0.19, 30.0),
)
_OLI_ASSETS = {b.common_name: b.common_name for b in _OLI_BANDS}

LANDSAT_C2_L2 = Sensor(
    id="landsat-c2-l2",
    name="Landsat 8/9 OLI Collection 2 Level-2 surface reflectance",
    platform="landsat-8/9",
    gsd=30.0,
    bands=_OLI_BANDS,
    dtype="uint16",
    scale=0.0000275,
    offset=-0.2,
    nodata=0,
    cloud_mask=_QA_PIXEL,
    providers=(
        Provider(
            name="earth-search",
            collection="landsat-c2-l2",
            assets=_OLI_ASSETS,
            mask_asset="qa_pixel",
            requires_signing=False,
            url=_EARTH_SEARCH,
            requester_pays=True,
            notes="Assets point into the USGS requester-pays bucket s3://usgs-landsat (us-west-2).",
        ),
        Provider(
            name="planetary-computer",
            collection="landsat-c2-l2",
            assets=_OLI_ASSETS,
            mask_asset="qa_pixel",
            requires_signing=True,
            url=_PLANETARY_COMPUTER,
        ),
    ),
    notes=(
        "The landsat-c2-l2 collections also hold Landsat 4-7 TM/ETM+ scenes with other band sets; keep "
        "items whose platform is landsat-8 or landsat-9. The OLI near-infrared band is `nir08` "
        "(`band('nir')` resolves to it)."
    ),
    harmonization=(
        "Collection 2 Level-2 surface reflectance = DN * 0.0000275 - 0.2 (valid DN 7273-43636). No "
        "bandpass adjustment to Sentinel-2 is applied (NASA's HLS products do that)."
    ),
    band_aliases={"nir": "nir08"},
    aliases=("landsat", "landsat-c2", "landsat-8", "landsat-9", "landsat8", "landsat9"),
    stac_platforms=("landsat-8", "landsat-9"),
)

_NAIP_BANDS = (
    Band("Red", "red", None, None, 0.6),
    Band("Green", "green", None, None, 0.6),
    Band("Blue", "blue", None, None, 0.6),
    Band("NIR", "nir", None, None, 0.6),
)
_NAIP_ASSETS = {b.common_name: "image" for b in _NAIP_BANDS}
_NAIP_INDEX = {"red": 1, "green": 2, "blue": 3, "nir": 4}

NAIP = Sensor(
    id="naip",
    name="USDA National Agriculture Imagery Program (NAIP)",
    platform="aircraft",
    gsd=0.6,
    bands=_NAIP_BANDS,
    dtype="uint8",
    scale=None,
    offset=None,
    nodata=None,
    cloud_mask=None,
    providers=(
        Provider(
            name="planetary-computer",
            collection="naip",
            assets=_NAIP_ASSETS,
            band_index=_NAIP_INDEX,
            requires_signing=True,
            url=_PLANETARY_COMPUTER,
        ),
        Provider(
            name="earth-search",
            collection="naip",
            assets=_NAIP_ASSETS,
            band_index=_NAIP_INDEX,
            requires_signing=False,
            url=_EARTH_SEARCH,
            requester_pays=True,
            notes="Assets point into the requester-pays bucket s3://naip-analytic (us-west-2).",
        ),
    ),
    notes=(
        "Aerial orthophotos of the conterminous US, one 4-band asset (red, green, blue, nir). The GSD is "
        "0.6 m nominal but varies by state and year (1 m in older years, 0.3 m in some recent states): read "
        "the item's `gsd`. Cameras change between years and states, so band wavelengths are not recorded. "
        "Acquired cloud-free, hence no cloud mask. Older years may have 3 bands (no nir)."
    ),
    harmonization=(
        "NAIP digital numbers are 8-bit, radiometrically adjusted for appearance, not calibrated "
        "reflectance: normalise them (e.g. histogram matching to the LR sensor) before pairing."
    ),
)

_PS_BANDS = (
    Band("B1", "blue", 0.490, 0.050, 3.0),
    Band("B2", "green", 0.565, 0.036, 3.0),
    Band("B3", "red", 0.665, 0.031, 3.0),
    Band("B4", "nir", 0.865, 0.040, 3.0),
)

PLANETSCOPE = Sensor(
    id="planetscope",
    name="PlanetScope SuperDove PSScene 4-band ortho analytic surface reflectance",
    platform="planetscope superdove",
    gsd=3.0,
    bands=_PS_BANDS,
    dtype="uint16",
    scale=0.0001,
    offset=0.0,
    nodata=0,
    cloud_mask=_UDM2,
    providers=(
        Provider(
            name="planet",
            collection="PSScene",
            assets={b.common_name: "ortho_analytic_4b_sr" for b in _PS_BANDS},
            band_index={"blue": 1, "green": 2, "red": 3, "nir": 4},
            mask_asset="ortho_udm2",
            requires_signing=False,
            url="https://api.planet.com/data/v1",
            api_key_env="PL_API_KEY",
            notes="Planet Data API item type PSScene; assets must be activated before download.",
        ),
    ),
    notes=(
        "Ortho scenes are resampled to 3 m pixels; the ground sampling is about 3.7-4.1 m depending on "
        "altitude. PSScene also holds Dove Classic (PS2) and Dove-R (PS2.SD) scenes with other spectral "
        "responses: keep instrument PSB.SD for SuperDove. The NICFI tropical basemaps (4.77 m quads in "
        "EPSG:3857) that many tutorials use are no longer available: public access under NICFI ended in 2025."
    ),
    harmonization=(
        "Surface reflectance * 10000. Planet's Orders API offers a `harmonize` tool (target sensor "
        "Sentinel-2) that is not applied by default."
    ),
    aliases=("planet", "psscene", "superdove", "ps"),
)

_DEMO_LR_BANDS = (
    Band("B02", "blue", 0.490, 0.098, 10.0),
    Band("B03", "green", 0.560, 0.045, 10.0),
    Band("B04", "red", 0.665, 0.038, 10.0),
    Band("B08", "nir", 0.842, 0.145, 10.0),
)

DEMO_LR = Sensor(
    id="demo-lr",
    name="Demo world LR sensor (Sentinel-2 L2A-like)",
    platform="demo",
    gsd=10.0,
    bands=_DEMO_LR_BANDS,
    dtype="uint16",
    scale=0.0001,
    offset=0.0,
    nodata=0,
    cloud_mask=_SCL,
    providers=(
        Provider(
            name="demo",
            collection="demo-s2-l2a",
            assets={b.common_name: b.common_name for b in _DEMO_LR_BANDS},
            mask_asset="scl",
            requires_signing=False,
            url=None,
            notes="Served by the local STAC API of the offline demo world (see eo_sr.demo).",
        ),
    ),
    notes="Synthetic Sentinel-2-like scenes of the offline demo world: the four 10 m bands and SCL.",
    harmonization=_S2_BOA_NOTE + " The demo world flags it like Earth Search.",
)

_DEMO_HR_BANDS = (
    Band("blue", "blue", 0.4955, 0.059, 2.5),
    Band("green", "green", 0.5655, 0.067, 2.5),
    Band("red", "red", 0.6685, 0.057, 2.5),
    Band("nir", "nir", 0.831, 0.122, 2.5),
)

DEMO_HR = Sensor(
    id="demo-hr",
    name="Demo world HR sensor (Deimos-2-like)",
    platform="demo",
    gsd=2.5,
    bands=_DEMO_HR_BANDS,
    dtype="uint16",
    scale=0.0001,
    offset=0.0,
    nodata=0,
    cloud_mask=None,
    providers=(
        Provider(
            name="demo",
            collection="demo-hr",
            assets={b.common_name: b.common_name for b in _DEMO_HR_BANDS},
            requires_signing=False,
            url=None,
            notes="Served by the local STAC API of the offline demo world (see eo_sr.demo).",
        ),
    ),
    notes=(
        "Nominal GSD 2.5 m, but delivered in EPSG:3857 (Web Mercator), where a pixel's size in metres on "
        "the ground is not exactly 2.5 m (it shrinks by cos(latitude)): reproject before measuring. No "
        "cloud mask: clouds are found by a blue-band threshold."
    ),
)

_REGISTRY: dict[str, Sensor] = {}
_ALIASES: dict[str, str] = {}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def register_sensor(sensor: Sensor, *, replace: bool = False) -> Sensor:
    """Add a sensor to the registry (e.g. a commercial sensor of your own).

    Parameters
    ----------
    sensor : Sensor
        The sensor; its ``id`` and ``aliases`` become names for
        :func:`get_sensor`.
    replace : bool, optional
        Replace a registered sensor with the same id (default: refuse).

    Returns
    -------
    Sensor
        ``sensor``, for chaining.

    Raises
    ------
    InvalidInputError
        If ``sensor`` is not a :class:`Sensor`, or its id or an alias is taken.
    """
    if not isinstance(sensor, Sensor):
        raise InvalidInputError(f"register_sensor expects a Sensor, got {type(sensor).__name__}")
    if sensor.id in _REGISTRY and not replace:
        raise InvalidInputError(
            f"a sensor with id {sensor.id!r} is already registered; pass replace=True to replace it"
        )
    names = {_normalise(a) for a in sensor.aliases} - {sensor.id}
    if _ALIASES.get(sensor.id, sensor.id) != sensor.id:
        raise InvalidInputError(f"id {sensor.id!r} is already an alias of {_ALIASES[sensor.id]!r}")
    for alias in sorted(names):
        owner = _REGISTRY.get(alias) or _REGISTRY.get(_ALIASES.get(alias, ""))
        if owner is not None and owner.id != sensor.id:
            raise InvalidInputError(f"alias {alias!r} of {sensor.id!r} is already a name of {owner.id!r}")
    if sensor.id in _REGISTRY:  # replacing: drop the old aliases
        for alias in [a for a, target in _ALIASES.items() if target == sensor.id]:
            del _ALIASES[alias]
    _REGISTRY[sensor.id] = sensor
    for alias in names:
        _ALIASES[alias] = sensor.id
    return sensor


def _unregister(sensor_id: str) -> None:
    """Remove a sensor (for tests)."""
    _REGISTRY.pop(sensor_id, None)
    for alias in [a for a, target in _ALIASES.items() if target == sensor_id]:
        del _ALIASES[alias]


for _sensor in (SENTINEL_2_L2A, LANDSAT_C2_L2, NAIP, PLANETSCOPE, DEMO_LR, DEMO_HR):
    register_sensor(_sensor)
del _sensor


# ----------------------------------------------------------------- look-ups


def get_sensor(name: Union[str, Sensor]) -> Sensor:
    """Return a registered sensor by id or alias.

    Parameters
    ----------
    name : str or Sensor
        Id (``"sentinel-2-l2a"``) or alias (``"s2"``, ``"sentinel-2"``),
        case-insensitive, ``_`` and spaces read as ``-``. A :class:`Sensor` is
        returned unchanged.

    Returns
    -------
    Sensor

    Raises
    ------
    UnknownNameError
        If no sensor has that name; the message lists the known ids.
    InvalidInputError
        If ``name`` is neither a string nor a Sensor.
    """
    if isinstance(name, Sensor):
        return name
    if not isinstance(name, str):
        raise InvalidInputError(f"expected a sensor id (str) or a Sensor, got {type(name).__name__} {name!r}")
    key = _normalise(name)
    key = _ALIASES.get(key, key)
    try:
        return _REGISTRY[key]
    except KeyError:
        alias_text = ", ".join(sorted(_ALIASES))
        raise _unknown(
            "sensor", name, list(_REGISTRY), extra=f"Aliases: {alias_text}." if alias_text else ""
        ) from None


def list_sensors() -> list[str]:
    """Ids of the registered sensors, sorted.

    Returns
    -------
    list of str
    """
    return sorted(_REGISTRY)


def sensor_table() -> list[dict[str, Any]]:
    """One row per registered sensor, ready for ``pandas.DataFrame(sensor_table())``.

    Returns
    -------
    list of dict
        Keys: ``id``, ``name``, ``platform``, ``gsd`` (metres), ``bands``
        (comma-separated common names), ``n_bands``, ``dtype``, ``scale``,
        ``offset``, ``nodata``, ``cloud_mask`` (mask name or None) and
        ``providers`` (comma-separated provider names).
    """
    rows = []
    for sensor_id in list_sensors():
        s = _REGISTRY[sensor_id]
        rows.append(
            {
                "id": s.id,
                "name": s.name,
                "platform": s.platform,
                "gsd": s.gsd,
                "bands": ", ".join(s.common_names),
                "n_bands": len(s.bands),
                "dtype": s.dtype,
                "scale": s.scale,
                "offset": s.offset,
                "nodata": s.nodata,
                "cloud_mask": s.cloud_mask.name if s.cloud_mask else None,
                "providers": ", ".join(s.providers),
            }
        )
    return rows


def find_sensor_for_collection(collection: str, *, provider: str | None = None) -> Sensor:
    """Find the sensor whose products a STAC collection holds.

    Parameters
    ----------
    collection : str
        Collection id, e.g. ``"sentinel-2-l2a"`` (exact match preferred,
        case-insensitive otherwise).
    provider : str, optional
        Restrict the search to one provider, e.g. ``"planetary-computer"``.

    Returns
    -------
    Sensor

    Raises
    ------
    UnknownNameError
        If no registered sensor has that collection (at that provider); the
        message lists the known collections.
    InvalidInputError
        If ``collection`` is not a string, or several sensors share the
        collection and ``provider`` does not tell them apart.
    """
    if not isinstance(collection, str):
        raise InvalidInputError(f"collection must be a string, got {type(collection).__name__}")
    pkey = _normalise(provider) if provider is not None else None
    if pkey is not None:
        all_providers = sorted({p for s in _REGISTRY.values() for p in s.providers})
        if pkey not in all_providers:
            raise _unknown("provider", provider, all_providers)
    pairs = [
        (s, p)
        for s in _REGISTRY.values()
        for p in s.providers.values()
        if pkey is None or p.name == pkey
    ]
    for exact in (True, False):
        hits = [
            (s, p)
            for s, p in pairs
            if (p.collection == collection if exact else p.collection.lower() == collection.strip().lower())
        ]
        if hits:
            sensors = {s.id: s for s, _ in hits}
            if len(sensors) > 1:
                where = ", ".join(f"{s.id} at {p.name}" for s, p in hits)
                raise InvalidInputError(
                    f"collection {collection!r} belongs to several sensors ({where}); pass provider= to choose"
                )
            return next(iter(sensors.values()))
    known = sorted({f"{p.collection} ({p.name})" for _, p in pairs})
    where = f" at provider {pkey!r}" if pkey else ""
    raise UnknownNameError(f"unknown collection {collection!r}{where}; known collections: {_names(known)}")


# ----------------------------------------------------------------- pairing

GsdLike = Union[Sensor, str, int, float]


def _gsd_of(value: GsdLike, role: str) -> tuple[float, str]:
    """Return (gsd in metres, label for messages)."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{role} must be a Sensor, a sensor name or a GSD in metres, got {value!r}")
    if isinstance(value, numbers.Real):
        gsd = float(value)
        if not (math.isfinite(gsd) and gsd > 0):
            raise InvalidInputError(f"{role} GSD must be a positive, finite number of metres, got {value!r}")
        return gsd, f"{gsd:g} m"
    if isinstance(value, (str, Sensor)):
        sensor = get_sensor(value)
        return float(sensor.gsd), f"{sensor.id} ({sensor.gsd:g} m)"
    raise InvalidInputError(
        f"{role} must be a Sensor, a sensor name or a GSD in metres, got {type(value).__name__}"
    )


def resolution_factor(lr: GsdLike, hr: GsdLike, *, tolerance: float = 0.05) -> int:
    """Integer super-resolution factor between an LR and an HR sensor.

    Parameters
    ----------
    lr, hr : Sensor, str or float
        The low- and high-resolution sensors (objects or registered names), or
        their GSDs in metres.
    tolerance : float, optional
        Largest accepted relative difference between ``lr_gsd / hr_gsd`` and
        the nearest integer ``k`` (``|ratio / k - 1|``), i.e. how much the HR
        data may be rescaled to sit on an exact ``lr_gsd / k`` grid. Default 5 %.

    Returns
    -------
    int
        ``k = round(lr_gsd / hr_gsd)``, at least 2.

    Raises
    ------
    InvalidInputError
        If the ratio is not close to an integer >= 2 (the message gives the
        ratio and what to do), if the arguments look swapped (HR coarser than
        LR), if the GSDs are (about) equal, or if an argument is not a sensor
        or a positive number.
    UnknownNameError
        If a sensor name is unknown.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 0.5:
        raise InvalidInputError(f"tolerance must be a relative tolerance in [0, 0.5), got {tolerance!r}")
    lr_gsd, lr_label = _gsd_of(lr, "lr")
    hr_gsd, hr_label = _gsd_of(hr, "hr")
    ratio = lr_gsd / hr_gsd
    k = max(1, round(ratio))
    close = abs(ratio / k - 1.0) <= tolerance + 1e-12
    text = f"{lr_label} / {hr_label} = {ratio:.2f}"
    if k == 1 and close:
        raise InvalidInputError(
            f"{text}: the two GSDs are (about) equal, so there is nothing to super-resolve; choose an HR "
            "sensor whose GSD is 2, 3 or 4 times finer than the LR one"
        )
    if ratio < 1:
        inv = hr_gsd / lr_gsd
        raise InvalidInputError(
            f"{text} < 1: the HR sensor is coarser than the LR sensor; the arguments look swapped, call "
            f"resolution_factor(lr, hr) with the coarser sensor first (here the ratio would be {inv:.2f})"
        )
    if not close and ratio < 2:
        raise InvalidInputError(
            f"{text} is below 2: the HR sensor must be at least twice as fine as the LR one for "
            "super-resolution; choose sensors whose GSDs differ by an integer factor (2, 3, 4)"
        )
    if not close:
        k_down = math.floor(ratio)
        raise InvalidInputError(
            f"{text} is not close to an integer (tolerance {tolerance:.0%}); choose sensors whose GSDs differ "
            "by an integer factor (2, 3, 4), or resample the HR data to lr_gsd/k first, e.g. "
            f"{lr_gsd / k_down:.3g} m for k={k_down} (coarsening the HR data never invents detail), "
            "or pass a larger `tolerance`"
        )
    return int(k)


@dataclass(frozen=True)
class PairCheck:
    """What :func:`check_pair` found about an LR/HR sensor pair.

    Parameters
    ----------
    lr, hr : Sensor
        The two sensors.
    factor : int
        The super-resolution factor (:func:`resolution_factor`).
    common_names : tuple of str
        Band names both sensors have (aliases resolved), in LR wavelength order.
    band_pairs : Mapping[str, tuple[Band, Band]]
        For each of ``common_names``: (LR band, HR band).
    warnings : tuple of str
        Things to look at before training (spectral mismatches, uncalibrated
        digital numbers, missing cloud masks).
    """

    lr: Sensor
    hr: Sensor
    factor: int
    common_names: tuple[str, ...]
    band_pairs: Mapping[str, tuple[Band, Band]]
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "band_pairs", _FrozenMap(self.band_pairs))


def check_pair(
    lr: Union[Sensor, str],
    hr: Union[Sensor, str],
    *,
    tolerance: float = 0.05,
    max_wavelength_difference_um: float = 0.030,
) -> PairCheck:
    """Check that two sensors make a usable LR/HR super-resolution pair.

    Parameters
    ----------
    lr, hr : Sensor or str
        The low- and high-resolution sensors (objects or registered names).
    tolerance : float, optional
        Passed to :func:`resolution_factor`.
    max_wavelength_difference_um : float, optional
        Warn when a shared band's centre wavelengths differ by more than this
        (default 0.030 um = 30 nm).

    Returns
    -------
    PairCheck

    Raises
    ------
    InvalidInputError
        If the GSD ratio is not a usable integer factor (see
        :func:`resolution_factor`), or the sensors share no band.
    UnknownNameError
        If a sensor name is unknown.
    """
    for role, value in (("lr", lr), ("hr", hr)):
        if not isinstance(value, (str, Sensor)):
            raise InvalidInputError(
                f"check_pair needs sensors (objects or names) for {role}, not {type(value).__name__}: "
                "bands are compared; use resolution_factor() for bare GSDs"
            )
    lr_s, hr_s = get_sensor(lr), get_sensor(hr)
    factor = resolution_factor(lr_s, hr_s, tolerance=tolerance)

    candidates = list(lr_s.common_names) + list(lr_s.band_aliases) + list(hr_s.common_names) + list(hr_s.band_aliases)
    seen: dict[str, tuple[Band, Band]] = {}
    for name in candidates:
        if name not in seen and lr_s.has_band(name) and hr_s.has_band(name):
            seen[name] = (lr_s.band(name), hr_s.band(name))
    if not seen:
        raise InvalidInputError(
            f"{lr_s.id} and {hr_s.id} share no band: {lr_s.id} has {_names(lr_s.common_names)}; "
            f"{hr_s.id} has {_names(hr_s.common_names)}"
        )
    order = list(seen)
    ordered = sorted(
        order,
        key=lambda n: (
            seen[n][0].center_wavelength_um if seen[n][0].center_wavelength_um is not None else math.inf,
            seen[n][1].center_wavelength_um if seen[n][1].center_wavelength_um is not None else math.inf,
            order.index(n),
        ),
    )

    warnings: list[str] = []
    unknown_wl = []
    for name in ordered:
        lb, hb = seen[name]
        if lb.center_wavelength_um is None or hb.center_wavelength_um is None:
            unknown_wl.append(name)
            continue
        diff = abs(lb.center_wavelength_um - hb.center_wavelength_um)
        if diff > max_wavelength_difference_um + 1e-12:
            warnings.append(
                f"band {name!r}: centre wavelengths differ by {diff * 1000:.3g} nm ({lr_s.id} {lb.name} "
                f"{lb.center_wavelength_um:g} um vs {hr_s.id} {hb.name} {hb.center_wavelength_um:g} um); "
                "expect a radiometric bias, or drop the band"
            )
    if unknown_wl:
        warnings.append(
            f"centre wavelengths unknown for {', '.join(repr(n) for n in unknown_wl)}; spectral match not checked"
        )
    for s in (lr_s, hr_s):
        if not s.is_reflectance:
            warnings.append(
                f"{s.id} digital numbers are not calibrated reflectance; normalise the radiometry (e.g. "
                "histogram matching) before training"
            )
    if lr_s.cloud_mask is None and hr_s.cloud_mask is None:
        warnings.append(f"neither {lr_s.id} nor {hr_s.id} has a cloud mask; screen clouds another way")

    return PairCheck(
        lr=lr_s,
        hr=hr_s,
        factor=factor,
        common_names=tuple(ordered),
        band_pairs={n: seen[n] for n in ordered},
        warnings=tuple(warnings),
    )
