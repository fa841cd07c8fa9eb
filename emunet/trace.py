"""Packet path tracing: while a network's tracer is on, every named step of the packet's way
(DESIGN.md section 1) records (virtual time, host, function, packet, detail).

A packet is identified across hosts by its IPv4 (source, destination, protocol, id); ARP
frames by ("arp", sender, target).  ``Tracer.path(key)`` returns the steps of one packet in
time order, which ``emunet trace`` prints host by host.
"""

from __future__ import annotations

import attrs

PacketKey = tuple


@attrs.frozen
class TraceRecord:
    time: float
    host: str
    function: str
    key: PacketKey
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.time * 1000:12.6f} ms  {self.host:<10} {self.function:<24} {self.detail}"


def ip_key(packet: bytes) -> PacketKey:
    """(src, dst, proto, id) of an IPv4 packet's bytes, or () when too short."""
    if len(packet) < 20:
        return ()
    return (
        int.from_bytes(packet[12:16], "big"),
        int.from_bytes(packet[16:20], "big"),
        packet[9],
        (packet[4] << 8) | packet[5],
    )


class Tracer:
    def __init__(self) -> None:
        self.records: list[TraceRecord] = []

    def record(
        self, now: float, host: str, function: str, key: PacketKey, detail: str = ""
    ) -> None:
        self.records.append(TraceRecord(now, host, function, key, detail))

    def frame(self, now: float, host: str, function: str, packet: bytes, detail: str = "") -> None:
        self.records.append(TraceRecord(now, host, function, ip_key(packet), detail))

    def path(self, key: PacketKey) -> list[TraceRecord]:
        return [r for r in self.records if r.key == key]

    def clear(self) -> None:
        self.records.clear()
