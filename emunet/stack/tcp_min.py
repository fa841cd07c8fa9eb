"""The TCP layer until connections exist: tcp_v4_rcv for a host with no TCP sockets.

Every segment is checked (TcpInCsumErrors / TcpInErrs), counted (TcpInSegs), and answered with a
reset as tcp_v4_send_reset does for a closed port (RFC 9293 section 3.10.7.1): to a segment with
ACK, RST with seq = SEG.ACK; otherwise RST+ACK with seq 0 and ack = SEG.SEQ + SEG.LEN (SYN and
FIN count one).  A reset is never answered.  Plain class, no trio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..wire.checksum import transport_checksum_ok
from ..wire.errors import MalformedPacket
from ..wire.ipv4 import IPPROTO_TCP, Ipv4
from ..wire.tcp import ACK, FIN, RST, SYN, Tcp

if TYPE_CHECKING:
    from .host import Host
    from .skb import SkBuff


class TcpLayer:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.snmp = host.snmp

    def rcv(self, skb: SkBuff, now: float) -> None:
        snmp = self.snmp
        ip = skb.ip
        seg = skb.payload
        try:
            tcp, data = Tcp.parse(seg)
        except MalformedPacket:
            snmp["TcpInErrs"] += 1
            return
        if not transport_checksum_ok(ip.src, ip.dst, IPPROTO_TCP, seg):
            snmp["TcpInCsumErrors"] += 1
            snmp["TcpInErrs"] += 1
            return
        snmp["TcpInSegs"] += 1
        skb.note(now, self.host.name, "tcp_v4_rcv", f"port {tcp.dst_port}: no socket, reset")
        if ip.dst not in self.host.local_addrs:
            return  # never reset a broadcast
        self.send_reset(ip, tcp, len(data), now)

    def send_reset(self, ip: Ipv4, tcp: Tcp, length: int, now: float) -> None:
        if tcp.flags & RST:
            return
        if tcp.flags & ACK:
            rst = Tcp(tcp.dst_port, tcp.src_port, tcp.ack, 0, RST, 0)
        else:
            seg_len = length + (1 if tcp.flags & SYN else 0) + (1 if tcp.flags & FIN else 0)
            rst = Tcp(tcp.dst_port, tcp.src_port, 0, (tcp.seq + seg_len) & 0xFFFFFFFF, RST | ACK, 0)
        try:
            self.host.ip.output(
                ip.src, IPPROTO_TCP, rst.build(b"", ip.dst, ip.src), now, src=ip.dst
            )
        except OSError:
            return
        self.snmp["TcpOutSegs"] += 1
        self.snmp["TcpOutRsts"] += 1

    def poll_at(self) -> float | None:
        return None

    def run_timers(self, now: float) -> None:
        pass

    def err(self, offender: int, icmp: Any, inner: Ipv4, rest: bytes, now: float) -> None:
        """tcp_v4_err: no sockets, nothing to tell."""
