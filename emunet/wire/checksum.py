"""The Internet checksum (RFC 1071) by whole-buffer arithmetic.

The 16-bit ones'-complement sum of a buffer equals the buffer read as one big-endian integer,
reduced modulo 0xFFFF (because 2**16 == 1 mod 0xFFFF), except that a non-zero sum that is a
multiple of 0xFFFF is 0xFFFF in ones'-complement arithmetic.  ``int.from_bytes`` and ``%`` run in
C, so no Python loop touches the 16-bit words.
"""

from __future__ import annotations

import struct

_PSEUDO = struct.Struct("!IIxBH")


def ones_sum(data: bytes | bytearray | memoryview) -> int:
    """The 16-bit ones'-complement sum of ``data`` (odd length padded with a zero byte)."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    value = int.from_bytes(data, "big")
    if value == 0:
        return 0
    folded = value % 0xFFFF
    return folded if folded else 0xFFFF


def internet_checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The checksum to put in a header: the complement of the ones'-complement sum.

    ``initial`` is a ones'-complement sum already accumulated (for example a pseudo-header's).
    A buffer whose checksum field is filled in correctly checksums to 0.
    """
    total = ones_sum(data) + initial
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header_sum(src: int, dst: int, proto: int, length: int) -> int:
    """Ones'-complement sum of the IPv4 pseudo-header (RFC 793 / RFC 768)."""
    return ones_sum(_PSEUDO.pack(src, dst, proto, length))


def transport_checksum(src: int, dst: int, proto: int, segment: bytes | bytearray) -> int:
    """Checksum of a UDP datagram or TCP segment (checksum field zeroed), with pseudo-header."""
    return internet_checksum(segment, pseudo_header_sum(src, dst, proto, len(segment)))


def transport_checksum_ok(src: int, dst: int, proto: int, segment: bytes | bytearray) -> bool:
    """True when a received UDP/TCP ``segment`` checks out against its pseudo-header.

    UDP's checksum 0 means "none sent" (RFC 768) and counts as valid.
    """
    if proto == 17 and len(segment) >= 8 and segment[6] == 0 and segment[7] == 0:
        return True
    return transport_checksum(src, dst, proto, segment) == 0


def incremental_update(old_checksum: int, old_word: int, new_word: int) -> int:
    """RFC 1624 eqn. 3: the new checksum after one 16-bit header word changes."""
    total = (~old_checksum & 0xFFFF) + (~old_word & 0xFFFF) + new_word
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
