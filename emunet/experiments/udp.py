"""The ``udp`` experiment: a constant-rate UDP stream like ``iperf -u -c DST -b rate -l size
-t time`` (iperf 2), reported as iperf's client prints the server's report::

    [ ID] Interval       Transfer     Bandwidth        Jitter   Lost/Total Datagrams
    [  1]  0.0-10.0 sec  1.25 MBytes  1.05 Mbits/sec   0.012 ms    0/  893 (0%)

Datagram k leaves at ``k * size * 8 / rate`` seconds (integer nanoseconds) while that is before
``time``.  Each carries iperf 2's header (``struct UDP_datagram``: 32-bit sequence number, send
time in seconds and microseconds) when it is at least 12 bytes long; the sequence number alone
from 4 bytes.  The receiver counts datagrams, duplicates and those out of order (a sequence
number below the highest seen), and computes the interarrival jitter of RFC 3550 section 6.4.1
in arrival order: ``J += (|D| - J) / 16`` with D the change in transit time, from exact
(nanosecond) send and arrival times.  It stops once every datagram arrived, or when nothing
arrived for one second after the last was sent (iperf's server waits like that too).  Lost =
sent - received distinct.  Succeeds when at least one datagram arrived.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, ClassVar

import attrs
import trio

from .common import (
    ExperimentResult,
    error_text,
    experiment_host,
    fmt_bytes,
    fmt_rate,
    node_address,
    rate,
)

if TYPE_CHECKING:
    from ..network import Network
    from ..topology.schema import UdpExperiment

__all__ = ["UdpResult", "run_udp"]

NS = 1_000_000_000
QUIET = 1.0  # seconds without a datagram, after the last was sent, that end the test
_HEADER = struct.Struct("!III")  # iperf 2 UDP_datagram: id, tv_sec, tv_usec
_SEQ = struct.Struct("!I")


@attrs.frozen(kw_only=True)
class UdpResult(ExperimentResult):
    """Sender: datagrams and bytes ``sent`` over ``sender_seconds``.  Receiver: datagrams and
    bytes ``received`` (distinct), ``lost`` = sent - received, ``duplicates``,
    ``out_of_order``, ``jitter`` (seconds, RFC 3550; None if it cannot be measured) and
    ``receiver_seconds`` (from the first send to the last arrival)."""

    type: ClassVar[str] = "udp"
    port: int = 5001
    rate: float = 0.0
    size: int = 0
    sent: int = 0
    bytes_sent: int = 0
    sender_seconds: float = 0.0
    received: int = 0
    bytes_received: int = 0
    receiver_seconds: float = 0.0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    jitter: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.received > 0

    @property
    def loss(self) -> float:
        return 0.0 if self.sent == 0 else self.lost / self.sent

    def __str__(self) -> str:
        gap = self.size * 8 / self.rate * 1e6 if self.rate else 0.0
        lines = [
            f"Client connecting to {self.address}, UDP port {self.port}",
            f"Sending {self.size} byte datagrams, IPG target: {gap:.2f} us",
        ]
        if self.error is not None:
            lines.append(f"iperf: {self.error}")
        lines += [
            "[ ID] Interval       Transfer     Bandwidth",
            f"[  1]  0.0-{self.sender_seconds:<4.1f} sec  {fmt_bytes(self.bytes_sent)}  "
            f"{fmt_rate(rate(self.bytes_sent, self.sender_seconds))}",
            f"[  1] Sent {self.sent} datagrams",
            "[  1] Server Report:",
            "[ ID] Interval       Transfer     Bandwidth        Jitter   Lost/Total Datagrams",
        ]
        jitter = "-" if self.jitter is None else f"{self.jitter * 1000:.3f}"
        report = (
            f"[  1]  0.0-{self.receiver_seconds:<4.1f} sec  {fmt_bytes(self.bytes_received)}  "
            f"{fmt_rate(rate(self.bytes_received, self.receiver_seconds))}  {jitter:>7} ms "
            f"{self.lost:4d}/{self.sent:5d} ({self.loss * 100:.2g}%)"
        )
        lines.append(report)
        if self.out_of_order:
            lines.append(f"[  1] {self.out_of_order} datagrams received out-of-order")
        if self.duplicates:
            lines.append(f"[  1] {self.duplicates} duplicate datagrams")
        return "\n".join(lines)


class _Receiver:
    def __init__(self, send_ns: list[int], size: int) -> None:
        self.send_ns = send_ns
        self.size = size
        self.seen: set[int] = set()
        self.received = 0
        self.bytes = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.highest = -1
        self.unnumbered = 0
        self.jitter: float | None = None
        self.transit: int | None = None
        self.last_arrival: float | None = None
        self.expected: int | None = None  # known once the sender is done
        self.all_in = trio.Event()

    def sender_done(self) -> None:
        self.expected = len(self.send_ns)
        self._check()

    def _check(self) -> None:
        if self.expected is not None and self.received >= self.expected:
            self.all_in.set()

    def datagram(self, data: bytes, now: float) -> None:
        self.last_arrival = now
        if len(data) < _SEQ.size:
            # too short to carry a sequence number: count it, no jitter or order
            self.unnumbered += 1
            self.received += 1
            self.bytes += len(data)
        else:
            (seq,) = _SEQ.unpack_from(data)
            if seq >= len(self.send_ns) or seq in self.seen:
                self.duplicates += 1
                return
            self.seen.add(seq)
            self.received += 1
            self.bytes += len(data)
            if seq < self.highest:
                self.out_of_order += 1
            else:
                self.highest = seq
            # RFC 3550 6.4.1: D(i-1, i) = (Ri - Ri-1) - (Si - Si-1), J += (|D| - J) / 16
            transit = round(now * NS) - self.send_ns[seq]
            if self.transit is not None:
                d = abs(transit - self.transit) / NS
                self.jitter = (self.jitter or 0.0) + (d - (self.jitter or 0.0)) / 16
            elif self.jitter is None:
                self.jitter = 0.0
            self.transit = transit
        self._check()


def _payload(seq: int, sent_ns: int, size: int) -> bytes:
    if size >= _HEADER.size:
        sec, rem = divmod(sent_ns, NS)
        head = _HEADER.pack(seq & 0xFFFFFFFF, sec & 0xFFFFFFFF, rem // 1000)
    elif size >= _SEQ.size:
        head = _SEQ.pack(seq & 0xFFFFFFFF)
    else:
        head = b""
    return head + bytes(size - len(head))


async def run_udp(net: Network, spec: UdpExperiment) -> UdpResult:
    client = experiment_host(net, spec.src)
    server = experiment_host(net, spec.dst, "to")
    address = node_address(net, spec.dst)
    start = trio.current_time()
    common = {
        "name": spec.name or "udp",
        "src": spec.src,
        "dst": spec.dst,
        "address": address,
        "start": start,
        "port": spec.port,
        "rate": spec.rate,
        "size": spec.size,
    }
    gap_ns = max(1, round(spec.size * 8 * NS / spec.rate))
    total_ns = round(spec.time * NS)
    count = max(1, -(-total_ns // gap_ns))  # datagrams whose send time is before `time`
    start_ns = round(start * NS)
    send_ns: list[int] = []
    try:
        sink = server.udp_socket(spec.port)
    except OSError as exc:
        return UdpResult(**common, elapsed=0.0, error=error_text(exc))
    receiver = _Receiver(send_ns, spec.size)
    error: BaseException | None = None
    sent_bytes = 0
    sender_end = 0.0
    try:
        with client.udp_socket() as source:
            async with trio.open_nursery() as nursery:

                async def drain() -> None:
                    while True:
                        data, _ = await sink.recvfrom()
                        receiver.datagram(data, trio.current_time())

                nursery.start_soon(drain)
                for seq in range(count):
                    when = start_ns + seq * gap_ns
                    await trio.sleep_until(when / NS)
                    send_ns.append(when)
                    try:
                        await source.sendto(_payload(seq, when, spec.size), (address, spec.port))
                    except OSError as exc:
                        error = exc
                        del send_ns[-1]
                        break
                    sent_bytes += spec.size
                # the schedule's span: count gaps (iperf's interval for the stream)
                sender_end = len(send_ns) * gap_ns / NS
                receiver.sender_done()
                if send_ns:
                    while not receiver.all_in.is_set():
                        last = receiver.last_arrival
                        quiet_from = max(last if last is not None else 0.0, trio.current_time())
                        with trio.move_on_at(quiet_from + QUIET):
                            await receiver.all_in.wait()
                        if receiver.last_arrival == last:
                            break
                nursery.cancel_scope.cancel()
    finally:
        sink.close()
    last = receiver.last_arrival
    return UdpResult(
        **common,
        elapsed=trio.current_time() - start,
        error=None if error is None else error_text(error),
        sent=len(send_ns),
        bytes_sent=sent_bytes,
        sender_seconds=sender_end,
        received=receiver.received,
        bytes_received=receiver.bytes,
        receiver_seconds=(last - start) if last is not None else 0.0,
        lost=max(0, len(send_ns) - receiver.received),
        duplicates=receiver.duplicates,
        out_of_order=receiver.out_of_order,
        jitter=receiver.jitter,
    )
