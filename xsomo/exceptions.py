"""The xsomo exception hierarchy.

Every error xsomo raises on purpose derives from :class:`XsomoError`. Where the meaning
fits, a class also derives from a builtin so that callers can catch that instead.
"""

from __future__ import annotations


class XsomoError(Exception):
    """Base class of every xsomo error."""


class XsomoValueError(XsomoError, ValueError):
    """An argument or a piece of data has the wrong value."""


class XsomoKeyError(XsomoError, KeyError):
    """A variable, station, layer or configuration key is missing or unknown."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class UnitError(XsomoValueError):
    """Units are missing, unknown or not convertible to the expected ones."""


class GridMismatchError(XsomoValueError):
    """Two grids or periods that must agree do not."""


class DataFormatError(XsomoValueError):
    """An input file is corrupt, truncated or not in the expected format."""


class MissingVariableError(XsomoKeyError):
    """A required variable is missing from a dataset or a file."""


class ConfigError(XsomoValueError):
    """A configuration has unknown keys, missing keys or invalid values."""


class CheckpointError(XsomoError):
    """A model checkpoint is corrupt, mismatched or unsafe to load."""


class XsomoExceptionGroup(ExceptionGroup, XsomoError):
    """Several problems found at once (one note per station or variable)."""


__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataFormatError",
    "GridMismatchError",
    "MissingVariableError",
    "UnitError",
    "XsomoError",
    "XsomoExceptionGroup",
    "XsomoKeyError",
    "XsomoValueError",
]
