"""Network: the builder API, the runner, seeds, and lookup of hosts and links (DESIGN.md 3, 5).

    net = emunet.Network(seed=1)
    net.add_host("client", interfaces={"eth0": "10.0.1.2/24"}, routes={"default": "10.0.1.1"})
    net.add_router("r1", interfaces={"eth0": "10.0.1.1/24", "eth1": "10.0.2.1/24"})
    net.add_link("client:eth0", "r1:eth0", delay="5ms", bandwidth="100Mbit", loss="1%")
    async with net.running():
        ...

Every random stream is derived from (seed, purpose, name) with a stable hash, so the same
topology and seed give the same packets, pcaps and counters.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import attrs
import trio

from .fabric.impair import LinkParams
from .fabric.link import Link, apply_mtu
from .fabric.pcap import PcapWriter
from .fabric.switch import Switch
from .fabric.tap import TapPort
from .stack.host import Host
from .topology.rules import (
    AddressBook,
    SwitchLoops,
    first_overlap,
    interface_address,
    interface_name,
    missing_interface,
    parse_cidr,
)
from .trace import Tracer

DEFAULT_MTU = 1500


def stable_seed(seed: int, *names: str) -> int:
    """A 64-bit seed from (seed, names...) that is the same on every run and platform."""
    text = "/".join([str(seed), *names]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


def _split_endpoint(text: str) -> tuple[str, str]:
    if not isinstance(text, str) or text.count(":") != 1:
        raise ValueError(f"link endpoint {text!r} must look like 'node:interface'")
    node, _, ifname = text.partition(":")
    if not node or not ifname:
        raise ValueError(f"link endpoint {text!r} must look like 'node:interface'")
    return node, ifname


class Network:
    def __init__(self, seed: int = 0, name: str = "emunet") -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        self.name = name
        self.nodes: dict[str, Host | Switch | TapPort] = {}
        self.links: dict[tuple[str, str], Link] = {}
        self.tracer: Tracer | None = None
        self._macs = 0
        self._running = False
        self._pcap_files: list[Any] = []
        self._addresses = AddressBook()  # the loader's rules (emunet.topology.rules)
        self._switch_loops = SwitchLoops()

    # ----------------------------------------------------------------- building
    def _check_new(self, name: str) -> None:
        if not isinstance(name, str) or not name or ":" in name or "/" in name:
            raise ValueError(f"node name {name!r} must be a non-empty string without ':' or '/'")
        if name in self.nodes:
            raise ValueError(f"node {name!r} already exists")
        if self._running:
            raise RuntimeError("nodes cannot be added while the network runs")

    def _next_mac(self) -> bytes:
        self._macs += 1
        return b"\x02\x00" + self._macs.to_bytes(4, "big")

    def add_host(
        self,
        name: str,
        interfaces: Mapping[str, str | None] | None = None,
        routes: Mapping[str, str] | None = None,
        sysctl: Mapping[str, int | str] | None = None,
        *,
        kind: str = "host",
        mtu: Mapping[str, int] | None = None,
    ) -> Host:
        """Add a host; ``interfaces`` maps names to ``"addr/prefix"`` (or None: no address),
        ``routes`` maps ``"default"`` or ``"net/prefix"`` to a gateway address.

        The rules of topology files apply (:mod:`emunet.topology.rules`): a host address of
        its subnet, used nowhere else in the network, subnets of one host that do not
        overlap; a bad one raises ``ValueError`` naming ``node:interface`` and adds nothing.
        Only the interfaces declared here can be linked."""
        self._check_new(name)
        interfaces = self._check_interfaces(name, interfaces or {})
        host = Host(name, kind=kind, seed=stable_seed(self.seed, "host", name), tracer_of=self)
        for ifname, cidr in (interfaces or {}).items():
            host.add_interface(ifname, cidr, self._next_mac(), (mtu or {}).get(ifname, DEFAULT_MTU))
        for dst, via in (routes or {}).items():
            host.add_route(dst, via)
        host.configure(sysctl)
        self.nodes[name] = host
        self._claim(name, interfaces)
        return host

    def _check_interfaces(
        self, node: str, interfaces: Mapping[str, str | None]
    ) -> dict[str, str | None]:
        """The interfaces of a new node, checked as the loader checks them."""
        out: dict[str, str | None] = {}
        mine: list[tuple[str, int, int]] = []
        for ifname, cidr in interfaces.items():
            try:
                interface_name(ifname)
                out[ifname] = None if cidr is None else interface_address(cidr)
                if cidr is not None:
                    addr, plen = parse_cidr(out[ifname])
                    self._addresses.check(addr)
                    mine.append((ifname, addr, plen))
            except ValueError as exc:
                raise ValueError(f"{node}:{ifname}: {exc}") from None
        overlap = first_overlap(mine)
        if overlap is not None:
            raise ValueError(f"{node}:{overlap[0]}: {overlap[1]}")
        return out

    def _claim(self, node: str, interfaces: Mapping[str, str | None]) -> None:
        for ifname, cidr in interfaces.items():
            if cidr is not None:
                self._addresses.claim(parse_cidr(cidr)[0], f"{node}:{ifname}")

    def add_router(
        self,
        name: str,
        interfaces: Mapping[str, str | None] | None = None,
        routes: Mapping[str, str] | None = None,
        sysctl: Mapping[str, int | str] | None = None,
        **kw: Any,
    ) -> Host:
        """A host with forwarding on (``net.ipv4.ip_forward = 1``)."""
        return self.add_host(name, interfaces, routes, sysctl, kind="router", **kw)

    def add_switch(self, name: str) -> Switch:
        self._check_new(name)
        switch = Switch(name)
        self.nodes[name] = switch
        return switch

    def add_tap(
        self,
        name: str,
        device: str | None = None,
        netns: str | None = None,
        address: str | None = None,
        routes: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> TapPort:
        """A real Linux peer: a TAP device (default name: ``name``), optionally moved into
        network namespace ``netns`` with the Linux side's ``address`` and ``routes``; link it as
        ``"<name>:tap"``.  Needs root and real time (see :mod:`emunet.fabric.tap`)."""
        self._check_new(name)
        if address is not None:
            try:
                address = interface_address(address)
                self._addresses.check(parse_cidr(address)[0])
            except ValueError as exc:
                raise ValueError(f"{name}: address: {exc}") from None
        tap = TapPort(name, device, netns=netns, address=address, routes=routes, **kw)
        self.nodes[name] = tap
        if address is not None:
            self._addresses.claim(parse_cidr(address)[0], name)
        return tap

    def _port(self, endpoint: str) -> Any:
        node_name, ifname = _split_endpoint(endpoint)
        node = self.nodes.get(node_name)
        if node is None:
            raise KeyError(f"link endpoint {endpoint!r}: no node named {node_name!r}")
        if isinstance(node, (Switch, TapPort)):
            return node.port(ifname)
        if ifname not in node.devices:  # interfaces are declared by add_host, as in files
            raise ValueError(
                f"link endpoint {endpoint!r}: {missing_interface(node_name, ifname, node.devices)}"
            )
        return node.devices[ifname]

    def add_link(self, a: str, b: str, **params: Any) -> Link:
        """Join two endpoints ``"node:if"``; parameters as :class:`LinkParams` (units allowed):
        delay, jitter, bandwidth, loss, loss_ge, duplicate, corrupt, reorder, reorder_gap,
        queue, mtu, up."""
        if self._running:
            raise RuntimeError("links cannot be added while the network runs")
        key = (a, b)
        if key in self.links or (b, a) in self.links:
            raise ValueError(f"link {a} <-> {b} already exists")
        lp = LinkParams(**params)
        pa, pb = self._port(a), self._port(b)
        if pa is pb:
            raise ValueError(f"link {a} <-> {b} joins an interface to itself")
        for port, name in ((pa, a), (pb, b)):
            if port.txq.link is not None:
                raise ValueError(f"interface {name} is already linked")
        if isinstance(self.nodes[a.partition(":")[0]], Switch) and isinstance(
            self.nodes[b.partition(":")[0]], Switch
        ):
            try:
                self._switch_loops.join(a.partition(":")[0], b.partition(":")[0])
            except ValueError as exc:
                raise ValueError(f"link {a} <-> {b}: {exc}") from None
        if "mtu" not in params:
            # The link's mtu is what its ends have (the report shows it): ends with MTUs of
            # their own must agree, or the link must say which one it carries.
            mtus = {port.mtu for port in (pa, pb) if hasattr(port, "mtu")}
            if len(mtus) > 1:
                raise ValueError(
                    f"link {a} <-> {b}: the interfaces' MTUs differ "
                    f"({pa.mtu} and {pb.mtu}); give the link an mtu"
                )
            if mtus:
                lp = attrs.evolve(lp, mtu=mtus.pop())
        import random

        link = Link(
            pa,
            pb,
            lp,
            random.Random(stable_seed(self.seed, "link", a, b)),
            random.Random(stable_seed(self.seed, "link", b, a)),
        )
        if "mtu" in params:
            apply_mtu((pa, pb), lp.mtu)
        self.links[key] = link
        return link

    # ----------------------------------------------------------------- lookup
    def host(self, name: str) -> Host:
        node = self.nodes.get(name)
        if not isinstance(node, Host):
            raise KeyError(f"no host named {name!r}")
        return node

    def switch(self, name: str) -> Switch:
        node = self.nodes.get(name)
        if not isinstance(node, Switch):
            raise KeyError(f"no switch named {name!r}")
        return node

    def hosts(self) -> list[Host]:
        return [n for n in self.nodes.values() if isinstance(n, Host)]

    def link(self, a: str, b: str) -> Link:
        link = self.links.get((a, b)) or self.links.get((b, a))
        if link is None:
            raise KeyError(f"no link between {a} and {b}")
        return link

    # ----------------------------------------------------------------- running
    def capture(self, directory: str, name_of: Callable[[Link], str] | None = None) -> None:
        """Write one pcap per link into ``directory`` while the network runs."""
        os.makedirs(directory, exist_ok=True)
        for (a, b), link in self.links.items():
            fname = name_of(link) if name_of else f"{a}--{b}.pcap".replace(":", "_")
            f = open(os.path.join(directory, fname), "wb")
            self._pcap_files.append(f)
            link.pcap = PcapWriter(f)

    def trace(self, on: bool = True) -> Tracer | None:
        """Turn packet tracing on (returns the tracer) or off."""
        self.tracer = Tracer() if on else None
        return self.tracer

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Network]:
        """Start every layer task of every host, switch and link; stop them all on exit."""
        if self._running:
            raise RuntimeError("the network is already running")
        self._running = True
        taps = [node for node in self.nodes.values() if isinstance(node, TapPort)]
        try:
            for tap in taps:  # outside the nursery, so that their errors are not grouped
                await tap.open()
            async with trio.open_nursery() as nursery:
                for node in self.nodes.values():
                    if isinstance(node, Host):
                        await nursery.start(node.run, name=f"{node.name}/host")
                    else:
                        for name, fn in node.tasks():
                            nursery.start_soon(fn, name=name)
                for link in self.links.values():
                    for name, fn in link.tasks():
                        nursery.start_soon(fn, name=name)
                try:
                    yield self
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            for tap in taps:
                tap.close()
            self._running = False
            for link in self.links.values():
                link.flush_pcap()
            for f in self._pcap_files:
                f.close()
            self._pcap_files.clear()
