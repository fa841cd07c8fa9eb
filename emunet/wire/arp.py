"""ARP for IPv4 over Ethernet (RFC 826), the only form Linux's arp_rcv accepts on an Ethernet
device (net/ipv4/arp.c): hardware type 1, protocol type 0x0800, lengths 6 and 4.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     hardware type (1)         |    protocol type (0x0800)     |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    | hw addr len 6 | proto len 4   |     operation (1 req, 2 rep)  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                 sender hardware address (6 bytes)             |
    +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                               |  sender protocol address      |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    | (sender protocol address)     |                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
    |                 target hardware address (6 bytes)             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    target protocol address                    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

``parse`` accepts any operation code (the neighbour layer ignores those it does not handle, as
arp_process does) and returns the bytes after the 28-byte body, normally Ethernet padding.
"""

from __future__ import annotations

import struct

import attrs

from .errors import MalformedPacket

ARP_REQUEST = 1
ARP_REPLY = 2

ARPHRD_ETHER = 1
ARP_PTYPE_IP = 0x0800
ARP_LEN = 28

# hardware type, protocol type, hw addr len, proto addr len, operation,
# sender MAC, sender IP, target MAC, target IP
_BODY = struct.Struct("!HHBBH6sI6sI")


def _uint(bits: int):
    """An attrs validator: a plain ``int`` (not bool) in 0 .. 2**bits - 1."""
    top = (1 << bits) - 1

    def check(_inst: object, attr: attrs.Attribute, value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{attr.name} must be an int, got {type(value).__name__}")
        if not 0 <= value <= top:
            raise ValueError(f"{attr.name}={value} does not fit {bits} bits")

    return check


def _mac(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"a MAC address is bytes, got {type(value).__name__}")
    value = bytes(value)
    if len(value) != 6:
        raise ValueError(f"a MAC address is 6 bytes, got {len(value)}")
    return value


@attrs.frozen
class Arp:
    """One Ethernet/IPv4 ARP packet.  IPs are ``int``, MACs 6 ``bytes``."""

    op: int = attrs.field(validator=_uint(16))
    sender_mac: bytes = attrs.field(converter=_mac)
    sender_ip: int = attrs.field(validator=_uint(32))
    target_mac: bytes = attrs.field(converter=_mac)
    target_ip: int = attrs.field(validator=_uint(32))

    @classmethod
    def parse(cls, data: bytes) -> tuple[Arp, bytes]:
        """Split an Ethernet payload into the ARP body and what trails it; raises only
        MalformedPacket."""
        if len(data) < ARP_LEN:
            raise MalformedPacket(f"ARP packet of {len(data)} bytes is shorter than 28")
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _BODY.unpack_from(data)
        if htype != ARPHRD_ETHER:
            raise MalformedPacket(f"ARP hardware type {htype}, not Ethernet (1)")
        if ptype != ARP_PTYPE_IP:
            raise MalformedPacket(f"ARP protocol type {ptype:#06x}, not IPv4 (0x0800)")
        if hlen != 6 or plen != 4:
            raise MalformedPacket(f"ARP address lengths {hlen}/{plen}, not 6/4")
        return cls(op, sha, spa, tha, tpa), bytes(data[ARP_LEN:])

    def build(self) -> bytes:
        """The 28-byte ARP body (the Ethernet layer pads the frame)."""
        return _BODY.pack(
            ARPHRD_ETHER,
            ARP_PTYPE_IP,
            6,
            4,
            self.op,
            self.sender_mac,
            self.sender_ip,
            self.target_mac,
            self.target_ip,
        )
