"""ICMP: icmp_rcv (echo, errors handed to the transports) and icmp_send with Linux's rules and
rate limits (net/ipv4/icmp.c, net/ipv4/inetpeer.c).  Plain class, no trio.

icmp_send never answers an ICMP error, a non-first fragment, or a packet to or from a broadcast or
multicast address.  Types in ``icmp_ratemask`` (3, 4, 11, 12) are limited per peer by a token
bucket of ``icmp_ratelimit`` ms with a burst of 6 (inet_peer_xrlim_allow), and globally by
``icmp_msgs_per_sec`` with ``icmp_msgs_burst``; frag-needed is exempt from both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire.errors import MalformedPacket
from ..wire.icmp import (
    ICMP_DEST_UNREACH,
    ICMP_ECHO,
    ICMP_ECHOREPLY,
    ICMP_FRAG_NEEDED,
    ICMP_PARAMETERPROB,
    ICMP_QUOTE_LIMIT,
    ICMP_TIME_EXCEEDED,
    NR_ICMP_TYPES,
    Icmp,
    icmp_type_is_error,
    parse_quote,
    quote,
)
from ..wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP

if TYPE_CHECKING:
    from .host import Host
    from .skb import SkBuff

XRLIM_BURST_FACTOR = 6
PEER_MAX_GC = 32  # net/ipv4/inetpeer.c: entries one inet_peer_gc may free
IPTOS_PREC_INTERNETCONTROL = 0xC0
# The errors this stack sends and receives and their counters (icmp_pointers' mib fields).
_OUT_ERROR_COUNTERS = {
    ICMP_DEST_UNREACH: "IcmpOutDestUnreachs",
    ICMP_TIME_EXCEEDED: "IcmpOutTimeExcds",
    ICMP_PARAMETERPROB: "IcmpOutParmProbs",
}
_IN_ERROR_COUNTERS = {
    ICMP_DEST_UNREACH: "IcmpInDestUnreachs",
    ICMP_TIME_EXCEEDED: "IcmpInTimeExcds",
    ICMP_PARAMETERPROB: "IcmpInParmProbs",
}


def _bad_source(addr: int) -> bool:
    """Zero, limited broadcast, multicast, loopback: never the target of an error."""
    return addr == 0 or addr == 0xFFFFFFFF or (addr >> 28) == 0xE or (addr >> 24) == 127


class IcmpLayer:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.snmp = host.snmp
        self.sysctl = host.sysctl
        # per peer: (tokens in ms, last time in ms), as struct inet_peer's rate_tokens/rate_last
        self._peers: dict[int, tuple[float, float]] = {}
        self._global_credit = float(host.sysctl["net.ipv4.icmp_msgs_burst"])
        self._global_stamp = 0.0

    # ------------------------------------------------------------------ receive
    def rcv(self, skb: SkBuff, now: float) -> None:
        snmp = self.snmp
        snmp["IcmpInMsgs"] += 1
        try:
            icmp, data = Icmp.parse(skb.payload)
        except MalformedPacket:
            snmp["IcmpInErrors"] += 1
            return
        if not icmp.checksum_ok:
            snmp["IcmpInCsumErrors"] += 1
            snmp["IcmpInErrors"] += 1
            return
        host = self.host
        t = icmp.type
        snmp[f"IcmpMsgInType{t}"] += 1  # ICMPMSGIN_INC_STATS, once the header is good
        skb.note(now, host.name, "icmp_rcv", f"type {t} code {icmp.code}")
        if t == ICMP_ECHO:
            snmp["IcmpInEchos"] += 1
            if self.sysctl["net.ipv4.icmp_echo_ignore_all"]:
                return
            if skb.ip.dst not in host.local_addrs:
                if self.sysctl["net.ipv4.icmp_echo_ignore_broadcasts"]:
                    return
                src = None
            else:
                src = skb.ip.dst
            reply = Icmp.echo(ICMP_ECHOREPLY, icmp.id, icmp.seq).build(data)
            try:
                self._send(
                    skb.ip.src, reply, now, src=src, tos=skb.ip.tos, counter="IcmpOutEchoReps"
                )
            except OSError:
                return  # icmp_reply: no route back to the sender, so nothing is sent
        elif t == ICMP_ECHOREPLY:
            snmp["IcmpInEchoReps"] += 1
            host.ping_rcv(skb.ip.src, icmp, data, now)
        elif t in _IN_ERROR_COUNTERS:
            snmp[_IN_ERROR_COUNTERS[t]] += 1
            self._error_rcv(skb, icmp, data, now)
        elif t > NR_ICMP_TYPES:
            snmp["IcmpInErrors"] += 1

    def _error_rcv(self, skb: SkBuff, icmp: Icmp, data: bytes, now: float) -> None:
        """icmp_unreach: hand the error to the protocol of the quoted packet."""
        try:
            inner, rest = parse_quote(data)
        except MalformedPacket:
            self.snmp["IcmpInErrors"] += 1
            return
        host = self.host
        # icmp_unreach only hands the error on: each protocol's err handler updates the path
        # MTU once it has found the socket the quoted packet belongs to (and TCP only after
        # the quoted sequence number passes its window check)
        if inner.proto == IPPROTO_UDP:
            host.udp.err(skb.ip.src, icmp, inner, rest, now)
        elif inner.proto == IPPROTO_TCP:
            host.tcp_err(skb.ip.src, icmp, inner, rest, now)
        elif inner.proto == IPPROTO_ICMP:
            host.ping_err(skb.ip.src, icmp, inner, rest, now)

    # ------------------------------------------------------------------ send
    def send_echo(self, dst: int, id_: int, seq: int, data: bytes, now: float, **kw) -> None:
        msg = Icmp.echo(ICMP_ECHO, id_, seq).build(data)
        self._send(dst, msg, now, counter="IcmpOutEchos", **kw)

    def _send(self, dst: int, message: bytes, now: float, *, counter: str, **kw) -> None:
        self.host.ip.output(dst, IPPROTO_ICMP, message, now, **kw)
        # icmp_out_count runs once the packet is built (__ip_make_skb), i.e. after routing
        self.snmp["IcmpOutMsgs"] += 1
        self.snmp[f"IcmpMsgOutType{message[0]}"] += 1  # icmp_out_count
        self.snmp[counter] += 1

    def send_error(self, skb: SkBuff, type_: int, code: int, info: int, now: float) -> bool:
        """icmp_send: an error about ``skb`` to its source, if the rules and limits allow."""
        ip = skb.ip
        host = self.host
        if ip.frag_offset:
            return False  # only the first fragment may draw an error
        if _bad_source(ip.src) or ip.dst in host.broadcast_addrs or (ip.dst >> 28) == 0xE:
            return False
        if ip.proto == IPPROTO_ICMP:
            inner_type = skb.payload[0] if skb.payload else 0
            if len(skb.payload) < 8 or icmp_type_is_error(inner_type):
                return False  # never an error about an error
        if not self._allowed(ip.src, type_, code, now):
            return False
        route = host.fib.lookup(ip.src)
        if route is None:
            return False  # icmp_route_lookup failed: Linux sends nothing and counts nothing
        # Answer from the address the offending packet was sent to when it is ours, else from the
        # address of the interface the error leaves by (icmp_errors_use_inbound_ifaddr 0).
        src = ip.dst if ip.dst in host.local_addrs else host.source_address(route)
        raw = skb.raw if skb.raw is not None else ip.build(skb.payload)
        limit = min(ICMP_QUOTE_LIMIT, route.dev.mtu - 28)
        msg = Icmp(type_, code, info & 0xFFFFFFFF).build(quote(raw, limit))
        skb.note(now, host.name, "icmp_send", f"type {type_} code {code} to {ip.src:#x}")
        counter = _OUT_ERROR_COUNTERS[type_]
        tos = (ip.tos & 0x1E) | IPTOS_PREC_INTERNETCONTROL
        try:
            self._send(ip.src, msg, now, src=src, tos=tos, counter=counter)
        except OSError:
            self.snmp["IcmpOutErrors"] += 1
            return False
        return True

    def _peer_gc(self, now_ms: float) -> None:
        """inet_peer_gc before a new peer is made: the least recently used entries idle for
        longer than the ttl go, at most PEER_MAX_GC of them; the ttl falls from
        inet_peer_maxttl towards inet_peer_minttl as the table fills, and is 0 once it holds
        inet_peer_threshold entries.  Entries idle past maxttl always go (Linux frees them
        on later lookups), so the table shrinks back after a burst of peers."""
        peers = self._peers
        s = self.sysctl
        threshold = int(s["net.ipv4.inet_peer_threshold"])
        maxttl = int(s["net.ipv4.inet_peer_maxttl"]) * 1000.0
        minttl = int(s["net.ipv4.inet_peer_minttl"]) * 1000.0
        total = len(peers)
        ttl = 0.0 if total >= threshold else maxttl - (maxttl - minttl) * total / threshold
        removed = 0
        while peers:
            oldest = next(iter(peers))
            idle = now_ms - peers[oldest][1]
            if idle >= maxttl or (idle >= ttl and removed < PEER_MAX_GC):
                del peers[oldest]
                removed += 1
            else:
                break

    def _allowed(self, peer: int, type_: int, code: int, now: float) -> bool:
        if type_ > NR_ICMP_TYPES:
            return True
        if not (1 << type_) & int(self.sysctl["net.ipv4.icmp_ratemask"]):
            return True
        if type_ == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED:
            return True
        # icmp_global_allow: a bucket of icmp_msgs_burst credits refilled at icmp_msgs_per_sec
        rate = int(self.sysctl["net.ipv4.icmp_msgs_per_sec"])
        burst = int(self.sysctl["net.ipv4.icmp_msgs_burst"])
        self._global_credit = min(burst, self._global_credit + (now - self._global_stamp) * rate)
        self._global_stamp = now
        if self._global_credit < 1:
            self.snmp["IcmpOutRateLimitGlobal"] += 1
            return False
        # inet_peer_xrlim_allow: tokens in ms, at most 6 * timeout; each message costs timeout
        timeout = float(self.sysctl["net.ipv4.icmp_ratelimit"])
        now_ms = now * 1000.0
        entry = self._peers.pop(peer, None)
        if entry is None:
            self._peer_gc(now_ms)
            entry = (0.0, now_ms - 60_000.0)
        tokens, last = entry
        tokens = min(tokens + now_ms - last, XRLIM_BURST_FACTOR * timeout)
        allowed = tokens >= timeout
        if allowed:
            tokens -= timeout
        self._peers[peer] = (tokens, now_ms)  # re-inserted: the dict stays in order of use
        if not allowed:
            self.snmp["IcmpOutRateLimitHost"] += 1
            return False
        self._global_credit -= 1
        return True
