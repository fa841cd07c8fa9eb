"""emunet.wire.udp: golden bytes, agreement with scapy both ways, and fuzzing of the parser."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, in4_chksum
from scapy.packet import Raw

from emunet.wire.addr import ip_from_str, ip_to_str
from emunet.wire.checksum import transport_checksum, transport_checksum_ok
from emunet.wire.errors import MalformedPacket
from emunet.wire.udp import Udp

SRC = ip_from_str("10.0.1.2")
DST = ip_from_str("10.0.2.2")

# 10.0.1.2:40000 -> 10.0.2.2:53, b"hello", as scapy builds it (checksum 0x0889).
GOLDEN = bytes.fromhex("9c400035000d0889") + b"hello"

ports = st.integers(0, 0xFFFF)
addrs = st.integers(0, 0xFFFFFFFF)
payloads = st.binary(max_size=1600)


# --- golden bytes ---------------------------------------------------------------------------


def test_build_golden() -> None:
    assert Udp(40000, 53).build(b"hello", SRC, DST) == GOLDEN


def test_parse_golden() -> None:
    udp, payload = Udp.parse(GOLDEN)
    assert udp == Udp(40000, 53)
    assert (udp.src_port, udp.dst_port, udp.length, udp.checksum) == (40000, 53, 13, 0x0889)
    assert payload == b"hello"
    assert transport_checksum_ok(SRC, DST, 17, GOLDEN)


def test_parse_trims_to_length_field() -> None:
    udp, payload = Udp.parse(GOLDEN + b"\x00\x00\xaa")  # Ethernet padding after the datagram
    assert udp.length == 13
    assert payload == b"hello"


def test_empty_payload() -> None:
    seg = Udp(1, 2).build(b"", SRC, DST)
    assert len(seg) == 8
    assert seg[4:6] == b"\x00\x08"
    udp, payload = Udp.parse(seg)
    assert (udp.length, payload) == (8, b"")
    assert transport_checksum_ok(SRC, DST, 17, seg)


def test_computed_zero_checksum_is_sent_as_ffff() -> None:
    # Choose the payload word equal to the checksum of the datagram with a zero payload word:
    # the ones'-complement sum then becomes 0xFFFF and the checksum 0 (RFC 768: send 0xFFFF).
    zero_word = Udp(1000, 2000).build(b"\x00\x00", SRC, DST, with_checksum=False)
    word = transport_checksum(SRC, DST, 17, zero_word).to_bytes(2, "big")
    seg = Udp(1000, 2000).build(word, SRC, DST)
    assert seg[6:8] == b"\xff\xff"
    assert transport_checksum_ok(SRC, DST, 17, seg)
    pkt = IP(src=ip_to_str(SRC), dst=ip_to_str(DST)) / UDP(sport=1000, dport=2000) / Raw(word)
    scapy_seg = bytes(pkt)[20:]
    assert seg == scapy_seg


def test_build_without_checksum() -> None:
    seg = Udp(40000, 53).build(b"hello", SRC, DST, with_checksum=False)
    assert seg == bytes.fromhex("9c400035000d0000") + b"hello"
    assert Udp.parse(seg)[0].checksum == 0
    # RFC 768: zero means no checksum was sent, which the receiver accepts.
    assert transport_checksum_ok(SRC, DST, 17, seg)
    assert transport_checksum_ok(SRC + 1, DST, 17, seg)


def test_bad_checksum_is_reported_by_transport_checksum_ok_not_parse() -> None:
    bad = GOLDEN[:6] + b"\x08\x88" + GOLDEN[8:]
    udp, payload = Udp.parse(bad)
    assert udp.checksum == 0x0888
    assert payload == b"hello"
    assert not transport_checksum_ok(SRC, DST, 17, bad)


def test_equality_ignores_wire_length_and_checksum() -> None:
    assert Udp(1, 2, length=99, checksum=7) == Udp(1, 2)


# --- malformed input and invalid values -------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 7,  # shorter than the header
        bytes.fromhex("0001000200070000"),  # length 7 < 8
        bytes.fromhex("0001000200000000"),  # length 0
        bytes.fromhex("00010002000a0000") + b"x",  # length 10 > 9 bytes held
    ],
)
def test_parse_malformed(data: bytes) -> None:
    with pytest.raises(MalformedPacket):
        Udp.parse(data)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"src_port": -1, "dst_port": 1},
        {"src_port": 1, "dst_port": 0x10000},
        {"src_port": 1, "dst_port": 1, "length": 0x10000},
        {"src_port": 1, "dst_port": 1, "checksum": -1},
    ],
)
def test_invalid_fields(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Udp(**kwargs)


def test_build_too_long() -> None:
    assert len(Udp(1, 2).build(bytes(0xFFFF - 8), SRC, DST)) == 0xFFFF
    with pytest.raises(ValueError):
        Udp(1, 2).build(bytes(0xFFFF - 7), SRC, DST)


def test_build_accepts_bytes_like_payload() -> None:
    assert Udp(40000, 53).build(memoryview(b"hello"), SRC, DST) == GOLDEN
    assert Udp(40000, 53).build(bytearray(b"hello"), SRC, DST) == GOLDEN


# --- agreement with scapy ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(src=addrs, dst=addrs, sport=ports, dport=ports, payload=payloads)
def test_our_build_parsed_by_scapy(
    src: int, dst: int, sport: int, dport: int, payload: bytes
) -> None:
    seg = Udp(sport, dport).build(payload, src, dst)
    wire = bytes(IP(src=ip_to_str(src), dst=ip_to_str(dst), proto=17) / Raw(seg))
    ip = IP(wire)
    udp = ip[UDP]
    assert (udp.sport, udp.dport, udp.len) == (sport, dport, 8 + len(payload))
    assert udp.chksum == int.from_bytes(seg[6:8], "big") != 0
    assert bytes(udp.payload) == payload
    assert in4_chksum(17, ip, seg) == 0  # scapy verifies the pseudo-header checksum


@settings(max_examples=200, deadline=None)
@given(src=addrs, dst=addrs, sport=ports, dport=ports, payload=payloads)
def test_scapy_build_parsed_by_us(
    src: int, dst: int, sport: int, dport: int, payload: bytes
) -> None:
    pkt = IP(src=ip_to_str(src), dst=ip_to_str(dst)) / UDP(sport=sport, dport=dport) / Raw(payload)
    seg = bytes(pkt)[20:]
    udp, got = Udp.parse(seg)
    assert udp == Udp(sport, dport)
    assert udp.length == 8 + len(payload)
    assert udp.checksum == int.from_bytes(seg[6:8], "big")
    assert got == payload
    assert transport_checksum_ok(src, dst, 17, seg)
    assert udp.build(got, src, dst) == seg  # and we build the very same bytes


# --- fuzzing ------------------------------------------------------------------------------------


def _check_parse(data: bytes) -> None:
    try:
        udp, payload = Udp.parse(data)
    except MalformedPacket:
        return
    assert udp.length == 8 + len(payload) <= len(data)
    assert payload == data[8 : udp.length]
    again, again_payload = Udp.parse(udp.build(payload, 1, 2))
    assert (again, again_payload) == (udp, payload)


def test_fuzz_parse() -> None:
    rng = random.Random(768)
    seeds = [
        Udp(rng.getrandbits(16), rng.getrandbits(16)).build(rng.randbytes(n), 1, 2)
        for n in (0, 1, 5, 40, 200)
    ]
    for i in range(10_000):
        if i % 2:
            data = rng.randbytes(rng.randrange(0, 40))
        else:
            buf = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 4)):
                what = rng.randrange(4)
                if what == 0 and buf:
                    buf[rng.randrange(len(buf))] = rng.getrandbits(8)
                elif what == 1:
                    del buf[rng.randrange(len(buf) + 1) :]
                elif what == 2:
                    buf += rng.randbytes(rng.randrange(1, 8))
                else:  # a length field near the real length
                    if len(buf) >= 6:
                        buf[4:6] = max(0, min(0xFFFF, len(buf) + rng.randrange(-10, 10))).to_bytes(
                            2, "big"
                        )
            data = bytes(buf)
        _check_parse(data)
