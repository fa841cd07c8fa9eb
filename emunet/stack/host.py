"""An emulated host: its devices and layers, each layer one long-lived trio task reading one inbox
(DESIGN.md section 2).

Tasks, named ``<host>/<layer>``: ``dev-rx:<if>`` and ``dev-tx:<if>`` per interface, ``neigh``,
``ip`` (with ICMP and reassembly timers), ``udp`` and ``tcp``.  User code runs in its own tasks and
enters through the socket layer (``udp_socket``, ``ping``, ``traceroute``); its sends go down the
stack synchronously, as a process's do in the kernel.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from ..wire.addr import ip_from_str, ip_to_str, prefix_mask
from ..wire.errors import MalformedPacket
from ..wire.icmp import ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED
from ..wire.ipv4 import Ipv4
from .dev import Device, Loopback
from .icmp import IcmpLayer
from .ip import Ipv4Layer
from .neigh import NeighEntry, NeighTable
from .route import Route, RouteTable
from .skb import SkBuff
from .snmp import Snmp
from .sysctl import DEFAULTS as SYSCTL_DEFAULTS
from .sysctl import Sysctl
from .task import Inbox, Wakeup
from .tcp.layer import TcpLayer
from .udp import UdpLayer

if TYPE_CHECKING:
    from ..trace import Tracer
    from .ping import Hop, PingResult
    from .sock import UdpSocket
    from .tcp.sock import SocketInfo, TcpListener, TcpStream


_NEIGH_KEYS = [k for k in SYSCTL_DEFAULTS if k.startswith("net.ipv4.neigh.default.")]


def parse_cidr(text: str) -> tuple[int, int]:
    """``"10.0.1.2/24"`` -> (address, 24); raises ValueError with the reason."""
    if not isinstance(text, str) or "/" not in text:
        raise ValueError(f"{text!r} is not an address with a prefix length (like 10.0.1.2/24)")
    addr, _, plen = text.partition("/")
    try:
        length = int(plen)
    except ValueError:
        raise ValueError(f"{text!r}: prefix length {plen!r} is not a number") from None
    if not 0 <= length <= 32:
        raise ValueError(f"{text!r}: prefix length {length} is not in 0..32")
    return ip_from_str(addr), length


_log = logging.getLogger("emunet")


class Host:
    """``net.host(name)``: an emulated Linux host (or router, which forwards)."""

    def __init__(self, name: str, *, kind: str = "host", seed: int, tracer_of: Any) -> None:
        self.name = name
        self.kind = kind
        self.rng = random.Random(seed)
        self._tracer_of = tracer_of  # the Network, whose .tracer is on or off
        self.snmp = Snmp()
        self.sysctl = Sysctl()
        if kind == "router":
            self.sysctl["net.ipv4.ip_forward"] = 1
        self.txqueuelen = 1000
        self.napi_weight = 64
        self.devices: dict[str, Device] = {}
        self.lo = Loopback(self)
        self.fib = RouteTable()
        self.local_addrs: set[int] = set()  # membership only, never iterated
        self.broadcast_addrs: set[int] = {0xFFFFFFFF}
        self.ip_inbox: Inbox[tuple[Any, bytes]] = Inbox(f"{name}/ip")
        self.neigh_inbox: Inbox[tuple[Device, bytes]] = Inbox(f"{name}/neigh")
        self.udp_inbox: Inbox[SkBuff] = Inbox(f"{name}/udp")
        self.tcp_inbox: Inbox[SkBuff] = Inbox(f"{name}/tcp")
        self.ip_wakeup = Wakeup()
        self.neigh_wakeup = Wakeup()
        self.tcp_wakeup = Wakeup()
        self.ip = Ipv4Layer(self)
        self.icmp = IcmpLayer(self)
        self.udp = UdpLayer(self)
        self.tcp = TcpLayer(self)
        self.tcp.wakeup_at = self.tcp_wakeup.at
        self.sysctl.listeners.append(self._sysctl_changed)
        self._pingers: dict[int, Any] = {}
        self._ping_ids = self.rng.randrange(0x10000)
        self.running = False
        self._errors_logged: set[str] = set()

    def __repr__(self) -> str:
        return f"<Host {self.name} ({self.kind})>"

    # ----------------------------------------------------------------- plumbing
    @property
    def tracer(self) -> Tracer | None:
        return self._tracer_of.tracer

    @property
    def max_backlog(self) -> int:
        return int(self.sysctl["net.core.netdev_max_backlog"])

    @staticmethod
    def now() -> float:
        return trio.current_time()

    def ip_wakeup_at(self, when: float | None) -> None:
        self.ip_wakeup.at(when)

    # ----------------------------------------------------------------- configuration
    def add_interface(self, name: str, address: str | None, mac: bytes, mtu: int = 1500) -> Device:
        if name in self.devices:
            raise ValueError(f"{self.name}: interface {name} already exists")
        dev = Device(self, name, mac, mtu)
        self.devices[name] = dev
        self.sysctl.add_interface(name)
        dev.neigh = NeighTable(
            mac=mac,
            addresses=lambda dev=dev: self._arp_addresses(dev),
            xmit=dev.queue_xmit,
            on_failed=self._neigh_failed,
            rng=random.Random(self.rng.getrandbits(64)),
            params=self._neigh_params(),
            is_broadcast=lambda ip: ip in self.broadcast_addrs,
        )
        if address is not None:
            self.add_address(name, address)
        return dev

    _NEIGH_SYSCTL = "net.ipv4.neigh.default."

    def _neigh_params(self) -> dict[str, float | int]:
        """The NeighTable parameters from the net.ipv4.neigh.default.* sysctls (ms -> s)."""
        out: dict[str, float | int] = {}
        for key in _NEIGH_KEYS:
            value = self.sysctl[key]
            name = key[len(self._NEIGH_SYSCTL) :]
            if name.endswith("_ms"):
                out[name[:-3]] = int(value) / 1000.0
            else:
                out[name] = value
        return out

    def _sysctl_changed(self, key: str, value: int | str) -> None:
        if key.startswith(self._NEIGH_SYSCTL):
            params = self._neigh_params()
            for dev in self.devices.values():
                dev.neigh.params.update(params)

    def add_address(self, ifname: str, cidr: str) -> None:
        dev = self.device(ifname)
        addr, plen = parse_cidr(cidr)
        if addr in self.local_addrs:
            raise ValueError(f"{self.name}: address {ip_to_str(addr)} is already assigned")
        dev.addresses.append((addr, plen))
        self.local_addrs.add(addr)
        for b in dev.broadcasts():
            self.broadcast_addrs.add(b)
        net = addr & prefix_mask(plen)
        self.fib.add(Route(net, plen, dev, None, "connected", 0, addr))

    def add_route(self, dst: str, via: str | None = None, dev: str | None = None) -> Route:
        """``ip route add``: dst is ``"default"`` or ``"10.0.2.0/24"``; via a gateway on a
        connected subnet, or dev for an on-link route."""
        if dst == "default":
            net, plen = 0, 0
        else:
            net, plen = parse_cidr(dst)
            if net & ~prefix_mask(plen) & 0xFFFFFFFF:
                raise ValueError(f"{self.name}: route {dst} has host bits set")
        gateway = ip_from_str(via) if via is not None else None
        if gateway is None and dev is None:
            raise ValueError(f"{self.name}: route {dst} needs a gateway (via) or a device")
        if dev is not None:
            out = self.device(dev)
        else:
            connected = self.fib.lookup(gateway)
            if connected is None or connected.gateway is not None:
                raise ValueError(
                    f"{self.name}: gateway {via} for {dst} is not on a connected subnet"
                )
            out = connected.dev
        route = Route(net, plen, out, gateway, "default" if plen == 0 else "static")
        self.fib.add(route)
        return route

    def device(self, name: str) -> Device:
        try:
            return self.devices[name]
        except KeyError:
            raise KeyError(f"{self.name} has no interface {name!r}") from None

    def source_address(self, route: Route) -> int:
        if route.src is not None:
            return route.src
        primary = route.dev.primary
        if primary is not None:
            return primary
        for dev in self.devices.values():
            if dev.primary is not None:
                return dev.primary
        return 0

    def _arp_addresses(self, dev: Device) -> list[int]:
        own = [a for a, _ in dev.addresses]
        others = [a for d in self.devices.values() if d is not dev for a, _ in d.addresses]
        return own + others

    # ----------------------------------------------------------------- inspection
    def nstat(self) -> dict[str, int]:
        """Every counter under its Linux name (zeros included), like ``nstat -az``."""
        return self.snmp.nstat()

    def neighbours(self) -> list[tuple[str, NeighEntry]]:
        """(interface, entry) for every neighbour entry, like ``ip neigh``."""
        return [(n, e) for n, d in self.devices.items() for e in d.neigh.entries()]

    def routes(self) -> list[Route]:
        """The routing table, like ``ip route`` (str() of a route prints as ip does)."""
        return self.fib.routes()

    def link_stats(self) -> dict[str, dict[str, int]]:
        """Per interface, the counters ``ip -s link`` shows."""
        return {n: dict(d.stats) for n, d in self.devices.items()}

    # ----------------------------------------------------------------- layer tasks
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                for name, dev in self.devices.items():
                    nursery.start_soon(dev.rx_task, name=f"{self.name}/dev-rx:{name}")
                    nursery.start_soon(dev.txq.run, name=f"{self.name}/dev-tx:{name}")
                nursery.start_soon(self._neigh_task, name=f"{self.name}/neigh")
                nursery.start_soon(self._ip_task, name=f"{self.name}/ip")
                nursery.start_soon(self._udp_task, name=f"{self.name}/udp")
                nursery.start_soon(self._tcp_task, name=f"{self.name}/tcp")
                self.running = True
                task_status.started()
        finally:
            # the network stopped: every stream still held fails at once, never hangs
            self.running = False
            for sock in list(self.tcp.socks.values()):
                sock.wake()
            for listener in list(self.tcp.listeners.values()):
                listener.wake()

    def layer_error(self, layer: str, counter: str, exc: Exception, stats: Any = None) -> None:
        """An input made a layer's code raise: count it as the drop Linux would count for a
        packet that layer cannot process, log it once per host and layer (with the
        traceback), and go on with the next input.  Never lets it out of the layer task."""
        (self.snmp if stats is None else stats)[counter] += 1
        if layer not in self._errors_logged:
            self._errors_logged.add(layer)
            _log.error(
                "host %s: %s layer: an input raised %r; counted as %s, later ones silently",
                self.name,
                layer,
                exc,
                counter,
                exc_info=exc,
            )

    def require_running(self, what: str) -> None:
        if not self.running:
            raise RuntimeError(
                f"{what} on host {self.name} needs a running network: "
                "call it inside `async with net.running():`"
            )

    async def _ip_task(self) -> None:
        inbox, wakeup, ip = self.ip_inbox, self.ip_wakeup, self.ip
        budget = self.napi_weight
        while True:
            batch = await wakeup.wait(inbox, budget)
            now = trio.current_time()
            for dev, data in batch:
                try:
                    ip.rcv(dev, data, now)
                except Exception as exc:  # ip_rcv could not process it: IpInDiscards
                    self.layer_error("ip", "IpInDiscards", exc)
            if wakeup.deadline <= now:
                try:
                    ip.run_timers(now)
                except Exception as exc:
                    self.layer_error("ip timers", "IpReasmFails", exc)
            wakeup.reset(ip.poll_at())

    async def _neigh_task(self) -> None:
        from ..wire.arp import Arp

        inbox, wakeup = self.neigh_inbox, self.neigh_wakeup
        while True:
            batch = await wakeup.wait(inbox, self.napi_weight)
            now = trio.current_time()
            for dev, frame in batch:
                try:
                    arp, _ = Arp.parse(frame[14:])
                except MalformedPacket:
                    dev.stats["rx_errors"] += 1
                    dev.stats["rx_length_errors"] += 1
                    continue
                if self.tracer is not None:
                    self.tracer.record(
                        now,
                        self.name,
                        "arp_rcv",
                        ("arp", arp.sender_ip, arp.target_ip),
                        f"op {arp.op} {ip_to_str(arp.sender_ip)} > {ip_to_str(arp.target_ip)}",
                    )
                try:
                    dev.neigh.receive(arp, frame[6:12], now, dst_mac=frame[0:6])
                except Exception as exc:  # arp_rcv could not process it: the device drops
                    self.layer_error("neigh", "rx_dropped", exc, dev.stats)
            soonest = math.inf
            for dev in self.devices.values():
                if wakeup.deadline <= now:
                    try:
                        dev.neigh.run_timers(now)
                    except Exception as exc:
                        self.layer_error("neigh timers", "tx_dropped", exc, dev.stats)
                when = dev.neigh.poll_at()
                if when is not None and when < soonest:
                    soonest = when
            wakeup.reset(None if soonest == math.inf else soonest)

    async def _udp_task(self) -> None:
        inbox, udp = self.udp_inbox, self.udp
        while True:
            batch = await inbox.get_batch(self.napi_weight)
            now = trio.current_time()
            for skb in batch:
                try:
                    udp.rcv(skb, now)
                except Exception as exc:  # __udp4_lib_rcv could not process it
                    self.layer_error("udp", "UdpInErrors", exc)

    async def _tcp_task(self) -> None:
        """tcp_v4_rcv for every segment, and the TCP timers (retransmit, delayed ACK, persist,
        keepalive, TIME-WAIT, SYN-ACK) when the earliest is due."""
        inbox, wakeup, tcp = self.tcp_inbox, self.tcp_wakeup, self.tcp
        while True:
            batch = await wakeup.wait(inbox, self.napi_weight)
            now = trio.current_time()
            for skb in batch:
                try:
                    tcp.rcv(skb, now)
                except Exception as exc:  # tcp_v4_rcv could not process it
                    self.layer_error("tcp", "TcpInErrs", exc)
            if wakeup.deadline <= now:
                try:
                    tcp.run_timers(now)
                except Exception as exc:
                    self.layer_error("tcp timers", "TcpExtTCPTimeouts", exc)
            wakeup.reset(tcp.poll_at())

    # ----------------------------------------------------------------- upcalls
    def udp_rcv(self, skb: SkBuff) -> None:
        self.udp_inbox.put(skb)

    def tcp_rcv(self, skb: SkBuff) -> None:
        self.tcp_inbox.put(skb)

    def tcp_err(self, offender: int, icmp: Any, inner: Ipv4, rest: bytes, now: float) -> None:
        self.tcp.err(offender, icmp, inner, rest, now)

    def _neigh_failed(self, packet: bytes) -> None:
        """Resolution failed: each queued packet draws ICMP host unreachable to its sender."""
        from ..wire.icmp import ICMP_DEST_UNREACH, ICMP_HOST_UNREACH

        try:
            ip, payload = Ipv4.parse(packet)
        except MalformedPacket:  # pragma: no cover - we built it
            return
        skb = SkBuff(ip, payload, None, packet, trace=self.tracer)
        self.icmp.send_error(skb, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0, trio.current_time())

    def ping_rcv(self, src: int, icmp: Any, data: bytes, now: float) -> None:
        pinger = self._pingers.get(icmp.id)
        if pinger is not None:
            pinger.reply(src, icmp.seq, data, now)

    def ping_err(self, offender: int, icmp: Any, inner: Ipv4, rest: bytes, now: float) -> None:
        if rest[0] != 8:  # the quoted packet was not an echo request
            return
        pinger = self._pingers.get((rest[4] << 8) | rest[5])
        if pinger is not None:
            if icmp.type == ICMP_DEST_UNREACH and icmp.code == ICMP_FRAG_NEEDED:
                self.ip.update_pmtu(inner.dst, icmp.next_hop_mtu, now)  # ping_err
            pinger.error(offender, icmp, now)

    # ----------------------------------------------------------------- user API
    def udp_socket(self, port: int = 0, *, recverr: bool = False, df: bool = False) -> UdpSocket:
        """A UDP socket bound to ``port`` (0: an ephemeral port) on every address."""
        from .sock import UdpSocket

        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 0xFFFF:
            raise ValueError(f"UDP port must be an int in 0..65535, got {port!r}")
        return UdpSocket(self, port, recverr=recverr, df=df)

    async def ping(
        self,
        dst: str,
        count: int = 3,
        *,
        interval: float | str = 1.0,
        size: int | str = 56,
        timeout: float | str = 10.0,
        ttl: int | None = None,
    ) -> PingResult:
        """Like ``ping -c count -i interval -s size -W timeout``: echo requests, one per
        interval; waits for outstanding replies after the last (2 x the longest RTT seen but at
        least one interval, or ``timeout`` when none came back)."""
        from ..topology.schema import PingExperiment, checked_options
        from .ping import ping

        options = checked_options(  # the topology files' checks (ValueError naming the option)
            PingExperiment, count=count, interval=interval, size=size, timeout=timeout, ttl=ttl
        )
        self.require_running("host.ping()")
        return await ping(self, dst, **options)

    async def traceroute(
        self,
        dst: str,
        *,
        max_hops: int = 30,
        queries: int = 1,
        wait: float | str = 5.0,
        port: int = 33434,
    ) -> list[Hop]:
        """Like Linux ``traceroute -q queries -w wait``: UDP probes with TTL 1, 2, ... to ports
        from 33434 up, until the destination answers port unreachable or max_hops."""
        from ..topology.schema import TracerouteExperiment, checked_options
        from .ping import traceroute

        options = checked_options(  # the topology files' checks (ValueError naming the option)
            TracerouteExperiment, max_hops=max_hops, queries=queries, wait=wait, port=port
        )
        self.require_running("host.traceroute()")
        return await traceroute(self, dst, **options)

    async def tcp_connect(self, address: str, port: int, **options: Any) -> TcpStream:
        """Open a TCP connection (a trio.abc.HalfCloseableStream).  Options: nodelay,
        congestion ("cubic"|"reno"), rcvbuf, sndbuf, keepalive.  Raises OSError with
        ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH or ENETUNREACH."""
        from .tcp.sock import tcp_connect

        self.require_running("host.tcp_connect()")
        return await tcp_connect(self, address, port, **options)

    async def tcp_listen(self, port: int, backlog: int = 128, **options: Any) -> TcpListener:
        """Listen on ``port`` (a trio.abc.Listener[TcpStream]); backlog is capped by
        net.core.somaxconn as Linux does.  Raises OSError EADDRINUSE."""
        from .tcp.sock import tcp_listen

        self.require_running("host.tcp_listen()")
        await trio.lowlevel.checkpoint()
        return tcp_listen(self, port, backlog, **options)

    def sockets(self) -> list[SocketInfo]:
        """Every TCP socket like ``ss -tani``: state, queues and, per connection, the TcpInfo
        (cwnd, ssthresh, rtt, retransmits)."""
        from .tcp.sock import sockets

        return sockets(self)

    def next_ping_id(self) -> int:
        for _ in range(0x10000):
            self._ping_ids = (self._ping_ids + 1) & 0xFFFF
            if self._ping_ids not in self._pingers:
                return self._ping_ids
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    def configure(self, sysctl: Mapping[str, int | str] | None = None) -> None:
        for key, value in (sysctl or {}).items():
            self.sysctl[key] = value
