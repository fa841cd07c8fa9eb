"""The neighbour (ARP) table of one interface, after Linux's net/core/neighbour.c
(neigh_timer_handler, __neigh_event_send, __neigh_update, neigh_resolve_output) and
net/ipv4/arp.c (arp_constructor, arp_solicit, arp_process), with the NUD states of RFC 4861
section 7.3.2 that Linux uses for IPv4 too.

A plain object: no trio, no clock.  Every call takes the virtual time ``now`` in seconds; the
task that drives it sleeps until :meth:`NeighTable.poll_at` and then calls
:meth:`NeighTable.run_timers`.  Frames leave through the ``xmit`` callback (dev_queue_xmit) as
complete Ethernet frames, and packets whose resolution fails go back to the IP layer, one by one
and in queue order, through ``on_failed`` (arp_error_report -> ICMP host unreachable).

The state machine, as Linux runs it with the default parameters:

- ``output`` to an unknown next hop creates it INCOMPLETE, queues the packet and broadcasts a
  request at once and every ``retrans_time``; the probe counter starts at ``ucast_solicit`` so
  that ``mcast_solicit`` broadcasts go out (at 0, 1, 2 s) and the timer after the last one
  (3 s) finds ``probes >= ucast + app + mcast``: FAILED, the queue goes to ``on_failed``,
  ``res_failed`` is counted.  Traffic to a FAILED entry starts the same again.
- The unresolved queue is limited by ``unres_qlen_bytes`` of accounted size; overflow drops the
  OLDEST packets (``unresolved_discards``).  Linux accounts ``skb->truesize``; we account
  ``len(ip_packet) + ETH_HLEN + SKB_TRUESIZE_OVERHEAD`` (see the constant): a 1500-byte packet
  costs 2090, so 101 of them fit in 212992 bytes, the ratio Linux itself uses to derive the
  legacy ``unres_qlen`` default of 101 from ``unres_qlen_bytes``.
- A reply (unicast to us) -> REACHABLE for ``reachable_time``, a per-table value drawn from
  ``rng`` as ``base/2 + random() * base`` (15-45 s by default, neigh_rand_reach_time) when the
  table is made, and again when ``base_reachable_time`` changes or 300 s after the previous
  draw (Linux redraws in its periodic work).  On expiry: DELAY if ``output`` was called within
  ``delay_first_probe_time``, else STALE.
- STALE + ``output`` -> DELAY, packet sent at once with the cached address.  DELAY after
  ``delay_first_probe_time`` -> REACHABLE if :meth:`confirm` (TCP forward progress) or a reply
  came within that time, else PROBE: unicast requests at once and every ``retrans_time``,
  ``ucast_solicit`` (+ ``mcast_resolicit``) of them, then FAILED.
- Receiving (arp_process, arp_accept 0, arp_ignore 0): a request for any local address creates
  or refreshes the sender as STALE and gets a unicast reply; otherwise only an EXISTING entry is
  updated: to REACHABLE by a reply unicast to us, to STALE by a request or a broadcast reply (a
  STALE update with an unchanged address keeps the current state).  A different address
  replaces the cached one only if the entry was last updated more than ``locktime`` ago or the
  packet is a gratuitous ARP (sender IP == target IP, and for a reply target MAC == sender MAC).
  PERMANENT and NOARP entries never change from the wire.

Where emunet differs from a real kernel, by choice:

- Time is continuous, so a deadline fires at its exact time: a REACHABLE entry expires at
  ``confirmed + reachable_time`` itself (Linux's timer wheel fires a little late and its
  ``time_before_eq`` test would keep it one more tick).  Other comparisons are Linux's.
- ``used`` is refreshed by every :meth:`output` (as neigh_event_send does); modern Linux skips
  it on the cached-header fast path of CONNECTED entries, which would make the "REACHABLE with
  recent use -> DELAY" rule of LINUX.md almost never apply.
- Garbage collection (neigh_periodic_work) runs every ``base_reachable_time/2`` only while the
  table holds at least ``gc_thresh1`` entries, removing FAILED entries and those unused for
  ``gc_stale_time`` (never PERMANENT ones or those with a timer).  There is no forced GC
  (gc_thresh2/3), proxy ARP, arpd (``app_solicit`` probes are counted but send nothing) or
  netlink.
- Statistics follow /proc/net/stat/arp_cache: ``lookups``/``hits`` count neigh_lookup calls,
  which in Linux happen on the ARP receive path (the output path uses a lookup that counts
  nothing); ``rcv_probes_mcast``/``rcv_probes_ucast`` exist but stay 0, as ARP never counts
  them (only IPv6 ndisc does).
"""

from __future__ import annotations

import collections
import enum
import heapq
import random
from collections.abc import Callable, Mapping, Sequence

import attrs

from ..wire.addr import BROADCAST_MAC, ZERO_MAC, ip_to_str, mac_to_str
from ..wire.arp import ARP_REPLY, ARP_REQUEST, Arp
from ..wire.ethernet import ETH_HLEN, ETH_P_ARP, ETH_P_IP, Ethernet


class NudState(enum.Enum):
    """Neighbour Unreachability Detection states, with Linux's NUD_* bit values."""

    NONE = 0x00
    INCOMPLETE = 0x01
    REACHABLE = 0x02
    STALE = 0x04
    DELAY = 0x08
    PROBE = 0x10
    FAILED = 0x20
    NOARP = 0x40
    PERMANENT = 0x80

    def __str__(self) -> str:
        return self.name


_S = NudState
# The kernel's state classes (include/net/neighbour.h); only ever tested for membership.
NUD_IN_TIMER = frozenset({_S.INCOMPLETE, _S.REACHABLE, _S.DELAY, _S.PROBE})
NUD_VALID = frozenset({_S.PERMANENT, _S.NOARP, _S.REACHABLE, _S.PROBE, _S.STALE, _S.DELAY})
NUD_CONNECTED = frozenset({_S.PERMANENT, _S.NOARP, _S.REACHABLE})

DEFAULT_PARAMS: dict[str, float | int] = {
    "base_reachable_time": 30.0,  # s; reachable_time is drawn in [base/2, 3*base/2)
    "retrans_time": 1.0,  # s between solicitations
    "delay_first_probe_time": 5.0,  # s in DELAY before probing
    "gc_stale_time": 60.0,  # s unused before GC may remove an entry
    "ucast_solicit": 3,  # unicast probes in PROBE
    "mcast_solicit": 3,  # broadcast probes in INCOMPLETE
    "mcast_resolicit": 0,  # broadcast probes added in PROBE
    "app_solicit": 0,  # probes handed to a user-space daemon (none here: sent nowhere)
    "unres_qlen_bytes": 212992,  # accounted bytes in one entry's unresolved queue
    "locktime": 1.0,  # s after an update during which another address is not taken
    "gc_thresh1": 128,  # periodic GC runs only with at least this many entries
}

# SKB_DATA_ALIGN(sizeof(struct sk_buff)) + SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on
# x86-64 (256 + 320): SKB_TRUESIZE(len) = len + this.  A queued IP packet is accounted as
# SKB_TRUESIZE(len + ETH_HLEN).
SKB_TRUESIZE_OVERHEAD = 576
RANDOMIZE_INTERVAL = 300.0  # s between redraws of reachable_time (neigh_periodic_work)
MIN_TIMER = 0.01  # HZ/100: the shortest timer neigh_timer_handler arms

# Fields of /proc/net/stat/arp_cache, in the kernel's order.
STAT_FIELDS = (
    "entries",
    "allocs",
    "destroys",
    "hash_grows",
    "lookups",
    "hits",
    "res_failed",
    "rcv_probes_mcast",
    "rcv_probes_ucast",
    "periodic_gc_runs",
    "forced_gc_runs",
    "unresolved_discards",
    "table_fulls",
)


@attrs.frozen
class NeighEntry:
    """A snapshot of one entry, as ``ip -s neigh`` shows it.  ``mac`` is None unless the state
    is valid (Linux reports no lladdr for INCOMPLETE and FAILED); times are virtual seconds."""

    ip: int
    mac: bytes | None
    state: NudState
    updated: float
    used: float
    confirmed: float
    probes: int
    queued: int

    def __str__(self) -> str:
        lladdr = f" lladdr {mac_to_str(self.mac)}" if self.mac is not None else ""
        return f"{ip_to_str(self.ip)}{lladdr} {self.state.name}"


class _Neighbour:
    """One mutable entry (struct neighbour)."""

    __slots__ = (
        "confirmed",
        "ha",
        "ip",
        "probes",
        "queue",
        "queue_bytes",
        "state",
        "updated",
        "used",
    )

    def __init__(self, ip: int, now: float, base_reachable_time: float) -> None:
        self.ip = ip
        self.ha: bytes | None = None
        self.state = NudState.NONE
        self.updated = now
        self.used = now
        self.confirmed = now - 2 * base_reachable_time
        self.probes = 0
        self.queue: collections.deque[tuple[bytes, int]] = collections.deque()
        self.queue_bytes = 0


def _is_multicast(ip: int) -> bool:
    return ip >> 28 == 0xE


def _is_loopback(ip: int) -> bool:
    return ip >> 24 == 127


def _is_zeronet(ip: int) -> bool:
    return ip >> 24 == 0


def _multicast_mac(ip: int) -> bytes:
    """arp_mc_map for Ethernet: 01:00:5e and the low 23 bits of the group (RFC 1112)."""
    return b"\x01\x00\x5e" + (ip & 0x7FFFFF).to_bytes(3, "big")


class NeighTable:
    """The neighbour table of one interface (Linux keeps one table per protocol, keyed by
    device and address; one of these per device is the same thing)."""

    def __init__(
        self,
        *,
        mac: bytes,
        addresses: Callable[[], Sequence[int]],
        xmit: Callable[[bytes], None],
        on_failed: Callable[[bytes], None],
        rng: random.Random,
        params: Mapping[str, float | int] | None = None,
        is_broadcast: Callable[[int], bool] | None = None,
    ) -> None:
        """``addresses()``: the host's local IPv4 addresses (ARP answers for any of them,
        arp_ignore 0); the first is this interface's primary address.  ``is_broadcast(ip)``:
        optional, true for the directed broadcast addresses of the interface's subnets, which
        like 255.255.255.255 resolve to ff:ff:ff:ff:ff:ff without ARP (NOARP entries)."""
        if len(mac) != 6:
            raise ValueError(f"a MAC address is 6 bytes, got {len(mac)}")
        self.mac = bytes(mac)
        self._addresses = addresses
        self._xmit = xmit
        self._on_failed = on_failed
        self._rng = rng
        self._is_broadcast = is_broadcast
        self.params: dict[str, float | int] = dict(DEFAULT_PARAMS)
        for key, value in (params or {}).items():
            if key not in DEFAULT_PARAMS:
                raise KeyError(f"unknown neighbour parameter {key!r}")
            self.params[key] = value
        self.stats: collections.Counter[str] = collections.Counter(dict.fromkeys(STAT_FIELDS, 0))
        self._table: dict[int, _Neighbour] = {}
        self._timers: dict[int, float] = {}  # ip -> deadline (the truth)
        self._heap: list[tuple[float, int]] = []  # (deadline, ip), may hold stale items
        self._gc_at: float | None = None
        self._last_now = 0.0
        base = float(self.params["base_reachable_time"])
        self._rand_base = base
        self._rand_next: float | None = None  # set at the first use of reachable_time
        self.reachable_time = self._draw_reachable_time(base)

    # ----------------------------------------------------------------- public interface

    def output(self, nexthop: int, ip_packet: bytes, now: float) -> bool:
        """neigh_resolve_output: send ``ip_packet`` to ``nexthop`` on this link, resolving
        its address first if needed (the packet then waits in the entry's queue).  False only
        when the device queue refused the frame (NET_XMIT_DROP)."""
        self._tick(now)
        n = self._table.get(nexthop)
        if n is None:
            n = self._create(nexthop, now)
        return self._resolve_output(n, ip_packet, now)

    def receive(
        self, arp: Arp, src_mac: bytes, now: float, *, dst_mac: bytes | None = None
    ) -> None:
        """arp_rcv + arp_process for one received ARP packet.  ``src_mac`` is the Ethernet
        source (unused: Linux trusts the ARP body's sender address).  ``dst_mac``, the Ethernet
        destination, tells a reply unicast to us (which confirms reachability) from a broadcast
        one (which does not) and drops frames for other hosts; None means "to us"."""
        self._tick(now)
        if dst_mac is not None and dst_mac != self.mac and not dst_mac[0] & 1:
            return  # PACKET_OTHERHOST: arp_rcv ignores it
        if arp.op not in (ARP_REQUEST, ARP_REPLY):
            return
        sip, tip, sha = arp.sender_ip, arp.target_ip, arp.sender_mac
        if _is_multicast(tip) or _is_loopback(tip):
            return
        local = self._addresses()

        if sip == 0:
            # Duplicate address detection probe (RFC 5227): answer, learn nothing.
            if arp.op == ARP_REQUEST and tip in local:
                self._send_arp(ARP_REPLY, sha, tip, sha, 0)
            return

        if arp.op == ARP_REQUEST and not self._martian_source(sip, local) and tip in local:
            # A request for us: the sender probably wants to talk to us, so cache it
            # (neigh_event_ns: create, STALE, override) and answer.
            n = self._lookup(sip)
            if n is None:
                n = self._create(sip, now)
            self._update(n, sha, NudState.STALE, override=True, now=now)
            self._send_arp(ARP_REPLY, sha, tip, sha, sip)
            return

        # Anything else only updates an entry we already have (arp_accept 0).
        n = self._lookup(sip)
        if n is None:
            return
        is_garp = (
            sip == tip
            and (arp.op != ARP_REPLY or arp.target_mac == sha)
            and self._is_unicast(sip, local)
        )
        override = now > n.updated + float(self.params["locktime"]) or is_garp
        to_us = dst_mac is None or dst_mac == self.mac
        state = NudState.REACHABLE if arp.op == ARP_REPLY and to_us else NudState.STALE
        self._update(n, sha, state, override=override, now=now)

    def confirm(self, nexthop: int, now: float) -> None:
        """neigh_confirm: forward progress (e.g. a TCP ACK of new data) proves the neighbour
        reachable.  Only the time is recorded; the timers act on it."""
        self._tick(now)
        n = self._table.get(nexthop)
        if n is not None:
            n.confirmed = now

    def add_static(self, ip: int, mac: bytes, now: float | None = None) -> None:
        """``ip neigh replace IP lladdr MAC nud permanent``.  ``now`` defaults to the latest
        time the table has been given."""
        if len(mac) != 6:
            raise ValueError(f"a MAC address is 6 bytes, got {len(mac)}")
        if now is None:
            now = self._last_now
        self._tick(now)
        n = self._table.get(ip)
        if n is None:
            n = self._create(ip, now)
        self._update(n, bytes(mac), NudState.PERMANENT, override=True, now=now, admin=True)

    def poll_at(self) -> float | None:
        """The earliest timer deadline of any entry (or of garbage collection), or None."""
        heap = self._heap
        while heap and self._timers.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # a timer deleted or moved since it was pushed
        when = heap[0][0] if heap else None
        if self._gc_at is not None and (when is None or self._gc_at < when):
            when = self._gc_at
        return when

    def run_timers(self, now: float) -> None:
        """Run every timer due at ``now``, earliest first (ties by address)."""
        self._tick(now)
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, ip = heapq.heappop(heap)
            if self._timers.get(ip) != when:
                continue
            del self._timers[ip]
            self._timer_handler(self._table[ip], now)
        if self._gc_at is not None and self._gc_at <= now:
            self._periodic_gc(now)

    def entries(self) -> list[NeighEntry]:
        """Every entry, sorted by address (NOARP ones included)."""
        return [
            NeighEntry(
                ip=n.ip,
                mac=n.ha if n.state in NUD_VALID else None,
                state=n.state,
                updated=n.updated,
                used=n.used,
                confirmed=n.confirmed,
                probes=n.probes,
                queued=len(n.queue),
            )
            for _, n in sorted(self._table.items())
        ]

    # ----------------------------------------------------------------- table and timers

    def _tick(self, now: float) -> None:
        if now > self._last_now:
            self._last_now = now

    def _lookup(self, ip: int) -> _Neighbour | None:
        """neigh_lookup, which the arp_cache statistics count."""
        self.stats["lookups"] += 1
        n = self._table.get(ip)
        if n is not None:
            self.stats["hits"] += 1
        return n

    def _create(self, ip: int, now: float) -> _Neighbour:
        """neigh_create + arp_constructor: multicast and broadcast addresses need no ARP."""
        n = _Neighbour(ip, now, float(self.params["base_reachable_time"]))
        if _is_multicast(ip):
            n.state, n.ha = NudState.NOARP, _multicast_mac(ip)
        elif ip == 0xFFFFFFFF or _is_zeronet(ip) or (self._is_broadcast and self._is_broadcast(ip)):
            n.state, n.ha = NudState.NOARP, BROADCAST_MAC
        self._table[ip] = n
        self.stats["allocs"] += 1
        self.stats["entries"] = len(self._table)
        if self._gc_at is None and len(self._table) >= int(self.params["gc_thresh1"]):
            self._gc_at = now + float(self.params["base_reachable_time"]) / 2
        return n

    def _add_timer(self, n: _Neighbour, when: float) -> None:
        self._timers[n.ip] = when
        heapq.heappush(self._heap, (when, n.ip))

    def _del_timer(self, n: _Neighbour) -> None:
        self._timers.pop(n.ip, None)

    def _draw_reachable_time(self, base: float) -> float:
        return base / 2 + self._rng.random() * base

    def _reachable(self, now: float) -> float:
        """The table's current reachable_time, redrawn as neigh_periodic_work would."""
        base = float(self.params["base_reachable_time"])
        if base != self._rand_base or (self._rand_next is not None and now >= self._rand_next):
            self.reachable_time = self._draw_reachable_time(base)
            self._rand_base = base
            self._rand_next = now + RANDOMIZE_INTERVAL
        elif self._rand_next is None:
            self._rand_next = now + RANDOMIZE_INTERVAL
        return self.reachable_time

    def _max_probes(self, n: _Neighbour) -> int:
        p = self.params
        extra = p["mcast_resolicit"] if n.state is NudState.PROBE else p["mcast_solicit"]
        return int(p["ucast_solicit"]) + int(p["app_solicit"]) + int(extra)

    def _retrans(self) -> float:
        return max(float(self.params["retrans_time"]), MIN_TIMER)

    def _periodic_gc(self, now: float) -> None:
        """neigh_periodic_work: drop FAILED entries and those unused for gc_stale_time."""
        self.stats["periodic_gc_runs"] += 1
        stale_time = float(self.params["gc_stale_time"])
        for ip in sorted(self._table):
            n = self._table[ip]
            if n.state is NudState.PERMANENT or n.state in NUD_IN_TIMER:
                continue
            if n.used < n.confirmed <= now:
                n.used = n.confirmed
            if n.state is NudState.FAILED or not n.used <= now < n.used + stale_time:
                del self._table[ip]
                self._timers.pop(ip, None)
                self.stats["destroys"] += 1
        self.stats["entries"] = len(self._table)
        if len(self._table) >= int(self.params["gc_thresh1"]):
            self._gc_at = now + float(self.params["base_reachable_time"]) / 2
        else:
            self._gc_at = None

    # ----------------------------------------------------------------- the state machine

    def _resolve_output(self, n: _Neighbour, ip_packet: bytes, now: float) -> bool:
        """neigh_resolve_output: send now if the address may be used, else queue."""
        n.used = now
        if n.state in NUD_CONNECTED or n.state is NudState.DELAY or n.state is NudState.PROBE:
            return self._send_ip(n, ip_packet)
        if self._event_send(n, ip_packet, now):
            return self._send_ip(n, ip_packet)
        return True

    def _event_send(self, n: _Neighbour, ip_packet: bytes, now: float) -> bool:
        """__neigh_event_send for a NONE, FAILED, STALE or INCOMPLETE entry.  True when the
        packet may go out now with the cached address."""
        p = self.params
        probe_now = False
        if n.state is NudState.NONE or n.state is NudState.FAILED:
            if int(p["mcast_solicit"]) + int(p["app_solicit"]):
                n.probes = int(p["ucast_solicit"])  # so that only broadcasts are sent
                self._del_timer(n)
                n.state = NudState.INCOMPLETE
                n.updated = now
                self._add_timer(n, now + self._retrans())
                probe_now = True
            else:
                n.state = NudState.FAILED  # no way to resolve: the packet is dropped
                n.updated = now
                return False
        elif n.state is NudState.STALE:
            self._del_timer(n)
            n.state = NudState.DELAY
            n.updated = now
            self._add_timer(n, now + float(p["delay_first_probe_time"]))
            return True

        # INCOMPLETE: queue, dropping the oldest packets while over the byte limit.
        size = len(ip_packet) + ETH_HLEN + SKB_TRUESIZE_OVERHEAD
        limit = int(p["unres_qlen_bytes"])
        while n.queue and n.queue_bytes + size > limit:
            _, dropped = n.queue.popleft()
            n.queue_bytes -= dropped
            self.stats["unresolved_discards"] += 1
        n.queue.append((ip_packet, size))
        n.queue_bytes += size
        if probe_now:
            self._probe(n)
        return False

    def _timer_handler(self, n: _Neighbour, now: float) -> None:
        """neigh_timer_handler."""
        p = self.params
        state = n.state
        if state not in NUD_IN_TIMER:
            return
        delay = float(p["delay_first_probe_time"])
        next_at = now + 1.0
        if state is NudState.REACHABLE:
            reach = self._reachable(now)
            if now < n.confirmed + reach:
                next_at = n.confirmed + reach  # confirmed since the timer was armed
            elif now <= n.used + delay:
                n.state = NudState.DELAY
                n.updated = now
                next_at = now + delay
            else:
                n.state = NudState.STALE
                n.updated = now
        elif state is NudState.DELAY:
            if now <= n.confirmed + delay:
                n.state = NudState.REACHABLE
                n.updated = now
                next_at = n.confirmed + self._reachable(now)
            else:
                n.state = NudState.PROBE
                n.updated = now
                n.probes = 0
                next_at = now + self._retrans()
        else:  # INCOMPLETE or PROBE
            next_at = now + self._retrans()

        if (
            n.state is NudState.INCOMPLETE or n.state is NudState.PROBE
        ) and n.probes >= self._max_probes(n):
            n.state = NudState.FAILED
            self._invalidate(n, now)
            return
        if n.state in NUD_IN_TIMER:
            self._add_timer(n, max(next_at, now + MIN_TIMER))
        if n.state is NudState.INCOMPLETE or n.state is NudState.PROBE:
            self._probe(n)

    def _invalidate(self, n: _Neighbour, now: float) -> None:
        """neigh_invalidate: resolution failed; every queued packet is reported, in order."""
        self.stats["res_failed"] += 1
        n.updated = now
        failed = [packet for packet, _ in n.queue]
        n.queue.clear()
        n.queue_bytes = 0
        for packet in failed:
            self._on_failed(packet)

    def _update(
        self,
        n: _Neighbour,
        lladdr: bytes,
        new: NudState,
        *,
        override: bool,
        now: float,
        admin: bool = False,
    ) -> None:
        """__neigh_update with a link-layer address (NEIGH_UPDATE_F_OVERRIDE = ``override``,
        NEIGH_UPDATE_F_ADMIN = ``admin``)."""
        old = n.state
        if not admin and (old is NudState.NOARP or old is NudState.PERMANENT):
            return
        old_valid = old in NUD_VALID
        same = old_valid and n.ha == lladdr
        if new in NUD_CONNECTED:
            # Recorded even when the address below is refused, as Linux does.
            n.confirmed = now
        if old_valid:
            if not same and not override:
                return
            if same and new is NudState.STALE and not admin:
                new = old  # a STALE update with the known address changes nothing
        if new is not old or not same:
            n.updated = now
        if new is not old:
            self._del_timer(n)
            if new is NudState.PROBE:
                n.probes = 0
            if new in NUD_IN_TIMER:
                reach = self._reachable(now) if new is NudState.REACHABLE else 0.0
                self._add_timer(n, now + reach)
            n.state = new
        if not same:
            n.ha = lladdr
            if new not in NUD_CONNECTED:
                n.confirmed = now - 2 * float(self.params["base_reachable_time"])
        if new is old or old_valid:
            return
        # Resolved: the queue goes out in order through the normal output path.
        queued = [packet for packet, _ in n.queue]
        n.queue.clear()
        n.queue_bytes = 0
        for packet in queued:
            self._resolve_output(n, packet, now)

    # ----------------------------------------------------------------- frames

    def _probe(self, n: _Neighbour) -> None:
        """neigh_probe + arp_solicit: one request, counted in ``probes``."""
        p = self.params
        # arp_announce 0: the source address of the newest queued packet if it is ours,
        # else the interface's primary address.
        local = self._addresses()
        saddr = None
        if n.queue:
            packet = n.queue[-1][0]
            if len(packet) >= 20:
                src = int.from_bytes(packet[12:16], "big")
                if src in local:
                    saddr = src
        if saddr is None:
            saddr = local[0] if local else 0
        dst: bytes | None
        probes = n.probes - int(p["ucast_solicit"])
        if probes < 0:
            dst = n.ha if n.ha is not None else BROADCAST_MAC  # unicast probe (PROBE)
        elif probes - int(p["app_solicit"]) < 0:
            dst = None  # an arpd probe (neigh_app_ns): nothing goes on the wire
        else:
            dst = BROADCAST_MAC
        n.probes += 1
        if dst is not None:
            self._send_arp(ARP_REQUEST, dst, saddr, ZERO_MAC, n.ip)

    def _send_arp(
        self, op: int, eth_dst: bytes, sender_ip: int, target_mac: bytes, target_ip: int
    ) -> None:
        """arp_create + arp_xmit: our MAC is always the Ethernet and ARP sender address."""
        body = Arp(op, self.mac, sender_ip, target_mac, target_ip).build()
        self._xmit(Ethernet(eth_dst, self.mac, ETH_P_ARP).build(body))

    def _send_ip(self, n: _Neighbour, ip_packet: bytes) -> bool:
        assert n.ha is not None
        return self._xmit(Ethernet(n.ha, self.mac, ETH_P_IP).build(ip_packet)) is not False

    # ----------------------------------------------------------------- address types

    def _martian_source(self, sip: int, local: Sequence[int]) -> bool:
        """Whether ip_route_input would refuse ``sip`` as a source (then a request is not
        answered, as in Linux: the route lookup fails)."""
        return (
            _is_multicast(sip)
            or sip == 0xFFFFFFFF
            or _is_loopback(sip)
            or _is_zeronet(sip)
            or sip in local
        )

    def _is_unicast(self, ip: int, local: Sequence[int]) -> bool:
        """inet_addr_type(ip) == RTN_UNICAST, as far as this table can tell."""
        if _is_multicast(ip) or ip == 0xFFFFFFFF or _is_zeronet(ip) or ip in local:
            return False
        return not (self._is_broadcast is not None and self._is_broadcast(ip))
