"""Loading a topology file: YAML -> checked :class:`Topology` -> running :class:`Network`.

``load_topology(source)`` reads YAML with ``yaml.SafeLoader`` (no Python objects), refuses
duplicate keys at any level, and checks everything DESIGN.md section 5 promises before a single
host exists, reporting the first problem as one :class:`TopologyError` whose ``str()`` is one
line, ``file: field.path[i]: reason``:

- the shape: unknown keys at every level (with a "did you mean"), wrong types, bad units
  (:mod:`emunet.units`), values out of range (MTU below IPv4's 68, RFC 791);
- addresses: not a host address, used twice in the network, overlapping subnets on one host,
  one subnet on two separate segments;
- links: endpoints naming missing nodes or undeclared interfaces (switch ports are created by
  the links that name them), an interface or port used twice, a loop of switches (emulated
  bridges run no spanning tree, so a loop would flood forever);
- routes whose gateway is not on a connected subnet of the node, or that nobody on that
  segment holds (unreachable routes; Linux's ``ip route add`` refuses the first with "Nexthop
  has invalid gateway");
- sysctls unknown to :mod:`emunet.stack.sysctl` (per-interface ``net.ipv4.conf.<if>.*`` keys
  included) or of the wrong type;
- events at negative times or naming missing links; experiments of unknown types, with unknown
  fields, or naming nodes that cannot run or answer them.

``build_network(topology)`` then uses only the builder API of :class:`emunet.Network`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import yaml

from ..fabric.impair import LinkParams
from ..stack.sysctl import CONF_DEFAULTS, Sysctl
from ..stack.sysctl import DEFAULTS as SYSCTL_DEFAULTS
from ..units import parse_time, require_unit_for
from ..wire.addr import ip_from_str, ip_to_str, mac_from_str, mac_to_str, prefix_mask
from .routing import Fabric, auto_routes, split_cidr
from .rules import (
    IFNAMSIZ,
    AddressBook,
    SwitchLoops,
    first_overlap,
    interface_address,
    interface_name,
    missing_interface,
    parse_cidr,
    special_address,
)
from .schema import (
    CONGESTION_CONTROLS,
    EXPERIMENT_TYPES,
    LINK_FIELDS,
    NODE_KINDS,
    ROUTING_MODES,
    Defaults,
    Event,
    Experiment,
    LinkSpec,
    Node,
    Topology,
    TopologyError,
)

if TYPE_CHECKING:
    from ..network import Network

__all__ = [
    "TopologyError",
    "build_network",
    "check_topology",
    "load_topology",
    "play_events",
    "topology_from_dict",
]

TOP_KEYS = ("name", "seed", "routing", "defaults", "nodes", "links", "events", "experiments")
NODE_KEYS = {
    "host": ("kind", "interfaces", "routes", "sysctl"),
    "router": ("kind", "interfaces", "routes", "sysctl"),
    "switch": ("kind",),
    "tap": ("kind", "device", "netns", "address", "routes", "mac"),
}
EVENT_KEYS = ("at", "link", "set")
TAP_PORT = "tap"  # a tap node's one link endpoint is "<node>:tap" (emunet.fabric.tap)
_GENERATOR_SPEC = re.compile(r"(line|star|tree|fattree|dumbbell)(,.*)?", re.DOTALL)
_CONF_KEY = re.compile(r"net\.ipv4\.conf\.(.+)\.([a-z_]+)")
_BAD_NAME = re.compile(r"[:/\s]")
_SPACE = re.compile(r"\s")


# ------------------------------------------------------------------------- entry points


def load_topology(
    source: str | os.PathLike[str] | Mapping[str, Any] | Topology, *, file: str | None = None
) -> Topology:
    """Read and check a topology.  ``source`` is a path to a YAML file, YAML text, a generator
    spec (``"tree,depth=2,fanout=3"``, see :mod:`emunet.topology.generators`), an already parsed
    mapping, or a :class:`Topology` (returned as it is).  ``file`` names the source in messages
    (default: the path, ``<string>`` or ``<dict>``).  Raises :class:`TopologyError`."""
    if isinstance(source, Topology):
        return source
    if isinstance(source, Mapping):
        return topology_from_dict(source, file=file or "<dict>")
    if isinstance(source, os.PathLike):
        return _load_file(os.fspath(source), file)
    if not isinstance(source, str):
        raise TypeError(f"expected a path, YAML text or a mapping, got {type(source).__name__}")
    looks_like_yaml = any(mark in source for mark in ("\n", ": ", "{"))
    if not looks_like_yaml:
        if _GENERATOR_SPEC.fullmatch(source.strip()) and not os.path.exists(source):
            from .generators import topology_from_spec

            return topology_from_spec(source.strip())
        return _load_file(source, file)
    name = file or "<string>"
    return topology_from_dict(_parse_yaml(source, name), file=name)


def _load_file(path: str, file: str | None) -> Topology:
    name = file or path
    try:
        with open(path, encoding="utf-8") as f:
            content = f.read()
    except OSError as exc:
        raise TopologyError(name, "", f"cannot read the file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise TopologyError(name, "", f"not UTF-8 text (byte {exc.start})") from None
    return topology_from_dict(_parse_yaml(content, name), file=name)


def topology_from_dict(data: Any, *, file: str = "<dict>") -> Topology:
    """Check the mapping a YAML file parses to (``yaml.safe_load``) and return the topology."""
    topology = _Parser(file).parse(data)
    check_topology(topology)
    return topology


# ------------------------------------------------------------------------- YAML


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _parse_yaml(content: str, file: str) -> Any:
    loader = None
    try:
        loader = yaml.SafeLoader(content)
        node = loader.get_single_node()
        if node is None:
            raise TopologyError(file, "", "the file is empty; expected a mapping with nodes")
        _refuse_duplicate_keys(node, file)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark is not None else ""
        reason = exc.problem or "not valid YAML"
        if exc.context:
            reason += f" ({exc.context})"
        raise TopologyError(file, where, _one_line(reason)) from None
    except yaml.reader.ReaderError as exc:
        line = content.count("\n", 0, max(exc.position, 0)) + 1
        raise TopologyError(
            file, f"line {line}", f"character {exc.character!r} is not allowed in YAML"
        ) from None
    except RecursionError:
        raise TopologyError(file, "", "the document is nested too deeply") from None
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error is one of the above
        raise TopologyError(file, "", _one_line(f"not valid YAML: {exc}")) from None
    finally:
        if loader is not None:
            loader.dispose()


def _refuse_duplicate_keys(root: yaml.Node, file: str) -> None:
    """YAML says keys are unique; PyYAML keeps the last silently.  Refuse, naming both lines."""
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    done: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in done:  # an alias: already walked
            continue
        done.add(id(node))
        children: list[tuple[yaml.Node, str]] = []
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    children.append((value, path))
                    continue
                if key.tag == "tag:yaml.org,2002:merge":
                    children.append((value, path))
                    continue
                kpath = _join(path, key.value)
                line = key.start_mark.line + 1
                if key.value in first:
                    raise TopologyError(
                        file,
                        kpath,
                        f"duplicate key (first on line {first[key.value]}, again on line {line})",
                    )
                first[key.value] = line
                children.append((value, kpath))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        stack.extend(reversed(children))


# ------------------------------------------------------------------------- helpers


def _join(path: str, key: object) -> str:
    """``path.key``; a key that is not one printable word is quoted: ``path['a b']``."""
    if not isinstance(key, str) or not key or not key.isprintable() or _SPACE.search(key):
        return f"{path}[{key!r}]"
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"{type(value).__name__} {value!r}"


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.7)
    return f"; did you mean {close[0]!r}?" if close else ""


def _strip_field(message: str, name: str) -> str:
    prefix = f"{name}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


_parse_cidr = parse_cidr
_special = special_address


class _Parser:
    """The shape of the file: keys, types and units, into schema records."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, path: str, reason: str) -> NoReturn:
        raise TopologyError(self.file, path, reason)

    def mapping(self, value: Any, path: str, *, allow_null: bool = True) -> Mapping[str, Any]:
        if value is None and allow_null:
            return {}
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {_describe(value)}")
        for key in value:
            if not isinstance(key, str):
                hint = ""
                if isinstance(key, bool):
                    hint = " (YAML reads yes/no/on/off/true/false as booleans: quote it)"
                self.fail(_join(path, key), f"a key must be a string, got {_describe(key)}{hint}")
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {_describe(value)}")
        return value

    def known_keys(self, value: Mapping[str, Any], path: str, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                hint = _did_you_mean(key, allowed) or f"; expected {', '.join(allowed)}"
                self.fail(_join(path, key), f"unknown key{hint}")

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, f"expected a non-empty string, got {_describe(value)}")
        return value

    def name(self, value: Any, path: str, what: str) -> str:
        self.string(value, path)
        if _BAD_NAME.search(value):
            self.fail(path, f"{what} {value!r} must not contain ':', '/' or spaces")
        return value

    # ----------------------------------------------------------------- the file
    def parse(self, data: Any) -> Topology:
        if not isinstance(data, Mapping):
            self.fail("", f"expected a mapping with nodes at the top level, got {_describe(data)}")
        self.mapping(data, "")
        self.known_keys(data, "", TOP_KEYS)
        stem = os.path.splitext(os.path.basename(self.file))[0]
        if not stem or stem.startswith("<"):
            stem = "topology"
        name = self.string(data.get("name", stem), "name")
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            self.fail("seed", f"expected an integer >= 0, got {_describe(seed)}")
        routing = data.get("routing", "static")
        if routing not in ROUTING_MODES or not isinstance(routing, str):
            self.fail("routing", f"{_describe(routing)} is not one of {', '.join(ROUTING_MODES)}")
        defaults = self.defaults(data.get("defaults"))
        if "nodes" not in data:
            self.fail("nodes", "missing: a topology needs at least one node")
        nodes = self.nodes(data["nodes"])
        links = tuple(
            self.link(item, f"links[{i}]")
            for i, item in enumerate(self.sequence(data.get("links"), "links"))
        )
        events = tuple(
            self.event(item, f"events[{i}]")
            for i, item in enumerate(self.sequence(data.get("events"), "events"))
        )
        experiments = tuple(
            self.experiment(item, f"experiments[{i}]")
            for i, item in enumerate(self.sequence(data.get("experiments"), "experiments"))
        )
        return Topology(
            name=name,
            seed=seed,
            defaults=defaults,
            nodes=nodes,
            links=links,
            events=events,
            experiments=experiments,
            routing=routing,
            file=self.file,
        )

    def defaults(self, value: Any) -> Defaults:
        m = self.mapping(value, "defaults")
        self.known_keys(m, "defaults", ("link",))
        link = self.mapping(m.get("link"), "defaults.link")
        self.known_keys(link, "defaults.link", LINK_FIELDS)
        return Defaults(link=self.link_fields(link, "defaults.link"))

    # ----------------------------------------------------------------- nodes
    def nodes(self, value: Any) -> dict[str, Node]:
        m = self.mapping(value, "nodes", allow_null=False)
        if not m:
            self.fail("nodes", "no nodes: a topology needs at least one")
        return {name: self.node(name, spec) for name, spec in m.items()}

    def node(self, name: str, spec: Any) -> Node:
        path = f"nodes.{name}"
        self.name(name, path, "node name")
        m = self.mapping(spec, path)
        kind = m.get("kind", "host")
        if kind not in NODE_KINDS or not isinstance(kind, str):
            self.fail(f"{path}.kind", f"{_describe(kind)} is not one of {', '.join(NODE_KINDS)}")
        allowed = NODE_KEYS[kind]
        for key in m:
            if key not in allowed and any(key in keys for keys in NODE_KEYS.values()):
                why = {
                    "switch": " (a switch's ports are created by the links that name them)",
                    "tap": " (a tap node has device, netns, address, routes and mac)",
                }.get(kind, "")
                self.fail(_join(path, key), f"a {kind} has no {key}{why}")
        self.known_keys(m, path, allowed)
        interfaces = self.interfaces(m.get("interfaces"), f"{path}.interfaces")
        routes = self.routes(m.get("routes"), f"{path}.routes")
        sysctl = self.sysctl(m.get("sysctl"), f"{path}.sysctl", name, interfaces)
        device = netns = address = mac = None
        if kind == "tap":
            device = self.name(m.get("device", name), f"{path}.device", "device name")
            if len(device) >= IFNAMSIZ:
                where = f"{path}.device" if "device" in m else path
                self.fail(
                    where,
                    f"device name {device!r} is longer than {IFNAMSIZ - 1} characters "
                    "(Linux IFNAMSIZ)" + ("" if "device" in m else "; set device"),
                )
            if m.get("netns") is not None:
                netns = self.name(m["netns"], f"{path}.netns", "namespace name")
            if m.get("address") is not None:
                address = self.address(m["address"], f"{path}.address")
            if m.get("mac") is not None:
                mac = self.mac(m["mac"], f"{path}.mac")
        return Node(
            name=name,
            kind=kind,
            interfaces=interfaces,
            routes=routes,
            sysctl=sysctl,
            device=device,
            netns=netns,
            address=address,
            mac=mac,
        )

    def mac(self, value: Any, path: str) -> str:
        try:
            mac = mac_from_str(value) if isinstance(value, str) else None
        except ValueError:
            mac = None
        if mac is None:
            self.fail(
                path, f"expected a MAC address like 02:00:00:00:00:01, got {_describe(value)}"
            )
        if mac[0] & 1:
            self.fail(path, f"{value} is a group (multicast) address, not an interface's")
        return mac_to_str(mac)

    def address(self, value: Any, path: str) -> str:
        """An interface address ``addr/prefix``, canonical (:func:`rules.interface_address`)."""
        try:
            return interface_address(value)
        except ValueError as exc:
            self.fail(path, str(exc))

    def interfaces(self, value: Any, path: str) -> dict[str, str | None]:
        m = self.mapping(value, path)
        out: dict[str, str | None] = {}
        for ifname, cidr in m.items():
            p = _join(path, ifname)
            try:
                interface_name(ifname)
            except ValueError as exc:
                self.fail(p, str(exc))
            out[ifname] = None if cidr is None else self.address(cidr, p)
        return out

    def routes(self, value: Any, path: str) -> dict[str, str]:
        m = self.mapping(value, path)
        out: dict[str, str] = {}
        written: dict[str, str] = {}
        for dst, via in m.items():
            p = _join(path, dst)
            if dst == "default":
                key = "default"
            else:
                try:
                    net, plen = _parse_cidr(dst)
                except ValueError as exc:
                    self.fail(p, f"destination: {exc} (or 'default')")
                if net & ~prefix_mask(plen) & 0xFFFFFFFF:
                    right = f"{ip_to_str(net & prefix_mask(plen))}/{plen}"
                    self.fail(p, f"destination {dst} has host bits set (the network is {right})")
                key = "default" if plen == 0 else f"{ip_to_str(net)}/{plen}"
            if key in written:
                self.fail(p, f"the same destination as {written[key]!r}")
            written[key] = dst
            if not isinstance(via, str):
                self.fail(p, f"expected a gateway address, got {_describe(via)}")
            try:
                gateway = ip_from_str(via.strip())
            except ValueError:
                self.fail(p, f"gateway {via!r} is not an IPv4 address")
            why = _special(gateway) or (
                "255.255.255.255 is the broadcast address" if gateway == 0xFFFFFFFF else None
            )
            if why is not None:
                self.fail(p, f"gateway {why}")
            out[key] = ip_to_str(gateway)
        return out

    def sysctl(
        self, value: Any, path: str, node: str, interfaces: Mapping[str, Any]
    ) -> dict[str, int | str]:
        m = self.mapping(value, path)
        probe = Sysctl(list(interfaces))
        out: dict[str, int | str] = {}
        for key, val in m.items():
            p = _join(path, key)
            default = SYSCTL_DEFAULTS.get(key)
            if default is None:
                conf = _CONF_KEY.fullmatch(key)
                if conf is not None and conf.group(2) in CONF_DEFAULTS:
                    if conf.group(1) not in interfaces:
                        self.fail(p, f"unknown sysctl: {node} has no interface {conf.group(1)!r}")
                    default = CONF_DEFAULTS[conf.group(2)]
                else:
                    self.fail(p, "unknown sysctl" + _did_you_mean(key, SYSCTL_DEFAULTS))
            if isinstance(default, int):
                if isinstance(val, bool) or not isinstance(val, int):
                    self.fail(p, f"expected an integer, got {_describe(val)}")
                if val < 0:
                    self.fail(p, f"must not be negative, got {val}")
            elif not isinstance(val, str):
                self.fail(p, f"expected a string, got {_describe(val)}")
            elif key == "net.ipv4.tcp_congestion_control" and val not in CONGESTION_CONTROLS:
                self.fail(p, f"{val!r} is not one of {', '.join(CONGESTION_CONTROLS)}")
            try:
                probe[key] = val
            except (KeyError, TypeError, ValueError) as exc:  # anything sysctl.py adds later
                self.fail(p, str(exc.args[0]) if exc.args else type(exc).__name__)
            out[key] = val
        return out

    # ----------------------------------------------------------------- links
    def link_fields(self, m: Mapping[str, Any], path: str) -> dict[str, Any]:
        """The impairments named in ``m``, each converted and range-checked by LinkParams."""
        out: dict[str, Any] = {}
        for name in LINK_FIELDS:
            if name not in m:
                continue
            value = m[name]
            p = _join(path, name)
            if value is None:
                self.fail(p, "expected a value, got nothing (null); leave the key out instead")
            try:
                require_unit_for(name, value)
                out[name] = getattr(LinkParams(**{name: value}), name)
            except ValueError as exc:
                self.fail(p, _strip_field(str(exc), name))
        return out

    def endpoints(self, value: Any, path: str) -> tuple[str, str]:
        if not isinstance(value, list):
            self.fail(
                path,
                f"expected a list of two endpoints like [client:eth0, r1:eth0], "
                f"got {_describe(value)}",
            )
        if len(value) != 2:
            self.fail(path, f"expected two endpoints, got {len(value)}")
        for j, ep in enumerate(value):
            node, colon, ifname = ep.partition(":") if isinstance(ep, str) else ("", "", "")
            if not colon or not node or not ifname or _BAD_NAME.search(node + ifname):
                self.fail(f"{path}[{j}]", f"{_describe(ep)} is not an endpoint node:interface")
        if value[0] == value[1]:
            self.fail(path, f"both endpoints are {value[0]}")
        return value[0], value[1]

    def link(self, item: Any, path: str) -> LinkSpec:
        m = self.mapping(item, path, allow_null=False)
        self.known_keys(m, path, ("endpoints", *LINK_FIELDS))
        if "endpoints" not in m:
            self.fail(path, "missing endpoints: [node:interface, node:interface]")
        endpoints = self.endpoints(m["endpoints"], f"{path}.endpoints")
        return LinkSpec(endpoints=endpoints, **self.link_fields(m, path))

    # ----------------------------------------------------------------- events
    def event(self, item: Any, path: str) -> Event:
        m = self.mapping(item, path, allow_null=False)
        self.known_keys(m, path, EVENT_KEYS)
        for key in EVENT_KEYS:
            if key not in m:
                self.fail(path, f"missing {key}")
        try:
            require_unit_for("at", m["at"])
            at = parse_time(m["at"])
        except ValueError as exc:
            self.fail(f"{path}.at", str(exc))
        link = self.endpoints(m["link"], f"{path}.link")
        changes = self.mapping(m["set"], f"{path}.set", allow_null=False)
        if not changes:
            self.fail(f"{path}.set", "nothing to set")
        self.known_keys(changes, f"{path}.set", LINK_FIELDS)
        return Event(at=at, link=link, set=self.link_fields(changes, f"{path}.set"))

    # ----------------------------------------------------------------- experiments
    def experiment(self, item: Any, path: str) -> Experiment:
        m = self.mapping(item, path, allow_null=False)
        if "type" not in m:
            self.fail(path, f"missing type (one of {', '.join(EXPERIMENT_TYPES)})")
        kind = m["type"]
        cls = EXPERIMENT_TYPES.get(kind) if isinstance(kind, str) else None
        if cls is None:
            self.fail(
                f"{path}.type", f"{_describe(kind)} is not one of {', '.join(EXPERIMENT_TYPES)}"
            )
        fields = attrs.fields_dict(cls)
        yaml_key = {"src": "from", "dst": "to"}
        keys = ["type", *(yaml_key.get(f, f) for f in fields)]
        self.known_keys(m, path, keys)
        for required in ("from", "to"):
            if required not in m:
                self.fail(path, f"missing {required}")
        kwargs: dict[str, Any] = {}
        for key, value in m.items():
            if key == "type":
                continue
            attr = {"from": "src", "to": "dst"}.get(key, key)
            p = _join(path, key)
            if value is None:
                self.fail(p, "expected a value, got nothing (null); leave the key out instead")
            converter = fields[attr].converter
            try:
                require_unit_for(attr, value)
                kwargs[attr] = converter(value) if callable(converter) else value
            except ValueError as exc:
                self.fail(p, _strip_field(str(exc), key))
        try:
            return cls(**kwargs)
        except ValueError as exc:
            self.fail(path, str(exc))


# ------------------------------------------------------------------------- cross-checks


def check_topology(topology: Topology) -> None:
    """The checks that look across the file: addresses, links, routes, events, experiments.
    ``topology_from_dict`` runs them after the shape is checked; the records must hold the
    canonical values the parser makes (``"10.0.1.2/24"``, names without ':' or spaces)."""
    _Checker(topology).run()


class _Checker:
    def __init__(self, topology: Topology) -> None:
        self.t = topology

    def fail(self, path: str, reason: str) -> NoReturn:
        raise TopologyError(self.t.file, path, reason)

    def run(self) -> None:
        self.addresses()
        self.links()
        fabric = Fabric(self.t)
        self.subnets(fabric)
        self.routes(fabric)
        self.events()
        self.experiments()

    def addresses(self) -> None:
        book = AddressBook()
        for node in self.t.nodes.values():
            path = f"nodes.{node.name}"
            cidrs = [
                (f"{path}.interfaces.{i}", f"{node.name}:{i}", c, i)
                for i, c in node.interfaces.items()
                if c is not None
            ]
            if node.address is not None:
                cidrs.append((f"{path}.address", node.name, node.address, node.name))
            mine: list[tuple[str, int, int]] = []
            where: dict[str, str] = {}
            for p, label, cidr, name in cidrs:
                addr, plen = split_cidr(cidr)
                try:
                    book.claim(addr, label)
                except ValueError as exc:
                    self.fail(p, str(exc))
                mine.append((name, addr, plen))
                where[name] = p
            overlap = first_overlap(mine)
            if overlap is not None:
                self.fail(where[overlap[0]], overlap[1])

    def links(self) -> None:
        nodes = self.t.nodes
        used: dict[str, int] = {}
        tap_used: dict[str, int] = {}
        bridges = SwitchLoops()
        for i, link in enumerate(self.t.links):
            path = f"links[{i}]"
            for j, ep in enumerate(link.endpoints):
                p = f"{path}.endpoints[{j}]"
                name, _, ifname = ep.partition(":")
                node = nodes.get(name)
                if node is None:
                    self.fail(p, f"no node named {name!r}" + _did_you_mean(name, nodes))
                if node.kind in ("host", "router") and ifname not in node.interfaces:
                    self.fail(p, missing_interface(name, ifname, node.interfaces))
                if node.kind == "tap":
                    if ifname != TAP_PORT:
                        self.fail(
                            p, f"a tap node has one port, {TAP_PORT!r}: write {name}:{TAP_PORT}"
                        )
                    if name in tap_used:
                        self.fail(
                            p,
                            f"{name} is already linked by links[{tap_used[name]}] "
                            "(a tap device has one port)",
                        )
                    tap_used[name] = i
                if ep in used:
                    self.fail(p, f"{ep} is already used by links[{used[ep]}]")
                used[ep] = i
            try:
                link.params(self.t.defaults.link)
            except ValueError as exc:  # e.g. loss from defaults.link and loss_ge here
                self.fail(path, str(exc))
            a, b = (ep.partition(":")[0] for ep in link.endpoints)
            if nodes[a].kind == "switch" and nodes[b].kind == "switch":
                try:
                    bridges.join(a, b)
                except ValueError as exc:
                    self.fail(path, str(exc))

    def subnets(self, fabric: Fabric) -> None:
        seen: dict[tuple[int, int], Any] = {}
        for att in fabric.iter_attachments():
            other = seen.setdefault(att.subnet, att)
            if other.segment != att.segment:
                net, plen = att.subnet
                node = self.t.nodes[att.node]
                path = (
                    f"nodes.{att.node}.address"
                    if node.kind == "tap"
                    else f"nodes.{att.node}.interfaces.{att.ifname}"
                )
                self.fail(
                    path,
                    f"subnet {ip_to_str(net)}/{plen} is also used by {_label(other, self.t)}, "
                    "which is not on the same link or switch",
                )

    def routes(self, fabric: Fabric) -> None:
        holders = {att.addr: att for att in fabric.iter_attachments()}
        for node in self.t.nodes.values():
            mine = fabric.attachments.get(node.name, [])
            for dst, via in node.routes.items():
                path = f"nodes.{node.name}.routes.{dst}"
                gateway = ip_from_str(via)
                out = [a for a in mine if a.subnet[0] == gateway & prefix_mask(a.plen)]
                if any(a.addr == gateway for a in mine):
                    self.fail(path, f"gateway {via} is an address of {node.name} itself")
                if not out:
                    connected = ", ".join(f"{ip_to_str(a.subnet[0])}/{a.plen}" for a in mine)
                    self.fail(
                        path,
                        f"unreachable route: gateway {via} is not on a connected subnet of "
                        f"{node.name} ({connected or 'it has no addresses'})",
                    )
                holder = holders.get(gateway)
                if holder is None or all(holder.segment != a.segment for a in out):
                    where = _label(out[0], self.t)
                    self.fail(
                        path,
                        f"unreachable route: no node on the link of {where} has the address {via}",
                    )

    def events(self) -> None:
        current: dict[int, LinkParams] = {}
        order = sorted(range(len(self.t.events)), key=lambda i: self.t.events[i].at)
        for i in order:
            event = self.t.events[i]
            index = self.t.link_index(*event.link)
            if index is None:
                self.fail(f"events[{i}].link", f"no link joins {event.link[0]} and {event.link[1]}")
            if "mtu" in event.set:
                for ep in self.t.links[index].endpoints:
                    if self.t.nodes[ep.partition(":")[0]].kind == "tap":
                        self.fail(
                            f"events[{i}].set.mtu",
                            f"{ep} is a tap device: its MTU is set when it opens",
                        )
            params = current.get(index)
            if params is None:
                params = self.t.links[index].params(self.t.defaults.link)
            try:
                current[index] = attrs.evolve(params, **event.set)
            except ValueError as exc:
                self.fail(f"events[{i}].set", str(exc))

    def experiments(self) -> None:
        nodes = self.t.nodes
        for i, exp in enumerate(self.t.experiments):
            path = f"experiments[{i}]"
            for key, name in (("from", exp.src), ("to", exp.dst)):
                node = nodes.get(name)
                p = f"{path}.{key}"
                if node is None:
                    self.fail(p, f"no node named {name!r}" + _did_you_mean(name, nodes))
                if node.kind == "switch":
                    self.fail(p, f"{name} is a switch: experiments run between hosts")
                if key == "from" and node.kind == "tap":
                    self.fail(p, f"{name} is a tap device: emunet cannot run programs on it")
                if key == "to" and not (
                    node.address or any(c is not None for c in node.interfaces.values())
                ):
                    self.fail(p, f"{name} has no address to send to")


def _label(att: Any, topology: Topology) -> str:
    return att.node if topology.nodes[att.node].kind == "tap" else att.label


# ------------------------------------------------------------------------- building


def build_network(topology: Topology) -> Network:
    """A :class:`emunet.Network` built from a checked topology with the builder API: nodes,
    ``defaults.link`` merged into every link, sysctls, the file's routes and, with ``routing:
    auto``, the computed ones.  The network's ``topology`` attribute holds ``topology``."""
    from ..network import Network

    net = Network(seed=topology.seed, name=topology.name)
    computed = auto_routes(topology) if topology.routing == "auto" else {}
    for node in topology.nodes.values():
        routes = dict(node.routes)
        for dst, via in computed.get(node.name, {}).items():
            routes.setdefault(dst, via)
        if node.kind in ("host", "router"):
            add = net.add_router if node.kind == "router" else net.add_host
            add(node.name, interfaces=node.interfaces, routes=routes, sysctl=node.sysctl)
        elif node.kind == "switch":
            net.add_switch(node.name)
        else:
            add_tap = getattr(net, "add_tap", None)
            if add_tap is None:
                raise TopologyError(
                    topology.file,
                    f"nodes.{node.name}",
                    "tap nodes need emunet's TAP support (Network.add_tap), which is missing",
                )
            add_tap(
                node.name,
                device=node.device or node.name,
                netns=node.netns,
                address=node.address,
                routes=routes,
                **({"mac": node.mac} if node.mac is not None else {}),
            )
    for link in topology.links:
        net.add_link(*link.endpoints, **link.options(topology.defaults.link))
    net.topology = topology  # type: ignore[attr-defined]
    return net


async def play_events(net: Network, events: Iterable[Event] | None = None) -> None:
    """Apply timed link events (default: the network's topology's) at their virtual times,
    counted from the call; returns after the last.  Run it in a task next to the experiments::

        async with net.running():
            nursery.start_soon(play_events, net)
    """
    import trio

    if events is None:
        events = net.topology.events  # type: ignore[attr-defined]
    start = trio.current_time()
    for event in sorted(events, key=lambda e: e.at):
        await trio.sleep_until(start + event.at)
        net.link(*event.link).set(**event.set)
