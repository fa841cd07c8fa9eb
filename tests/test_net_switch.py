"""Acceptance tests for issue 3, item 7: four hosts on a learning switch (fabric/switch.py, after
Linux's bridge: net/bridge/br_forward.c, br_fdb.c), in virtual time.

h1..h4 (10.0.0.1-4/24) on sw1's ports p1..p4, 1 ms links.  A broadcast (the ARP request) leaves
by every port but the one it came in on; once the switch has learned where a MAC lives, unicast
to it leaves by that port only; after ageing_time (300 s) of silence it is unknown again and
flooded like a broadcast.  Observed with the switch ports' own counters and a recorder on each
host's link standing in for its pcap.
"""

from __future__ import annotations

import trio

import emunet
from emunet.fabric.switch import Switch
from emunet.wire.addr import BROADCAST_MAC, ip_from_str
from emunet.wire.arp import ARP_REQUEST, Arp
from emunet.wire.ethernet import ETH_P_ARP, ETH_P_IP, Ethernet

HOSTS = ("h1", "h2", "h3", "h4")


class Recorder:
    """Stands in for a link's PcapWriter: (ns, frame) as each frame's last bit leaves."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []

    def write(self, frame: bytes, ns: int) -> None:
        self.frames.append((ns, frame))

    def sent_by(self, mac: bytes) -> list[bytes]:
        return [f for _, f in self.frames if f[6:12] == mac]


def star() -> tuple[emunet.Network, Switch, dict[str, Recorder]]:
    net = emunet.Network(seed=3)
    sw = net.add_switch("sw1")
    recorders = {}
    for i, name in enumerate(HOSTS, start=1):
        net.add_host(name, interfaces={"eth0": f"10.0.0.{i}/24"})
        link = net.add_link(f"{name}:eth0", f"sw1:p{i}", delay="1ms")
        link.pcap = recorders[name] = Recorder()
    return net, sw, recorders


def port_tx(sw: Switch) -> dict[str, int]:
    return {name: port.stats["tx_packets"] for name, port in sw.ports.items()}


def mac_of(net: emunet.Network, name: str) -> bytes:
    return net.host(name).devices["eth0"].mac


async def test_arp_request_is_flooded_and_unicast_is_not(autojump_clock):
    """h1 pings h2 twice: the ARP request goes out of p2, p3 and p4; the ARP reply and every
    echo request / reply go out of the destination's port only.  h3 and h4 see nothing but the
    one broadcast."""
    net, sw, rec = star()
    h1_mac, h2_mac = mac_of(net, "h1"), mac_of(net, "h2")
    async with net.running():
        result = await net.host("h1").ping("10.0.0.2", count=2, interval=1.0)
        assert result.received == 2
        assert port_tx(sw) == {"p1": 1 + 2, "p2": 1 + 2, "p3": 1, "p4": 1}
        assert (sw.stats["flooded"], sw.stats["forwarded"]) == (1, 5)
        fdb = {e.mac: e.port for e in sw.fdb()}
        assert fdb == {h1_mac: "p1", h2_mac: "p2"}

    # The one frame h3 and h4 received: h1's broadcast request for 10.0.0.2.
    for name in ("h3", "h4"):
        from_switch = [f for _, f in rec[name].frames if f[6:12] != mac_of(net, name)]
        assert len(from_switch) == 1
        eth, body = Ethernet.parse(from_switch[0])
        assert (eth.dst, eth.src, eth.ethertype) == (BROADCAST_MAC, h1_mac, ETH_P_ARP)
        arp, _ = Arp.parse(body)
        assert (arp.op, arp.target_ip) == (ARP_REQUEST, ip_from_str("10.0.0.2"))
        assert rec[name].sent_by(mac_of(net, name)) == []  # and they said nothing
        stats = net.host(name).link_stats()["eth0"]
        assert (stats["rx_packets"], stats["tx_packets"]) == (1, 0)
    # h2 got the request, two echo requests; h1 the reply and two echo replies.
    assert net.host("h2").link_stats()["eth0"]["rx_packets"] == 3
    assert net.host("h1").link_stats()["eth0"]["rx_packets"] == 3


async def test_second_conversation_floods_its_request_once_more(autojump_clock):
    """After h1 <-> h2, h3 asks for h4: its request is flooded to p1, p2 and p4; h4's reply
    goes to p3 only.  Broadcasts are never filtered by what the switch has learned."""
    net, sw, _ = star()
    async with net.running():
        await net.host("h1").ping("10.0.0.2", count=1)
        before = port_tx(sw)
        result = await net.host("h3").ping("10.0.0.4", count=1)
        assert result.received == 1
        after = port_tx(sw)
    gained = {p: after[p] - before[p] for p in after}
    # p1, p2: the broadcast only; p4: broadcast + echo request; p3: ARP reply + echo reply.
    assert gained == {"p1": 1, "p2": 1, "p3": 2, "p4": 2}
    assert net.host("h1").link_stats()["eth0"]["rx_otherhost_dropped"] == 0


async def test_unicast_to_an_aged_out_mac_is_flooded(autojump_clock):
    """300 s after the switch last heard from h2, its FDB entry is gone: h1's next datagram
    to h2 (sent at once with h1's cached, STALE ARP entry) is unknown unicast and leaves by
    p2, p3 and p4; h3 and h4 drop it as not theirs (rx_otherhost_dropped).  h2's answer goes
    to h1's port only, since the switch has just relearned h1."""
    net, sw, rec = star()
    h1 = net.host("h1")
    h1_mac, h2_mac = mac_of(net, "h1"), mac_of(net, "h2")
    async with net.running():
        await h1.ping("10.0.0.2", count=1)
        # h2 probes h1 (DELAY -> PROBE) about 5 s later; after that the network is silent.
        await trio.sleep_until(400)
        assert all(e.updated < 400 - sw.ageing_time for e in sw.fdb())
        before = port_tx(sw)
        sock = h1.udp_socket(4000)
        await sock.sendto(b"anyone?", ("10.0.0.2", 9))  # closed port: h2 answers ICMP
        await trio.sleep(0.1)
        after = port_tx(sw)
    gained = {p: after[p] - before[p] for p in after}
    assert gained == {"p1": 1, "p2": 1, "p3": 1, "p4": 1}
    for name in ("h3", "h4"):
        stats = net.host(name).link_stats()["eth0"]
        assert stats["rx_otherhost_dropped"] == 1
        eth, _ = Ethernet.parse(rec[name].frames[-1][1])
        assert (eth.dst, eth.src, eth.ethertype) == (h2_mac, h1_mac, ETH_P_IP)
    assert h1.nstat()["IcmpInDestUnreachs"] == 1
    assert {e.mac: e.port for e in sw.fdb()} == {h1_mac: "p1", h2_mac: "p2"}
