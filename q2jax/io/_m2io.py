"""Maestro m2io text format: ``[name] { keys ::: values  sub[n] { keys :::
rows ::: } }``, with ``#...#`` comments and double-quoted strings
(backslash escapes). A structural tokenizer/parser shared by the Maestro
readers; every deviation is a ParseError at its line.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from q2jax.io._text import TextFile

__all__ = ["M2ioBlock", "M2ioParser", "unquote"]

_TOKEN_RE = re.compile(r'\s+|#[^#\n]*#|"(?:[^"\\\n]|\\.)*"|[^\s"]+')


class M2ioBlock(NamedTuple):
    """One block: name, line, top-level properties {key: (value, line)} and indexed
    tables {name: (columns, [(row values incl. index, line)], line)}."""

    name: str
    line: int
    props: dict[str, tuple[str, int]]
    tables: dict[str, tuple[list[str], list[tuple[list[str], int]], int]]


class M2ioParser:
    """Maestro m2io: ``name { keys ::: values  sub[n] { keys ::: rows ::: } }``."""

    def __init__(self, f: TextFile):
        self.f = f
        self.toks: list[tuple[str, int]] = []
        for ln, text in f.numbered():
            pos = 0
            while pos < len(text):
                m = _TOKEN_RE.match(text, pos)
                if m is None:
                    raise f.error(f"unterminated string or stray character at column {pos + 1}",
                                  ln)
                tok = m.group()
                pos = m.end()
                if tok.isspace() or (tok.startswith("#") and tok.endswith("#") and len(tok) > 1):
                    continue
                if tok.startswith("#"):
                    raise f.error("unterminated '#' comment", ln)
                self.toks.append((tok, ln))
        self.i = 0

    def _next(self, what: str) -> tuple[str, int]:
        if self.i >= len(self.toks):
            last = self.toks[-1][1] if self.toks else 1
            raise self.f.error(f"file ends early: expected {what}", last)
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def _expect(self, value: str, what: str) -> int:
        tok, ln = self._next(what)
        if tok != value:
            raise self.f.error(f"expected {what} {value!r}, found {tok!r}", ln)
        return ln

    def parse(self) -> list[M2ioBlock]:
        blocks = []
        while self.i < len(self.toks):
            tok, ln = self.toks[self.i]
            name = ""
            if tok != "{":
                name = tok
                self.i += 1
            self._expect("{", "a block opening")
            blocks.append(self._block(name, ln))
        return blocks

    def _keys(self) -> tuple[list[str], int]:
        keys = []
        while True:
            tok, ln = self._next("a property name or ':::'")
            if tok == ":::":
                return keys, ln
            if not re.fullmatch(r"[bisr]_[A-Za-z0-9_.\-]+", tok):
                raise self.f.error(f"expected a property name (b_/i_/r_/s_...), found {tok!r}", ln)
            keys.append(tok)

    def _block(self, name: str, line: int) -> M2ioBlock:
        keys, _ = self._keys()
        props = {}
        for key in keys:
            val, ln = self._next(f"the value of {key}")
            if val in ("{", "}", ":::"):
                raise self.f.error(f"missing value for {key}", ln)
            props[key] = (val, ln)
        tables = {}
        while True:
            tok, ln = self._next("a sub-block or '}'")
            if tok == "}":
                return M2ioBlock(name, line, props, tables)
            m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?", tok)
            if m is None:
                raise self.f.error(f"expected a sub-block name or '}}', found {tok!r}", ln)
            self._expect("{", "a sub-block opening")
            if m.group(2) is None:
                self._block(m.group(1), ln)  # un-indexed sub-block: parsed, not used
                continue
            nrows = int(m.group(2))
            cols, _ = self._keys()
            rows = []
            for r in range(nrows):
                first = self.toks[self.i][1] if self.i < len(self.toks) else ln
                vals = [self._next(f"row {r + 1} of {m.group(1)}")[0] for _ in range(len(cols) + 1)]
                if ":::" in vals or "}" in vals:
                    raise self.f.error(f"{m.group(1)} has fewer rows than its declared "
                                       f"{nrows}", first)
                rows.append((vals, first))
            self._expect(":::", f"the end of the {m.group(1)} rows (declared {nrows} rows)")
            self._expect("}", f"the end of {m.group(1)}")
            tables[m.group(1)] = (cols, rows, ln)


def unquote(tok: str) -> str:
    if len(tok) >= 2 and tok[0] == '"' and tok[-1] == '"':
        return re.sub(r"\\(.)", r"\1", tok[1:-1])
    return tok
