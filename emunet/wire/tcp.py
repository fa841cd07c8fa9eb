"""TCP header and options (RFC 9293 section 3.1; options from RFC 9293, 7323 and 2018).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          Source Port          |       Destination Port        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                        Sequence Number                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Acknowledgment Number                      |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Data |     |N|C|E|U|A|P|R|S|F|                               |
    | Offset| Rsv |S|W|C|R|C|S|S|Y|I|            Window             |
    |       |     | |R|E|G|K|H|T|N|N|                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           Checksum            |         Urgent Pointer        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Options (0..40 bytes)                      |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                             Data                              :
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

RFC 9293 shows a 4-bit reserved field; its low bit is the historic NS bit of RFC 3540.
``Tcp.flags`` is the low 12 bits of the 16-bit word at offset 12: FIN..CWR, NS (0x100) and the
three remaining reserved bits (0xE00), kept so that parsing and building lose nothing.

Options (kind, length):  EOL (0) ends the list; NOP (1); MSS (2, 4); window scale (3, 3,
RFC 7323); SACK-permitted (4, 2, RFC 2018); SACK (5, 2 + 8n, n = 1..4, RFC 2018); timestamps
(8, 10, RFC 7323).  Other kinds are kept as ``UnknownOption(kind, data)``.

Options are parsed leniently, as Linux's tcp_parse_options (net/ipv4/tcp_input.c) does, and
never raise:

- EOL ends the list; it and everything after it are dropped (``build`` pads with EOL again).
- A known kind with a length other than its own is kept as ``UnknownOption`` (Linux skips it).
- Where Linux stops parsing (a kind byte with no room for a length byte, a length below 2, or
  an option running past the end of the option area), the bytes from that kind byte to the end
  are kept verbatim as ``UnparsedOptions(data)`` and ``build`` emits them unchanged.  So every
  header with a 4-byte-aligned option area survives ``build(parse(x))`` intact, malformed
  options included, as long as it has no bytes after an EOL beyond the padding to 4.

Whether an option counts (MSS only on SYN, window scale clamped to 14, ...) is for the TCP
layer to decide: this module reports what is on the wire.
"""

from __future__ import annotations

import struct
from typing import ClassVar, TypeVar

import attrs

from .checksum import internet_checksum, ones_sum, pseudo_header_sum
from .errors import MalformedPacket

IPPROTO_TCP = 6

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80
NS = 0x100  # RFC 3540 (historic): the low bit of the reserved field, byte 12 bit 0
RESERVED_FLAGS = 0xE00  # the other three reserved bits, byte 12 bits 1-3
FLAGS_MASK = 0xFFF

TCP_HLEN = 20  # header without options
TCP_MAX_HLEN = 60  # data offset is 4 bits of 32-bit words
TCP_MAX_OPTIONS = TCP_MAX_HLEN - TCP_HLEN

TCPOPT_EOL = 0
TCPOPT_NOP = 1
TCPOPT_MSS = 2
TCPOPT_WINDOW = 3
TCPOPT_SACK_PERM = 4
TCPOPT_SACK = 5
TCPOPT_TIMESTAMP = 8

TCPOLEN_MSS = 4
TCPOLEN_WINDOW = 3
TCPOLEN_SACK_PERM = 2
TCPOLEN_SACK_BASE = 2
TCPOLEN_SACK_PERBLOCK = 8
TCPOLEN_TIMESTAMP = 10
TCP_MAX_SACK_BLOCKS = 4  # (40 - 2) // 8

_HEADER = struct.Struct(
    "!HHIIHHHH"  # source port, destination port, sequence number, acknowledgment number,
    # data offset (4 bits) | reserved (3) | NS CWR ECE URG ACK PSH RST SYN FIN (9),
    # window, checksum, urgent pointer
)
_MSS = struct.Struct("!BBH")  # kind 2, length 4, maximum segment size
_WINDOW = struct.Struct("!BBB")  # kind 3, length 3, shift count
_TIMESTAMP = struct.Struct("!BBII")  # kind 8, length 10, TSval, TSecr
_SACK_BASE = struct.Struct("!BB")  # kind 5, length 2 + 8n; then n (left, right) edge pairs
_U16 = struct.Struct("!H")
_U32_PAIR = struct.Struct("!II")

_FLAG_LETTERS = ((FIN, "F"), (SYN, "S"), (RST, "R"), (PSH, "P"), (URG, "U"), (ECE, "E"), (CWR, "W"))


def _check_range(bits: int):
    limit = (1 << bits) - 1

    def check(_inst: object, attr: attrs.Attribute, value: int) -> None:
        if not isinstance(value, int) or not 0 <= value <= limit:
            raise ValueError(f"{attr.name} {value!r} does not fit {bits} bits")

    return check


_u8 = _check_range(8)
_u16 = _check_range(16)
_u32 = _check_range(32)
_flags12 = _check_range(12)


# --- options -------------------------------------------------------------------------------


@attrs.frozen
class Nop:
    """No-operation (kind 1): one byte, used to align the next option."""

    kind: ClassVar[int] = TCPOPT_NOP

    def build(self) -> bytes:
        return b"\x01"


@attrs.frozen
class Mss:
    """Maximum segment size (kind 2, length 4, RFC 9293 section 3.7.1)."""

    kind: ClassVar[int] = TCPOPT_MSS
    mss: int = attrs.field(validator=_u16)

    def build(self) -> bytes:
        return _MSS.pack(TCPOPT_MSS, TCPOLEN_MSS, self.mss)


@attrs.frozen
class WindowScale:
    """Window scale (kind 3, length 3, RFC 7323 section 2).  ``shift`` is the wire value;
    Linux clamps shifts above 14 when it uses them."""

    kind: ClassVar[int] = TCPOPT_WINDOW
    shift: int = attrs.field(validator=_u8)

    def build(self) -> bytes:
        return _WINDOW.pack(TCPOPT_WINDOW, TCPOLEN_WINDOW, self.shift)


@attrs.frozen
class SackPermitted:
    """SACK-permitted (kind 4, length 2, RFC 2018 section 2)."""

    kind: ClassVar[int] = TCPOPT_SACK_PERM

    def build(self) -> bytes:
        return b"\x04\x02"


def _sack_blocks(blocks: object) -> tuple[tuple[int, int], ...]:
    return tuple((left, right) for left, right in blocks)  # type: ignore[attr-defined]


@attrs.frozen
class Sack:
    """SACK (kind 5, length 2 + 8n, RFC 2018 section 3): n = 1..4 blocks of
    (left edge, right edge), sequence numbers of the first byte of a block and of the byte
    just past it."""

    kind: ClassVar[int] = TCPOPT_SACK
    blocks: tuple[tuple[int, int], ...] = attrs.field(converter=_sack_blocks)

    @blocks.validator
    def _check_blocks(self, _attr: attrs.Attribute, value: tuple[tuple[int, int], ...]) -> None:
        if not 1 <= len(value) <= TCP_MAX_SACK_BLOCKS:
            raise ValueError(f"a SACK option holds 1..4 blocks, got {len(value)}")
        for left, right in value:
            if not (0 <= left <= 0xFFFFFFFF and 0 <= right <= 0xFFFFFFFF):
                raise ValueError(f"SACK block ({left!r}, {right!r}) does not fit 32 bits")

    def build(self) -> bytes:
        size = TCPOLEN_SACK_BASE + TCPOLEN_SACK_PERBLOCK * len(self.blocks)
        parts = [_SACK_BASE.pack(TCPOPT_SACK, size)]
        parts.extend(_U32_PAIR.pack(left, right) for left, right in self.blocks)
        return b"".join(parts)


@attrs.frozen
class Timestamps:
    """Timestamps (kind 8, length 10, RFC 7323 section 3): TSval and TSecr."""

    kind: ClassVar[int] = TCPOPT_TIMESTAMP
    tsval: int = attrs.field(validator=_u32)
    tsecr: int = attrs.field(validator=_u32)

    def build(self) -> bytes:
        return _TIMESTAMP.pack(TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP, self.tsval, self.tsecr)


@attrs.frozen
class UnknownOption:
    """Any other kind/length/data option, and a known kind whose length is not its own (Linux
    skips those).  Built back as kind, 2 + len(data), data."""

    kind: int = attrs.field()
    data: bytes = attrs.field(default=b"", converter=bytes)

    @kind.validator
    def _check_kind(self, _attr: attrs.Attribute, value: int) -> None:
        if not isinstance(value, int) or not 2 <= value <= 255:
            raise ValueError(f"option kind {value!r} is not in 2..255 (0 and 1 have no length)")

    @data.validator
    def _check_data(self, _attr: attrs.Attribute, value: bytes) -> None:
        if len(value) > 253:
            raise ValueError(f"option data of {len(value)} bytes does not fit the length byte")

    def build(self) -> bytes:
        return bytes((self.kind, 2 + len(self.data))) + self.data


@attrs.frozen
class UnparsedOptions:
    """The bytes where Linux's parser gives up (a kind byte without a length byte, a length
    below 2, or an option running past the end) up to the end of the option area.  Kept
    verbatim so that the header can be rebuilt exactly; it can only be the last option."""

    kind: ClassVar[None] = None
    data: bytes = attrs.field(converter=bytes)

    @data.validator
    def _check_data(self, _attr: attrs.Attribute, value: bytes) -> None:
        if not value:
            raise ValueError("UnparsedOptions needs at least one byte")

    def build(self) -> bytes:
        return self.data


TcpOption = (
    Nop | Mss | WindowScale | SackPermitted | Sack | Timestamps | UnknownOption | UnparsedOptions
)
_OPTION_TYPES = frozenset(
    (Nop, Mss, WindowScale, SackPermitted, Sack, Timestamps, UnknownOption, UnparsedOptions)
)
_NOP = Nop()
_SACK_PERM = SackPermitted()

_Opt = TypeVar("_Opt")


def _decode(kind: int, size: int, body: bytes) -> TcpOption:
    """One option whose length byte ``size`` is sane; the wrong length for a known kind makes
    it an UnknownOption, as Linux ignores it."""
    if kind == TCPOPT_MSS and size == TCPOLEN_MSS:
        return Mss(_U16.unpack(body)[0])
    if kind == TCPOPT_WINDOW and size == TCPOLEN_WINDOW:
        return WindowScale(body[0])
    if kind == TCPOPT_SACK_PERM and size == TCPOLEN_SACK_PERM:
        return _SACK_PERM
    if kind == TCPOPT_TIMESTAMP and size == TCPOLEN_TIMESTAMP:
        return Timestamps(*_U32_PAIR.unpack(body))
    if kind == TCPOPT_SACK:
        count, extra = divmod(size - TCPOLEN_SACK_BASE, TCPOLEN_SACK_PERBLOCK)
        if extra == 0 and 1 <= count <= TCP_MAX_SACK_BLOCKS:
            return Sack(tuple(_U32_PAIR.iter_unpack(body)))
    return UnknownOption(kind, body)


def parse_options(raw: bytes) -> tuple[TcpOption, ...]:
    """Decode an option area (any length) leniently, like tcp_parse_options; never raises."""
    raw = bytes(raw)
    end = len(raw)
    options: list[TcpOption] = []
    i = 0
    while i < end:
        kind = raw[i]
        if kind == TCPOPT_EOL:
            break
        if kind == TCPOPT_NOP:
            options.append(_NOP)
            i += 1
            continue
        # Linux: no room for a length byte, a "silly" length below 2, or a partial option
        # ends parsing.  We keep the rest of the area as it is.
        size = raw[i + 1] if i + 1 < end else 0
        if size < 2 or size > end - i:
            options.append(UnparsedOptions(raw[i:]))
            break
        options.append(_decode(kind, size, raw[i + 2 : i + size]))
        i += size
    return tuple(options)


def build_options(opts: tuple[TcpOption, ...] | list[TcpOption]) -> bytes:
    """Encode options in order and pad with EOL (zero) bytes to a multiple of 4."""
    last = len(opts) - 1
    for index, opt in enumerate(opts):
        if type(opt) not in _OPTION_TYPES:
            raise TypeError(f"{opt!r} is not a TCP option")
        if type(opt) is UnparsedOptions and index != last:
            raise ValueError("UnparsedOptions can only be the last option")
    raw = b"".join([opt.build() for opt in opts])
    pad = -len(raw) % 4
    return raw + bytes(pad) if pad else raw


def flags_to_str(flags: int) -> str:
    """tcpdump's notation: ``S`` SYN, ``F`` FIN, ``R`` RST, ``P`` PSH, ``U`` URG, ``E`` ECE,
    ``W`` CWR, ``N`` NS, ``.`` ACK (last); ``none`` when no flag is set."""
    out = "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit)
    if flags & NS:
        out += "N"
    if flags & ACK:
        out += "."
    return out or "none"


# --- header --------------------------------------------------------------------------------


@attrs.frozen
class Tcp:
    """A TCP header.  ``checksum`` holds the wire value after ``parse``; ``build`` computes it
    (so it takes no part in equality).  ``header_len`` follows from the options, padded to 4."""

    src_port: int = attrs.field(validator=_u16)
    dst_port: int = attrs.field(validator=_u16)
    seq: int = attrs.field(validator=_u32)
    ack: int = attrs.field(validator=_u32)
    flags: int = attrs.field(validator=_flags12)
    window: int = attrs.field(validator=_u16)
    urgent: int = attrs.field(default=0, validator=_u16)
    options: tuple[TcpOption, ...] = attrs.field(default=(), converter=tuple)
    checksum: int = attrs.field(default=0, eq=False, validator=_u16)
    # The encoded, padded options, computed once when the header is made.
    _raw_options: bytes = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        raw = build_options(self.options)
        if len(raw) > TCP_MAX_OPTIONS:
            raise ValueError(f"options take {len(raw)} bytes, more than the 40 a header holds")
        object.__setattr__(self, "_raw_options", raw)

    @property
    def header_len(self) -> int:
        """Header length in bytes, options and padding included (20..60)."""
        return TCP_HLEN + len(self._raw_options)

    @property
    def data_offset(self) -> int:
        """Header length in 32-bit words, as in the data offset field."""
        return self.header_len >> 2

    def end_seq(self, payload_len: int) -> int:
        """SEG.SEQ + SEG.LEN (RFC 9293 3.4): the sequence number after this segment, where SYN
        and FIN each occupy one, modulo 2**32."""
        seg_len = payload_len + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)
        return (self.seq + seg_len) & 0xFFFFFFFF

    def find_option(self, cls: type[_Opt]) -> _Opt | None:
        """The first option of type ``cls``, or None."""
        for opt in self.options:
            if type(opt) is cls:
                return opt  # type: ignore[return-value]
        return None

    @classmethod
    def parse(cls, data: bytes) -> tuple[Tcp, bytes]:
        """Split a segment into header and payload.

        Raises only MalformedPacket: fewer than 20 bytes, a data offset below 5, or a header
        longer than the data (Linux's tcp_v4_rcv drops those).  Options never raise.
        """
        if len(data) < TCP_HLEN:
            raise MalformedPacket(f"TCP segment of {len(data)} bytes is shorter than 20 bytes")
        src_port, dst_port, seq, ack, off_flags, window, checksum, urgent = _HEADER.unpack_from(
            data
        )
        hlen = (off_flags >> 12) * 4
        if hlen < TCP_HLEN:
            raise MalformedPacket(f"TCP data offset {hlen // 4} is below 5")
        if hlen > len(data):
            raise MalformedPacket(f"TCP header of {hlen} bytes exceeds the {len(data)} bytes held")
        options = parse_options(data[TCP_HLEN:hlen]) if hlen > TCP_HLEN else ()
        header = cls(
            src_port,
            dst_port,
            seq,
            ack,
            off_flags & FLAGS_MASK,
            window,
            urgent,
            options,
            checksum,
        )
        return header, bytes(data[hlen:])

    def build(self, payload: bytes, src_ip: int, dst_ip: int) -> bytes:
        """Header + payload with the checksum computed over the IPv4 pseudo-header.

        Raises ValueError when the segment is longer than the pseudo-header's 16-bit length.
        """
        header_len = TCP_HLEN + len(self._raw_options)
        length = header_len + len(payload)
        if length > 0xFFFF:
            raise ValueError(f"TCP segment of {length} bytes does not fit the pseudo-header")
        off_flags = (header_len << 10) | self.flags  # (header_len // 4) << 12
        fixed = (self.src_port, self.dst_port, self.seq, self.ack, off_flags, self.window)
        header = _HEADER.pack(*fixed, 0, self.urgent) + self._raw_options
        # The header is a multiple of 4 bytes, so its sum and the payload's add up in ones'
        # complement without copying the payload into one buffer first.
        initial = pseudo_header_sum(src_ip, dst_ip, IPPROTO_TCP, length) + ones_sum(header)
        checksum = internet_checksum(payload, initial)
        return _HEADER.pack(*fixed, checksum, self.urgent) + self._raw_options + payload
