"""Acceptance tests for issue 5, items 4 and 5: TCP's receive-side queues and the listen queues,
through the running stack in virtual time (LINUX.md, "TCP receive queues").

Item 4, the socket backlog and the prequeue (tcp_v4_rcv, tcp_add_backlog, release_sock,
tcp_prequeue and tcp_recvmsg of Linux 4.13, the last kernel with a prequeue; net/ipv4/
tcp_ipv4.c, tcp.c, net/core/sock.c):

- a task that holds the socket lock (``stream.lock_sock()``) while segments arrive gets them
  in the backlog, processed only when it releases the lock;
- a reader that holds the lock in tcp_recvmsg gets them copied straight from the backlog
  (TcpExtTCPDirectCopyFromBacklog), which Linux counted only with the prequeue on
  (tcp_low_latency 0: the reader is ``tp->ucopy.task``);
- the backlog limit (sk_rcvqueues_full: backlog + receive queue memory over rcvbuf +
  sndbuf/2 + 64 KiB) drops with TcpExtTCPBacklogDrop, and the sender's retransmissions repair
  the loss;
- a reader blocked in receive_some gets each arriving data segment in the prequeue, processed in
  its own task (TcpExtTCPPrequeued counts tcp_prequeue_process calls); 32 segments piling up
  before the reader runs are processed at once (TcpExtTCPPrequeueDropped); tcp_low_latency 1
  turns all of it off without changing a byte.

Item 5, listen queues (tcp_conn_request, tcp_check_req, tcp_v4_syn_recv_sock, syncookies.c,
reqsk_timer_handler): SYN queue full -> SYN cookies (tcp_syncookies 1) or a drop (0); accept
queue full -> TcpExtListenOverflows + TcpExtListenDrops, SYN dropped or final ACK ignored (the
SYN-ACK is retransmitted), or a reset with tcp_abort_on_overflow 1.  sk_acceptq_is_full is
``queued > backlog``, so a listener with backlog 4 holds 5 connections; the SYN queue is full at
``backlog`` requests.

Topology: client 10.0.0.1 -- server 10.0.0.2 on one link (1 ms, 100 Mbit/s unless a test says
otherwise).  Segment sizes: MSS 1460 less 12 bytes of timestamps = 1448 payload bytes.
"""

from __future__ import annotations

import errno
from collections import Counter

import pytest
import trio
import trio.testing

import emunet
from emunet.stack.host import Host
from emunet.stack.tcp.conn import SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF
from emunet.stack.tcp.layer import BACKLOG_EXTRA, BACKLOG_TRUESIZE, PREQUEUE_MAX, TcpSock
from emunet.stack.tcp.sock import TcpStream
from emunet.wire.ethernet import ETH_P_IP, Ethernet
from emunet.wire.ipv4 import IPPROTO_TCP, Ipv4
from emunet.wire.tcp import ACK, Tcp

CLIENT, SERVER = "10.0.0.1", "10.0.0.2"
PORT = 5001
MSS = 1500 - 20 - 20 - 12  # payload per full segment with timestamps on
INIT_CWND = 10  # TCP_INIT_CWND
D = 0.001  # one-way delay


class Recorder:
    """Stands in for the link's PcapWriter: (ns, frame) of every frame put on the wire."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []

    def write(self, frame: bytes, ns: int) -> None:
        self.frames.append((ns, frame))

    def tcp(self, src_mac: bytes) -> list[tuple[int, Tcp, bytes, bytes]]:
        """(ns, header, payload, frame) of every TCP segment ``src_mac`` sent."""
        out = []
        for ns, frame in self.frames:
            eth, body = Ethernet.parse(frame)
            if eth.src != src_mac or eth.ethertype != ETH_P_IP:
                continue
            ip, seg = Ipv4.parse(body)
            if ip.proto == IPPROTO_TCP:
                tcp, payload = Tcp.parse(seg)
                out.append((ns, tcp, payload, frame))
        return out


def pair(
    *, bandwidth: str | None = "100Mbit", server_sysctl: dict | None = None
) -> tuple[emunet.Network, Host, Host, Recorder]:
    net = emunet.Network(seed=7)
    client = net.add_host("client", interfaces={"eth0": f"{CLIENT}/24"})
    server = net.add_host("server", interfaces={"eth0": f"{SERVER}/24"}, sysctl=server_sysctl)
    params = {"delay": "1ms"} if bandwidth is None else {"delay": "1ms", "bandwidth": bandwidth}
    link = net.add_link("client:eth0", "server:eth0", **params)
    link.pcap = Recorder()
    return net, client, server, link.pcap


def sock_of(host: Host, stream: TcpStream) -> TcpSock:
    """The struct-sock side (backlog, prequeue) of an accepted stream."""
    return next(s for s in host.tcp.socks.values() if s.conn is stream.connection)


def nstat(host: Host, *names: str) -> tuple[int, ...]:
    counters = host.nstat()
    return tuple(counters[n] for n in names)


def pattern(n: int) -> bytes:
    return bytes(i * 7 % 251 for i in range(n))


async def read_exactly(stream: TcpStream, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        chunk = await stream.receive_some(65536)
        assert chunk, f"EOF after {len(got)} of {n} bytes"
        got += chunk
    return bytes(got)


# --------------------------------------------------------------------------- item 4: backlog


async def test_lock_holder_gets_arrivals_in_the_backlog(autojump_clock):
    """While the server's task holds the socket lock for 100 ms, 11 segments arrive: the
    client's first flight, min(initial cwnd, what the 16 KiB send buffer holds) = 10 full
    segments, and, with no ACK coming back, its tail loss probe (RFC 8985, Linux's default):
    one more new segment 2 * srtt + 2 ms after the flight (~10 ms).  The hold ends before the
    client's RTO (~204 ms), so nothing else comes.  All 11 wait in the backlog unprocessed (no
    data readable, no ACK sent, nothing dropped); release_sock processes them at once.  The
    lock holder is not a reader, so nothing counts as a direct copy."""
    net, client, server, _ = pair()
    data = pattern(20 * MSS)
    hold = 0.1
    arrived = INIT_CWND + 1  # the first flight and the loss probe
    held = trio.Event()
    async with net.running():
        listener = await server.tcp_listen(PORT)
        async with trio.open_nursery() as nursery:

            async def serve() -> None:
                stream = await listener.accept()
                sock = sock_of(server, stream)
                segs_in, segs_out = nstat(server, "TcpInSegs", "TcpOutSegs")
                async with stream.lock_sock():
                    held.set()
                    await trio.sleep(hold)
                    assert len(sock.backlog) == arrived
                    assert sock.backlog_bytes == arrived * (MSS + BACKLOG_TRUESIZE)
                    assert nstat(server, "TcpInSegs")[0] - segs_in == arrived
                    assert nstat(server, "TcpOutSegs")[0] == segs_out  # no ACK while owned
                    assert stream.connection.readable == 0
                    rcv_nxt = stream.connection.rcv_nxt
                # release_sock: the whole backlog, in order
                assert not sock.backlog and sock.backlog_bytes == 0
                assert stream.connection.readable == arrived * MSS
                assert stream.connection.rcv_nxt == (rcv_nxt + arrived * MSS) & 0xFFFFFFFF
                assert nstat(server, "TcpOutSegs")[0] > segs_out
                assert await read_exactly(stream, len(data)) == data

            nursery.start_soon(serve)
            stream = await client.tcp_connect(SERVER, PORT)
            await held.wait()
            assert stream.info().rto > hold
            await stream.send_all(data)
    assert nstat(server, "TcpExtTCPBacklogDrop", "TcpExtTCPDirectCopyFromBacklog") == (0, 0)
    assert nstat(client, "TcpExtTCPLossProbes", "TcpRetransSegs") == (1, 0)


@pytest.mark.parametrize("low_latency", [0, 1])
async def test_reader_holding_the_lock_copies_from_the_backlog(autojump_clock, low_latency):
    """A reader inside tcp_recvmsg holds the lock while the client's 10 segments arrive (and,
    ~10 ms later, its tail loss probe: the last segment again, there being no new data), then
    finds its receive queue empty: releasing the lock processes the backlog and the data goes
    straight to it.  Linux 4.13 counts those bytes as TcpExtTCPDirectCopyFromBacklog only when
    the reader registered itself for the prequeue (tcp_low_latency 0); the bytes are the same
    either way."""
    net, client, server, _ = pair(server_sysctl={"net.ipv4.tcp_low_latency": low_latency})
    held = trio.Event()
    data = pattern(INIT_CWND * MSS)
    got = []
    async with net.running():
        listener = await server.tcp_listen(PORT)
        async with trio.open_nursery() as nursery:

            async def serve() -> None:
                stream = await listener.accept()
                sock = sock_of(server, stream)
                async with stream.lock_sock():
                    held.set()
                    await trio.sleep(0.1)
                    assert len(sock.backlog) == INIT_CWND + 1
                    got.append(await stream.receive_some(65536))
                    assert not sock.backlog

            nursery.start_soon(serve)
            stream = await client.tcp_connect(SERVER, PORT)
            await held.wait()
            await stream.send_all(data)
    assert got == [data]
    direct = len(data) if low_latency == 0 else 0
    assert nstat(server, "TcpExtTCPDirectCopyFromBacklog") == (direct,)
    assert nstat(server, "TcpExtTCPBacklogDrop", "TcpExtTCPPrequeued") == (0, 0)


async def test_backlog_overflow_drops_and_retransmission_repairs(autojump_clock):
    """Backlog overflow.  The server's socket has the smallest buffers (SO_RCVBUF/SO_SNDBUF 1 ->
    2304 and 4608 bytes), so the backlog limit is 2304 + 4608/2 + 64 KiB = 70144 bytes.  A
    sender that respects the window can never reach it (the window is at most half the receive
    buffer), so the backlog is first filled, while the lock is held, with duplicates of the
    client's last pure ACK injected at the server's device (as a duplicating link or an
    attacker would): sk_rcvqueues_full does not count the arriving skb, so 70144 // 256 + 1 =
    275 of them fit.  Everything the client sends during the 3 s hold is then dropped: its
    first flight (the 1152-byte window in two 576-byte segments: Linux bounds the MSS to half
    the largest window seen), its tail loss probe (the last segment again, 2 * srtt + 2 ms
    later) and the RTO retransmissions of the head, rto, 3 rto and 7 rto after the probe.
    After the release the next one (15 rto) gets through and the data arrives intact."""
    net, client, server, rec = pair()
    hold = 3.0
    data = pattern(4096)
    limit = SOCK_MIN_RCVBUF + SOCK_MIN_SNDBUF // 2 + BACKLOG_EXTRA
    assert limit == 70144
    fill = limit // BACKLOG_TRUESIZE + 1
    filled = trio.Event()
    release_at: list[float] = []
    async with net.running():
        listener = await server.tcp_listen(PORT, rcvbuf=1, sndbuf=1)
        client_mac = client.devices["eth0"].mac
        async with trio.open_nursery() as nursery:

            async def serve() -> None:
                stream = await listener.accept()
                conn = stream.connection
                assert (conn.rcvbuf, conn.sndbuf) == (SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF)
                sock = sock_of(server, stream)
                async with stream.lock_sock():
                    _, tcp, payload, frame = rec.tcp(client_mac)[-1]
                    assert tcp.flags == ACK and not payload  # the handshake's final ACK
                    for _ in range(fill):
                        server.devices["eth0"].netif_rx(frame)
                    await trio.testing.wait_all_tasks_blocked()
                    assert len(sock.backlog) == fill
                    assert nstat(server, "TcpExtTCPBacklogDrop") == (0,)
                    filled.set()
                    await trio.sleep(hold)
                    release_at.append(trio.current_time())
                assert await read_exactly(stream, len(data)) == data

            nursery.start_soon(serve)
            stream = await client.tcp_connect(SERVER, PORT)
            await filled.wait()
            sent_at = trio.current_time()
            rto = stream.info().rto
            await stream.send_all(data)
            assert stream.info().snd_mss == 576

    # the client's data segments on the wire: the first flight, the probe, then the head again
    frames = [(ns / 1e9, t.seq) for ns, t, p, _ in rec.tcp(client_mac) if p]
    (first, head), (second, tail), (probe, probe_seq) = frames[:3]
    assert first - sent_at < 1e-3 and second - sent_at < 1e-3
    assert probe_seq == tail  # no new data fits the window: the last segment again
    assert 2e-3 < probe - second < rto
    rtos = [(t, seq) for t, seq in frames[3:] if seq == head][:4]
    assert [seq for _, seq in rtos] == [head] * 4
    for k, (t, _) in enumerate(rtos, start=1):
        assert t == pytest.approx(probe + rto * (2**k - 1), abs=2e-6)
    retrans_in_hold = sum(1 for t, _ in rtos if t + D < release_at[0])
    assert retrans_in_hold == 3
    dropped = 2 + 1 + retrans_in_hold
    assert nstat(server, "TcpExtTCPBacklogDrop") == (dropped,)
    assert sum(1 for t, _ in frames if t + D < release_at[0]) == dropped
    assert nstat(client, "TcpExtTCPLossProbes", "TcpExtTCPTimeouts") == (1, retrans_in_hold + 1)


# --------------------------------------------------------------------------- item 4: prequeue


async def test_prequeue_on_and_off_same_bytes(autojump_clock):
    """100 000 bytes to a reader that loops on receive_some, once with tcp_low_latency 0 and
    once with 1.  At 100 Mbit/s the 70 data segments (69 full ones and 88 bytes) arrive 121 us
    apart, each while the reader is blocked: with the prequeue on each is prequeued, wakes the
    reader and is processed in its task — 70 tcp_prequeue_process calls, every byte a direct
    copy from the prequeue.  With tcp_low_latency 1 the prequeue counters stay 0, and the
    same bytes arrive in the same segments."""
    size = 100_000
    data = pattern(size)
    segments = -(-size // MSS)
    assert segments == 70
    results = {}
    for low_latency in (0, 1):
        net, client, server, rec = pair(server_sysctl={"net.ipv4.tcp_low_latency": low_latency})
        async with net.running():
            listener = await server.tcp_listen(PORT)
            got = bytearray()
            async with trio.open_nursery() as nursery:

                async def serve(listener=listener, got=got) -> None:
                    stream = await listener.accept()
                    while chunk := await stream.receive_some(65536):
                        got.extend(chunk)

                nursery.start_soon(serve)
                stream = await client.tcp_connect(SERVER, PORT)
                await stream.send_all(data)
                await stream.send_eof()
        assert bytes(got) == data
        wire = [(t.seq, len(p)) for _, t, p, _ in rec.tcp(client.devices["eth0"].mac) if p]
        results[low_latency] = (
            nstat(
                server,
                "TcpExtTCPPrequeued",
                "TcpExtTCPDirectCopyFromPrequeue",
                "TcpExtTCPPrequeueDropped",
                "TcpExtTCPBacklogDrop",
            ),
            wire,
        )
    assert results[0][0] == (segments, size, 0, 0)
    assert results[1][0] == (0, 0, 0, 0)
    assert len(results[0][1]) == segments
    assert results[0][1] == results[1][1]  # the same data segments on the wire


async def test_prequeue_overflows_at_32_segments(autojump_clock):
    """40 segments arrive in the same instant (no bandwidth limit, a client with initcwnd 64
    and a large send buffer writing into a fresh 65160-byte window) while the reader is
    blocked.  They reach tcp_v4_rcv in one batch, before the woken reader can run: the 32nd
    makes tcp_prequeue process all 32 in softirq context (TcpExtTCPPrequeueDropped += 32);
    the other 8 wait in the prequeue for the reader, which first gets the 32 from the receive
    queue and then processes the 8 itself (one tcp_prequeue_process, 8 * 1448 bytes copied
    directly)."""
    net, client, server, _ = pair(bandwidth=None)
    burst = 40
    data = pattern(burst * MSS)
    reads: list[int] = []
    blocked = trio.Event()
    async with net.running():
        listener = await server.tcp_listen(PORT)
        async with trio.open_nursery() as nursery:

            async def serve() -> None:
                stream = await listener.accept()
                sock = sock_of(server, stream)
                blocked.set()  # (the reader blocks in receive_some before the client runs)
                while sum(reads) < len(data):
                    assert not sock.owned
                    reads.append(len(await stream.receive_some(65536)))

            nursery.start_soon(serve)
            stream = await client.tcp_connect(SERVER, PORT, init_cwnd=64, sndbuf=1 << 17)
            await blocked.wait()
            await stream.send_all(data)
    rest = burst - PREQUEUE_MAX
    assert reads == [PREQUEUE_MAX * MSS, rest * MSS]
    assert nstat(
        server,
        "TcpExtTCPPrequeueDropped",
        "TcpExtTCPPrequeued",
        "TcpExtTCPDirectCopyFromPrequeue",
    ) == (PREQUEUE_MAX, 1, rest * MSS)


# --------------------------------------------------------------------------- item 5: listen


async def connect_storm(
    *,
    syncookies: int,
    accept_at: float,
    stagger: float = 0.0,
    abort_on_overflow: int = 0,
    clients: int = 50,
    backlog: int = 4,
) -> tuple[dict[int, object], dict[str, int], Host, Host, tuple[int, int]]:
    """``clients`` tasks on one host connect to a listener with ``backlog`` (client i starts
    at i * stagger), each sends a short message and expects it echoed.  The server accepts
    nothing until ``accept_at``, then accepts and echoes.  Returns each client's outcome
    ("ok", or the errno of the OSError it met, or ("connect", errno)), the server's counters at
    ``accept_at``, both hosts, and the listener's (SYN queue, accept queue) at ``accept_at``."""
    net, client, server, _ = pair(
        server_sysctl={
            "net.ipv4.tcp_syncookies": syncookies,
            "net.ipv4.tcp_abort_on_overflow": abort_on_overflow,
        }
    )
    outcome: dict[int, object] = {}
    at_accept: dict[str, int] = {}
    queues: list[tuple[int, int]] = []
    async with net.running():
        await client.ping(SERVER, count=1)  # ARP resolved: every SYN leaves at once
        listener = await server.tcp_listen(PORT, backlog=backlog)
        start = trio.current_time()

        async def echo(stream: TcpStream) -> None:
            with trio.move_on_after(300):
                while chunk := await stream.receive_some():
                    await stream.send_all(chunk)
            await stream.aclose()

        async def serve(nursery: trio.Nursery) -> None:
            await trio.sleep_until(start + accept_at)
            at_accept.update(server.nstat())
            queues.append(listener.queues())
            while True:
                nursery.start_soon(echo, await listener.accept())

        async def one(i: int) -> None:
            await trio.sleep(i * stagger)
            try:
                stream = await client.tcp_connect(SERVER, PORT)
            except OSError as exc:
                outcome[i] = ("connect", exc.errno)
                return
            message = b"client %d" % i
            try:
                await stream.send_all(message)
                echoed = await read_exactly(stream, len(message))
                outcome[i] = "ok" if echoed == message else "garbled"
            except OSError as exc:
                outcome[i] = exc.errno
            await stream.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, nursery)
            async with trio.open_nursery() as clients_nursery:
                for i in range(clients):
                    clients_nursery.start_soon(one, i)
            nursery.cancel_scope.cancel()
    return outcome, at_accept, client, server, queues[0]


async def test_listen_overflow_with_syncookies(autojump_clock):
    """tcp_syncookies 1 (the default), backlog 4, 50 connects in the same instant, no accept for
    0.5 s.  The first 4 SYNs fill the SYN queue; the other 46 are answered with SYN cookies.
    The 4 requests complete first, then one cookie ACK makes the accept queue 5 (full: 5 > 4);
    each of the 45 other cookie connections is dropped, counted in ListenOverflows and
    ListenDrops, four times before 0.5 s: its handshake ACK, its data segment, the tail loss
    probe that resends the data one RTO (~0.206 s) later (with one segment out Linux waits
    2 * srtt + 200 ms, but never past the RTO) and the RTO retransmission one RTO after the
    probe; each carries a valid cookie (SyncookiesRecv).  Once accept runs, the next (backed
    off) retransmission of each completes its connection from the cookie: all 50 clients get
    their echo."""
    outcome, at_accept, client, server, queues = await connect_storm(syncookies=1, accept_at=0.5)
    assert queues == (0, 5)
    assert at_accept["TcpExtSyncookiesSent"] == 46
    assert at_accept["TcpExtListenOverflows"] == at_accept["TcpExtListenDrops"] == 45 * 4
    assert at_accept["TcpExtSyncookiesRecv"] == 1 + 45 * 4
    assert Counter(outcome.values()) == {"ok": 50}
    assert client.nstat()["TcpRetransSegs"] >= 45  # completion through data retransmission
    assert server.nstat()["TcpExtSyncookiesFailed"] == 0
    assert server.nstat()["TcpPassiveOpens"] == 50


@pytest.mark.parametrize("syncookies", [0, 1])
async def test_listen_overflow_accept_queue(autojump_clock, syncookies):
    """Backlog 4, 50 connects 1 ms apart (just under one handshake RTT), no accept for 2 s.  The
    SYN queue never fills (each handshake takes ~2 ms), so cookies play no part and both
    settings behave alike.  The accept queue fills at 5; SYNs arriving while it is full are
    dropped (ListenOverflows and ListenDrops) and retransmitted at 1 s and 3 s; the two
    requests admitted while it held 4 have their final ACK ignored and their SYN-ACK
    retransmitted.  Once accept runs every client completes: through SYN retransmission,
    SYN-ACK retransmission or data retransmission."""
    outcome, at_accept, client, server, queues = await connect_storm(
        syncookies=syncookies, accept_at=2.0, stagger=0.001
    )
    assert queues[1] == 5
    assert at_accept["TcpExtListenOverflows"] > 0
    assert at_accept["TcpExtListenDrops"] == at_accept["TcpExtListenOverflows"]
    assert at_accept["TcpExtSyncookiesSent"] == 0
    assert Counter(outcome.values()) == {"ok": 50}
    assert client.nstat()["TcpExtTCPSynRetrans"] > 0  # SYNs dropped on overflow
    assert server.nstat()["TcpExtTCPSynRetrans"] > 0  # SYN-ACKs of ignored final ACKs
    assert server.nstat()["TcpPassiveOpens"] == 50


async def test_simultaneous_connects_without_syncookies(autojump_clock):
    """What SYN cookies are for.  tcp_syncookies 0, backlog 4, 50 connects in the same instant:
    in every round of SYNs (sent at 0, 1, 3, 7, 15, 31 and 63 s, all clients in step) only
    the first 4 find room in the SYN queue; the others are dropped (ListenDrops, not
    ListenOverflows: the accept queue never fills).  7 rounds admit 28 clients; the other 22
    get ETIMEDOUT at 127 s."""
    outcome, at_accept, _, server, _ = await connect_storm(syncookies=0, accept_at=0.5)
    assert at_accept["TcpExtListenDrops"] == 46
    assert Counter(outcome.values()) == {"ok": 28, ("connect", errno.ETIMEDOUT): 22}
    assert server.nstat()["TcpExtListenDrops"] == sum(46 - 4 * k for k in range(7))
    assert server.nstat()["TcpExtListenOverflows"] == 0


async def test_abort_on_overflow_resets_overflowing_clients(autojump_clock):
    """tcp_abort_on_overflow 1, tcp_syncookies 0, backlog 4, 50 connects 1 ms apart, no accept
    for 2 s.  The two requests whose final ACK finds the accept queue full (SYNs 5 and 6
    arrived while it held 4; their ACKs arrive after the 5th connection filled it) are reset
    instead of being left to SYN-ACK retransmission: those clients' connect succeeded, and
    their first read or write after it fails with ECONNRESET.  Every other client completes
    (those whose SYN was dropped through SYN retransmission)."""
    outcome, at_accept, client, server, _ = await connect_storm(
        syncookies=0, accept_at=2.0, stagger=0.001, abort_on_overflow=1
    )
    assert Counter(outcome.values()) == {"ok": 48, errno.ECONNRESET: 2}
    assert sorted(i for i, o in outcome.items() if o != "ok") == [5, 6]
    assert server.nstat()["TcpExtTCPSynRetrans"] == 0  # reset, not retransmitted
    assert client.nstat()["TcpEstabResets"] == 2
    assert at_accept["TcpExtListenOverflows"] > 0
