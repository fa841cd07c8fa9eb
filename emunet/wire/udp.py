"""UDP header (RFC 768), with the IPv4 pseudo-header checksum.

     0      7 8     15 16    23 24    31
    +--------+--------+--------+--------+
    |     Source      |   Destination   |
    |      Port       |      Port       |
    +--------+--------+--------+--------+
    |                 |                 |
    |     Length      |    Checksum     |
    +--------+--------+--------+--------+
    |
    |          data octets ...
    +---------------- ...

The checksum covers the pseudo-header (source address, destination address, zero, protocol 17,
UDP length), the header and the data.  A computed checksum of 0 is sent as 0xFFFF, because 0 on
the wire means "no checksum" (RFC 768; udp_send_skb in Linux's net/ipv4/udp.c does the same).
``parse`` reports the wire checksum and never checks it: the stack does that with
``checksum.transport_checksum_ok(src, dst, 17, segment)``, as udp_rcv does.
"""

from __future__ import annotations

import struct

import attrs

from .checksum import internet_checksum, ones_sum, pseudo_header_sum
from .errors import MalformedPacket

IPPROTO_UDP = 17
UDP_HLEN = 8
UDP_MAX_LENGTH = 0xFFFF  # the length field counts header + data in 16 bits

_HEADER = struct.Struct(
    "!HHHH"  # source port, destination port, length (header + data), checksum
)


def _u16(_inst: object, attr: attrs.Attribute, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{attr.name} {value!r} does not fit 16 bits")


@attrs.frozen
class Udp:
    """A UDP header.  ``length`` and ``checksum`` hold wire values after ``parse``; ``build``
    computes both (so they take no part in equality)."""

    src_port: int = attrs.field(validator=_u16)
    dst_port: int = attrs.field(validator=_u16)
    length: int = attrs.field(default=0, eq=False, validator=_u16)
    checksum: int = attrs.field(default=0, eq=False, validator=_u16)

    @classmethod
    def parse(cls, data: bytes) -> tuple[Udp, bytes]:
        """Split a datagram into header and payload (trimmed to the length field).

        Raises only MalformedPacket: fewer than 8 bytes, length < 8 or length > len(data)
        (Linux's __udp4_lib_rcv drops those as short or truncated packets).
        """
        if len(data) < UDP_HLEN:
            raise MalformedPacket(f"UDP datagram of {len(data)} bytes is shorter than 8 bytes")
        src_port, dst_port, length, checksum = _HEADER.unpack_from(data)
        if length < UDP_HLEN:
            raise MalformedPacket(f"UDP length field {length} is below the 8-byte header")
        if length > len(data):
            raise MalformedPacket(f"UDP length field {length} exceeds the {len(data)} bytes held")
        return cls(src_port, dst_port, length, checksum), bytes(data[UDP_HLEN:length])

    def build(
        self,
        payload: bytes,
        src_ip: int,
        dst_ip: int,
        *,
        with_checksum: bool = True,
    ) -> bytes:
        """Header + payload with length and checksum computed over the pseudo-header.

        ``with_checksum=False`` sends checksum 0 ("none", like SO_NO_CHECK).  Raises ValueError
        when the datagram would not fit the 16-bit length field.
        """
        length = UDP_HLEN + len(payload)
        if length > UDP_MAX_LENGTH:
            raise ValueError(f"UDP datagram of {length} bytes does not fit the length field")
        if not with_checksum:
            return _HEADER.pack(self.src_port, self.dst_port, length, 0) + payload
        # The header is 8 bytes (even), so its sum and the payload's add up in ones' complement
        # without copying the payload into one buffer first.
        initial = pseudo_header_sum(src_ip, dst_ip, IPPROTO_UDP, length) + ones_sum(
            _HEADER.pack(self.src_port, self.dst_port, length, 0)
        )
        checksum = internet_checksum(payload, initial) or 0xFFFF
        return _HEADER.pack(self.src_port, self.dst_port, length, checksum) + payload
