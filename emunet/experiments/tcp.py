"""The ``tcp`` experiment: a bulk transfer like ``iperf3 -c DST -n bytes | -t time -P parallel
-l length -C congestion``, over :meth:`Host.tcp_connect` and :meth:`Host.tcp_listen`.

As iperf3 does, the streams connect one after another, the clock starts once all are
connected, each stream writes ``length``-byte blocks (``bytes`` is the total over all streams,
split evenly; ``time`` is checked between writes), then shuts down its sending side; the
server reads each stream to the end and closes it, and the client waits for that close, so
every byte counted was delivered.  The summary is iperf3's::

    [ ID] Interval           Transfer     Bitrate         Retr
    [  1]   0.00-0.85   sec  9.54 MBytes  94.1 Mbits/sec    3             sender
    [  1]   0.00-0.88   sec  9.54 MBytes  90.9 Mbits/sec                  receiver

The sender's interval ends when its last write returns (data may still be in flight), the
receiver's when it read the end of the stream; ``Retr`` is the sender's ``total_retrans``
(``ss -ti``).  With ``parallel`` > 1 a line per stream and ``[SUM]`` lines.  Succeeds when
every stream delivered everything it wrote without an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

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
    from ..stack.tcp.sock import TcpStream
    from ..topology.schema import TcpExperiment

__all__ = ["TcpResult", "TcpStreamResult", "run_tcp"]


@attrs.frozen
class TcpStreamResult:
    """One stream: bytes written and read, the sender's and receiver's intervals (seconds from
    the start of the test), and the sender's ``ss -ti`` figures at the end (None where the
    stack does not report them): retransmitted segments, cwnd and ssthresh (segments),
    smoothed RTT (seconds), MSS (bytes)."""

    id: int
    local_port: int
    bytes_sent: int
    bytes_received: int
    sender_seconds: float
    receiver_seconds: float
    retransmits: int | None = None
    cwnd: int | None = None
    ssthresh: int | None = None
    rtt: float | None = None
    mss: int | None = None


@attrs.frozen(kw_only=True)
class TcpResult(ExperimentResult):
    """Totals over the streams (sums; the intervals are the longest) and each stream."""

    type: ClassVar[str] = "tcp"
    port: int = 5001
    congestion: str = ""
    target_bytes: int | None = None
    duration: float | None = None
    connect_time: float = 0.0
    bytes_sent: int = 0
    bytes_received: int = 0
    sender_seconds: float = 0.0
    receiver_seconds: float = 0.0
    retransmits: int = 0
    streams: tuple[TcpStreamResult, ...] = ()

    @property
    def ok(self) -> bool:
        if self.error is not None or not self.streams:
            return False
        if self.target_bytes is not None and self.bytes_received != self.target_bytes:
            return False
        return all(s.bytes_received == s.bytes_sent for s in self.streams)

    @property
    def sender_rate(self) -> float:
        return rate(self.bytes_sent, self.sender_seconds)

    @property
    def receiver_rate(self) -> float:
        return rate(self.bytes_received, self.receiver_seconds)

    def __str__(self) -> str:
        lines = [f"Connecting to host {self.address}, port {self.port} ({self.congestion})"]
        if self.error is not None:
            lines.append(f"iperf3: error - {self.error}")
        if self.streams:
            lines.append("[ ID] Interval           Transfer     Bitrate         Retr")
            rows: list[tuple[str, int, int, float, float, int | None]] = [
                (
                    f"{s.id:3d}",
                    s.bytes_sent,
                    s.bytes_received,
                    s.sender_seconds,
                    s.receiver_seconds,
                    s.retransmits,
                )
                for s in self.streams
            ]
            if len(self.streams) > 1:
                rows.append(
                    (
                        "SUM",
                        self.bytes_sent,
                        self.bytes_received,
                        self.sender_seconds,
                        self.receiver_seconds,
                        self.retransmits,
                    )
                )
            for label, sent, received, s_secs, r_secs, retrans in rows:
                retr = "-" if retrans is None else str(retrans)
                lines.append(
                    f"[{label}]   0.00-{s_secs:<6.2f} sec  {fmt_bytes(sent)}  "
                    f"{fmt_rate(rate(sent, s_secs))}  {retr:>4}             sender"
                )
                lines.append(
                    f"[{label}]   0.00-{r_secs:<6.2f} sec  {fmt_bytes(received)}  "
                    f"{fmt_rate(rate(received, r_secs))}                  receiver"
                )
        return "\n".join(lines)


class _Stream:
    """The live figures of one stream while the test runs."""

    def __init__(self, index: int, stream: TcpStream, target: int | None) -> None:
        self.id = index
        self.stream = stream
        self.local_port = stream.local_address[1]
        self.target = target
        self.sent = 0
        self.sender_end = 0.0
        self.received = 0
        self.receiver_end: float | None = None
        self.info: Any = None


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _figure(info: Any, name: str) -> Any:
    value = getattr(info, name, None) if info is not None else None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


async def run_tcp(net: Network, spec: TcpExperiment) -> TcpResult:
    client = experiment_host(net, spec.src)
    server = experiment_host(net, spec.dst, "to")
    address = node_address(net, spec.dst)
    congestion = spec.congestion or str(client.sysctl["net.ipv4.tcp_congestion_control"])
    options: dict[str, Any] = {}
    if spec.congestion is not None:
        options["congestion"] = spec.congestion
    start = trio.current_time()
    targets = _split(spec.bytes, spec.parallel) if spec.bytes is not None else None
    duration = spec.duration
    block = bytes(spec.length)
    streams: list[_Stream] = []
    by_port: dict[int, _Stream] = {}
    failure: list[BaseException] = []
    connected = trio.Event()
    t0 = start

    async def receive(peer: TcpStream) -> None:
        port = peer.remote_address[1]
        await connected.wait()
        record = by_port.get(port)
        try:
            while True:
                data = await peer.receive_some(1 << 20)
                if record is not None:
                    record.receiver_end = trio.current_time() - t0
                if not data:
                    break
                if record is not None:
                    record.received += len(data)
        finally:
            await peer.aclose()

    async def accept_loop(listener: Any, nursery: trio.Nursery) -> None:
        while True:
            peer = await listener.accept()
            nursery.start_soon(guard, receive, peer, nursery)

    async def send(record: _Stream) -> None:
        stream = record.stream
        view = memoryview(block)
        try:
            if record.target is not None:
                while record.sent < record.target:
                    n = min(len(block), record.target - record.sent)
                    await stream.send_all(view[:n])
                    record.sent += n
            else:
                assert duration is not None
                deadline = t0 + duration
                while trio.current_time() < deadline:
                    await stream.send_all(block)
                    record.sent += len(block)
        finally:  # also when a write fails: the interval ends there
            record.sender_end = trio.current_time() - t0
        await stream.send_eof()
        while await stream.receive_some():
            pass  # the receiver reads to the end and closes: everything was delivered
        record.info = stream.info()
        await stream.aclose()

    async def guard(fn: Any, arg: Any, nursery: trio.Nursery) -> None:
        try:
            await fn(arg)
        except (OSError, trio.BrokenResourceError) as exc:
            if not failure:
                failure.append(exc)
            nursery.cancel_scope.cancel()

    connect_time = 0.0
    try:
        listener = await server.tcp_listen(spec.port, backlog=max(128, spec.parallel))
    except OSError as exc:
        return _result(spec, address, congestion, start, streams, targets, 0.0, exc)
    try:
        async with trio.open_nursery() as outer:
            outer.start_soon(accept_loop, listener, outer)
            try:
                for i in range(spec.parallel):
                    stream = await client.tcp_connect(address, spec.port, **options)
                    record = _Stream(i + 1, stream, targets[i] if targets else None)
                    streams.append(record)
                    by_port[record.local_port] = record
            except OSError as exc:
                failure.append(exc)
                outer.cancel_scope.cancel()
            else:
                t0 = trio.current_time()
                connect_time = t0 - start
                connected.set()
                async with trio.open_nursery() as senders:
                    for record in streams:
                        senders.start_soon(guard, send, record, senders)
                outer.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await listener.aclose()
            for record in streams:
                if failure and record.info is None:
                    record.stream.abort()  # a stream the failure left open
    return _result(
        spec,
        address,
        congestion,
        start,
        streams,
        targets,
        connect_time,
        failure[0] if failure else None,
    )


def _result(
    spec: TcpExperiment,
    address: str,
    congestion: str,
    start: float,
    streams: list[_Stream],
    targets: list[int] | None,
    connect_time: float,
    exc: BaseException | None,
) -> TcpResult:
    done = tuple(
        TcpStreamResult(
            id=s.id,
            local_port=s.local_port,
            bytes_sent=s.sent,
            bytes_received=s.received,
            sender_seconds=s.sender_end,
            receiver_seconds=s.receiver_end if s.receiver_end is not None else 0.0,
            retransmits=_figure(s.info, "total_retrans"),
            cwnd=_figure(s.info, "cwnd"),
            ssthresh=_figure(s.info, "ssthresh"),
            rtt=_figure(s.info, "rtt"),
            mss=_figure(s.info, "snd_mss"),
        )
        for s in streams
    )
    return TcpResult(
        name=spec.name or "tcp",
        src=spec.src,
        dst=spec.dst,
        address=address,
        start=start,
        elapsed=trio.current_time() - start,
        error=None if exc is None else error_text(exc),
        port=spec.port,
        congestion=congestion,
        target_bytes=spec.bytes,
        duration=spec.duration,
        connect_time=connect_time,
        bytes_sent=sum(s.bytes_sent for s in done),
        bytes_received=sum(s.bytes_received for s in done),
        sender_seconds=max((s.sender_seconds for s in done), default=0.0),
        receiver_seconds=max((s.receiver_seconds for s in done), default=0.0),
        retransmits=sum(s.retransmits or 0 for s in done),
        streams=done,
    )
