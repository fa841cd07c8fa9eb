"""Issue 9, stack items: layer tasks survive exceptions (item 1), the network stopped (4),
FDB ageing and limit (8), inetpeer GC (9), IcmpMsg per-type counters (12)."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

import emunet


def pair() -> emunet.Network:
    net = emunet.Network(seed=1)
    net.add_host("a", interfaces={"eth0": "10.0.0.1/24"})
    net.add_host("b", interfaces={"eth0": "10.0.0.2/24"})
    net.add_link("a:eth0", "b:eth0", delay="5ms")
    return net


async def test_item_1_a_raising_layer_is_counted_logged_once_and_the_host_lives(
    autojump_clock, monkeypatch, caplog
):
    net = pair()
    a, b = net.host("a"), net.host("b")
    calls = {"n": 0}
    real = b.ip.rcv

    def flaky(dev, data, now):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise ValueError("boom")
        return real(dev, data, now)

    monkeypatch.setattr(b.ip, "rcv", flaky)
    with caplog.at_level(logging.ERROR, logger="emunet"):
        async with net.running():
            result = await a.ping("10.0.0.2", count=4, interval=0.5)
    assert result.received == 2  # two echo requests were lost to the error, then it works
    assert b.nstat()["IpInDiscards"] == 2
    assert len([r for r in caplog.records if "ip layer" in r.getMessage()]) == 1


async def test_item_4_outside_running_is_a_clear_runtime_error(autojump_clock):
    net = pair()
    with pytest.raises(RuntimeError, match=r"net\.running\(\)"):
        await net.host("a").tcp_connect("10.0.0.2", 80)
    with pytest.raises(RuntimeError, match=r"net\.running\(\)"):
        await net.host("a").ping("10.0.0.2")


async def test_item_4_a_stream_after_the_network_stopped_fails_at_once(autojump_clock):
    net = pair()
    async with net.running():
        listener = await net.host("b").tcp_listen(80)
        stream = await net.host("a").tcp_connect("10.0.0.2", 80)
        await listener.accept()
    with pytest.raises(trio.ClosedResourceError, match="not running"):
        await stream.send_all(b"x")
    with pytest.raises(trio.ClosedResourceError, match="not running"):
        await stream.receive_some()


async def test_item_8_fdb_entries_expire_on_a_timer_and_the_table_is_bounded(autojump_clock):
    net = emunet.Network(seed=1)
    sw = net.add_switch("sw1")
    net.add_host("a", interfaces={"eth0": "10.0.0.1/24"})
    net.add_link("a:eth0", "sw1:p1", delay="1ms")
    async with net.running():
        port = sw.ports["p1"]
        for i in range(20_000):
            src = (0x020000000000 + i).to_bytes(6, "big")
            port.netif_rx(b"\xff" * 6 + src + b"\x08\x06" + bytes(46))
            if i % 500 == 499:  # within the bridge's 1000-frame backlog
                await trio.testing.wait_all_tasks_blocked()
        await trio.testing.wait_all_tasks_blocked()
        assert len(sw.fdb()) == 16384
        assert sw.stats["learn_refused"] == 20_000 - 16384
        await trio.sleep(301)
        assert sw.fdb() == []


def test_item_9_inetpeer_table_shrinks_after_a_burst_of_peers() -> None:
    net = pair()
    icmp = net.host("a").icmp
    net.host("a").sysctl["net.ipv4.icmp_msgs_per_sec"] = 10**9
    net.host("a").sysctl["net.ipv4.icmp_msgs_burst"] = 10**9
    for i in range(100_000):
        icmp._allowed(0x0B000000 + i, 3, 1, i * 0.001)
    assert len(icmp._peers) <= 65536 + 128
    icmp._allowed(0x0C000000, 3, 1, 3600.0)  # an hour later, one new peer
    assert len(icmp._peers) == 1


async def test_item_12_icmpmsg_per_type_counters(autojump_clock):
    net = pair()
    a, b = net.host("a"), net.host("b")
    async with net.running():
        await a.ping("10.0.0.2", count=3, interval=0.2)
        sock = a.udp_socket()
        await sock.sendto(b"x", ("10.0.0.2", 9))
        await trio.sleep(1)
    na, nb = a.nstat(), b.nstat()
    assert (na["IcmpMsgOutType8"], na["IcmpMsgInType0"], na["IcmpMsgInType3"]) == (3, 3, 1)
    assert (nb["IcmpMsgInType8"], nb["IcmpMsgOutType0"], nb["IcmpMsgOutType3"]) == (3, 3, 1)
    keys = list(nb)
    assert keys.index("IcmpMsgInType8") < keys.index("IcmpMsgOutType0")
    assert "IcmpMsgInType5" not in nb  # only types that moved exist, as in /proc/net/snmp


# --------------------------------------------------------------------------- item 21 (IP)
async def _echo_with_options(options: bytes, sysctls: dict | None = None) -> tuple:
    """An echo request from a to b carrying ``options``; returns (b's counters, the ICMP
    messages a received from b)."""
    from emunet.wire.addr import ip_from_str
    from emunet.wire.ethernet import ETH_P_IP, Ethernet
    from emunet.wire.icmp import ICMP_ECHO, Icmp
    from emunet.wire.ipv4 import IPPROTO_ICMP, Ipv4

    net = pair()
    a, b = net.host("a"), net.host("b")
    for key, value in (sysctls or {}).items():
        b.sysctl[key] = value
    got: list[Icmp] = []

    class Tap:
        def write(self, frame: bytes, ns: int) -> None:
            eth, body = Ethernet.parse(frame)
            if eth.src == b.devices["eth0"].mac and eth.ethertype == ETH_P_IP:
                ip, payload = Ipv4.parse(body)
                if ip.proto == IPPROTO_ICMP:
                    got.append(Icmp.parse(payload)[0])

    net.link("a:eth0", "b:eth0").pcap = Tap()
    async with net.running():
        assert (await a.ping("10.0.0.2", count=1)).received == 1  # ARP done
        got.clear()
        before = b.nstat()
        src, dst = ip_from_str("10.0.0.1"), ip_from_str("10.0.0.2")
        echo = Icmp.echo(ICMP_ECHO, 7, 1).build(b"x" * 8)
        packet = Ipv4(src, dst, IPPROTO_ICMP, options=options).build(echo)
        dev = b.devices["eth0"]
        dev.netif_rx(Ethernet(dev.mac, a.devices["eth0"].mac, ETH_P_IP).build(packet))
        await trio.sleep(1)
        after = b.nstat()
    moved = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    return moved, got


@pytest.mark.parametrize(
    ("options", "pointer"),
    [
        (bytes([7, 40, 4, 0]), 20),  # Record Route longer than the header: the kind byte
        (bytes([7, 1, 4, 0]), 20),  # a length below 2
        (bytes([7, 7, 3, 0, 0, 0, 0, 0]), 22),  # Record Route pointer below 4
        (bytes([7, 6, 4, 0, 0, 0, 0, 0]), 22),  # room left, but not a whole address
        (bytes([68, 3, 5, 0]), 21),  # Timestamp shorter than 4
        (bytes([68, 4, 4, 0]), 22),  # Timestamp pointer below 5
        (bytes([68, 4, 5, 0xF0]), 23),  # Timestamp full and its overflow count at 15
        (bytes([131, 2, 0, 0]), 21),  # LSRR without a pointer byte
        (bytes([131, 7, 3, 0, 0, 0, 0, 0]), 22),  # LSRR pointer below 4
        (bytes([131, 3, 4, 131, 3, 4, 0, 0]), 23),  # a second source route
        (bytes([7, 3, 4, 7, 3, 4, 0, 0]), 23),  # a second Record Route
        (bytes([134, 6, 0, 0, 0, 1, 0, 0]), 22),  # CIPSO with no DOI configured
        (bytes([1, 1, 1, 130]), 23),  # the last byte starts an option with no length
    ],
)
async def test_item_21_malformed_ip_options_are_dropped_as_header_errors(
    autojump_clock, options: bytes, pointer: int
):
    moved, got = await _echo_with_options(options)
    assert moved.get("IpInHdrErrors") == 1
    assert "IcmpInEchos" not in moved and "IpInDelivers" not in moved
    assert moved.get("IcmpOutParmProbs") == 1 and moved.get("IcmpMsgOutType12") == 1
    assert [(m.type, m.code, m.rest) for m in got] == [(12, 0, pointer << 24)]


async def test_item_21_well_formed_options_are_accepted(autojump_clock):
    # NOPs, an empty Record Route with room for one address, a Timestamp, End of Options
    options = bytes([1, 7, 7, 4, 0, 0, 0, 0, 68, 8, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    moved, got = await _echo_with_options(options)
    assert "IpInHdrErrors" not in moved
    assert moved.get("IcmpInEchos") == 1
    assert [m.type for m in got] == [0]  # the echo reply


async def test_item_21_source_routed_packets_are_dropped_unless_accepted(autojump_clock):
    lsrr = bytes([131, 7, 4, 10, 0, 0, 9, 0])  # loose source route via 10.0.0.9
    moved, got = await _echo_with_options(lsrr)
    assert got == [] and "IcmpInEchos" not in moved
    assert "IpInHdrErrors" not in moved  # Linux counts no SNMP counter for this martian
    # conf.all and the interface must both allow it (IN_DEV_SOURCE_ROUTE)
    moved, got = await _echo_with_options(lsrr, {"net.ipv4.conf.eth0.accept_source_route": 0})
    assert got == []
    moved, got = await _echo_with_options(lsrr, {"net.ipv4.conf.all.accept_source_route": 1})
    assert moved.get("IcmpInEchos") == 1 and [m.type for m in got] == [0]
