"""``routing: auto``: shortest-path static routes for every host and router, as an operator
would write them with ``ip route add`` (net/ipv4/fib_*.c is where Linux keeps them; computing
them is ours).

The network is seen at layer 3: an *attachment* is an addressed interface; a *segment* is what
links and switches join at layer 2 (a link, or every port of a tree of switches); a *network*
is one IP subnet on one segment.  Forwarding nodes (routers, and hosts with
``net.ipv4.ip_forward = 1``) join networks.  From every forwarding or multi-homed node a breadth
first search over networks finds the first hop towards every other network; neighbours are
visited in name order (forwarders on a network by node name, a node's networks by interface
name), so ties between equal-length paths go to the first in that order, on every run.

- A host (or TAP device) with one addressed interface gets ``default via`` its first-hop router:
  the forwarder on its network that comes first by name.
- Routers and multi-homed hosts get a route for every network they can reach and are not
  connected to (no default route, so an unknown destination draws "network unreachable").
- Routes written in the file win over computed ones for the same destination.

Cost: one search per forwarding node, each linear in the size of the network; a tree of 1,000
hosts (111 routers, 210 networks) takes milliseconds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import attrs

from ..wire.addr import ip_from_str, ip_to_str, prefix_mask
from .schema import Node, Topology

__all__ = ["Attachment", "Fabric", "auto_routes", "forwards", "split_cidr"]


def split_cidr(cidr: str) -> tuple[int, int]:
    """``"10.0.1.2/24"`` (already validated) -> (address, prefix length)."""
    addr, _, plen = cidr.partition("/")
    return ip_from_str(addr), int(plen)


def forwards(node: Node) -> bool:
    """Does the node forward packets not addressed to it (``net.ipv4.ip_forward``)?"""
    if node.kind not in ("host", "router"):
        return False
    return node.sysctl.get("net.ipv4.ip_forward", 1 if node.kind == "router" else 0) == 1


@attrs.frozen
class Attachment:
    """An addressed interface (or a TAP device's port) and the segment it is on."""

    node: str
    ifname: str
    addr: int
    plen: int
    segment: int

    @property
    def subnet(self) -> tuple[int, int]:
        return self.addr & prefix_mask(self.plen), self.plen

    @property
    def label(self) -> str:
        return f"{self.node}:{self.ifname}"


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[object, object] = {}

    def find(self, x: object) -> object:
        parent = self.parent
        root = parent.setdefault(x, x)
        while root != parent[root]:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: object, b: object) -> bool:
        """Join the sets of a and b; False when they were already one set."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[rb] = ra
        return True


class Fabric:
    """The layer-3 view of a topology whose nodes and links are already checked."""

    def __init__(self, topology: Topology) -> None:
        nodes = topology.nodes
        uf = _UnionFind()

        def element(endpoint: str) -> object:
            name, _, _ifname = endpoint.partition(":")
            return name if nodes[name].kind == "switch" else endpoint

        tap_port: dict[str, str] = {}
        for link in topology.links:
            a, b = link.endpoints
            uf.union(element(a), element(b))
            for ep in (a, b):
                name, _, ifname = ep.partition(":")
                if nodes[name].kind == "tap":
                    tap_port[name] = ifname
        segment_ids: dict[object, int] = {}

        def segment(endpoint: str) -> int:
            root = uf.find(endpoint)
            return segment_ids.setdefault(root, len(segment_ids))

        self.attachments: dict[str, list[Attachment]] = {}
        for node in nodes.values():
            atts: list[Attachment] = []
            if node.kind in ("host", "router"):
                for ifname, cidr in node.interfaces.items():
                    if cidr is not None:
                        addr, plen = split_cidr(cidr)
                        atts.append(
                            Attachment(
                                node.name, ifname, addr, plen, segment(_endpoint(node, ifname))
                            )
                        )
            elif node.kind == "tap" and node.address is not None:
                port = tap_port.get(node.name, "")
                addr, plen = split_cidr(node.address)
                atts.append(Attachment(node.name, port, addr, plen, segment(_endpoint(node, port))))
            atts.sort(key=lambda a: a.ifname)
            self.attachments[node.name] = atts
        self.nodes = nodes

    def iter_attachments(self) -> Iterator[Attachment]:
        for atts in self.attachments.values():
            yield from atts


def _endpoint(node: Node, ifname: str) -> str:
    return f"{node.name}:{ifname}"


def auto_routes(topology: Topology) -> dict[str, dict[str, str]]:
    """Node name -> computed routes ``{dst: via}`` (dst ``"default"`` or ``"net/prefix"``),
    for every host, router and TAP node that gets any.  Routes the file writes are not
    included here (``build_network`` lets them win)."""
    fabric = Fabric(topology)
    nodes = topology.nodes
    # Networks: one subnet on one segment, numbered in order of first appearance.
    net_index: dict[tuple[int, int, int], int] = {}
    net_name: list[str] = []
    forwarders: list[list[Attachment]] = []
    node_nets: dict[str, list[tuple[int, Attachment]]] = {}
    for att in fabric.iter_attachments():
        net, plen = att.subnet
        key = (att.segment, net, plen)
        index = net_index.get(key)
        if index is None:
            index = net_index[key] = len(net_name)
            net_name.append(f"{ip_to_str(net)}/{plen}")
            forwarders.append([])
        node_nets.setdefault(att.node, []).append((index, att))
        if forwards(nodes[att.node]):
            forwarders[index].append(att)
    for fwd in forwarders:
        fwd.sort(key=lambda a: (a.node, a.ifname))
    addr_text: dict[int, str] = {}

    def gw(att: Attachment) -> str:
        text = addr_text.get(att.addr)
        if text is None:
            text = addr_text[att.addr] = ip_to_str(att.addr)
        return text

    out: dict[str, dict[str, str]] = {}
    for name, mine in node_nets.items():
        node = nodes[name]
        if not forwards(node) and len(mine) == 1:
            index, att = mine[0]
            for fwd in forwarders[index]:
                if fwd.node != name:
                    out[name] = {"default": gw(fwd)}
                    break
            continue
        if node.kind == "tap":
            continue  # a TAP device with several addresses is not ours to route
        first: dict[int, Attachment | None] = {}
        queue: deque[int] = deque()
        for index, _ in mine:
            if index not in first:
                first[index] = None
                queue.append(index)
        seen = {name}
        while queue:
            index = queue.popleft()
            hop = first[index]
            for fwd in forwarders[index]:
                if fwd.node in seen:
                    continue
                seen.add(fwd.node)
                beyond = fwd if hop is None else hop
                for other, _ in node_nets[fwd.node]:
                    if other not in first:
                        first[other] = beyond
                        queue.append(other)
        routes = {net_name[i]: gw(hop) for i, hop in first.items() if hop is not None}
        if routes:
            out[name] = routes
    return out
