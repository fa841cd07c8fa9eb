"""Unit parsers (emunet/units.py): what a topology file may say, and what it may not."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emunet.units import parse_fraction, parse_rate, parse_size, parse_time


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250us", 0.00025),
        ("10ms", 0.01),
        ("2s", 2.0),
        ("1.5ms", 0.0015),
        ("1.1ms", 0.0011),
        ("100ns", 1e-7),
        ("10 ms", 0.01),
        (" 3sec ", 3.0),
        ("5msec", 0.005),
        ("7usec", 7e-6),
        ("7\u00b5s", 7e-6),
        ("0", 0.0),
        ("0.5", 0.5),
        ("1e-3", 0.001),
        (".5s", 0.5),
        ("-0", 0.0),
        (2, 2.0),
        (0.01, 0.01),
    ],
)
def test_parse_time(text: str | float, seconds: float) -> None:
    assert parse_time(text) == seconds
    assert isinstance(parse_time(text), float)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("10Mbit", 10_000_000.0),
        ("1Gbit", 1e9),
        ("100kbit", 100_000.0),
        ("100Kbit", 100_000.0),
        ("1.5Mbit", 1_500_000.0),
        ("64bit", 64.0),
        ("10mbit", 1e7),  # tc's units are case-insensitive
        ("1Tbit", 1e12),
        ("1Kibit", 1024.0),
        ("1Mibit", 1048576.0),
        ("2Gibit", 2 * 2.0**30),
        ("64000", 64000.0),
        ("1e6", 1e6),
        (9600, 9600.0),
        (1.5e6, 1.5e6),
    ],
)
def test_parse_rate(text: str | float, rate: float) -> None:
    assert parse_rate(text) == rate
    assert isinstance(parse_rate(text), float)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1500", 1500),
        ("1500B", 1500),
        ("64KiB", 65536),
        ("10MB", 10_000_000),
        ("1MiB", 1_048_576),
        ("1KB", 1000),
        ("1kB", 1000),
        ("2GB", 2_000_000_000),
        ("1GiB", 2**30),
        ("1.5KB", 1500),
        ("0.5KiB", 512),
        ("4 KiB", 4096),
        (1500, 1500),
        (1500.0, 1500),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size
    assert type(parse_size(text)) is int


@pytest.mark.parametrize(
    ("text", "fraction"),
    [
        ("1%", 0.01),
        ("0.1%", 0.001),
        ("100%", 1.0),
        ("0%", 0.0),
        ("12.5 %", 0.125),
        ("0.01", 0.01),
        ("1", 1.0),
        (0.01, 0.01),
        (0, 0.0),
        (1, 1.0),
    ],
)
def test_parse_fraction(text: str | float, fraction: float) -> None:
    assert parse_fraction(text) == fraction


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (parse_time, "", "bad time '': expected a number of seconds"),
        (parse_time, "ms", "bad time 'ms'"),
        (parse_time, "10 parsecs", "unknown unit 'parsecs'"),
        (parse_time, "10m", "unknown unit 'm'"),
        (parse_time, "10MS", "unknown unit 'MS'"),
        (parse_time, "-5ms", "must not be negative"),
        (parse_time, -1, "must not be negative"),
        (parse_time, float("inf"), "not a finite number"),
        (parse_time, float("nan"), "not a finite number"),
        (parse_time, "1e999999s", "too large"),
        (parse_time, True, "bad time True"),
        (parse_time, None, "bad time None"),
        (parse_time, "1.2.3s", "bad time"),
        (parse_time, "10ms5", "unknown unit"),
        (parse_rate, "10Mbps", "'bps' is ambiguous"),
        (parse_rate, "10mbps", "'bps' is ambiguous"),
        (parse_rate, "10M", "unknown unit 'M'"),
        (parse_rate, "fast", "bad rate 'fast'"),
        (parse_rate, "-1Mbit", "must not be negative"),
        (parse_rate, [10], "bad rate [10]"),
        (parse_size, "10Mb", "bits or bytes? write MB or MiB"),
        (parse_size, "10kb", "bits or bytes? write KB or KiB"),
        (parse_size, "10kib", "unknown unit 'kib'"),
        (parse_size, "1.5", "not a whole number of bytes"),
        (parse_size, "1.0001KB", "not a whole number of bytes"),
        (parse_size, "-1", "must not be negative"),
        (parse_size, "1 TB", "unknown unit 'TB'"),
        (parse_fraction, "150%", "above 100%"),
        (parse_fraction, 1.01, "above 100%"),
        (parse_fraction, "-1%", "must not be negative"),
        (parse_fraction, "1 percent", "unknown unit 'percent'"),
        (parse_fraction, "%", "bad fraction '%'"),
    ],
)
def test_bad_input_raises_value_error(
    parse: Callable[[object], object], value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(value)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["s", "ms", "us", "ns"]))
def test_time_is_the_nearest_float_to_the_decimal(n: int, unit: str) -> None:
    scale = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    assert parse_time(f"{n}{unit}") == n / scale  # int / int is correctly rounded


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**12 // 1024))
def test_size_round_trips_plain_integers(n: int) -> None:
    assert parse_size(str(n)) == parse_size(n) == n
    assert parse_size(f"{n}KiB") == n * 1024


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    for parse in (parse_time, parse_rate, parse_size, parse_fraction):
        try:
            value = parse(text)
        except ValueError:
            continue
        assert value >= 0
