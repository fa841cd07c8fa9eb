"""``host.ping()`` and ``host.traceroute()``: what iputils ping and Linux traceroute do, run in
the caller's task over the host's stack.

Ping sends ICMP echo requests (id per call, sequence from 1, ``size`` bytes of data whose first
8 carry the send time) one per ``interval``; it stops as soon as every reply is in, else waits
after the last request twice the longest RTT seen (at least one ``interval``), or ``timeout`` if
nothing came back (iputils' linger).  Traceroute sends UDP probes with TTL 1, 2, ... to ports
33434 upwards, one TTL at a time, ``queries`` probes per TTL, and reads the ICMP errors they draw
(time exceeded from routers, port unreachable from the destination) as IP_RECVERR gives them to
Linux traceroute.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..wire.addr import ip_from_str, ip_to_str
from ..wire.icmp import ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, ICMP_TIME_EXCEEDED

if TYPE_CHECKING:
    from .host import Host

NS = 1_000_000_000
_STAMP = struct.Struct("!Q")


@attrs.frozen
class PingResult:
    """What ``ping -c`` reports: requests sent, replies received, each reply's RTT (seconds)."""

    sent: int
    received: int
    rtts: tuple[float, ...] = ()
    errors: int = 0  # ICMP errors about our requests (e.g. destination host unreachable)

    @property
    def loss(self) -> float:
        """Fraction of requests without a reply (0.0 .. 1.0)."""
        return 0.0 if self.sent == 0 else (self.sent - self.received) / self.sent

    def __str__(self) -> str:
        text = (
            f"{self.sent} packets transmitted, {self.received} received, "
            f"{self.loss * 100:.0f}% packet loss"
        )
        if self.errors:
            text += f", +{self.errors} errors"
        if self.rtts:
            lo, hi = min(self.rtts) * 1000, max(self.rtts) * 1000
            avg = sum(self.rtts) / len(self.rtts) * 1000
            text += f"\nrtt min/avg/max = {lo:.3f}/{avg:.3f}/{hi:.3f} ms"
        return text


@attrs.frozen
class Hop:
    """One traceroute probe: the TTL, who answered (None: nobody), and the RTT (seconds)."""

    ttl: int
    address: str | None
    rtt: float | None = None
    reached: bool = False  # the destination itself answered

    def __str__(self) -> str:
        if self.address is None:
            return f"{self.ttl:2d}  *"
        return f"{self.ttl:2d}  {self.address}  {self.rtt * 1000:.3f} ms"


def _now_ns() -> int:
    return round(trio.current_time() * NS)


class _Pinger:
    def __init__(self, host: Host, dst: int, count: int) -> None:
        self.host = host
        self.dst = dst
        self.sent_at: dict[int, int] = {}
        self.rtts: dict[int, int] = {}
        self.errors = 0
        self.count = count
        self.event = trio.Event()

    def reply(self, src: int, seq: int, data: bytes, now: float) -> None:
        if src != self.dst or seq not in self.sent_at or seq in self.rtts:
            return  # a duplicate, or a reply to someone else's request
        self.rtts[seq] = round(now * NS) - self.sent_at[seq]
        if len(self.rtts) == self.count:
            self.event.set()

    def error(self, offender: int, icmp: Any, now: float) -> None:
        self.errors += 1


async def ping(
    host: Host,
    dst: str,
    count: int = 3,
    *,
    interval: float = 1.0,
    size: int = 56,
    timeout: float = 10.0,
    ttl: int | None = None,
) -> PingResult:
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"ping count must be a positive int, got {count!r}")
    if interval < 0 or timeout < 0:
        raise ValueError("ping interval and timeout must not be negative")
    if not 0 <= size <= 65507:
        raise ValueError(f"ping size {size} is not in 0..65507")
    daddr = ip_from_str(dst)
    ident = host.next_ping_id()
    pinger = _Pinger(host, daddr, count)
    host._pingers[ident] = pinger
    pad = bytes(i & 0xFF for i in range(8, max(size, 8)))
    try:
        for seq in range(1, count + 1):
            if seq > 1:
                await trio.sleep(interval)
            sent = _now_ns()
            data = (_STAMP.pack(sent) + pad)[:size]
            pinger.sent_at[seq] = sent
            if host.tracer is not None:
                host.tracer.record(
                    trio.current_time(),
                    host.name,
                    "ping_v4_sendmsg",
                    ("icmp", ident, seq),
                    f"echo request id {ident} seq {seq} to {dst}, {size} bytes",
                )
            host.icmp.send_echo(daddr, ident, seq, data, trio.current_time(), ttl=ttl)
        if len(pinger.rtts) < count:
            # iputils schedule_exit: 2 x the longest RTT, but at least one interval
            linger = max(2 * max(pinger.rtts.values()) / NS, interval) if pinger.rtts else timeout
            with trio.move_on_after(linger):
                await pinger.event.wait()
    finally:
        del host._pingers[ident]
    rtts = tuple(pinger.rtts[s] / NS for s in sorted(pinger.rtts))
    return PingResult(len(pinger.sent_at), len(rtts), rtts, pinger.errors)


async def traceroute(
    host: Host,
    dst: str,
    *,
    max_hops: int = 30,
    queries: int = 1,
    wait: float = 5.0,
    port: int = 33434,
) -> list[Hop]:
    if not 1 <= max_hops <= 255:
        raise ValueError(f"max_hops {max_hops} is not in 1..255")
    if queries < 1:
        raise ValueError(f"queries must be at least 1, got {queries}")
    daddr = ip_from_str(dst)
    hops: list[Hop] = []
    sock = host.udp_socket(0, recverr=True)
    probe_port = port
    try:
        for ttl in range(1, max_hops + 1):
            reached = False
            for _ in range(queries):
                sock.ttl = ttl
                sent = _now_ns()
                await sock.sendto(b"\x00" * 32, (dst, probe_port))
                deadline = trio.current_time() + wait
                hop = Hop(ttl, None)
                while True:
                    err = await sock.recv_error(deadline)
                    if err is None:
                        break
                    if err.dst != daddr or err.dst_port != probe_port:
                        continue  # a late answer to an earlier probe
                    rtt = (round(err.time * NS) - sent) / NS
                    done = err.type == ICMP_DEST_UNREACH
                    if err.type in (ICMP_TIME_EXCEEDED, ICMP_DEST_UNREACH):
                        hop = Hop(ttl, ip_to_str(err.offender), rtt, done)
                        reached = reached or (done and err.code == ICMP_PORT_UNREACH) or done
                        break
                hops.append(hop)
                probe_port += 1
            if reached:
                break
    finally:
        sock.close()
    return hops
