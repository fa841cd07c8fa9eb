"""Acceptance tests for issue 3, item 9: a running host survives hostile frames.

Thousands of random and mutated frames (random bytes; valid Ethernet/IPv4/UDP/ICMP/TCP/ARP frames
with bits flipped, truncated, with bad header fields whose checksums are then made right again
so that the deeper parsers see them, ARP junk) are injected one by one into the server's
device.  No layer task may crash (the network's nursery would raise), and each frame must leave
a trace beyond the device's rx_packets/rx_bytes: a drop counter (device statistics, nstat), a
neighbour-table statistic, or the counters of the work it legitimately caused.  The only frames
exempt are ARP packets that Linux's arp_process (net/ipv4/arp.c) itself ignores without
counting anything: an unknown opcode, a multicast or loopback target, or a zero sender address
that is not a request for one of our addresses.  Afterwards ping still works both ways.

Each frame is processed at one frozen virtual instant: ``wait_all_tasks_blocked`` returns once
every layer task has drained its inbox, before the clock may jump, so the counters that moved
belong to that frame alone (answers to the client stay on the wire until the loop is over).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import trio
import trio.testing

import emunet
from emunet.stack.host import Host
from emunet.wire.addr import BROADCAST_MAC, ZERO_MAC, ip_from_str
from emunet.wire.arp import ARP_REPLY, ARP_REQUEST, Arp
from emunet.wire.checksum import internet_checksum, transport_checksum
from emunet.wire.errors import MalformedPacket
from emunet.wire.ethernet import ETH_P_ARP, ETH_P_IP, Ethernet
from emunet.wire.icmp import ICMP_ECHO, Icmp, quote
from emunet.wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Ipv4
from emunet.wire.tcp import ACK, PSH, SYN, Mss, Nop, SackPermitted, Tcp, Timestamps, WindowScale
from emunet.wire.udp import Udp

CLIENT, SERVER = "10.0.1.2", "10.0.1.3"
C_IP, S_IP = ip_from_str(CLIENT), ip_from_str(SERVER)
FRAMES = 6000
# Counted on arrival for every frame whatever becomes of it: not a verdict.
ARRIVAL = frozenset({"rx_packets", "rx_bytes", "IpInReceives", "IpExtInOctets"})


class Fuzzer:
    """Frames for the server: templates of every kind, and ways to spoil them."""

    def __init__(self, rng: random.Random, c_mac: bytes, s_mac: bytes) -> None:
        self.rng = rng
        self.c_mac, self.s_mac = c_mac, s_mac

    # ----------------------------------------------------------------- valid frames
    def eth(self, payload: bytes, ethertype: int = ETH_P_IP, dst: bytes | None = None) -> bytes:
        return Ethernet(dst or self.s_mac, self.c_mac, ethertype).build(payload)

    def ip(self, proto: int, payload: bytes, **kw) -> bytes:
        rng = self.rng
        kw.setdefault("id", rng.randrange(0x10000))
        return self.eth(Ipv4(C_IP, S_IP, proto, **kw).build(payload))

    def udp(self) -> bytes:
        rng = self.rng
        port = rng.choice((5000, 6000, 53, rng.randrange(1, 0x10000)))
        data = rng.randbytes(rng.randrange(0, 200))
        return self.ip(IPPROTO_UDP, Udp(rng.randrange(1, 0x10000), port).build(data, C_IP, S_IP))

    def icmp_echo(self) -> bytes:
        rng = self.rng
        msg = Icmp.echo(ICMP_ECHO, rng.randrange(0x10000), rng.randrange(0x10000))
        return self.ip(IPPROTO_ICMP, msg.build(rng.randbytes(rng.randrange(0, 100))))

    def icmp_error(self) -> bytes:
        """An error quoting something the server might have sent (UDP, TCP or ICMP)."""
        rng = self.rng
        kind = rng.randrange(3)
        if kind == 0:
            inner_l4 = Udp(5000, rng.randrange(1, 0x10000)).build(b"q" * 20, S_IP, C_IP)
            proto = IPPROTO_UDP
        elif kind == 1:
            inner_l4 = Tcp(80, 4000, rng.getrandbits(32), 0, SYN | ACK, 1000).build(b"", S_IP, C_IP)
            proto = IPPROTO_TCP
        else:
            inner_l4 = Icmp.echo(ICMP_ECHO, rng.randrange(0x10000), 1).build(b"ping")
            proto = IPPROTO_ICMP
        inner = Ipv4(S_IP, C_IP, proto, id=rng.randrange(0x10000)).build(inner_l4)
        icmp_type, code = rng.choice(((3, 3), (3, 1), (3, 4), (11, 0), (11, 1), (12, 0), (4, 0)))
        rest = rng.choice((0, rng.randrange(68, 1500), rng.getrandbits(32)))
        body = quote(inner, rng.choice((28, 48, 548)))
        return self.ip(IPPROTO_ICMP, Icmp(icmp_type, code, rest).build(body))

    def tcp(self) -> bytes:
        rng = self.rng
        options = rng.choice(
            ((), (Mss(1460), SackPermitted(), Timestamps(1, 0), Nop(), WindowScale(7)), (Nop(),))
        )
        flags = rng.choice((SYN, ACK, ACK | PSH, rng.randrange(0x1000)))
        seg = Tcp(
            rng.randrange(1, 0x10000),
            rng.choice((80, 22, rng.randrange(1, 0x10000))),
            rng.getrandbits(32),
            rng.getrandbits(32),
            flags,
            rng.randrange(0x10000),
            options=options,
        ).build(rng.randbytes(rng.randrange(0, 64)), C_IP, S_IP)
        return self.ip(IPPROTO_TCP, seg)

    def fragment(self) -> bytes:
        rng = self.rng
        offset = rng.choice((0, rng.randrange(0, 8192)))
        mf = rng.random() < 0.7
        data = rng.randbytes(rng.randrange(0, 300))
        return self.ip(rng.choice((IPPROTO_UDP, IPPROTO_TCP, IPPROTO_ICMP, 99)), data,
                       mf=mf, frag_offset=offset)  # fmt: skip

    def arp(self) -> bytes:
        rng = self.rng
        op = rng.choice((ARP_REQUEST, ARP_REPLY))
        target = rng.choice((S_IP, C_IP, ip_from_str("10.0.1.77"), rng.getrandbits(32)))
        sender = rng.choice((C_IP, ip_from_str("10.0.1.88"), S_IP, 0, rng.getrandbits(32)))
        body = Arp(op, rng.choice((self.c_mac, rng.randbytes(6))), sender, ZERO_MAC, target)
        return self.eth(body.build(), ETH_P_ARP, rng.choice((BROADCAST_MAC, self.s_mac)))

    # ----------------------------------------------------------------- spoiling
    def random_bytes(self) -> bytes:
        rng = self.rng
        frame = bytearray(rng.randbytes(rng.randrange(0, 1600)))
        if len(frame) >= 14 and rng.random() < 0.8:
            frame[0:6] = rng.choice((self.s_mac, BROADCAST_MAC))
            if rng.random() < 0.7:
                frame[12:14] = rng.choice((b"\x08\x00", b"\x08\x06"))
        return bytes(frame)

    def flip_bits(self, frame: bytes) -> bytes:
        buf = bytearray(frame)
        for _ in range(self.rng.randint(1, 4)):
            bit = self.rng.randrange(14 * 8, len(buf) * 8)
            buf[bit >> 3] ^= 0x80 >> (bit & 7)
        return bytes(buf)

    def truncate(self, frame: bytes) -> bytes:
        return frame[: self.rng.randrange(0, len(frame))]

    def trailing_junk(self, frame: bytes) -> bytes:
        return frame + self.rng.randbytes(self.rng.randrange(1, 100))

    def bad_ip_field(self, frame: bytes) -> bytes:
        """One IPv4 header field made odd, then the header checksum made right again."""
        rng = self.rng
        buf = bytearray(frame)
        field = rng.randrange(9)
        if field == 0:
            buf[14] = rng.randrange(256)  # version and IHL
        elif field == 1:
            buf[16:18] = struct.pack("!H", rng.randrange(0x10000))  # total length
        elif field == 2:
            buf[20:22] = struct.pack("!H", rng.randrange(0x10000))  # flags, fragment offset
        elif field == 3:
            buf[22] = rng.choice((0, 1, 255))  # TTL
        elif field == 4:
            buf[23] = rng.randrange(256)  # protocol
        elif field == 5:
            src = rng.choice((0, 0xFFFFFFFF, 0xE0000001, 0x7F000001, S_IP, 0x0A0001FF))
            buf[26:30] = struct.pack("!I", src)
        elif field == 6:
            dst = rng.choice((0, 0xFFFFFFFF, 0xE0000001, 0x7F000001, 0x0A0001FF, C_IP,
                              rng.getrandbits(32)))  # fmt: skip
            buf[30:34] = struct.pack("!I", dst)
        elif field == 7:
            # IHL > 5 with option bytes that are garbage (the header grows into the payload).
            ihl = rng.randrange(6, 16)
            buf[14] = 0x40 | ihl
        else:
            buf[15] = rng.randrange(256)  # TOS / ECN
        fix_ip_checksum(buf)
        return bytes(buf)

    def bad_l4_field(self, frame: bytes) -> bytes:
        """One UDP/ICMP/TCP field made odd; usually the transport checksum made right again."""
        rng = self.rng
        buf = bytearray(frame)
        hlen = (buf[14] & 15) * 4
        l4 = 14 + hlen
        if len(buf) < l4 + 8:
            return bytes(buf)
        proto = buf[23]
        if proto == IPPROTO_UDP:
            choice = rng.randrange(3)
            if choice == 0:
                buf[l4 + 4 : l4 + 6] = struct.pack("!H", rng.randrange(0x10000))  # length
            elif choice == 1:
                buf[l4 + 6 : l4 + 8] = b"\x00\x00"  # "no checksum"
                return bytes(buf)
            else:
                buf[l4 + 6 : l4 + 8] = rng.randbytes(2)
                return bytes(buf)
        elif proto == IPPROTO_ICMP:
            buf[l4] = rng.choice((rng.randrange(256), 3, 11, 0, 8, 5, 12, 13, 17, 40))
            buf[l4 + 1] = rng.randrange(256)
            if rng.random() < 0.5:
                buf[l4 + 8 :] = rng.randbytes(len(buf) - l4 - 8)  # a "quote" of garbage
        elif proto == IPPROTO_TCP and len(buf) >= l4 + 20:
            choice = rng.randrange(3)
            if choice == 0:
                buf[l4 + 12] = (rng.randrange(16) << 4) | (buf[l4 + 12] & 15)  # data offset
            elif choice == 1:
                buf[l4 + 12] = (buf[l4 + 12] & 0xF0) | rng.randrange(16)
                buf[l4 + 13] = rng.randrange(256)  # flags
            elif len(buf) > l4 + 20:
                buf[l4 + 12] = (min(15, (len(buf) - l4) // 4) << 4) | (buf[l4 + 12] & 15)
                buf[l4 + 20 :] = rng.randbytes(len(buf) - l4 - 20)  # option garbage
        if rng.random() < 0.85:
            fix_l4_checksum(buf)
        return bytes(buf)

    def arp_junk(self) -> bytes:
        rng = self.rng
        body = struct.pack(
            "!HHBBH6sI6sI",
            rng.choice((1, rng.randrange(0x10000))),
            rng.choice((0x0800, rng.randrange(0x10000))),
            rng.choice((6, rng.randrange(256))),
            rng.choice((4, rng.randrange(256))),
            rng.choice((1, 2, 3, 4, 0, rng.randrange(0x10000))),
            rng.randbytes(6),
            rng.choice((C_IP, 0, rng.getrandbits(32))),
            rng.randbytes(6),
            rng.choice((S_IP, 0xE0000001, 0x7F000001, rng.getrandbits(32))),
        )
        body = body[: rng.choice((len(body), rng.randrange(0, len(body))))]
        return self.eth(body, ETH_P_ARP, rng.choice((BROADCAST_MAC, self.s_mac)))

    def frame(self) -> tuple[str, bytes]:
        rng = self.rng
        templates: list[Callable[[], bytes]] = [
            self.udp, self.icmp_echo, self.icmp_error, self.tcp, self.fragment, self.arp,
        ]  # fmt: skip
        kind = rng.randrange(8)
        if kind == 0:
            return "random", self.random_bytes()
        if kind == 1:
            return "arp-junk", self.arp_junk()
        base = rng.choice(templates)()
        if kind == 2:
            return "flipped", self.flip_bits(base)
        if kind == 3:
            return "truncated", self.truncate(base)
        if kind == 4:
            return "trailing", self.trailing_junk(base)
        if kind == 5 and base[12:14] == b"\x08\x00":
            return "bad-ip", self.bad_ip_field(base)
        if kind == 6 and base[12:14] == b"\x08\x00":
            return "bad-l4", self.bad_l4_field(base)
        return "valid", base


def fix_ip_checksum(buf: bytearray) -> None:
    hlen = (buf[14] & 15) * 4
    if hlen >= 20 and 14 + hlen <= len(buf):
        buf[24:26] = b"\x00\x00"
        buf[24:26] = struct.pack("!H", internet_checksum(bytes(buf[14 : 14 + hlen])))


def fix_l4_checksum(buf: bytearray) -> None:
    hlen = (buf[14] & 15) * 4
    total = (buf[16] << 8) | buf[17]
    l4, end = 14 + hlen, min(14 + total, len(buf))
    proto = buf[23]
    if hlen < 20 or end - l4 < 8:
        return
    at = {IPPROTO_UDP: 6, IPPROTO_TCP: 16, IPPROTO_ICMP: 2}.get(proto)
    if at is None or end - l4 < at + 2:
        return
    buf[l4 + at : l4 + at + 2] = b"\x00\x00"
    seg = bytes(buf[l4:end])
    if proto == IPPROTO_ICMP:
        csum = internet_checksum(seg)
    else:
        src, dst = struct.unpack("!II", bytes(buf[26:34]))
        csum = transport_checksum(src, dst, proto, seg)
        if proto == IPPROTO_UDP and csum == 0:
            csum = 0xFFFF
    buf[l4 + at : l4 + at + 2] = struct.pack("!H", csum)


def silently_ignored_arp(frame: bytes, s_mac: bytes) -> bool:
    """ARP that arp_process drops without counting: well-formed (Ethernet/IPv4, 6/4) and
    addressed to us, but an unknown opcode, a multicast/loopback target, or sender 0.0.0.0
    without being a request for our address."""
    if len(frame) < 14 + 28 or frame[12:14] != b"\x08\x06":
        return False
    if frame[0:6] != s_mac and not frame[0] & 1:
        return False
    try:
        arp, _ = Arp.parse(frame[14:])
    except MalformedPacket:
        return False
    if arp.op not in (ARP_REQUEST, ARP_REPLY):
        return True
    if arp.target_ip >> 28 == 0xE or arp.target_ip >> 24 == 127:
        return True
    return arp.sender_ip == 0 and not (arp.op == ARP_REQUEST and arp.target_ip == S_IP)


def snapshot(host: Host) -> dict[str, int]:
    out = dict(host.nstat())
    for name, dev in host.devices.items():
        for key, value in dev.stats.items():
            out[f"{name}.{key}"] = value
        for key, value in dev.neigh.stats.items():
            out[f"{name}.neigh.{key}"] = value
    return out


def moved(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {
        k for k, v in after.items() if v != before.get(k, 0) and k.rpartition(".")[2] not in ARRIVAL
    }


async def test_thousands_of_hostile_frames_crash_nothing_and_are_all_counted(autojump_clock):
    net = emunet.Network(seed=9)
    net.add_host("client", interfaces={"eth0": f"{CLIENT}/24"})
    net.add_host("server", interfaces={"eth0": f"{SERVER}/24"})
    net.add_link("client:eth0", "server:eth0", delay="1ms")
    client, server = net.host("client"), net.host("server")
    dev = server.devices["eth0"]
    fuzz = Fuzzer(random.Random(2024), client.devices["eth0"].mac, dev.mac)
    kinds: dict[str, int] = {}
    uncounted: list[tuple[str, bytes]] = []
    exempt = 0
    async with net.running():
        sock = server.udp_socket(5000)

        async def drain() -> None:
            while True:
                await sock.recvfrom()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            assert (await client.ping(SERVER, count=1)).received == 1
            await trio.sleep(1)
            t0 = trio.current_time()
            rx_before = dev.stats["rx_packets"]
            for _ in range(FRAMES):
                kind, frame = fuzz.frame()
                kinds[kind] = kinds.get(kind, 0) + 1
                before = snapshot(server)
                dev.netif_rx(frame)
                await trio.testing.wait_all_tasks_blocked()
                if not moved(before, snapshot(server)):
                    if silently_ignored_arp(frame, dev.mac):
                        exempt += 1
                    else:
                        uncounted.append((kind, frame))
            assert trio.current_time() == t0  # every frame was handled at one instant
            assert dev.stats["rx_packets"] - rx_before == FRAMES
            assert dev.stats["rx_dropped"] == 0
            # Let every timer the junk started run out: reassembly (30 s), ARP, ICMP limits.
            await trio.sleep(60)
            for host, dst in ((client, SERVER), (server, CLIENT)):
                result = await host.ping(dst, count=3, interval=0.2)
                assert (result.sent, result.received) == (3, 3), host.name
            nursery.cancel_scope.cancel()

    assert not uncounted, [(k, f.hex()) for k, f in uncounted[:5]]
    assert exempt < FRAMES // 20
    assert set(kinds) == {
        "random", "arp-junk", "flipped", "truncated", "trailing", "bad-ip", "bad-l4", "valid",
    }  # fmt: skip
    assert min(kinds.values()) > 200
    nstat = server.nstat()
    for counter in ("IpInHdrErrors", "IpInCsumErrors", "IpInTruncatedPkts", "IpInAddrErrors",
                    "IpReasmReqds", "IpReasmFails", "UdpInErrors", "UdpInCsumErrors",
                    "UdpNoPorts", "IcmpInErrors", "IcmpInEchos", "IcmpInDestUnreachs",
                    "IcmpInCsumErrors", "IpInUnknownProtos"):  # fmt: skip
        assert nstat[counter] > 0, counter
    stats = server.link_stats()["eth0"]
    for counter in ("rx_otherhost_dropped", "rx_length_errors", "rx_nohandler", "rx_errors"):
        assert stats[counter] > 0, counter
