"""The in-host packet record, after Linux's ``struct sk_buff``.

Between hosts a packet is bytes; inside a host it travels as an :class:`SkBuff` holding the parsed
IPv4 header, the layer-4 bytes, the device it came in on and, while tracing is on, the list of
(virtual time, host, function) steps,
recorded in the network's tracer it has taken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ..trace import Tracer
    from ..wire.ipv4 import Ipv4


@attrs.define(slots=True)
class SkBuff:
    ip: Ipv4
    payload: bytes  # the IPv4 payload (layer-4 header and data), trimmed to tot_len
    dev: Any = None  # the input Device, None for locally generated packets
    raw: bytes | None = None  # the whole IPv4 packet as received, where it is at hand
    src_mac: bytes | None = None
    trace: Tracer | None = None  # the network's tracer while tracing is on

    def note(self, now: float, host: str, function: str, detail: str = "") -> None:
        """Record a step of the packet's way (does nothing unless tracing is on)."""
        if self.trace is not None:
            ip = self.ip
            self.trace.record(now, host, function, (ip.src, ip.dst, ip.proto, ip.id), detail)
