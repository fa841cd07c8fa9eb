"""The rules a network must follow, shared by the topology loader and the builder API.

``emunet.topology.load`` checks a whole file with them before a host exists (its messages
name the field path); :class:`emunet.Network`'s ``add_host``/``add_link`` apply the same
rules call by call (their messages name the node and interface).  One copy of each rule, so
the Python API refuses exactly what a topology file may not say:

- an interface address must be a host address of its subnet (not 0.0.0.0, loopback,
  multicast, reserved, the network or the broadcast address; prefix 1..32);
- an address is used once in the whole network (:class:`AddressBook`);
- the subnets of one node do not overlap (:func:`first_overlap`);
- a link names interfaces the node declares (:func:`missing_interface`); switch ports are
  created by the links that name them;
- switches form no loop (:class:`SwitchLoops`: emulated bridges run no spanning tree).

Every function raises ``ValueError`` with the reason alone; callers put the place in front.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..wire.addr import ip_from_str, ip_to_str, prefix_mask
from .routing import _UnionFind

__all__ = [
    "IFNAMSIZ",
    "AddressBook",
    "SwitchLoops",
    "first_overlap",
    "interface_address",
    "interface_name",
    "missing_interface",
    "parse_cidr",
    "special_address",
]

IFNAMSIZ = 16  # include/uapi/linux/if.h: 15 characters and the NUL
_BAD_NAME = re.compile(r"[:/\s]")


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {value!r}"


def parse_cidr(text: Any) -> tuple[int, int]:
    """``"10.0.1.2/24"`` -> (address, prefix); ValueError with the reason."""
    if not isinstance(text, str):
        raise ValueError(
            f"expected an address with a prefix length like 10.0.1.2/24, got {_describe(text)}"
        )
    addr, slash, plen = text.strip().partition("/")
    if not slash:
        raise ValueError(f"{text!r} has no prefix length (write it like 10.0.1.2/24)")
    try:
        address = ip_from_str(addr.strip())
    except ValueError:
        raise ValueError(f"{addr.strip()!r} is not an IPv4 address") from None
    if not plen.strip().isdigit() or not 0 <= int(plen) <= 32:
        raise ValueError(f"prefix length {plen.strip()!r} is not a number from 0 to 32")
    return address, int(plen)


def special_address(addr: int) -> str | None:
    """Why an address can be neither an interface's nor a gateway's (None: it can)."""
    first = addr >> 24
    if addr == 0:
        return "0.0.0.0 is not a host address"
    if first == 127:
        return f"{ip_to_str(addr)} is a loopback address"
    if 224 <= first < 240:
        return f"{ip_to_str(addr)} is a multicast address"
    if first >= 240:
        return f"{ip_to_str(addr)} is a reserved address (240.0.0.0/4)"
    return None


def interface_address(value: Any) -> str:
    """An interface's ``"addr/prefix"``, checked and canonical (``" 10.0.1.2/24"`` ->
    ``"10.0.1.2/24"``)."""
    addr, plen = parse_cidr(value)
    why = special_address(addr)
    if why is not None:
        raise ValueError(why)
    if plen == 0:
        raise ValueError("prefix length 0 is not an interface's subnet")
    if plen <= 30:
        mask = prefix_mask(plen)
        net = addr & mask
        subnet = f"{ip_to_str(net)}/{plen}"
        if addr == net:
            raise ValueError(f"{ip_to_str(addr)} is the network address of {subnet}")
        if addr == net | (~mask & 0xFFFFFFFF):
            raise ValueError(f"{ip_to_str(addr)} is the broadcast address of {subnet}")
    return f"{ip_to_str(addr)}/{plen}"


def interface_name(value: Any) -> str:
    """An interface name: a non-empty string without ':', '/' or spaces, shorter than
    IFNAMSIZ."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {_describe(value)}")
    if _BAD_NAME.search(value):
        raise ValueError(f"interface name {value!r} must not contain ':', '/' or spaces")
    if len(value) >= IFNAMSIZ:
        raise ValueError(f"interface name is longer than {IFNAMSIZ - 1} characters (IFNAMSIZ)")
    return value


class AddressBook:
    """Who holds each address of the network: an address is used once."""

    def __init__(self) -> None:
        self.owner: dict[int, str] = {}

    def check(self, addr: int) -> None:
        """Raise if ``addr`` is taken."""
        owner = self.owner.get(addr)
        if owner is not None:
            raise ValueError(f"address {ip_to_str(addr)} is already used by {owner}")

    def claim(self, addr: int, label: str) -> None:
        self.check(addr)
        self.owner[addr] = label


def first_overlap(cidrs: Iterable[tuple[str, int, int]]) -> tuple[str, str] | None:
    """The first of ``(label, address, prefix)`` (in the order given) whose subnet overlaps
    an earlier one of the same node, as (its label, the reason); None when none does."""
    entries = []
    for order, (label, addr, plen) in enumerate(cidrs):
        start = addr & prefix_mask(plen)
        entries.append((start, start + (1 << (32 - plen)) - 1, order, label))
    # Aligned blocks either nest or are disjoint: one sweep in address order finds any overlap.
    entries.sort()
    widest: tuple[int, int, int, str] | None = None
    for entry in entries:
        if widest is not None and entry[0] <= widest[1]:
            early, late = sorted((widest, entry), key=lambda e: e[2])
            reason = f"subnet {_subnet(late)} overlaps {_subnet(early)} of {early[3]}"
            return late[3], f"{reason} on the same node"
        if widest is None or entry[1] > widest[1]:
            widest = entry
    return None


def _subnet(entry: tuple[int, int, int, str]) -> str:
    size = entry[1] - entry[0] + 1
    return f"{ip_to_str(entry[0])}/{32 - (size.bit_length() - 1)}"


def missing_interface(node: str, ifname: str, declared: Mapping[str, Any] | Iterable[str]) -> str:
    """The reason a link may not name ``node:ifname`` (a host or router that does not declare
    the interface)."""
    names = ", ".join(declared) or "none"
    return f"{node} has no interface {ifname!r} (it declares: {names})"


class SwitchLoops:
    """Links between switches must not close a loop (no spanning tree runs)."""

    def __init__(self) -> None:
        self._sets = _UnionFind()

    def join(self, a: str, b: str) -> None:
        if not self._sets.union(a, b):
            raise ValueError(
                f"closes a loop of switches through {a} and {b} "
                "(emulated switches run no spanning tree)"
            )
