"""The IPv4 routing table: longest-prefix match over connected, static and default routes
(net/ipv4/route.c, fib_lookup).  Plain class, no trio.

Lookup checks the prefix lengths present from longest to shortest with one dict probe each, so a
router with thousands of routes costs at most 33 probes; results are cached per destination until
the table changes.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..wire.addr import ip_to_str, prefix_mask


@attrs.frozen
class Route:
    dst: int  # network address (host bits zero)
    prefixlen: int
    dev: Any  # the output Device
    gateway: int | None = None  # None: on-link (connected)
    kind: str = "static"  # "connected", "static" or "default"
    metric: int = 0
    src: int | None = None  # preferred source address (the device's address for connected)

    def __str__(self) -> str:
        dst = "default" if self.prefixlen == 0 else f"{ip_to_str(self.dst)}/{self.prefixlen}"
        via = f" via {ip_to_str(self.gateway)}" if self.gateway is not None else ""
        proto = " proto kernel scope link" if self.kind == "connected" else ""
        src = f" src {ip_to_str(self.src)}" if self.kind == "connected" and self.src else ""
        return f"{dst}{via} dev {self.dev.name}{proto}{src}"

    def nexthop(self, daddr: int) -> int:
        return daddr if self.gateway is None else self.gateway


class RouteTable:
    def __init__(self) -> None:
        self._by_len: dict[int, dict[int, Route]] = {}
        self._lengths: list[int] = []
        self._cache: dict[int, Route | None] = {}

    def add(self, route: Route) -> None:
        mask = prefix_mask(route.prefixlen)
        if route.dst & ~mask & 0xFFFFFFFF:
            raise ValueError(f"route {ip_to_str(route.dst)}/{route.prefixlen} has host bits set")
        table = self._by_len.setdefault(route.prefixlen, {})
        old = table.get(route.dst)
        if old is not None and old.metric <= route.metric:
            return  # keep the better (or first) route, as a lower metric wins in Linux
        table[route.dst] = route
        self._lengths = sorted(self._by_len, reverse=True)
        self._cache.clear()

    def remove(self, dst: int, prefixlen: int) -> None:
        table = self._by_len.get(prefixlen, {})
        table.pop(dst, None)
        if not table:
            self._by_len.pop(prefixlen, None)
        self._lengths = sorted(self._by_len, reverse=True)
        self._cache.clear()

    def lookup(self, daddr: int) -> Route | None:
        try:
            return self._cache[daddr]
        except KeyError:
            pass
        found = None
        for length in self._lengths:
            route = self._by_len[length].get(daddr & prefix_mask(length))
            if route is not None and route.dev.up:
                found = route
                break
        if len(self._cache) > 65536:
            self._cache.clear()
        self._cache[daddr] = found
        return found

    def invalidate(self) -> None:
        """Forget cached lookups (a device went up or down)."""
        self._cache.clear()

    def routes(self) -> list[Route]:
        """Every route, longest prefix first, like ``ip route`` sorted by specificity."""
        return [r for n in self._lengths for _, r in sorted(self._by_len[n].items())]
