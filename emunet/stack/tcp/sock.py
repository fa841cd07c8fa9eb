"""The TCP socket layer that user tasks call: ``TcpStream`` (a trio.abc.HalfCloseableStream) and
``TcpListener`` (a trio.abc.Listener[TcpStream]) — inet_stream_connect, tcp_sendmsg,
tcp_recvmsg, inet_csk_accept, tcp_shutdown and tcp_close, run in the caller's task.

Each call takes the socket lock as lock_sock does (``sock.owned``: segments arriving meanwhile go
to the backlog) and releases it with release_sock (which processes the backlog).  A reader that
finds nothing to read marks itself waiting (Linux's ``tp->ucopy.task``), so that with
tcp_low_latency 0 arriving data is prequeued for it and processed in its own task; it counts
TcpExtTCPPrequeued, TcpExtTCPDirectCopyFromPrequeue and TcpExtTCPDirectCopyFromBacklog like
tcp_recvmsg did before Linux 4.14.

Errors: connect raises OSError with ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH;
a broken connection raises :class:`TcpBrokenError`, which is both trio.BrokenResourceError
(for trio's stream contract) and OSError with the errno (ECONNRESET, EPIPE, ETIMEDOUT).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ...wire.addr import ip_from_str, ip_to_str
from .conn import TcpState
from .layer import Listener, TcpSock

if TYPE_CHECKING:
    from ..host import Host

DEFAULT_RECEIVE = 65536


class TcpBrokenError(trio.BrokenResourceError, OSError):
    """The connection is broken: a trio.BrokenResourceError that carries the errno."""

    def __init__(self, code: int, detail: str = "") -> None:
        OSError.__init__(self, code, f"{os.strerror(code)}{': ' + detail if detail else ''}")


def _oserror(code: int, detail: str = "") -> OSError:
    return OSError(code, f"{os.strerror(code)}{': ' + detail if detail else ''}")


def _now() -> float:
    return trio.current_time()


class _Waiter:
    """The socket's wait queue (sk_sleep): waiters re-check their condition when woken."""

    __slots__ = ("lot",)

    def __init__(self) -> None:
        self.lot = trio.lowlevel.ParkingLot()

    def wake(self) -> None:
        if self.lot:
            self.lot.unpark_all()

    async def wait(self) -> None:
        await self.lot.park()


class _OneAtATime:
    """One task at a time in a stream's send side or receive side (trio's stream contract:
    a second concurrent caller gets BusyResourceError)."""

    __slots__ = ("_busy", "_what")

    def __init__(self, what: str) -> None:
        self._busy = False
        self._what = what

    def __enter__(self) -> None:
        if self._busy:
            raise trio.BusyResourceError(f"another task is {self._what}")
        self._busy = True

    def __exit__(self, *exc: object) -> None:
        self._busy = False


@attrs.frozen
class SocketInfo:
    """One line of ``host.sockets()``, like ``ss -tni``."""

    state: str
    local: str
    remote: str
    recv_q: int
    send_q: int
    info: Any = None  # the connection's TcpInfo (cwnd, ssthresh, rtt, retransmits, ...)

    def __str__(self) -> str:
        return f"{self.state:<12} {self.recv_q:>7} {self.send_q:>7} {self.local:<21} {self.remote}"


class TcpStream(trio.abc.HalfCloseableStream):
    """One TCP connection, from ``host.tcp_connect`` or ``TcpListener.accept``."""

    def __init__(self, host: Host, sock: TcpSock) -> None:
        self._host = host
        self._sock = sock
        self._waiter = _Waiter()
        sock.waker = self._waiter.wake
        self._closed = False
        self._send_guard = _OneAtATime("sending on this stream")
        self._receive_guard = _OneAtATime("receiving on this stream")
        self._eof_sent = False
        self._holder: trio.lowlevel.Task | None = None  # the task inside lock_sock()
        self._unlocked = trio.lowlevel.ParkingLot()  # tasks waiting in lock_sock (sk_lock.wq)

    # -------------------------------------------------------------- addresses and options
    @property
    def local_address(self) -> tuple[str, int]:
        lip, lport, _, _ = self._sock.key
        return ip_to_str(lip), lport

    @property
    def remote_address(self) -> tuple[str, int]:
        _, _, rip, rport = self._sock.key
        return ip_to_str(rip), rport

    @property
    def state(self) -> TcpState:
        return self._sock.conn.state

    def info(self) -> Any:
        """A snapshot like ``ss -ti``: state, cwnd, ssthresh, rtt, retransmits, queues."""
        return self._sock.conn.info()

    @property
    def connection(self) -> Any:
        """The plain Connection (for tests and inspection)."""
        return self._sock.conn

    def setsockopt(self, name: str, value: Any) -> None:
        """Socket options: ``"nodelay"`` (TCP_NODELAY), ``"congestion"`` (TCP_CONGESTION)."""
        conn = self._sock.conn
        if name == "nodelay":
            conn.set_nodelay(bool(value), _now())
        elif name == "congestion":
            conn.set_congestion(str(value), _now())
        else:
            raise ValueError(f"unknown TCP socket option {name!r}")
        self._sock.layer.after(self._sock, _now())

    # -------------------------------------------------------------- lock_sock
    @contextlib.asynccontextmanager
    async def lock_sock(self) -> AsyncIterator[None]:
        """Hold the socket lock across awaits, as a process inside a long sendmsg would:
        segments arriving meanwhile go to the socket backlog, processed on exit."""
        self._check_open()
        me = trio.lowlevel.current_task()
        if self._holder is me:
            raise trio.BusyResourceError("this task already holds the socket lock")
        await self._lock_free()
        sock = self._sock
        self._holder = me
        try:
            with sock.locked():
                yield
        finally:
            self._holder = None
            self._unlocked.unpark_all()

    def _held_by_me(self) -> bool:
        """Whether the calling task is inside ``lock_sock()`` (its calls keep the lock)."""
        return self._holder is not None and self._holder is trio.lowlevel.current_task()

    async def _lock_free(self) -> None:
        """lock_sock's sleep: wait while another task holds the socket lock."""
        while self._holder is not None and self._holder is not trio.lowlevel.current_task():
            await self._unlocked.park()

    async def _wait_unlocked(self) -> None:
        """sk_wait_data / sk_stream_wait_memory: wait for a wake-up; a caller inside
        ``lock_sock()`` releases the lock meanwhile (the backlog is processed) and retakes it
        whatever happens.  The caller re-checks its condition after a release first."""
        if not self._held_by_me():
            await self._waiter.wait()
            return
        sock = self._sock
        sock.release(_now())
        try:
            await self._waiter.wait()
        finally:
            sock.lock()

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")
        if not self._host.running:
            raise trio.ClosedResourceError(
                f"the network of host {self._host.name} is not running "
                "(use the stream inside `async with net.running():`)"
            )

    def _trace(self, function: str, detail: str) -> None:
        """Record a socket call for the tracer (while tracing is on)."""
        host = self._host
        if host.tracer is not None:
            lip, lport, rip, rport = self._sock.key
            where = f"{ip_to_str(lip)}:{lport} > {ip_to_str(rip)}:{rport}"
            host.tracer.record(
                _now(), host.name, function, ("tcp", self._sock.key), f"{where} {detail}"
            )

    def _broken(self) -> TcpBrokenError:
        conn = self._sock.conn
        code = conn.error if conn.error is not None else errno.EPIPE
        return TcpBrokenError(code)

    # -------------------------------------------------------------- send
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with self._send_guard:
            self._check_open()
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._eof_sent:
                # Linux says EPIPE; trio's stream contract says ClosedResourceError
                raise trio.ClosedResourceError("send_all after send_eof")
            # no copy here: conn.send copies each chunk it takes, and the caller cannot touch
            # ``data`` until send_all returns
            view = memoryview(data).cast("B")
            sock = self._sock
            conn = sock.conn
            await self._lock_free()
            held = self._held_by_me()
            while True:
                if conn.error is not None or conn.state not in _SENDABLE:
                    raise self._broken()
                if not view:
                    break
                space = conn.send_space()
                if space > 0:
                    with contextlib.nullcontext() if held else sock.locked():
                        if self._host.tracer is not None:
                            self._trace("tcp_sendmsg", f"{min(space, len(view))} bytes")
                        n = conn.send(bytes(view[:space]), _now())
                        if held:
                            sock.layer.after(sock, _now())
                    view = view[n:]
                    continue
                if held:
                    # sk_stream_wait_memory releases the lock: the backlog (the ACKs that
                    # free the space) is processed first, so look again before sleeping
                    sock.release(_now())
                    sock.lock()
                    if conn.send_space() > 0 or conn.error is not None:
                        continue
                await self._wait_unlocked()
                self._check_open()
                await self._lock_free()
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        with self._send_guard:
            self._check_open()
            await trio.lowlevel.checkpoint_if_cancelled()
            conn = self._sock.conn
            while conn.send_space() <= 0 and conn.error is None and conn.state in _SENDABLE:
                await self._waiter.wait()
                self._check_open()
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def send_eof(self) -> None:
        with self._send_guard:
            self._check_open()
            await trio.lowlevel.checkpoint()
            if self._eof_sent:
                return
            self._eof_sent = True
            sock = self._sock
            if sock.conn.state in _SENDABLE:
                with sock.locked():
                    sock.conn.shutdown(_now())

    # -------------------------------------------------------------- receive
    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is None:
            max_bytes = DEFAULT_RECEIVE
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool):
            raise TypeError(f"max_bytes must be an int, got {type(max_bytes).__name__}")
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        with self._receive_guard:
            self._check_open()
            await trio.lowlevel.checkpoint_if_cancelled()
            await self._lock_free()
            data = self._recvmsg(max_bytes)
            while data is None:
                sock = self._sock
                sock.reader_waiting = True
                try:
                    await self._wait_unlocked()
                finally:
                    sock.reader_waiting = False
                self._check_open()
                await self._lock_free()
                data = self._recvmsg(max_bytes)
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data

    def _recvmsg(self, max_bytes: int) -> bytes | None:
        """One pass of tcp_recvmsg under the socket lock; None: nothing yet, wait."""
        sock = self._sock
        conn = sock.conn
        snmp = sock.layer.snmp
        now = _now()
        held = self._held_by_me()  # inside lock_sock(): release_sock + lock_sock, lock kept
        sock.lock()
        try:
            data = conn.receive(max_bytes, now)
            if not data and sock.prequeue:
                sock.process_prequeue(now)
                data = conn.receive(max_bytes, now)
                if data:
                    snmp["TcpExtTCPDirectCopyFromPrequeue"] += len(data)
        finally:
            backlog_done = sock.release(now)
            if held:
                sock.lock()
        if not data and backlog_done:
            data = conn.receive(max_bytes, _now())
            if data:
                if not sock.layer.sysctl["net.ipv4.tcp_low_latency"]:
                    # only a reader that is tp->ucopy.task (prequeue on) copies directly
                    snmp["TcpExtTCPDirectCopyFromBacklog"] += len(data)
                sock.layer.after(sock, now)
        if data:
            if self._host.tracer is not None:
                self._trace("tcp_recvmsg", f"{len(data)} bytes")
            return data
        if conn.eof:
            return b""
        if conn.error is not None:
            raise self._broken()
        if conn.state in _NO_MORE_DATA:
            return b""
        return None

    # -------------------------------------------------------------- close
    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            sock = self._sock
            if sock.owned:  # a lock_sock() holder releases it (and the backlog) itself
                sock.conn.close(_now())
            else:
                with sock.locked():
                    sock.conn.close(_now())
            self._waiter.wake()
        await trio.lowlevel.checkpoint()

    def abort(self) -> None:
        """Close with a reset now (SO_LINGER with zero timeout)."""
        self._closed = True
        sock = self._sock
        now = _now()
        sock.conn.abort(now)
        sock.layer.after(sock, now)
        self._waiter.wake()


_SENDABLE = frozenset({TcpState.ESTABLISHED, TcpState.CLOSE_WAIT})
_NO_MORE_DATA = frozenset(
    {TcpState.CLOSED, TcpState.CLOSING, TcpState.LAST_ACK, TcpState.TIME_WAIT}
)


class TcpListener(trio.abc.Listener[TcpStream]):
    """``host.tcp_listen(port, backlog=)``: accepts connections completed by the TCP layer."""

    def __init__(self, host: Host, listener: Listener) -> None:
        self._host = host
        self._listener = listener
        self._waiter = _Waiter()
        listener.waker = self._waiter.wake
        self._closed = False
        self._accept_guard = _OneAtATime("accepting on this listener")

    @property
    def port(self) -> int:
        return self._listener.port

    @property
    def backlog(self) -> int:
        return self._listener.backlog

    def queues(self) -> tuple[int, int]:
        """(SYN queue length, accept queue length), like ss's Recv-Q/Send-Q for a listener."""
        return len(self._listener.syn_queue), len(self._listener.accept_queue)

    async def accept(self) -> TcpStream:
        with self._accept_guard:
            if self._closed:
                raise trio.ClosedResourceError("the listener is closed")
            await trio.lowlevel.checkpoint_if_cancelled()
            queue = self._listener.accept_queue
            while not queue:
                await self._waiter.wait()
                if self._closed:
                    raise trio.ClosedResourceError("the listener is closed")
            child = queue.popleft()
            child.listener = None
            await trio.lowlevel.cancel_shielded_checkpoint()
            stream = TcpStream(self._host, child)
            if self._host.tracer is not None:
                stream._trace("inet_csk_accept", f"from the accept queue ({len(queue)} left)")
            return stream

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._host.tcp.unlisten(self._listener, _now())
            self._waiter.wake()
        await trio.lowlevel.checkpoint()


async def tcp_connect(
    host: Host, address: str, port: int, *, nodelay: bool = False, **options: Any
) -> TcpStream:
    """inet_stream_connect: SYN, wait for the handshake; OSError on failure."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 0x10000:
        raise ValueError(f"TCP port must be an int in 1..65535, got {port!r}")
    daddr = ip_from_str(address)
    layer = host.tcp
    now = _now()
    route = host.fib.lookup(daddr)
    if route is None:
        host.snmp["IpOutNoRoutes"] += 1
        raise _oserror(errno.ENETUNREACH, address)
    saddr = host.source_address(route)
    sport = layer.pick_port(saddr, (daddr, port))
    config = layer.config(nodelay=nodelay, **options)
    sock = layer.new_conn((saddr, sport), (daddr, port), config, now)
    layer.register(sock)
    stream = TcpStream(host, sock)
    if host.tracer is not None:
        stream._trace("inet_stream_connect", f"{config.congestion}")
    conn = sock.conn
    try:
        conn.open_active(now)
        layer.after(sock, now)
        while conn.state in (TcpState.SYN_SENT, TcpState.SYN_RECEIVED) and conn.error is None:
            await stream._waiter.wait()
    except BaseException:
        if not conn.finished:
            conn.abort(_now())
            layer.after(sock, _now())
        raise
    if conn.error is not None and not conn.established:
        raise _oserror(conn.error, f"{address}:{port}")
    await trio.lowlevel.checkpoint()
    return stream


def tcp_listen(host: Host, port: int, backlog: int = 128, **options: Any) -> TcpListener:
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 0x10000:
        raise ValueError(f"TCP port must be an int in 1..65535, got {port!r}")
    if not isinstance(backlog, int) or isinstance(backlog, bool):
        raise TypeError(f"backlog must be an int, got {backlog!r}")
    layer = host.tcp
    listener = layer.listen(port, backlog, layer.config(**options))
    return TcpListener(host, listener)


def sockets(host: Host) -> list[SocketInfo]:
    """Every TCP socket of the host, listeners first, like ``ss -tani``."""
    out = []
    for port, listener in sorted(host.tcp.listeners.items()):
        out.append(
            SocketInfo("LISTEN", f"0.0.0.0:{port}", "0.0.0.0:*", len(listener.accept_queue),
                       listener.backlog)
        )  # fmt: skip
    for key, sock in sorted(host.tcp.socks.items()):
        lip, lport, rip, rport = key
        info = sock.conn.info()
        out.append(
            SocketInfo(
                str(sock.conn.state),
                f"{ip_to_str(lip)}:{lport}",
                f"{ip_to_str(rip)}:{rport}",
                getattr(info, "recv_q", 0),
                getattr(info, "send_q", 0),
                info,
            )
        )
    return out
