"""The neighbour (ARP) state machine of emunet/stack/neigh.py, driven synchronously with explicit
times, checked against what Linux's neighbour.c / arp.c do with default parameters."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emunet.stack.neigh import NeighEntry, NeighTable, NudState
from emunet.wire.addr import BROADCAST_MAC, ZERO_MAC, ip_from_str, mac_from_str
from emunet.wire.arp import ARP_REPLY, ARP_REQUEST, Arp
from emunet.wire.ethernet import ETH_P_ARP, ETH_P_IP, Ethernet
from emunet.wire.ipv4 import IPPROTO_UDP, Ipv4

MAC_US = mac_from_str("02:00:00:00:00:01")
MAC_PEER = mac_from_str("02:00:00:00:00:02")
MAC_NEW = mac_from_str("02:00:00:00:00:03")
MAC_OTHER = mac_from_str("02:00:00:00:00:04")
US = ip_from_str("10.0.0.1")
US2 = ip_from_str("10.0.0.100")
PEER = ip_from_str("10.0.0.2")
OTHER = ip_from_str("10.0.0.3")
REMOTE = ip_from_str("192.0.2.7")

BASE = 30.0
SEED = 7


def expected_reachable_time(seed: int = SEED) -> float:
    """neigh_rand_reach_time with the table's rng: base/2 + random() * base."""
    return BASE / 2 + random.Random(seed).random() * BASE


def ip_packet(n: int, size: int = 100, src: int = US) -> bytes:
    """A distinguishable UDP datagram of ``size`` bytes in all (>= 46: no Ethernet padding)."""
    return Ipv4(src=src, dst=REMOTE, proto=IPPROTO_UDP, id=n).build(bytes(size - 20))


class Harness:
    """A table whose frames and failures are recorded with the virtual time they happen at."""

    def __init__(self, seed: int = SEED, addresses: tuple[int, ...] = (US,), **params) -> None:
        self.now = 0.0
        self.sent: list[tuple[float, bytes]] = []
        self.failed: list[bytes] = []
        self.table = NeighTable(
            mac=MAC_US,
            addresses=lambda: addresses,
            xmit=lambda frame: self.sent.append((self.now, frame)),
            on_failed=self.failed.append,
            rng=random.Random(seed),
            params=params or None,
        )

    def at(self, t: float) -> NeighTable:
        """Run every timer due up to ``t`` (each at its own deadline), then stand at ``t``."""
        while (when := self.table.poll_at()) is not None and when <= t:
            self.now = when
            self.table.run_timers(when)
        self.now = t
        return self.table

    def entry(self, ip: int = PEER) -> NeighEntry:
        (found,) = [e for e in self.table.entries() if e.ip == ip]
        return found

    def arps(self) -> list[tuple[float, Ethernet, Arp]]:
        out = []
        for t, frame in self.sent:
            eth, payload = Ethernet.parse(frame)
            if eth.ethertype == ETH_P_ARP:
                out.append((t, eth, Arp.parse(payload)[0]))
        return out

    def ips(self) -> list[tuple[float, Ethernet, bytes]]:
        out = []
        for t, frame in self.sent:
            eth, payload = Ethernet.parse(frame)
            if eth.ethertype == ETH_P_IP:
                out.append((t, eth, payload))
        return out

    def resolve(self, t: float, mac: bytes = MAC_PEER) -> None:
        """Make PEER REACHABLE at ``t``: output a packet, the peer replies at once."""
        self.at(t).output(PEER, ip_packet(0), t)
        self.table.receive(Arp(ARP_REPLY, mac, PEER, MAC_US, US), mac, t, dst_mac=MAC_US)
        self.sent.clear()


def broadcast_request(target: int = PEER, sender: int = US) -> tuple[Ethernet, Arp]:
    return (
        Ethernet(BROADCAST_MAC, MAC_US, ETH_P_ARP),
        Arp(ARP_REQUEST, MAC_US, sender, ZERO_MAC, target),
    )


# ------------------------------------------------------------------ INCOMPLETE -> FAILED


def test_three_broadcast_requests_then_failed_with_queue_reported_in_order() -> None:
    h = Harness()
    packets = [ip_packet(i) for i in range(3)]
    h.at(0.0).output(PEER, packets[0], 0.0)
    assert h.entry() == NeighEntry(PEER, None, NudState.INCOMPLETE, 0.0, 0.0, -60.0, 4, 1)
    h.at(0.5).output(PEER, packets[1], 0.5)
    h.at(1.5).output(PEER, packets[2], 1.5)
    h.at(2.999)
    assert h.entry().state is NudState.INCOMPLETE
    assert h.failed == []
    assert h.table.poll_at() == 3.0

    h.at(3.0)
    assert [(t, *broadcast_request()) for t in (0.0, 1.0, 2.0)] == h.arps()
    assert h.ips() == []
    assert h.failed == packets
    assert h.entry() == NeighEntry(PEER, None, NudState.FAILED, 3.0, 1.5, -60.0, 6, 0)
    assert h.table.stats["res_failed"] == 1
    assert h.table.poll_at() is None


def test_traffic_to_a_failed_entry_starts_resolution_again() -> None:
    h = Harness()
    h.at(0.0).output(PEER, ip_packet(0), 0.0)
    h.at(3.0)
    h.sent.clear()
    h.at(10.0).output(PEER, ip_packet(1), 10.0)
    assert h.entry().state is NudState.INCOMPLETE
    h.at(13.0)
    assert [t for t, _, _ in h.arps()] == [10.0, 11.0, 12.0]
    assert all(eth.dst == BROADCAST_MAC for _, eth, _ in h.arps())
    assert h.failed == [ip_packet(0), ip_packet(1)]
    assert h.table.stats["res_failed"] == 2


def test_request_source_is_the_queued_packets_local_source_else_the_primary() -> None:
    h = Harness(addresses=(US, US2))
    h.at(0.0).output(PEER, ip_packet(0, src=US2), 0.0)
    h.at(1.0).output(OTHER, ip_packet(1, src=REMOTE), 1.0)  # a forwarded packet
    assert [(t, a.target_ip, a.sender_ip) for t, _, a in h.arps()] == [
        (0.0, PEER, US2),
        (1.0, PEER, US2),  # the retransmission uses the newest queued packet too
        (1.0, OTHER, US),
    ]


# ------------------------------------------------------------------ the unresolved queue


def test_overflow_drops_the_oldest_and_101_full_size_packets_fit() -> None:
    h = Harness()
    packets = [ip_packet(i, size=1500) for i in range(105)]
    for p in packets:
        h.table.output(PEER, p, 0.0)
    assert h.entry().queued == 101
    assert h.table.stats["unresolved_discards"] == 4
    h.table.receive(Arp(ARP_REPLY, MAC_PEER, PEER, MAC_US, US), MAC_PEER, 0.2, dst_mac=MAC_US)
    assert [p for _, _, p in h.ips()] == packets[4:]


def test_queue_accounting_is_length_plus_ethernet_header_plus_skb_overhead() -> None:
    # Three 100-byte packets cost exactly 3 * (100 + 14 + 576) = 2070 bytes.
    h = Harness(unres_qlen_bytes=2070)
    for i in range(3):
        h.table.output(PEER, ip_packet(i), 0.0)
    assert (h.entry().queued, h.table.stats["unresolved_discards"]) == (3, 0)
    h.table.output(PEER, ip_packet(3), 0.0)  # a fourth: the oldest goes
    assert (h.entry().queued, h.table.stats["unresolved_discards"]) == (3, 1)
    h.table.output(PEER, ip_packet(4, size=101), 0.0)  # one byte bigger: two must go
    assert (h.entry().queued, h.table.stats["unresolved_discards"]) == (2, 3)
    h.at(3.0)
    assert h.failed == [ip_packet(3), ip_packet(4, size=101)]


def test_a_packet_larger_than_the_limit_is_still_queued_alone() -> None:
    h = Harness(unres_qlen_bytes=1000)  # as Linux: the drop loop stops on an empty queue
    h.table.output(PEER, ip_packet(0, size=1500), 0.0)
    assert (h.entry().queued, h.table.stats["unresolved_discards"]) == (1, 0)
    h.table.output(PEER, ip_packet(1, size=1500), 0.0)
    assert (h.entry().queued, h.table.stats["unresolved_discards"]) == (1, 1)


def test_resolution_sends_the_queue_in_order_with_the_new_mac() -> None:
    h = Harness()
    packets = [ip_packet(i) for i in range(3)]
    for i, p in enumerate(packets):
        h.at(i * 0.1).output(PEER, p, i * 0.1)
    h.at(0.3).receive(Arp(ARP_REPLY, MAC_PEER, PEER, MAC_US, US), MAC_PEER, 0.3, dst_mac=MAC_US)
    assert h.ips() == [(0.3, Ethernet(MAC_PEER, MAC_US, ETH_P_IP), p) for p in packets]
    rt = expected_reachable_time()
    assert h.entry() == NeighEntry(PEER, MAC_PEER, NudState.REACHABLE, 0.3, 0.3, 0.3, 4, 0)
    assert h.table.poll_at() == 0.3 + rt  # no more requests
    h.at(5.0).output(PEER, packets[0], 5.0)
    assert h.ips()[-1] == (5.0, Ethernet(MAC_PEER, MAC_US, ETH_P_IP), packets[0])
    assert len(h.arps()) == 1


# ------------------------------------------------------------------ NUD timers


def test_reachable_stale_delay_probe_failed_at_exact_times() -> None:
    rt = expected_reachable_time()
    assert 15.0 <= rt < 45.0
    h = Harness()
    h.resolve(0.0)
    assert h.entry().state is NudState.REACHABLE
    assert h.table.poll_at() == rt
    h.at(rt - 0.001)
    assert h.entry().state is NudState.REACHABLE
    h.at(rt)  # not used in the last 5 s: STALE, and no timer
    assert h.entry() == NeighEntry(PEER, MAC_PEER, NudState.STALE, rt, 0.0, 0.0, 4, 0)
    assert h.table.poll_at() is None

    t = rt + 10.0  # traffic: DELAY, and the packet leaves at once with the cached MAC
    h.at(t).output(PEER, ip_packet(1), t)
    assert h.ips() == [(t, Ethernet(MAC_PEER, MAC_US, ETH_P_IP), ip_packet(1))]
    assert h.entry().state is NudState.DELAY
    assert h.table.poll_at() == t + 5.0
    h.at(t + 4.999)
    assert h.entry().state is NudState.DELAY and h.arps() == []

    h.at(t + 5.0)  # not confirmed: PROBE, first unicast request at once
    assert h.entry().state is NudState.PROBE
    h.at(t + 7.5).output(PEER, ip_packet(2), t + 7.5)  # PROBE still sends with the cached MAC
    h.at(t + 8.0)
    unicast = (Ethernet(MAC_PEER, MAC_US, ETH_P_ARP), Arp(ARP_REQUEST, MAC_US, US, ZERO_MAC, PEER))
    assert h.arps() == [(t + 5.0 + i, *unicast) for i in range(3)]
    assert h.entry() == NeighEntry(PEER, None, NudState.FAILED, t + 8.0, t + 7.5, 0.0, 3, 0)
    assert [p for _, _, p in h.ips()] == [ip_packet(1), ip_packet(2)]
    assert h.failed == []
    assert h.table.stats["res_failed"] == 1


def test_reachable_expiring_with_recent_use_goes_to_delay_then_probe() -> None:
    rt = expected_reachable_time()
    h = Harness()
    h.resolve(0.0)
    h.at(rt - 2.0).output(PEER, ip_packet(1), rt - 2.0)
    h.at(rt)
    assert h.entry().state is NudState.DELAY
    assert h.table.poll_at() == rt + 5.0
    h.at(rt + 5.0)
    assert h.entry().state is NudState.PROBE
    assert [(t, eth.dst) for t, eth, _ in h.arps()] == [(rt + 5.0, MAC_PEER)]


def test_delay_returns_to_reachable_when_confirmed() -> None:
    rt = expected_reachable_time()
    h = Harness()
    h.resolve(0.0)
    h.at(rt)
    t = rt + 1.0
    h.at(t).output(PEER, ip_packet(1), t)  # STALE -> DELAY
    h.at(t + 2.0).confirm(PEER, t + 2.0)  # e.g. an ACK for new data
    h.at(t + 5.0)
    assert h.entry() == NeighEntry(PEER, MAC_PEER, NudState.REACHABLE, t + 5.0, t, t + 2.0, 4, 0)
    assert h.table.poll_at() == t + 2.0 + rt
    assert h.arps() == []
    h.at(t + 2.0 + rt)  # last used at t: STALE again
    assert h.entry().state is NudState.STALE
    assert h.arps() == []


def test_confirm_extends_reachable() -> None:
    rt = expected_reachable_time()
    h = Harness()
    h.resolve(0.0)
    h.at(10.0).confirm(PEER, 10.0)
    h.at(rt)
    assert h.entry().state is NudState.REACHABLE
    assert h.table.poll_at() == 10.0 + rt
    h.at(10.0 + rt)
    assert h.entry().state is NudState.STALE


def test_reply_during_probe_makes_the_entry_reachable() -> None:
    rt = expected_reachable_time()
    h = Harness()
    h.resolve(0.0)
    h.at(rt)
    h.at(rt + 1.0).output(PEER, ip_packet(1), rt + 1.0)
    h.at(rt + 6.5)  # PROBE, unicast requests at rt+6 and rt+7 ... not yet rt+7
    reply = Arp(ARP_REPLY, MAC_PEER, PEER, MAC_US, US)
    h.table.receive(reply, MAC_PEER, rt + 6.5, dst_mac=MAC_US)
    assert h.entry().state is NudState.REACHABLE
    assert h.table.poll_at() == rt + 6.5 + rt
    assert [t for t, _, _ in h.arps()] == [rt + 6.0]


def test_reachable_time_is_redrawn_when_the_base_changes() -> None:
    rng = random.Random(SEED)
    first = 15.0 + rng.random() * 30.0
    second = 5.0 + rng.random() * 10.0
    h = Harness()
    assert h.table.reachable_time == first
    h.table.params["base_reachable_time"] = 10.0
    h.resolve(0.0)
    assert h.table.reachable_time == second
    assert h.table.poll_at() == second


# ------------------------------------------------------------------ receiving ARP


def test_request_for_us_creates_stale_and_gets_a_unicast_reply() -> None:
    h = Harness(addresses=(US, US2))
    request = Arp(ARP_REQUEST, MAC_PEER, PEER, ZERO_MAC, US2)
    h.at(5.0).receive(request, MAC_PEER, 5.0, dst_mac=BROADCAST_MAC)
    assert h.table.entries() == [
        NeighEntry(PEER, MAC_PEER, NudState.STALE, 5.0, 5.0, 5.0 - 60.0, 0, 0)
    ]
    assert h.table.poll_at() is None
    ((t, frame),) = h.sent
    assert t == 5.0
    assert len(frame) == 60
    assert frame[0:6] == MAC_PEER  # Ethernet destination: the requester
    assert frame[6:12] == MAC_US  # Ethernet source: us
    assert frame[12:14] == b"\x08\x06"  # ARP
    assert frame[14:16] == b"\x00\x01"  # hardware type Ethernet
    assert frame[16:18] == b"\x08\x00"  # protocol type IPv4
    assert frame[18:20] == b"\x06\x04"  # address lengths
    assert frame[20:22] == b"\x00\x02"  # reply
    assert frame[22:28] == MAC_US  # sender hardware address
    assert frame[28:32] == bytes([10, 0, 0, 100])  # sender IP: the address asked for
    assert frame[32:38] == MAC_PEER  # target hardware address
    assert frame[38:42] == bytes([10, 0, 0, 2])  # target IP
    assert frame[42:] == bytes(18)  # Ethernet padding
    assert (h.table.stats["lookups"], h.table.stats["hits"], h.table.stats["allocs"]) == (1, 0, 1)

    h.sent.clear()  # traffic to the STALE entry: DELAY, sent at once without a request
    h.at(6.0).output(PEER, ip_packet(1), 6.0)
    assert h.entry().state is NudState.DELAY
    assert h.ips() == [(6.0, Ethernet(MAC_PEER, MAC_US, ETH_P_IP), ip_packet(1))]


def test_request_for_us_resolves_an_incomplete_entry() -> None:
    h = Harness()
    h.at(0.0).output(PEER, ip_packet(0), 0.0)
    h.at(0.5).receive(Arp(ARP_REQUEST, MAC_PEER, PEER, ZERO_MAC, US), MAC_PEER, 0.5)
    # STALE from the request, then the queued packet moves it to DELAY on its way out.
    assert h.entry().state is NudState.DELAY
    assert h.ips() == [(0.5, Ethernet(MAC_PEER, MAC_US, ETH_P_IP), ip_packet(0))]
    assert h.table.poll_at() == 5.5


def test_requests_not_for_us_create_nothing() -> None:
    h = Harness()
    h.table.receive(Arp(ARP_REQUEST, MAC_PEER, PEER, ZERO_MAC, OTHER), MAC_PEER, 1.0)
    h.table.receive(Arp(ARP_REQUEST, MAC_US, US, ZERO_MAC, US), MAC_US, 1.0)  # our own source
    assert h.table.entries() == [] and h.sent == []


def test_unsolicited_reply_creates_nothing() -> None:
    h = Harness()
    reply = Arp(ARP_REPLY, MAC_PEER, PEER, MAC_US, US)
    h.at(1.0).receive(reply, MAC_PEER, 1.0, dst_mac=MAC_US)
    assert h.table.entries() == []
    assert h.sent == []
    assert (h.table.stats["lookups"], h.table.stats["hits"], h.table.stats["allocs"]) == (1, 0, 0)


def test_unsolicited_replies_update_existing_entries() -> None:
    h = Harness()
    reply = Arp(ARP_REPLY, MAC_PEER, PEER, MAC_US, US)
    h.table.receive(Arp(ARP_REQUEST, MAC_PEER, PEER, ZERO_MAC, US), MAC_PEER, 0.0)  # STALE
    h.sent.clear()  # our reply to that request
    h.table.receive(reply, MAC_PEER, 2.0, dst_mac=BROADCAST_MAC)  # broadcast: no proof
    assert h.entry().state is NudState.STALE
    h.table.receive(reply, MAC_PEER, 2.0, dst_mac=MAC_US)  # unicast to us: REACHABLE
    assert h.entry() == NeighEntry(PEER, MAC_PEER, NudState.REACHABLE, 2.0, 0.0, 2.0, 0, 0)
    # A different address within locktime (1 s) of the last update is refused ...
    moved = Arp(ARP_REPLY, MAC_NEW, PEER, MAC_US, US)
    h.table.receive(moved, MAC_NEW, 3.0, dst_mac=MAC_US)
    assert h.entry().mac == MAC_PEER
    assert h.entry().confirmed == 3.0  # ... though Linux records the confirmation first
    # ... and taken after it.
    h.table.receive(moved, MAC_NEW, 3.5, dst_mac=MAC_US)
    assert h.entry() == NeighEntry(PEER, MAC_NEW, NudState.REACHABLE, 3.5, 0.0, 3.5, 0, 0)
    assert h.sent == []


def test_reply_to_a_failed_entry_revives_it() -> None:
    h = Harness()
    h.at(0.0).output(PEER, ip_packet(0), 0.0)
    h.at(3.0)
    h.table.receive(Arp(ARP_REPLY, MAC_PEER, PEER, MAC_US, US), MAC_PEER, 4.0, dst_mac=MAC_US)
    assert h.entry().state is NudState.REACHABLE and h.entry().mac == MAC_PEER


def test_gratuitous_arp_updates_an_existing_entry_at_once() -> None:
    h = Harness()
    h.resolve(0.0)
    # An ordinary request from PEER with another MAC within locktime: ignored.
    h.table.receive(Arp(ARP_REQUEST, MAC_NEW, PEER, ZERO_MAC, OTHER), MAC_NEW, 0.5)
    assert h.entry().mac == MAC_PEER
    # Gratuitous ARP (sender IP == target IP), broadcast: overrides locktime, STALE.
    garp = Arp(ARP_REQUEST, MAC_NEW, PEER, ZERO_MAC, PEER)
    h.table.receive(garp, MAC_NEW, 0.5, dst_mac=BROADCAST_MAC)
    assert h.entry() == NeighEntry(PEER, MAC_NEW, NudState.STALE, 0.5, 0.0, 0.5 - 60.0, 4, 0)
    assert h.table.poll_at() is None
    # A gratuitous reply (target MAC == sender MAC) does the same.
    garp_reply = Arp(ARP_REPLY, MAC_OTHER, PEER, MAC_OTHER, PEER)
    h.table.receive(garp_reply, MAC_OTHER, 0.6, dst_mac=BROADCAST_MAC)
    assert (h.entry().mac, h.entry().state) == (MAC_OTHER, NudState.STALE)
    # Gratuitous ARP for an address we have no entry for creates nothing.
    h.table.receive(Arp(ARP_REQUEST, MAC_NEW, OTHER, ZERO_MAC, OTHER), MAC_NEW, 0.7)
    assert [e.ip for e in h.table.entries()] == [PEER]
    assert h.sent == []


def test_duplicate_address_probe_is_answered_and_learns_nothing() -> None:
    h = Harness()
    h.at(1.0).receive(Arp(ARP_REQUEST, MAC_PEER, 0, ZERO_MAC, US), MAC_PEER, 1.0)
    assert h.table.entries() == []
    assert h.arps() == [
        (1.0, Ethernet(MAC_PEER, MAC_US, ETH_P_ARP), Arp(ARP_REPLY, MAC_US, US, MAC_PEER, 0))
    ]


def test_frames_for_other_hosts_and_odd_packets_are_ignored() -> None:
    h = Harness()
    request = Arp(ARP_REQUEST, MAC_PEER, PEER, ZERO_MAC, US)
    h.table.receive(request, MAC_PEER, 1.0, dst_mac=MAC_OTHER)
    h.table.receive(Arp(3, MAC_PEER, PEER, ZERO_MAC, US), MAC_PEER, 1.0)  # RARP op
    h.table.receive(Arp(ARP_REQUEST, MAC_PEER, PEER, ZERO_MAC, 0x7F000001), MAC_PEER, 1.0)
    h.table.receive(Arp(ARP_REQUEST, MAC_PEER, PEER, ZERO_MAC, 0xE0000001), MAC_PEER, 1.0)
    assert h.table.entries() == [] and h.sent == []


# ------------------------------------------------------------------ static and NOARP entries


def test_permanent_entry_needs_no_arp_and_ignores_the_wire() -> None:
    h = Harness()
    h.at(0.0).output(PEER, ip_packet(0), 0.0)  # INCOMPLETE with a queued packet
    h.table.add_static(PEER, MAC_PEER, now=0.5)
    assert h.ips() == [(0.0, Ethernet(MAC_PEER, MAC_US, ETH_P_IP), ip_packet(0))]
    h.table.receive(Arp(ARP_REPLY, MAC_NEW, PEER, MAC_NEW, PEER), MAC_NEW, 9.0)
    h.table.output(PEER, ip_packet(1), 9.0)
    assert h.entry().state is NudState.PERMANENT and h.entry().mac == MAC_PEER
    assert h.ips()[-1][1].dst == MAC_PEER
    assert h.table.poll_at() is None
    assert len(h.arps()) == 1  # only the request sent before the entry was made static


def test_broadcast_and_multicast_next_hops_resolve_without_arp() -> None:
    h = Harness()
    h.table.output(0xFFFFFFFF, ip_packet(0), 0.0)
    h.table.output(ip_from_str("224.0.0.251"), ip_packet(1), 0.0)
    assert [eth.dst for _, eth, _ in h.ips()] == [BROADCAST_MAC, bytes.fromhex("01005e0000fb")]
    assert {e.state for e in h.table.entries()} == {NudState.NOARP}
    assert h.arps() == []


# ------------------------------------------------------------------ GC, parameters, stats


def test_periodic_gc_removes_entries_unused_for_gc_stale_time() -> None:
    h = Harness(gc_thresh1=2)
    for ip, mac in ((PEER, MAC_PEER), (OTHER, MAC_OTHER)):
        h.table.receive(Arp(ARP_REQUEST, mac, ip, ZERO_MAC, US), mac, 0.0)
    assert h.table.poll_at() == 15.0  # base_reachable_time / 2
    h.at(45.0)
    assert len(h.table.entries()) == 2
    h.at(60.0)
    assert h.table.entries() == []
    stats = h.table.stats
    assert (stats["periodic_gc_runs"], stats["destroys"], stats["entries"]) == (4, 2, 0)
    assert h.table.poll_at() is None


def test_unknown_parameters_are_refused() -> None:
    with pytest.raises(KeyError, match="unres_qlen"):
        Harness(unres_qlen=101)


def test_stats_start_with_every_arp_cache_field() -> None:
    assert list(Harness().table.stats) == [
        "entries", "allocs", "destroys", "hash_grows", "lookups", "hits", "res_failed",
        "rcv_probes_mcast", "rcv_probes_ucast", "periodic_gc_runs", "forced_gc_runs",
        "unresolved_discards", "table_fulls",
    ]  # fmt: skip


# ------------------------------------------------------------------ invariants


_IPS = (PEER, OTHER, ip_from_str("10.0.0.4"))
_OPS = st.lists(
    st.tuples(
        st.sampled_from(["output", "reply", "bcast_reply", "request", "garp", "confirm"]),
        st.sampled_from(_IPS),
        st.floats(min_value=0.0, max_value=8.0),
        st.sampled_from([MAC_PEER, MAC_NEW]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(ops=_OPS, seed=st.integers(0, 2**32 - 1))
def test_every_packet_is_sent_queued_discarded_or_reported(ops, seed) -> None:
    h = Harness(seed=seed, unres_qlen_bytes=5000)
    t = 0.0
    hop_of: dict[int, int] = {}  # packet id -> next hop it was output to
    for op, ip, dt, mac in ops:
        t += dt
        table = h.at(t)
        if op == "output":
            hop_of[len(hop_of)] = ip
            table.output(ip, ip_packet(len(hop_of) - 1), t)
        elif op == "reply":
            table.receive(Arp(ARP_REPLY, mac, ip, MAC_US, US), mac, t, dst_mac=MAC_US)
        elif op == "bcast_reply":
            table.receive(Arp(ARP_REPLY, mac, ip, MAC_US, US), mac, t, dst_mac=BROADCAST_MAC)
        elif op == "request":
            table.receive(Arp(ARP_REQUEST, mac, ip, ZERO_MAC, US), mac, t)
        elif op == "garp":
            table.receive(Arp(ARP_REQUEST, mac, ip, ZERO_MAC, ip), mac, t)
        else:
            table.confirm(ip, t)
        for e in table.entries():
            valid = e.state not in (NudState.INCOMPLETE, NudState.FAILED, NudState.NONE)
            assert (e.mac is not None) == valid
            assert e.queued == 0 or e.state is NudState.INCOMPLETE
        when = table.poll_at()
        assert when is None or when > t
    h.at(t + 100.0)  # everything has resolved or failed by then
    assert sum(e.queued for e in h.table.entries()) == 0
    sent = [int.from_bytes(p[4:6], "big") for _, _, p in h.ips()]
    failed = [int.from_bytes(p[4:6], "big") for p in h.failed]
    discarded = h.table.stats["unresolved_discards"]
    assert len(sent) + len(failed) + discarded == len(hop_of)
    assert len(set(sent + failed)) == len(sent) + len(failed)
    for ip in _IPS:  # per next hop, packets leave (or fail) in the order they were given
        mine = [i for i in sent if hop_of[i] == ip]
        assert mine == sorted(mine)
        mine = [i for i in failed if hop_of[i] == ip]
        assert mine == sorted(mine)
