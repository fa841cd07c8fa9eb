"""Issue 9, the TCP items: tiny MTUs, forged ICMP (RFC 5927, tcp_v4_err), SYN-SENT errors,
SYN-queue pruning, listener flags.  Each test is named after the item it shows."""

from __future__ import annotations

import errno
import random

import pytest
import trio
import trio.testing

import emunet
from emunet.stack.host import Host
from emunet.stack.tcp.sock import TcpStream
from emunet.wire.addr import ip_from_str
from emunet.wire.ethernet import ETH_P_IP, Ethernet
from emunet.wire.icmp import (
    ICMP_HOST_UNREACH,
    ICMP_NET_UNREACH,
    ICMP_PORT_UNREACH,
    Icmp,
    quote,
)
from emunet.wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, Ipv4
from emunet.wire.tcp import ACK, FIN, RST, SYN, Tcp, Timestamps

PORT = 5001


def pair(mtu: int = 1500, seed: int = 1) -> emunet.Network:
    net = emunet.Network(seed=seed)
    net.add_host("a", interfaces={"eth0": "10.0.0.1/24"})
    net.add_host("b", interfaces={"eth0": "10.0.0.2/24"})
    net.add_link("a:eth0", "b:eth0", delay="5ms", mtu=mtu)
    return net


def four_nodes(middle_mtu: int = 1500, seed: int = 1) -> emunet.Network:
    """client -- r1 -- r2 -- server; the middle link's MTU is seen by neither end."""
    net = emunet.Network(seed=seed)
    net.add_host("client", interfaces={"eth0": "10.0.1.2/24"}, routes={"default": "10.0.1.1"})
    net.add_router(
        "r1",
        interfaces={"eth0": "10.0.1.1/24", "eth1": "10.0.12.1/24"},
        routes={"10.0.2.0/24": "10.0.12.2"},
    )
    net.add_router(
        "r2",
        interfaces={"eth0": "10.0.12.2/24", "eth1": "10.0.2.1/24"},
        routes={"10.0.1.0/24": "10.0.12.1"},
    )
    net.add_host("server", interfaces={"eth0": "10.0.2.2/24"}, routes={"default": "10.0.2.1"})
    net.add_link("client:eth0", "r1:eth0", delay="5ms")
    net.add_link("r1:eth1", "r2:eth0", delay="5ms", mtu=middle_mtu)
    net.add_link("r2:eth1", "server:eth0", delay="5ms")
    return net


async def transfer(src: Host, dst: Host, dst_ip: str, data: bytes) -> TcpStream:
    """``data`` from src to dst over one connection; returns src's stream (still open)."""
    listener = await dst.tcp_listen(PORT)
    got = bytearray()

    async def serve() -> None:
        peer = await listener.accept()
        while chunk := await peer.receive_some():
            got.extend(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        stream = await src.tcp_connect(dst_ip, PORT)
        await stream.send_all(data)
        await stream.send_eof()
    assert bytes(got) == data
    return stream


def forged_icmp(
    victim: Host, router_ip: str, icmp: Icmp, inner_src: int, inner_dst: int, tcp: Tcp
) -> bytes:
    """An ICMP error frame to ``victim`` that quotes a TCP segment it supposedly sent."""
    dev = victim.devices["eth0"]
    inner = Ipv4(inner_src, inner_dst, IPPROTO_TCP, df=True).build(
        tcp.build(b"", inner_src, inner_dst)
    )
    outer = Ipv4(ip_from_str(router_ip), inner_src, IPPROTO_ICMP).build(icmp.build(quote(inner)))
    return Ethernet(dev.mac, b"\x02\x00\x00\x00\xee\xee", ETH_P_IP).build(outer)


# --------------------------------------------------------------------------- item 1
async def test_item_1_small_route_mtu_syn_to_a_listener_and_connect_do_not_crash(autojump_clock):
    """MTU 68 on the only link: MSS clamps (tcp_min_snd_mss 48; advertised MSS floors at
    route.min_adv_mss 256) instead of a ValueError killing the TCP task and the network."""
    net = pair(mtu=68)
    a, b = net.host("a"), net.host("b")
    data = random.Random(1).randbytes(5000)
    async with net.running():
        stream = await transfer(a, b, "10.0.0.2", data)
        info = stream.info()
        # ipv4_default_advmss: max(68 - 40, 256), less the timestamp option, as ss shows it
        assert info.advmss == 256 - 12
        assert info.snd_mss == 48 - 12  # tcp_mtu_to_mss floor, less the timestamp option
        assert (await a.ping("10.0.0.2", count=1)).received == 1  # still alive
        assert (await b.ping("10.0.0.1", count=1)).received == 1
    # the first data segments did not fit with DF: the path MTU locked at 68, DF off
    assert a.nstat()["IpFragCreates"] > 0


# --------------------------------------------------------------------------- items 2, 13
async def test_item_2_tcp_crosses_a_68_byte_mtu_router_hop(autojump_clock):
    """A frag-needed below route.min_pmtu 552 locks the path MTU at 552; TCP then sends
    without DF and the router fragments (Linux __ip_rt_update_pmtu, ip_dont_fragment)."""
    net = four_nodes(middle_mtu=68)
    client, server, r1 = net.host("client"), net.host("server"), net.host("r1")
    data = random.Random(2).randbytes(100_000)
    with trio.fail_after(60):
        async with net.running():
            stream = await transfer(client, server, "10.0.2.2", data)
            info = stream.info()
    assert info.pmtu == 552
    assert info.snd_mss == 552 - 40 - 12
    assert client.ip.pmtu_locked(ip_from_str("10.0.2.2"), 0.0)
    assert r1.nstat()["IpFragOKs"] > 0 and r1.nstat()["IpFragCreates"] > 0


async def test_item_13_frag_needed_below_min_pmtu_never_lowers_mss_below_512(autojump_clock):
    net = pair()
    a, b = net.host("a"), net.host("b")
    async with net.running():
        listener = await b.tcp_listen(PORT)
        stream = await a.tcp_connect("10.0.0.2", PORT)
        await listener.accept()
        conn = stream.connection
        assert stream.info().snd_mss == 1448
        probe = Tcp(conn.local[1], PORT, conn.snd_una, 0, ACK, 0)
        for mtu in (100, 68, 300):
            frame = forged_icmp(
                a, "10.0.0.2", Icmp.frag_needed(mtu), conn.local[0], conn.remote[0], probe
            )
            a.devices["eth0"].netif_rx(frame)
            await trio.testing.wait_all_tasks_blocked()
            assert stream.info().snd_mss == 552 - 40 - 12
            assert stream.info().pmtu == 552


# --------------------------------------------------------------------------- item 11
async def test_item_11_spoofed_syn_burst_without_cookies_frees_the_syn_queue(autojump_clock):
    """128 spoofed SYNs (their source never answers) fill a listener whose syncookies are
    off; reqsk_timer_handler's young/old pruning cuts the old requests' SYN-ACK retries to
    2, so they go at 1 + 2 + 4 = 7 s and a legitimate client's retried SYN gets in."""
    net = pair()
    a, b = net.host("a"), net.host("b")
    b.sysctl["net.ipv4.tcp_syncookies"] = 0
    dev = b.devices["eth0"]
    async with net.running():
        listener = await b.tcp_listen(PORT, backlog=128)
        start = trio.current_time()
        rng = random.Random(11)
        for i in range(128):
            src = ip_from_str("10.0.0.100") + i  # on-link addresses nobody answers ARP for
            syn = Tcp(20000 + i, PORT, rng.getrandbits(32), 0, SYN, 65535)
            ip = Ipv4(src, ip_from_str("10.0.0.2"), IPPROTO_TCP).build(
                syn.build(b"", src, ip_from_str("10.0.0.2"))
            )
            dev.netif_rx(Ethernet(dev.mac, b"\x02\x00\x00\x00\x99\x99", ETH_P_IP).build(ip))
        await trio.testing.wait_all_tasks_blocked()
        assert listener.queues() == (128, 0)
        assert b.nstat()["TcpExtListenDrops"] == 0

        async def accept() -> None:
            await listener.accept()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept)
            await a.tcp_connect("10.0.0.2", PORT)
            connected = trio.current_time() - start
    # SYNs at 0, 1, 3, 7 s: the one at 7 s finds the queue freed
    assert connected == pytest.approx(7.01, abs=0.005)
    assert b.nstat()["TcpExtListenDrops"] == 3


# --------------------------------------------------------------------------- item 12
async def test_item_12_forged_frag_needed_with_a_random_sequence_is_ignored(autojump_clock):
    net = pair()
    a, b = net.host("a"), net.host("b")
    async with net.running():
        listener = await b.tcp_listen(PORT)
        stream = await a.tcp_connect("10.0.0.2", PORT)
        await listener.accept()
        conn = stream.connection
        bad_seq = (conn.snd_una + 0x40000000) & 0xFFFFFFFF
        forged = Tcp(conn.local[1], PORT, bad_seq, 0, ACK, 0)
        frame = forged_icmp(
            a, "10.0.0.2", Icmp.frag_needed(576), conn.local[0], conn.remote[0], forged
        )
        a.devices["eth0"].netif_rx(frame)
        await trio.testing.wait_all_tasks_blocked()
        assert stream.info().snd_mss == 1448
        assert stream.info().pmtu == 1500
        assert a.nstat()["TcpExtOutOfWindowIcmps"] == 1
        # the same with the right sequence number lowers the MSS (RFC 5927 accepts it)
        good = Tcp(conn.local[1], PORT, conn.snd_una, 0, ACK, 0)
        frame = forged_icmp(
            a, "10.0.0.2", Icmp.frag_needed(1000), conn.local[0], conn.remote[0], good
        )
        a.devices["eth0"].netif_rx(frame)
        await trio.testing.wait_all_tasks_blocked()
        assert stream.info().snd_mss == 1000 - 40 - 12
        assert a.nstat()["TcpExtOutOfWindowIcmps"] == 1


async def test_item_12_icmp_while_the_socket_is_owned_counts_lock_dropped(autojump_clock):
    net = pair()
    a, b = net.host("a"), net.host("b")
    async with net.running():
        listener = await b.tcp_listen(PORT)
        stream = await a.tcp_connect("10.0.0.2", PORT)
        await listener.accept()
        conn = stream.connection
        probe = Tcp(conn.local[1], PORT, conn.snd_una, 0, ACK, 0)
        frame = forged_icmp(
            a,
            "10.0.0.2",
            Icmp.dest_unreach(ICMP_HOST_UNREACH),
            conn.local[0],
            conn.remote[0],
            probe,
        )
        async with stream.lock_sock():
            a.devices["eth0"].netif_rx(frame)
            await trio.testing.wait_all_tasks_blocked()
        assert a.nstat()["TcpExtLockDroppedIcmps"] == 1
        assert conn.error is None  # an established socket only notes a soft error


# --------------------------------------------------------------------------- item 14
async def _connect_error(net: emunet.Network, src: str, dst: str) -> tuple[int, float]:
    async with net.running():
        start = trio.current_time()
        with pytest.raises(OSError) as caught:
            await net.host(src).tcp_connect(dst, PORT)
        return caught.value.errno, trio.current_time() - start


async def test_item_14_port_unreachable_in_syn_sent_is_econnrefused_at_once(autojump_clock):
    net = pair()
    a = net.host("a")
    async with net.running():
        start = trio.current_time()

        async def forge() -> None:
            await trio.sleep(0.002)  # the SYN is on the wire
            conn = next(iter(a.tcp.socks.values())).conn
            syn = Tcp(conn.local[1], PORT, conn.iss, 0, SYN, 65535)
            frame = forged_icmp(
                a,
                "10.0.0.2",
                Icmp.dest_unreach(ICMP_PORT_UNREACH),
                conn.local[0],
                conn.remote[0],
                syn,
            )
            a.devices["eth0"].netif_rx(frame)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(forge)
            with pytest.raises(OSError) as caught:
                await a.tcp_connect("10.0.0.2", PORT)
    assert caught.value.errno == errno.ECONNREFUSED
    assert trio.current_time() - start == pytest.approx(0.002)


async def test_item_14_router_without_a_route_ends_connect_with_enetunreach(autojump_clock):
    net = four_nodes()
    # r1 knows no way to 10.0.99.0/24: ICMP net unreachable; ARP for r1 (10 ms), then one
    # RTT to r1 (10 ms)
    code, elapsed = await _connect_error(net, "client", "10.0.99.1")
    assert code == errno.ENETUNREACH
    assert elapsed == pytest.approx(0.020, abs=0.0005)
    assert net.host("r1").nstat()["IcmpOutDestUnreachs"] == 1


async def test_item_14_router_whose_arp_fails_ends_connect_with_ehostunreach(autojump_clock):
    net = four_nodes()
    # 10.0.2.9 is on r2's server LAN but nobody answers ARP for it: ARP client->r1 (10 ms),
    # SYN to r1 (5 ms), ARP r1->r2 (10 ms), SYN to r2 (5 ms), r2's 3 solicits 1 s apart
    # (mcast_solicit 3, retrans_time 1 s), host unreachable back to the client (10 ms)
    code, elapsed = await _connect_error(net, "client", "10.0.2.9")
    assert code == errno.EHOSTUNREACH
    assert elapsed == pytest.approx(3.040, abs=0.0005)


async def test_item_14_local_arp_failure_ends_connect_with_ehostunreach(autojump_clock):
    net = pair()
    code, elapsed = await _connect_error(net, "a", "10.0.0.77")
    assert code == errno.EHOSTUNREACH
    assert elapsed == pytest.approx(3.0, abs=0.001)


async def test_item_14_established_connection_survives_host_unreachable(autojump_clock):
    net = pair()
    a, b = net.host("a"), net.host("b")
    async with net.running():
        listener = await b.tcp_listen(PORT)
        stream = await a.tcp_connect("10.0.0.2", PORT)
        peer = await listener.accept()
        conn = stream.connection
        probe = Tcp(conn.local[1], PORT, conn.snd_una, 0, ACK, 0)
        for code in (ICMP_NET_UNREACH, ICMP_HOST_UNREACH, ICMP_PORT_UNREACH):
            frame = forged_icmp(
                a, "10.0.0.2", Icmp.dest_unreach(code), conn.local[0], conn.remote[0], probe
            )
            a.devices["eth0"].netif_rx(frame)
        await stream.send_all(b"still here")
        assert await peer.receive_some() == b"still here"


# --------------------------------------------------------------------------- item 21
async def _to_listener(flags: int) -> tuple[emunet.Network, list[Tcp]]:
    """A segment with ``flags`` to b's listener; returns what b sent back."""
    net = pair()
    a, b = net.host("a"), net.host("b")
    sent: list[Tcp] = []

    class Tap:
        def write(self, frame: bytes, ns: int) -> None:
            eth, body = Ethernet.parse(frame)
            if eth.src == b.devices["eth0"].mac and eth.ethertype == ETH_P_IP:
                ip, payload = Ipv4.parse(body)
                if ip.proto == IPPROTO_TCP:
                    sent.append(Tcp.parse(payload)[0])

    net.link("a:eth0", "b:eth0").pcap = Tap()
    async with net.running():
        listener = await b.tcp_listen(PORT)
        assert (await a.ping("10.0.0.2", count=1)).received == 1  # ARP done
        src, dst = ip_from_str("10.0.0.1"), ip_from_str("10.0.0.2")
        seg = Tcp(40000, PORT, 1000, 5000, flags, 65535)
        ip = Ipv4(src, dst, IPPROTO_TCP).build(seg.build(b"", src, dst))
        dev = b.devices["eth0"]
        dev.netif_rx(Ethernet(dev.mac, a.devices["eth0"].mac, ETH_P_IP).build(ip))
        await trio.sleep(1)
        assert listener.queues() == (0, 0)
    return net, sent


async def test_item_21_listener_answers_syn_ack_with_a_reset(autojump_clock):
    net, sent = await _to_listener(SYN | ACK)
    assert [(t.flags, t.seq) for t in sent] == [(RST, 5000)]  # seq = the segment's ack
    assert net.host("b").nstat()["TcpOutRsts"] == 1


async def test_item_21_listener_discards_syn_fin(autojump_clock):
    net, sent = await _to_listener(SYN | FIN)
    assert sent == []
    assert net.host("b").nstat()["TcpOutRsts"] == 0


# --------------------------------------------------------------------------- item 10
async def test_item_10_tiny_out_of_order_segments_are_charged_truesize_and_pruned(autojump_clock):
    """30,000 one-byte segments, every other byte, each out of order: Linux charges every skb
    its truesize (payload + 576 bytes of sk_buff and shared info), so the out-of-order queue
    fills the 128 KiB receive buffer after 228 of them; the rest are dropped
    (tcp_prune_queue finds nothing to prune below them: PruneCalled, RcvPruned, OFODrop).  A
    segment below the held ones then prunes the queue's top by rcvbuf/8 (OfoPruned).  The
    bytes the sender really sends still arrive intact and in order."""
    net = pair()
    a, b = net.host("a"), net.host("b")
    data = bytes(200_000)  # what the forged segments carry too: zeros
    async with net.running():
        listener = await b.tcp_listen(PORT)
        stream = await a.tcp_connect("10.0.0.2", PORT)
        peer = await listener.accept()
        conn = peer.connection
        rcvbuf = conn.rcvbuf
        assert rcvbuf == 131072
        dev = b.devices["eth0"]
        src, dst = ip_from_str("10.0.0.1"), ip_from_str("10.0.0.2")

        def segment(offset: int) -> bytes:
            tcp = Tcp(
                stream.connection.local[1],
                PORT,
                (conn.rcv_nxt + offset) & 0xFFFFFFFF,
                conn.snd_nxt,
                ACK,
                1000,
                options=(Timestamps(conn.ts_recent, 0),),
            )
            ip = Ipv4(src, dst, IPPROTO_TCP).build(tcp.build(b"\x00", src, dst))
            return Ethernet(dev.mac, a.devices["eth0"].mac, ETH_P_IP).build(ip)

        before = b.nstat()
        for k in range(30_000):
            dev.netif_rx(segment(2 + 2 * k))
            if k % 500 == 499:
                await trio.testing.wait_all_tasks_blocked()
        await trio.testing.wait_all_tasks_blocked()
        after = b.nstat()

        def moved(name: str) -> int:
            return after[name] - before[name]

        assert moved("TcpExtTCPOFOQueue") == 30_000
        held = len(conn._ofo)
        assert held == 228  # 228 * 577 > 131072 >= 227 * 577: the last one still fitted
        assert conn._ofo.truesize == 228 * 577
        assert moved("TcpExtPruneCalled") == 30_000 - 228
        assert moved("TcpExtRcvPruned") == 30_000 - 228
        assert moved("TcpExtTCPOFODrop") == 30_000 - 228
        assert moved("TcpExtOfoPruned") == 0
        # one below them all: the top goes, rcvbuf/8 = 16384 of truesize at a time (29 skbs)
        dev.netif_rx(segment(1))
        await trio.testing.wait_all_tasks_blocked()
        assert b.nstat()["TcpExtOfoPruned"] - before["TcpExtOfoPruned"] == 1
        assert len(conn._ofo) == 228 - 29 + 1
        # the real sender's bytes arrive intact and in order
        got = bytearray()

        async def reader() -> None:
            while chunk := await peer.receive_some():
                got.extend(chunk)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await stream.send_all(data)
            await stream.send_eof()
        assert bytes(got) == data


# --------------------------------------------------------------------------- item 3
async def test_item_3_send_all_inside_lock_sock_with_a_full_send_buffer_completes(autojump_clock):
    """sk_stream_wait_memory releases the socket lock while it sleeps: the ACKs that free the
    send buffer are processed from the backlog, the lock is retaken, the data goes out."""
    net = pair()
    a, b = net.host("a"), net.host("b")
    data = bytes(range(256)) * 4096  # 1 MiB against a 4608-byte send buffer
    got = bytearray()
    async with net.running():
        listener = await b.tcp_listen(PORT)
        stream = await a.tcp_connect("10.0.0.2", PORT, sndbuf=1)
        peer = await listener.accept()
        sock = stream._sock
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                while chunk := await peer.receive_some():
                    got.extend(chunk)

            nursery.start_soon(reader)
            with trio.fail_after(120):
                async with stream.lock_sock():
                    await stream.send_all(data)
                    assert sock.owned  # still held when send_all returns
                    backlog_before = len(sock.backlog)
                    await trio.sleep(0.1)  # ACKs arriving now wait in the backlog
                    assert len(sock.backlog) > backlog_before
                assert not sock.owned and not sock.backlog
                await stream.send_eof()
    assert bytes(got) == data


async def test_item_3_receive_some_inside_lock_sock_keeps_the_lock(autojump_clock):
    """sk_wait_data releases the lock while the reader sleeps and retakes it: the data that
    arrives meanwhile is read, and after receive_some returns the lock is still held, so later
    segments wait in the backlog until lock_sock() ends."""
    net = pair()
    a, b = net.host("a"), net.host("b")
    async with net.running():
        listener = await b.tcp_listen(PORT)
        stream = await a.tcp_connect("10.0.0.2", PORT)
        peer = await listener.accept()
        sock = peer._sock
        t0 = trio.current_time()
        async with trio.open_nursery() as nursery:

            async def writer() -> None:
                await trio.sleep(1)
                await stream.send_all(b"first")
                await trio.sleep(1)
                await stream.send_all(b"second")

            nursery.start_soon(writer)
            async with peer.lock_sock():
                assert await peer.receive_some() == b"first"
                assert trio.current_time() - t0 == pytest.approx(1.005, abs=1e-9)  # 5 ms link
                assert sock.owned
                await trio.sleep(1.5)
                # "second", then the sender's loss probe and RTO retransmission of it (no ACK
                # comes from an owned socket)
                assert [p for _, p in sock.backlog] == [b"second"] * 3
                assert peer.connection.readable == 0
            assert not sock.backlog and peer.connection.readable == len(b"second")
        assert await peer.receive_some() == b"second"


async def test_item_3_another_task_waits_for_the_lock_holder(autojump_clock):
    """lock_sock sleeps while another task owns the socket: a second task's receive_some
    reads only once the holder has left lock_sock()."""
    net = pair()
    a, b = net.host("a"), net.host("b")
    async with net.running():
        listener = await b.tcp_listen(PORT)
        stream = await a.tcp_connect("10.0.0.2", PORT)
        peer = await listener.accept()
        await stream.send_all(b"hello")
        await trio.sleep(0.1)
        read_at: list[float] = []
        async with trio.open_nursery() as nursery:

            async def holder(task_status=trio.TASK_STATUS_IGNORED) -> None:
                async with peer.lock_sock():
                    task_status.started()
                    await trio.sleep(2)

            async def reader() -> None:
                assert await peer.receive_some() == b"hello"
                read_at.append(trio.current_time())

            start = trio.current_time()
            await nursery.start(holder)
            nursery.start_soon(reader)
        assert read_at == [pytest.approx(start + 2, abs=1e-9)]
