"""Ethernet II frames (IEEE 802.3 with a type field), without preamble and FCS.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                  destination MAC (6 bytes)                    |
    +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                               |                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+       source MAC (6 bytes)    +
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           ethertype           |   payload (46..1500 bytes)    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

``build`` pads the frame to the 60-byte minimum as a NIC driver does; ``parse`` returns the
payload with any padding, and the layer above trims it by its own length field.
"""

from __future__ import annotations

import struct

import attrs

from .errors import MalformedPacket

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_HLEN = 14
ETH_ZLEN = 60  # minimum frame length without FCS
ETH_MIN_ETHERTYPE = 0x0600  # below this the field is an 802.3 length, not a type

_HEADER = struct.Struct("!6s6sH")  # destination, source, ethertype


def _mac(value: bytes) -> bytes:
    value = bytes(value)
    if len(value) != 6:
        raise ValueError(f"a MAC address is 6 bytes, got {len(value)}")
    return value


@attrs.frozen
class Ethernet:
    dst: bytes = attrs.field(converter=_mac)
    src: bytes = attrs.field(converter=_mac)
    ethertype: int = attrs.field()

    @ethertype.validator
    def _check_type(self, _attr: attrs.Attribute, value: int) -> None:
        if not 0 <= value <= 0xFFFF:
            raise ValueError(f"ethertype {value:#x} does not fit 16 bits")

    @classmethod
    def parse(cls, data: bytes) -> tuple[Ethernet, bytes]:
        """Split a frame into its header and payload; raises only MalformedPacket."""
        if len(data) < ETH_HLEN:
            raise MalformedPacket(f"frame of {len(data)} bytes is shorter than the 14-byte header")
        dst, src, ethertype = _HEADER.unpack_from(data)
        if ethertype < ETH_MIN_ETHERTYPE:
            raise MalformedPacket(f"802.3 length field {ethertype} where Ethernet II has a type")
        return cls(dst, src, ethertype), bytes(data[ETH_HLEN:])

    def build(self, payload: bytes = b"") -> bytes:
        frame = _HEADER.pack(self.dst, self.src, self.ethertype) + payload
        if len(frame) < ETH_ZLEN:
            frame += bytes(ETH_ZLEN - len(frame))
        return frame
