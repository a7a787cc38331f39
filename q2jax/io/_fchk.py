"""Formatted-checkpoint (fchk) layout: every entry is a header line
``Name (40 columns)  Type  value`` or ``Name  Type  N=  count`` followed by
``count`` values in Gaussian's fixed layout (I: 6 per line, R: 5 per line in
E format, C: 5, H: 9, L: 72). Used by :func:`q2jax.io.gaussian.read_fchk`;
every deviation is a ParseError at its line.
"""

from __future__ import annotations

import re

from q2jax.io._text import TextFile, parse_float, parse_int

__all__ = ["fchk_sections", "expect_len"]

_FCHK_REAL_RE = re.compile(r"[+-]?\d\.\d+E[+-]\d{2,3}")
_PER_LINE = {"I": 6, "R": 5, "C": 5, "H": 9, "L": 72}


def fchk_sections(f: TextFile):
    """All fchk entries: arrays {name: (values, line)} for I and R arrays,
    scalars {name: (value, line)} for I and R scalars; other types skipped by
    their fixed layout."""
    arrays: dict[str, tuple[list[float], int]] = {}
    scalars: dict[str, tuple[float, int]] = {}
    k = 3
    nlines = len(f.lines)
    while k <= nlines:
        t = f.lines[k - 1]
        if not t.strip():
            k += 1
            continue
        if len(t) < 44 or t[0] == " ":
            raise f.error("expected an fchk entry header ('Name   Type  [N=] value')", k)
        name = t[:40].strip()
        fields = t[40:].split()
        if not fields or fields[0] not in _PER_LINE:
            raise f.error(f"fchk entry {name!r} has no valid type letter", k)
        kind = fields[0]
        if len(fields) == 3 and fields[1] == "N=":
            count = parse_int(fields[2], f, k, "an array length")
            if count < 0:
                raise f.error("negative array length", k)
            per = _PER_LINE[kind]
            nrows = -(-count // per)
            if k + nrows > nlines:
                raise f.error(f"array {name!r} needs {nrows} lines, the file ends first", nlines)
            if kind in "IR":
                vals: list[float] = []
                for r in range(nrows):
                    ln = k + 1 + r
                    toks = f.lines[ln - 1].split()
                    want = min(per, count - r * per)
                    if len(toks) != want:
                        raise f.error(f"array {name!r}: expected {want} values on this line, "
                                      f"found {len(toks)}", ln)
                    for tok in toks:
                        if kind == "I":
                            vals.append(parse_int(tok, f, ln, f"an integer of {name!r}"))
                        else:
                            if not _FCHK_REAL_RE.fullmatch(tok):
                                raise f.error(f"array {name!r}: {tok!r} is not an E-format "
                                              "real", ln)
                            vals.append(parse_float(tok, f, ln, f"a value of {name!r}"))
                if name in arrays:
                    raise f.error(f"array {name!r} appears twice", k)
                arrays[name] = (vals, k)
            k += 1 + nrows
        elif len(fields) == 2:
            if kind == "I":
                scalars[name] = (float(parse_int(fields[1], f, k, name)), k)
            elif kind == "R":
                scalars[name] = (parse_float(fields[1], f, k, name), k)
            k += 1
        else:
            raise f.error(f"malformed fchk entry header for {name!r}", k)
    return arrays, scalars


def expect_len(f: TextFile, values, count: int, name: str, line: int) -> None:
    if len(values) != count:
        raise f.error(f"{name!r} has {len(values)} values, expected {count}", line)
