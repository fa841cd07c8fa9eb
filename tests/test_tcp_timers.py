"""Acceptance tests for issue 5, items 6 and 7: TCP timers at exact virtual times, and RFC 5961
reset validation, through the running stack (LINUX.md, "TCP defaults").

Item 6 (net/ipv4/tcp_timer.c, tcp_input.c tcp_set_rto, tcp_minisocks.c): SYN retransmission
with exponential backoff and tcp_syn_retries 6 (ETIMEDOUT at 127 s); the RTO floor of 200 ms
(RFC 6298 with Linux's rto = srtt + max(rttvar, 200 ms)) and its doubling; TIME-WAIT for
TCP_TIMEWAIT_LEN = 60 s; a reset from a closed port ending connect with ECONNREFUSED one round
trip after it began.

Item 7 (RFC 5961 section 3, tcp_validate_incoming): resets injected at the server's device as
hand-built frames (Ethernet + IPv4 + TCP, checksums computed) that claim to come from the
client: out of the window -> ignored; in the window but not at RCV.NXT -> a challenge ACK
(TcpExtTCPChallengeACK); exactly at RCV.NXT -> the connection is reset.

Times are read from a recorder standing in for the link's pcap: it sees each frame when its
last bit leaves the sender, in integer nanoseconds; a frame arrives ``delay`` later.
"""

from __future__ import annotations

import errno
import itertools

import pytest
import trio

import emunet
from emunet.stack.host import Host
from emunet.stack.skb import SkBuff
from emunet.stack.tcp.conn import TcpState
from emunet.stack.tcp.sock import TcpBrokenError, TcpStream
from emunet.wire.addr import ip_from_str
from emunet.wire.ethernet import ETH_P_IP, Ethernet
from emunet.wire.ipv4 import IPPROTO_TCP, Ipv4
from emunet.wire.tcp import ACK, FIN, RST, SYN, Tcp

NS = 1_000_000_000
CLIENT, SERVER = "10.0.0.1", "10.0.0.2"
PORT = 80


class Recorder:
    """Stands in for the link's PcapWriter: (ns, frame) of every frame put on the wire."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []

    def write(self, frame: bytes, ns: int) -> None:
        self.frames.append((ns, frame))

    def tcp(self, src_mac: bytes, since_ns: int = 0) -> list[tuple[int, Tcp, bytes, int]]:
        """(ns, header, payload, frame length) of every TCP segment ``src_mac`` sent at or
        after ``since_ns``.  (A frame is recorded once the link has moved past it, not when it
        is queued: read after the frames of interest have arrived.)"""
        out = []
        for ns, frame in self.frames:
            eth, body = Ethernet.parse(frame)
            if ns < since_ns or eth.src != src_mac or eth.ethertype != ETH_P_IP:
                continue
            ip, seg = Ipv4.parse(body)
            if ip.proto == IPPROTO_TCP:
                tcp, payload = Tcp.parse(seg)
                out.append((ns, tcp, payload, len(frame)))
        return out


def pair(server_name: str = "server", **link: str) -> tuple[emunet.Network, Host, Host, Recorder]:
    net = emunet.Network(seed=11)
    client = net.add_host("client", interfaces={"eth0": f"{CLIENT}/24"})
    server = net.add_host(server_name, interfaces={"eth0": f"{SERVER}/24"})
    wire = net.add_link("client:eth0", f"{server_name}:eth0", **link)
    wire.pcap = Recorder()
    return net, client, server, wire.pcap


def mac(host: Host) -> bytes:
    return host.devices["eth0"].mac


async def connected(
    client: Host, server: Host, nursery: trio.Nursery
) -> tuple[TcpStream, TcpStream]:
    """A connection client -> server:PORT, both ends."""
    listener = await server.tcp_listen(PORT)
    accepted: list[TcpStream] = []
    done = trio.Event()

    async def accept() -> None:
        accepted.append(await listener.accept())
        done.set()

    nursery.start_soon(accept)
    stream = await client.tcp_connect(SERVER, PORT)
    await done.wait()
    return stream, accepted[0]


def states(host: Host) -> list[str]:
    return [s.state for s in host.sockets() if s.state != "LISTEN"]


# --------------------------------------------------------------------------- item 6


async def test_syn_to_a_silent_host_times_out_at_127s(autojump_clock):
    """The far host answers ARP and ping, but its TCP is a black hole (its tcp_v4_rcv is
    replaced by a function that drops everything, as an iptables ``-p tcp -j DROP`` rule on its
    INPUT chain would).  With ARP resolved first, the SYN leaves at once and is retransmitted
    after 1, 2, 4, 8, 16 and 32 s (tcp_syn_retries 6): on the wire at exactly 0, 1, 3, 7, 15,
    31 and 63 s; the last timeout (64 s) ends connect with ETIMEDOUT at exactly 127 s."""
    net, client, silent, rec = pair("silent", delay="1ms")
    arrived: list[float] = []

    def drop(skb: SkBuff, now: float) -> None:
        arrived.append(now)

    silent.tcp.rcv = drop  # type: ignore[method-assign]
    async with net.running():
        result = await client.ping(SERVER, count=1)
        assert result.received == 1
        start = trio.current_time()
        start_ns = round(start * NS)
        with pytest.raises(OSError) as caught:
            await client.tcp_connect(SERVER, PORT)
        assert caught.value.errno == errno.ETIMEDOUT
        assert round(trio.current_time() * NS) - start_ns == 127 * NS
    syns = rec.tcp(mac(client))
    assert [ns - start_ns for ns, _, _, _ in syns] == [t * NS for t in (0, 1, 3, 7, 15, 31, 63)]
    assert {(t.flags, t.seq) for _, t, _, _ in syns} == {(SYN, syns[0][1].seq)}
    assert [round(t * NS) - start_ns for t in arrived] == [
        t * NS + 1_000_000 for t in (0, 1, 3, 7, 15, 31, 63)
    ]
    counters = client.nstat()
    assert (counters["TcpExtTCPSynRetrans"], counters["TcpAttemptFails"]) == (6, 1)


async def test_rto_floor_on_a_fast_lan(autojump_clock):
    """A LAN with a 0.1 ms round trip: after 20 echoes the smoothed RTT is ~0.1 ms, yet the RTO
    is srtt + 200 ms (Linux clamps the variance term to TCP_RTO_MIN).  A lone segment is lost
    three times.  The first retransmission is the tail loss probe, which Linux schedules
    2 * srtt + 200 ms after the send when one segment is out but never later than the RTO: so
    exactly one RTO after the original.  The probe restarts the RTO timer: the RTO
    retransmission comes one RTO after the probe, and the next one 2 RTOs after that
    (exponential backoff).  No retransmission comes sooner than 200 ms after the previous
    send."""
    net, client, server, rec = pair(delay="50us")
    dev = server.devices["eth0"]
    netif_rx = dev.netif_rx
    to_drop = [0]

    def lossy_rx(frame: bytes) -> None:
        """The wire hands frames to the device through this attribute: drop the next
        ``to_drop`` data segments."""
        eth, body = Ethernet.parse(frame)
        if to_drop[0] and eth.ethertype == ETH_P_IP:
            ip, seg = Ipv4.parse(body)
            if ip.proto == IPPROTO_TCP and Tcp.parse(seg)[1]:
                to_drop[0] -= 1
                return
        netif_rx(frame)

    dev.netif_rx = lossy_rx  # type: ignore[method-assign]
    async with net.running():
        async with trio.open_nursery() as nursery:
            stream, peer = await connected(client, server, nursery)

            async def echo() -> None:
                while chunk := await peer.receive_some():
                    await peer.send_all(chunk)

            nursery.start_soon(echo)
            for _ in range(20):
                await stream.send_all(b"x" * 100)
                assert await stream.receive_some() == b"x" * 100
            info = stream.info()
            assert info.rtt < 0.00011
            rto = info.rto
            assert rto == pytest.approx(0.2 + info.rtt, abs=1e-6)  # Linux counts in us
            assert rto >= 0.2
            to_drop[0] = 3
            since = round(trio.current_time() * NS)
            await stream.send_all(b"y" * 100)
            assert await stream.receive_some() == b"y" * 100
            nursery.cancel_scope.cancel()
    sends = [ns for ns, _, p, _ in rec.tcp(mac(client), since) if p == b"y" * 100]
    assert len(sends) == 4
    gaps = [(b - a) / NS for a, b in itertools.pairwise(sends)]
    assert gaps == [pytest.approx(g, abs=2e-9) for g in (rto, rto, 2 * rto)]
    assert min(gaps) >= 0.2
    counters = client.nstat()
    assert (counters["TcpExtTCPLossProbes"], counters["TcpExtTCPTimeouts"]) == (1, 2)


async def test_time_wait_lasts_60s(autojump_clock):
    """The client closes first; the server's FIN, arriving 10 ms after it leaves, puts the
    client's socket in TIME-WAIT, and the client ACKs it in that instant.  host.sockets() lists
    the socket in TIME-WAIT until exactly 60 s after that instant (TCP_TIMEWAIT_LEN), and not a
    nanosecond longer."""
    net, client, server, rec = pair(delay="10ms")
    async with net.running():
        async with trio.open_nursery() as nursery:
            stream, peer = await connected(client, server, nursery)
            await stream.send_all(b"bye")
            await stream.aclose()
            assert await peer.receive_some() == b"bye"
            assert await peer.receive_some() == b""
            await peer.aclose()
        await trio.sleep(1)  # every frame has arrived (and is in the recorder)
        assert states(client) == ["TIME-WAIT"]
        ((fin_ns, _, _, _),) = [x for x in rec.tcp(mac(server)) if x[1].flags & FIN]
        last_ack_ns, last_ack, _, _ = rec.tcp(mac(client))[-1]
        assert last_ack.flags == ACK
        assert last_ack_ns == fin_ns + 10_000_000  # the FIN arrived and was ACKed at once
        entered = last_ack_ns / NS
        await trio.sleep_until(entered + 60 - 1e-9)
        assert states(client) == ["TIME-WAIT"]
        await trio.sleep_until(entered + 60 + 1e-9)
        assert states(client) == []
    assert client.nstat()["TcpExtTW"] == 1


async def test_connect_to_a_closed_port_is_refused_after_one_rtt(autojump_clock):
    """10 ms each way at 10 Mbit/s, ARP already resolved: the 74-byte SYN (40-byte TCP header
    with MSS, SACK-permitted, timestamps and window scale) takes 59.2 us to serialize, arrives
    10 ms later and is answered at once by a RST|ACK (54 bytes, padded to the 60-byte Ethernet
    minimum: 48 us), which arrives 10 ms after that.  connect raises ECONNREFUSED at exactly
    20 ms + 59.2 us + 48 us = 20 107 200 ns after it began."""
    net, client, server, rec = pair(delay="10ms", bandwidth="10Mbit")
    per_byte_ns = 8 * NS // 10_000_000
    async with net.running():
        await client.ping(SERVER, count=1)
        start_ns = round(trio.current_time() * NS)
        with pytest.raises(OSError) as caught:
            await client.tcp_connect(SERVER, 81)
        assert caught.value.errno == errno.ECONNREFUSED
        elapsed = round(trio.current_time() * NS) - start_ns
    ((syn_ns, syn, _, syn_len),) = rec.tcp(mac(client), start_ns)
    ((rst_ns, rst, _, rst_len),) = rec.tcp(mac(server), start_ns)
    assert (syn.flags, syn_len) == (SYN, 74)
    assert (rst.flags, rst_len, rst.ack) == (RST | ACK, 60, (syn.seq + 1) & 0xFFFFFFFF)
    assert syn_ns - start_ns == 74 * per_byte_ns
    assert rst_ns - start_ns == 74 * per_byte_ns + 10_000_000 + 60 * per_byte_ns
    assert elapsed == 2 * 10_000_000 + (74 + 60) * per_byte_ns == 20_107_200
    assert server.nstat()["TcpOutRsts"] == 1


# --------------------------------------------------------------------------- item 7


def forged_rst(client: Host, server: Host, sport: int, seq: int) -> bytes:
    """A RST from the client's address and port to the server's, as a frame off the wire."""
    src, dst = ip_from_str(CLIENT), ip_from_str(SERVER)
    segment = Tcp(sport, PORT, seq, 0, RST, 0).build(b"", src, dst)
    packet = Ipv4(src, dst, IPPROTO_TCP, df=True).build(segment)
    return Ethernet(mac(server), mac(client), ETH_P_IP).build(packet)


@pytest.mark.parametrize("where", ["below", "beyond"])
async def test_rst_out_of_window_is_ignored(autojump_clock, where):
    """A RST whose sequence number lies outside the receive window — just below RCV.NXT or
    just past RCV.NXT + RCV.WND — is dropped silently: no challenge ACK, nothing on the wire,
    and the connection carries data both ways afterwards."""
    net, client, server, rec = pair(delay="1ms")
    async with net.running():
        async with trio.open_nursery() as nursery:
            stream, peer = await connected(client, server, nursery)
            await stream.send_all(b"ping")
            assert await peer.receive_some() == b"ping"
            await trio.sleep(1)
            conn = peer.connection
            seq = conn.rcv_nxt - 1 if where == "below" else conn.rcv_nxt + conn.rcv_wnd + 1
            since = round(trio.current_time() * NS)
            server.devices["eth0"].netif_rx(
                forged_rst(client, server, stream.local_address[1], seq & 0xFFFFFFFF)
            )
            await trio.sleep(0.5)
            assert rec.tcp(mac(server), since) == []
            assert peer.state is TcpState.ESTABLISHED
            assert server.nstat()["TcpExtTCPChallengeACK"] == 0
            await stream.send_all(b"still")
            assert await peer.receive_some() == b"still"
            await peer.send_all(b"here")
            assert await stream.receive_some() == b"here"
    assert server.nstat()["TcpEstabResets"] == 0


@pytest.mark.parametrize("offset", [1, "last"])
async def test_rst_in_window_draws_a_challenge_ack(autojump_clock, offset):
    """A RST inside the window but not at RCV.NXT (one past it, or the window's last byte) is
    answered with a challenge ACK — an ACK carrying SND.NXT and RCV.NXT, seen on the wire at
    once — and changes nothing else (RFC 5961 3.2)."""
    net, client, server, rec = pair(delay="1ms")
    async with net.running():
        async with trio.open_nursery() as nursery:
            stream, peer = await connected(client, server, nursery)
            await stream.send_all(b"ping")
            assert await peer.receive_some() == b"ping"
            await trio.sleep(1)
            conn = peer.connection
            rcv_nxt, snd_nxt = conn.rcv_nxt, conn.snd_nxt
            seq = rcv_nxt + (1 if offset == 1 else conn.rcv_wnd - 1)
            injected = round(trio.current_time() * NS)
            server.devices["eth0"].netif_rx(
                forged_rst(client, server, stream.local_address[1], seq & 0xFFFFFFFF)
            )
            await trio.sleep(0.5)
            ((ns, ack, payload, _),) = rec.tcp(mac(server), injected)
            assert ns == injected  # no bandwidth limit: on the wire in the same instant
            assert (ack.flags, ack.seq, ack.ack, payload) == (ACK, snd_nxt, rcv_nxt, b"")
            assert server.nstat()["TcpExtTCPChallengeACK"] == 1
            assert peer.state is TcpState.ESTABLISHED
            await stream.send_all(b"still")
            assert await peer.receive_some() == b"still"
    assert server.nstat()["TcpEstabResets"] == 0


async def test_rst_at_rcv_nxt_resets(autojump_clock):
    """A RST exactly at RCV.NXT resets the connection: the server's next receive raises
    ECONNRESET (a TcpBrokenError, which is an OSError), and the socket is gone."""
    net, client, server, rec = pair(delay="1ms")
    async with net.running():
        async with trio.open_nursery() as nursery:
            stream, peer = await connected(client, server, nursery)
            await stream.send_all(b"ping")
            assert await peer.receive_some() == b"ping"
            await trio.sleep(1)
            since = round(trio.current_time() * NS)
            server.devices["eth0"].netif_rx(
                forged_rst(client, server, stream.local_address[1], peer.connection.rcv_nxt)
            )
            with pytest.raises(TcpBrokenError) as caught:
                await peer.receive_some()
            assert isinstance(caught.value, OSError)
            assert caught.value.errno == errno.ECONNRESET
            assert peer.state is TcpState.CLOSED
            await trio.sleep(0.5)
            assert rec.tcp(mac(server), since) == []  # a reset is never answered
            nursery.cancel_scope.cancel()
    assert server.nstat()["TcpEstabResets"] == 1
    assert states(server) == []
