"""Shared helpers of the file readers: open text (``.gz`` transparently),
number lines from 1, and parse numbers strictly.

Every failure becomes a :class:`q2jax.errors.ParseError` that names the file
and the 1-based line. Numbers are parsed with a strict pattern instead of
``float()``, which would also accept ``"1_0"``, ``"nan"``, ``"inf"`` or
``"infinity"`` -- a corrupted field must not turn into a number silently.
Fortran ``D`` exponents (Gaussian) are accepted; magnitudes above 1e100
(no physical quantity in these files comes near) are rejected so that a unit
conversion can never overflow.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from q2jax.errors import ParseError

_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][+-]?\d+)?")
_INT_RE = re.compile(r"[+-]?\d+")


class TextFile:
    """The lines of one text file (newlines stripped) and its path, for messages.

    ``lines[k]`` is line ``k + 1`` of the file.
    """

    __slots__ = ("path", "lines")

    def __init__(self, path: str, lines: list[str]):
        self.path = path
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines)

    def error(self, message: str, line: int | None = None) -> ParseError:
        """A ParseError at 1-based ``line`` (None: the whole file)."""
        return ParseError(message, self.path, line)

    def numbered(self, start: int = 1) -> Iterator[tuple[int, str]]:
        """(1-based line number, text) from line ``start`` on."""
        for k in range(start - 1, len(self.lines)):
            yield k + 1, self.lines[k]

    def missing(self, message: str) -> ParseError:
        """A ParseError for something searched for to the end of the file: it
        names the last line read (none if the file is empty)."""
        return self.error(f"{message} (searched to the end of the file)",
                          len(self.lines) or None)

    def line(self, lineno: int, what: str = "a line") -> str:
        """Text of 1-based ``lineno``; a ParseError if the file ends before it."""
        if lineno < 1 or lineno > len(self.lines):
            raise self.error(f"file ends early: expected {what} at line {lineno}", len(self.lines))
        return self.lines[lineno - 1]

    def last_nonblank(self) -> int:
        """1-based number of the last line that is not blank (0 if none)."""
        for k in range(len(self.lines) - 1, -1, -1):
            if self.lines[k].strip():
                return k + 1
        return 0


def read_text(path: str | Path) -> TextFile:
    """Read a text file (gzip-compressed if its name ends in ``.gz``) as UTF-8.

    Raises ParseError if the file is missing, is not valid gzip or not valid
    UTF-8 (naming the line of the first bad byte).
    """
    p = Path(path)
    name = str(p)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ParseError(f"cannot read file: {exc.strerror or exc}", name) from None
    if name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ParseError(f"not a valid gzip file: {exc}", name) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ParseError(f"not valid UTF-8 text (byte {exc.start})", name, line) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ParseError("binary data (NUL byte) in a text file", name, line)
    return TextFile(name, text.splitlines())


def parse_float(token: str, f: TextFile, line: int, what: str = "a number") -> float:
    """Strictly parse a decimal number (``1.5``, ``-2.``, ``3E-4``, ``1.0D+02``)."""
    if not _FLOAT_RE.fullmatch(token):
        raise f.error(f"expected {what}, found {token!r}", line)
    value = float(token.replace("D", "E").replace("d", "e"))
    if not math.isfinite(value) or abs(value) > 1e100:
        raise f.error(f"{what} {token!r} is out of range (|x| > 1e100)", line)
    return value


def parse_int(token: str, f: TextFile, line: int, what: str = "an integer") -> int:
    """Strictly parse an integer (optional sign, digits only)."""
    if not _INT_RE.fullmatch(token):
        raise f.error(f"expected {what}, found {token!r}", line)
    return int(token)


def parse_floats(
    tokens: Sequence[str], f: TextFile, line: int, what: str = "a number"
) -> list[float]:
    return [parse_float(t, f, line, what) for t in tokens]


def expect_tokens(tokens: Sequence[str], count: int, f: TextFile, line: int, what: str) -> None:
    """ParseError unless ``tokens`` has exactly ``count`` entries."""
    if len(tokens) != count:
        raise f.error(f"expected {what} ({count} fields), found {len(tokens)} fields", line)


def is_float(token: str) -> bool:
    return _FLOAT_RE.fullmatch(token) is not None


__all__ = [
    "TextFile",
    "read_text",
    "parse_float",
    "parse_int",
    "parse_floats",
    "expect_tokens",
    "is_float",
]
