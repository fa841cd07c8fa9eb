"""emunet.wire.checksum: agreement with scapy, the pseudo-header, RFC 1624 incremental update."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, in4_chksum
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum

from emunet.wire.addr import ip_from_str, ip_to_str
from emunet.wire.checksum import (
    incremental_update,
    internet_checksum,
    ones_sum,
    pseudo_header_sum,
    transport_checksum,
    transport_checksum_ok,
)

SRC = ip_from_str("192.0.2.1")
DST = ip_from_str("198.51.100.7")


def _reference_sum(data: bytes) -> int:
    """RFC 1071 by the book: 16-bit words with end-around carry."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return total


# --- internet_checksum against scapy -----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01",
        b"\xff",
        b"\x12\x34",
        bytes(9000),
        bytes(8999),
        bytes(1),
        bytes(2),
        b"\xff" * 9000,
        b"\xff" * 8999,
        b"\xff" * 2,
        b"\xff" * 1,
        bytes(range(256)) * 35,  # 8960 bytes
        random.Random(1071).randbytes(9000),
        random.Random(1071).randbytes(8999),
    ],
    ids=lambda data: f"{len(data)}B",
)
def test_matches_scapy_explicit(data: bytes) -> None:
    assert internet_checksum(data) == scapy_checksum(data)


def test_known_values() -> None:
    # RFC 1071 section 3 example: words 0001 f203 f4f5 f6f7 sum to 0xddf2.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0x220D
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(bytes(100)) == 0xFFFF  # all-zero: the sum is +0
    assert internet_checksum(b"\xff" * 100) == 0x0000  # all-ones: the sum is -0 (0xFFFF)
    assert internet_checksum(b"\xff") == 0x00FF  # an odd byte is padded with zero
    assert ones_sum(b"\xff\xff") == 0xFFFF
    assert ones_sum(b"") == 0


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 9000), seed=st.integers(0, 2**64 - 1))
def test_matches_scapy(n: int, seed: int) -> None:
    # Hypothesis picks the length (odd ones included) and a seed for the bytes, so that long
    # buffers are as likely as short ones.
    data = random.Random(seed).randbytes(n)
    assert internet_checksum(data) == scapy_checksum(data)
    assert ones_sum(data) == _reference_sum(data)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600))
def test_matches_scapy_shrinkable(data: bytes) -> None:
    assert internet_checksum(data) == scapy_checksum(data)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(0, 9000),
    fill=st.sampled_from([0x00, 0xFF]),
    odd_byte=st.integers(0, 255),
)
def test_uniform_buffers(n: int, fill: int, odd_byte: int) -> None:
    data = bytes([fill]) * n + bytes([odd_byte])
    assert internet_checksum(data) == scapy_checksum(data)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000), initial=st.binary(min_size=0, max_size=40))
def test_initial_sum_composes(data: bytes, initial: bytes) -> None:
    # Summing a prefix of even length first and passing it on gives the checksum of the whole.
    prefix = initial + bytes(len(initial) % 2)
    assert internet_checksum(data, ones_sum(prefix)) == internet_checksum(prefix + data)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=1500))
def test_buffer_with_its_checksum_sums_to_zero(data: bytes) -> None:
    data += bytes(len(data) % 2)
    csum = internet_checksum(data)
    assert internet_checksum(data + csum.to_bytes(2, "big")) == 0


def test_accepts_bytearray_and_memoryview() -> None:
    data = bytes(range(1, 100))
    expected = internet_checksum(data)
    assert internet_checksum(bytearray(data)) == expected
    assert internet_checksum(memoryview(data)) == expected


# --- pseudo-header and transport checksum ------------------------------------------------------


def test_pseudo_header_sum() -> None:
    # 192.0.2.1 198.51.100.7, proto 17, length 8: words c000 0201 c633 6407 0011 0008
    expected = _reference_sum(bytes.fromhex("c0000201c633640700110008"))
    assert pseudo_header_sum(SRC, DST, 17, 8) == expected


@settings(max_examples=200, deadline=None)
@given(
    src=st.integers(0, 0xFFFFFFFF),
    dst=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=1500),
)
def test_transport_checksum_matches_scapy(src: int, dst: int, payload: bytes) -> None:
    pkt = IP(bytes(IP(src=ip_to_str(src), dst=ip_to_str(dst)) / UDP(sport=7, dport=9) / payload))
    seg = bytes(pkt[UDP])
    zeroed = seg[:6] + b"\x00\x00" + seg[8:]
    expected = in4_chksum(17, pkt, zeroed) or 0xFFFF  # UDP sends a computed 0 as 0xFFFF
    assert (transport_checksum(src, dst, 17, zeroed) or 0xFFFF) == expected == pkt[UDP].chksum
    assert transport_checksum_ok(src, dst, 17, seg)
    # Off by one is rejected (the wire value is never 0 here, which would mean "none").
    bad = seg[:6] + ((pkt[UDP].chksum + 1) & 0xFFFF or 1).to_bytes(2, "big") + seg[8:]
    assert not transport_checksum_ok(src, dst, 17, bad)


def test_udp_zero_checksum_means_none() -> None:
    seg = bytes.fromhex("0007000900080000")
    assert transport_checksum_ok(SRC, DST, 17, seg)
    assert transport_checksum_ok(0, 0, 17, seg + b"any data")
    # A zero checksum is not special for TCP.
    tcp = bytes.fromhex("0007000900000001000000005002001000000000")
    assert not transport_checksum_ok(SRC, DST, 6, tcp)


def test_transport_checksum_ok_rejects_bad() -> None:
    seg = bytes(IP(src="192.0.2.1", dst="198.51.100.7") / UDP(sport=7, dport=9) / Raw(b"x" * 11))
    udp = seg[20:]
    assert transport_checksum_ok(SRC, DST, 17, udp)
    assert not transport_checksum_ok(SRC, DST + 1, 17, udp)  # wrong pseudo-header
    assert not transport_checksum_ok(SRC, DST, 17, udp[:-1] + b"y")  # corrupted data


# --- RFC 1624 incremental update --------------------------------------------------------------


def _ipv4_header(ttl: int, proto: int, rest: bytes) -> bytearray:
    """A 20-byte IPv4 header with its checksum filled in; ``rest`` fills the other fields."""
    hdr = bytearray(b"\x45" + rest[:7] + bytes((ttl, proto)) + b"\x00\x00" + rest[7:15])
    hdr[10:12] = internet_checksum(hdr).to_bytes(2, "big")
    return hdr


@settings(max_examples=300, deadline=None)
@given(
    ttl=st.integers(0, 255),
    proto=st.integers(0, 255),
    new_ttl=st.integers(0, 255),
    new_proto=st.integers(0, 255),
    rest=st.binary(min_size=15, max_size=15),
)
def test_incremental_update_matches_recomputation(
    ttl: int, proto: int, new_ttl: int, new_proto: int, rest: bytes
) -> None:
    hdr = _ipv4_header(ttl, proto, rest)
    old_checksum = int.from_bytes(hdr[10:12], "big")
    old_word = (ttl << 8) | proto
    new_word = (new_ttl << 8) | new_proto
    updated = incremental_update(old_checksum, old_word, new_word)
    recomputed = _ipv4_header(new_ttl, new_proto, rest)
    assert updated == int.from_bytes(recomputed[10:12], "big")
    hdr[8:10] = new_word.to_bytes(2, "big")
    hdr[10:12] = updated.to_bytes(2, "big")
    assert internet_checksum(hdr) == 0


@settings(max_examples=200, deadline=None)
@given(ttl=st.integers(1, 255), rest=st.binary(min_size=15, max_size=15))
def test_ttl_decrement_as_ip_forward_does(ttl: int, rest: bytes) -> None:
    hdr = _ipv4_header(ttl, 6, rest)
    updated = incremental_update(
        int.from_bytes(hdr[10:12], "big"), (ttl << 8) | 6, ((ttl - 1) << 8) | 6
    )
    assert updated == int.from_bytes(_ipv4_header(ttl - 1, 6, rest)[10:12], "big")


def test_incremental_update_rfc1624_example() -> None:
    # RFC 1624 section 4: the other words sum to 0xCD7A, so HC = ~(0xCD7A + 0x5555) = 0xDD2F;
    # m = 0x5555 becomes 0x3285 and eqn. 3 gives 0x0000, as recomputation does (eqn. 2 of
    # RFC 1141 gave 0xFFFF).
    assert incremental_update(0xDD2F, 0x5555, 0x3285) == 0x0000
    assert internet_checksum(bytes.fromhex("cd7a3285")) == 0x0000
