"""Links: a full-duplex wire between two ports (a host's device or a switch port).

Each end has a :class:`TxQueue`: the sender's qdisc (pfifo, tail drop at ``queue`` frames,
counted as tx_dropped) and the transmitter that serializes one frame at a time onto its
direction of the link (net/sched/sch_generic.c, dev_queue_xmit).  The wire's verdict on each frame
(loss, duplication, corruption, reordering, delay) comes from the plain model in
:mod:`emunet.fabric.impair` when the frame is queued; the sender's tx task hands each surviving
frame to the far port at its arrival time.  Frames are bytes end to end.  A pcap of the link
records each frame when its last bit leaves the sender (what tcpdump on the sending interface
shows), both directions in one file, in time order, with virtual timestamps.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from .impair import Direction, DirectionStatsSnapshot, LinkParams

if TYPE_CHECKING:
    from .pcap import PcapWriter

NS = 1_000_000_000
BUDGET = 64  # frames handled before a checkpoint (NAPI weight)


def now_ns() -> int:
    return round(trio.current_time() * NS)


class Port(Protocol):
    """Either end of a link: something with a name, a transmit queue, and a receive entry."""

    label: str
    txq: TxQueue

    def netif_rx(self, frame: bytes) -> None: ...


class TxQueue:
    """One end's qdisc (pfifo, ``limit`` frames) and transmitter onto its link direction.

    Serialization is scheduled when a frame is queued: it starts when the wire is free and
    ends ``length * 8 / bandwidth`` later; the frame counts against the qdisc until it starts.
    The wire's verdict (loss, duplication, corruption, delay) is decided then too, as netem
    decides at enqueue.  The device's tx task (:meth:`run`) then hands every surviving frame
    to the far end at its arrival time.  So a frame costs one timer event per hop, not three.
    """

    def __init__(self, label: str, stats: Counter, limit: int = 1000) -> None:
        self.label = label
        self.stats = stats
        self.limit = limit
        self._starts: deque[int] = deque()  # serialization start times of queued frames
        self.link: Link | None = None
        self._index = 0  # which direction of the link this end transmits on
        self._attached = trio.lowlevel.ParkingLot()

    def __len__(self) -> int:
        """Frames waiting in the qdisc now (not yet being serialized)."""
        self._expire(now_ns())
        return len(self._starts)

    def _expire(self, now: int) -> None:
        starts = self._starts
        while starts and starts[0] <= now:
            starts.popleft()

    def attach(self, link: Link, index: int) -> None:
        self.link = link
        self._index = index
        self.limit = link.params.queue
        self._attached.unpark_all()

    def enqueue(self, frame: bytes) -> bool:
        """dev_queue_xmit: queue ``frame`` or drop it (tx_dropped) when the qdisc is full."""
        link = self.link
        stats = self.stats
        if link is None:
            stats["tx_carrier_errors"] += 1
            stats["tx_errors"] += 1
            return False
        now = now_ns()
        self._expire(now)
        if len(self._starts) >= self.limit:
            stats["tx_dropped"] += 1
            return False
        direction = link.directions[self._index]
        end = direction.start(len(frame), now)
        begin = end - direction.serialization_ns(len(frame)) if direction.params.up else end
        if begin > now:
            self._starts.append(begin)
        stats["tx_packets"] += 1
        stats["tx_bytes"] += len(frame)
        link.put_on_wire(self._index, frame, end)
        return True

    async def run(self) -> None:
        """The transmitter: delivers this end's frames at their arrival times."""
        while self.link is None:
            await self._attached.park()
        await self.link._wires[self._index].run()


def check_mtu_settable(ports: tuple[Any, ...], mtu: int) -> None:
    """Refuse an MTU that an end cannot take now: an open TAP device (its Linux side's MTU is
    set when it opens)."""
    for port in ports:
        if getattr(port, "is_open", False) and getattr(port, "mtu", mtu) != mtu:
            raise ValueError(
                f"mtu: {port.label} is an open TAP device; its MTU is set when it opens"
            )


def apply_mtu(ports: tuple[Any, ...], mtu: int) -> None:
    """Give every end that has an MTU (a host's device, a TAP port) the link's ``mtu``."""
    for port in ports:
        set_mtu = getattr(port, "set_mtu", None)
        if set_mtu is not None:
            set_mtu(mtu)
        elif hasattr(port, "mtu"):
            port.mtu = mtu


@attrs.frozen
class LinkStats:
    """Counters of both directions: ``a_to_b`` from the first endpoint named, ``b_to_a`` back."""

    a_to_b: DirectionStatsSnapshot
    b_to_a: DirectionStatsSnapshot


class _Wire:
    """Frames in flight in one direction, delivered at their arrival times."""

    def __init__(self, link: Link, dst: Port) -> None:
        self.link = link
        self.dst = dst
        self.heap: list[tuple[int, int, bytes]] = []
        self.seq = 0
        self.lot = trio.lowlevel.ParkingLot()
        self.scope: trio.CancelScope | None = None

    def push(self, arrival: int, frame: bytes) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (arrival, self.seq, frame))
        if self.heap[0][0] == arrival:
            if self.scope is not None:
                if arrival / NS < self.scope.deadline:
                    self.scope.deadline = arrival / NS
            elif self.lot:
                self.lot.unpark()

    async def run(self) -> None:
        heap = self.heap
        while True:
            if not heap:
                await self.lot.park()
                continue
            first = heap[0][0]
            if first > now_ns():
                with trio.CancelScope(deadline=first / NS) as scope:
                    self.scope = scope
                    await trio.sleep_forever()
                self.scope = None
            now = now_ns()
            capture = self.link._capture
            if capture is not None:
                capture.flush(now)  # a frame is in the pcap by the time it arrives
            delivered = 0
            while heap and heap[0][0] <= now:
                _, _, frame = heapq.heappop(heap)
                self.dst.netif_rx(frame)
                delivered += 1
                if delivered >= BUDGET:
                    delivered = 0
                    await trio.lowlevel.checkpoint()
                    now = now_ns()


class _Capture:
    """A link's pcap, written in time order although frames are scheduled ahead of time."""

    def __init__(self, writer: PcapWriter) -> None:
        self.writer = writer
        self.heap: list[tuple[int, int, bytes]] = []
        self.seq = 0

    def add(self, when: int, frame: bytes) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (when, self.seq, frame))

    def flush(self, upto: int | None = None) -> None:
        heap = self.heap
        while heap and (upto is None or heap[0][0] <= upto):
            when, _, frame = heapq.heappop(heap)
            self.writer.write(frame, when)


class Link:
    """A full-duplex link between ports ``a`` and ``b`` (``net.link("a:eth0", "b:eth0")``)."""

    def __init__(self, a: Port, b: Port, params: LinkParams, rng_ab: Any, rng_ba: Any) -> None:
        self.a = a
        self.b = b
        self.params = params
        self.directions = (Direction(params, rng_ab), Direction(params, rng_ba))
        self._wires = (_Wire(self, b), _Wire(self, a))
        self._capture: _Capture | None = None
        a.txq.attach(self, 0)
        b.txq.attach(self, 1)

    @property
    def pcap(self) -> PcapWriter | None:
        return self._capture.writer if self._capture is not None else None

    @pcap.setter
    def pcap(self, writer: PcapWriter | None) -> None:
        if self._capture is not None:
            self._capture.flush()
        self._capture = _Capture(writer) if writer is not None else None

    def flush_pcap(self) -> None:
        """Write every frame captured so far (at the end of a run)."""
        if self._capture is not None:
            self._capture.flush()

    @property
    def name(self) -> str:
        return f"{self.a.label}<->{self.b.label}"

    def __repr__(self) -> str:
        return f"<Link {self.name}>"

    @property
    def up(self) -> bool:
        return self.params.up

    @property
    def stats(self) -> LinkStats:
        return LinkStats(self.directions[0].stats.snapshot(), self.directions[1].stats.snapshot())

    def set(self, **changes: Any) -> LinkParams:
        """Change impairments at run time, both directions: ``link.set(loss="5%", up=False)``.

        Units as in topology files.  Frames already in flight keep their arrival times.
        ``mtu`` is applied to the interface at each end as ``ip link set dev X mtu N`` would
        (:meth:`emunet.stack.dev.Device.set_mtu`; a switch port has no MTU of its own).  The
        changes are checked first: a bad one raises ``ValueError`` and changes nothing.
        """
        params = attrs.evolve(self.params, **changes)
        if "mtu" in changes:
            check_mtu_settable((self.a, self.b), params.mtu)
        for direction in self.directions:
            direction.params = params
        self.params = params
        if "mtu" in changes:
            apply_mtu((self.a, self.b), params.mtu)
        for port in (self.a, self.b):
            port.txq.limit = self.params.queue
            on_change = getattr(port, "link_changed", None)
            if on_change is not None:
                on_change()
        return self.params

    def put_on_wire(self, index: int, frame: bytes, end_ns: int) -> None:
        """A frame whose last bit leaves at ``end_ns``: capture it, then let the wire decide."""
        capture = self._capture
        if capture is not None:
            capture.flush(now_ns())
            capture.add(end_ns, frame)
        wire = self._wires[index]
        for arrival, data in self.directions[index].transmit(frame, end_ns):
            wire.push(arrival, data)

    def tasks(self) -> list[tuple[str, Any]]:
        """None: each end's tx task (the device's dev-tx) delivers its direction."""
        return []
