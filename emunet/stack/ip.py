"""IPv4: ip_rcv, ip_route_input, ip_forward, ip_local_deliver and the output path down to the
neighbour layer (net/ipv4/ip_input.c, ip_forward.c, ip_output.c, route.c).

Plain class, no trio: the host's IP task calls :meth:`Ipv4Layer.rcv` for every packet its devices
hand up, and local senders (socket calls in the user's task) call :meth:`Ipv4Layer.output`
synchronously, as the kernel's send path runs in the sending process's context.  Every drop is
counted under its Linux name.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

import attrs

from ..wire.checksum import internet_checksum
from ..wire.errors import MalformedPacket
from ..wire.icmp import (
    ICMP_DEST_UNREACH,
    ICMP_EXC_FRAGTIME,
    ICMP_EXC_TTL,
    ICMP_FRAG_NEEDED,
    ICMP_NET_UNREACH,
    ICMP_PARAMETERPROB,
    ICMP_PROT_UNREACH,
    ICMP_TIME_EXCEEDED,
)
from ..wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Ipv4
from .frag import Reassembler, ip_fragment
from .ipopt import compile_options
from .route import Route
from .skb import SkBuff

if TYPE_CHECKING:
    from .host import Host


def _oserror(code: int, what: str) -> OSError:
    return OSError(code, f"{os.strerror(code)}: {what}")


@attrs.define
class PmtuEntry:
    mtu: int
    expires: float
    locked: bool = False


class Ipv4Layer:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.snmp = host.snmp
        self.sysctl = host.sysctl
        self.reasm = Reassembler(
            host.snmp,
            high_thresh=int(host.sysctl["net.ipv4.ipfrag_high_thresh"]),
            timeout=float(host.sysctl["net.ipv4.ipfrag_time"]),
        )
        self._ident = host.rng.randrange(0x10000)
        self.pmtu: dict[int, PmtuEntry] = {}

    # ------------------------------------------------------------------ receive
    def rcv(self, dev, data: bytes, now: float) -> None:
        """ip_rcv + ip_rcv_finish: header checks in Linux's order, then route input."""
        snmp = self.snmp
        snmp["IpInReceives"] += 1
        n = len(data)
        if n < 20:
            snmp["IpInHdrErrors"] += 1
            return
        b0 = data[0]
        hlen = (b0 & 0x0F) << 2
        if b0 >> 4 != 4 or hlen < 20 or n < hlen:
            snmp["IpInHdrErrors"] += 1
            return
        if internet_checksum(data[:hlen]) != 0:
            snmp["IpInCsumErrors"] += 1
            snmp["IpInHdrErrors"] += 1
            return
        tot = (data[2] << 8) | data[3]
        if n < tot:
            snmp["IpInTruncatedPkts"] += 1
            return
        if tot < hlen:
            snmp["IpInHdrErrors"] += 1
            return
        if n > tot:
            data = data[:tot]  # trailing link padding is trimmed
        try:
            ip, payload = Ipv4.parse(data)
        except MalformedPacket:  # pragma: no cover - the checks above cover parse's
            snmp["IpInHdrErrors"] += 1
            return
        snmp["IpExtInOctets"] += tot
        host = self.host
        skb = SkBuff(ip, payload, dev, data, trace=host.tracer)
        if host.tracer is not None:
            skb.note(now, host.name, "ip_rcv", f"{_addr(ip.src)} > {_addr(ip.dst)} len {tot}")
        if ip.options and not self._rcv_options(skb, now):
            return
        self.route_input(skb, now)

    def _rcv_options(self, skb: SkBuff, now: float) -> bool:
        """ip_rcv_options: malformed options are dropped (IpInHdrErrors, and a Parameter
        Problem pointing at the bad byte); a source route is refused unless both
        ``conf.all.accept_source_route`` and the input interface's allow it (Linux counts
        no SNMP counter for that drop: it is a martian, logged only with log_martians)."""
        result = compile_options(skb.ip.options)
        if result.error is not None:
            self.snmp["IpInHdrErrors"] += 1
            skb.note(now, self.host.name, "ip_options_compile", f"bad option at {result.error}")
            self.host.icmp.send_error(skb, ICMP_PARAMETERPROB, 0, result.error << 24, now)
            return False
        if result.srr:
            s = self.host.sysctl
            dev = skb.dev
            if not (
                s["net.ipv4.conf.all.accept_source_route"]
                and s[f"net.ipv4.conf.{dev.name}.accept_source_route"]
            ):
                skb.note(now, self.host.name, "ip_rcv_options", "source route refused")
                return False
        return True

    def route_input(self, skb: SkBuff, now: float) -> None:
        """ip_route_input: local delivery, or forwarding when the input device forwards."""
        host = self.host
        dst = skb.ip.dst
        if dst in host.local_addrs or dst in host.broadcast_addrs:
            self.local_deliver(skb, now)
            return
        dev = skb.dev
        if not dev.forwarding:
            self.snmp["IpInAddrErrors"] += 1
            return
        route = host.fib.lookup(dst)
        if route is None:
            self.snmp["IpInNoRoutes"] += 1
            host.icmp.send_error(skb, ICMP_DEST_UNREACH, ICMP_NET_UNREACH, 0, now)
            return
        self.forward(skb, route, now)

    def forward(self, skb: SkBuff, route: Route, now: float) -> None:
        """ip_forward and ip_forward_finish, in the kernel's order."""
        ip = skb.ip
        snmp = self.snmp
        if ip.ttl <= 1:
            snmp["IpInHdrErrors"] += 1
            skb.note(now, self.host.name, "ip_forward", "ttl exceeded")
            self.host.icmp.send_error(skb, ICMP_TIME_EXCEEDED, ICMP_EXC_TTL, 0, now)
            return
        mtu = self.route_mtu(route, ip.dst, now)
        length = ip.header_len + len(skb.payload)
        if length > mtu and ip.df:
            snmp["IpFragFails"] += 1
            skb.note(now, self.host.name, "ip_forward", f"frag needed, mtu {mtu}")
            self.host.icmp.send_error(skb, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu, now)
            return
        # ip_decrease_ttl: TTL - 1 with an incremental checksum update (RFC 1624)
        raw = skb.raw
        if raw is not None:
            buf = bytearray(raw)
            buf[8] -= 1
            csum = ((raw[10] << 8) | raw[11]) + 0x0100
            csum = (csum & 0xFFFF) + (csum >> 16)
            buf[10] = csum >> 8
            buf[11] = csum & 0xFF
            skb.raw = bytes(buf)
        skb.ip = ip.with_ttl(ip.ttl - 1)
        snmp["IpForwDatagrams"] += 1
        skb.note(now, self.host.name, "ip_forward", f"via {route.dev.name} ttl {ip.ttl - 1}")
        self.finish_output(skb, route, route.nexthop(ip.dst), mtu, now)

    def local_deliver(self, skb: SkBuff, now: float) -> None:
        """ip_local_deliver: reassembly (ip_defrag), then the protocol handler."""
        host = self.host
        ip = skb.ip
        if ip.mf or ip.frag_offset:
            skb.note(now, host.name, "ip_defrag", f"id {ip.id} offset {ip.frag_offset * 8}")
            done = self.reasm.add(ip, skb.payload, now)
            host.ip_wakeup_at(self.reasm.poll_at())
            if done is None:
                return
            ip, payload = done
            skb.ip, skb.payload, skb.raw = ip, payload, None
        proto = ip.proto
        skb.note(now, host.name, "ip_local_deliver", f"proto {proto}")
        if proto == IPPROTO_TCP:
            self.snmp["IpInDelivers"] += 1
            host.tcp_rcv(skb)
        elif proto == IPPROTO_UDP:
            self.snmp["IpInDelivers"] += 1
            host.udp_rcv(skb)
        elif proto == IPPROTO_ICMP:
            self.snmp["IpInDelivers"] += 1
            host.icmp.rcv(skb, now)
        else:
            self.snmp["IpInUnknownProtos"] += 1
            host.icmp.send_error(skb, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH, 0, now)

    def poll_at(self) -> float | None:
        return self.reasm.poll_at()

    def run_timers(self, now: float) -> None:
        """ip_expire: reassembly queues whose 30 s are up."""
        for expired in self.reasm.expire(now):
            if expired.first is not None:
                first_ip, first_payload = expired.first
                skb = SkBuff(
                    first_ip,
                    first_payload,
                    None,
                    first_ip.build(first_payload),
                    trace=self.host.tracer,
                )
                self.host.icmp.send_error(skb, ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME, 0, now)

    # ------------------------------------------------------------------ output
    def next_id(self) -> int:
        self._ident = (self._ident + 1) & 0xFFFF
        return self._ident

    def route_output(self, dst: int) -> Route | None:
        """ip_route_output: our own addresses go through ``lo`` (the local table: ``ip route
        get`` shows ``local ... dev lo``); anything else by longest-prefix match."""
        host = self.host
        if dst in host.local_addrs:
            return Route(dst, 32, host.lo, None, "local", 0, dst)
        return host.fib.lookup(dst)

    def route_mtu(self, route: Route, dst: int, now: float) -> int:
        """ipv4_mtu: the learned path MTU while it lasts, else the device's."""
        entry = self._pmtu_entry(dst, now)
        if entry is not None and (entry.locked or entry.mtu < route.dev.mtu):
            return entry.mtu
        return route.dev.mtu

    def pmtu_locked(self, dst: int, now: float) -> bool:
        """ip_mtu_locked: a frag-needed below route.min_pmtu locked the path MTU, and then
        TCP sends without DF (ip_dont_fragment) so that routers fragment."""
        entry = self._pmtu_entry(dst, now)
        return entry is not None and entry.locked

    def _pmtu_entry(self, dst: int, now: float) -> PmtuEntry | None:
        entry = self.pmtu.get(dst)
        if entry is not None and entry.expires <= now:
            del self.pmtu[dst]
            return None
        return entry

    def update_pmtu(self, dst: int, mtu: int, now: float) -> None:
        """__ip_rt_update_pmtu: a frag-needed said the path to ``dst`` carries only ``mtu``.

        Never raised; below ``net.ipv4.route.min_pmtu`` the MTU becomes min(current,
        min_pmtu) and is locked, as Linux does against forged tiny MTUs."""
        route = self.host.fib.lookup(dst)
        if route is None:
            return
        old = self.route_mtu(route, dst, now)
        if old < mtu:
            return
        locked = False
        min_pmtu = int(self.sysctl["net.ipv4.route.min_pmtu"])
        if mtu < min_pmtu:
            locked = True
            mtu = min(old, min_pmtu)
        if mtu >= route.dev.mtu and not locked:
            return
        expires = now + int(self.sysctl["net.ipv4.route.mtu_expires"])
        self.pmtu[dst] = PmtuEntry(mtu, expires, locked)

    def output(
        self,
        dst: int,
        proto: int,
        payload: bytes,
        now: float,
        *,
        src: int | None = None,
        ttl: int | None = None,
        tos: int = 0,
        df: bool = False,
    ) -> bool:
        """ip_queue_xmit / ip_push_pending_frames for a locally generated datagram.

        Returns False when the device queue refused it (NET_XMIT_DROP).  Raises OSError:
        ENETUNREACH without a route, EMSGSIZE when DF is set and the datagram exceeds the path
        MTU (the caller's socket reports it to the user).
        """
        host = self.host
        route = self.route_output(dst)
        if route is None:
            self.snmp["IpOutNoRoutes"] += 1
            raise _oserror(errno.ENETUNREACH, f"no route to {_addr(dst)}")
        if src is None:
            src = host.source_address(route)
        if ttl is None:
            ttl = int(self.sysctl["net.ipv4.ip_default_ttl"])
        ip = Ipv4(src, dst, proto, ttl=ttl, tos=tos, id=self.next_id(), df=df)
        mtu = self.route_mtu(route, dst, now)
        if df and 20 + len(payload) > mtu:
            # ip_append_data refuses it before a packet exists: EMSGSIZE, no counter
            raise _oserror(errno.EMSGSIZE, f"{20 + len(payload)} bytes exceed the path MTU {mtu}")
        self.snmp["IpOutRequests"] += 1  # once the packet exists, as __ip_local_out counts it
        skb = SkBuff(ip, payload, None, None, trace=host.tracer)
        skb.note(
            now, host.name, "ip_queue_xmit", f"{_addr(src)} > {_addr(dst)} via {route.dev.name}"
        )
        return self.finish_output(skb, route, route.nexthop(dst), mtu, now)

    def finish_output(self, skb: SkBuff, route: Route, nexthop: int, mtu: int, now: float) -> bool:
        """ip_output / ip_finish_output: fragment when larger than the MTU, then the neighbour."""
        ip = skb.ip
        dev = route.dev
        length = ip.header_len + len(skb.payload)
        skb.note(now, self.host.name, "ip_finish_output", f"len {length} mtu {mtu} dev {dev.name}")
        if length <= mtu:
            raw = skb.raw if skb.raw is not None else ip.build(skb.payload)
            self.snmp["IpOutTransmits"] += 1
            self.snmp["IpExtOutOctets"] += length
            return dev.neigh_output(nexthop, raw, now, skb.trace)
        try:
            pieces = ip_fragment(ip, skb.payload, mtu)
        except ValueError:
            self.snmp["IpFragFails"] += 1
            return False
        skb.note(now, self.host.name, "ip_fragment", f"{len(pieces)} fragments for mtu {mtu}")
        self.snmp["IpFragOKs"] += 1
        ok = True
        for frag_ip, frag_payload in pieces:
            self.snmp["IpFragCreates"] += 1
            self.snmp["IpOutTransmits"] += 1
            raw = frag_ip.build(frag_payload)
            self.snmp["IpExtOutOctets"] += len(raw)
            ok = dev.neigh_output(nexthop, raw, now, skb.trace) and ok
        return ok


def _addr(a: int) -> str:
    return f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"
