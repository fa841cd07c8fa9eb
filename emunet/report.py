"""The report of a run (``emunet run``): each experiment's table, then the statistics of every
link direction and every node's non-zero counters, as ``nstat`` (netstat counters of
/proc/net/snmp and /proc/net/netstat) and ``ip -s link`` show them; :meth:`Report.to_json`
holds every figure.

The JSON form (``emunet run --json FILE``) is one object::

    {"format": "emunet-report/1", "topology": "three-hop", "seed": 42,
     "duration": 7.5,                    # virtual seconds the experiments took
     "ok": true,                         # every experiment succeeded
     "experiments": [ {"type": "ping", "name": ..., "src": ..., "dst": ..., "address": ...,
                       "start": ..., "elapsed": ..., "ok": true, "error": null, ...}, ...],
     "links": [ {"a": "client:eth0", "b": "r1:eth0", "params": {...},
                 "a_to_b": {"tx_frames": ..., "tx_bytes": ..., "delivered": ..., "lost": ...,
                            "duplicated": ..., "corrupted": ..., "reordered": ...,
                            "dropped_down": ...},
                 "b_to_a": {...}}, ...],
     "nodes": {"client": {"kind": "host", "counters": {"IpInReceives": 12, ...},
                          "interfaces": {"eth0": {"rx_packets": 12, ...}}}, ...}}

Times are seconds, rates bit/s, sizes bytes.  Counters are the non-zero ones (an absent
counter is zero).  The text is deterministic: keys sorted, floats rounded to nanoseconds, so
the same topology and seed give the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .experiments.common import ExperimentResult
from .fabric.impair import DirectionStatsSnapshot

if TYPE_CHECKING:
    from .network import Network

__all__ = ["FORMAT", "LinkReport", "NodeReport", "Report", "collect_report", "jsonable"]

FORMAT = "emunet-report/1"
_DIRECTION_COLUMNS = (
    ("tx_frames", "frames"),
    ("tx_bytes", "bytes"),
    ("delivered", "delivered"),
    ("lost", "lost"),
    ("duplicated", "dup"),
    ("corrupted", "corrupt"),
    ("reordered", "reorder"),
    ("dropped_down", "down"),
)


@attrs.frozen
class LinkReport:
    """One link: its endpoints, its parameters at the end of the run, and the counters of
    each direction (``a_to_b`` from the first endpoint named)."""

    a: str
    b: str
    params: dict[str, Any]
    a_to_b: DirectionStatsSnapshot
    b_to_a: DirectionStatsSnapshot


@attrs.frozen
class NodeReport:
    """One node's non-zero counters: for hosts and routers the nstat names, for a switch its
    flooded/forwarded/filtered frames; ``interfaces`` holds each interface's (or switch
    port's) non-zero ``ip -s link`` counters."""

    name: str
    kind: str
    counters: dict[str, int]
    interfaces: dict[str, dict[str, int]]


@attrs.frozen
class Report:
    """Everything a run measured."""

    topology: str
    seed: int
    duration: float
    results: tuple[ExperimentResult, ...] = ()
    links: tuple[LinkReport, ...] = ()
    nodes: tuple[NodeReport, ...] = ()
    # Set when the run was interrupted (Ctrl-C): how many experiments it was to run; the
    # results hold the ones that finished before.
    interrupted_of: int | None = None

    @property
    def interrupted(self) -> bool:
        return self.interrupted_of is not None

    @property
    def ok(self) -> bool:
        """Every experiment succeeded (and the run was not interrupted)."""
        return not self.interrupted and all(r.ok for r in self.results)

    @property
    def failed(self) -> list[ExperimentResult]:
        return [r for r in self.results if not r.ok]

    # ------------------------------------------------------------------ text
    def __str__(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        n = len(self.results)
        out = [
            f"emunet run: {self.topology} (seed {self.seed}), {n} experiment"
            f"{'' if n == 1 else 's'}, {self.duration:.3f} s of virtual time"
        ]
        for i, result in enumerate(self.results, 1):
            out += ["", f"[{i}] {result.title}", str(result)]
        out += ["", *self.link_lines(), "", *self.node_lines(), ""]
        failed = self.failed
        if self.interrupted:
            out.append(
                f"INTERRUPTED after {self.duration:.3f} s of virtual time: {n} of "
                f"{self.interrupted_of} experiments finished"
                + (f", {len(failed)} of them failed" if failed else "")
            )
        elif failed:
            out.append(f"FAILED: {len(failed)} of {n} experiments")
            for r in failed:
                out.append(f"  [{self.results.index(r) + 1}] {r.title}: {r.error or 'no success'}")
        else:
            out.append(f"OK: {n} experiment{'' if n == 1 else 's'} succeeded")
        return out

    def link_lines(self) -> list[str]:
        rows = []
        for link in self.links:
            rows.append((f"{link.a} -> {link.b}", link.a_to_b))
            rows.append((f"{link.b} -> {link.a}", link.b_to_a))
        width = max([len("Links, per direction"), *(len(name) for name, _ in rows)])
        header = f"{'Links, per direction':<{width}}" + "".join(
            f" {label:>{_width(label)}}" for _, label in _DIRECTION_COLUMNS
        )
        lines = [header]
        for name, stats in rows:
            lines.append(
                f"{name:<{width}}"
                + "".join(
                    f" {getattr(stats, field):>{_width(label)}}"
                    for field, label in _DIRECTION_COLUMNS
                )
            )
        if not rows:
            lines.append("(no links)")
        return lines

    def node_lines(self) -> list[str]:
        lines = ["Counters, non-zero (nstat; ip -s link)"]
        for node in self.nodes:
            if not node.counters and not any(node.interfaces.values()):
                continue
            lines.append(f"{node.name} ({node.kind})")
            width = max((len(k) for k in node.counters), default=0)
            for key, value in node.counters.items():
                lines.append(f"  {key:<{width}}  {value:>12}")
            for ifname, stats in node.interfaces.items():
                if stats:
                    shown = "  ".join(f"{k} {v}" for k, v in stats.items())
                    lines.append(f"  {ifname}: {shown}")
        return lines

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "topology": self.topology,
            "seed": self.seed,
            "duration": self.duration,
            "ok": self.ok,
            **({"interrupted": {"planned": self.interrupted_of}} if self.interrupted else {}),
            "experiments": [r.to_dict() for r in self.results],
            "links": [
                {
                    "a": link.a,
                    "b": link.b,
                    "params": link.params,
                    "a_to_b": link.a_to_b.as_dict(),
                    "b_to_a": link.b_to_a.as_dict(),
                }
                for link in self.links
            ],
            "nodes": {
                node.name: {
                    "kind": node.kind,
                    "counters": node.counters,
                    "interfaces": node.interfaces,
                }
                for node in self.nodes
            },
        }

    def to_json(self) -> str:
        """Every figure as JSON text: keys sorted, floats rounded to nanoseconds (the same
        seed gives the same bytes)."""
        return json.dumps(jsonable(self.to_dict()), sort_keys=True, indent=2) + "\n"


def _width(label: str) -> int:
    return max(len(label), 7 if label == "frames" else 9 if label == "bytes" else len(label))


def jsonable(value: Any) -> Any:
    """``value`` with floats rounded to 9 decimals (ns), non-finite floats as None, tuples as
    lists and attrs records as dicts: what ``json.dumps`` writes the same way every run."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        rounded = round(value, 9)
        return 0.0 if rounded == 0 else rounded
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if attrs.has(type(value)):
        to_dict = getattr(value, "to_dict", None)
        return jsonable(to_dict() if callable(to_dict) else attrs.asdict(value, recurse=False))
    if isinstance(value, Iterable) and not isinstance(value, (bytes, bytearray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def _nonzero(counters: Mapping[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in counters.items() if v}


def collect_report(
    net: Network,
    results: Iterable[ExperimentResult],
    *,
    duration: float,
    topology: str | None = None,
    planned: int | None = None,
) -> Report:
    """A :class:`Report` of ``results`` with the network's link and node statistics now;
    ``planned`` (the number of experiments the run was to do) marks it interrupted."""
    from .stack.host import Host

    links = []
    for (a, b), link in net.links.items():
        stats = link.stats
        params = attrs.asdict(link.params)
        links.append(LinkReport(a, b, params, stats.a_to_b, stats.b_to_a))
    nodes = []
    for name, node in net.nodes.items():
        if isinstance(node, Host):
            counters = _nonzero(node.nstat())
            interfaces = {i: _nonzero(s) for i, s in node.link_stats().items()}
            nodes.append(NodeReport(name, node.kind, counters, interfaces))
            continue
        stats = getattr(node, "stats", None)
        counters = _nonzero(stats) if isinstance(stats, Mapping) else {}
        ports = getattr(node, "ports", None)
        interfaces = {}
        if isinstance(ports, Mapping):
            interfaces = {p: _nonzero(port.stats) for p, port in ports.items()}
        kind = str(getattr(node, "kind", "tap"))
        nodes.append(NodeReport(name, kind, counters, interfaces))
    return Report(
        topology=topology or net.name,
        seed=net.seed,
        duration=duration,
        results=tuple(results),
        links=tuple(links),
        nodes=tuple(nodes),
        interrupted_of=planned,
    )
