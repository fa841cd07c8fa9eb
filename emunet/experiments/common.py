"""What every experiment shares: the result base class, finding a node's address, percentiles,
and the number formats of the tools whose output the tables copy (iperf3's ``unit_snprintf`` in
src/units.c: byte counts in powers of 1024, bit rates in powers of 1000, three significant
digits; iputils ping's ``mdev``).

Every result is a frozen attrs record holding every figure; ``str(result)`` is the table the
Linux tool would print, and ``result.ok`` says whether the experiment succeeded (what decides
``emunet run``'s exit status).
"""

from __future__ import annotations

import errno
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from ..wire.addr import ip_from_str, ip_to_str

if TYPE_CHECKING:
    from ..network import Network

__all__ = [
    "ExperimentError",
    "ExperimentResult",
    "Percentiles",
    "errno_name",
    "experiment_host",
    "fmt_bytes",
    "fmt_rate",
    "node_address",
    "percentiles",
]


class ExperimentError(ValueError):
    """An experiment that cannot run on this network (a node it names is missing or has no
    address).  A checked topology never raises it; the CLI reports it as bad input."""


@attrs.frozen(kw_only=True)
class ExperimentResult:
    """The fields every result has: what ran (``type``, ``name``, ``src``, ``dst`` and the
    address it went to), when (``start``: virtual seconds since the run began; ``elapsed``:
    seconds it took) and ``error``: why it failed (None: it did not fail)."""

    type: ClassVar[str] = ""
    name: str
    src: str
    dst: str
    address: str
    start: float = 0.0
    elapsed: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the experiment succeeded (each type adds its own condition)."""
        return self.error is None

    @property
    def title(self) -> str:
        """One line naming the experiment, for the report's section header."""
        label = f"{self.type} {self.src} -> {self.dst}"
        if self.name and self.name != self.type:
            label = f"{self.name}: {label}"
        return label

    def to_dict(self) -> dict[str, Any]:
        """Every figure, for JSON: the attrs fields plus ``type`` and ``ok``."""
        out = attrs.asdict(self, recurse=True)
        out["type"] = self.type
        out["ok"] = self.ok
        return out


def node_address(net: Network, name: str) -> str:
    """The IPv4 address experiments send to for ``name``: a dotted address as it is, else the
    node's first address (its first interface that has one, in the order the topology names
    them; a tap node's Linux-side address)."""
    try:
        ip_from_str(name)
        return name
    except (ValueError, TypeError):
        pass
    node = net.nodes.get(name)
    if node is None:
        raise ExperimentError(f"no node named {name!r}")
    devices = getattr(node, "devices", None)
    if devices is not None:
        for dev in devices.values():
            if dev.primary is not None:
                return ip_to_str(dev.primary)
    address = getattr(node, "address", None)
    if isinstance(address, str):
        return address.partition("/")[0]
    raise ExperimentError(f"{name} has no address to send to")


def experiment_host(net: Network, name: str, role: str = "from") -> Any:
    """The emulated host ``name`` that runs (``from``) or serves (``to``) an experiment; the
    loader's check for experiments built in Python: ExperimentError naming the role."""
    from ..stack.host import Host

    node = net.nodes.get(name)
    if node is None:
        raise ExperimentError(f"{role}: no node named {name!r}")
    if not isinstance(node, Host):
        kind = type(node).__name__.lower().replace("tapport", "tap device")
        raise ExperimentError(f"{role}: {name} is a {kind}: experiments run on hosts")
    return node


def errno_name(code: int | None) -> str:
    """``errno.ECONNRESET`` -> ``"ECONNRESET"`` (``"E?"`` for None, the number if unknown)."""
    if code is None:
        return "E?"
    return errno.errorcode.get(code, str(code))


def error_text(exc: BaseException) -> str:
    """How a failure reads in a result: ``"ECONNREFUSED: Connection refused"``."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int):
        text = getattr(exc, "strerror", None) or str(exc)
        return f"{errno_name(code)}: {text}"
    return f"{type(exc).__name__}: {exc}"


@attrs.frozen
class Percentiles:
    """min, p50, p90, p99, max and mean of a sample (seconds); all None for an empty sample.
    Percentiles by the nearest-rank method: no interpolation, always a value that occurred."""

    count: int = 0
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None

    def row(self, scale: float = 1000.0, digits: int = 3) -> str:
        """``min/p50/p90/p99/max = 1.000/2.000/... `` in milliseconds by default."""
        if not self.count:
            return "min/p50/p90/p99/max = -"
        values = (self.min, self.p50, self.p90, self.p99, self.max)
        return "min/p50/p90/p99/max = " + "/".join(
            f"{v * scale:.{digits}f}" for v in values if v is not None
        )


def percentiles(sample: Sequence[float]) -> Percentiles:
    if not sample:
        return Percentiles()
    ordered = sorted(sample)
    n = len(ordered)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * n) - 1)]

    return Percentiles(
        n, ordered[0], rank(50), rank(90), rank(99), ordered[-1], math.fsum(ordered) / n
    )


def _three_digits(value: float) -> str:
    # iperf3 unit_snprintf: "%4.0f" from 99.95 up, "%4.1f" from 9.995, else "%4.2f"
    if value >= 99.95:
        return f"{value:4.0f}"
    if value >= 9.995:
        return f"{value:4.1f}"
    return f"{value:4.2f}"


def fmt_bytes(count: float) -> str:
    """iperf3's adaptive byte format: ``"10.0 MBytes"`` (powers of 1024)."""
    for scale, unit in ((1 << 30, "GBytes"), (1 << 20, "MBytes"), (1 << 10, "KBytes")):
        if count >= scale:
            return f"{_three_digits(count / scale)} {unit}"
    return f"{_three_digits(float(count))} Bytes"


def fmt_rate(bits_per_second: float) -> str:
    """iperf3's adaptive rate format: ``"94.3 Mbits/sec"`` (powers of 1000)."""
    for scale, unit in ((1e9, "Gbits/sec"), (1e6, "Mbits/sec"), (1e3, "Kbits/sec")):
        if bits_per_second >= scale:
            return f"{_three_digits(bits_per_second / scale)} {unit}"
    return f"{_three_digits(bits_per_second)} bits/sec"


def rate(byte_count: int, seconds: float) -> float:
    """Bits per second (0.0 for an empty interval)."""
    return byte_count * 8 / seconds if seconds > 0 else 0.0
