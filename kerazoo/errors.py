"""kerazoo's exceptions, public so that callers can catch them by type.

Every one is a `ValueError` whose message is one line fit to show a person.
Library code raises them with the names of its Python parameters
(`ParameterError.param`); the command line maps those names to its flags.
"""

from __future__ import annotations


class KerazooError(ValueError):
    """Base class: bad input or configuration, explained in one line."""


class InputError(KerazooError):
    """Bad input data: a file missing, unreadable or of the wrong size."""


class ParameterError(KerazooError):
    """A bad argument value. `param` is the Python parameter's name.

    >>> str(ParameterError("max_disparity_px", "must be positive, received 0"))
    '`max_disparity_px` must be positive, received 0'
    """

    def __init__(self, param: str, problem: str):
        self.param = param
        self.problem = problem
        super().__init__(f"`{param}` {problem}")


class WeightsError(KerazooError):
    """A weights file is missing or unusable."""


class WeightsNotFoundError(WeightsError):
    """No usable copy was found, and none could be downloaded."""


class WeightsVerificationError(WeightsError):
    """A file was found but is corrupt, truncated, of another architecture or
    another release."""


class ExportError(KerazooError):
    """A model cannot be exported to a format, or its export does not match it."""


__all__ = [
    "ExportError",
    "KerazooError",
    "InputError",
    "ParameterError",
    "WeightsError",
    "WeightsNotFoundError",
    "WeightsVerificationError",
]
