"""ICMP messages (RFC 792, next-hop MTU from RFC 1191), as Linux's net/ipv4/icmp.c sends and
receives them.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |     Code      |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                 rest of header (``rest``)                     |
    |  echo:          Identifier    |       Sequence Number         |
    |  frag needed:   unused (0)    |       Next-Hop MTU            |
    |  other errors:            unused (0)                          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     data: echo payload, or for an error the offending         |
    |     Internet header + at least 64 bits of its data            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The checksum covers the whole message, header and data.  ``parse`` reports it in
``checksum_ok`` and never enforces it; ``build`` computes it.  ``quote`` cuts the offending packet
the way icmp_send does, and ``parse_quote`` reads it back on receipt (icmp_unreach).
"""

from __future__ import annotations

import struct

import attrs

from .checksum import internet_checksum
from .errors import MalformedPacket
from .ipv4 import Ipv4

ICMP_ECHOREPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_SOURCE_QUENCH = 4
ICMP_REDIRECT = 5
ICMP_ECHO = 8
ICMP_TIME_EXCEEDED = 11
ICMP_PARAMETERPROB = 12
NR_ICMP_TYPES = 18  # highest type Linux knows; higher types are treated as errors

# codes for ICMP_DEST_UNREACH
ICMP_NET_UNREACH = 0
ICMP_HOST_UNREACH = 1
ICMP_PROT_UNREACH = 2
ICMP_PORT_UNREACH = 3
ICMP_FRAG_NEEDED = 4
# codes for ICMP_TIME_EXCEEDED
ICMP_EXC_TTL = 0
ICMP_EXC_FRAGTIME = 1

ICMP_HLEN = 8
# Linux quotes as much of the offending packet as fits a 576-byte error: 576 - IP - ICMP header.
ICMP_QUOTE_LIMIT = 576 - 20 - ICMP_HLEN

_ERROR_TYPES = frozenset(
    {ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_REDIRECT, ICMP_TIME_EXCEEDED, ICMP_PARAMETERPROB}
)

_HEADER = struct.Struct("!BBHI")  # type, code, checksum, rest of header


def _uint(bits: int):
    """An attrs validator: a plain ``int`` (not bool) in 0 .. 2**bits - 1."""
    top = (1 << bits) - 1

    def check(_inst: object, attr: attrs.Attribute, value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{attr.name} must be an int, got {type(value).__name__}")
        if not 0 <= value <= top:
            raise ValueError(f"{attr.name}={value} does not fit {bits} bits")

    return check


def _bool(_inst: object, attr: attrs.Attribute, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{attr.name} must be a bool, got {type(value).__name__}")


def icmp_type_is_error(type_: int) -> bool:
    """True for the types Linux treats as errors (icmp_pointers[].error), and for every type
    above NR_ICMP_TYPES: no ICMP error is ever sent about one of these."""
    return type_ in _ERROR_TYPES or type_ > NR_ICMP_TYPES


@attrs.frozen
class Icmp:
    """One ICMP header.  ``rest`` is the 32-bit word after the checksum.

    ``checksum`` and ``checksum_ok`` describe a received message and take no part in equality.
    """

    type: int = attrs.field(validator=_uint(8))
    code: int = attrs.field(validator=_uint(8))
    rest: int = attrs.field(default=0, validator=_uint(32))
    checksum: int = attrs.field(default=0, eq=False, validator=_uint(16))
    checksum_ok: bool = attrs.field(default=True, eq=False, validator=_bool)

    @classmethod
    def echo(cls, type_: int, id: int, seq: int) -> Icmp:
        """An echo request (ICMP_ECHO) or reply (ICMP_ECHOREPLY)."""
        if type_ not in (ICMP_ECHO, ICMP_ECHOREPLY):
            raise ValueError(f"ICMP type {type_} is not an echo request or reply")
        for name, value in (("id", id), ("seq", seq)):
            if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
                raise ValueError(f"echo {name}={value!r} does not fit 16 bits")
        return cls(type_, 0, (id << 16) | seq)

    @classmethod
    def frag_needed(cls, mtu: int) -> Icmp:
        """Destination unreachable, fragmentation needed and DF set, with the next-hop MTU."""
        if not isinstance(mtu, int) or not 0 <= mtu <= 0xFFFF:
            raise ValueError(f"next-hop MTU {mtu!r} does not fit 16 bits")
        return cls(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu)

    @classmethod
    def dest_unreach(cls, code: int) -> Icmp:
        """Destination unreachable with ``code`` (use ``frag_needed`` for code 4)."""
        return cls(ICMP_DEST_UNREACH, code)

    @classmethod
    def time_exceeded(cls, code: int = ICMP_EXC_TTL) -> Icmp:
        """Time exceeded: TTL expired in transit (code 0) or reassembly timed out (code 1)."""
        return cls(ICMP_TIME_EXCEEDED, code)

    @property
    def id(self) -> int:
        """Echo identifier (the high 16 bits of ``rest``)."""
        return self.rest >> 16

    @property
    def seq(self) -> int:
        """Echo sequence number (the low 16 bits of ``rest``)."""
        return self.rest & 0xFFFF

    @property
    def next_hop_mtu(self) -> int:
        """Next-hop MTU of a frag-needed error (the low 16 bits of ``rest``)."""
        return self.rest & 0xFFFF

    @property
    def is_error(self) -> bool:
        """True when this message is an error (see ``icmp_type_is_error``)."""
        return icmp_type_is_error(self.type)

    @classmethod
    def parse(cls, data: bytes) -> tuple[Icmp, bytes]:
        """Split an ICMP message into header and data; raises only MalformedPacket."""
        if len(data) < ICMP_HLEN:
            raise MalformedPacket(f"ICMP message of {len(data)} bytes is shorter than 8")
        type_, code, csum, rest = _HEADER.unpack_from(data)
        icmp = cls(type_, code, rest, csum, internet_checksum(data) == 0)
        return icmp, bytes(data[ICMP_HLEN:])

    def build(self, payload: bytes = b"") -> bytes:
        """Header + payload with the checksum computed over both."""
        message = bytearray(_HEADER.pack(self.type, self.code, 0, self.rest))
        message += payload
        csum = internet_checksum(message)
        message[2] = csum >> 8
        message[3] = csum & 0xFF
        return bytes(message)


def quote(ip_packet: bytes, limit: int = ICMP_QUOTE_LIMIT) -> bytes:
    """The part of ``ip_packet`` an ICMP error about it carries: its first ``limit`` bytes.

    Linux's icmp_send quotes as much of the offending packet as fits a 576-byte error (or the
    route MTU if smaller): with the default limit of 576 - 20 - 8 = 548 bytes that is always at
    least the IP header + 8 bytes of data, which RFC 792 requires.  A caller routing the error
    over a smaller MTU, or adding IP options, passes a smaller ``limit``; Linux sends no error
    when that leaves no more than 20 bytes.  When ``ip_packet`` holds a sane IPv4 header it is
    first trimmed to its Total Length (as ip_rcv has trimmed the skb), so link padding is never
    quoted.  Never raises for odd bytes.
    """
    if limit < 0:
        raise ValueError(f"quote limit {limit} is negative")
    data = bytes(ip_packet)
    if len(data) >= 20:
        hlen = (data[0] & 0x0F) * 4
        total_length = (data[2] << 8) | data[3]
        if 20 <= hlen <= total_length < len(data):
            data = data[:total_length]
    return data[:limit]


def parse_quote(data: bytes) -> tuple[Ipv4, bytes]:
    """Read the packet quoted in a received ICMP error: its IP header and the quoted bytes of
    its payload (at least 8, the transport ports or ICMP header).

    Raises only MalformedPacket: when the header is not IPv4 with IHL >= 5, or fewer than
    header + 8 bytes are quoted (icmp_unreach / icmp_socket_deliver drop such errors).
    """
    ip, rest = Ipv4.parse_header(data)
    if len(rest) < 8:
        raise MalformedPacket(f"ICMP error quotes {len(rest)} bytes after the IP header, not 8")
    return ip, rest
