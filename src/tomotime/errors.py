"""Exceptions raised by tomotime for bad input.

Every error a user can cause names the offending file or argument and what was
expected, and is raised before any long computation starts.
"""


class TomotimeError(Exception):
    """Base class of all tomotime errors."""


class InputError(TomotimeError, ValueError):
    """An argument, array or file does not meet the documented expectation."""


class FormatError(InputError):
    """A file is missing, empty, truncated or of an unknown/unsupported format."""


class MissingAnglesError(FormatError):
    """A tilt series file has no tilt angles: no sidecar, none stored, none given."""


class OutputError(TomotimeError, OSError):
    """An output cannot be written where asked (read-only or missing folder, no space, name too long)."""


class OutputExistsError(TomotimeError, FileExistsError):
    """An output exists already and overwriting was not requested."""
