"""Experiments and reports: each experiment's figures and table, run_experiments' order, start
times and events, the report's JSON, and a generated tree of 1,000 hosts pinging its root."""

from __future__ import annotations

import json
import math
import pathlib
import resource
import time

import attrs
import pytest
import yaml

import emunet
from emunet import cli, units
from emunet.experiments import (
    HttpResult,
    PingResult,
    StormResult,
    TcpResult,
    TracerouteResult,
    UdpResult,
    run_experiments,
)
from emunet.experiments.common import fmt_bytes, fmt_rate, node_address, percentiles
from emunet.experiments.udp import _Receiver
from emunet.report import Report, jsonable
from emunet.topology import Topology
from emunet.topology.generators import topology_from_spec
from emunet.topology.load import build_network, load_topology

ROOT = pathlib.Path(__file__).parent.parent

# Two hosts on one 10 ms link (no bandwidth limit: no serialization time), a router between
# two subnets for traceroute, and room for experiments and events per test.
PAIR = """
name: pair
seed: 1
nodes:
  a: {interfaces: {eth0: 10.0.0.1/24}}
  b: {interfaces: {eth0: 10.0.0.2/24}}
links:
  - {endpoints: [a:eth0, b:eth0], delay: 10ms}
"""

ROUTED = """
name: routed
seed: 2
defaults:
  link: {delay: 5ms, bandwidth: 100Mbit}
nodes:
  client: {interfaces: {eth0: 10.0.1.2/24}, routes: {default: 10.0.1.1}}
  r1: {kind: router, interfaces: {eth0: 10.0.1.1/24, eth1: 10.0.2.1/24}}
  server: {interfaces: {eth0: 10.0.2.2/24}, routes: {default: 10.0.2.1}}
links:
  - {endpoints: [client:eth0, r1:eth0]}
  - {endpoints: [r1:eth1, server:eth0]}
"""


def _topology(base: str, experiments: str = "", events: str = "") -> Topology:
    text = base
    if events:
        text += "events:\n" + events
    if experiments:
        text += "experiments:\n" + experiments
    return load_topology(text)


def _run(topology: Topology, seed: int | None = None) -> Report:
    if seed is not None:
        topology = attrs.evolve(topology, seed=seed)
    net = build_network(topology)

    async def main() -> Report:
        async with net.running():
            return await run_experiments(net, topology)

    return emunet.run(main, seed=topology.seed)


def _ms(x: float) -> int:
    """Seconds -> integer microseconds, for exact comparisons of ns-exact virtual times."""
    return round(x * 1e6)


# ------------------------------------------------------------------------- formats


def test_iperf_number_formats() -> None:
    assert fmt_bytes(10 * 2**20) == "10.0 MBytes"
    assert fmt_bytes(125_000) == " 122 KBytes"
    assert fmt_bytes(512) == " 512 Bytes"
    assert fmt_bytes(3 * 2**30) == "3.00 GBytes"
    assert fmt_rate(94.3e6) == "94.3 Mbits/sec"
    assert fmt_rate(1e9) == "1.00 Gbits/sec"
    assert fmt_rate(999.9e3) == "1000 Kbits/sec"
    assert fmt_rate(0.0) == "0.00 bits/sec"


def test_percentiles_nearest_rank() -> None:
    p = percentiles([float(x) for x in range(100, 0, -1)])
    assert (p.count, p.min, p.p50, p.p90, p.p99, p.max, p.mean) == (100, 1, 50, 90, 99, 100, 50.5)
    one = percentiles([0.25])
    assert (one.min, one.p50, one.p99, one.max) == (0.25, 0.25, 0.25, 0.25)
    assert percentiles([]).p50 is None
    assert (
        percentiles([0.001, 0.002]).row() == "min/p50/p90/p99/max = 1.000/1.000/2.000/2.000/2.000"
    )


def test_rfc3550_jitter_exactly() -> None:
    # transit times 5, 7, 5, 9 ns: |D| = 2, 2, 4; J = J + (|D| - J) / 16 each time
    r = _Receiver([0, 10, 20, 30], 64)
    for seq, arrival in ((0, 5), (1, 17), (2, 25), (3, 39)):
        r.datagram(seq.to_bytes(4, "big") + bytes(60), arrival / 1e9)
    j = 0.0
    for d in (2, 2, 4):
        j += (d - j) / 16
    assert r.jitter == pytest.approx(j * 1e-9, rel=1e-12)
    assert (r.received, r.out_of_order, r.duplicates) == (4, 0, 0)
    r.datagram((1).to_bytes(4, "big") + bytes(60), 50e-9)  # the same datagram again
    r.datagram((9).to_bytes(4, "big") + bytes(60), 50e-9)  # never sent: not counted
    assert (r.received, r.duplicates) == (4, 2)


def test_jsonable_rounds_to_ns_and_sorts() -> None:
    assert jsonable({"b": 0.1 + 0.2, "a": (1, math.nan, -0.0)}) == {"b": 0.3, "a": [1, None, 0.0]}
    assert jsonable(1 / 3) == 0.333333333


# ------------------------------------------------------------------------- ping, traceroute


def test_ping_experiment_exact_rtts_and_summary() -> None:
    report = _run(_topology(PAIR, "  - {type: ping, from: a, to: b, count: 3}\n"))
    (ping,) = report.results
    assert isinstance(ping, PingResult)
    # the first reply waits for ARP (one round trip more); b answers from its STALE entry
    assert [_ms(r) for r in ping.rtts] == [40_000, 20_000, 20_000]
    assert (ping.sent, ping.received, ping.errors, ping.ok) == (3, 3, 0, True)
    assert _ms(ping.elapsed) == 2_020_000  # last request at 2 s, its reply 20 ms later
    assert str(ping) == (
        "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n"
        "--- 10.0.0.2 ping statistics ---\n"
        "3 packets transmitted, 3 received, 0% packet loss, time 2020ms\n"
        "rtt min/avg/max/mdev = 20.000/26.667/40.000/9.428 ms"
    )


def test_ping_without_replies_fails_and_says_so() -> None:
    topology = _topology(
        PAIR,
        "  - {type: ping, from: a, to: b, count: 2, timeout: 1s}\n",
        "  - {at: 0s, link: [a:eth0, b:eth0], set: {up: false}}\n",
    )
    report = _run(topology)
    (ping,) = report.results
    assert (ping.sent, ping.received, ping.ok, report.ok) == (2, 0, False, False)
    assert "2 packets transmitted, 0 received, 100% packet loss" in str(ping)
    assert "FAILED: 1 of 1 experiments" in str(report)


def test_traceroute_experiment_table() -> None:
    report = _run(
        _topology(ROUTED, "  - {type: traceroute, from: client, to: server, queries: 2}\n")
    )
    (tr,) = report.results
    assert isinstance(tr, TracerouteResult)
    assert tr.ok and tr.reached
    assert [(h.ttl, h.address) for h in tr.hops] == [
        (1, "10.0.1.1"),
        (1, "10.0.1.1"),
        (2, "10.0.2.2"),
        (2, "10.0.2.2"),
    ]
    lines = str(tr).splitlines()
    assert lines[0] == "traceroute to 10.0.2.2 (10.0.2.2), 30 hops max, 60 byte packets"
    assert lines[1].startswith(" 1  10.0.1.1 (10.0.1.1)  ") and lines[1].count(" ms") == 2
    assert lines[2].startswith(" 2  10.0.2.2 (10.0.2.2)  ")


# ------------------------------------------------------------------------- udp


def test_udp_experiment_counts_and_iperf_table() -> None:
    # 1250-byte datagrams at 1 Mbit/s: one every 10 ms, 100 in one second
    report = _run(
        _topology(PAIR, "  - {type: udp, from: a, to: b, rate: 1Mbit, size: 1250, time: 1s}\n")
    )
    (udp,) = report.results
    assert isinstance(udp, UdpResult)
    assert (udp.sent, udp.received, udp.lost, udp.duplicates, udp.out_of_order) == (
        100,
        100,
        0,
        0,
        0,
    )
    assert (udp.bytes_sent, udp.bytes_received, udp.ok) == (125_000, 125_000, True)
    # datagrams 0-2 wait 20 ms for ARP and arrive together (|D| = 10 ms twice); the other 97
    # have the same transit time, so J decays by 15/16 each
    jitter = 0.010 / 16
    jitter += (0.010 - jitter) / 16
    assert udp.jitter == pytest.approx(jitter * (15 / 16) ** 97, rel=1e-9)
    assert udp.sender_seconds == 1.0
    lines = str(udp).splitlines()
    assert lines[:2] == [
        "Client connecting to 10.0.0.2, UDP port 5001",
        "Sending 1250 byte datagrams, IPG target: 10000.00 us",
    ]
    assert lines[3] == "[  1]  0.0-1.0  sec   122 KBytes  1.00 Mbits/sec"
    assert lines[4] == "[  1] Sent 100 datagrams"
    assert lines[7].endswith("   0.002 ms    0/  100 (0%)")


def test_udp_loss_jitter_and_reorder_on_an_impaired_link() -> None:
    lossy = PAIR.replace("delay: 10ms}", "delay: 10ms, jitter: 2ms, loss: 10%}")
    report = _run(_topology(lossy, "  - {type: udp, from: a, to: b, rate: 2Mbit, size: 500}\n"))
    (udp,) = report.results
    stats = report.links[0].a_to_b
    assert udp.sent == 5000  # 10 s at 2 Mbit/s of 500-byte datagrams
    assert udp.lost == udp.sent - udp.received == stats.lost > 0
    assert udp.jitter is not None and 0 < udp.jitter < 0.002
    assert udp.out_of_order > 0  # +-2 ms jitter on 2 ms spacing reorders
    assert udp.ok


# ------------------------------------------------------------------------- ordering, events


def test_experiments_run_in_order_or_at_their_time() -> None:
    topology = _topology(
        PAIR,
        "  - {type: ping, name: first, from: a, to: b, count: 2}\n"
        "  - {type: ping, name: second, from: b, to: a, count: 1, at: 500ms}\n"
        "  - {type: ping, name: third, from: a, to: b, count: 1}\n",
    )
    first, second, third = _run(topology).results
    assert [r.name for r in (first, second, third)] == ["first", "second", "third"]
    assert _ms(first.start) == 0
    assert _ms(second.start) == 500_000  # concurrently with the first
    assert _ms(third.start) == _ms(second.start + second.elapsed)  # after the one before it


def test_events_change_links_while_experiments_run() -> None:
    topology = _topology(
        PAIR,
        "  - {type: ping, from: a, to: b, count: 4, interval: 1s, timeout: 1s}\n",
        "  - {at: 1500ms, link: [a:eth0, b:eth0], set: {up: false}}\n",
    )
    report = _run(topology)
    (ping,) = report.results
    assert (ping.sent, ping.received) == (4, 2)  # requests at 2 s and 3 s meet a dead link
    assert report.links[0].a_to_b.dropped_down == 2
    assert report.links[0].params["up"] is False


def test_node_address_takes_the_first_address() -> None:
    net = build_network(_topology(ROUTED))
    assert node_address(net, "r1") == "10.0.1.1"
    assert node_address(net, "192.0.2.9") == "192.0.2.9"
    with pytest.raises(ValueError, match="no node named 'nope'"):
        node_address(net, "nope")


# ------------------------------------------------------------------------- report


def test_report_text_and_json_hold_every_figure() -> None:
    report = _run(_topology(PAIR, "  - {type: ping, from: a, to: b, count: 2}\n"))
    text = str(report)
    assert text.splitlines()[0] == (
        "emunet run: pair (seed 1), 1 experiment, 1.020 s of virtual time"
    )
    assert "[1] ping a -> b" in text
    assert "a:eth0 -> b:eth0" in text and "b:eth0 -> a:eth0" in text
    assert text.rstrip().endswith("OK: 1 experiment succeeded")
    data = json.loads(report.to_json())
    assert data["format"] == "emunet-report/1"
    assert (data["topology"], data["seed"], data["ok"]) == ("pair", 1, True)
    (ping,) = data["experiments"]
    assert (ping["type"], ping["sent"], ping["received"]) == ("ping", 2, 2)
    assert ping["rtts"] == [0.04, 0.02]
    link = data["links"][0]
    assert (link["a"], link["b"]) == ("a:eth0", "b:eth0")
    assert link["a_to_b"] == {
        "tx_frames": 3,  # ARP request and two echo requests
        "tx_bytes": 60 + 98 + 98,
        "delivered": 3,
        "lost": 0,
        "dropped_down": 0,
        "duplicated": 0,
        "corrupted": 0,
        "reordered": 0,
    }
    a = data["nodes"]["a"]
    assert a["kind"] == "host"
    assert a["counters"]["IcmpOutEchos"] == 2 and "IpForwDatagrams" not in a["counters"]
    assert a["interfaces"]["eth0"]["tx_packets"] == 3


def test_report_json_is_deterministic() -> None:
    lossy = PAIR.replace("delay: 10ms}", "delay: 10ms, jitter: 3ms, loss: 20%}")
    topology = _topology(
        lossy, "  - {type: udp, from: a, to: b, rate: 1Mbit, size: 200, time: 1s}\n"
    )
    one, two = _run(topology, seed=3).to_json(), _run(topology, seed=3).to_json()
    assert one == two
    assert _run(topology, seed=4).to_json() != one


# ------------------------------------------------------------------------- TCP experiments


def test_tcp_bytes_transfer_delivers_every_byte() -> None:
    report = _run(
        _topology(ROUTED, "  - {type: tcp, from: client, to: server, bytes: 1MB, parallel: 2}\n")
    )
    (tcp,) = report.results
    assert isinstance(tcp, TcpResult)
    assert tcp.ok, str(tcp)
    assert tcp.bytes_sent == tcp.bytes_received == 1_000_000
    assert [s.bytes_received for s in tcp.streams] == [500_000, 500_000]
    assert tcp.retransmits == 0  # a clean path
    assert 0 < tcp.sender_seconds <= tcp.receiver_seconds
    assert tcp.receiver_rate < 100e6  # never faster than the 100 Mbit/s links
    lines = str(tcp).splitlines()
    assert lines[0] == "Connecting to host 10.0.2.2, port 5001 (cubic)"
    assert lines[1] == "[ ID] Interval           Transfer     Bitrate         Retr"
    labels = [line.split("]")[0] for line in lines[2:]]
    assert labels == ["[  1", "[  1", "[  2", "[  2", "[SUM", "[SUM"]
    assert lines[2].endswith("sender") and lines[3].endswith("receiver")


def test_tcp_time_transfer_and_reno() -> None:
    slow = ROUTED.replace("bandwidth: 100Mbit", "bandwidth: 10Mbit")
    experiment = "  - {type: tcp, from: client, to: server, time: 2s, congestion: reno}\n"
    (tcp,) = _run(_topology(slow, experiment)).results
    assert tcp.ok, str(tcp)
    assert tcp.congestion == "reno"
    assert tcp.bytes_received == tcp.bytes_sent > 1_000_000
    assert 2.0 <= tcp.sender_seconds < 2.5 and tcp.receiver_seconds > tcp.sender_seconds
    assert tcp.receiver_rate <= 10e6  # the bottleneck: what was written drains at 10 Mbit/s


def test_tcp_to_a_dead_host_fails_with_the_errno() -> None:
    topology = _topology(
        ROUTED,
        "  - {type: tcp, from: client, to: server, bytes: 10KB}\n",
        "  - {at: 0s, link: [r1:eth1, server:eth0], set: {up: false}}\n",
    )
    report = _run(topology)
    (tcp,) = report.results
    assert not tcp.ok and not report.ok
    assert tcp.error is not None and tcp.error.startswith(("ETIMEDOUT", "EHOSTUNREACH"))


def test_storm_counts_listen_overflows() -> None:
    experiment = (
        "  - {type: storm, from: client, to: server, connections: 30, concurrency: 30,"
        " backlog: 2, accept_delay: 50ms, bytes: 100}\n"
    )
    text = ROUTED.replace(
        "routes: {default: 10.0.2.1}}",
        "routes: {default: 10.0.2.1}, sysctl: {net.ipv4.tcp_syncookies: 0}}",
    )
    report = _run(_topology(text, experiment))
    (storm,) = report.results
    assert isinstance(storm, StormResult)
    assert storm.completed + storm.failed == 30
    assert storm.ok and storm.completed > 0
    assert storm.server_counters["TcpExtListenDrops"] > 0
    assert storm.client_counters["TcpRetransSegs"] > 0  # SYNs retransmitted after the drops
    assert storm.completion.count == storm.completed
    assert storm.completion.max is not None and storm.completion.max > 1.0  # waited an RTO
    assert "30 connections to 10.0.2.2:5001, 30 at a time, listen backlog 2" in str(storm)


def test_storm_with_abort_on_overflow_gets_resets() -> None:
    text = ROUTED.replace(
        "routes: {default: 10.0.2.1}}",
        "routes: {default: 10.0.2.1},"
        " sysctl: {net.ipv4.tcp_syncookies: 0, net.ipv4.tcp_abort_on_overflow: 1}}",
    )
    experiment = (
        "  - {type: storm, from: client, to: server, connections: 30, concurrency: 10,"
        " backlog: 4, accept_delay: 100ms, bytes: 10}\n"
    )
    (storm,) = _run(_topology(text, experiment)).results
    # final ACKs that find the accept queue full are answered with a reset
    resets = storm.server_counters["TcpExtEmbryonicRsts"]
    assert resets > 0
    assert storm.failures == {"ECONNRESET": resets}
    assert storm.completed == 30 - resets
    assert "ECONNRESET" in str(storm)


def test_http_experiment_with_h11() -> None:
    experiment = (
        "  - {type: http, from: client, to: server, requests: 20, concurrency: 2, size: 5000}\n"
    )
    (http,) = _run(_topology(ROUTED, experiment)).results
    assert isinstance(http, HttpResult)
    assert http.ok, str(http)
    assert (http.completed, http.failed, http.connections) == (20, 0, 2)
    assert http.bytes_received == 20 * 5000
    assert http.latency.count == 20
    assert http.latency.min is not None and http.latency.min >= 0.020  # at least one RTT
    assert http.requests_per_second > 0
    assert "Complete requests:      20" in str(http)


# ------------------------------------------------------------------------- 1,000 hosts


def _with_unit(key: str, value: object) -> object:
    """A converted link value written back with its unit, as a topology file needs it
    (seconds and bit/s; a bare non-zero number is refused there)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value:
        if key in units.TIME_KEYS:
            return f"{value!r}s"
        if key in units.RATE_KEYS:
            return f"{value!r}bit"
    return value


def _as_file_data(topology: Topology) -> dict:
    """A generated topology written back as a topology file's mapping."""
    nodes = {}
    for name, node in topology.nodes.items():
        spec: dict = {"kind": node.kind}
        if node.interfaces:
            spec["interfaces"] = dict(node.interfaces)
        nodes[name] = spec
    links = []
    for link in topology.links:
        entry: dict = {"endpoints": list(link.endpoints)}
        entry.update({k: _with_unit(k, v) for k, v in link.options().items()})
        links.append(entry)
    return {
        "name": "tree-1000",
        "seed": 1,
        "routing": topology.routing,
        "defaults": {"link": {k: _with_unit(k, v) for k, v in topology.defaults.link.items()}},
        "nodes": nodes,
        "links": links,
    }


@pytest.mark.slow
def test_a_thousand_hosts_ping_the_root(tmp_path: pathlib.Path, capsys) -> None:
    """``emunet run`` on tree,depth=3,fanout=10 (1,000 hosts, 111 routers, 100 switches,
    routing auto) with every host pinging the root router at once.  Takes about 6 s and
    160 MB here; marked slow (deselect with -m 'not slow')."""
    topology = topology_from_spec("tree,depth=3,fanout=10,delay=1ms,bandwidth=100Mbit")
    data = _as_file_data(topology)
    hosts = [n for n, spec in data["nodes"].items() if spec["kind"] == "host"]
    assert len(hosts) == 1000
    data["experiments"] = [
        {"type": "ping", "from": h, "to": "r1", "count": 1, "at": 0} for h in hosts
    ]
    path = tmp_path / "tree-1000.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    report = tmp_path / "report.json"
    began = time.perf_counter()
    status = cli.main(["run", str(path), "--json", str(report)])
    wall = time.perf_counter() - began
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = capsys.readouterr().out
    assert status == 0
    assert out.rstrip().endswith("OK: 1000 experiments succeeded")
    results = json.loads(report.read_text())["experiments"]
    assert len(results) == 1000 and all(r["received"] == 1 for r in results)
    # the farthest hosts are 4 hops from the root: 1 ms per link each way, plus ARP
    assert max(max(r["rtts"]) for r in results) < 0.05
    with capsys.disabled():
        print(f"\n1,000-host tree: wall {wall:.1f} s, peak RSS {peak_mib:.0f} MiB")
