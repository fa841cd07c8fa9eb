"""Parsers for the units users write in topology files, on the CLI and in ``Network`` calls.

The spellings follow iproute2's ``tc`` (tc/tc_util.c ``get_time``, ``get_rate64``,
``get_size``, ``get_percent``; see tc(8) "PARAMETERS") where that is unambiguous:

- times: ``250us``, ``10ms``, ``2s`` (also ``ns``, ``usec``, ``msec``, ``sec``); a plain number
  is seconds. Result: ``float`` seconds.
- rates: ``bit``, ``Kbit``/``kbit``, ``Mbit``, ``Gbit``, ``Tbit`` (decimal), ``Kibit``,
  ``Mibit``, ``Gibit`` (binary); a plain number is bit/s. Units are case-insensitive as in tc.
  ``bps``/``Mbps`` are refused: tc reads them as BYTES per second while most people mean bits,
  so the spelling is ambiguous. Result: ``float`` bit/s.
- sizes: ``1500`` or ``1500B`` (bytes), ``KB``/``kB``, ``MB``, ``GB`` (decimal), ``KiB``,
  ``MiB``, ``GiB`` (binary). ``Kb``/``Mb``/``Gb`` are refused (bits or bytes?). Result: ``int``
  bytes; a size that is not a whole number of bytes is refused.
- fractions (loss, duplicate, corrupt, reorder): ``1%`` or ``0.01``. Result: ``float`` in 0..1.

Every parser accepts a ``str`` or a plain ``int``/``float`` (never ``bool``), allows spaces
around the number and between number and unit, refuses negative, infinite and NaN values, and
raises ``ValueError`` whose message quotes the input and lists the accepted forms. Numbers are
scaled in decimal arithmetic, so ``parse_time("1.1ms")`` is the float nearest to 0.0011.

Values no run could use are refused, naming the limit (:data:`MAX_TIME`, :data:`MAX_RATE`,
:data:`MAX_SIZE`; the experiments add :data:`MAX_COUNT` and :data:`MAX_BUFFER`):

- times up to 10**6 s (11.6 days of virtual time): the clock is a float of seconds, exact to
  the nanosecond only below 2**53 ns (104 days), and every time emunet models (timers, link
  delays, RTOs up to 120 s, experiments) is far shorter;
- rates up to 1 Tbit/s: a 1500-byte frame then takes 12 ns on the wire; much faster and
  serialization falls below the model's 1 ns resolution;
- sizes up to 1 TB (10**12 bytes): about 7 * 10**8 full-size TCP segments, hours of CPU time
  at emunet's speed; a larger transfer would not finish in days.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = [
    "MAX_BUFFER",
    "MAX_COUNT",
    "MAX_RATE",
    "MAX_SIZE",
    "MAX_TIME",
    "parse_fraction",
    "parse_rate",
    "parse_size",
    "parse_time",
]

_NUMBER_UNIT = re.compile(
    r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([^\s\d.+-].*?)?\s*",
    re.ASCII,  # no Unicode digits or spaces
)

_MAX_EXPONENT = 30  # refuse absurd inputs like "1e999999s" before they overflow

MAX_TIME = 1_000_000
"""The longest time, seconds (11.6 days)."""
MAX_RATE = 10**12
"""The highest rate, bit/s (1 Tbit/s)."""
MAX_SIZE = 10**12
"""The largest size, bytes (1 TB)."""
MAX_COUNT = 1_000_000
"""The most pings, connections or requests one experiment makes (as ``emunet ping -c``): a
million pings at the default 1 s interval take MAX_TIME."""
MAX_BUFFER = 2**30
"""The largest buffer an experiment holds in memory at once (a write, a response): 1 GiB."""

_TIME_UNITS: dict[str, Decimal] = {
    "s": Decimal(1),
    "sec": Decimal(1),
    "secs": Decimal(1),
    "ms": Decimal("1e-3"),
    "msec": Decimal("1e-3"),
    "msecs": Decimal("1e-3"),
    "us": Decimal("1e-6"),
    "usec": Decimal("1e-6"),
    "usecs": Decimal("1e-6"),
    "\u00b5s": Decimal("1e-6"),  # micro sign
    "\u03bcs": Decimal("1e-6"),  # Greek mu
    "ns": Decimal("1e-9"),
    "nsec": Decimal("1e-9"),
    "nsecs": Decimal("1e-9"),
}

# Looked up in lower case: tc's rate units are case-insensitive.
_RATE_UNITS: dict[str, Decimal] = {
    "bit": Decimal(1),
    "kbit": Decimal(10**3),
    "mbit": Decimal(10**6),
    "gbit": Decimal(10**9),
    "tbit": Decimal(10**12),
    "kibit": Decimal(2**10),
    "mibit": Decimal(2**20),
    "gibit": Decimal(2**30),
    "tibit": Decimal(2**40),
}

# Case-sensitive: a capital B is a byte; "kB" is the SI spelling of KB.
_SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KB": 10**3,
    "kB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
}

_TIME_FORMS = "a number of seconds, or a number with a unit s, ms, us or ns (e.g. '10ms')"
_RATE_FORMS = (
    "a number of bit/s, or a number with a unit bit, Kbit, Mbit, Gbit, Tbit, Kibit, Mibit "
    "or Gibit (e.g. '10Mbit')"
)
_SIZE_FORMS = (
    "a number of bytes, or a number with a unit B, KB, MB, GB, KiB, MiB or GiB (e.g. '64KiB')"
)
_FRACTION_FORMS = "a percentage such as '1%' or a fraction from 0 to 1 such as 0.01"


def _split(value: object, kind: str, forms: str) -> tuple[Decimal, str]:
    """Split ``value`` into a non-negative finite Decimal and a unit ('' when there is none)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"bad {kind} {value!r}: expected {forms}")
    if isinstance(value, (int, float)):
        try:
            number = Decimal(value)
        except (InvalidOperation, ValueError):  # pragma: no cover - Decimal takes any float
            raise ValueError(f"bad {kind} {value!r}: expected {forms}") from None
        unit = ""
    else:
        match = _NUMBER_UNIT.fullmatch(value)
        if match is None:
            raise ValueError(f"bad {kind} {value!r}: expected {forms}")
        number = Decimal(match.group(1))
        unit = match.group(2) or ""
    if not number.is_finite():
        raise ValueError(f"bad {kind} {value!r}: not a finite number")
    if number < 0:
        raise ValueError(f"bad {kind} {value!r}: must not be negative")
    if number and number.adjusted() > _MAX_EXPONENT:
        raise ValueError(f"bad {kind} {value!r}: too large")
    return number.copy_abs(), unit  # copy_abs turns "-0" into 0


def parse_time(value: str | float) -> float:
    """``"10ms"`` -> 0.01, ``"250us"`` -> 0.00025, ``2`` or ``"2"`` -> 2.0 (seconds)."""
    number, unit = _split(value, "time", _TIME_FORMS)
    if unit:
        scale = _TIME_UNITS.get(unit)
        if scale is None:
            raise ValueError(f"bad time {value!r}: unknown unit {unit!r}; expected {_TIME_FORMS}")
        number *= scale
    if number > MAX_TIME:
        raise ValueError(f"bad time {value!r}: above the limit of {MAX_TIME} s (11.6 days)")
    return float(number)


def parse_rate(value: str | float) -> float:
    """``"10Mbit"`` -> 10e6, ``"1.5kbit"`` -> 1500.0, ``64000`` -> 64000.0 (bit/s)."""
    number, unit = _split(value, "rate", _RATE_FORMS)
    if unit:
        scale = _RATE_UNITS.get(unit.lower())
        if scale is None:
            hint = ""
            if unit.lower().endswith("bps"):
                hint = " ('bps' is ambiguous: tc reads it as bytes/s; write e.g. '10Mbit')"
            raise ValueError(
                f"bad rate {value!r}: unknown unit {unit!r}{hint}; expected {_RATE_FORMS}"
            )
        number *= scale
    if number > MAX_RATE:
        raise ValueError(f"bad rate {value!r}: above the limit of 1 Tbit/s")
    return float(number)


def parse_size(value: str | int) -> int:
    """``"64KiB"`` -> 65536, ``"10MB"`` -> 10_000_000, ``1500`` or ``"1500B"`` -> 1500 (bytes)."""
    number, unit = _split(value, "size", _SIZE_FORMS)
    if unit:
        scale = _SIZE_UNITS.get(unit)
        if scale is None:
            hint = ""
            if unit.lower() in {"kb", "mb", "gb"}:
                hint = f" (bits or bytes? write {unit[0].upper()}B or {unit[0].upper()}iB)"
            raise ValueError(
                f"bad size {value!r}: unknown unit {unit!r}{hint}; expected {_SIZE_FORMS}"
            )
        number *= scale
    if number != number.to_integral_value():
        raise ValueError(f"bad size {value!r}: {number} is not a whole number of bytes")
    if number > MAX_SIZE:
        raise ValueError(f"bad size {value!r}: above the limit of 1 TB ({MAX_SIZE} bytes)")
    return int(number)


def parse_fraction(value: str | float) -> float:
    """``"1%"`` -> 0.01, ``0.01`` or ``"0.01"`` -> 0.01; the result lies in 0..1."""
    number, unit = _split(value, "fraction", _FRACTION_FORMS)
    if unit == "%":
        number /= 100
    elif unit:
        raise ValueError(
            f"bad fraction {value!r}: unknown unit {unit!r}; expected {_FRACTION_FORMS}"
        )
    if number > 1:
        raise ValueError(f"bad fraction {value!r}: above 100%; expected {_FRACTION_FORMS}")
    return float(number)


TIME_KEYS = frozenset(
    {"delay", "jitter", "reorder_gap", "at", "interval", "timeout", "wait", "time", "accept_delay"}
)
RATE_KEYS = frozenset({"bandwidth", "rate"})
_UNIT_HINTS = {"time": ("ms", "s"), "rate": ("Mbit", "kbit")}


def require_unit(value: object, kind: str) -> None:
    """Refuse a bare non-zero number where a unit is needed (topology files and CLI options):
    ``30`` for a delay raises "30 has no unit: write 30ms or 30s".  ``kind`` is ``"time"`` or
    ``"rate"``.  Zero needs no unit; anything else is left to ``parse_time``/``parse_rate``."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        text = f"{value:g}" if isinstance(value, float) else str(value)
    elif isinstance(value, str):
        match = _NUMBER_UNIT.fullmatch(value)
        if match is None or match.group(2):
            return
        text = match.group(1)
    else:
        return
    try:
        if Decimal(text) == 0:
            return
    except InvalidOperation:  # pragma: no cover - the pattern only matches numbers
        return
    small, large = _UNIT_HINTS[kind]
    raise ValueError(f"{text} has no unit: write {text}{small} or {text}{large}")


def require_unit_for(key: str, value: object) -> None:
    """``require_unit`` by field name: times for ``TIME_KEYS``, rates for ``RATE_KEYS``."""
    if key in TIME_KEYS:
        require_unit(value, "time")
    elif key in RATE_KEYS:
        require_unit(value, "rate")
