"""IPv4 headers (RFC 791), checked on receive the way Linux's ip_rcv does (net/ipv4/ip_input.c).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version|  IHL  |Type of Service|          Total Length         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |         Identification        |Flags|      Fragment Offset    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Time to Live |    Protocol   |         Header Checksum       |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                       Source Address                          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Destination Address                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Options                    |    Padding    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

    Flags: bit 0 reserved (the "evil bit" of RFC 3514), bit 1 DF, bit 2 MF.

``parse`` rejects what ip_rcv drops as a header or length error (IpInHdrErrors /
IpInTruncatedPkts) and trims the payload to Total Length, but only *reports* a bad header
checksum in ``checksum_ok``: the IP layer decides what to count and drop.  Options are kept as raw
bytes; ``build`` computes Total Length and the header checksum.
"""

from __future__ import annotations

import struct

import attrs

from .checksum import internet_checksum
from .errors import MalformedPacket

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17

IPV4_MIN_HLEN = 20
IPV4_MAX_HLEN = 60
IPV4_MAX_OPTLEN = IPV4_MAX_HLEN - IPV4_MIN_HLEN
IPV4_MAX_LEN = 0xFFFF

IP_EVIL = 0x8000  # reserved flag bit (RFC 3514)
IP_DF = 0x4000  # don't fragment
IP_MF = 0x2000  # more fragments
IP_OFFSET = 0x1FFF  # fragment offset, in 8-byte units

# version/ihl, tos, total length, id, flags/fragment offset, ttl, protocol, checksum, src, dst
_HEADER = struct.Struct("!BBHHHBBHII")


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


def _to_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"expected bytes, got {type(value).__name__}")


@attrs.frozen
class Ipv4:
    """One IPv4 header.  Addresses are ``int``; ``frag_offset`` is in 8-byte units as on the wire.

    ``total_length``, ``checksum`` and ``checksum_ok`` describe the received header and take no
    part in equality; ``build`` ignores them and computes fresh values.
    """

    src: int = attrs.field(validator=_uint(32))
    dst: int = attrs.field(validator=_uint(32))
    proto: int = attrs.field(validator=_uint(8))
    ttl: int = attrs.field(default=64, validator=_uint(8))
    tos: int = attrs.field(default=0, validator=_uint(8))
    id: int = attrs.field(default=0, validator=_uint(16))
    df: bool = attrs.field(default=False, validator=_bool)
    mf: bool = attrs.field(default=False, validator=_bool)
    evil: bool = attrs.field(default=False, validator=_bool)
    frag_offset: int = attrs.field(default=0, validator=_uint(13))
    options: bytes = attrs.field(default=b"", converter=_to_bytes)
    total_length: int = attrs.field(default=0, eq=False, validator=_uint(16))
    checksum: int = attrs.field(default=0, eq=False, validator=_uint(16))
    checksum_ok: bool = attrs.field(default=True, eq=False, validator=_bool)

    @options.validator
    def _check_options(self, _attr: attrs.Attribute, value: bytes) -> None:
        if len(value) % 4 or len(value) > IPV4_MAX_OPTLEN:
            raise ValueError(
                f"IPv4 options must be a multiple of 4 bytes, at most 40, got {len(value)}"
            )

    @property
    def header_len(self) -> int:
        """Header length in bytes (20..60)."""
        return IPV4_MIN_HLEN + len(self.options)

    @property
    def ihl(self) -> int:
        """Header length in 32-bit words, the IHL field (5..15)."""
        return self.header_len >> 2

    @property
    def is_fragment(self) -> bool:
        """True for any fragment of a larger datagram (MF set or a non-zero offset)."""
        return self.mf or self.frag_offset != 0

    @classmethod
    def parse(cls, data: bytes) -> tuple[Ipv4, bytes]:
        """Split a packet into its header and payload; raises only MalformedPacket.

        The payload is trimmed to Total Length (link-layer padding dropped).
        """
        ip = cls._header_from(data)
        hlen = ip.header_len
        if ip.total_length < hlen:
            raise MalformedPacket(
                f"total length {ip.total_length} is below the header length {hlen}"
            )
        if ip.total_length > len(data):
            raise MalformedPacket(
                f"total length {ip.total_length} exceeds the {len(data)} bytes received"
            )
        return ip, bytes(data[hlen : ip.total_length])

    @classmethod
    def parse_header(cls, data: bytes) -> tuple[Ipv4, bytes]:
        """Parse only the header, without checking Total Length against the data.

        For a header that is known to be cut short, such as the one quoted in an ICMP error.
        Returns the header and every byte after it; raises only MalformedPacket (fewer than 20
        bytes, version != 4, IHL < 5, or a header longer than the data).
        """
        ip = cls._header_from(data)
        return ip, bytes(data[ip.header_len :])

    @classmethod
    def _header_from(cls, data: bytes) -> Ipv4:
        size = len(data)
        if size < IPV4_MIN_HLEN:
            raise MalformedPacket(f"packet of {size} bytes is shorter than the 20-byte header")
        (ver_ihl, tos, total_length, id_, flags_frag, ttl, proto, csum, src, dst) = (
            _HEADER.unpack_from(data)
        )
        version = ver_ihl >> 4
        if version != 4:
            raise MalformedPacket(f"IP version {version}, not 4")
        hlen = (ver_ihl & 0x0F) * 4
        if hlen < IPV4_MIN_HLEN:
            raise MalformedPacket(f"IHL {hlen // 4} is below the minimum 5")
        if hlen > size:
            raise MalformedPacket(f"header of {hlen} bytes is longer than the {size}-byte packet")
        header = bytes(data[:hlen])
        # Every value comes out of struct.unpack in range, and the options are a multiple of 4
        # bytes and at most 40: the validators could not fail, so skip them (they cost more
        # than the rest of parsing on the forwarding path).
        return _trusted(
            src,
            dst,
            proto,
            ttl,
            tos,
            id_,
            bool(flags_frag & IP_DF),
            bool(flags_frag & IP_MF),
            bool(flags_frag & IP_EVIL),
            flags_frag & IP_OFFSET,
            header[IPV4_MIN_HLEN:],
            total_length,
            csum,
            internet_checksum(header) == 0,
        )

    def with_ttl(self, ttl: int) -> Ipv4:
        """A copy with another TTL (ip_forward's decrement), without re-validating."""
        if not 0 <= ttl <= 0xFF:
            raise ValueError(f"ttl={ttl} does not fit 8 bits")
        return _trusted(
            *(getattr(self, name) for name in _FIELDS[:3]),
            ttl,
            *(getattr(self, name) for name in _FIELDS[4:]),
        )

    def build(self, payload: bytes = b"") -> bytes:
        """Header + payload, with Total Length and the header checksum computed."""
        hlen = self.header_len
        total_length = hlen + len(payload)
        if total_length > IPV4_MAX_LEN:
            raise ValueError(f"IPv4 packet of {total_length} bytes exceeds 65535")
        flags_frag = (
            (IP_EVIL if self.evil else 0)
            | (IP_DF if self.df else 0)
            | (IP_MF if self.mf else 0)
            | self.frag_offset
        )
        header = bytearray(hlen)
        _HEADER.pack_into(
            header,
            0,
            0x40 | (hlen >> 2),
            self.tos,
            total_length,
            self.id,
            flags_frag,
            self.ttl,
            self.proto,
            0,
            self.src,
            self.dst,
        )
        header[IPV4_MIN_HLEN:] = self.options
        csum = internet_checksum(header)
        header[10] = csum >> 8
        header[11] = csum & 0xFF
        return bytes(header) + bytes(payload)


_FIELDS = tuple(a.name for a in attrs.fields(Ipv4))
_new = object.__new__
_set = object.__setattr__


def _trusted(*values: object) -> Ipv4:
    """An Ipv4 from values known to be valid, in field order, without running validators."""
    ip = _new(Ipv4)
    for name, value in zip(_FIELDS, values, strict=True):
        _set(ip, name, value)
    return ip
