"""Network devices: the rx backlog drained in NAPI-style batches (netif_receive_skb), the qdisc
and transmitter (dev_queue_xmit, in :class:`emunet.fabric.link.TxQueue`), and statistics named
as ``ip -s link`` / struct rtnl_link_stats64 name them (net/core/dev.c).

The rx side is a trio task per device; everything else here is plain code called from the tasks
of the layers above.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from ..fabric.link import TxQueue
from ..wire.addr import BROADCAST_MAC, ip_to_str, mac_to_str, prefix_mask
from ..wire.ethernet import ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_ZLEN
from .task import Inbox

if TYPE_CHECKING:
    from .host import Host
    from .neigh import NeighTable

DEV_STATS = (
    "rx_packets", "rx_bytes", "rx_errors", "rx_dropped", "rx_length_errors",
    "rx_otherhost_dropped", "rx_nohandler", "tx_packets", "tx_bytes", "tx_errors",
    "tx_dropped", "tx_carrier_errors",
)  # fmt: skip


class Device:
    """An Ethernet interface of a host: ``host.devices["eth0"]``."""

    def __init__(self, host: Host, name: str, mac: bytes, mtu: int = 1500) -> None:
        self.host = host
        self.name = name
        self.label = f"{host.name}:{name}"
        self.mac = mac
        self.mtu = mtu
        self.up = True
        self.addresses: list[tuple[int, int]] = []  # (address, prefix length), primary first
        self.stats: Counter = Counter(dict.fromkeys(DEV_STATS, 0))
        self.backlog: Inbox[bytes] = Inbox(f"{self.label}:backlog")
        self.txq = TxQueue(self.label, self.stats, host.txqueuelen)
        self.neigh: NeighTable | None = None
        self._fwd_key = f"net.ipv4.conf.{name}.forwarding"

    def __repr__(self) -> str:
        return f"<Device {self.label} {mac_to_str(self.mac)}>"

    @property
    def forwarding(self) -> bool:
        return bool(self.host.sysctl[self._fwd_key])

    @property
    def primary(self) -> int | None:
        return self.addresses[0][0] if self.addresses else None

    def broadcasts(self) -> list[int]:
        return [a | (~prefix_mask(p) & 0xFFFFFFFF) for a, p in self.addresses if p < 31]

    def link_changed(self) -> None:
        self.host.fib.invalidate()

    def set_mtu(self, mtu: int) -> None:
        """``ip link set dev X mtu N`` (dev_set_mtu), with what the NETDEV_CHANGEMTU notifier
        does for IPv4 (fib_sync_mtu -> fib_nhc_update_mtu): the path MTUs learned for
        destinations routed through this device never exceed it (a locked one at or above it
        becomes it, unlocked), and one equal to the old MTU follows the new one.  Packets
        already queued were checked against the old MTU and are sent as they are; TCP
        connections routed here resynchronise their MSS (up or down) as tcp_current_mss
        does before their next send."""
        old = self.mtu
        self.mtu = mtu
        host = self.host
        for dst, entry in host.ip.pmtu.items():
            route = host.fib.lookup(dst)
            if route is None or route.dev is not self:
                continue
            if entry.locked:
                if mtu <= entry.mtu:
                    entry.mtu = mtu
                    entry.locked = False
            elif mtu < entry.mtu or entry.mtu == old:
                entry.mtu = mtu
        host.fib.invalidate()
        socks = list(host.tcp.socks.values())  # none before the network runs
        now = host.now() if socks else 0.0
        for sock in socks:
            rip = sock.key[2]
            route = host.ip.route_output(rip)
            if route is not None and route.dev is self:
                sock.conn.route_mtu_changed(host.ip.route_mtu(route, rip, now))

    # ----------------------------------------------------------------- receive
    def netif_rx(self, frame: bytes) -> None:
        """A frame arrives from the link: into the rx backlog, or dropped when it is full."""
        stats = self.stats
        stats["rx_packets"] += 1
        stats["rx_bytes"] += len(frame)
        if len(self.backlog) >= self.host.max_backlog:
            stats["rx_dropped"] += 1
            return
        self.backlog.put(frame)

    def receive(self, frame: bytes) -> None:
        """netif_receive_skb: Ethernet demultiplexing to ARP or IPv4."""
        if len(frame) < ETH_HLEN:
            self.stats["rx_length_errors"] += 1
            self.stats["rx_errors"] += 1
            return
        dst = frame[0:6]
        if dst != self.mac and not dst[0] & 1:
            self.stats["rx_otherhost_dropped"] += 1
            return
        ethertype = (frame[12] << 8) | frame[13]
        host = self.host
        if host.tracer is not None:
            _trace_frame(host, "netif_receive_skb", self.name, frame, ethertype)
        if ethertype == ETH_P_IP:
            host.ip_inbox.put((self, frame[ETH_HLEN:]))
        elif ethertype == ETH_P_ARP:
            host.neigh_inbox.put((self, frame))
        else:
            self.stats["rx_nohandler"] += 1

    async def rx_task(self) -> None:
        backlog = self.backlog
        budget = self.host.napi_weight
        receive = self.receive
        host = self.host
        while True:
            for frame in await backlog.get_batch(budget):
                try:
                    receive(frame)
                except Exception as exc:  # netif_receive_skb could not process it
                    host.layer_error("device rx", "rx_dropped", exc, self.stats)

    # ----------------------------------------------------------------- transmit
    def queue_xmit(self, frame: bytes) -> bool:
        """dev_queue_xmit: to the qdisc (tail drop when full); False when dropped."""
        if self.host.tracer is not None:
            _trace_frame(self.host, "dev_queue_xmit", self.name, frame, None, self.txq)
        if not self.up:
            self.stats["tx_dropped"] += 1
            return False
        return self.txq.enqueue(frame)

    def neigh_output(self, nexthop: int, packet: bytes, now: float, trace: object = None) -> bool:
        """neigh_resolve_output for an IPv4 packet leaving by this device; False when the
        device queue refused it."""
        host = self.host
        if host.tracer is not None:
            host.tracer.frame(
                now, host.name, "neigh_resolve_output", packet, self._neigh_state(nexthop)
            )
        if nexthop == 0xFFFFFFFF or nexthop in host.broadcast_addrs:
            header = BROADCAST_MAC + self.mac + b"\x08\x00"
            frame = header + packet
            if len(frame) < ETH_ZLEN:
                frame += bytes(ETH_ZLEN - len(frame))
            return self.queue_xmit(frame)
        assert self.neigh is not None
        ok = self.neigh.output(nexthop, packet, now)
        host.neigh_wakeup.at(self.neigh.poll_at())
        return ok

    def _neigh_state(self, nexthop: int) -> str:
        """For the tracer: the neighbour entry a packet meets (INCOMPLETE: it waits for ARP)."""
        if nexthop == 0xFFFFFFFF or nexthop in self.host.broadcast_addrs:
            return f"dev {self.name} broadcast"
        entry = None
        if self.neigh is not None:
            entry = next((e for e in self.neigh.entries() if e.ip == nexthop), None)
        state = "NONE: ARP request, packet queued" if entry is None else entry.state.name
        if entry is not None and entry.state.name in ("INCOMPLETE", "FAILED"):
            state += ": packet queued until resolved"
        return f"dev {self.name} nexthop {ip_to_str(nexthop)} {state}"

    def describe(self) -> str:
        addrs = " ".join(f"{ip_to_str(a)}/{p}" for a, p in self.addresses)
        return f"{self.name}: mtu {self.mtu} {mac_to_str(self.mac)} {addrs}"


class Loopback:
    """``lo``: packets a host sends to its own addresses come back up through here."""

    name = "lo"
    label = "lo"
    mtu = 65536
    up = True
    forwarding = False
    addresses: list[tuple[int, int]] = []

    def __init__(self, host: Host) -> None:
        self.host = host
        self.stats: Counter = Counter(dict.fromkeys(DEV_STATS, 0))

    def neigh_output(self, nexthop: int, packet: bytes, now: float, trace: object = None) -> bool:
        self.stats["tx_packets"] += 1
        self.stats["tx_bytes"] += len(packet)
        self.stats["rx_packets"] += 1
        self.stats["rx_bytes"] += len(packet)
        self.host.ip_inbox.put((self, packet))
        return True


def _trace_frame(
    host: Host, function: str, dev: str, frame: bytes, ethertype: int | None, txq: object = None
) -> None:
    """Record a frame's step for the tracer, keyed like its IPv4 packet or ARP message."""
    if ethertype is None:
        ethertype = (frame[12] << 8) | frame[13] if len(frame) >= ETH_HLEN else 0
    body = frame[ETH_HLEN:]
    queued = f", qdisc {len(txq)} queued" if txq is not None else ""  # type: ignore[arg-type]
    tracer = host.tracer
    assert tracer is not None
    now = host.now()
    if ethertype == ETH_P_ARP and len(body) >= 28:
        op = (body[6] << 8) | body[7]
        sender = int.from_bytes(body[14:18], "big")
        target = int.from_bytes(body[24:28], "big")
        what = "request who-has" if op == 1 else "reply" if op == 2 else f"op {op}"
        detail = (
            f"dev {dev} ARP {what} {ip_to_str(target)} tell {ip_to_str(sender)}"
            if op == 1
            else f"dev {dev} ARP {what} {ip_to_str(sender)} is-at {mac_to_str(body[8:14])}"
        )
        tracer.record(now, host.name, function, ("arp", sender, target), detail + queued)
    elif ethertype == ETH_P_IP:
        tracer.frame(now, host.name, function, body, f"dev {dev} IPv4 {len(frame)} bytes{queued}")
    else:
        tracer.record(now, host.name, function, (), f"dev {dev} ethertype {ethertype:#06x}")
