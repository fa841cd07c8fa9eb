"""The socket layer that user tasks call: UDP sockets (and, later, TCP streams).

Calls run in the user's task, take the socket lock as lock_sock does, and go down the stack
synchronously (sock_sendmsg -> udp_sendmsg -> ip_output -> neighbour -> qdisc).  Receives wait
on the socket's queue; the UDP task fills it.
"""

from __future__ import annotations

import errno
import math
import os
from collections import deque
from typing import TYPE_CHECKING

import trio

from ..wire.addr import ip_from_str, ip_to_str
from .udp import SockError

if TYPE_CHECKING:
    from .host import Host


def _resolve(addr: tuple[str, int]) -> tuple[int, int]:
    if not (isinstance(addr, tuple) and len(addr) == 2):
        raise TypeError(f"address must be a (host, port) tuple, got {addr!r}")
    host, port = addr
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"port must be an int, got {port!r}")
    return ip_from_str(host), port


class UdpSocket:
    """``host.udp_socket(port)``: sendto/recvfrom over the emulated network.

    ``recverr=True`` queues ICMP errors about datagrams this socket sent (like IP_RECVERR);
    read them with :meth:`recv_error`.  ``df=True`` sets Don't Fragment (IP_PMTUDISC_DO): a
    datagram larger than the path MTU fails with EMSGSIZE instead of being fragmented.
    """

    def __init__(
        self, host: Host, port: int = 0, *, recverr: bool = False, df: bool = False
    ) -> None:
        self._host = host
        self.rcvbuf = int(host.sysctl["net.core.rmem_default"])
        self.rmem = 0
        self.recverr = recverr
        self.df = df
        self.ttl: int | None = None
        self._queue: deque[tuple[bytes, tuple[int, int], int]] = deque()
        self._errors: deque[SockError] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self._closed = False
        self.port = host.udp.bind(self, port)

    # -- called by the UDP layer (softirq side)
    def enqueue(self, data: bytes, addr: tuple[int, int], size: int) -> None:
        self._queue.append((data, addr, size))
        self.rmem += size
        self._lot.unpark_all()

    def enqueue_error(self, err: SockError) -> None:
        self._errors.append(err)
        self._lot.unpark_all()

    # -- user side
    @property
    def address(self) -> tuple[str, int]:
        return ("0.0.0.0", self.port)

    def _check_open(self) -> None:
        if self._closed:
            raise OSError(errno.EBADF, f"{os.strerror(errno.EBADF)}: socket is closed")

    async def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        self._check_open()
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        dst, port = _resolve(addr)
        host = self._host
        await trio.lowlevel.checkpoint()
        if host.tracer is not None:
            host.tracer.record(
                host.now(),
                host.name,
                "udp_sendmsg",
                ("udp", self.port, dst, port),
                f"port {self.port} > {ip_to_str(dst)}:{port} len {len(data)}",
            )
        host.udp.sendmsg(self.port, bytes(data), dst, port, host.now(), ttl=self.ttl, df=self.df)
        return len(data)

    async def recvfrom(self) -> tuple[bytes, tuple[str, int]]:
        """The next datagram and its sender, waiting for one."""
        self._check_open()
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._queue:
            await self._lot.park()
            self._check_open()
        data, (src, sport), size = self._queue.popleft()
        await trio.lowlevel.cancel_shielded_checkpoint()
        self.rmem -= size
        host = self._host
        host.snmp["UdpInDatagrams"] += 1
        if host.tracer is not None:
            host.tracer.record(
                host.now(),
                host.name,
                "udp_recvmsg",
                ("udp", sport, src, self.port),
                f"port {self.port} < {ip_to_str(src)}:{sport} len {len(data)}",
            )
        return data, (ip_to_str(src), sport)

    async def recv_error(self, deadline: float = math.inf) -> SockError | None:
        """The next queued ICMP error (needs ``recverr``), or None at ``deadline``."""
        self._check_open()
        with trio.move_on_at(deadline):
            while not self._errors:
                await self._lot.park()
            return self._errors.popleft()
        return None

    def pending(self) -> int:
        """Datagrams waiting to be read."""
        return len(self._queue)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._host.udp.unbind(self.port)
            self._lot.unpark_all()

    def __enter__(self) -> UdpSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
