"""The ``http`` experiment: HTTP/1.1 over emunet's TCP, with h11 (python-hyper's sans-I/O
HTTP/1.1 state machine) on both sides, measured the way ApacheBench (``ab -n requests -c
concurrency``) measures.

The server on ``dst`` answers every request with ``200 OK`` and a body of ``size`` bytes
(Content-Length), keeping the connection alive.  The client opens ``concurrency`` connections,
each sending ``GET /`` requests one after another (keep-alive) until ``requests`` have been
sent in all; a request's latency runs from its first byte written to the last byte of the
response read.  Requests per second are in virtual time: completed requests over the time from
the first connect to the last response.  Succeeds when every request got a 200 response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import h11
import trio

from .common import (
    ExperimentResult,
    Percentiles,
    errno_name,
    error_text,
    experiment_host,
    node_address,
    percentiles,
)

if TYPE_CHECKING:
    from ..network import Network
    from ..stack.tcp.sock import TcpStream
    from ..topology.schema import HttpExperiment

__all__ = ["HttpResult", "run_http"]

RECEIVE = 65536


@attrs.frozen(kw_only=True)
class HttpResult(ExperimentResult):
    """``completed`` requests (200 responses), ``failed`` ones by cause (errno name, or
    ``HTTP <status>``), ``latency`` percentiles (seconds), ``requests_per_second`` (virtual),
    response body bytes received, connections opened."""

    type: ClassVar[str] = "http"
    port: int = 80
    requests: int = 0
    concurrency: int = 0
    size: int = 0
    completed: int = 0
    failed: int = 0
    failures: dict[str, int] = attrs.Factory(dict)
    connections: int = 0
    bytes_received: int = 0
    requests_per_second: float = 0.0
    latency: Percentiles = attrs.Factory(Percentiles)

    @property
    def ok(self) -> bool:
        return self.error is None and self.completed == self.requests

    def __str__(self) -> str:
        failures = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items()))
        lines = [
            f"Server Hostname:        {self.address}",
            f"Server Port:            {self.port}",
            f"Document Length:        {self.size} bytes",
            f"Concurrency Level:      {self.concurrency}",
            f"Time taken for tests:   {self.elapsed:.3f} seconds",
            f"Complete requests:      {self.completed}",
            f"Failed requests:        {self.failed}" + (f" ({failures})" if failures else ""),
            f"Total body received:    {self.bytes_received} bytes",
            f"Requests per second:    {self.requests_per_second:.2f} [#/sec] (virtual time)",
            f"Latency:                {self.latency.row()} ms",
        ]
        if self.error is not None:
            lines.insert(0, f"http: {self.error}")
        return "\n".join(lines)


async def _next_event(conn: h11.Connection, stream: TcpStream) -> Any:
    """The next h11 event, reading from ``stream`` while h11 needs data."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await stream.receive_some(RECEIVE))


async def _serve(stream: TcpStream, size: int) -> None:
    """One server connection: answer requests until the client closes."""
    conn = h11.Connection(h11.SERVER)
    body = bytes(size)
    try:
        while True:
            event = await _next_event(conn, stream)
            if isinstance(event, h11.Request):
                headers = [
                    ("Content-Length", str(size)),
                    ("Content-Type", "application/octet-stream"),
                    ("Server", "emunet"),
                ]
                out = conn.send(h11.Response(status_code=200, headers=headers)) or b""
                if size:
                    out += conn.send(h11.Data(data=body)) or b""
                out += conn.send(h11.EndOfMessage()) or b""
                await stream.send_all(out)
            elif isinstance(event, h11.ConnectionClosed):
                return
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
            elif h11.MUST_CLOSE in (conn.our_state, conn.their_state):
                return
    except (h11.ProtocolError, OSError, trio.BrokenResourceError):
        return
    finally:
        await stream.aclose()


async def run_http(net: Network, spec: HttpExperiment) -> HttpResult:
    client = experiment_host(net, spec.src)
    server = experiment_host(net, spec.dst, "to")
    address = node_address(net, spec.dst)
    start = trio.current_time()
    common: dict[str, Any] = {
        "name": spec.name or "http",
        "src": spec.src,
        "dst": spec.dst,
        "address": address,
        "start": start,
        "port": spec.port,
        "requests": spec.requests,
        "concurrency": spec.concurrency,
        "size": spec.size,
    }
    try:
        listener = await server.tcp_listen(spec.port, backlog=max(128, spec.concurrency))
    except OSError as exc:
        return HttpResult(**common, error=error_text(exc))
    latencies: list[float] = []
    failures: dict[str, int] = {}
    figures = {"bytes": 0, "connections": 0, "issued": 0, "last": start}
    host_header = address if spec.port == 80 else f"{address}:{spec.port}"

    def fail(cause: str) -> None:
        failures[cause] = failures.get(cause, 0) + 1

    async def serve(nursery: trio.Nursery) -> None:
        while True:
            peer = await listener.accept()
            nursery.start_soon(_serve, peer, spec.size)

    async def connection() -> None:
        while figures["issued"] < spec.requests:
            try:
                stream = await client.tcp_connect(address, spec.port)
            except OSError as exc:
                figures["issued"] += 1  # ab counts a failed connect as a failed request
                fail(errno_name(exc.errno))
                continue
            figures["connections"] += 1
            conn = h11.Connection(h11.CLIENT)
            try:
                while figures["issued"] < spec.requests:
                    figures["issued"] += 1
                    began = trio.current_time()
                    request = h11.Request(
                        method="GET",
                        target="/",
                        headers=[("Host", host_header), ("User-Agent", "emunet")],
                    )
                    await stream.send_all(conn.send(request) + conn.send(h11.EndOfMessage()))
                    status = 0
                    while True:
                        event = await _next_event(conn, stream)
                        if isinstance(event, h11.Response):
                            status = event.status_code
                        elif isinstance(event, h11.Data):
                            figures["bytes"] += len(event.data)
                        elif isinstance(event, h11.EndOfMessage):
                            break
                        elif isinstance(event, h11.ConnectionClosed):
                            raise h11.RemoteProtocolError("the server closed the connection")
                    if status == 200:
                        latencies.append(trio.current_time() - began)
                        figures["last"] = trio.current_time()
                    else:
                        fail(f"HTTP {status}")
                    conn.start_next_cycle()
            except (OSError, trio.BrokenResourceError) as exc:
                fail(errno_name(getattr(exc, "errno", None)))
                stream.abort()
                continue
            except h11.ProtocolError:
                fail("protocol error")
                stream.abort()
                continue
            await stream.aclose()

    try:
        async with trio.open_nursery() as outer:
            outer.start_soon(serve, outer)
            async with trio.open_nursery() as clients:
                for _ in range(min(spec.concurrency, spec.requests)):
                    clients.start_soon(connection)
            outer.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await listener.aclose()
    span = figures["last"] - start
    return HttpResult(
        **common,
        elapsed=trio.current_time() - start,
        completed=len(latencies),
        failed=sum(failures.values()),
        failures=dict(sorted(failures.items())),
        connections=figures["connections"],
        bytes_received=figures["bytes"],
        requests_per_second=len(latencies) / span if span > 0 else 0.0,
        latency=percentiles(latencies),
    )
