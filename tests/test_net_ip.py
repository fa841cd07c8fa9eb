"""Acceptance tests for issue 3, part A: the IPv4 path across running hosts, in virtual time.

client (10.0.1.2) -- r1 (10.0.1.1 | 10.0.2.1) -- server (10.0.2.2), 10 ms links at 100 Mbit/s.
Expected values are worked out here by hand from the model (serialization of each frame as it
is on the wire, Ethernet padding to 60 bytes, Linux's fragmentation rule of
net/ipv4/ip_output.c, the counters of net/ipv4/ip_forward.c, icmp.c, route.c's ip_error), never
read back from the code under test.
"""

from __future__ import annotations

import errno

import pytest
import trio

import emunet
from emunet.stack.ping import Hop
from emunet.wire.icmp import (
    ICMP_DEST_UNREACH,
    ICMP_FRAG_NEEDED,
    ICMP_NET_UNREACH,
    ICMP_PORT_UNREACH,
)

NS = 1_000_000_000
DELAY_NS = 10_000_000  # 10 ms per link, each way
RATE = 100_000_000  # 100 Mbit/s
ETH_HLEN = 14
ETH_ZLEN = 60  # frames are padded to 60 bytes (no FCS on our wire)
IP_HLEN = 20
ICMP_HLEN = 8
UDP_HLEN = 8
ARP_FRAME = ETH_ZLEN  # 14 + 28 bytes of ARP, padded to 60

CLIENT, R1_IN, R1_OUT, SERVER = "10.0.1.2", "10.0.1.1", "10.0.2.1", "10.0.2.2"

ICMP_COUNTERS = (
    "IcmpInMsgs",
    "IcmpOutMsgs",
    "IcmpInEchos",
    "IcmpOutEchoReps",
    "IcmpInEchoReps",
    "IcmpOutEchos",
    "IcmpInDestUnreachs",
    "IcmpOutDestUnreachs",
    "IcmpInTimeExcds",
    "IcmpOutTimeExcds",
    "IcmpInErrors",
    "IcmpOutErrors",
)


def ser_ns(frame_len: int) -> int:
    """Serialization time of one frame at 100 Mbit/s, in ns."""
    return max(frame_len, ETH_ZLEN) * 8 * NS // RATE


def hop_ns(frame_len: int) -> int:
    """One frame over one idle link: serialization plus propagation."""
    return ser_ns(frame_len) + DELAY_NS


def three_hop(
    *,
    seed: int = 0,
    mtu2: int | None = None,
    r1_kind: str = "router",
    client_routes: dict[str, str] | None = None,
    r1_routes: dict[str, str] | None = None,
) -> emunet.Network:
    net = emunet.Network(seed=seed)
    net.add_host(
        "client",
        interfaces={"eth0": f"{CLIENT}/24"},
        routes={"default": R1_IN} if client_routes is None else client_routes,
    )
    add = net.add_router if r1_kind == "router" else net.add_host
    add("r1", interfaces={"eth0": f"{R1_IN}/24", "eth1": f"{R1_OUT}/24"}, routes=r1_routes)
    net.add_host("server", interfaces={"eth0": f"{SERVER}/24"}, routes={"default": R1_OUT})
    net.add_link("client:eth0", "r1:eth0", delay="10ms", bandwidth="100Mbit")
    extra = {} if mtu2 is None else {"mtu": mtu2}
    net.add_link("r1:eth1", "server:eth0", delay="10ms", bandwidth="100Mbit", **extra)
    return net


def icmp_counters(net: emunet.Network, name: str) -> dict[str, int]:
    nstat = net.host(name).nstat()
    return {k: nstat[k] for k in ICMP_COUNTERS}


def expect_icmp(**nonzero: int) -> dict[str, int]:
    out = dict.fromkeys(ICMP_COUNTERS, 0)
    out.update(nonzero)
    return out


def rtt_ns(rtts: tuple[float, ...]) -> list[int]:
    return [round(t * NS) for t in rtts]


# --------------------------------------------------------------------------- 1. ping


@pytest.mark.parametrize("size", [56, 0, 1400])
async def test_ping_rtts_are_propagation_plus_serialization(autojump_clock, size: int) -> None:
    net = three_hop()
    async with net.running():
        result = await net.host("client").ping(SERVER, count=3, interval=1.0, size=size)
    # 56 data + 8 ICMP + 20 IP + 14 Ethernet = 98 bytes (7840 ns at 100 Mbit) for the default
    # size; 0 bytes of data gives a 42-byte frame padded to 60.
    echo = size + ICMP_HLEN + IP_HLEN + ETH_HLEN
    if size == 56:
        assert echo == 98 and ser_ns(echo) == 7840
    plain = 4 * hop_ns(echo)  # request: 2 hops, reply: 2 hops
    # First ping: client ARPs for r1 (request + reply on hop 1), sends the echo, r1 ARPs for
    # the server (request + reply on hop 2) and forwards it.  The server learned r1 from the
    # request (STALE -> DELAY: sent at once) and r1 learned the client likewise: no ARP on the
    # way back.
    first = 4 * hop_ns(ARP_FRAME) + plain
    assert result.sent == 3 and result.received == 3 and result.errors == 0
    assert rtt_ns(result.rtts) == [first, plain, plain]
    if size == 56:
        assert rtt_ns(result.rtts) == [80_050_560, 40_031_360, 40_031_360]


async def test_ping_counters_are_exact(autojump_clock) -> None:
    net = three_hop()
    async with net.running():
        result = await net.host("client").ping(SERVER, count=3)
    assert result.received == 3
    assert net.host("r1").nstat()["IpForwDatagrams"] == 6  # 3 requests + 3 replies
    assert icmp_counters(net, "client") == expect_icmp(
        IcmpOutMsgs=3, IcmpOutEchos=3, IcmpInMsgs=3, IcmpInEchoReps=3
    )
    assert icmp_counters(net, "server") == expect_icmp(
        IcmpInMsgs=3, IcmpInEchos=3, IcmpOutMsgs=3, IcmpOutEchoReps=3
    )
    assert icmp_counters(net, "r1") == expect_icmp()  # a router only forwards them
    r1 = net.host("r1").nstat()
    assert r1["IpInReceives"] == 6 and r1["IpInDelivers"] == 0 and r1["IpOutRequests"] == 0
    # ARP on the wire: one request and one reply per hop, nothing more (60-byte frames)
    hop1 = net.link("client:eth0", "r1:eth0").stats
    assert hop1.a_to_b.tx_frames == 1 + 3 and hop1.b_to_a.tx_frames == 1 + 3
    assert hop1.a_to_b.tx_bytes == ARP_FRAME + 3 * 98


async def test_ping_own_address_goes_through_loopback(autojump_clock) -> None:
    net = three_hop()
    async with net.running():
        client = net.host("client")
        result = await client.ping(CLIENT, count=3, interval=1.0)
        # the last reply is awaited (at least one interval), and comes at once
        assert trio.current_time() == 2.0
        with client.udp_socket(7000) as rx, client.udp_socket() as tx:
            await tx.sendto(b"to myself", (CLIENT, 7000))
            assert await rx.recvfrom() == (b"to myself", (CLIENT, tx.port))
        with client.udp_socket(recverr=True) as tx:
            await tx.sendto(b"nobody", (CLIENT, 7001))
            err = await tx.recv_error(deadline=trio.current_time() + 1)
            assert err is not None and err.offender == emunet_ip(CLIENT)
            assert (err.type, err.code) == (ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
        # r1's address on the far interface is r1's own too
        r1_self = await net.host("r1").ping(R1_OUT, count=1)
    assert result.sent == 3 and result.received == 3 and result.rtts == (0.0, 0.0, 0.0)
    assert r1_self.received == 1 and r1_self.rtts == (0.0,)
    assert icmp_counters(net, "client") == expect_icmp(
        IcmpOutMsgs=7, IcmpInMsgs=7, IcmpOutEchos=3, IcmpInEchos=3, IcmpOutEchoReps=3,
        IcmpInEchoReps=3, IcmpOutDestUnreachs=1, IcmpInDestUnreachs=1,
    )  # fmt: skip
    assert client.nstat()["UdpNoPorts"] == 1 and client.nstat()["UdpInDatagrams"] == 1
    # 3 echoes + 3 replies + 2 datagrams + 1 port unreachable
    assert client.lo.stats["tx_packets"] == 3 + 3 + 2 + 1
    # nothing touched the wire: no ARP for our own address, no echo
    for link in net.links.values():
        assert link.stats.a_to_b.tx_frames == 0 and link.stats.b_to_a.tx_frames == 0
    assert client.neighbours() == []


# --------------------------------------------------------------------------- 3. fragmentation


def linux_fragments(
    payload_len: int, mtu: int, *, start: int = 0, more: bool = False, hlen: int = IP_HLEN
) -> list[tuple[int, int, bool]]:
    """ip_do_fragment's slow path: (byte offset, IP total length, MF) of each fragment of a
    packet carrying ``payload_len`` bytes at byte offset ``start`` (MF ``more``): each takes
    min(left, mtu - hlen) bytes, rounded down to a multiple of 8 unless it is the last; MF on
    all but the last, and on the last too if the packet had it."""
    out = []
    left, offset = payload_len, start
    while left > 0:
        size = min(left, mtu - hlen)
        if size < left:
            size &= ~7
        left -= size
        out.append((offset, hlen + size, left > 0 or more))
        offset += size
    return out


def read_udp_fragments(path) -> list[tuple[int, int, bool, int, bytes]]:
    """(byte offset, IP total length, MF, id, IP payload) of the IPv4 UDP packets in a pcap,
    read with scapy (an independent parser)."""
    from scapy.layers.inet import IP
    from scapy.utils import rdpcap

    out = []
    for pkt in rdpcap(str(path)):
        if IP in pkt and pkt[IP].proto == 17:
            ip = pkt[IP]
            payload = bytes(ip)[ip.ihl * 4 : ip.len]
            out.append((ip.frag * 8, ip.len, bool(ip.flags.MF), ip.id, payload))
    return out


async def test_udp_datagram_fragmented_twice_arrives_intact(autojump_clock, tmp_path) -> None:
    net = three_hop(mtu2=576)
    net.capture(str(tmp_path))
    data = bytes((i * 7 + 3) & 0xFF for i in range(4000))
    async with net.running():
        client, server = net.host("client"), net.host("server")
        with server.udp_socket(5000) as rx, client.udp_socket() as tx:
            await tx.sendto(data, (SERVER, 5000))
            got, sender = await rx.recvfrom()
            sport = tx.port
    assert got == data and sender == (CLIENT, sport)

    udp_len = UDP_HLEN + len(data)  # 4008 bytes of IP payload
    # the client fragments for MTU 1500: 1480 + 1480 + 1048
    first_hop = linux_fragments(udp_len, 1500)
    assert first_hop == [(0, 1500, True), (1480, 1500, True), (2960, 1068, False)]
    # r1 fragments each fragment again for MTU 576 (556 -> 552 bytes per piece)
    second_hop = [
        piece
        for offset, total, mf in first_hop
        for piece in linux_fragments(total - IP_HLEN, 576, start=offset, more=mf)
    ]
    assert second_hop == [
        (0, 572, True), (552, 572, True), (1104, 396, True),
        (1480, 572, True), (2032, 572, True), (2584, 396, True),
        (2960, 572, True), (3512, 516, False),
    ]  # fmt: skip

    on_hop1 = read_udp_fragments(tmp_path / "client_eth0--r1_eth0.pcap")
    on_hop2 = read_udp_fragments(tmp_path / "r1_eth1--server_eth0.pcap")
    assert [f[:3] for f in on_hop1] == first_hop
    assert [f[:3] for f in on_hop2] == second_hop
    # one datagram: one id throughout, and the pieces add up to the UDP datagram sent
    assert len({f[3] for f in on_hop1 + on_hop2}) == 1
    segment = b"".join(f[4] for f in sorted(on_hop2))
    assert len(segment) == udp_len and segment[UDP_HLEN:] == data

    r1, cl, sv = (net.host(n).nstat() for n in ("r1", "client", "server"))
    assert r1["IpFragCreates"] == 8 and r1["IpFragOKs"] == 3 and r1["IpFragFails"] == 0
    assert r1["IpForwDatagrams"] == 3
    assert cl["IpFragCreates"] == 3 and cl["IpFragOKs"] == 1
    assert sv["IpReasmReqds"] == 8 and sv["IpReasmOKs"] == 1 and sv["IpReasmFails"] == 0
    assert sv["UdpInDatagrams"] == 1


async def test_df_datagram_draws_frag_needed_with_next_hop_mtu(autojump_clock) -> None:
    net = three_hop(mtu2=576)
    async with net.running():
        client, server = net.host("client"), net.host("server")
        with server.udp_socket(5000) as rx, client.udp_socket(recverr=True, df=True) as tx:
            # 1000 + 8 + 20 = 1028 bytes: fits the first hop (1500), not the second (576)
            await tx.sendto(bytes(1000), (SERVER, 5000))
            err = await tx.recv_error(deadline=trio.current_time() + 5)
            assert err is not None
            assert (err.type, err.code) == (ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED)
            assert err.info & 0xFFFF == 576  # next-hop MTU (RFC 1191)
            assert err.offender == emunet_ip(R1_IN)
            assert (err.dst, err.dst_port) == (emunet_ip(SERVER), 5000)
            # the path MTU is learnt: the same datagram now fails locally (IP_PMTUDISC_DO)
            with pytest.raises(OSError) as excinfo:
                await tx.sendto(bytes(1000), (SERVER, 5000))
            assert excinfo.value.errno == errno.EMSGSIZE
            # and one that fits 576 goes through, unfragmented
            await tx.sendto(bytes(576 - IP_HLEN - UDP_HLEN), (SERVER, 5000))
            got, _ = await rx.recvfrom()
            assert len(got) == 548 and rx.pending() == 0
    r1 = net.host("r1").nstat()
    assert r1["IpFragFails"] == 1 and r1["IpFragCreates"] == 0 and r1["IpFragOKs"] == 0
    assert r1["IpForwDatagrams"] == 1  # only the 548-byte datagram went on
    assert icmp_counters(net, "r1") == expect_icmp(IcmpOutMsgs=1, IcmpOutDestUnreachs=1)
    assert icmp_counters(net, "client") == expect_icmp(IcmpInMsgs=1, IcmpInDestUnreachs=1)
    # the refused send never became a packet: no IpOutRequests for it (__ip_local_out)
    assert net.host("client").nstat()["IpOutRequests"] == 2
    assert net.host("server").nstat()["IpReasmReqds"] == 0


def emunet_ip(text: str) -> int:
    from emunet.wire.addr import ip_from_str

    return ip_from_str(text)


# --------------------------------------------------------------------------- 5. traceroute


async def test_traceroute_reports_r1_then_server(autojump_clock) -> None:
    net = three_hop()
    async with net.running():
        hops = await net.host("client").traceroute(SERVER)
    probe = 32 + UDP_HLEN + IP_HLEN + ETH_HLEN  # 74-byte frames
    # an error quotes the probe's IP header + all of its 40 bytes of data (< 548)
    error = (IP_HLEN + UDP_HLEN + 32) + ICMP_HLEN + IP_HLEN + ETH_HLEN  # 102-byte frames
    # TTL 1: ARP on hop 1, the probe, time exceeded back (r1 knows the client from its request)
    ttl1 = 2 * hop_ns(ARP_FRAME) + hop_ns(probe) + hop_ns(error)
    # TTL 2: client knows r1; r1 ARPs for the server; port unreachable back over two hops
    ttl2 = 2 * hop_ns(probe) + 2 * hop_ns(ARP_FRAME) + 2 * hop_ns(error)
    assert (ttl1, ttl2) == (40_023_680, 60_037_760)
    assert [(h.ttl, h.address, h.reached) for h in hops] == [(1, R1_IN, False), (2, SERVER, True)]
    assert [round(h.rtt * NS) for h in hops] == [ttl1, ttl2]
    assert hops == [Hop(1, R1_IN, ttl1 / NS, False), Hop(2, SERVER, ttl2 / NS, True)]
    r1 = net.host("r1").nstat()
    assert r1["IpInHdrErrors"] == 1  # ip_forward counts the expired TTL as a header error
    assert r1["IpForwDatagrams"] == 2  # the TTL-2 probe and the port unreachable
    assert icmp_counters(net, "r1") == expect_icmp(IcmpOutMsgs=1, IcmpOutTimeExcds=1)
    assert icmp_counters(net, "client") == expect_icmp(
        IcmpInMsgs=2, IcmpInTimeExcds=1, IcmpInDestUnreachs=1
    )
    assert icmp_counters(net, "server") == expect_icmp(IcmpOutMsgs=1, IcmpOutDestUnreachs=1)
    assert net.host("server").nstat()["UdpNoPorts"] == 1


async def test_ping_with_ttl_1_draws_time_exceeded_from_r1(autojump_clock) -> None:
    net = three_hop()
    async with net.running():
        result = await net.host("client").ping(SERVER, count=1, ttl=1, timeout=2.0)
    assert (result.sent, result.received, result.errors) == (1, 0, 1)
    assert icmp_counters(net, "r1") == expect_icmp(IcmpOutMsgs=1, IcmpOutTimeExcds=1)
    assert icmp_counters(net, "client") == expect_icmp(
        IcmpOutMsgs=1, IcmpOutEchos=1, IcmpInMsgs=1, IcmpInTimeExcds=1
    )
    assert icmp_counters(net, "server") == expect_icmp()
    assert net.host("r1").nstat()["IpForwDatagrams"] == 0


# --------------------------------------------------------------------------- 10. tasks


def _all_tasks(task: trio.lowlevel.Task):
    yield task
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            yield from _all_tasks(child)


async def test_each_host_runs_one_task_per_layer(autojump_clock) -> None:
    net = three_hop()
    async with net.running():
        names = [t.name for t in _all_tasks(trio.lowlevel.current_root_task())]
    interfaces = {"client": ["eth0"], "r1": ["eth0", "eth1"], "server": ["eth0"]}
    for host, ifnames in interfaces.items():
        expected = [f"{host}/{layer}" for layer in ("neigh", "ip", "udp", "tcp")]
        for ifname in ifnames:
            expected += [f"{host}/dev-rx:{ifname}", f"{host}/dev-tx:{ifname}"]
        for name in expected:
            assert names.count(name) == 1, name
        # and no layer runs twice or unnamed: the host's own task plus its layers
        mine = sorted(n for n in names if n.startswith(f"{host}/"))
        assert mine == sorted([*expected, f"{host}/host"])
    # A link runs no task of its own: each end's dev-tx task puts frames on the wire and
    # delivers them to the far end at their arrival times.
    assert not [n for n in names if n.startswith("wire:")]


# --------------------------------------------------------------------- no route, no forwarding


async def test_no_route_gives_enetunreach(autojump_clock) -> None:
    net = three_hop(client_routes={})  # connected route only, no default
    async with net.running():
        client = net.host("client")
        with client.udp_socket() as sock:
            with pytest.raises(OSError) as excinfo:
                await sock.sendto(b"x", ("10.9.9.9", 9))
            assert excinfo.value.errno == errno.ENETUNREACH
        with pytest.raises(OSError) as excinfo:
            await client.ping("10.9.9.9", count=1)
        assert excinfo.value.errno == errno.ENETUNREACH
        # the connected subnet is still reachable
        assert (await client.ping(R1_IN, count=1)).received == 1
    nstat = net.host("client").nstat()
    # counted once by each failed send, before any packet exists (udp_sendmsg, ping_v4_sendmsg)
    assert nstat["IpOutNoRoutes"] == 2
    assert nstat["IpOutRequests"] == 1 and nstat["UdpOutDatagrams"] == 0
    assert nstat["IcmpOutEchos"] == 1 and nstat["IcmpOutMsgs"] == 1


@pytest.mark.parametrize("how", ["plain host", "interface forwarding off"])
async def test_packet_not_for_us_without_forwarding_is_an_addr_error(
    autojump_clock, how: str
) -> None:
    if how == "plain host":
        net = three_hop(r1_kind="host")
    else:
        net = three_hop()
        net.host("r1").sysctl["net.ipv4.conf.eth0.forwarding"] = 0
    async with net.running():
        result = await net.host("client").ping(SERVER, count=2, timeout=1.0)
        # r1 itself still answers
        assert (await net.host("client").ping(R1_IN, count=1)).received == 1
    assert (result.sent, result.received, result.errors) == (2, 0, 0)
    r1 = net.host("r1").nstat()
    assert r1["IpInAddrErrors"] == 2 and r1["IpForwDatagrams"] == 0
    assert r1["IpInNoRoutes"] == 0 and r1["IcmpOutDestUnreachs"] == 0  # dropped silently
    assert net.link("r1:eth1", "server:eth0").stats.a_to_b.tx_frames == 0


async def test_router_without_route_answers_net_unreachable(autojump_clock) -> None:
    net = three_hop()
    async with net.running():
        client = net.host("client")
        with client.udp_socket(recverr=True) as sock:
            await sock.sendto(b"hello", ("10.9.9.9", 9))
            err = await sock.recv_error(deadline=trio.current_time() + 5)
        result = await client.ping("10.9.9.9", count=1, timeout=1.0)
    assert err is not None
    assert (err.type, err.code) == (ICMP_DEST_UNREACH, ICMP_NET_UNREACH)
    assert err.offender == emunet_ip(R1_IN) and err.dst == emunet_ip("10.9.9.9")
    assert err.dst_port == 9
    assert (result.sent, result.received, result.errors) == (1, 0, 1)
    r1 = net.host("r1").nstat()
    assert r1["IpInNoRoutes"] == 2 and r1["IpForwDatagrams"] == 0
    assert icmp_counters(net, "r1") == expect_icmp(IcmpOutMsgs=2, IcmpOutDestUnreachs=2)
    assert icmp_counters(net, "client") == expect_icmp(
        IcmpOutMsgs=1, IcmpOutEchos=1, IcmpInMsgs=2, IcmpInDestUnreachs=2
    )
