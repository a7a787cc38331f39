"""The shared text helpers: .gz transparency, strict numbers, file:line errors."""

from __future__ import annotations

import gzip

import pytest

from q2jax.errors import ParseError
from q2jax.io._text import parse_float, parse_int, read_text


def test_gz_is_read_transparently(tmp_path):
    plain = tmp_path / "a.txt"
    plain.write_text("one\ntwo\n")
    packed = tmp_path / "a.txt.gz"
    packed.write_bytes(gzip.compress(b"one\ntwo\n"))
    assert read_text(plain).lines == read_text(packed).lines == ["one", "two"]


@pytest.mark.parametrize("token,value", [("1.5", 1.5), ("-2.", -2.0), (".5", 0.5), ("3E-4", 3e-4),
                                         ("1.0D+02", 100.0), ("-0.1d-1", -0.01), ("+7", 7.0)])
def test_parse_float_accepts_fortran_and_plain_numbers(tmp_path, token, value):
    p = tmp_path / "x"
    p.write_text("x\n")
    assert parse_float(token, read_text(p), 1) == value


@pytest.mark.parametrize("token", ["1_0", "nan", "inf", "infinity", "1e999", "1.2.3", "--1", "",
                                   "0x10", "1e", "½"])
def test_parse_float_rejects_what_float_would_accept_or_garbage(tmp_path, token):
    p = tmp_path / "data.txt"
    p.write_text("x\n")
    with pytest.raises(ParseError) as err:
        parse_float(token, read_text(p), 7, "a coordinate")
    assert err.value.line == 7 and err.value.path.endswith("data.txt")
    assert "data.txt:7:" in str(err.value)


def test_parse_int_is_strict(tmp_path):
    p = tmp_path / "x"
    p.write_text("x\n")
    f = read_text(p)
    assert parse_int("-12", f, 1) == -12
    for bad in ("1.0", "1_000", " ", "12a"):
        with pytest.raises(ParseError) as err:
            parse_int(bad, f, 1)
        assert (err.value.path, err.value.line) == (str(p), 1)


def test_invalid_utf8_names_the_line(tmp_path):
    p = tmp_path / "bad.log"
    p.write_bytes(b"ok\nok\nbad \xff byte\n")
    with pytest.raises(ParseError) as err:
        read_text(p)
    assert (err.value.path, err.value.line) == (str(p), 3)


def test_missing_file_and_broken_gzip(tmp_path):
    with pytest.raises(ParseError) as err:
        read_text(tmp_path / "absent.xyz")
    assert err.value.path == str(tmp_path / "absent.xyz")  # no line: nothing was read
    p = tmp_path / "x.in.gz"
    p.write_bytes(gzip.compress(b"&zmat\n")[:-5])
    with pytest.raises(ParseError, match="gzip") as err:
        read_text(p)
    assert err.value.path == str(p)
