"""Exceptions raised by eo-sr.

Every error that a user can cause (bad input, a missing tool, a server that will
not start) derives from :class:`EoSrError`, so notebooks and the command line can
show its message without a traceback. Subclasses also derive from the matching
built-in exception, so ``except ValueError`` keeps working.
"""
from __future__ import annotations


class EoSrError(Exception):
    """Base class of all errors that eo-sr raises on purpose."""


class InvalidInputError(EoSrError, ValueError):
    """An argument makes no sense; the message says what to change."""


class UnknownNameError(EoSrError, KeyError):
    """A sensor, collection, band or provider name is not known.

    The message lists the known names.
    """

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ServerError(EoSrError, RuntimeError):
    """The local STAC API could not be started or answered badly."""


class NotFoundError(EoSrError, FileNotFoundError):
    """A file, folder or store that eo-sr needs is not there; the message says how to make it."""

    def __str__(self) -> str:  # OSError would otherwise format (errno, strerror)
        return str(self.args[0]) if self.args else ""


class CatalogError(EoSrError):
    """A remote STAC catalog failed: unreachable, an HTTP error, an answer that is not STAC."""


class DataReadError(EoSrError, OSError):
    """Pixels could not be read: a missing, truncated or corrupt raster file."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
