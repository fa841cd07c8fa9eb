"""Acceptance tests for issue 3, item 6: link impairments observed through the running stack
(fabric/link.py and fabric/impair.py, netem's model; the receive checks of net/ipv4/ip_input.c
and udp.c that must catch a corrupted frame), in virtual time.

client (10.0.1.2) -- server (10.0.1.3) on one link.  Every test first resolves ARP with the
link clean, then changes the link with ``link.set(...)`` and sends UDP datagrams carrying a
sequence number, counted where they arrive: the server's socket.
"""

from __future__ import annotations

import math

import pytest
import trio

import emunet
from emunet.fabric.link import Link
from emunet.wire.checksum import internet_checksum

NS = 1_000_000_000
CLIENT, SERVER = "10.0.1.2", "10.0.1.3"
PORT = 5000
ETH_HLEN, IP_HLEN, UDP_HLEN = 14, 20, 8


class Recorder:
    """Stands in for the link's PcapWriter: (ns, frame) as each frame's last bit leaves."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []

    def write(self, frame: bytes, ns: int) -> None:
        self.frames.append((ns, frame))


def pair(**link: object) -> tuple[emunet.Network, Link]:
    net = emunet.Network(seed=11)
    net.add_host("client", interfaces={"eth0": f"{CLIENT}/24"})
    net.add_host("server", interfaces={"eth0": f"{SERVER}/24"})
    return net, net.add_link("client:eth0", "server:eth0", **link)


def seq_payload(seq: int, size: int) -> bytes:
    """``size`` bytes: the sequence number, then a pattern derived from it."""
    head = seq.to_bytes(4, "big")
    return head + bytes((seq + i) & 0xFF for i in range(size - 4))


class Sink:
    """Reads the server's socket in its own task: (seq, arrival time) per datagram."""

    def __init__(self, net: emunet.Network, size: int) -> None:
        self.sock = net.host("server").udp_socket(PORT)
        self.size = size
        self.got: list[tuple[int, float]] = []

    async def run(self) -> None:
        while True:
            data, _ = await self.sock.recvfrom()
            seq = int.from_bytes(data[:4], "big")
            assert data == seq_payload(seq, self.size), "a datagram arrived damaged"
            self.got.append((seq, trio.current_time()))

    @property
    def seqs(self) -> list[int]:
        return [s for s, _ in self.got]


async def warm_up(net: emunet.Network, sock) -> None:
    """One datagram before the impairments: ARP resolved, the server's socket reached."""
    await sock.sendto(b"warm-up!", (SERVER, 9))  # a closed port: port unreachable comes back
    await trio.sleep(0.5)


def binomial_bounds(n: int, p: float, confidence: float) -> tuple[int, int]:
    """The central ``confidence`` interval of Binomial(n, p): the smallest k with
    P(X <= k) > (1 - confidence) / 2, and the smallest k with P(X <= k) >= (1 + confidence) / 2."""
    tail = (1 - confidence) / 2
    log_p, log_q = math.log(p), math.log1p(-p)
    base = math.lgamma(n + 1)
    cdf, lo, hi = 0.0, None, None
    for k in range(n + 1):
        cdf += math.exp(base - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p
                        + (n - k) * log_q)  # fmt: skip
        if lo is None and cdf > tail:
            lo = k
        if cdf >= 1 - tail:
            hi = k
            break
    assert lo is not None and hi is not None
    return lo, hi


def test_binomial_bounds_helper() -> None:
    # Normal approximation for Binomial(10000, 0.1): 1000 +- 3.29 * 30 = [901, 1099].
    lo, hi = binomial_bounds(10_000, 0.1, 0.999)
    assert 895 <= lo <= 905 and 1095 <= hi <= 1105
    assert binomial_bounds(10, 0.5, 0.9) == (2, 8)


async def test_loss_10_percent_within_binomial_bounds(autojump_clock):
    """10,000 datagrams over a link losing 10%: the number missing at the receiver lies in
    the central 99.9% interval of Binomial(10000, 0.1), and equals the link's own count."""
    net, link = pair(delay="1ms", bandwidth="100Mbit")
    client = net.host("client")
    sink = Sink(net, 64)
    async with net.running(), trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        sock = client.udp_socket(4000)
        await warm_up(net, sock)
        before = link.stats.a_to_b
        link.set(loss="10%")
        for burst in range(100):  # 100 frames of 106 bytes take 848 us: the queue stays short
            for seq in range(burst * 100, burst * 100 + 100):
                await sock.sendto(seq_payload(seq, 64), (SERVER, PORT))
            await trio.sleep(0.001)
        await trio.sleep(0.1)
        after = link.stats.a_to_b
        nursery.cancel_scope.cancel()
    lost = 10_000 - len(sink.got)
    lo, hi = binomial_bounds(10_000, 0.1, 0.999)
    assert lo <= lost <= hi
    assert after.tx_frames - before.tx_frames == 10_000
    assert after.lost - before.lost == lost
    assert sorted(sink.seqs) == sink.seqs  # loss alone never reorders
    assert client.link_stats()["eth0"]["tx_dropped"] == 0


async def test_serialization_1000_frames_of_1250_bytes_at_10mbit_take_1s(autojump_clock):
    """1000 datagrams of 1208 bytes (1250-byte frames) sent at once at t0 over 10 Mbit/s with
    1 ms delay: frame k's last bit leaves at t0 + k ms (1250 * 8 / 10^7 s each), so it arrives
    at t0 + k ms + 1 ms, and the last one leaves at exactly t0 + 1 s."""
    net, link = pair(delay="1ms", bandwidth="10Mbit")
    rec = Recorder()
    client = net.host("client")
    size = 1250 - ETH_HLEN - IP_HLEN - UDP_HLEN
    assert size == 1208
    sink = Sink(net, size)
    t0 = 1.0
    t0_ns = 1 * NS
    async with net.running(), trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        sock = client.udp_socket(4000)
        await warm_up(net, sock)
        link.pcap = rec
        await trio.sleep_until(t0)
        for seq in range(1000):
            await sock.sendto(seq_payload(seq, size), (SERVER, PORT))
        assert trio.current_time() == t0  # sending took no virtual time
        await trio.sleep_until(t0 + 2)
        nursery.cancel_scope.cancel()
    assert sink.seqs == list(range(1000))
    arrivals = [round(t * NS) for _, t in sink.got]
    assert arrivals == [t0_ns + (k + 1) * 1_000_000 + 1_000_000 for k in range(1000)]
    assert arrivals[-1] - t0_ns == NS + 1_000_000  # 1 s on the wire, then the 1 ms delay
    departures = [ns for ns, f in rec.frames if len(f) == 1250]
    assert departures[-1] == t0_ns + NS
    assert link.stats.a_to_b.tx_bytes >= 1000 * 1250


async def test_qdisc_overflow_tail_drops_and_counts_tx_dropped(autojump_clock):
    """200 datagrams handed at once to a 50-frame qdisc at 10 Mbit/s: the transmitter takes the
    first frame onto the wire, 50 wait, the other 149 are tail-dropped (tx_dropped)."""
    net, link = pair(delay="1ms", bandwidth="10Mbit", queue=50)
    client = net.host("client")
    sink = Sink(net, 1208)
    async with net.running(), trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        sock = client.udp_socket(4000)
        await warm_up(net, sock)
        dropped_before = client.link_stats()["eth0"]["tx_dropped"]
        for seq in range(200):
            await sock.sendto(seq_payload(seq, 1208), (SERVER, PORT))
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert client.link_stats()["eth0"]["tx_dropped"] - dropped_before == 149
    assert sink.seqs == list(range(51))  # tail drop: the first 51 made it
    # + the ARP request and the warm-up datagram
    assert link.stats.a_to_b.tx_frames == 51 + 2
    assert net.host("server").link_stats()["eth0"]["rx_packets"] == 51 + 2


async def test_link_down_loses_frames_and_counts_them(autojump_clock):
    """``link.set(up=False)``: the sender's device still transmits (tx_packets), the wire drops
    every frame (dropped_down), nothing arrives; back up, traffic flows again."""
    net, link = pair(delay="1ms", bandwidth="100Mbit")
    client, server = net.host("client"), net.host("server")
    sink = Sink(net, 100)
    async with net.running(), trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        sock = client.udp_socket(4000)
        await warm_up(net, sock)
        tx_before = client.link_stats()["eth0"]["tx_packets"]
        rx_before = server.link_stats()["eth0"]["rx_packets"]
        link.set(up=False)
        assert not link.up
        for seq in range(10):
            await sock.sendto(seq_payload(seq, 100), (SERVER, PORT))
        await trio.sleep(0.1)
        assert link.stats.a_to_b.dropped_down == 10
        assert client.link_stats()["eth0"]["tx_packets"] - tx_before == 10
        assert server.link_stats()["eth0"]["rx_packets"] == rx_before
        assert sink.got == []
        link.set(up=True)
        for seq in range(10, 15):
            await sock.sendto(seq_payload(seq, 100), (SERVER, PORT))
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert sink.seqs == [10, 11, 12, 13, 14]
    assert link.stats.a_to_b.dropped_down == 10
    assert link.stats.a_to_b.lost == 0


async def test_duplicates_are_delivered_twice_and_counted(autojump_clock):
    """duplicate 20%: UDP delivers both copies; the receiver sees each sequence number once or
    twice, and the number seen twice is the link's ``duplicated`` count."""
    net, link = pair(delay="1ms", bandwidth="100Mbit")
    client = net.host("client")
    sink = Sink(net, 100)
    async with net.running(), trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        sock = client.udp_socket(4000)
        await warm_up(net, sock)
        link.set(duplicate="20%")
        for seq in range(1000):
            await sock.sendto(seq_payload(seq, 100), (SERVER, PORT))
            await trio.sleep(0.0001)
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    duplicated = link.stats.a_to_b.duplicated
    counts = [sink.seqs.count(s) for s in range(1000)]
    assert set(counts) == {1, 2}
    assert counts.count(2) == duplicated
    assert len(sink.got) == 1000 + duplicated
    lo, hi = binomial_bounds(1000, 0.2, 0.999)
    assert lo <= duplicated <= hi
    assert link.stats.a_to_b.delivered == link.stats.a_to_b.tx_frames + duplicated


async def test_reordering_is_observed_and_counted(autojump_clock):
    """reorder 25% with a 1 ms gap at 100 us per frame: each held-back frame is overtaken, so
    the datagrams arriving after a higher sequence number are exactly the link's ``reordered``;
    none is lost."""
    net, link = pair(delay="1ms", bandwidth="100Mbit")
    client = net.host("client")
    size = 1208  # 1250-byte frames: 100 us each at 100 Mbit/s
    sink = Sink(net, size)
    async with net.running(), trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        sock = client.udp_socket(4000)
        await warm_up(net, sock)
        link.set(reorder="25%", reorder_gap="1ms")
        for seq in range(1000):
            await sock.sendto(seq_payload(seq, size), (SERVER, PORT))
            await trio.sleep(0.0001)
        link.set(reorder=0)  # a trailer that overtakes whatever the last frames held back
        for seq in range(1000, 1020):
            await sock.sendto(seq_payload(seq, size), (SERVER, PORT))
            await trio.sleep(0.0001)
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert sorted(sink.seqs) == list(range(1020))
    late, highest = 0, -1
    for seq in sink.seqs:
        if seq < highest:
            late += 1
        highest = max(highest, seq)
    reordered = link.stats.a_to_b.reordered
    assert late == reordered
    lo, hi = binomial_bounds(1000, 0.25, 0.999)
    assert lo <= reordered <= hi


def _verdict(original: bytes, mangled: bytes) -> str:
    """What Linux's receive path makes of a frame with one flipped bit (ip_rcv_core, then
    __udp4_lib_rcv): 'hdr' (IpInHdrErrors only: version or IHL invalid, or a header longer than
    the packet), 'ipcsum' (IpInCsumErrors + IpInHdrErrors), 'udpshort' (UdpInErrors only: the
    length field beyond the data or below 8), 'udpcsum' (UdpInCsumErrors + UdpInErrors), or
    'accepted' (the UDP checksum field turned into 0, "no checksum")."""
    diff = [i for i in range(len(original)) if original[i] != mangled[i]]
    assert len(diff) == 1 and diff[0] >= ETH_HLEN
    packet = mangled[ETH_HLEN:]
    at = diff[0] - ETH_HLEN
    if at == 0:
        version, ihl = packet[0] >> 4, packet[0] & 15
        if version != 4 or ihl < 5 or ihl * 4 > len(packet):
            return "hdr"
        assert internet_checksum(packet[: ihl * 4]) != 0
        return "ipcsum"
    if at < IP_HLEN:
        return "ipcsum"
    segment = packet[IP_HLEN:]
    at -= IP_HLEN
    if at in (4, 5):
        length = int.from_bytes(segment[4:6], "big")
        return "udpshort" if not UDP_HLEN <= length <= len(segment) else "udpcsum"
    if at in (6, 7) and segment[6:8] == b"\x00\x00":
        return "accepted"
    return "udpcsum"


async def test_corruption_is_caught_by_the_checksums_and_counted(autojump_clock):
    """corrupt 10% over 2000 frames of 60 bytes (no padding, so every flipped bit is in the IP
    packet): each corrupted frame that reaches the server is dropped by ip_rcv or udp_rcv and
    counted under the right name; the intact ones arrive intact.  The flipped bit of each frame
    is found by comparing what left the client with what reached the server."""
    net, link = pair(delay="1ms", bandwidth="100Mbit")
    client, server = net.host("client"), net.host("server")
    size = 60 - ETH_HLEN - IP_HLEN - UDP_HLEN  # 18: the smallest frame with no padding
    sink = Sink(net, size)
    sent, arrived = Recorder(), []
    dev = server.devices["eth0"]
    netif_rx = dev.netif_rx

    def tap(frame: bytes) -> None:
        arrived.append(frame)
        netif_rx(frame)

    async with net.running(), trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        sock = client.udp_socket(4000)
        await warm_up(net, sock)
        before = server.nstat()
        link.set(corrupt="10%")
        link.pcap = sent
        dev.netif_rx = tap  # the wire hands frames to the device through this attribute
        for seq in range(2000):
            await sock.sendto(seq_payload(seq, size), (SERVER, PORT))
            await trio.sleep(0.0001)
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()

    corrupted = link.stats.a_to_b.corrupted
    assert corrupted > 0
    originals = [f for _, f in sent.frames]
    assert len(originals) == len(arrived) == 2000  # no loss, no reordering: one to one
    verdicts = [_verdict(o, a) for o, a in zip(originals, arrived, strict=True) if o != a]
    assert len(verdicts) == corrupted
    after = server.nstat()
    delta = {k: after[k] - before[k] for k in after}
    n = {v: verdicts.count(v) for v in ("hdr", "ipcsum", "udpshort", "udpcsum", "accepted")}
    assert delta["IpInCsumErrors"] == n["ipcsum"]
    assert delta["IpInHdrErrors"] == n["ipcsum"] + n["hdr"]
    assert delta["UdpInCsumErrors"] == n["udpcsum"]
    assert delta["UdpInErrors"] == n["udpcsum"] + n["udpshort"]
    # Every corrupted frame that reached the host was dropped exactly once, by IP or by UDP.
    dropped = (
        delta["IpInCsumErrors"]
        + delta["UdpInCsumErrors"]
        + (delta["IpInHdrErrors"] - delta["IpInCsumErrors"])
        + (delta["UdpInErrors"] - delta["UdpInCsumErrors"])
    )
    assert dropped == corrupted - n["accepted"]
    assert len(sink.got) == 2000 - dropped
    # With this seed every way of dropping a corrupted frame happens at least once.
    assert n["hdr"] and n["ipcsum"] and n["udpshort"] and n["udpcsum"]
    assert delta["IpInReceives"] == 2000


@pytest.mark.parametrize("value", ["100%", 1.0])
async def test_total_loss_delivers_nothing(autojump_clock, value):
    net, link = pair(delay="1ms")
    client = net.host("client")
    sink = Sink(net, 32)
    async with net.running(), trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        sock = client.udp_socket(4000)
        await warm_up(net, sock)
        link.set(loss=value)
        for seq in range(50):
            await sock.sendto(seq_payload(seq, 32), (SERVER, PORT))
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert sink.got == []
    assert link.stats.a_to_b.lost == 50
