"""The validated form of a topology file (DESIGN.md section 5): frozen attrs records.

A topology file is YAML in the style of containerlab's: ``nodes`` (hosts, routers, switches and
TAP devices bridging to real Linux), ``links`` with the impairments of tc-netem(8) as
:class:`emunet.fabric.impair.LinkParams` names them, ``defaults.link`` applied to every link,
timed ``events`` that change links (``ip link set ... down``, ``tc qdisc change ... netem``), and
``experiments``.  Interfaces and routes follow iproute2's notation: ``ip addr add
10.0.1.2/24 dev eth0`` is ``interfaces: {eth0: 10.0.1.2/24}``, ``ip route add default via
10.0.1.1`` is ``routes: {default: 10.0.1.1}``; sysctl names are those of
Documentation/networking/ip-sysctl.rst as :mod:`emunet.stack.sysctl` knows them.

The records hold values already checked and converted: addresses in canonical dotted form,
times in seconds, rates in bit/s, sizes in bytes, fractions in 0..1.  :mod:`emunet.topology.load`
turns a file into these records and reports the first problem as one :class:`TopologyError`;
the record classes also accept the unit strings directly (``PingExperiment(src="a", dst="b",
interval="200ms")``) and raise ``ValueError`` naming the field.

Experiments are only described and checked here; running them is the job of
``emunet.experiments``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs

from ..fabric.impair import LinkParams
from ..units import MAX_BUFFER, MAX_COUNT, parse_rate, parse_size, parse_time

__all__ = [
    "EXPERIMENT_TYPES",
    "LINK_FIELDS",
    "NODE_KINDS",
    "Defaults",
    "Event",
    "Experiment",
    "HttpExperiment",
    "LinkSpec",
    "Node",
    "PingExperiment",
    "StormExperiment",
    "TcpExperiment",
    "Topology",
    "TopologyError",
    "TracerouteExperiment",
    "UdpExperiment",
    "checked_options",
]

NODE_KINDS = ("host", "router", "switch", "tap")
ROUTING_MODES = ("static", "auto")
CONGESTION_CONTROLS = ("cubic", "reno")  # as emunet.stack.sysctl accepts
MAX_UDP_PAYLOAD = 65507  # 65535 - 20 (IPv4) - 8 (UDP): ping -s and UDP datagrams
MAX_DATAGRAMS = 10**9  # a UDP stream's rate x time, in datagrams
LINK_FIELDS: tuple[str, ...] = tuple(f.name for f in attrs.fields(LinkParams))
"""Every impairment a link (or ``defaults.link``, or an event's ``set``) may name."""


class TopologyError(ValueError):
    """The one error of a bad topology: the file, the field path and the reason.

    ``str()`` is the one line a user sees, e.g.
    ``three-hop.yaml: links[1].mtu: 40 is below the IPv4 minimum 68`` (the file's base name, the
    field path with ``[i]`` for list items and ``.key`` for mapping keys, the reason).  A YAML
    syntax error names the line instead of a field: ``bad.yaml: line 7: ...``.
    """

    def __init__(self, file: str, path: str, reason: str) -> None:
        super().__init__(file, path, reason)
        self.file = os.path.basename(file) if file else "<topology>"
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        text = (
            f"{self.file}: {self.path}: {self.reason}"
            if self.path
            else f"{self.file}: {self.reason}"
        )
        return text.replace("\r", "\\r").replace("\n", "\\n")  # always one line


# ------------------------------------------------------------------------- field converters
# Each converter takes what a user writes (YAML scalar or Python value) and returns the checked
# value, or raises ValueError("<field>: <reason>"); the loader strips "<field>: " and puts the
# full path in front instead.


def _named(name: str, convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def converter(value: Any) -> Any:
        try:
            return convert(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None

    converter.__name__ = f"convert_{name}"
    return converter


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def converter(value: Any) -> Any:
        return None if value is None else convert(value)

    return converter


def integer(low: int | None = None, high: int | None = None) -> Callable[[Any], int]:
    """A converter to ``int`` (a YAML integer or a string of digits, never a bool) in range."""

    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"expected an integer, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
        if low is not None and number < low:
            raise ValueError(f"{number} is below the minimum {low}")
        if high is not None and number > high:
            raise ValueError(f"{number} is above the maximum {high}")
        return number

    return convert


def choice(*options: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in options or not isinstance(value, str):
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return value

    return convert


def text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _field(name: str, default: Any, convert: Callable[[Any], Any], doc: str = "") -> Any:
    return attrs.field(
        default=default,
        converter=_named(name, _optional(convert)) if default is None else _named(name, convert),
        metadata={"doc": doc},
    )


# ------------------------------------------------------------------------- nodes and links


@attrs.frozen
class Node:
    """One node: ``kind`` host (the default), router (forwarding on), switch (a learning
    bridge; its ports are created by the links that name them) or tap (a Linux TAP device: the
    real Linux side of the network, see ``emunet.fabric.tap``)."""

    name: str
    kind: str = "host"
    interfaces: dict[str, str | None] = attrs.Factory(dict)
    """Interface name -> ``"addr/prefix"`` (canonical), or None for an interface without an
    address.  Hosts and routers only."""
    routes: dict[str, str] = attrs.Factory(dict)
    """Destination (``"default"`` or ``"net/prefix"``) -> gateway address.  For a tap node, the
    routes of the Linux side."""
    sysctl: dict[str, int | str] = attrs.Factory(dict)
    """Linux sysctl name -> value, applied when the host is built (hosts and routers only)."""
    device: str | None = None
    """tap: the name of the Linux TAP device (default: the node's name)."""
    netns: str | None = None
    """tap: a network namespace to create the TAP device in (None: the current one)."""
    address: str | None = None
    """tap: the Linux side's ``"addr/prefix"``."""
    mac: str | None = None
    """tap: the Linux side's MAC address (None: the kernel's random one)."""

    @property
    def has_stack(self) -> bool:
        """An emulated host or router (something that pings and forwards)."""
        return self.kind in ("host", "router")


@attrs.frozen
class Defaults:
    """``defaults:`` of a file; ``link`` holds impairments applied to every link that does not
    set them itself (values already converted, keyed by :data:`LINK_FIELDS` names)."""

    link: dict[str, Any] = attrs.Factory(dict)


def _link_param(name: str) -> Any:
    def check(value: Any) -> Any:
        # LinkParams converts and range-checks the one field (its message names the field).
        return getattr(LinkParams(**{name: value}), name)

    return attrs.field(default=None, converter=_optional(check), kw_only=True)


@attrs.frozen
class LinkSpec:
    """One entry of ``links:``: two endpoints ``"node:interface"`` and the impairments it sets.

    An impairment left at None is not set on this link: ``defaults.link`` applies, else
    :class:`LinkParams`' default.  Units as in :class:`LinkParams` (seconds, bit/s, fractions).
    """

    endpoints: tuple[str, str] = attrs.field(converter=tuple)
    delay: float | None = _link_param("delay")
    jitter: float | None = _link_param("jitter")
    bandwidth: float | None = _link_param("bandwidth")
    loss: float | None = _link_param("loss")
    loss_ge: tuple[float, float, float, float] | None = _link_param("loss_ge")
    duplicate: float | None = _link_param("duplicate")
    corrupt: float | None = _link_param("corrupt")
    reorder: float | None = _link_param("reorder")
    reorder_gap: float | None = _link_param("reorder_gap")
    queue: int | None = _link_param("queue")
    mtu: int | None = _link_param("mtu")
    up: bool | None = _link_param("up")

    def options(self, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The impairments to pass to ``Network.add_link``: ``defaults`` overridden by what this
        link sets (only fields set in either)."""
        out = {k: v for k, v in (defaults or {}).items() if v is not None}
        for name in LINK_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def params(self, defaults: Mapping[str, Any] | None = None) -> LinkParams:
        """The effective :class:`LinkParams` of this link."""
        return LinkParams(**self.options(defaults))


@attrs.frozen
class Event:
    """At virtual time ``at`` (seconds from the start of the run), change the link joining the
    two endpoints of ``link`` (either order) with ``link.set(**set)``: ``{up: false}`` takes it
    down, ``{loss: 5%}`` changes its loss."""

    at: float = attrs.field(converter=_named("at", parse_time))
    link: tuple[str, str] = attrs.field(converter=tuple)
    set: dict[str, Any] = attrs.Factory(dict)


# ------------------------------------------------------------------------- experiments


@attrs.frozen(kw_only=True)
class Experiment:
    """What every experiment has: ``from`` (``src``) and ``to`` (``dst``) name nodes; ``name``
    labels the result; ``at`` starts it at that virtual time, concurrently with others (None:
    after the previous experiment ends)."""

    type: ClassVar[str] = ""
    src: str = attrs.field(converter=_named("from", text))
    dst: str = attrs.field(converter=_named("to", text))
    name: str | None = _field("name", None, text)
    at: float | None = _field("at", None, parse_time, "start time, seconds")


@attrs.frozen(kw_only=True)
class PingExperiment(Experiment):
    """``ping -c count -i interval -s size -W timeout -t ttl`` from ``src`` to ``dst``."""

    type: ClassVar[str] = "ping"
    count: int = _field("count", 3, integer(1, MAX_COUNT))
    interval: float = _field("interval", 1.0, parse_time, "seconds")
    size: int = _field("size", 56, lambda v: _size_in(v, 0, MAX_UDP_PAYLOAD), "bytes of data")
    timeout: float = _field("timeout", 10.0, parse_time, "seconds")
    ttl: int | None = _field("ttl", None, integer(1, 255))


@attrs.frozen(kw_only=True)
class TracerouteExperiment(Experiment):
    """Linux ``traceroute -m max_hops -q queries -w wait -p port``."""

    type: ClassVar[str] = "traceroute"
    max_hops: int = _field("max_hops", 30, integer(1, 255))
    queries: int = _field("queries", 1, integer(1, 10))
    wait: float = _field("wait", 5.0, parse_time, "seconds")
    port: int = _field("port", 33434, integer(1, 65535))


@attrs.frozen(kw_only=True)
class TcpExperiment(Experiment):
    """A bulk TCP transfer like ``iperf -c``: ``bytes`` (``-n``) or ``time`` (``-t``, 10 s when
    neither is given), ``parallel`` streams (``-P``), writes of ``length`` bytes (``-l``),
    ``congestion`` control (None: the sender's sysctl)."""

    type: ClassVar[str] = "tcp"
    bytes: int | None = _field("bytes", None, lambda v: _size_in(v, 1), "bytes to send")
    time: float | None = _field("time", None, parse_time, "seconds")
    parallel: int = _field("parallel", 1, integer(1, 128))
    length: int = _field(
        "length", 128 * 1024, lambda v: _size_in(v, 1, MAX_BUFFER), "bytes per write"
    )
    congestion: str | None = _field("congestion", None, choice(*CONGESTION_CONTROLS))
    port: int = _field("port", 5001, integer(1, 65535))

    def __attrs_post_init__(self) -> None:
        if self.bytes is not None and self.time is not None:
            raise ValueError("set bytes or time, not both")

    @property
    def duration(self) -> float | None:
        """How long to send when no byte count is given (iperf's default 10 s)."""
        if self.bytes is not None:
            return None
        return 10.0 if self.time is None else self.time


@attrs.frozen(kw_only=True)
class UdpExperiment(Experiment):
    """A UDP stream like ``iperf -u -b rate -l size -t time``; the report gives loss and jitter
    as iperf's server side does."""

    type: ClassVar[str] = "udp"
    rate: float = _field("rate", 1e6, parse_rate, "bit/s")
    size: int = _field("size", 1470, lambda v: _size_in(v, 1, MAX_UDP_PAYLOAD), "bytes")
    time: float = _field("time", 10.0, parse_time, "seconds")
    port: int = _field("port", 5001, integer(1, 65535))

    def __attrs_post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("rate: must be above 0")
        datagrams = self.rate * self.time / (8 * self.size)
        if datagrams > MAX_DATAGRAMS:
            raise ValueError(
                f"rate x time: {datagrams:.3g} datagrams of {self.size} bytes is above the "
                f"limit of {MAX_DATAGRAMS:.0e} (about as many packets as a 1 TB TCP transfer)"
            )


@attrs.frozen(kw_only=True)
class StormExperiment(Experiment):
    """``connections`` TCP connects, at most ``concurrency`` at a time, against one listener on
    ``dst`` with ``listen(backlog)`` whose server spends ``accept_delay`` after each accept
    (a busy server); each connection sends ``bytes`` then closes.  Reports completion times
    and listen overflows."""

    type: ClassVar[str] = "storm"
    connections: int = _field("connections", 100, integer(1, MAX_COUNT))
    concurrency: int = _field("concurrency", 10, integer(1, MAX_COUNT))
    backlog: int = _field("backlog", 128, integer(1, MAX_COUNT))
    accept_delay: float = _field("accept_delay", 0.0, parse_time, "seconds per accept")
    bytes: int = _field("bytes", 0, lambda v: _size_in(v, 0, MAX_BUFFER), "bytes per connection")
    port: int = _field("port", 5001, integer(1, 65535))


@attrs.frozen(kw_only=True)
class HttpExperiment(Experiment):
    """HTTP/1.1 (h11) requests from ``src`` to a server on ``dst`` answering ``size`` bytes:
    ``requests`` in all, ``concurrency`` connections at a time; reports requests per virtual
    second."""

    type: ClassVar[str] = "http"
    requests: int = _field("requests", 100, integer(1, MAX_COUNT))
    concurrency: int = _field("concurrency", 1, integer(1, MAX_COUNT))
    size: int = _field("size", 1024, lambda v: _size_in(v, 0, MAX_BUFFER), "response body bytes")
    port: int = _field("port", 80, integer(1, 65535))


def _size_in(value: Any, low: int, high: int | None = None) -> int:
    size = parse_size(value)
    if size < low:
        raise ValueError(f"{size} bytes is below the minimum {low}")
    if high is not None and size > high:
        raise ValueError(f"{size} bytes is above the maximum {high}")
    return size


def checked_options(cls: type[Experiment], **values: Any) -> dict[str, Any]:
    """``values`` converted and checked by the converters of ``cls``'s fields, the path every
    topology file's experiment takes: the Python API (``host.ping(interval="200ms")``) uses it
    so that it refuses what a file may not say.  Plain numbers stay seconds, bit/s and bytes
    (only files and the CLI need units).  Raises ``ValueError`` naming the parameter."""
    fields = attrs.fields_dict(cls)
    out: dict[str, Any] = {}
    for key, value in values.items():
        converter = fields[key].converter
        out[key] = converter(value) if callable(converter) else value
    return out


EXPERIMENT_TYPES: dict[str, type[Experiment]] = {
    cls.type: cls
    for cls in (
        PingExperiment,
        TracerouteExperiment,
        TcpExperiment,
        UdpExperiment,
        StormExperiment,
        HttpExperiment,
    )
}
"""``type:`` -> the record class; the YAML keys are the attribute names, with ``from`` and
``to`` for ``src`` and ``dst``."""


# ------------------------------------------------------------------------- the whole file


@attrs.frozen
class Topology:
    """A whole topology file, checked.  ``routing`` is ``"static"`` (only the routes written)
    or ``"auto"`` (shortest-path static routes computed for every host and router)."""

    name: str
    seed: int = 0
    defaults: Defaults = attrs.Factory(Defaults)
    nodes: dict[str, Node] = attrs.Factory(dict)
    links: tuple[LinkSpec, ...] = ()
    events: tuple[Event, ...] = ()
    experiments: tuple[Experiment, ...] = ()
    routing: str = "static"
    file: str = attrs.field(default="<topology>", eq=False)
    """Where it came from (a file name, ``<string>`` or a generator spec), for messages."""

    def link_index(self, a: str, b: str) -> int | None:
        """The index in ``links`` of the link joining endpoints a and b (either order)."""
        for i, link in enumerate(self.links):
            if link.endpoints in ((a, b), (b, a)):
                return i
        return None
