"""Issue 5 acceptance item 1: ``TcpStream`` keeps trio's HalfCloseableStream contract.

Both ends are emulated hosts joined through a router (client - r1 - server), and the streams
pass ``trio.testing.check_half_closeable_stream`` with a clogged maker: a pair whose sender
has filled its send buffer and the peer's receive window (SO_SNDBUF / SO_RCVBUF small, the
receiver not reading), so that ``send_all`` and ``wait_send_all_might_not_block`` block until
the receiver reads (net/ipv4/tcp.c sk_stream_wait_memory, tcp_cleanup_rbuf).
"""

from __future__ import annotations

import itertools
import random

import pytest
import trio
import trio.testing

import emunet
from emunet.stack.tcp.sock import TcpStream

SERVER = "10.0.2.2"
# SO_SNDBUF / SO_RCVBUF for the clogged pair (Linux doubles them: 8 KiB of buffer each)
SMALL_BUF = 4096


def three_nodes(seed: int = 3) -> emunet.Network:
    net = emunet.Network(seed=seed)
    net.add_host("client", interfaces={"eth0": "10.0.1.2/24"}, routes={"default": "10.0.1.1"})
    net.add_router("r1", interfaces={"eth0": "10.0.1.1/24", "eth1": "10.0.2.1/24"})
    net.add_host("server", interfaces={"eth0": "10.0.2.2/24"}, routes={"default": "10.0.2.1"})
    net.add_link("client:eth0", "r1:eth0", delay="1ms", bandwidth="100Mbit")
    net.add_link("r1:eth1", "server:eth0", delay="1ms", bandwidth="100Mbit")
    return net


class Makers:
    """Stream makers over one running network; every pair gets its own listening port."""

    def __init__(self, net: emunet.Network) -> None:
        self.net = net
        self.ports = itertools.count(6000)

    async def pair(self, **options: int) -> tuple[TcpStream, TcpStream]:
        port = next(self.ports)
        listener = await self.net.host("server").tcp_listen(port, **options)
        client = await self.net.host("client").tcp_connect(SERVER, port, **options)
        server = await listener.accept()
        await listener.aclose()
        return client, server

    async def maker(self) -> tuple[TcpStream, TcpStream]:
        return await self.pair()

    async def clogged_maker(self) -> tuple[TcpStream, TcpStream]:
        """A pair in which both directions are clogged: each end has written until its send
        buffer is full while the peer's receive window is closed."""
        a, b = await self.pair(sndbuf=SMALL_BUF, rcvbuf=SMALL_BUF)
        await clog(a)
        await clog(b)
        return a, b


async def clog(stream: TcpStream) -> int:
    """Write without blocking until nothing more fits, even after the peer's receive buffer
    has absorbed all it will (one virtual second of quiet: many RTTs); returns the bytes
    written."""
    conn = stream.connection
    written = 0
    while True:
        while (space := conn.send_space()) > 0:
            await stream.send_all(b"z" * space)
            written += space
        await trio.sleep(1.0)
        if conn.send_space() <= 0:
            return written


async def test_clogged_pair_is_clogged(autojump_clock: trio.testing.MockClock) -> None:
    """The clogged pair is what check_one_way_stream expects: send_all and
    wait_send_all_might_not_block stay blocked while nobody reads, and return once the peer
    reads; then every byte written arrives, in order."""
    net = three_nodes()
    async with net.running():
        a, b = await Makers(net).pair(sndbuf=SMALL_BUF, rcvbuf=SMALL_BUF)
        written = await clog(a)
        assert await clog(b) > 0
        for s, peer in ((a, b), (b, a)):
            assert s.info().snd_wnd == 0  # the peer's window is closed
            assert s.info().send_q == s.info().sndbuf == 2 * SMALL_BUF  # our buffer is full
            assert peer.info().recv_q > 0
        with trio.move_on_after(30.0) as scope:
            await a.wait_send_all_might_not_block()
        assert scope.cancelled_caught
        with trio.move_on_after(30.0) as scope:
            await a.send_all(b"!")
        assert scope.cancelled_caught
        got = bytearray()
        with trio.fail_after(10.0):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.wait_send_all_might_not_block)
                await trio.testing.wait_all_tasks_blocked()
                got += await b.receive_some(16384)
            await a.send_all(b"!")
            await a.send_eof()
            while chunk := await b.receive_some(16384):
                got += chunk
        assert got == b"z" * written + b"!"
        await a.aclose()
        await b.aclose()


async def test_half_closeable_stream_contract(autojump_clock: trio.testing.MockClock) -> None:
    net = three_nodes()
    async with net.running():
        makers = Makers(net)
        await trio.testing.check_half_closeable_stream(makers.maker, makers.clogged_maker)
        assert net.host("r1").nstat()["IpForwDatagrams"] > 0


@pytest.mark.parametrize("direction", ["client", "server"])
async def test_send_all_blocks_until_read(
    autojump_clock: trio.testing.MockClock, direction: str
) -> None:
    """With small buffers a large send_all returns only as the reader drains it, and every
    byte arrives intact and in order."""
    net = three_nodes()
    async with net.running():
        a, b = await Makers(net).pair(sndbuf=SMALL_BUF, rcvbuf=SMALL_BUF)
        if direction == "server":
            a, b = b, a
        data = random.Random(direction).randbytes(256 * 1024)  # through 8 KiB buffers
        got = bytearray()
        done_at: list[float] = []

        async def sender() -> None:
            await a.send_all(data)
            done_at.append(trio.current_time())
            await a.send_eof()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await trio.sleep(5.0)
            assert not done_at  # nobody read: the sender is still blocked
            while chunk := await b.receive_some(65536):
                got += chunk
        assert bytes(got) == data
        await a.aclose()
        await b.aclose()
