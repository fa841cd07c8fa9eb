"""Acceptance tests for issue 3, item 2: neighbour resolution (ARP) in a running network, in
virtual time, after Linux's net/core/neighbour.c and net/ipv4/arp.c (LINUX.md, "Neighbour / ARP").

client (10.0.1.2) -- r1 (10.0.1.1 | 10.0.2.1) -- server (10.0.2.2), 10 ms links without a
bandwidth limit, so a frame arrives exactly 10 ms after it leaves.  Frames are watched with a
recorder standing in for each link's pcap writer: it sees every frame when its last bit leaves
the sender (down links included), with the sender's MAC telling the direction.

Timings worked out by hand from the defaults (retrans_time 1 s, mcast_solicit 3, ucast_solicit 3,
delay_first_probe_time 5 s, unres_qlen_bytes 212992) and the table's own reachable_time.
"""

from __future__ import annotations

import pytest
import trio

import emunet
from emunet.stack.host import Host
from emunet.stack.neigh import NeighEntry, NudState
from emunet.stack.sock import UdpSocket
from emunet.wire.addr import BROADCAST_MAC, ip_from_str
from emunet.wire.arp import ARP_REPLY, ARP_REQUEST, Arp
from emunet.wire.ethernet import ETH_P_ARP, Ethernet
from emunet.wire.icmp import ICMP_DEST_UNREACH, ICMP_HOST_UNREACH

NS = 1_000_000_000
D = 0.010  # one-way delay of every link, seconds
D_NS = 10_000_000
CLIENT, R1_IN, R1_OUT, SERVER = "10.0.1.2", "10.0.1.1", "10.0.2.1", "10.0.2.2"
ABSENT_LOCAL = "10.0.1.99"  # on the client's subnet, no host there
ABSENT_REMOTE = "10.0.2.99"  # on the server's subnet behind r1, no host there
EPS = 0.001  # how far before / after an instant the table is looked at


class Recorder:
    """Stands in for a link's PcapWriter: keeps (ns, frame) for every frame put on the wire."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []

    def write(self, frame: bytes, ns: int) -> None:
        self.frames.append((ns, frame))

    def arp(self, sender_mac: bytes) -> list[tuple[int, bytes, Arp]]:
        """(ns, Ethernet destination, ARP body) of every ARP frame ``sender_mac`` sent."""
        out = []
        for ns, frame in self.frames:
            eth, body = Ethernet.parse(frame)
            if eth.ethertype == ETH_P_ARP and eth.src == sender_mac:
                out.append((ns, eth.dst, Arp.parse(body)[0]))
        return out


def three_hop(seed: int = 0) -> tuple[emunet.Network, Recorder, Recorder]:
    net = emunet.Network(seed=seed)
    net.add_host("client", interfaces={"eth0": f"{CLIENT}/24"}, routes={"default": R1_IN})
    net.add_router("r1", interfaces={"eth0": f"{R1_IN}/24", "eth1": f"{R1_OUT}/24"})
    net.add_host("server", interfaces={"eth0": f"{SERVER}/24"}, routes={"default": R1_OUT})
    left = net.add_link("client:eth0", "r1:eth0", delay="10ms")
    right = net.add_link("r1:eth1", "server:eth0", delay="10ms")
    left.pcap, right.pcap = Recorder(), Recorder()
    return net, left.pcap, right.pcap


def entry(host: Host, ip: str) -> NeighEntry:
    addr = ip_from_str(ip)
    found = [e for _, e in host.neighbours() if e.ip == addr]
    assert len(found) == 1, f"{host.name} has no neighbour entry for {ip}"
    return found[0]


def state(host: Host, ip: str) -> NudState:
    return entry(host, ip).state


def mac(net: emunet.Network, endpoint: str) -> bytes:
    node, ifname = endpoint.split(":")
    return net.host(node).devices[ifname].mac


# --------------------------------------------------------------------------- absent neighbour


async def test_absent_neighbour_three_broadcasts_then_failed_and_host_unreachable(autojump_clock):
    """A datagram to an address on the connected subnet where nobody answers: broadcast requests
    at 0, 1 and 2 s, FAILED at 3 s, and every packet queued meanwhile comes back to its (local)
    sender as ICMP host unreachable, through lo, in queue order."""
    net, left, _ = three_hop()
    client = net.host("client")
    async with net.running():
        sock = client.udp_socket(4000, recverr=True)
        await sock.sendto(b"first", (ABSENT_LOCAL, 9))
        assert state(client, ABSENT_LOCAL) is NudState.INCOMPLETE
        await trio.sleep_until(0.5)
        await sock.sendto(b"second", (ABSENT_LOCAL, 10))
        await trio.sleep_until(1.5)
        await sock.sendto(b"third", (ABSENT_LOCAL, 11))
        await trio.sleep_until(3 - EPS)
        e = entry(client, ABSENT_LOCAL)
        assert (e.state, e.queued) == (NudState.INCOMPLETE, 3)
        await trio.sleep_until(3 + EPS)
        e = entry(client, ABSENT_LOCAL)
        assert e.state is NudState.FAILED
        assert e.mac is None and e.queued == 0
        assert e.updated == pytest.approx(3.0, abs=1e-9)
        errors = [await sock.recv_error(trio.current_time()) for _ in range(3)]
        assert await sock.recv_error(trio.current_time()) is None
        sock.close()

    requests = left.arp(mac(net, "client:eth0"))
    assert [ns for ns, _, _ in requests] == [0, 1 * NS, 2 * NS]
    for _, dst, arp in requests:
        assert dst == BROADCAST_MAC
        assert arp.op == ARP_REQUEST
        assert arp.target_ip == ip_from_str(ABSENT_LOCAL)
        assert arp.sender_ip == ip_from_str(CLIENT)
        assert arp.sender_mac == mac(net, "client:eth0")
    # Nothing but those three requests left the client: the datagrams never went out.
    assert len([f for f in left.frames if f[1][6:12] == mac(net, "client:eth0")]) == 3

    # ICMP host unreachable from our own address (the error is generated locally and looped
    # back), one per queued datagram, in the order they were queued.
    for err, port in zip(errors, (9, 10, 11), strict=True):
        assert err.offender == ip_from_str(CLIENT)
        assert (err.type, err.code) == (ICMP_DEST_UNREACH, ICMP_HOST_UNREACH)
        assert (err.dst, err.dst_port) == (ip_from_str(ABSENT_LOCAL), port)
        assert err.time == pytest.approx(3.0, abs=1e-9)
    stats = client.devices["eth0"].neigh.stats
    assert stats["res_failed"] == 1
    assert stats["unresolved_discards"] == 0
    nstat = client.nstat()
    assert nstat["IcmpOutDestUnreachs"] == 3
    assert nstat["IcmpInDestUnreachs"] == 3
    assert nstat["UdpOutDatagrams"] == 3


async def test_ping_to_absent_local_neighbour_reports_host_unreachable(autojump_clock):
    """``ping 10.0.1.99``: no reply, one error (iputils prints "Destination Host
    Unreachable" from our own address)."""
    net, _, _ = three_hop()
    client = net.host("client")
    async with net.running():
        result = await client.ping(ABSENT_LOCAL, count=1, timeout=5)
    assert (result.sent, result.received, result.errors) == (1, 0, 1)
    assert client.nstat()["IcmpInDestUnreachs"] == 1


async def test_forwarding_router_answers_host_unreachable_for_each_queued_packet(autojump_clock):
    """A client pings through r1 an absent host behind r1.  The first echo leaves the client
    at 2 D (after its own ARP exchange with r1) and reaches r1 at 3 D: r1 broadcasts 3 requests
    on eth1 at 3 D, 1 s + 3 D and 2 s + 3 D, fails at 3 s + 3 D, and each of the 3 echo requests
    queued meanwhile draws ICMP host unreachable from r1 (10.0.1.1) to the client."""
    net, _, right = three_hop()
    client, r1 = net.host("client"), net.host("r1")
    async with net.running():
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                await trio.sleep_until(3 * D + 3 - EPS)
                assert state(r1, ABSENT_REMOTE) is NudState.INCOMPLETE
                assert entry(r1, ABSENT_REMOTE).queued == 3
                await trio.sleep_until(3 * D + 3 + EPS)
                e = entry(r1, ABSENT_REMOTE)
                assert e.state is NudState.FAILED
                assert e.updated == pytest.approx(3 * D + 3, abs=1e-9)

            nursery.start_soon(watch)
            result = await client.ping(ABSENT_REMOTE, count=3, interval=1.0, timeout=5)

    assert (result.sent, result.received, result.errors) == (3, 0, 3)
    requests = right.arp(mac(net, "r1:eth1"))
    assert [ns for ns, _, _ in requests] == [3 * D_NS, NS + 3 * D_NS, 2 * NS + 3 * D_NS]
    for _, dst, arp in requests:
        assert dst == BROADCAST_MAC
        assert (arp.op, arp.target_ip) == (ARP_REQUEST, ip_from_str(ABSENT_REMOTE))
        assert arp.sender_ip == ip_from_str(R1_OUT)
    assert r1.devices["eth1"].neigh.stats["res_failed"] == 1
    assert r1.nstat()["IpForwDatagrams"] == 3
    assert r1.nstat()["IcmpOutDestUnreachs"] == 3
    assert client.nstat()["IcmpInDestUnreachs"] == 3
    assert client.nstat()["IcmpInEchoReps"] == 0


async def test_forwarded_datagrams_come_back_as_host_unreachable_errors(autojump_clock):
    """The same for UDP: a socket with IP_RECVERR reads one host-unreachable error per
    datagram r1 had queued, each from r1's address on the client's side, at 3 s + 4 D (the
    client's ARP exchange, the hop to r1, r1's 3 s of ARP, the hop back)."""
    net, _, _ = three_hop()
    client = net.host("client")
    async with net.running():
        sock = client.udp_socket(4000, recverr=True)
        for port in (7, 8):
            await sock.sendto(b"x" * 100, (ABSENT_REMOTE, port))
        errors = [await sock.recv_error() for _ in range(2)]
        sock.close()
    for err, port in zip(errors, (7, 8), strict=True):
        assert err.offender == ip_from_str(R1_IN)
        assert (err.type, err.code) == (ICMP_DEST_UNREACH, ICMP_HOST_UNREACH)
        assert (err.dst, err.dst_port) == (ip_from_str(ABSENT_REMOTE), port)
        assert round(err.time * NS) == 3 * NS + 4 * D_NS


# --------------------------------------------------------------------------- unresolved queue


async def test_unresolved_queue_overflow_drops_the_oldest(autojump_clock):
    """120 datagrams of 1500 IP bytes sent at once to r1, not yet resolved: each is accounted
    as 1500 + 14 + 576 = 2090 bytes against unres_qlen_bytes 212992, so 101 fit; the 19 oldest
    are dropped (unresolved_discards) and the 101 newest go out in order when the reply comes
    back at 20 ms, arriving at 30 ms."""
    net, _, _ = three_hop()
    client, r1 = net.host("client"), net.host("r1")
    payload = 1500 - 20 - 8
    received: list[tuple[int, float]] = []
    async with net.running():
        server_sock = r1.udp_socket(5000)
        server_sock.rcvbuf = 1 << 24  # room for all of them: only the ARP queue may drop
        sock = client.udp_socket(4000)
        for seq in range(120):
            await sock.sendto(seq.to_bytes(4, "big") + bytes(payload - 4), (R1_IN, 5000))
        e = entry(client, R1_IN)
        assert (e.state, e.queued) == (NudState.INCOMPLETE, 101)
        assert client.devices["eth0"].neigh.stats["unresolved_discards"] == 19
        while len(received) < 101:
            data, _ = await server_sock.recvfrom()
            assert len(data) == payload
            received.append((int.from_bytes(data[:4], "big"), trio.current_time()))
        await trio.sleep(1)
        assert server_sock.pending() == 0
    assert [seq for seq, _ in received] == list(range(19, 120))
    assert all(round(t * NS) == 3 * D_NS for _, t in received)
    assert entry(client, R1_IN).state is NudState.REACHABLE
    assert client.devices["eth0"].neigh.stats["unresolved_discards"] == 19
    assert r1.nstat()["UdpRcvbufErrors"] == 0


# --------------------------------------------------------------------------- NUD timers


async def _resolve_r1(net: emunet.Network) -> tuple[UdpSocket, float]:
    """Send one datagram from the client to a socket on r1 (so nothing ever comes back to the
    client but ARP); return the client's socket and the reachable_time of its eth0 table.  The
    entry becomes REACHABLE when the reply arrives at 2 * D."""
    client, r1 = net.host("client"), net.host("r1")
    r1.udp_socket(5000)
    sock = client.udp_socket(4000)
    await sock.sendto(b"hello", (R1_IN, 5000))
    await trio.sleep_until(2 * D + EPS)
    e = entry(client, R1_IN)
    assert e.state is NudState.REACHABLE
    assert e.confirmed == pytest.approx(2 * D, abs=1e-9)
    reach = client.devices["eth0"].neigh.reachable_time
    assert 15.0 <= reach < 45.0  # base_reachable_time 30 s, drawn in [base/2, 3 * base/2)
    return sock, reach


@pytest.mark.parametrize("seed", [1, 2])
async def test_reachable_stale_delay_probe_reachable_at_exact_times(autojump_clock, seed):
    """REACHABLE expires at confirmed + reachable_time -> STALE (unused for 5 s); traffic at
    T2 -> DELAY, the datagram leaves at once with the cached address; at T2 + 5 s, unconfirmed
    -> PROBE with a unicast request to r1's MAC; r1's reply 2 D later -> REACHABLE."""
    net, left, _ = three_hop(seed)
    client = net.host("client")
    async with net.running():
        sock, reach = await _resolve_r1(net)
        t1 = 2 * D + reach
        await trio.sleep_until(t1 - EPS)
        assert state(client, R1_IN) is NudState.REACHABLE
        await trio.sleep_until(t1 + EPS)
        e = entry(client, R1_IN)
        assert e.state is NudState.STALE
        assert e.updated == pytest.approx(t1, abs=1e-9)
        assert e.mac == mac(net, "r1:eth0")

        t2 = t1 + 10.0
        await trio.sleep_until(t2)
        await sock.sendto(b"again", (R1_IN, 5000))
        e = entry(client, R1_IN)
        assert e.state is NudState.DELAY
        await trio.sleep_until(t2 + 5 - EPS)
        assert state(client, R1_IN) is NudState.DELAY
        await trio.sleep_until(t2 + 5 + EPS)
        e = entry(client, R1_IN)
        assert e.state is NudState.PROBE
        assert e.updated == pytest.approx(t2 + 5, abs=1e-9)
        await trio.sleep_until(t2 + 5 + 2 * D + EPS)
        e = entry(client, R1_IN)
        assert e.state is NudState.REACHABLE
        assert e.confirmed == pytest.approx(t2 + 5 + 2 * D, abs=1e-9)

    client_mac, r1_mac = mac(net, "client:eth0"), mac(net, "r1:eth0")
    sent = [(ns, frame) for ns, frame in left.frames if frame[6:12] == client_mac]
    # The datagram at T2 left at once (no ARP before it), to r1's cached MAC.
    data_frames = [(ns, f) for ns, f in sent if f[12:14] == b"\x08\x00"]
    assert len(data_frames) == 2
    assert data_frames[1][0] == pytest.approx(t2 * NS, abs=1)
    assert data_frames[1][1][0:6] == r1_mac
    requests = left.arp(client_mac)
    assert len(requests) == 2
    (first_ns, first_dst, _), (probe_ns, probe_dst, probe) = requests
    assert (first_ns, first_dst) == (0, BROADCAST_MAC)
    assert probe_ns == pytest.approx((t2 + 5) * NS, abs=1)
    assert probe_dst == r1_mac  # PROBE asks the cached address directly
    assert (probe.op, probe.target_ip) == (ARP_REQUEST, ip_from_str(R1_IN))
    replies = left.arp(r1_mac)
    assert [a.op for _, _, a in replies] == [ARP_REPLY, ARP_REPLY]


async def test_reachable_used_recently_expires_to_delay(autojump_clock):
    """Traffic 2 s before REACHABLE runs out (within delay_first_probe_time): the entry goes
    to DELAY, not STALE, at confirmed + reachable_time, and to PROBE 5 s later."""
    net, _, _ = three_hop(3)
    client = net.host("client")
    async with net.running():
        sock, reach = await _resolve_r1(net)
        t1 = 2 * D + reach
        await trio.sleep_until(t1 - 2)
        await sock.sendto(b"recent", (R1_IN, 5000))
        assert state(client, R1_IN) is NudState.REACHABLE
        await trio.sleep_until(t1 - EPS)
        assert state(client, R1_IN) is NudState.REACHABLE
        await trio.sleep_until(t1 + EPS)
        e = entry(client, R1_IN)
        assert e.state is NudState.DELAY
        assert e.updated == pytest.approx(t1, abs=1e-9)
        await trio.sleep_until(t1 + 5 - EPS)
        assert state(client, R1_IN) is NudState.DELAY
        await trio.sleep_until(t1 + 5 + EPS)
        assert state(client, R1_IN) is NudState.PROBE


async def test_probe_unanswered_three_unicast_requests_then_failed(autojump_clock):
    """In PROBE with the link down: ucast_solicit (3) unicast requests 1 s apart, all lost
    on the down link (counted as dropped_down), then FAILED 1 s after the last."""
    net, left, _ = three_hop(4)
    client = net.host("client")
    link = net.link("client:eth0", "r1:eth0")
    async with net.running():
        sock, reach = await _resolve_r1(net)
        t2 = 2 * D + reach + 1.0  # STALE since 2 D + reach
        await trio.sleep_until(t2)
        await sock.sendto(b"into the void", (R1_IN, 5000))  # STALE -> DELAY, sent at once
        await trio.sleep_until(t2 + 1)
        link.set(up=False)
        await trio.sleep_until(t2 + 5 + EPS)
        assert state(client, R1_IN) is NudState.PROBE
        await trio.sleep_until(t2 + 8 - EPS)
        e = entry(client, R1_IN)
        assert (e.state, e.probes) == (NudState.PROBE, 3)
        await trio.sleep_until(t2 + 8 + EPS)
        e = entry(client, R1_IN)
        assert e.state is NudState.FAILED
        assert e.updated == pytest.approx(t2 + 8, abs=1e-9)

    client_mac, r1_mac = mac(net, "client:eth0"), mac(net, "r1:eth0")
    probes = left.arp(client_mac)[1:]  # after the first broadcast at 0
    expected = [(t2 + k) * NS for k in (5, 6, 7)]
    assert [ns for ns, _, _ in probes] == pytest.approx(expected, abs=1)
    for _, dst, arp in probes:
        assert dst == r1_mac
        assert (arp.op, arp.target_ip) == (ARP_REQUEST, ip_from_str(R1_IN))
    assert link.stats.a_to_b.dropped_down == 3
    assert client.devices["eth0"].neigh.stats["res_failed"] == 1
