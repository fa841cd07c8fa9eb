"""UDP: udp_rcv and udp_sendmsg (net/ipv4/udp.c).  Plain class, no trio.

Receive checks in Linux's order: a datagram shorter than its header or its length field is an
error (UdpInErrors), a bad checksum counts UdpInCsumErrors and UdpInErrors, no socket on the port
counts UdpNoPorts and draws ICMP port unreachable, a socket whose receive buffer is full counts
UdpRcvbufErrors and UdpInErrors.  UdpInDatagrams is counted when the user reads the datagram
(udp_recvmsg), as Linux does.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Protocol

import attrs

from ..wire.checksum import transport_checksum_ok
from ..wire.errors import MalformedPacket
from ..wire.icmp import ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH, Icmp
from ..wire.ipv4 import IPPROTO_UDP, Ipv4
from ..wire.udp import Udp

if TYPE_CHECKING:
    from .host import Host
    from .skb import SkBuff

UDP_MAX_PAYLOAD = 65507  # 65535 - 20 (IPv4 header) - 8 (UDP header)
SKB_OVERHEAD = 768  # accounted per queued datagram on top of its length (skb truesize)
EPHEMERAL_LOW, EPHEMERAL_HIGH = 32768, 60999  # net.ipv4.ip_local_port_range


def truesize(length: int) -> int:
    return length + SKB_OVERHEAD


@attrs.frozen
class SockError:
    """An ICMP error queued for a socket with ``recverr`` (IP_RECVERR's sock_extended_err)."""

    offender: int  # address that sent the ICMP error
    type: int
    code: int
    info: int
    dst: int  # destination of the datagram that drew the error
    dst_port: int
    time: float


class Receiver(Protocol):
    """What UdpLayer needs of a socket: queue a datagram, queue an error."""

    port: int
    rcvbuf: int
    rmem: int
    recverr: bool

    def enqueue(self, data: bytes, addr: tuple[int, int], size: int) -> None: ...

    def enqueue_error(self, err: SockError) -> None: ...


class UdpLayer:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.snmp = host.snmp
        self.sockets: dict[int, Receiver] = {}
        self._next_port = EPHEMERAL_LOW + host.rng.randrange(EPHEMERAL_HIGH - EPHEMERAL_LOW + 1)

    # ------------------------------------------------------------------ ports
    def bind(self, sock: Receiver, port: int) -> int:
        if port == 0:
            span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
            for _ in range(span):
                candidate = self._next_port
                self._next_port = EPHEMERAL_LOW + (candidate + 1 - EPHEMERAL_LOW) % span
                if candidate not in self.sockets:
                    port = candidate
                    break
            else:
                raise OSError(errno.EADDRINUSE, "no free ephemeral UDP port")
        elif not 0 < port < 0x10000:
            raise ValueError(f"UDP port {port} is not in 1..65535")
        elif port in self.sockets:
            raise OSError(errno.EADDRINUSE, f"{os.strerror(errno.EADDRINUSE)}: UDP port {port}")
        self.sockets[port] = sock
        return port

    def unbind(self, port: int) -> None:
        self.sockets.pop(port, None)

    # ------------------------------------------------------------------ receive
    def rcv(self, skb: SkBuff, now: float) -> None:
        snmp = self.snmp
        seg = skb.payload
        ip = skb.ip
        try:
            udp, data = Udp.parse(seg)
        except MalformedPacket:
            snmp["UdpInErrors"] += 1
            return
        if udp.length < len(seg):
            seg = seg[: udp.length]
        if not transport_checksum_ok(ip.src, ip.dst, IPPROTO_UDP, seg):
            snmp["UdpInCsumErrors"] += 1
            snmp["UdpInErrors"] += 1
            return
        host = self.host
        sock = self.sockets.get(udp.dst_port)
        if sock is None:
            snmp["UdpNoPorts"] += 1
            skb.note(now, host.name, "udp_rcv", f"port {udp.dst_port} closed")
            if ip.dst in host.local_addrs:
                host.icmp.send_error(skb, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, now)
            return
        size = truesize(len(data))
        if sock.rmem + size > sock.rcvbuf:
            snmp["UdpRcvbufErrors"] += 1
            snmp["UdpInErrors"] += 1
            skb.note(now, host.name, "udp_rcv", f"port {udp.dst_port} receive buffer full")
            return
        skb.note(now, host.name, "udp_rcv", f"to socket port {udp.dst_port}")
        sock.enqueue(data, (ip.src, udp.src_port), size)

    def err(self, offender: int, icmp: Icmp, inner: Ipv4, rest: bytes, now: float) -> None:
        """udp_err: an ICMP error about a datagram we sent."""
        sport = (rest[0] << 8) | rest[1]
        dport = (rest[2] << 8) | rest[3]
        sock = self.sockets.get(sport)
        if sock is None:
            return
        if icmp.type == ICMP_DEST_UNREACH and icmp.code == ICMP_FRAG_NEEDED:
            self.host.ip.update_pmtu(inner.dst, icmp.next_hop_mtu, now)  # ipv4_sk_update_pmtu
        if not sock.recverr:
            return
        sock.enqueue_error(
            SockError(offender, icmp.type, icmp.code, icmp.rest, inner.dst, dport, now)
        )

    # ------------------------------------------------------------------ send
    def sendmsg(
        self,
        sport: int,
        data: bytes,
        dst: int,
        dport: int,
        now: float,
        *,
        ttl: int | None = None,
        df: bool = False,
    ) -> None:
        """udp_sendmsg: raises OSError EMSGSIZE, ENETUNREACH as Linux's sendto does."""
        if len(data) > UDP_MAX_PAYLOAD:
            raise OSError(
                errno.EMSGSIZE,
                f"{os.strerror(errno.EMSGSIZE)}: {len(data)} bytes exceed {UDP_MAX_PAYLOAD}",
            )
        if not 0 < dport < 0x10000:
            raise ValueError(f"UDP port {dport} is not in 1..65535")
        host = self.host
        route = host.ip.route_output(dst)
        if route is None:
            self.snmp["IpOutNoRoutes"] += 1
            raise OSError(errno.ENETUNREACH, f"{os.strerror(errno.ENETUNREACH)}: {dst:#x}")
        src = host.source_address(route)
        seg = Udp(sport, dport).build(data, src, dst)
        host.ip.output(dst, IPPROTO_UDP, seg, now, src=src, ttl=ttl, df=df)
        self.snmp["UdpOutDatagrams"] += 1
