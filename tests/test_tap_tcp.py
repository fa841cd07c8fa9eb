"""Real Linux as a TCP peer through TAP devices (issue 4, items 3 and the TCP part of 4).

Linux's own TCP (net/ipv4/tcp_input.c, tcp_output.c: window scaling, SACK, timestamps, PMTU
discovery from ICMP frag needed, RFC 1191) is the judge of emunet's: 5 MB each way between a
Linux socket and an emulated one, and Linux to Linux through an emulated router, also over a
path whose MTU shrinks on one side.  Every transfer is checked with sha256.

Each test runs as root where /dev/net/tun exists (tests/nstools.py skips elsewhere, with the
reason), in real time under ``emunet.run(main, realtime=True)`` inside ``trio.fail_after``;
the Linux programs are plain ``python3 -c`` socket scripts run with ``ip netns exec``, each with
its own socket timeout.  Every namespace and device is named ``emu...`` and removed at teardown.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import nstools
from nstools import LINUX_MAC, run_real, two_namespaces_and_a_router

import emunet

netns_factory = nstools.netns_factory

SIZE = 5 * 1000 * 1000
ALL_OPTIONS = 1 | 2 | 4  # TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE


def payload(size: int, tag: bytes) -> bytes:
    """Deterministic, non-repeating-looking bytes (a sha256 chain), ``size`` long."""
    block = b"".join(hashlib.sha256(tag + i.to_bytes(4, "big")).digest() for i in range(2048))
    return (block * (size // len(block) + 1))[:size]


# A Linux sender: connects, sends SIZE bytes of payload(), half-closes, waits for the peer's
# FIN; prints the length, digest, tcpi_options and tcpi_total_retrans
SENDER = """
import hashlib, socket, struct, sys
host, port, size, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
block = b"".join(hashlib.sha256(tag + i.to_bytes(4, "big")).digest() for i in range(2048))
data = (block * (size // len(block) + 1))[:size]
s = socket.create_connection((host, port), timeout=8)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
rest = s.recv(1)
info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
opts, retrans = info[5], struct.unpack_from("I", info, 100)[0]  # tcpi_options, total_retrans
print("sent", len(data), hashlib.sha256(data).hexdigest(), len(rest), opts, retrans, flush=True)
s.close()
"""

# A Linux receiver: accepts one connection, reads to EOF; prints length, digest, peer and
# tcpi_options
RECEIVER = """
import hashlib, socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
ls.listen(1)
ls.settimeout(8)
print("ready", flush=True)
c, peer = ls.accept()
c.settimeout(8)
opts = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[5]  # tcpi_options
h = hashlib.sha256()
n = 0
while True:
    d = c.recv(1 << 16)
    if not d:
        break
    h.update(d)
    n += len(d)
c.close()
print("got", n, h.hexdigest(), *peer, opts, flush=True)
"""


async def emu_receive_all(stream: Any) -> bytes:
    got = bytearray()
    while True:
        chunk = await stream.receive_some(1 << 16)
        if not chunk:
            return bytes(got)
        got += chunk


def one_host_and_linux(ns: nstools.Netns) -> emunet.Network:
    """h (10.0.1.2) -- tap0 -- Linux in ``ns`` (10.0.1.3)."""
    net = emunet.Network(seed=4)
    net.add_host("h", interfaces={"eth0": "10.0.1.2/24"})
    net.add_tap("tap0", device=ns.dev(), netns=ns.name, address="10.0.1.3/24", mac=LINUX_MAC)
    net.add_link("h:eth0", "tap0:tap")
    return net


# --------------------------------------------------------------------------- item 3
def test_linux_client_sends_5mb_to_an_emulated_listener(netns_factory: Any) -> None:
    nstools.require()
    ns = netns_factory()
    net = one_host_and_linux(ns)
    h = net.host("h")
    expected = payload(SIZE, b"linux->emu")
    out: dict[str, Any] = {}

    async def main() -> None:
        async with net.running():
            listener = await h.tcp_listen(5001)
            argv = (sys.executable, "-c", SENDER, "10.0.1.2", "5001", str(SIZE), "linux->emu")
            async with ns.background(*argv) as proc:
                stream = await listener.accept()
                out["data"] = await emu_receive_all(stream)
                out["info"] = stream.info()
                await stream.aclose()
                out["linux"] = (await proc.read_until(b"sent", timeout=8)).decode().split()

    run_real(main)
    data = out["data"]
    assert len(data) == SIZE
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(expected).hexdigest()
    assert out["linux"][:4] == ["sent", str(SIZE), hashlib.sha256(expected).hexdigest(), "0"]
    # Linux negotiated timestamps, SACK and window scaling with emunet's SYN-ACK
    assert int(out["linux"][4]) & ALL_OPTIONS == ALL_OPTIONS
    info = out["info"]
    assert (info.timestamps, info.sack, info.wscale) == (True, True, True)
    stats = h.nstat()
    assert stats["TcpInErrs"] == 0 and stats["TcpExtTCPBacklogDrop"] == 0
    tap, dev = net.nodes["tap0"].stats, h.devices["eth0"].stats
    if tap["tx_dropped"] == tap["tx_errors"] == dev["rx_dropped"] == 0:
        # nothing lost on the way and Linux sends in order: no segment may be processed out of
        # order, so no duplicate ACKs and no retransmission by Linux (a segment once stayed in
        # the prequeue after recvmsg returned and the next one, processed at once, overtook it)
        assert (stats["TcpExtTCPOFOQueue"], out["linux"][5]) == (0, "0")


def test_emulated_client_sends_5mb_to_a_linux_server(netns_factory: Any) -> None:
    nstools.require()
    ns = netns_factory()
    net = one_host_and_linux(ns)
    h = net.host("h")
    data = payload(SIZE, b"emu->linux")
    out: dict[str, Any] = {}

    async def main() -> None:
        async with net.running():
            argv = (sys.executable, "-c", RECEIVER, "10.0.1.3", "5002")
            async with ns.background(*argv) as proc:
                await proc.read_until(b"ready")
                stream = await h.tcp_connect("10.0.1.3", 5002)
                await stream.send_all(data)
                await stream.send_eof()
                out["linux"] = (await proc.read_until(b"got", timeout=8)).decode().split()
                out["eof"] = await stream.receive_some(1)
                out["info"] = stream.info()
                await stream.aclose()

    run_real(main)
    assert out["linux"][:3] == ["got", str(SIZE), hashlib.sha256(data).hexdigest()]
    assert out["linux"][3] == "10.0.1.2"
    assert int(out["linux"][5]) & ALL_OPTIONS == ALL_OPTIONS  # emunet's SYN offered all three
    info = out["info"]
    assert (info.timestamps, info.sack, info.wscale) == (True, True, True)
    assert out["eof"] == b""


# --------------------------------------------------------------------------- item 4 (TCP)
def linux_to_linux(
    net: emunet.Network, ns1: nstools.Netns, ns2: nstools.Netns, size: int, ns2_mtu: int = 0
) -> Any:
    """ns1 sends ``size`` bytes to ns2 by TCP; ``ns2_mtu`` resets ns2's device MTU first."""
    out: dict[str, Any] = {}

    async def main() -> None:
        async with net.running():
            if ns2_mtu:
                device = net.nodes["tap2"].device
                await ns2.run("ip", "link", "set", "dev", device, "mtu", str(ns2_mtu), check=True)
            recv = (sys.executable, "-c", RECEIVER, "10.0.2.3", "5003")
            send = (sys.executable, "-c", SENDER, "10.0.2.3", "5003", str(size), "ns1->ns2")
            async with ns2.background(*recv) as receiver:
                await receiver.read_until(b"ready")
                out["route_before"] = ns1.route_get("10.0.2.3")
                async with ns1.background(*send) as sender:
                    out["got"] = (await receiver.read_until(b"got", timeout=8)).decode().split()
                    out["sent"] = (await sender.read_until(b"sent", timeout=8)).decode().split()
                out["route_after"] = ns1.route_get("10.0.2.3")

    run_real(main)
    return out


def test_two_linux_namespaces_tcp_through_an_emulated_router(netns_factory: Any) -> None:
    nstools.require()
    ns1, ns2 = netns_factory(), netns_factory()
    net = two_namespaces_and_a_router(ns1, ns2)
    r1 = net.host("r1")
    size = 3 * 1000 * 1000
    digest = hashlib.sha256(payload(size, b"ns1->ns2")).hexdigest()
    out = linux_to_linux(net, ns1, ns2, size)
    assert out["sent"][:4] == ["sent", str(size), digest, "0"]
    assert out["got"][:4] == ["got", str(size), digest, "10.0.1.3"]
    stats = r1.nstat()
    assert stats["IpForwDatagrams"] > size // 1448
    assert (stats["IpFragOKs"], stats["IpFragFails"], stats["IcmpOutDestUnreachs"]) == (0, 0, 0)
    assert "metrics" not in out["route_after"]


def test_linux_tcp_pmtud_through_an_emulated_router(netns_factory: Any) -> None:
    nstools.require()
    ns1, ns2 = netns_factory(), netns_factory()
    net = two_namespaces_and_a_router(ns1, ns2, mtu=1000)
    r1 = net.host("r1")
    size = 3 * 1000 * 1000
    digest = hashlib.sha256(payload(size, b"ns1->ns2")).hexdigest()
    # ns2's device gets mtu 1500 back, so its SYN-ACK advertises MSS 1460 and ns1 sends
    # 1500-byte DF segments that r1 cannot forward on eth1 (mtu 1000): r1 answers frag needed
    # (next-hop mtu 1000), ns1 lowers its path MTU and retransmits in smaller segments
    out = linux_to_linux(net, ns1, ns2, size, ns2_mtu=1500)
    assert out["sent"][:4] == ["sent", str(size), digest, "0"]
    assert out["got"][:4] == ["got", str(size), digest, "10.0.1.3"]
    stats = r1.nstat()
    assert "metrics" not in out["route_before"]
    assert stats["IpFragOKs"] == 0  # Linux sets DF on TCP: nothing is fragmented
    assert stats["IpFragFails"] >= 1
    assert stats["IcmpOutDestUnreachs"] == stats["IpFragFails"]
    # Linux took the next-hop MTU from r1's frag needed: `ip route get` shows the cached PMTU
    assert out["route_after"]["metrics"] == [{"mtu": 1000}], out["route_after"]
