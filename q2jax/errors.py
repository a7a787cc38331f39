"""One small exception hierarchy. Every error q2jax raises on bad input is a
:class:`Q2JaxError`; messages name the file, line and what was expected."""

from __future__ import annotations


class Q2JaxError(Exception):
    """Base class of every q2jax error."""


class InputError(Q2JaxError, ValueError):
    """Invalid arrays or arguments: wrong shape, NaN, unknown element, ..."""


class UnitError(InputError):
    """Unknown or inconsistent units."""


class ParseError(InputError):
    """A file could not be read. Carries ``path`` and ``line`` (1-based) when known."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)


class TopologyError(InputError):
    """Connectivity or atom typing problems (e.g. a parameter no force field defines)."""


class ParameterError(Q2JaxError, KeyError):
    """A force-field parameter is missing or malformed."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ConvergenceError(Q2JaxError, RuntimeError):
    """An iterative procedure failed where failure cannot be reported in a result."""


class EngineError(Q2JaxError, RuntimeError):
    """An external engine (OpenMM, Tinker, PySCF) failed or is unavailable."""


__all__ = [
    "Q2JaxError",
    "InputError",
    "UnitError",
    "ParseError",
    "TopologyError",
    "ParameterError",
    "ConvergenceError",
    "EngineError",
]
