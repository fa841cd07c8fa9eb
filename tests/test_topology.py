"""Topology files: the schema, the one-line errors, building, generators and routing: auto."""

from __future__ import annotations

import copy
import glob
import os
import pathlib
import time

import attrs
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import emunet
from emunet.fabric.impair import LinkParams
from emunet.topology import (
    Defaults,
    Event,
    LinkSpec,
    Node,
    PingExperiment,
    StormExperiment,
    TcpExperiment,
    Topology,
    TopologyError,
    UdpExperiment,
)
from emunet.topology.generators import (
    fattree_topology,
    line_topology,
    topology_from_spec,
    tree_topology,
)
from emunet.topology.load import (
    build_network,
    load_topology,
    play_events,
    topology_from_dict,
)
from emunet.topology.routing import auto_routes
from emunet.wire.addr import ip_from_str, ip_to_str

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent
SHIPPED = sorted(glob.glob(str(ROOT / "topologies" / "*.yaml")))
BAD = sorted(glob.glob(str(HERE / "bad_topologies" / "*.yaml")))
THREE_HOP = str(ROOT / "topologies" / "three-hop.yaml")


def _expected(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    assert first.startswith("# expect: "), f"{path} must start with '# expect: <message>'"
    return f"{os.path.basename(path)}: {first[len('# expect: ') :].rstrip()}"


# ------------------------------------------------------------------------- bad files


def test_at_least_thirty_bad_files() -> None:
    assert len(BAD) >= 30
    assert len(SHIPPED) >= 7


@pytest.mark.parametrize("path", BAD, ids=[os.path.basename(p) for p in BAD])
def test_bad_topology_gives_one_line(path: str) -> None:
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    message = str(info.value)
    assert message == _expected(path)
    assert "\n" not in message


def test_error_format_of_the_design() -> None:
    with open(THREE_HOP, encoding="utf-8") as f:
        text = f.read().replace("mtu: 576}", "mtu: 40}")
    with pytest.raises(TopologyError) as info:
        load_topology(text, file="somewhere/three-hop.yaml")
    assert str(info.value) == "three-hop.yaml: links[1].mtu: 40 is below the IPv4 minimum 68"
    assert (info.value.file, info.value.path) == ("three-hop.yaml", "links[1].mtu")
    assert info.value.reason == "40 is below the IPv4 minimum 68"
    assert isinstance(info.value, ValueError)


def test_error_without_path_and_missing_file(tmp_path: pathlib.Path) -> None:
    assert str(TopologyError("/a/b/x.yaml", "", "bad")) == "x.yaml: bad"
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(TopologyError) as info:
        load_topology(str(missing))
    assert str(info.value) == "nowhere.yaml: cannot read the file: No such file or directory"


def test_text_and_dict_sources_name_themselves() -> None:
    with pytest.raises(TopologyError) as info:
        load_topology("nodes: {h1: {interfaces: {eth0: 10.0.0.0/24}}}")
    assert str(info.value) == (
        "<string>: nodes.h1.interfaces.eth0: 10.0.0.0 is the network address of 10.0.0.0/24"
    )
    with pytest.raises(TopologyError) as info:
        load_topology({"nodes": {"h1": {"kind": "hub"}}})
    assert str(info.value) == (
        "<dict>: nodes.h1.kind: the string 'hub' is not one of host, router, switch, tap"
    )


def test_duplicate_keys_in_a_list_item_name_the_path() -> None:
    text = (
        "nodes: {a: {interfaces: {eth0: 10.0.0.1/24}}, b: {interfaces: {eth0: 10.0.0.2/24}}}\n"
        "links:\n"
        "  - endpoints: [a:eth0, b:eth0]\n"
        "    delay: 1ms\n"
        "    delay: 2ms\n"
    )
    with pytest.raises(TopologyError) as info:
        load_topology(text, file="dup.yaml")
    assert (
        str(info.value)
        == "dup.yaml: links[0].delay: duplicate key (first on line 4, again on line 5)"
    )


def test_python_objects_are_refused() -> None:
    with pytest.raises(TopologyError) as info:
        load_topology("name: !!python/object:os.system x\nnodes: {}\n", file="evil.yaml")
    assert str(info.value).startswith("evil.yaml: line 1: could not determine a constructor")


# ------------------------------------------------------------------------- the schema


def test_three_hop_is_the_design_example() -> None:
    t = load_topology(THREE_HOP)
    assert t.name == "three-hop"
    assert t.seed == 42
    assert t.routing == "static"
    assert t.defaults == Defaults(link={"delay": 0.002, "bandwidth": 100e6, "mtu": 1500})
    assert list(t.nodes) == ["client", "r1", "server"]
    assert t.nodes["client"] == Node(
        "client", interfaces={"eth0": "10.0.1.2/24"}, routes={"default": "10.0.1.1"}
    )
    assert t.nodes["r1"] == Node(
        "r1", kind="router", interfaces={"eth0": "10.0.1.1/24", "eth1": "10.0.2.1/24"}
    )
    assert t.nodes["server"].sysctl == {"net.ipv4.tcp_low_latency": 1}
    assert t.links == (
        LinkSpec(endpoints=("client:eth0", "r1:eth0"), delay=0.01, loss=0.01),
        LinkSpec(endpoints=("r1:eth1", "server:eth0"), mtu=576),
    )
    # Where the shipped file departs from DESIGN.md's example, on purpose (so that the README's
    # main job succeeds): the link comes back at 8 s and the transfer is 2 MB, not 10 MB.
    assert t.events == (
        Event(at=5.0, link=("r1:eth1", "server:eth0"), set={"up": False}),
        Event(at=8.0, link=("r1:eth1", "server:eth0"), set={"up": True}),
    )
    assert t.experiments == (
        PingExperiment(src="client", dst="server", count=3),
        TcpExperiment(src="client", dst="server", bytes=2_000_000),
    )
    # defaults.link under what the link sets
    assert t.links[0].params(t.defaults.link) == LinkParams(
        delay=0.01, bandwidth=100e6, mtu=1500, loss=0.01
    )
    assert t.links[1].params(t.defaults.link) == LinkParams(delay=0.002, bandwidth=100e6, mtu=576)


def test_same_topology_from_every_kind_of_source() -> None:
    import yaml

    with open(THREE_HOP, encoding="utf-8") as f:
        text = f.read()
    from_path = load_topology(THREE_HOP)
    assert load_topology(pathlib.Path(THREE_HOP)) == from_path
    assert load_topology(text) == from_path
    assert load_topology(yaml.safe_load(text)) == from_path
    assert load_topology(from_path) is from_path
    assert from_path.file == THREE_HOP


def test_experiment_records_take_units() -> None:
    ping = PingExperiment(src="a", dst="b", interval="200ms", size="1KiB")
    assert (ping.interval, ping.size, ping.count, ping.timeout) == (0.2, 1024, 3, 10.0)
    assert ping.type == "ping"
    tcp = TcpExperiment(src="a", dst="b")
    assert (tcp.duration, tcp.parallel, tcp.length, tcp.port) == (10.0, 1, 131072, 5001)
    assert TcpExperiment(src="a", dst="b", bytes="10MB").duration is None
    assert UdpExperiment(src="a", dst="b", rate="5Mbit").rate == 5e6
    assert StormExperiment(src="a", dst="b", accept_delay="10ms").accept_delay == 0.01
    with pytest.raises(ValueError, match=r"^count: 0 is below the minimum 1$"):
        PingExperiment(src="a", dst="b", count=0)
    with pytest.raises(ValueError, match=r"^set bytes or time, not both$"):
        TcpExperiment(src="a", dst="b", bytes=1, time=1)


def test_experiment_fields_in_a_file() -> None:
    t = load_topology(str(ROOT / "topologies" / "lossy-wan.yaml"))
    cubic, reno = t.experiments[1], t.experiments[2]
    assert (cubic.name, cubic.congestion, cubic.time) == ("cubic", "cubic", 20.0)
    assert (reno.name, reno.congestion) == ("reno", "reno")
    udp = t.experiments[3]
    assert (udp.rate, udp.size, udp.time, udp.port) == (5e6, 1200, 10.0, 5001)
    dumbbell = load_topology(str(ROOT / "topologies" / "dumbbell.yaml"))
    assert [e.at for e in dumbbell.experiments] == [0.0, 0.0, 0.0, 25.0]


def test_linkspec_converts_and_checks_fields() -> None:
    spec = LinkSpec(endpoints=["a:eth0", "b:eth0"], delay="5ms", bandwidth="10Mbit")
    assert spec.endpoints == ("a:eth0", "b:eth0")
    assert (spec.delay, spec.bandwidth, spec.loss) == (0.005, 10e6, None)
    assert spec.options({"delay": 0.001, "loss": 0.5}) == {
        "delay": 0.005,
        "loss": 0.5,
        "bandwidth": 10e6,
    }
    with pytest.raises(ValueError, match=r"^mtu: 40 is below the IPv4 minimum 68$"):
        LinkSpec(endpoints=("a:eth0", "b:eth0"), mtu=40)


# ------------------------------------------------------------------------- building


@pytest.mark.parametrize("path", SHIPPED, ids=[os.path.basename(p) for p in SHIPPED])
def test_shipped_topology_loads_and_builds(path: str) -> None:
    t = load_topology(path)
    with open(path, encoding="utf-8") as f:
        assert f.readline().startswith("# "), "each shipped topology opens with a comment"
    assert t.experiments, "each shipped topology has experiments"
    net = build_network(t)
    assert net.topology is t
    assert net.seed == t.seed
    assert sorted(net.nodes) == sorted(t.nodes)
    for spec in t.links:
        link = net.link(*spec.endpoints)
        assert link.params == spec.params(t.defaults.link)
        for ep in spec.endpoints:
            name, _, ifname = ep.partition(":")
            if t.nodes[name].kind in ("host", "router"):
                assert net.host(name).devices[ifname].mtu == link.params.mtu
    for node in t.nodes.values():
        if node.kind in ("host", "router"):
            host = net.host(name := node.name)
            assert host.kind == node.kind
            for key, value in node.sysctl.items():
                assert host.sysctl[key] == value, (name, key)


def test_build_three_hop_exactly() -> None:
    net = emunet.load_topology(THREE_HOP)
    assert net.topology == load_topology(THREE_HOP)
    client, r1, server = net.host("client"), net.host("r1"), net.host("server")
    assert [str(r) for r in client.routes()] == [
        "10.0.1.0/24 dev eth0 proto kernel scope link src 10.0.1.2",
        "default via 10.0.1.1 dev eth0",
    ]
    assert r1.sysctl["net.ipv4.conf.eth1.forwarding"] == 1
    assert client.sysctl["net.ipv4.conf.eth0.forwarding"] == 0
    assert server.sysctl["net.ipv4.tcp_low_latency"] == 1
    assert client.sysctl["net.ipv4.tcp_low_latency"] == 0
    assert (r1.devices["eth0"].mtu, r1.devices["eth1"].mtu) == (1500, 576)
    assert server.devices["eth0"].mtu == 576
    assert net.link("client:eth0", "r1:eth0").params == LinkParams(
        delay="10ms", bandwidth="100Mbit", loss="1%", mtu=1500
    )
    assert emunet.load_topology(THREE_HOP, seed=7).seed == 7
    assert "load_topology" in emunet.__all__


async def test_three_hop_pings_end_to_end(autojump_clock: trio.testing.MockClock) -> None:
    net = emunet.load_topology(THREE_HOP)
    async with net.running():
        result = await net.host("client").ping("10.0.2.2", count=3)
    # 98-byte frames at 100 Mbit/s take 7.84 us per hop; 10 ms + 2 ms each way.
    rtt_ns = 2 * (10_000_000 + 2_000_000) + 4 * 7840
    assert (result.sent, result.received) == (3, 3)
    # The first waits for ARP on both subnets: one more round trip of each link, with a
    # 60-byte request and reply (4.8 us each) on each.
    arp_ns = 2 * (10_000_000 + 2_000_000) + 4 * 4800
    assert [round(r * 1e9) for r in result.rtts] == [rtt_ns + arp_ns, rtt_ns, rtt_ns]


async def test_play_events_changes_links_on_time(autojump_clock: trio.testing.MockClock) -> None:
    net = emunet.load_topology(str(ROOT / "topologies" / "link-failure.yaml"))
    link = net.link("r1:eth1", "r2:eth0")
    seen = []
    async with net.running(), trio.open_nursery() as nursery:
        nursery.start_soon(play_events, net)
        for t in (2.5, 3.5, 8.5, 12.5):
            await trio.sleep_until(t)
            seen.append((link.params.up, link.params.loss))
    assert seen == [(True, 0.0), (False, 0.0), (True, 0.0), (True, 0.05)]


def test_tap_node_builds_with_routes() -> None:
    text = """
routing: auto
nodes:
  r1: {kind: router, interfaces: {eth0: 10.0.0.1/24, eth1: 10.0.1.1/24}}
  h1: {interfaces: {eth0: 10.0.1.2/24}}
  linux: {kind: tap, device: emutap9, netns: emuns9, address: 10.0.0.2/24,
          mac: "02:AA:00:00:00:01"}
links:
  - {endpoints: [r1:eth0, linux:tap]}
  - {endpoints: [r1:eth1, h1:eth0]}
experiments:
  - {type: ping, from: h1, to: linux}
"""
    t = load_topology(text)
    assert t.nodes["linux"] == Node(
        "linux",
        kind="tap",
        device="emutap9",
        netns="emuns9",
        address="10.0.0.2/24",
        mac="02:aa:00:00:00:01",
    )
    assert auto_routes(t)["linux"] == {"default": "10.0.0.1"}
    net = build_network(t)
    tap = net.nodes["linux"]
    assert (tap.device, tap.netns, tap.address) == ("emutap9", "emuns9", "10.0.0.2/24")
    assert tap.routes == {"default": "10.0.0.1"}
    with pytest.raises(TopologyError) as info:
        load_topology(text.replace("linux:tap]", "linux:eth0]"), file="t.yaml")
    assert str(info.value) == (
        "t.yaml: links[0].endpoints[1]: a tap node has one port, 'tap': write linux:tap"
    )


# ------------------------------------------------------------------------- generators


def _kinds(t: Topology) -> dict[str, int]:
    out: dict[str, int] = {}
    for node in t.nodes.values():
        out[node.kind] = out.get(node.kind, 0) + 1
    return out


@pytest.mark.parametrize(
    ("spec", "kinds", "links"),
    [
        ("line,3", {"router": 3, "host": 3}, 5),
        ("star,4", {"router": 1, "host": 4}, 4),
        ("tree,depth=2,fanout=3", {"router": 4, "switch": 3, "host": 9}, 3 + 3 * 4),
        ("tree,1,2", {"router": 1, "switch": 1, "host": 2}, 3),
        ("fattree,k=4", {"router": 20, "switch": 8, "host": 16}, 16 + 16 + 8 * 3),
        ("dumbbell,2", {"router": 2, "host": 4}, 5),
    ],
)
def test_generator_shapes(spec: str, kinds: dict[str, int], links: int) -> None:
    t = topology_from_spec(spec)
    assert _kinds(t) == kinds
    assert len(t.links) == links
    assert t.routing == "auto"
    assert t.name == spec
    assert t == topology_from_spec(spec)  # deterministic


def test_line_addresses_and_routes() -> None:
    t = topology_from_spec("line,3")
    assert t.nodes["h1"].interfaces == {"eth0": "10.0.1.2/24"}
    assert t.nodes["r2"].interfaces == {
        "eth0": "10.0.2.1/24",
        "eth1": "172.16.0.2/30",
        "eth2": "172.16.0.5/30",
    }
    routes = auto_routes(t)
    assert routes["h1"] == {"default": "10.0.1.1"}
    assert routes["r1"] == {
        "172.16.0.4/30": "172.16.0.2",
        "10.0.2.0/24": "172.16.0.2",
        "10.0.3.0/24": "172.16.0.2",
    }
    assert routes["r2"] == {"10.0.1.0/24": "172.16.0.1", "10.0.3.0/24": "172.16.0.6"}


def test_spec_forms_and_link_options() -> None:
    assert topology_from_spec("tree,2,3").nodes == topology_from_spec("tree,depth=2,fanout=3").nodes
    t = topology_from_spec("line,2,delay=5ms,bandwidth=10Mbit,seed=9")
    assert t.seed == 9
    assert t.defaults.link == {"delay": 0.005, "bandwidth": 10e6}
    d = topology_from_spec("dumbbell,1,bottleneck=5Mbit")
    bottleneck = d.links[-1]
    assert bottleneck.endpoints == ("r1:eth1", "r2:eth1")
    assert (bottleneck.bandwidth, bottleneck.delay, bottleneck.queue) == (5e6, 0.01, 100)
    assert d.defaults.link == {"bandwidth": 100e6, "delay": 0.001}
    assert line_topology(2) == topology_from_spec("line,n=2")
    assert load_topology("fattree,k=2") == fattree_topology(2, name="fattree,k=2")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "mesh,3",
            "mesh,3: unknown topology 'mesh'; expected one of line, star, tree, fattree, dumbbell",
        ),
        ("tree,depth=x", "tree,depth=x: depth: expected a positive integer, got 'x'"),
        ("line,0", "line,0: n: expected a positive integer, got '0'"),
        ("fattree,k=3", "fattree,k=3: k: 3 is odd: a fat tree needs an even k"),
        ("line,3,4", "line,3,4: unexpected positional value '4' (parameters: n, then name=value)"),
        ("star,n=2,n=3", "star,n=2,n=3: n: given twice"),
        (
            "line,2,dealy=1ms",
            "line,2,dealy=1ms: dealy: unknown parameter; expected n, seed, or a link field like "
            "delay or bandwidth",
        ),
        (
            "line,2,mtu=40",
            "line,2,mtu=40: defaults.link.mtu: 40 is below the IPv4 minimum 68",
        ),
        (
            "tree,depth=9,fanout=9",
            "tree,depth=9,fanout=9: too large: 387420489 hosts (at most 100000)",
        ),
    ],
)
def test_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(TopologyError) as info:
        topology_from_spec(spec)
    assert str(info.value) == message


# ------------------------------------------------------------------------- routing: auto


def _walk(net: emunet.Network, src: str, dst_addr: int) -> list[str]:
    """Follow the FIBs hop by hop from src to dst_addr; the names of the nodes passed."""
    owner = {}
    for host in net.hosts():
        for dev in host.devices.values():
            for addr, _ in dev.addresses:
                owner[addr] = host.name
    path = [src]
    node = net.host(src)
    while dst_addr not in node.local_addrs:
        route = node.fib.lookup(dst_addr)
        assert route is not None, f"{node.name} has no route to {ip_to_str(dst_addr)}"
        if len(path) > 1:
            assert node.kind == "router", f"{node.name} would have to forward"
        node = net.host(owner[route.nexthop(dst_addr)])
        path.append(node.name)
        assert len(path) < 32, path
    return path


@pytest.mark.parametrize(
    ("spec", "longest"),
    [("line,4", 6), ("star,5", 3), ("tree,2,3", 5), ("fattree,k=4", 7), ("dumbbell,2", 4)],
)
def test_auto_routes_reach_every_host(spec: str, longest: int) -> None:
    net = build_network(topology_from_spec(spec))
    hosts = [h for h in net.hosts() if h.kind == "host"]
    lengths = set()
    for a in hosts:
        for b in hosts:
            path = _walk(net, a.name, b.devices["eth0"].primary)
            assert path[-1] == b.name
            lengths.add(len(path))
    assert max(lengths) == longest


def test_auto_routes_shortest_paths_and_ties_by_name() -> None:
    t = topology_from_spec("fattree,k=4")
    net = build_network(t)
    # h1 (pod 1) to h16 (pod 4): edge, aggregation, core, aggregation, edge.
    assert _walk(net, "h1", ip_from_str("10.0.8.3")) == ["h1", "e1", "a1", "c1", "a7", "e8", "h16"]
    # within a pod: up to the first aggregation router by name and down again
    assert _walk(net, "h1", ip_from_str("10.0.2.2")) == ["h1", "e1", "a1", "e2", "h3"]
    assert auto_routes(t) == auto_routes(topology_from_spec("fattree,k=4"))


def test_written_routes_win_over_computed() -> None:
    text = """
routing: auto
nodes:
  a: {interfaces: {eth0: 10.0.1.2/24}, routes: {default: 10.0.1.254}}
  r1: {kind: router, interfaces: {eth0: 10.0.1.1/24, eth1: 10.0.2.1/24}}
  r2: {kind: router, interfaces: {eth0: 10.0.1.254/24, eth1: 10.0.2.254/24}}
  sw1: {kind: switch}
  sw2: {kind: switch}
  b: {interfaces: {eth0: 10.0.2.2/24}}
links:
  - {endpoints: [a:eth0, sw1:p1]}
  - {endpoints: [r1:eth0, sw1:p2]}
  - {endpoints: [r2:eth0, sw1:p3]}
  - {endpoints: [r1:eth1, sw2:p1]}
  - {endpoints: [r2:eth1, sw2:p2]}
  - {endpoints: [b:eth0, sw2:p3]}
"""
    net = emunet.load_topology(text)
    assert _walk(net, "a", ip_from_str("10.0.2.2")) == ["a", "r2", "b"]
    assert _walk(net, "b", ip_from_str("10.0.1.2")) == ["b", "r1", "a"]  # r1 < r2 by name


def test_a_thousand_hosts_build_fast() -> None:
    start = time.perf_counter()
    net = emunet.load_topology("tree,depth=3,fanout=10")
    elapsed = time.perf_counter() - start
    hosts = [h for h in net.hosts() if h.kind == "host"]
    assert len(hosts) == 1000
    assert elapsed < 3.0, f"building 1,000 hosts took {elapsed:.2f} s"
    root = net.host("r1")
    # r1 reaches 110 router links and 100 leaf LANs; 10 of the links are its own
    assert len([r for r in root.routes() if r.gateway is not None]) == 200
    assert _walk(net, "h1", hosts[-1].devices["eth0"].primary) == [
        "h1", "r12", "r2", "r1", "r11", "r111", "h1000"
    ]  # fmt: skip


async def test_generated_tree_pings(autojump_clock: trio.testing.MockClock) -> None:
    net = emunet.load_topology(tree_topology(2, 2, delay="1ms"))
    async with net.running():
        result = await net.host("h1").ping("10.0.2.3", count=2)
        hops = await net.host("h1").traceroute("10.0.2.3")
    assert (result.sent, result.received) == (2, 2)
    assert [h.address for h in hops] == ["10.0.1.1", "172.16.0.2", "172.16.0.5", "10.0.2.3"]
    # 6 links of 1 ms (host-switch, switch-router on each LAN, two router links), no bandwidth
    # limit; the first also resolves ARP on each of the 4 subnets: twice the round trip.
    assert [round(r * 1e9) for r in result.rtts] == [24_000_000, 12_000_000]


# ------------------------------------------------------------------------- robustness

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["10ms", "1%", "10.0.1.1", "10.0.1.2/24", "r1:eth0", "default", "-1s"]),
    st.lists(st.sampled_from(["client:eth0", "r1:eth1", 3, None]), max_size=3),
    st.dictionaries(st.sampled_from(["up", "eth0", "kind", 1]), st.integers(0, 2), max_size=2),
)


def _leaves(data: object, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _leaves(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _leaves(v, (*path, i))
    return out


def _three_hop_dict() -> dict:
    import yaml

    with open(THREE_HOP, encoding="utf-8") as f:
        return yaml.safe_load(f)


_BASE = _three_hop_dict()
_PATHS = _leaves(_BASE)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _VALUES, st.booleans()), min_size=1, max_size=3))
def test_any_mangled_file_gives_a_topology_error_or_loads(mutations: list) -> None:
    data = copy.deepcopy(_BASE)
    for path, value, as_key in mutations:
        parent = data
        try:
            for step in path[:-1]:
                parent = parent[step]
            if not path:
                data = value
            elif as_key and isinstance(parent, dict) and path[-1] in parent:
                parent[value if isinstance(value, str | int | None) else "x"] = parent.pop(path[-1])
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        topology_from_dict(data, file="fuzz.yaml")
    except TopologyError as exc:
        assert str(exc).startswith("fuzz.yaml: ")
        assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_a_topology_error_or_loads(text: str) -> None:
    try:
        topology_from_dict({"nodes": {"h": {"interfaces": {"eth0": text}}}}, file="f.yaml")
        load_topology(text + "\n", file="f.yaml")
    except TopologyError as exc:
        assert "\n" not in str(exc)


def test_topology_records_are_frozen() -> None:
    t = load_topology(THREE_HOP)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        t.seed = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "module",
    [
        "emunet.topology",
        "emunet.topology.schema",
        "emunet.topology.load",
        "emunet.topology.routing",
        "emunet.topology.generators",
    ],
)
def test_loading_and_checking_need_no_trio(module: str) -> None:
    # `emunet check` reads and checks files without starting anything.
    import subprocess
    import sys

    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "from emunet.topology.load import load_topology; "
        f"load_topology({THREE_HOP!r}); load_topology('fattree,k=4'); "
        "print(','.join(m for m in sys.modules if m == 'trio' or m.startswith('trio.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
