"""The ``storm`` experiment: ``connections`` TCP connections from one host, at most
``concurrency`` at a time, against one listener (``listen(port, backlog)``) on another host
whose accept loop spends ``accept_delay`` after each accept, as a busy server does.

Each connection: connect, write ``bytes``, shut down its sending side, read until the server
closes, close; its completion time runs from the start of connect to that close.  The server
reads each accepted connection to the end and closes it.  The figures: completions and
failures (by errno: ECONNRESET when tcp_abort_on_overflow resets, ETIMEDOUT when the SYNs run
out, ...), connect and completion time percentiles (nearest rank), and the counters that tell
what the listen queues did, read from ``nstat`` on both hosts before and after (deltas):
TcpExtListenOverflows, TcpExtListenDrops, SYN cookies, TcpExtEmbryonicRsts on the server;
SYN retransmissions (TcpRetransSegs) and failed attempts on the client.  Succeeds when at least
one connection completed: failures are what the experiment measures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import attrs
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
    from ..topology.schema import StormExperiment

__all__ = ["CLIENT_COUNTERS", "SERVER_COUNTERS", "StormResult", "run_storm"]

SERVER_COUNTERS = (
    "TcpPassiveOpens",
    "TcpExtListenOverflows",
    "TcpExtListenDrops",
    "TcpExtEmbryonicRsts",
    "TcpExtSyncookiesSent",
    "TcpExtSyncookiesRecv",
    "TcpExtSyncookiesFailed",
    "TcpOutRsts",
)
CLIENT_COUNTERS = (
    "TcpActiveOpens",
    "TcpAttemptFails",
    "TcpEstabResets",
    "TcpRetransSegs",
    "TcpExtTCPTimeouts",
)


@attrs.frozen(kw_only=True)
class StormResult(ExperimentResult):
    """``completed`` and ``failed`` connections, ``failures`` by errno name, ``connect`` and
    ``completion`` time percentiles (seconds), and the counter deltas of both hosts."""

    type: ClassVar[str] = "storm"
    port: int = 5001
    connections: int = 0
    concurrency: int = 0
    backlog: int = 0
    accept_delay: float = 0.0
    completed: int = 0
    failed: int = 0
    failures: dict[str, int] = attrs.Factory(dict)
    connect: Percentiles = attrs.Factory(Percentiles)
    completion: Percentiles = attrs.Factory(Percentiles)
    server_counters: dict[str, int] = attrs.Factory(dict)
    client_counters: dict[str, int] = attrs.Factory(dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.completed > 0

    def __str__(self) -> str:
        lines = [
            f"storm: {self.connections} connections to {self.address}:{self.port}, "
            f"{self.concurrency} at a time, listen backlog {self.backlog}, "
            f"accept delay {self.accept_delay * 1000:.3f} ms"
        ]
        if self.error is not None:
            lines.append(f"storm: {self.error}")
        failures = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items()))
        lines.append(
            f"{self.completed} completed, {self.failed} failed"
            + (f" ({failures})" if failures else "")
            + f", time {self.elapsed:.3f} s"
        )
        lines.append(f"connect     {self.connect.row()} ms")
        lines.append(f"completion  {self.completion.row()} ms")
        for host, counters in ((self.dst, self.server_counters), (self.src, self.client_counters)):
            shown = ", ".join(f"{k} {v}" for k, v in counters.items())
            lines.append(f"nstat {host}: {shown}")
        return "\n".join(lines)


def _delta(before: dict[str, int], after: dict[str, int], names: tuple[str, ...]) -> dict[str, int]:
    return {name: after.get(name, 0) - before.get(name, 0) for name in names}


async def run_storm(net: Network, spec: StormExperiment) -> StormResult:
    client = experiment_host(net, spec.src)
    server = experiment_host(net, spec.dst, "to")
    address = node_address(net, spec.dst)
    start = trio.current_time()
    common: dict[str, Any] = {
        "name": spec.name or "storm",
        "src": spec.src,
        "dst": spec.dst,
        "address": address,
        "start": start,
        "port": spec.port,
        "connections": spec.connections,
        "concurrency": spec.concurrency,
        "backlog": spec.backlog,
        "accept_delay": spec.accept_delay,
    }
    server_before = server.nstat()
    client_before = client.nstat()
    try:
        listener = await server.tcp_listen(spec.port, backlog=spec.backlog)
    except OSError as exc:
        return StormResult(**common, error=error_text(exc))
    payload = bytes(spec.bytes)
    connect_times: list[float] = []
    completion_times: list[float] = []
    failures: dict[str, int] = {}
    next_index = 0

    async def handle(peer: TcpStream) -> None:
        try:
            while await peer.receive_some():
                pass
        except (OSError, trio.BrokenResourceError):
            pass
        finally:
            await peer.aclose()

    async def serve(nursery: trio.Nursery) -> None:
        while True:
            peer = await listener.accept()
            nursery.start_soon(handle, peer)
            if spec.accept_delay:
                await trio.sleep(spec.accept_delay)

    async def one() -> None:
        began = trio.current_time()
        stream = None
        try:
            stream = await client.tcp_connect(address, spec.port)
            connect_times.append(trio.current_time() - began)
            if payload:
                await stream.send_all(payload)
            await stream.send_eof()
            while await stream.receive_some():
                pass
            await stream.aclose()
        except (OSError, trio.BrokenResourceError) as exc:
            name = errno_name(getattr(exc, "errno", None))
            failures[name] = failures.get(name, 0) + 1
            if stream is not None:
                stream.abort()
            return
        completion_times.append(trio.current_time() - began)

    async def worker() -> None:
        nonlocal next_index
        while next_index < spec.connections:
            next_index += 1
            await one()

    try:
        async with trio.open_nursery() as outer:
            outer.start_soon(serve, outer)
            async with trio.open_nursery() as workers:
                for _ in range(min(spec.concurrency, spec.connections)):
                    workers.start_soon(worker)
            outer.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await listener.aclose()
    return StormResult(
        **common,
        elapsed=trio.current_time() - start,
        completed=len(completion_times),
        failed=sum(failures.values()),
        failures=dict(sorted(failures.items())),
        connect=percentiles(connect_times),
        completion=percentiles(completion_times),
        server_counters=_delta(server_before, server.nstat(), SERVER_COUNTERS),
        client_counters=_delta(client_before, client.nstat(), CLIENT_COUNTERS),
    )
