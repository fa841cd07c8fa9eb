"""Real Linux as a peer through TAP devices (issue 4; emunet/fabric/tap.py).

The Linux kernel is the stack emunet models, so it judges our wire behaviour: ARP, ICMP echo,
fragmentation and reassembly both ways, forwarding by an emulated router, frag-needed driving
Linux's path MTU, and a tcpdump capture that tshark finds clean.  Items 1, 2, 4 (without TCP)
and 5 of issue 4; the TCP items wait for TCP.

Tests that touch Linux run as root where /dev/net/tun exists (tests/nstools.py skips them
elsewhere, with the reason), in real time under ``emunet.run(main, realtime=True)``, each inside
``trio.fail_after`` so that a failure cannot hang.  Every namespace and device is named ``emu...``
and removed at teardown.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from typing import Any

import nstools
import pytest
import trio
from nstools import LINUX_MAC, LINUX_MAC2, run_real, two_namespaces_and_a_router

import emunet
from emunet.fabric.tap import IFF_NO_PI, IFF_TAP, TapError, TapPort, ifreq
from emunet.stack.neigh import NudState
from emunet.wire.addr import ip_from_str, mac_to_str

netns_factory = nstools.netns_factory

VALID = {NudState.REACHABLE, NudState.STALE, NudState.DELAY, NudState.PROBE}


def ping_argv(dst: str, *options: str, count: int = 3) -> list[str]:
    # -i 0.2 (root may go below 1 s), -W 2 per reply, -w 5 overall: ping cannot linger
    return ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "2", "-w", "5", *options, dst]


def one_host_and_linux(ns: nstools.Netns, **link: Any) -> tuple[emunet.Network, TapPort]:
    """h (10.0.1.2) -- tap0 -- Linux in ``ns`` (10.0.1.3)."""
    net = emunet.Network(seed=4)
    net.add_host("h", interfaces={"eth0": "10.0.1.2/24"})
    tap = net.add_tap("tap0", device=ns.dev(), netns=ns.name, address="10.0.1.3/24", mac=LINUX_MAC)
    net.add_link("h:eth0", "tap0:tap", **link)
    return net, tap


# --------------------------------------------------------------------------- without Linux
def test_ifreq_is_the_kernel_struct() -> None:
    req = ifreq("emutap0", IFF_TAP | IFF_NO_PI)
    assert len(req) == 40
    assert req == b"emutap0" + bytes(9) + b"\x02\x10" + bytes(22)
    with pytest.raises(ValueError, match="1 to 15 bytes"):
        ifreq("emu456789abcdef0", IFF_TAP)
    with pytest.raises(ValueError, match="1 to 15 bytes"):
        ifreq("", IFF_TAP)


def test_builder_links_a_tap_like_any_port() -> None:
    net = emunet.Network()
    net.add_host("h", interfaces={"eth0": "10.0.1.2/24"})
    tap = net.add_tap(
        "tap0", device="emutap9", address="10.0.1.3/24", routes={"default": "10.0.1.1"}
    )
    link = net.add_link("h:eth0", "tap0:tap", mtu=1400)
    assert net.link("tap0:tap", "h:eth0") is link
    assert link.a is net.host("h").devices["eth0"] and link.b is tap
    assert tap.txq.link is link
    assert tap.mtu == 1400
    assert tap.label == "tap0:tap" and tap.device == "emutap9"
    assert link.tasks() == []  # each end's dev-tx task delivers its own direction
    assert [name for name, _ in tap.tasks()] == ["tap0/tap-rx", "tap0/dev-tx:tap"]
    net.add_host("h2", interfaces={"eth0": None})
    with pytest.raises(KeyError, match="one port, 'tap'"):
        net.add_link("h2:eth0", "tap0:eth0")
    with pytest.raises(ValueError, match="already linked"):
        net.add_link("h2:eth0", "tap0:tap")
    with pytest.raises(ValueError, match="already exists"):
        net.add_tap("tap0")
    with pytest.raises(ValueError, match="1 to 15 bytes"):
        net.add_tap("tap1", device="emu-much-too-long")
    with pytest.raises(ValueError, match="prefix"):
        net.add_tap("tap1", address="10.0.1.3")
    with pytest.raises(ValueError, match="unicast"):
        net.add_tap("tap1", mac="01:00:5e:00:00:01")


def test_frames_from_linux_are_padded_and_unopened_writes_dropped() -> None:
    tap = TapPort("tap0", "emutap9")
    arp = bytes(range(42))
    seen: list[bytes] = []
    tap.txq.enqueue = seen.append  # type: ignore[method-assign]  # stands in for a link
    tap.from_linux(arp)
    tap.from_linux(bytes(1500))
    tap.from_linux(bytes(13))
    assert seen == [arp + bytes(18), bytes(1500)]
    assert tap.stats["tx_length_errors"] == 1 and tap.stats["tx_errors"] == 1
    tap.netif_rx(bytes(60))
    assert (tap.stats["rx_packets"], tap.stats["rx_bytes"], tap.stats["rx_dropped"]) == (1, 60, 1)
    tap.close()  # never opened: nothing to do
    assert not tap.is_open


async def test_virtual_time_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    net = emunet.Network()
    net.add_host("h", interfaces={"eth0": "10.0.1.2/24"})
    tap = net.add_tap("tap0", device="emutap9", netns="emunever", address="10.0.1.3/24")
    net.add_link("h:eth0", "tap0:tap")
    with pytest.raises(TapError, match=r"MockClock.*realtime=True"):
        async with net.running():
            pass  # pragma: no cover
    assert not tap.is_open and not net._running


# --------------------------------------------------------------------------- set-up, teardown
class Boom(Exception):
    pass


def test_a_namespace_the_tap_made_is_removed_even_when_set_up_fails() -> None:
    nstools.require()
    netns = f"emu{os.getpid()}auto"
    net = emunet.Network()
    net.add_host("h", interfaces={"eth0": "10.0.1.2/24"})
    # the gateway is not on the TAP's subnet, so `ip route add` fails after the namespace,
    # the device and its address were made
    tap = net.add_tap(
        "tap0", device=f"emutap{os.getpid() % 100000}x", netns=netns,
        address="10.0.1.3/24", routes={"10.9.0.0/16": "10.5.5.5"},
    )  # fmt: skip
    net.add_link("h:eth0", "tap0:tap")

    async def main() -> None:
        async with net.running():
            pass  # pragma: no cover

    with pytest.raises(TapError, match=r"`ip -n emu\d+auto route add 10\.9\.0\.0/16 via"):
        run_real(main)
    assert not tap.is_open
    assert not os.path.exists(f"/run/netns/{netns}")


def test_a_namespace_the_tap_made_lives_while_the_network_runs() -> None:
    nstools.require()
    netns = f"emu{os.getpid()}auto"
    net = emunet.Network()
    net.add_host("h", interfaces={"eth0": "10.0.1.2/24"})
    tap = net.add_tap(
        "tap0", device=f"emutap{os.getpid() % 100000}y", netns=netns, address="10.0.1.3/24"
    )
    net.add_link("h:eth0", "tap0:tap")
    seen: list[str] = []

    async def main() -> None:
        async with net.running():
            shown = await trio.run_process(
                ["ip", "-n", netns, "-br", "addr", "show", "dev", tap.device],
                capture_stdout=True,
            )
            seen.append(shown.stdout.decode())
            raise Boom  # an error in the user's code tears everything down

    with pytest.raises(ExceptionGroup) as caught:
        run_real(main)
    assert caught.group_contains(Boom)
    # a TAP reports no operational state: Linux shows UNKNOWN for an up TAP with a reader
    assert seen == [f"{tap.device:<16} UNKNOWN        10.0.1.3/24 \n"]
    assert not tap.is_open
    assert not os.path.exists(f"/run/netns/{netns}")


# --------------------------------------------------------------------------- item 1
def test_linux_and_emulated_host_ping_each_other(netns_factory: Any) -> None:
    nstools.require("ping")
    ns = netns_factory()
    net, tap = one_host_and_linux(ns)
    h = net.host("h")
    out: dict[str, Any] = {}

    async def main() -> None:
        async with net.running():
            out["linux"] = await ns.run(*ping_argv("10.0.1.2"))
            out["emu"] = await h.ping("10.0.1.3", count=3, interval=0.1, timeout=2)
            out["linux_neigh"] = ns.neighbours(tap.device)
            out["emu_neigh"] = {e.ip: e for _, e in h.neighbours()}

    run_real(main)
    text = out["linux"].stdout.decode()
    assert out["linux"].returncode == 0, text
    assert "3 packets transmitted, 3 received, 0% packet loss" in text
    assert len(re.findall(r"64 bytes from 10\.0\.1\.2: icmp_seq=\d ttl=64", text)) == 3
    assert (out["emu"].sent, out["emu"].received) == (3, 3)
    linux_entry = out["linux_neigh"]["10.0.1.2"]
    assert linux_entry["lladdr"] == mac_to_str(h.devices["eth0"].mac)
    assert set(linux_entry["state"]) <= {"REACHABLE", "STALE", "DELAY", "PROBE"}
    emu_entry = out["emu_neigh"][ip_from_str("10.0.1.3")]
    assert mac_to_str(emu_entry.mac) == LINUX_MAC and emu_entry.state in VALID
    assert h.nstat()["IcmpInEchos"] == 3 and h.nstat()["IcmpOutEchoReps"] == 3
    assert tap.stats["tx_dropped"] == 0 and tap.stats["rx_dropped"] == 0
    assert not tap.is_open
    gone = ns.run_sync("ip", "link", "show", "dev", tap.device)
    assert gone.returncode != 0  # closing the descriptor removed the device


def test_linux_pings_hosts_behind_an_emulated_switch(netns_factory: Any) -> None:
    nstools.require("ping")
    ns = netns_factory()
    net = emunet.Network(seed=4)
    net.add_host("h1", interfaces={"eth0": "10.0.1.2/24"})
    net.add_host("h2", interfaces={"eth0": "10.0.1.4/24"})
    net.add_switch("sw")
    net.add_tap("tap0", device=ns.dev(), netns=ns.name, address="10.0.1.3/24", mac=LINUX_MAC)
    net.add_link("h1:eth0", "sw:p1")
    net.add_link("h2:eth0", "sw:p2")
    net.add_link("tap0:tap", "sw:p3", delay="1ms")
    out: dict[str, Any] = {}

    async def main() -> None:
        async with net.running():
            out["h1"] = await ns.run(*ping_argv("10.0.1.2", count=2))
            out["h2"] = await ns.run(*ping_argv("10.0.1.4", count=2))

    run_real(main)
    for name, addr in (("h1", "10.0.1.2"), ("h2", "10.0.1.4")):
        text = out[name].stdout.decode()
        assert "2 packets transmitted, 2 received" in text, text
        rtts = [
            float(x) for x in re.findall(rf"from {addr}: icmp_seq=\d ttl=64 time=([\d.]+) ms", text)
        ]
        assert len(rtts) == 2 and min(rtts) >= 2.0  # the 1 ms link, both ways
    assert [e.port for e in net.switch("sw").fdb()].count("p3") == 1


# --------------------------------------------------------------------------- item 2
def test_fragmented_ping_and_a_4000_byte_udp_datagram(netns_factory: Any) -> None:
    nstools.require("ping")
    ns = netns_factory()
    net, _ = one_host_and_linux(ns)
    h = net.host("h")
    data = hashlib.sha256(b"emunet").digest() * 125  # 4000 bytes
    out: dict[str, Any] = {}
    receiver = (
        "import hashlib,socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
        "s.bind(('10.0.1.3',9000));s.settimeout(5);print('ready',flush=True);"
        "d,a=s.recvfrom(65535);print('got',len(d),hashlib.sha256(d).hexdigest(),*a,flush=True)"
    )

    async def main() -> None:
        async with net.running():
            out["ping"] = await ns.run(*ping_argv("10.0.1.2", "-s", "3000", count=2))
            out["after_ping"] = h.nstat()
            async with ns.background(sys.executable, "-c", receiver) as proc:
                await proc.read_until(b"ready")
                with h.udp_socket(5000) as sock:
                    await sock.sendto(data, ("10.0.1.3", 9000))
                out["udp"] = (await proc.read_until(b"got")).decode().split()

    run_real(main)
    text = out["ping"].stdout.decode()
    assert "2 packets transmitted, 2 received, 0% packet loss" in text, text
    # the replies Linux reassembled: 3008 bytes of ICMP each
    assert len(re.findall(r"3008 bytes from 10\.0\.1\.2: icmp_seq=\d ttl=64", text)) == 2
    stats = out["after_ping"]
    # each 3028-byte request came as 3 fragments (1480 + 1480 + 48 data bytes)
    assert (stats["IpReasmReqds"], stats["IpReasmOKs"], stats["IpReasmFails"]) == (6, 2, 0)
    # and each reply left as 3 fragments
    assert (stats["IpFragOKs"], stats["IpFragCreates"]) == (2, 6)
    assert stats["IcmpInEchos"] == 2 and stats["IcmpOutEchoReps"] == 2
    assert out["udp"] == ["got", "4000", hashlib.sha256(data).hexdigest(), "10.0.1.2", "5000"]
    # the 4008-byte UDP datagram: 1480 + 1480 + 1048
    assert (h.nstat()["IpFragOKs"], h.nstat()["IpFragCreates"]) == (3, 9)


# --------------------------------------------------------------------------- item 4
def test_two_linux_namespaces_through_an_emulated_router(netns_factory: Any) -> None:
    nstools.require("ping")
    ns1, ns2 = netns_factory(), netns_factory()
    net = two_namespaces_and_a_router(ns1, ns2)
    r1 = net.host("r1")
    out: dict[str, Any] = {}

    async def main() -> None:
        async with net.running():
            out["12"] = await ns1.run(*ping_argv("10.0.2.3"))
            out["21"] = await ns2.run(*ping_argv("10.0.1.3", count=2))

    run_real(main)
    text = out["12"].stdout.decode()
    assert "3 packets transmitted, 3 received, 0% packet loss" in text, text
    assert len(re.findall(r"64 bytes from 10\.0\.2\.3: icmp_seq=\d ttl=63", text)) == 3
    assert "2 packets transmitted, 2 received" in out["21"].stdout.decode()
    assert r1.nstat()["IpForwDatagrams"] == 10  # (3 + 2) requests and their replies
    macs = {e.ip: mac_to_str(e.mac) for _, e in r1.neighbours() if e.mac is not None}
    assert macs == {ip_from_str("10.0.1.3"): LINUX_MAC, ip_from_str("10.0.2.3"): LINUX_MAC2}


def test_smaller_mtu_on_one_side_fragmentation_and_pmtu(netns_factory: Any) -> None:
    nstools.require("ping")
    ns1, ns2 = netns_factory(), netns_factory()
    net = two_namespaces_and_a_router(ns1, ns2, mtu=1000)
    r1 = net.host("r1")
    out: dict[str, Any] = {}

    async def main() -> None:
        async with net.running():
            out["mtu2"] = ns2.run_sync("ip", "link", "show", net.nodes["tap2"].device).stdout
            out["dont"] = await ns1.run(*ping_argv("10.0.2.3", "-M", "dont", "-s", "2000", count=2))
            out["after_dont"] = r1.nstat()
            out["route_before"] = ns1.route_get("10.0.2.3")
            out["do"] = await ns1.run(*ping_argv("10.0.2.3", "-M", "do", "-s", "1400", count=1))
            out["route_after"] = ns1.route_get("10.0.2.3")

    run_real(main)
    assert " mtu 1000 " in out["mtu2"]  # the link's MTU became the Linux device's
    text = out["dont"].stdout.decode()
    assert "2 packets transmitted, 2 received, 0% packet loss" in text, text
    assert len(re.findall(r"2008 bytes from 10\.0\.2\.3: icmp_seq=\d ttl=63", text)) == 2
    stats = out["after_dont"]
    # ns1 sends 1500 + 548; r1 splits the 1500 (1480 data) into 996 + 524 for eth1 (mtu 1000)
    assert (stats["IpFragOKs"], stats["IpFragCreates"], stats["IpFragFails"]) == (2, 4, 0)
    assert "metrics" not in out["route_before"]
    text = out["do"].stdout.decode()
    assert "From 10.0.1.1 icmp_seq=1 Frag needed and DF set (mtu = 1000)" in text, text
    assert r1.nstat()["IpFragFails"] == 1
    # Linux took the next-hop MTU from r1's frag needed: `ip route get` shows the cached PMTU
    assert out["route_after"]["metrics"] == [{"mtu": 1000}], out["route_after"]
    assert out["route_after"]["gateway"] == "10.0.1.1"


# --------------------------------------------------------------------------- item 5
def tshark_fields(pcap: str, *fields: str) -> list[dict[str, list[str]]]:
    """One dict per frame: field -> its values (several when a packet quotes another)."""
    argv = ["tshark", "-r", pcap, "-n", "-o", "ip.check_checksum:TRUE"]
    argv += ["-o", "udp.check_checksum:TRUE", "-T", "fields"]
    for field in fields:
        argv += ["-e", field]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    frames = []
    for line in done.stdout.splitlines():
        values = line.split("\t")
        frames.append({f: [v for v in values[i].split(",") if v] for i, f in enumerate(fields)})
    return frames


CAPTURE_FIELDS = (
    "frame.protocols", "ip.checksum.status", "icmp.checksum.status", "udp.checksum.status",
    "_ws.malformed", "_ws.expert.severity",
)  # fmt: skip
BAD = "0"  # Wireshark's checksum status values: 0 bad, 1 good, 2 unverified


def is_bad(frame: dict[str, list[str]]) -> bool:
    """Malformed, any expert warning or error, or a checksum Wireshark found bad."""
    statuses = ("ip.checksum.status", "icmp.checksum.status", "udp.checksum.status")
    return bool(
        frame["_ws.malformed"]
        or frame["_ws.expert.severity"]
        or any(BAD in frame[field] for field in statuses)
    )


def start_capture(ns: nstools.Netns, device: str, pcap: str) -> Any:
    """tcpdump on the Linux side; --print -l also gives a line per packet on stdout, so a test
    knows when the last packet it cares about is in the file."""
    capture = ["tcpdump", "-i", device, "-n", "-U", "--immediate-mode", "-s", "0"]
    capture += ["--print", "-l", "-Z", "root", "-w", pcap]
    return ns.background(*capture)


def test_linux_side_capture_is_clean(netns_factory: Any, tmp_path: Any) -> None:
    nstools.require("ping", "tcpdump", "tshark")
    ns = netns_factory()
    net, tap = one_host_and_linux(ns)
    h = net.host("h")
    pcap = str(tmp_path / "linux-side.pcap")
    out: dict[str, Any] = {}

    async def main() -> None:
        async with net.running():
            async with start_capture(ns, tap.device, pcap) as tcpdump:
                await tcpdump.read_until(b"listening on", "stderr")
                # ARP, fragmented echo both ways, a fragmented UDP datagram to a closed port
                # (Linux answers port unreachable, quoting our header)
                out["ping"] = await ns.run(*ping_argv("10.0.1.2", "-s", "3000", count=2))
                out["emu"] = await h.ping("10.0.1.3", count=2, interval=0.1, size=2000)
                with h.udp_socket(5000, recverr=True) as sock:
                    await sock.sendto(bytes(range(200)) * 20, ("10.0.1.3", 40000))
                    out["err"] = await sock.recv_error(trio.current_time() + 2)
                await tcpdump.read_until(b"udp port 40000 unreachable")

    run_real(main)
    assert "2 received" in out["ping"].stdout.decode()
    assert out["emu"].received == 2
    assert out["err"] is not None and (out["err"].type, out["err"].code) == (3, 3)
    frames = tshark_fields(pcap, *CAPTURE_FIELDS)
    # ARP request + reply; 2 x (3 + 3) fragments of Linux's ping; 2 x (2 + 2) of emunet's;
    # 3 fragments of the 4008-byte UDP datagram and Linux's port unreachable
    assert len(frames) == 2 + 12 + 8 + 4
    assert sum("arp" in f["frame.protocols"][0] for f in frames) == 2
    assert [f for f in frames if is_bad(f)] == []
    good, unverified = "1", "2"  # Wireshark's checksum status values (0 is bad)
    ip = [s for f in frames for s in f["ip.checksum.status"]]
    assert ip == [good] * (24 + 1)  # every IPv4 header, the one quoted by the ICMP error too
    icmp = [s for f in frames for s in f["icmp.checksum.status"]]
    assert icmp == [good] * (8 + 1)  # each reassembled echo, and the port unreachable
    udp = [s for f in frames for s in f["udp.checksum.status"]]
    assert udp == [good, unverified]  # the reassembled datagram; the quoted header (truncated)


def test_the_capture_check_catches_corrupted_frames(netns_factory: Any, tmp_path: Any) -> None:
    """The oracle's own control: frames with a flipped bit are all reported bad."""
    nstools.require("tcpdump", "tshark")
    ns = netns_factory()
    net, tap = one_host_and_linux(ns)
    h = net.host("h")
    pcap = str(tmp_path / "corrupt.pcap")
    out: dict[str, Any] = {}

    async def main() -> None:
        async with net.running():
            async with start_capture(ns, tap.device, pcap) as tcpdump:
                await tcpdump.read_until(b"listening on", "stderr")
                out["before"] = await h.ping("10.0.1.3", count=1, timeout=2)  # resolves ARP
                await tcpdump.read_until(b"ICMP echo reply, id")
                link = net.link("h:eth0", "tap0:tap")
                link.set(corrupt="100%")
                with h.udp_socket(5000) as sock:
                    for i in range(5):
                        await sock.sendto(bytes([i]) * 200, ("10.0.1.3", 40000))
                # corruption is drawn when a frame is sent: keep it on until all 5 crossed
                # (Linux answers none of them, so they are the next 5 lines)
                out["corrupted"] = await tcpdump.read_lines(5)
                link.set(corrupt=0)
                out["after"] = await h.ping("10.0.1.3", count=1, timeout=2)
                await tcpdump.read_until(b"ICMP echo reply, id")

    run_real(main)
    assert out["before"].received == 1 and out["after"].received == 1
    frames = tshark_fields(pcap, *CAPTURE_FIELDS)
    assert [is_bad(f) for f in frames] == [False] * 4 + [True] * 5 + [False] * 2
