"""Issue 9, items 15-20: bad input from users gets one clear line on stderr and exit status 2,
never a traceback."""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import pytest
import trio

import emunet
from emunet import cli
from emunet.wire.ipv4 import Ipv4

ROOT = pathlib.Path(__file__).parent.parent
THREE_HOP = str(ROOT / "topologies" / "three-hop.yaml")


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["trace", THREE_HOP, "client", "server", "--tcp", "70000"],
            "a port is 1..65535, got 70000",
        ),
        (["trace", THREE_HOP, "client", "server", "--tcp", "0"], "a port is 1..65535, got 0"),
        (
            ["trace", THREE_HOP, "client", "server", "--udp", "70000"],
            "a port is 1..65535, got 70000",
        ),
        (["trace", THREE_HOP, "client", "server", "--udp", "x"], "expected an integer (a port)"),
        (["trace", THREE_HOP, "client", "server", "--size", "-1"], "a size in bytes is 0..65507"),
        (
            ["trace", THREE_HOP, "client", "server", "--size", "70000"],
            "a size in bytes is 0..65507",
        ),
        (["ping", THREE_HOP, "client", "server", "-c", "0"], "a count is 1..1000000, got 0"),
        (["ping", THREE_HOP, "client", "server", "-c", "10000000"], "a count is 1..1000000"),
        (["ping", THREE_HOP, "client", "server", "-s", "65508"], "a size in bytes is 0..65507"),
        (["ping", THREE_HOP, "client", "server", "-t", "256"], "a TTL is 1..255, got 256"),
        (["ping", THREE_HOP, "client", "server", "-t", "0"], "a TTL is 1..255, got 0"),
        (["traceroute", THREE_HOP, "client", "server", "-m", "0"], "a TTL is 1..255, got 0"),
        (["traceroute", THREE_HOP, "client", "server", "-q", "0"], "probes per hop is 1..10"),
        (["traceroute", THREE_HOP, "client", "server", "-p", "65536"], "a port is 1..65535"),
        (["iperf", THREE_HOP, "client", "server", "-P", "0"], "parallel streams is 1..128, got 0"),
        (["iperf", THREE_HOP, "client", "server", "-p", "99999"], "a port is 1..65535"),
        (["run", THREE_HOP, "--seed", "-3"], "expected an integer >= 0"),
        (["run", THREE_HOP, "--seed", str(2**64)], "a seed is at most 2**64 - 1"),
    ],
)
def test_item_15_cli_numeric_options_validated(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _main(capsys, *argv)
    assert status == 2
    assert out == ""
    line = _one_line(err)
    assert message in line


TAP_TOPOLOGY = """
name: with-tap
nodes:
  r1: {kind: router, interfaces: {eth0: 10.0.0.1/24}}
  linux: {kind: tap, device: emtap0, address: 10.0.0.2/24}
links:
  - {endpoints: [r1:eth0, linux:tap], delay: 1ms}
"""


@pytest.mark.parametrize("command", ["check", "run"])
def test_item_16_tap_needs_realtime(
    command: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tap.yaml"
    path.write_text(TAP_TOPOLOGY)
    status, out, err = _main(capsys, command, str(path))
    assert (status, out) == (2, "")
    line = _one_line(err)
    assert line == (
        f"emunet {command}: with-tap has a tap node ('linux', a real Linux device that lives "
        "in wall-clock time): add --realtime"
    )


def test_item_16_check_with_realtime_passes(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tap.yaml"
    path.write_text(TAP_TOPOLOGY)
    status, out, err = _main(capsys, "check", str(path), "--realtime")
    assert (status, err) == (0, "")
    assert out.startswith("tap.yaml: OK: with-tap")


BARE = """
name: bare
nodes:
  a: {interfaces: {eth0: 10.0.0.1/24}}
  b: {interfaces: {eth0: 10.0.0.2/24}}
links:
  - {endpoints: [a:eth0, b:eth0], LINK}
"""


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("delay: 30", "links[0].delay: 30 has no unit: write 30ms or 30s"),
        ("delay: '30'", "links[0].delay: 30 has no unit: write 30ms or 30s"),
        ("bandwidth: 30", "links[0].bandwidth: 30 has no unit: write 30Mbit or 30kbit"),
    ],
)
def test_item_19_bare_number_needs_unit(
    link: str, message: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bare.yaml"
    path.write_text(BARE.replace("LINK", link))
    status, out, err = _main(capsys, "check", str(path))
    assert (status, out) == (2, "")
    assert message in _one_line(err)


def test_item_19_cli_bare_interval_needs_unit(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _main(capsys, "ping", THREE_HOP, "client", "server", "-i", "2")
    assert (status, out) == (2, "")
    assert "2 has no unit: write 2ms or 2s" in _one_line(err)


# ------------------------------------------------------------------ item 18: link.set(mtu=...)

ETH_HLEN = 14
IP_HLEN = 20


def _pair_net() -> Any:
    net = emunet.Network(seed=3)
    net.add_host("a", interfaces={"eth0": "10.0.0.1/24"})
    net.add_host("b", interfaces={"eth0": "10.0.0.2/24"})
    net.add_link("a:eth0", "b:eth0", delay="5ms", bandwidth="100Mbit")
    return net


def _record_ipv4(dev: Any) -> list[tuple[float, Ipv4, bytes]]:
    """Every IPv4 packet ``dev`` queues for its link, with the virtual time it was queued."""
    seen: list[tuple[float, Ipv4, bytes]] = []
    enqueue = dev.txq.enqueue

    def record(frame: bytes) -> bool:
        if frame[12:14] == b"\x08\x00":
            ip, payload = Ipv4.parse(frame[ETH_HLEN:])
            seen.append((trio.current_time(), ip, payload))
        return enqueue(frame)

    dev.txq.enqueue = record
    return seen


def _udp_fragments(seen: list[tuple[float, Ipv4, bytes]]) -> list[tuple[int, int, bool]]:
    """(offset in bytes, total length, MF) of every UDP packet or fragment in ``seen``."""
    return [(ip.frag_offset * 8, ip.total_length, ip.mf) for _, ip, _ in seen if ip.proto == 17]


async def _tcp_transfer(net: Any, data: bytes) -> bytes:
    a, b = net.host("a"), net.host("b")
    listener = await b.tcp_listen(5001)
    got = bytearray()

    async def serve() -> None:
        peer = await listener.accept()
        while chunk := await peer.receive_some():
            got.extend(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        stream = await a.tcp_connect("10.0.0.2", 5001)
        await stream.send_all(data)
        await stream.send_eof()
    return bytes(got)


async def test_item_18_link_set_mtu_python_api(autojump_clock: Any) -> None:
    net = _pair_net()
    link = net.link("a:eth0", "b:eth0")
    a, b = net.host("a"), net.host("b")
    seen = _record_ipv4(a.devices["eth0"])
    data = bytes((i * 7 + 1) & 0xFF for i in range(400_000))
    changed_at: list[float] = []

    async def lower() -> None:
        await trio.sleep(0.05)  # in the middle of the transfer
        assert link.set(mtu=1000).mtu == 1000
        changed_at.append(trio.current_time())

    async with net.running():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lower)
            assert await _tcp_transfer(net, data) == data  # intact, in order
        assert (a.devices["eth0"].mtu, b.devices["eth0"].mtu, link.params.mtu) == (1000, 1000, 1000)
        with b.udp_socket(7000) as rx, a.udp_socket() as tx:
            await tx.sendto(bytes(1472), ("10.0.0.2", 7000))  # a full 1500-byte datagram before
            got, _ = await rx.recvfrom()
    assert got == bytes(1472)
    (when,) = changed_at
    tcp_before = [ip.total_length for t, ip, _ in seen if ip.proto == 6 and t < when]
    tcp_after = [ip.total_length for t, ip, _ in seen if ip.proto == 6 and t > when]
    assert max(tcp_before) == 1500 and max(tcp_after) == 1000  # MSS 948 + 32 + 20
    assert a.nstat()["TcpRetransSegs"] == 0  # what was sent fitted (tcp_current_mss, as Linux)
    # 8 + 1472 bytes of UDP in pieces of (1000 - 20) // 8 * 8 = 976: 996 + 524 bytes
    assert _udp_fragments(seen) == [(0, 996, True), (976, 524, False)]
    assert a.nstat()["IpFragCreates"] == 2 and b.nstat()["IpReasmOKs"] == 1


MTU_EVENT = """
name: mtu-event
seed: 3
nodes:
  a: {interfaces: {eth0: 10.0.0.1/24}}
  b: {interfaces: {eth0: 10.0.0.2/24}}
links:
  - {endpoints: [a:eth0, b:eth0], delay: 5ms, bandwidth: 100Mbit}
events:
  - {at: 50ms, link: [a:eth0, b:eth0], set: {mtu: 1000}}
experiments:
  - {type: tcp, from: a, to: b, bytes: 400KB}
  - {type: udp, from: a, to: b, size: 1472, rate: 1Mbit, time: 20ms}
"""


async def test_item_18_event_sets_mtu(autojump_clock: Any) -> None:
    from emunet.experiments import run_experiments

    net = emunet.load_topology(MTU_EVENT)
    seen = _record_ipv4(net.host("a").devices["eth0"])
    async with net.running():
        report = await run_experiments(net)
    assert report.ok, str(report)
    tcp, udp = report.results
    assert tcp.bytes_received == 400_000 and udp.received == udp.sent == 2
    (link,) = json.loads(report.to_json())["links"]
    assert link["params"]["mtu"] == 1000  # what both interfaces now have
    assert [d.mtu for d in net.host("a").devices.values()] == [1000]
    assert [d.mtu for d in net.host("b").devices.values()] == [1000]
    tcp_sizes = [(t, ip.total_length) for t, ip, _ in seen if ip.proto == 6]
    assert max(n for t, n in tcp_sizes if t < 0.05) == 1500
    assert max(n for t, n in tcp_sizes if t > 0.05) == 1000
    assert _udp_fragments(seen) == [(0, 996, True), (976, 524, False)] * 2


async def test_item_18_lowered_mtu_caps_learned_path_mtu(autojump_clock: Any) -> None:
    """fib_nhc_update_mtu: a locked path MTU above the new device MTU becomes it, unlocked."""
    net = _pair_net()
    a = net.host("a")
    dst = int.from_bytes(bytes([10, 0, 0, 2]), "big")
    async with net.running():
        now = trio.current_time()
        a.ip.update_pmtu(dst, 300, now)  # below min_pmtu 552: 552, locked (DF off)
        route = a.fib.lookup(dst)
        assert (a.ip.route_mtu(route, dst, now), a.ip.pmtu_locked(dst, now)) == (552, True)
        net.link("a:eth0", "b:eth0").set(mtu=500)
        assert (a.ip.route_mtu(route, dst, now), a.ip.pmtu_locked(dst, now)) == (500, False)
        with pytest.raises(ValueError, match="mtu: 40 is below the IPv4 minimum 68"):
            net.link("a:eth0", "b:eth0").set(mtu=40, loss="5%")
        assert net.link("a:eth0", "b:eth0").params.loss == 0  # nothing applied
        assert a.devices["eth0"].mtu == 500


# ------------------------------------------------------------------ item 19: absurd values

ABSURD = """
name: absurd
nodes:
  a: {interfaces: {eth0: 10.0.0.1/24}}
  b: {interfaces: {eth0: 10.0.0.2/24}}
links:
  - {endpoints: [a:eth0, b:eth0], LINK}
experiments:
  - {EXPERIMENT}
"""


@pytest.mark.parametrize(
    ("link", "experiment", "message"),
    [
        (
            "delay: 1ms",
            "type: tcp, from: a, to: b, bytes: 1e30",
            "experiments[0].bytes: bad size '1e30': above the limit of 1 TB (1000000000000 bytes)",
        ),
        (
            "delay: 1ms",
            "type: ping, from: a, to: b, count: 1000000000000",
            "experiments[0].count: 1000000000000 is above the maximum 1000000",
        ),
        (
            "delay: 1ms",
            "type: storm, from: a, to: b, connections: 10000000",
            "experiments[0].connections: 10000000 is above the maximum 1000000",
        ),
        (
            "delay: 1ms",
            "type: http, from: a, to: b, size: 2GiB",
            "experiments[0].size: 2147483648 bytes is above the maximum 1073741824",
        ),
        (
            "delay: 1ms",
            "type: udp, from: a, to: b, rate: 1Tbit, time: 100s",
            "experiments[0]: rate x time: 8.5e+09 datagrams of 1470 bytes is above the limit",
        ),
        (
            "delay: 1ms",
            "type: ping, from: a, to: b, interval: 3650days",
            "experiments[0].interval: bad time '3650days': unknown unit 'days'",
        ),
        (
            "delay: 100000000s",  # three years
            "type: ping, from: a, to: b",
            "links[0].delay: bad time '100000000s': above the limit of 1000000 s (11.6 days)",
        ),
        (
            "bandwidth: 2Tbit",
            "type: ping, from: a, to: b",
            "links[0].bandwidth: bad rate '2Tbit': above the limit of 1 Tbit/s",
        ),
        (
            "delay: 1ms",
            "type: tcp, from: a, to: b, time: 1e7s",
            "experiments[0].time: bad time '1e7s': above the limit of 1000000 s (11.6 days)",
        ),
    ],
)
def test_item_19_absurd_values_refused_naming_the_limit(
    link: str,
    experiment: str,
    message: str,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "absurd.yaml"
    path.write_text(ABSURD.replace("LINK", link).replace("EXPERIMENT", experiment))
    status, out, err = _main(capsys, "check", str(path))
    assert (status, out) == (2, "")
    assert _one_line(err).startswith(f"absurd.yaml: {message}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["iperf", THREE_HOP, "client", "server", "-n", "1001GB"], "above the limit of 1 TB"),
        (["iperf", THREE_HOP, "client", "server", "-t", "2e6s"], "above the limit of 1000000 s"),
        (["iperf", THREE_HOP, "client", "server", "-u", "-b", "2Tbit"], "limit of 1 Tbit/s"),
        (["iperf", THREE_HOP, "client", "server", "-l", "2GiB"], "above the maximum 1073741824"),
        (["ping", THREE_HOP, "client", "server", "-W", "1e9s"], "above the limit of 1000000 s"),
        (["run", "line,2,delay=1e9s"], "delay: bad time '1e9s': above the limit of 1000000 s"),
        (["check", "tree,delay=30"], "defaults.link.delay: 30 has no unit: write 30ms or 30s"),
        (
            ["check", "dumbbell,2,bottleneck_delay=30"],
            "links[4].delay: 30 has no unit: write 30ms or 30s",
        ),
        (["check", "star,2,bandwidth=5Tbit"], "bandwidth: bad rate '5Tbit': above the limit"),
    ],
)
def test_item_19_cli_and_generator_specs_refuse_absurd_values(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _main(capsys, *argv)
    assert (status, out) == (2, "")
    assert message in _one_line(err)


def test_item_19_python_api_numbers_are_seconds_but_limited() -> None:
    from emunet.topology.generators import dumbbell_topology, tree_topology

    net = emunet.Network()
    net.add_host("a", interfaces={"eth0": "10.0.0.1/24"})
    net.add_host("b", interfaces={"eth0": "10.0.0.2/24"})
    with pytest.raises(ValueError, match=r"^delay: bad time 10000000\.0: above the limit of 1000"):
        net.add_link("a:eth0", "b:eth0", delay=1e7)
    with pytest.raises(ValueError, match=r"^bandwidth: bad rate '2Tbit': above the limit of 1 T"):
        net.add_link("a:eth0", "b:eth0", bandwidth="2Tbit")
    assert net.add_link("a:eth0", "b:eth0", delay=0.03).params.delay == 0.03  # seconds
    # the generators' Python functions take seconds and bit/s too; their specs need units
    tree = tree_topology(2, 2, delay=0.03, bandwidth=1e8)
    assert tree.defaults.link == {"delay": 0.03, "bandwidth": 1e8}
    assert tree.name == "tree,depth=2,fanout=2,delay=0.03s,bandwidth=100000000.0bit"
    assert dumbbell_topology(1, bottleneck_delay=0.02).links[-1].delay == 0.02


def test_item_18_link_mtu_is_what_its_interfaces_have() -> None:
    """The report shows ``link.params``: never an MTU the interfaces do not have."""
    net = emunet.Network()
    net.add_host("a", interfaces={"eth0": "10.0.0.1/24"}, mtu={"eth0": 9000})
    net.add_host("b", interfaces={"eth0": "10.0.0.2/24"}, mtu={"eth0": 9000})
    net.add_host("c", interfaces={"eth0": "10.0.1.1/24"})
    net.add_host("f", interfaces={"eth0": "10.0.1.2/24"}, mtu={"eth0": 9000})
    net.add_switch("sw")
    assert net.add_link("a:eth0", "b:eth0").params.mtu == 9000
    with pytest.raises(ValueError, match=r"MTUs differ \(1500 and 9000\); give the link an mtu"):
        net.add_link("c:eth0", "f:eth0")
    net.add_host("d", interfaces={"eth0": "10.0.2.1/24"}, mtu={"eth0": 4000})
    assert net.add_link("d:eth0", "sw:p1").params.mtu == 4000  # a switch port has no MTU


# ------------------------------------------------------------------ item 20: the Python API

BAD = ROOT / "tests" / "bad_topologies"


def _build_in_python(data: dict[str, Any]) -> emunet.Network:
    """A topology file's nodes and links, built call by call with the builder API."""
    net = emunet.Network()
    for name, spec in data["nodes"].items():
        spec = spec or {}
        if spec.get("kind") == "switch":
            net.add_switch(name)
        else:
            add = net.add_router if spec.get("kind") == "router" else net.add_host
            add(name, interfaces=spec.get("interfaces"))
    for link in data.get("links") or ():
        net.add_link(*link["endpoints"])
    return net


@pytest.mark.parametrize(
    "name",
    [
        "duplicate-address",
        "endpoint-missing-interface",
        "switch-loop",
        "overlapping-subnets",
        "network-address",
        "bad-address",
        "missing-prefix",
        "interface-used-twice",
    ],
)
def test_item_20_python_api_refuses_what_the_loader_refuses(name: str) -> None:
    import yaml

    from emunet.topology import TopologyError

    text = (BAD / f"{name}.yaml").read_text()
    expected = text.splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(TopologyError) as loaded:
        emunet.load_topology(str(BAD / f"{name}.yaml"))
    assert str(loaded.value) == f"{name}.yaml: {expected}"
    reason = loaded.value.reason
    if name == "interface-used-twice":  # the builder names the interface, not links[0]
        reason = "is already linked"
    with pytest.raises(ValueError) as built:
        _build_in_python(yaml.safe_load(text))
    assert reason in str(built.value)


def test_item_20_add_link_does_not_create_interfaces() -> None:
    net = emunet.Network()
    net.add_host("d", interfaces={"eth0": "10.0.0.1/24", "eth1": None})
    net.add_host("e", interfaces={"eth0": "10.0.0.2/24"})
    with pytest.raises(
        ValueError,
        match=r"^link endpoint 'd:eth9': d has no interface 'eth9' \(it declares: eth0, eth1\)$",
    ):
        net.add_link("d:eth9", "e:eth0")
    assert list(net.host("d").devices) == ["eth0", "eth1"]
    with pytest.raises(
        ValueError, match=r"^e2:eth0: address 10\.0\.0\.2 is already used by e:eth0"
    ):
        net.add_host("e2", interfaces={"eth0": "10.0.0.2/24"})
    assert "e2" not in net.nodes  # nothing added
    net.add_host("e2", interfaces={"eth0": "10.0.0.3/24"})  # the name is free again


async def test_item_20_ping_and_traceroute_options_checked_as_in_files(
    autojump_clock: Any,
) -> None:
    net = _pair_net()
    a = net.host("a")
    cases = [
        (
            a.ping("10.0.0.2", interval="1 fortnight"),
            "interval: bad time '1 fortnight': unknown unit",
        ),
        (a.ping("10.0.0.2", count=10**12), "count: 1000000000000 is above the maximum 1000000"),
        (a.ping("10.0.0.2", timeout="-1s"), "timeout: bad time '-1s': must not be negative"),
        (a.ping("10.0.0.2", size="70000"), "size: 70000 bytes is above the maximum 65507"),
        (a.traceroute("10.0.0.2", wait="soon"), "wait: bad time 'soon'"),
        (a.traceroute("10.0.0.2", max_hops=0), "max_hops: 0 is below the minimum 1"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
            await call
    async with net.running():
        start = trio.current_time()
        result = await a.ping("10.0.0.2", 2, interval="1 s", timeout="2s")  # as in a file
        assert (result.sent, result.received) == (2, 2)
        assert trio.current_time() - start >= 1.0
        result = await a.ping("10.0.0.2", 2, interval=0.25)  # a plain number is seconds
        assert (result.sent, result.received) == (2, 2)


async def test_item_20_experiments_name_hosts(autojump_clock: Any) -> None:
    from emunet.experiments import ExperimentError, run_ping, run_tcp
    from emunet.topology.schema import PingExperiment, TcpExperiment

    net = _pair_net()
    net.add_switch("sw")
    async with net.running():
        with pytest.raises(ExperimentError, match=r"^from: sw is a switch: experiments run on"):
            await run_tcp(net, TcpExperiment(src="sw", dst="b"))
        with pytest.raises(ExperimentError, match=r"^to: no node named 'zz'"):
            await run_tcp(net, TcpExperiment(src="a", dst="zz"))
        with pytest.raises(ExperimentError, match=r"^from: no node named 'x'"):
            await run_ping(net, PingExperiment(src="x", dst="b"))


async def test_item_18_mss_follows_the_mtu_down_and_up(autojump_clock: Any) -> None:
    net = _pair_net()
    link = net.link("a:eth0", "b:eth0")
    a = net.host("a")
    seen = _record_ipv4(a.devices["eth0"])
    data = bytes((i * 5 + 3) & 0xFF for i in range(800_000))
    mss: list[int] = []

    async def change() -> None:
        await trio.sleep(0.03)
        link.set(mtu=1000)
        mss.append(a.sockets()[-1].info.snd_mss)
        await trio.sleep(0.03)
        link.set(mtu="1500")
        mss.append(a.sockets()[-1].info.snd_mss)

    async with net.running():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(change)
            assert await _tcp_transfer(net, data) == data
    assert mss == [948, 1448]  # 1000 - 20 - 32 (timestamps); back to the peer's MSS
    sizes = [(t, ip.total_length) for t, ip, _ in seen if ip.proto == 6]
    assert max(n for t, n in sizes if t < 0.03) == 1500
    assert max(n for t, n in sizes if 0.03 < t < 0.06) == 1000
    assert max(n for t, n in sizes if t > 0.06) == 1500
    assert a.nstat()["TcpRetransSegs"] == 0


def test_item_18_tap_link_keeps_its_mtu(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tap node's Linux device gets its MTU when it opens: an event cannot change it."""
    path = tmp_path / "tap.yaml"
    path.write_text(
        TAP_TOPOLOGY + "events:\n  - {at: 1s, link: [r1:eth0, linux:tap], set: {mtu: 1000}}\n"
    )
    status, out, err = _main(capsys, "check", str(path), "--realtime")
    assert (status, out) == (2, "")
    assert _one_line(err) == (
        "tap.yaml: events[0].set.mtu: linux:tap is a tap device: its MTU is set when it opens"
    )


# --------------------------------------------------------------------------- item 17
INTERRUPTIBLE = """\
name: ctrl-c
seed: 1
nodes:
  a: {interfaces: {eth0: 10.0.0.1/24}}
  b: {interfaces: {eth0: 10.0.0.2/24}}
links:
  - {endpoints: [a:eth0, b:eth0], delay: 1ms, bandwidth: 1Gbit}
experiments:
  - {type: ping, from: a, to: b, count: 2}
  - {type: tcp, from: a, to: b, time: 100000s}
"""


def test_item_17_ctrl_c_during_run_exits_130_with_the_report_so_far(tmp_path) -> None:
    """``emunet run`` on a terminal (a pty, so the progress line shows); once the progress line
    names the long transfer, SIGINT: the ping that finished is reported, the run says it was
    interrupted, the JSON is written, exit 130, no traceback."""
    import os
    import pty
    import select
    import signal
    import subprocess
    import sys
    import time

    topo = tmp_path / "ctrl-c.yaml"
    topo.write_text(INTERRUPTIBLE)
    report = tmp_path / "report.json"
    master, slave = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "emunet.cli", "run", str(topo), "--json", str(report)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    out = b""

    def read_until(marker: bytes, limit: float) -> bool:
        nonlocal out
        deadline = time.monotonic() + limit  # a bound against hanging, not a timing assertion
        while marker not in out:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([master], [], [], left)[0]:
                return False
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                return False
            if not chunk:
                return False
            out += chunk
        return True

    try:
        assert read_until(b"[2/2] tcp a -> b", 60), out.decode(errors="replace")
        child.send_signal(signal.SIGINT)
        read_until(b"\x00never", 60)  # everything until the child exits
        status = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
    text = out.decode(errors="replace")
    assert status == 130, text
    assert "Traceback" not in text
    assert "[1] ping a -> b" in text and "2 packets transmitted, 2 received" in text
    assert "INTERRUPTED after" in text and "1 of 2 experiments finished" in text
    data = json.loads(report.read_text())
    assert data["ok"] is False and data["interrupted"] == {"planned": 2}
    assert [e["type"] for e in data["experiments"]] == ["ping"]
    assert data["experiments"][0]["received"] == 2
    assert data["nodes"]["b"]["counters"]["TcpPassiveOpens"] == 1  # counters up to then
