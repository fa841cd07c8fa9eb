"""Acceptance tests for issue 3, item 4: reassembly through the running stack (ip_defrag of
net/ipv4/ip_fragment.c and inet_fragment.c; LINUX.md, "ip_defrag"), in virtual time.

client (10.0.1.2) -- server (10.0.1.3) on one 10 ms link.  Hand-built fragments are injected
into the server's device with ``dev.netif_rx(frame)`` as if they had come off the link from the
client (Ethernet destination: the server's MAC); replies and ICMP errors travel the real link.
"""

from __future__ import annotations

import pytest
import trio

import emunet
from emunet.stack.frag import FRAG_TRUESIZE_OVERHEAD
from emunet.wire.addr import ip_from_str
from emunet.wire.ethernet import ETH_P_IP, Ethernet
from emunet.wire.icmp import ICMP_EXC_FRAGTIME, ICMP_TIME_EXCEEDED, Icmp
from emunet.wire.ipv4 import IPPROTO_ICMP, IPPROTO_UDP, Ipv4
from emunet.wire.udp import Udp

NS = 1_000_000_000
D = 0.010
D_NS = 10_000_000
CLIENT, SERVER = "10.0.1.2", "10.0.1.3"
SPOOFED = "10.0.1.66"  # the flood's source: nobody there, and nothing is ever sent to it
SPORT, DPORT = 4000, 5000
EPS = 0.001
HIGH_THRESH = 4 * 1024 * 1024  # net.ipv4.ipfrag_high_thresh


class Recorder:
    """Stands in for the link's PcapWriter: (ns, frame) of every frame put on the wire."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []

    def write(self, frame: bytes, ns: int) -> None:
        self.frames.append((ns, frame))


def pair() -> tuple[emunet.Network, Recorder]:
    net = emunet.Network(seed=5)
    net.add_host("client", interfaces={"eth0": f"{CLIENT}/24"})
    net.add_host("server", interfaces={"eth0": f"{SERVER}/24"})
    link = net.add_link("client:eth0", "server:eth0", delay="10ms")
    link.pcap = Recorder()
    return net, link.pcap


def datagram(data: bytes, src: str = CLIENT) -> bytes:
    """A whole UDP datagram (header + data) from ``src``:SPORT to the server's DPORT."""
    return Udp(SPORT, DPORT).build(data, ip_from_str(src), ip_from_str(SERVER))


def fragment(
    segment: bytes, start: int, end: int, ident: int, *, src: str = CLIENT, last: bool | None = None
) -> Ipv4:
    """The IPv4 header of the fragment carrying ``segment[start:end]`` (start a multiple of 8);
    MF unless it reaches the end of the segment (or as ``last`` says)."""
    assert start % 8 == 0
    mf = end < len(segment) if last is None else not last
    return Ipv4(
        ip_from_str(src),
        ip_from_str(SERVER),
        IPPROTO_UDP,
        id=ident,
        mf=mf,
        frag_offset=start // 8,
    )


def frame(net: emunet.Network, header: Ipv4, payload: bytes) -> bytes:
    """An Ethernet frame from the client's MAC to the server's, carrying one IP packet."""
    server, client = net.host("server"), net.host("client")
    eth = Ethernet(server.devices["eth0"].mac, client.devices["eth0"].mac, ETH_P_IP)
    return eth.build(header.build(payload))


def inject(net: emunet.Network, segment: bytes, pieces, ident: int, **kw) -> None:
    dev = net.host("server").devices["eth0"]
    for start, end in pieces:
        dev.netif_rx(frame(net, fragment(segment, start, end, ident, **kw), segment[start:end]))


def counters(host, *names: str) -> tuple[int, ...]:
    nstat = host.nstat()
    return tuple(nstat[n] for n in names)


REASM = ("IpReasmReqds", "IpReasmOKs", "IpReasmFails", "IpExtReasmOverlaps", "IpReasmTimeout")


async def test_out_of_order_and_duplicate_fragments_reassemble(autojump_clock):
    """Last fragment first (twice), the middle one twice, the first one last: duplicates lying
    inside data already held are dropped alone, and the datagram reaches the socket whole."""
    net, _ = pair()
    server = net.host("server")
    data = bytes(range(256)) * 11 + bytes(range(176))  # 2992 bytes: an 3000-byte segment
    segment = datagram(data)
    async with net.running():
        sock = server.udp_socket(DPORT)
        order = [(2000, 3000), (2000, 3000), (1000, 2000), (1000, 2000), (0, 1000)]
        inject(net, segment, order, ident=0x1234)
        got, (addr, port) = await sock.recvfrom()
        assert trio.current_time() == 0.0  # all of it at the instant of injection
        await trio.sleep(1)
        assert sock.pending() == 0
        reasm = server.ip.reasm
        assert (reasm.queues, reasm.mem) == (0, 0)
    assert got == data
    assert (addr, port) == (CLIENT, SPORT)
    assert counters(server, *REASM) == (5, 1, 0, 0, 0)
    assert server.nstat()["IpInDelivers"] == 1
    assert server.nstat()["IpInReceives"] == 5


async def test_partial_overlap_kills_the_queue(autojump_clock):
    """[0, 1000) then [496, 1496): a partial overlap (CVE-2018-5391 rule) throws the whole
    queue away.  The remaining fragments then start a new queue that can never complete, and it
    times out 30 s later without an ICMP error, since its offset-0 fragment never came."""
    net, rec = pair()
    server = net.host("server")
    segment = datagram(bytes(2992))
    async with net.running():
        sock = server.udp_socket(DPORT)
        inject(net, segment, [(0, 1000)], ident=7)
        dev = server.devices["eth0"]
        overlap = fragment(segment, 496, 1496, 7, last=False)
        dev.netif_rx(frame(net, overlap, segment[496:1496]))
        await trio.sleep(EPS)
        assert counters(server, *REASM) == (2, 0, 1, 1, 0)
        assert (server.ip.reasm.queues, server.ip.reasm.mem) == (0, 0)
        inject(net, segment, [(1000, 2000), (2000, 3000)], ident=7)
        await trio.sleep(EPS)
        assert server.ip.reasm.queues == 1
        await trio.sleep_until(31)
        assert sock.pending() == 0
    assert counters(server, *REASM) == (4, 0, 2, 1, 1)
    assert server.nstat()["IcmpOutTimeExcds"] == 0
    assert not [f for _, f in rec.frames if f[6:12] == server.devices["eth0"].mac]


async def test_missing_fragment_times_out_at_30s_with_icmp_only_for_first(autojump_clock):
    """Two incomplete datagrams injected at t0: A holds its offset-0 fragment, B only a middle
    one.  Both queues die at exactly t0 + 30 s (ipfrag_time, never extended); only A draws ICMP
    time exceeded, code 1 (fragment reassembly time exceeded), quoting A's first fragment."""
    net, rec = pair()
    client, server = net.host("client"), net.host("server")
    segment = datagram(bytes(2992))
    t0 = 1.0
    async with net.running():
        # Resolve both ways first, so that the error leaves the server the moment it is made.
        ping = await client.ping(SERVER, count=1)
        assert ping.received == 1
        sock = client.udp_socket(SPORT, recverr=True)
        server.udp_socket(DPORT)
        await trio.sleep_until(t0)
        inject(net, segment, [(0, 1000)], ident=0xA)
        inject(net, segment, [(1000, 2000)], ident=0xB)
        # A later fragment of A does not extend A's timer.
        await trio.sleep_until(t0 + 20)
        inject(net, segment, [(2000, 3000)], ident=0xA)
        await trio.sleep_until(t0 + 30 - EPS)
        assert server.ip.reasm.queues == 2
        assert counters(server, "IpReasmTimeout", "IcmpOutTimeExcds") == (0, 0)
        err = await sock.recv_error()
        assert server.ip.reasm.queues == 0
        assert server.ip.reasm.mem == 0
        assert await sock.recv_error(trio.current_time() + 60) is None
    assert (err.type, err.code) == (ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME)
    assert err.offender == ip_from_str(SERVER)
    assert (err.dst, err.dst_port) == (ip_from_str(SERVER), DPORT)
    assert round(err.time * NS) == round(t0 * NS) + 30 * NS + D_NS
    assert counters(server, *REASM) == (3, 0, 2, 0, 2)
    assert counters(server, "IcmpOutTimeExcds", "IcmpOutMsgs") == (1, 2)  # + the echo reply
    assert counters(client, "IcmpInTimeExcds") == (1,)

    # On the wire: one ICMP error from the server, leaving at t0 + 30 s exactly.
    server_mac = server.devices["eth0"].mac
    errors = []
    for ns, f in rec.frames:
        if f[6:12] != server_mac or f[12:14] != b"\x08\x00":
            continue
        ip, payload = Ipv4.parse(f[14:])
        if ip.proto == IPPROTO_ICMP and payload[0] == ICMP_TIME_EXCEEDED:
            errors.append((ns, ip, payload))
    assert len(errors) == 1
    ns, ip, payload = errors[0]
    assert ns == round(t0 * NS) + 30 * NS
    assert (ip.src, ip.dst) == (ip_from_str(SERVER), ip_from_str(CLIENT))
    icmp, quoted = Icmp.parse(payload)
    assert (icmp.type, icmp.code) == (ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME)
    inner, rest = Ipv4.parse_header(quoted)
    assert (inner.id, inner.frag_offset, inner.mf) == (0xA, 0, True)
    assert rest[:8] == segment[:8]  # the quoted UDP header


async def test_fragment_flood_is_held_under_4mib_and_traffic_recovers(autojump_clock):
    """10,000 datagrams of which only a second 1480-byte fragment ever comes (each 1500 IP
    bytes, accounted 1500 + 768).  ip_defrag refuses a fragment while more than
    ipfrag_high_thresh (4 MiB) is held, so memory stops after the fragment that crossed it:
    1850 queues, 1850 * 2268 = 4,195,800 bytes, never more, and the other 8150 fragments fail.
    Meanwhile an unfragmented datagram still gets through and a fragmented one does not; once
    the flood's queues time out (30 s, no ICMP: no offset-0 fragments), fragmented traffic
    reassembles again."""
    net, _ = pair()
    client, server = net.host("client"), net.host("server")
    dev = server.devices["eth0"]
    truesize = 1500 + FRAG_TRUESIZE_OVERHEAD
    accepted = HIGH_THRESH // truesize + 1
    assert accepted == 1850
    flood_seg = datagram(bytes(2952), src=SPOOFED)  # 2960 bytes: [1480, 2960) is the 2nd piece
    t0 = 1.0
    async with net.running():
        sock = server.udp_socket(DPORT)
        sock.rcvbuf = 1 << 22
        sender = client.udp_socket(SPORT)
        await sender.sendto(b"warm-up", (SERVER, DPORT))  # resolves ARP both ways
        assert (await sock.recvfrom())[0] == b"warm-up"
        await trio.sleep_until(t0)

        peak = 0
        reasm = server.ip.reasm
        for batch in range(100):
            for ident in range(batch * 100, batch * 100 + 100):
                header = fragment(flood_seg, 1480, 2960, ident, src=SPOOFED, last=False)
                dev.netif_rx(frame(net, header, flood_seg[1480:2960]))
            await trio.sleep(0.0001)
            assert reasm.mem <= HIGH_THRESH + truesize  # at most the one that crossed it
            peak = max(peak, reasm.mem)
        assert peak == reasm.mem == accepted * truesize == 4_195_800
        assert reasm.queues == accepted
        assert counters(server, "IpReasmReqds", "IpReasmFails") == (10_000, 10_000 - accepted)
        assert dev.stats["rx_dropped"] == 0

        # While memory is full: small datagrams pass, fragmented ones are refused.
        await sender.sendto(b"small", (SERVER, DPORT))
        assert (await sock.recvfrom())[0] == b"small"
        await sender.sendto(bytes(3000), (SERVER, DPORT))  # 3 fragments at MTU 1500
        await trio.sleep(1)
        assert sock.pending() == 0
        assert counters(server, "IpReasmFails", "IpReasmOKs") == (10_000 - accepted + 3, 0)
        assert reasm.mem == accepted * truesize

        # The flood's queues die 30 s after they were made; then reassembly works again.
        await trio.sleep_until(t0 + 30 + 0.01 + EPS)
        assert (reasm.queues, reasm.mem) == (0, 0)
        assert server.nstat()["IpReasmTimeout"] == accepted
        big = bytes(range(256)) * 12
        await sender.sendto(big, (SERVER, DPORT))
        data, _ = await sock.recvfrom()
    assert data == big
    assert server.nstat()["IpReasmOKs"] == 1
    assert server.nstat()["IcmpOutTimeExcds"] == 0
    assert server.nstat()["IpReasmReqds"] == 10_000 + 3 + 3


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (0, 2, 1)])
async def test_real_fragments_in_any_order_reassemble(autojump_clock, order):
    """Fragments cut by the client's own ip_output (MTU 1500), captured and then injected in
    every sort of order, reassemble to the datagram the client sent."""
    net, rec = pair()
    client, server = net.host("client"), net.host("server")
    async with net.running():
        sock = server.udp_socket(DPORT)
        sender = client.udp_socket(SPORT)
        payload = bytes(range(251)) * 16  # 4016 bytes -> 3 fragments
        await sender.sendto(payload, (SERVER, DPORT))
        first, _ = await sock.recvfrom()
        assert first == payload
        sent = [f for _, f in rec.frames if f[12:14] == b"\x08\x00"]
        assert len(sent) == 3
        for i in order:
            dev = server.devices["eth0"]
            dev.netif_rx(sent[i])
        second, _ = await sock.recvfrom()
    assert second == payload
    assert server.nstat()["IpReasmOKs"] == 2
