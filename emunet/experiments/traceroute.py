"""The ``traceroute`` experiment: Linux ``traceroute -m max_hops -q queries -w wait -p port``
(UDP probes, 32 bytes of data: 60-byte packets), printed as traceroute prints it::

    traceroute to 10.0.2.2 (10.0.2.2), 30 hops max, 60 byte packets
     1  10.0.1.1 (10.0.1.1)  20.145 ms  20.118 ms  20.101 ms
     2  10.0.2.2 (10.0.2.2)  24.301 ms  24.288 ms  24.275 ms

A probe nobody answered prints ``*``.  Succeeds when the destination itself answered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import attrs
import trio

from ..stack.ping import Hop
from .common import ExperimentResult, error_text, experiment_host, node_address

if TYPE_CHECKING:
    from ..network import Network
    from ..topology.schema import TracerouteExperiment

__all__ = ["TracerouteResult", "run_traceroute"]

PROBE_DATA = 32  # bytes of UDP data per probe, as host.traceroute sends
PACKET_SIZE = 20 + 8 + PROBE_DATA


@attrs.frozen(kw_only=True)
class TracerouteResult(ExperimentResult):
    """Every probe as a :class:`emunet.Hop` (ttl, who answered, RTT in seconds), ``queries``
    probes per TTL, in order."""

    type: ClassVar[str] = "traceroute"
    max_hops: int = 30
    queries: int = 1
    hops: tuple[Hop, ...] = ()

    @property
    def reached(self) -> bool:
        """The destination answered (port unreachable from the address we traced)."""
        return any(h.address == self.address for h in self.hops)

    @property
    def ok(self) -> bool:
        return self.error is None and self.reached

    def __str__(self) -> str:
        lines = [
            f"traceroute to {self.address} ({self.address}), {self.max_hops} hops max, "
            f"{PACKET_SIZE} byte packets"
        ]
        by_ttl: dict[int, list[Hop]] = {}
        for hop in self.hops:
            by_ttl.setdefault(hop.ttl, []).append(hop)
        for ttl, probes in by_ttl.items():
            parts = [f"{ttl:2d} "]
            shown: str | None = None
            for probe in probes:
                if probe.address is None or probe.rtt is None:
                    parts.append(" *")
                    continue
                if probe.address != shown:
                    parts.append(f" {probe.address} ({probe.address})")
                    shown = probe.address
                parts.append(f"  {probe.rtt * 1000:.3f} ms")
            lines.append("".join(parts))
        if self.error is not None:
            lines.append(f"traceroute: {self.error}")
        return "\n".join(lines)


async def run_traceroute(net: Network, spec: TracerouteExperiment) -> TracerouteResult:
    host = experiment_host(net, spec.src)
    address = node_address(net, spec.dst)
    start = trio.current_time()
    common = {
        "name": spec.name or "traceroute",
        "src": spec.src,
        "dst": spec.dst,
        "address": address,
        "start": start,
        "max_hops": spec.max_hops,
        "queries": spec.queries,
    }
    try:
        hops = await host.traceroute(
            address, max_hops=spec.max_hops, queries=spec.queries, wait=spec.wait, port=spec.port
        )
    except OSError as exc:
        return TracerouteResult(
            **common, elapsed=trio.current_time() - start, error=error_text(exc)
        )
    return TracerouteResult(**common, elapsed=trio.current_time() - start, hops=tuple(hops))
