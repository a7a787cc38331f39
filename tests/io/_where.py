"""Where a reader error points: every error on bad input names the file and, when
the reader can know it, the 1-based line (q2jax.errors.ParseError)."""

from __future__ import annotations

from pathlib import Path


def assert_names(err, path: str | Path, line: int | None = None) -> None:
    """``err`` (a ParseError or pytest's ExceptionInfo of one) names ``path`` in its
    fields and its message, and ``line`` when given."""
    e = getattr(err, "value", err)
    assert e.path == str(path), f"path {e.path!r}, expected {str(path)!r}"
    assert str(e).startswith(f"{path}:"), str(e)
    if line is not None:
        assert e.line == line, f"line {e.line}, expected {line}: {e}"
        assert str(e).startswith(f"{path}:{line}: "), str(e)


def line_of(text: str, needle: str, last: bool = False) -> int:
    """1-based number of the line where the first (``last``: the last) ``needle`` in
    ``text`` ends."""
    at = text.rindex(needle) if last else text.index(needle)
    return text[: at + len(needle)].count("\n") + 1


def n_lines(text: str) -> int:
    """Lines a reader sees in ``text`` (the last line read when it searched to the end)."""
    return len(text.splitlines())
