"""Links: a full-duplex wire between two ports (a host's device or a switch port).

Each end has a :class:`TxQueue`: the sender's qdisc (pfifo, tail drop at ``queue`` frames,
counted as tx_dropped) and the transmitter that serializes one frame at a time onto its
direction of the link (net/sched/sch_generic.c, dev_queue_xmit).  The wire's verdict on each frame
(loss, duplication, corruption, reordering, delay) comes from the plain model in
:mod:`emunet.fabric.impair`; the link's delivery task hands each surviving frame to the far port at
its arrival time.  Frames are bytes end to end.  A pcap of the link records each frame when its
last bit leaves the sender (what tcpdump on the sending interface shows), both directions in one
file, with virtual timestamps.
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
    """A qdisc (pfifo, ``limit`` frames) and the transmitter that empties it onto a link."""

    def __init__(self, label: str, stats: Counter, limit: int = 1000) -> None:
        self.label = label
        self.stats = stats
        self.limit = limit
        self._queue: deque[bytes] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self.link: Link | None = None
        self._index = 0  # which direction of the link this end transmits on

    def __len__(self) -> int:
        return len(self._queue)

    def attach(self, link: Link, index: int) -> None:
        self.link = link
        self._index = index
        self.limit = link.params.queue

    def enqueue(self, frame: bytes) -> bool:
        """dev_queue_xmit: queue ``frame`` or drop it (tx_dropped) when the qdisc is full."""
        if len(self._queue) >= self.limit:
            self.stats["tx_dropped"] += 1
            return False
        self._queue.append(frame)
        if self._lot:
            self._lot.unpark()
        return True

    async def run(self) -> None:
        """The transmitter: one frame at a time, each waiting for its serialization to end."""
        queue = self._queue
        stats = self.stats
        sent = 0
        while True:
            if not queue:
                sent = 0
                await self._lot.park()
                continue
            frame = queue.popleft()
            link = self.link
            if link is None:
                stats["tx_carrier_errors"] += 1
                stats["tx_errors"] += 1
                continue
            direction = link.directions[self._index]
            start = now_ns()
            end = direction.start(len(frame), start)
            if end > start:
                await trio.sleep_until(end / NS)
                sent = 0
            else:
                sent += 1
                if sent >= BUDGET:
                    sent = 0
                    await trio.lowlevel.checkpoint()
            stats["tx_packets"] += 1
            stats["tx_bytes"] += len(frame)
            link.put_on_wire(self._index, frame, end)


@attrs.frozen
class LinkStats:
    """Counters of both directions: ``a_to_b`` from the first endpoint named, ``b_to_a`` back."""

    a_to_b: DirectionStatsSnapshot
    b_to_a: DirectionStatsSnapshot


class _Wire:
    """Frames in flight in one direction, delivered at their arrival times."""

    def __init__(self, dst: Port) -> None:
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
                self.scope.deadline = min(self.scope.deadline, arrival / NS)
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
            delivered = 0
            while heap and heap[0][0] <= now:
                _, _, frame = heapq.heappop(heap)
                self.dst.netif_rx(frame)
                delivered += 1
                if delivered >= BUDGET:
                    delivered = 0
                    await trio.lowlevel.checkpoint()
                    now = now_ns()


class Link:
    """A full-duplex link between ports ``a`` and ``b`` (``net.link("a:eth0", "b:eth0")``)."""

    def __init__(self, a: Port, b: Port, params: LinkParams, rng_ab: Any, rng_ba: Any) -> None:
        self.a = a
        self.b = b
        self.params = params
        self.directions = (Direction(params, rng_ab), Direction(params, rng_ba))
        self._wires = (_Wire(b), _Wire(a))
        self.pcap: PcapWriter | None = None
        a.txq.attach(self, 0)
        b.txq.attach(self, 1)

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
        """
        for direction in self.directions:
            direction.set(**changes)
        self.params = self.directions[0].params
        for port in (self.a, self.b):
            port.txq.limit = self.params.queue
            on_change = getattr(port, "link_changed", None)
            if on_change is not None:
                on_change()
        return self.params

    def put_on_wire(self, index: int, frame: bytes, end_ns: int) -> None:
        if self.pcap is not None:
            self.pcap.write(frame, end_ns)
        wire = self._wires[index]
        for arrival, data in self.directions[index].transmit(frame, end_ns):
            wire.push(arrival, data)

    def tasks(self) -> list[tuple[str, Any]]:
        return [
            (f"wire:{self.a.label}->{self.b.label}", self._wires[0].run),
            (f"wire:{self.b.label}->{self.a.label}", self._wires[1].run),
        ]
