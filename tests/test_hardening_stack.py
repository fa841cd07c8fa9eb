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
