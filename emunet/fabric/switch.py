"""A learning bridge (net/bridge): learns source MACs per port, forwards known unicast out of one
port, floods broadcast, multicast and unknown unicast out of every other port, ages entries after
300 s (``ageing_time``) on a timer as br_fdb_cleanup does, whether or not they are looked up, and
learns at most ``max_learned`` entries (Linux's ``fdb_max_learned``; see FDB_MAX_LEARNED).  Each
port has its own egress queue onto its link; the forwarding task drains the ports' ingress in
batches.
"""

from __future__ import annotations

import math
from collections import Counter

import attrs
import trio

from ..stack.task import Inbox
from .link import TxQueue

AGEING_TIME = 300.0
# Linux 6.7+ has fdb_max_learned, 0 (no limit) by default, and relies on ageing alone.  An
# emulator must bound memory against a MAC flood, so we choose the size of a common hardware
# switch's MAC table; past it a source is not learned (its frames are still flooded) and
# ``learn_refused`` counts it.
FDB_MAX_LEARNED = 16384


@attrs.frozen
class FdbEntry:
    mac: bytes
    port: str
    updated: float


class SwitchPort:
    def __init__(self, switch: Switch, name: str) -> None:
        self.switch = switch
        self.name = name
        self.label = f"{switch.name}:{name}"
        self.stats: Counter = Counter()
        self.txq = TxQueue(self.label, self.stats)

    def netif_rx(self, frame: bytes) -> None:
        self.stats["rx_packets"] += 1
        self.stats["rx_bytes"] += len(frame)
        if len(self.switch.inbox) >= self.switch.backlog:
            self.stats["rx_dropped"] += 1
            return
        self.switch.inbox.put((self, frame))


class Switch:
    kind = "switch"

    def __init__(
        self,
        name: str,
        ageing_time: float = AGEING_TIME,
        backlog: int = 1000,
        max_learned: int = FDB_MAX_LEARNED,
    ) -> None:
        self.name = name
        self.ageing_time = ageing_time
        self.max_learned = max_learned
        self.backlog = backlog
        self.ports: dict[str, SwitchPort] = {}
        self.inbox: Inbox[tuple[SwitchPort, bytes]] = Inbox(f"{name}:bridge")
        # in order of last update, so that the oldest entry is first
        self._fdb: dict[bytes, tuple[SwitchPort, float]] = {}
        self.stats: Counter = Counter()  # flooded, forwarded, filtered, learn_refused

    def port(self, name: str) -> SwitchPort:
        if name not in self.ports:
            self.ports[name] = SwitchPort(self, name)
        return self.ports[name]

    def fdb(self) -> list[FdbEntry]:
        """The forwarding database, like ``bridge fdb show``."""
        return [FdbEntry(mac, p.name, t) for mac, (p, t) in sorted(self._fdb.items())]

    def forward(self, port: SwitchPort, frame: bytes, now: float) -> None:
        if len(frame) < 14:
            port.stats["rx_length_errors"] += 1
            port.stats["rx_errors"] += 1
            return
        dst = frame[0:6]
        src = frame[6:12]
        fdb = self._fdb
        if not src[0] & 1:  # never learn a group address
            if fdb.pop(src, None) is not None or len(fdb) < self.max_learned:
                fdb[src] = (port, now)
            else:
                self.stats["learn_refused"] += 1
        if not dst[0] & 1:
            entry = self._fdb.get(dst)
            if entry is not None and now - entry[1] < self.ageing_time:
                out = entry[0]
                if out is port:
                    self.stats["filtered"] += 1  # destination is on the port it came from
                    return
                self.stats["forwarded"] += 1
                out.txq.enqueue(frame)
                return
            if entry is not None:
                del self._fdb[dst]
        self.stats["flooded"] += 1
        for other in self.ports.values():  # insertion order: deterministic
            if other is not port:
                other.txq.enqueue(frame)

    def next_expiry(self) -> float:
        """When the oldest entry ages out (inf with an empty table)."""
        for _port, updated in self._fdb.values():
            return updated + self.ageing_time
        return math.inf

    def cleanup(self, now: float) -> None:
        """br_fdb_cleanup: forget every entry not refreshed for ``ageing_time``."""
        fdb = self._fdb
        while fdb:
            mac = next(iter(fdb))
            if now - fdb[mac][1] < self.ageing_time:
                break
            del fdb[mac]

    async def run(self) -> None:
        inbox = self.inbox
        while True:
            batch = await inbox.get_batch(deadline=self.next_expiry())
            now = trio.current_time()
            self.cleanup(now)
            for port, frame in batch:
                self.forward(port, frame, now)

    def tasks(self) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = [(f"{self.name}/bridge", self.run)]
        for port in self.ports.values():
            out.append((f"{self.name}/dev-tx:{port.name}", port.txq.run))
        return out
