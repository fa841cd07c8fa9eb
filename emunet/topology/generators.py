"""Generated topologies, like Mininet's ``--topo`` (mininet/topolib.py, mininet/topo.py), usable
wherever a topology file is: ``topology_from_spec("tree,depth=2,fanout=3")``.

Mininet's nodes are switches in one flat layer-2 network; emunet's generated topologies are
routed IP networks instead (routers where Mininet has switches, ``routing: auto``), so that
traceroute, TTLs, forwarding counters and per-hop links mean something:

- ``line,N``: routers r1..rN in a chain, host hi on a link to ri (Mininet's ``linear,N``).
- ``star,N``: router r1 in the middle, hosts h1..hN each on its own link to it.
- ``tree,depth=D,fanout=F``: routers in a tree numbered breadth first (r1 is the root) as
  Mininet numbers its switches; each leaf router has a switch with F hosts: F**D hosts
  h1..hN from left to right.
- ``fattree,k=K``: the k-ary fat tree of Al-Fares et al. (SIGCOMM 2008): (K/2)**2 core routers
  c1.., K pods of K/2 aggregation (a1..) and K/2 edge routers (e1..), each edge router with a
  switch (s1..) of K/2 hosts: K**3/4 hosts.  One shortest path per pair (no ECMP).
- ``dumbbell,N``: left1..leftN on links to router r1, right1..rightN on links to r2, and the
  bottleneck r1 <-> r2 (``bottleneck=10Mbit``, ``bottleneck_delay=10ms``,
  ``bottleneck_queue=100`` frames; the others get 100Mbit and 1ms unless set).

Parameters are positional in that order (``tree,2,3``) or named; every generator also takes
``seed=`` and any link impairment (``delay=5ms``, ``bandwidth=100Mbit``, ``loss=1%``...) for
``defaults.link``.  Addresses are deterministic: a host LAN (a host-router link or a leaf
switch) gets the next free subnet of 10.0.0.0/8 from 10.0.1.0/24 (a /24, wider when more hosts
share it), the router at .1 and hosts from .2; router-router links get the next /30 of
172.16.0.0/12.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from ..units import parse_rate, parse_time
from ..wire.addr import ip_from_str, ip_to_str
from .load import topology_from_dict
from .schema import LINK_FIELDS, Topology, TopologyError

__all__ = [
    "GENERATORS",
    "dumbbell_topology",
    "fattree_topology",
    "line_topology",
    "star_topology",
    "topology_from_spec",
    "tree_topology",
]

MAX_HOSTS = 100_000


class _Pool:
    """Aligned subnets handed out in order from one block."""

    def __init__(self, first: str, end: str) -> None:
        self.next = ip_from_str(first)
        self.end = ip_from_str(end)

    def take(self, plen: int, spec: str) -> int:
        size = 1 << (32 - plen)
        start = -(-self.next // size) * size
        if start + size - 1 > self.end:
            raise TopologyError(spec, "", "too large: the address pool is exhausted")
        self.next = start + size
        return start


class _Builder:
    """Nodes and links as a topology file's mapping, with addresses assigned in order."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.nodes: dict[str, dict[str, Any]] = {}
        self.links: list[dict[str, Any]] = []
        self.lans = _Pool("10.0.1.0", "10.255.255.255")
        self.p2p = _Pool("172.16.0.0", "172.31.255.255")

    def node(self, name: str, kind: str) -> None:
        self.nodes[name] = {"kind": kind} if kind == "switch" else {"kind": kind, "interfaces": {}}

    def _iface(self, node: str, addr: int, plen: int) -> str:
        interfaces = self.nodes[node]["interfaces"]
        ifname = f"eth{len(interfaces)}"
        interfaces[ifname] = f"{ip_to_str(addr)}/{plen}"
        return f"{node}:{ifname}"

    def router_link(self, a: str, b: str, **params: Any) -> None:
        net = self.p2p.take(30, self.spec)
        self.links.append(
            {"endpoints": [self._iface(a, net + 1, 30), self._iface(b, net + 2, 30)], **params}
        )

    def lan(self, router: str, hosts: list[str], switch: str | None = None) -> None:
        """The router at .1 and the hosts from .2; through ``switch`` when given, else one host
        on a direct link."""
        plen = min(24, 32 - (len(hosts) + 2).bit_length())
        net = self.lans.take(plen, self.spec)
        gw = self._iface(router, net + 1, plen)
        if switch is None:
            (host,) = hosts
            self.links.append({"endpoints": [self._iface(host, net + 2, plen), gw]})
            return
        self.node(switch, "switch")
        self.links.append({"endpoints": [gw, f"{switch}:p0"]})
        for i, host in enumerate(hosts, 1):
            self.links.append(
                {"endpoints": [self._iface(host, net + 1 + i, plen), f"{switch}:p{i}"]}
            )

    def topology(self, name: str, seed: int, link: dict[str, Any]) -> Topology:
        data = {
            "name": name,
            "seed": seed,
            "routing": "auto",
            "defaults": {"link": link},
            "nodes": self.nodes,
            "links": self.links,
        }
        return topology_from_dict(data, file=self.spec)


def _check_size(spec: str, hosts: int) -> None:
    if hosts > MAX_HOSTS:
        raise TopologyError(spec, "", f"too large: {hosts} hosts (at most {MAX_HOSTS})")


def _spec(
    kind: str, params: dict[str, int], seed: int, link: dict[str, Any], name: str | None
) -> str:
    """The spec string naming a generated topology (its name, and the file in messages); each
    of ``params`` must be a positive integer."""
    parts = [kind, *(f"{k}={v}" for k, v in params.items())]
    if seed:
        parts.append(f"seed={seed}")
    parts += [f"{k}={v}" for k, v in link.items()]
    spec = name or ",".join(parts)
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TopologyError(spec, key, f"expected a positive integer, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise TopologyError(spec, "seed", f"expected an integer >= 0, got {seed!r}")
    return spec


_UNIT_OF = {"delay": "s", "jitter": "s", "reorder_gap": "s", "bandwidth": "bit"}


def _python_units(link: dict[str, Any]) -> dict[str, Any]:
    """Python callers may pass plain numbers (seconds, bit/s) as everywhere in the Python API;
    written with their unit they pass the topology file's unit rule (``0.03`` -> ``"0.03s"``)."""
    out = dict(link)
    for key, unit in _UNIT_OF.items():
        value = out.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = f"{value!r}{unit}"
    return out


def _with_hosts(b: _Builder, names: list[str]) -> list[str]:
    for name in names:
        b.node(name, "host")
    return names


def line_topology(n: int = 2, *, seed: int = 0, name: str | None = None, **link: Any) -> Topology:
    """Routers r1..rN in a chain, host hi on a link to router ri."""
    link = _python_units(link)
    spec = _spec("line", {"n": n}, seed, link, name)
    _check_size(spec, n)
    b = _Builder(spec)
    routers = [f"r{i}" for i in range(1, n + 1)]
    for r in routers:
        b.node(r, "router")
    hosts = _with_hosts(b, [f"h{i}" for i in range(1, n + 1)])
    for r, h in zip(routers, hosts, strict=True):
        b.lan(r, [h])
    for left, right in itertools.pairwise(routers):
        b.router_link(left, right)
    return b.topology(spec, seed, link)


def star_topology(n: int = 2, *, seed: int = 0, name: str | None = None, **link: Any) -> Topology:
    """Router r1 in the middle, hosts h1..hN each on its own link to it."""
    link = _python_units(link)
    spec = _spec("star", {"n": n}, seed, link, name)
    _check_size(spec, n)
    b = _Builder(spec)
    b.node("r1", "router")
    for h in _with_hosts(b, [f"h{i}" for i in range(1, n + 1)]):
        b.lan("r1", [h])
    return b.topology(spec, seed, link)


def tree_topology(
    depth: int = 1, fanout: int = 2, *, seed: int = 0, name: str | None = None, **link: Any
) -> Topology:
    """A tree of routers (r1 the root, numbered breadth first), fanout children each; every
    leaf router has a switch with ``fanout`` hosts."""
    link = _python_units(link)
    spec = _spec("tree", {"depth": depth, "fanout": fanout}, seed, link, name)
    _check_size(spec, fanout**depth)
    b = _Builder(spec)
    level = ["r1"]
    b.node("r1", "router")
    count = 1
    for _ in range(depth - 1):
        below = []
        for parent in level:
            for _ in range(fanout):
                count += 1
                child = f"r{count}"
                b.node(child, "router")
                b.router_link(child, parent)
                below.append(child)
        level = below
    host = 0
    for leaf in level:
        names = [f"h{host + i}" for i in range(1, fanout + 1)]
        host += fanout
        b.lan(leaf, _with_hosts(b, names), switch=f"s{leaf[1:]}")
    return b.topology(spec, seed, link)


def fattree_topology(
    k: int = 4, *, seed: int = 0, name: str | None = None, **link: Any
) -> Topology:
    """The k-ary fat tree (Al-Fares et al. 2008) with routers for its switches."""
    link = _python_units(link)
    spec = _spec("fattree", {"k": k}, seed, link, name)
    if k % 2:
        raise TopologyError(spec, "k", f"{k} is odd: a fat tree needs an even k")
    half = k // 2
    _check_size(spec, k**3 // 4)
    b = _Builder(spec)
    cores = [f"c{i}" for i in range(1, half * half + 1)]
    for c in cores:
        b.node(c, "router")
    host = 0
    edges_of_pods = []
    for pod in range(k):
        aggs = [f"a{pod * half + i}" for i in range(1, half + 1)]
        edges = [f"e{pod * half + i}" for i in range(1, half + 1)]
        for name in aggs + edges:
            b.node(name, "router")
        for e in edges:
            for a in aggs:
                b.router_link(e, a)
        for i, a in enumerate(aggs):
            for c in cores[i * half : (i + 1) * half]:
                b.router_link(a, c)
        edges_of_pods.append(edges)
    for edges in edges_of_pods:
        for e in edges:
            names = [f"h{host + i}" for i in range(1, half + 1)]
            host += half
            b.lan(e, _with_hosts(b, names), switch=f"s{e[1:]}")
    return b.topology(spec, seed, link)


def dumbbell_topology(
    n: int = 1,
    *,
    bottleneck: str | float = "10Mbit",
    bottleneck_delay: str | float = "10ms",
    bottleneck_queue: int = 100,
    seed: int = 0,
    name: str | None = None,
    **link: Any,
) -> Topology:
    """left1..leftN -- r1 == bottleneck == r2 -- right1..rightN."""
    link = _python_units(link)
    bottleneck = _python_units({"bandwidth": bottleneck})["bandwidth"]
    bottleneck_delay = _python_units({"delay": bottleneck_delay})["delay"]
    spec = _spec("dumbbell", {"n": n}, seed, link, name)
    _check_size(spec, 2 * n)
    b = _Builder(spec)
    b.node("r1", "router")
    b.node("r2", "router")
    for side, router in (("left", "r1"), ("right", "r2")):
        for h in _with_hosts(b, [f"{side}{i}" for i in range(1, n + 1)]):
            b.lan(router, [h])
    b.router_link("r1", "r2", bandwidth=bottleneck, delay=bottleneck_delay, queue=bottleneck_queue)
    access = {"bandwidth": "100Mbit", "delay": "1ms", **link}
    return b.topology(spec, seed, access)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return int(value)


def _seed(value: str) -> int:
    if not value.isdigit():
        raise ValueError(f"expected an integer >= 0, got {value!r}")
    return int(value)


def _check_rate(value: str) -> str:
    parse_rate(value)
    return value


def _check_time(value: str) -> str:
    parse_time(value)
    return value


# name -> (function, positional parameter names, converters for its own parameters)
GENERATORS: dict[str, tuple[Callable[..., Topology], tuple[str, ...], dict[str, Callable]]] = {
    "line": (line_topology, ("n",), {"n": _positive}),
    "star": (star_topology, ("n",), {"n": _positive}),
    "tree": (tree_topology, ("depth", "fanout"), {"depth": _positive, "fanout": _positive}),
    "fattree": (fattree_topology, ("k",), {"k": _positive}),
    "dumbbell": (
        dumbbell_topology,
        ("n",),
        {
            "n": _positive,
            "bottleneck": _check_rate,
            "bottleneck_delay": _check_time,
            "bottleneck_queue": _positive,
        },
    ),
}


def topology_from_spec(spec: str) -> Topology:
    """``"tree,depth=2,fanout=3"`` (or ``"tree,2,3"``) -> the generated :class:`Topology`.
    Mistakes raise :class:`TopologyError` naming the spec and the parameter."""
    if not isinstance(spec, str):
        raise TypeError(f"expected a spec string like 'tree,depth=2,fanout=3', got {spec!r}")
    parts = [p.strip() for p in spec.strip().split(",")]
    name = parts[0]
    if name not in GENERATORS:
        raise TopologyError(
            spec, "", f"unknown topology {name!r}; expected one of {', '.join(GENERATORS)}"
        )
    function, positional, own = GENERATORS[name]
    kwargs: dict[str, Any] = {}
    for index, part in enumerate(parts[1:]):
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq:
            if len(kwargs) > index or index >= len(positional):
                raise TopologyError(
                    spec,
                    "",
                    f"unexpected positional value {part!r} (parameters: "
                    f"{', '.join(positional)}, then name=value)",
                )
            key, value = positional[index], part
        if key in kwargs:
            raise TopologyError(spec, key, "given twice")
        if key in own:
            convert = own[key]
        elif key == "seed":
            convert = _seed
        elif key in LINK_FIELDS:
            convert = str
        else:
            expected = ", ".join([*own, "seed", "or a link field like delay or bandwidth"])
            raise TopologyError(spec, key, f"unknown parameter; expected {expected}")
        try:
            kwargs[key] = convert(value)
        except ValueError as exc:
            raise TopologyError(spec, key, str(exc)) from None
    return function(name=spec.strip(), **kwargs)
