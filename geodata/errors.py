"""Errors raised while reading and preparing geographic inputs.

Every message names the file, and where it can, the row and the field, so that a user can fix the input.
"""

from __future__ import annotations


class GeodataError(Exception):
    """Base class of every geodata error."""


class InputFileError(GeodataError, ValueError):
    """An input file is missing, empty, corrupt or of an unknown format."""


class NetworkBuildError(GeodataError, ValueError):
    """The road network could not be built from the OSM file."""


class MissingCRSError(GeodataError, ValueError):
    """A spatial file has no coordinate reference system."""


class MissingFieldError(GeodataError, KeyError):
    """A required field (column) is absent or holds no usable values."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class DuplicateIdError(GeodataError, ValueError):
    """Ids that must be unique repeat."""


class JoinKeyError(GeodataError, ValueError):
    """A table join matched nothing, or left rows unmatched."""


class InvalidValueError(GeodataError, ValueError):
    """A field holds a value out of its domain (negative population, unparseable hours, ...)."""


class OutsideNetworkError(GeodataError, ValueError):
    """A point lies outside the area the road network covers."""


class SnapDistanceWarning(UserWarning):
    """A point was snapped to a network node farther away than the warning threshold."""


class AssumptionWarning(UserWarning):
    """A default was applied where the input was silent (age shares, branch costs)."""


class DataRepairWarning(UserWarning):
    """An input value was repaired on request (e.g. swapped arrival and departure); the message names the row."""
