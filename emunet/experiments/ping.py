"""The ``ping`` experiment: ``ping -c count -i interval -s size -W timeout -t ttl`` from one
host, summarised as iputils ping prints it (ping/ping_common.c ``finish``)::

    --- 10.0.2.2 ping statistics ---
    3 packets transmitted, 3 received, 0% packet loss, time 2024ms
    rtt min/avg/max/mdev = 24.102/24.164/24.220/0.048 ms

``mdev`` is iputils' mean deviation, sqrt(mean(rtt^2) - mean(rtt)^2).  Succeeds when at least
one reply came back (iputils exits 1 when none did).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import attrs
import trio

from .common import ExperimentResult, error_text, experiment_host, node_address

if TYPE_CHECKING:
    from ..network import Network
    from ..topology.schema import PingExperiment

__all__ = ["PingResult", "run_ping"]


@attrs.frozen(kw_only=True)
class PingResult(ExperimentResult):
    """The experiment's ping figures: requests ``sent``, replies ``received``, ICMP ``errors``
    about the requests, each reply's RTT in seconds (in sequence order), and the ``size`` of
    the echo data.  (``emunet.PingResult`` is what ``host.ping()`` returns; this one adds the
    experiment's context.)"""

    type: ClassVar[str] = "ping"
    size: int = 56
    sent: int = 0
    received: int = 0
    errors: int = 0
    rtts: tuple[float, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and self.received > 0

    @property
    def loss(self) -> float:
        """Fraction of requests without a reply."""
        return 0.0 if self.sent == 0 else (self.sent - self.received) / self.sent

    @property
    def mdev(self) -> float | None:
        if not self.rtts:
            return None
        n = len(self.rtts)
        mean = math.fsum(self.rtts) / n
        square = math.fsum(r * r for r in self.rtts) / n
        return math.sqrt(max(0.0, square - mean * mean))

    def __str__(self) -> str:
        lines = [
            f"PING {self.address} ({self.address}) {self.size}({self.size + 28}) bytes of data."
        ]
        if self.error is not None:
            lines.append(f"ping: {self.error}")
        lines.append(f"--- {self.address} ping statistics ---")
        summary = f"{self.sent} packets transmitted, {self.received} received"
        if self.errors:
            summary += f", +{self.errors} errors"
        summary += f", {self.loss * 100:g}% packet loss, time {round(self.elapsed * 1000)}ms"
        lines.append(summary)
        if self.rtts:
            n = len(self.rtts)
            avg = math.fsum(self.rtts) / n
            mdev = self.mdev or 0.0
            lines.append(
                f"rtt min/avg/max/mdev = {min(self.rtts) * 1000:.3f}/{avg * 1000:.3f}/"
                f"{max(self.rtts) * 1000:.3f}/{mdev * 1000:.3f} ms"
            )
        return "\n".join(lines)


async def run_ping(net: Network, spec: PingExperiment) -> PingResult:
    """Ping ``spec.dst`` from ``spec.src`` as the spec says."""
    host = experiment_host(net, spec.src)
    address = node_address(net, spec.dst)
    start = trio.current_time()
    common = {
        "name": spec.name or "ping",
        "src": spec.src,
        "dst": spec.dst,
        "address": address,
        "start": start,
        "size": spec.size,
    }
    try:
        result = await host.ping(
            address,
            spec.count,
            interval=spec.interval,
            size=spec.size,
            timeout=spec.timeout,
            ttl=spec.ttl,
        )
    except OSError as exc:
        return PingResult(**common, elapsed=trio.current_time() - start, error=error_text(exc))
    return PingResult(
        **common,
        elapsed=trio.current_time() - start,
        sent=result.sent,
        received=result.received,
        errors=result.errors,
        rtts=tuple(result.rtts),
    )
