"""emunet.wire.ipv4: golden bytes, agreement with scapy both ways, and fuzzing."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import (
    IP,
    IPOption,
    IPOption_EOL,
    IPOption_NOP,
    IPOption_Router_Alert,
    IPOption_RR,
)
from scapy.packet import Raw

from emunet.wire.addr import ip_from_str, ip_to_str
from emunet.wire.checksum import internet_checksum
from emunet.wire.errors import MalformedPacket
from emunet.wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Ipv4

# --- golden bytes -------------------------------------------------------------------------------

# A Linux `ping 10.0.2.2` from 10.0.1.2: DF set, TTL 64, 84 bytes (20 + 8 ICMP + 56 data).
# Checksum by hand: 4500 + 0054 + 1c46 + 4000 + 4001 + 0a00 + 0102 + 0a00 + 0202 = f89f
# (no carry), complement = 0760.
PING_HEADER = bytes.fromhex("45000054 1c464000 40010760 0a000102 0a000202")
PING = Ipv4(
    src=ip_from_str("10.0.1.2"),
    dst=ip_from_str("10.0.2.2"),
    proto=IPPROTO_ICMP,
    ttl=64,
    id=0x1C46,
    df=True,
)

# The classic RFC 1071-style example (UDP, DF, 192.168.0.1 -> 192.168.0.199, 115 bytes):
# 4500 + 0073 + 4000 + 4011 + c0a8 + 0001 + c0a8 + 00c7 = 2479c -> 479e; ~479e = b861.
UDP_HEADER = bytes.fromhex("45000073 00004000 4011b861 c0a80001 c0a800c7")

# A first fragment with a record-route option (IHL 7): MF, offset 185 (1480 bytes), TTL 1, UDP.
# 4700 + 0024 + beef + 20b9 + 0111 + c0a8 + 0001 + c0a8 + 0002 + 0707 + 0400 + 0000 + 0000
# = 2b437 -> b439 after the carries; ~b439 = 4bc6.
FRAG_HEADER = bytes.fromhex("47000024 beef20b9 01114bc6 c0a80001 c0a80002 07070400 00000000")
FRAG = Ipv4(
    src=ip_from_str("192.168.0.1"),
    dst=ip_from_str("192.168.0.2"),
    proto=IPPROTO_UDP,
    ttl=1,
    id=0xBEEF,
    mf=True,
    frag_offset=185,
    options=bytes.fromhex("0707040000000000"),
)


def test_golden_ping_parses() -> None:
    payload = bytes(range(64))
    ip, rest = Ipv4.parse(PING_HEADER + payload)
    assert ip == PING
    assert (ip.total_length, ip.checksum, ip.checksum_ok) == (84, 0x0760, True)
    assert (ip.header_len, ip.ihl, ip.is_fragment) == (20, 5, False)
    assert rest == payload


def test_golden_ping_builds() -> None:
    assert PING.build(bytes(64)) == PING_HEADER + bytes(64)


def test_golden_udp_header_both_ways() -> None:
    ip, payload = Ipv4.parse(UDP_HEADER + bytes(95))
    assert ip == Ipv4(
        src=ip_from_str("192.168.0.1"), dst=ip_from_str("192.168.0.199"), proto=17, df=True
    )
    assert (ip.total_length, ip.checksum, ip.checksum_ok) == (0x73, 0xB861, True)
    assert ip.build(payload) == UDP_HEADER + bytes(95)


def test_golden_fragment_with_options_both_ways() -> None:
    payload = b"fragment"
    ip, rest = Ipv4.parse(FRAG_HEADER + payload)
    assert ip == FRAG
    assert (ip.ihl, ip.header_len, ip.total_length, ip.checksum) == (7, 28, 36, 0x4BC6)
    assert ip.is_fragment and ip.checksum_ok and not ip.df and not ip.evil
    assert rest == payload
    assert FRAG.build(payload) == FRAG_HEADER + payload


def test_payload_trimmed_to_total_length() -> None:
    # Ethernet padding after a short packet is not part of the payload (ip_rcv trims it).
    header = Ipv4(src=1, dst=2, proto=IPPROTO_TCP).build(b"abcd")
    ip, payload = Ipv4.parse(header + bytes(22))
    assert payload == b"abcd" and ip.total_length == 24


def test_bad_checksum_is_reported_not_raised() -> None:
    bad = bytearray(PING_HEADER)
    bad[11] ^= 0x01
    ip, payload = Ipv4.parse(bytes(bad) + bytes(64))
    assert ip.checksum_ok is False
    assert ip.checksum == 0x0761
    assert ip == PING  # checksum fields take no part in equality
    assert payload == bytes(64)
    # A changed field with the old checksum is caught too.
    bad = bytearray(PING_HEADER)
    bad[8] = 63  # TTL
    assert Ipv4.parse(bytes(bad) + bytes(64))[0].checksum_ok is False


def test_evil_bit_and_flag_bits() -> None:
    ip = Ipv4(src=1, dst=2, proto=6, evil=True, df=True, mf=True, frag_offset=0x1FFF)
    wire = ip.build()
    assert wire[6:8] == b"\xff\xff"
    assert Ipv4.parse(wire)[0] == ip


def test_parse_header_accepts_a_cut_packet() -> None:
    # An ICMP error quotes the header + 8 bytes: Total Length says more than is there.
    quoted = PING_HEADER + bytes(8)
    with pytest.raises(MalformedPacket):
        Ipv4.parse(quoted)
    ip, rest = Ipv4.parse_header(quoted)
    assert ip == PING and ip.total_length == 84 and rest == bytes(8)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than the 20-byte header"),
        (PING_HEADER[:19], "shorter than the 20-byte header"),
        (b"\x65" + PING_HEADER[1:] + bytes(64), "version 6"),
        (b"\x44" + PING_HEADER[1:] + bytes(64), "IHL 4"),
        (b"\x46" + PING_HEADER[1:], "longer than"),
        (PING_HEADER[:2] + b"\x00\x13" + PING_HEADER[4:], "below the header length"),
        (PING_HEADER + bytes(63), "exceeds the 83 bytes"),
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket, match=reason):
        Ipv4.parse(data)


def test_constructor_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        Ipv4(src=1 << 32, dst=0, proto=6)
    with pytest.raises(ValueError):
        Ipv4(src=0, dst=0, proto=256)
    with pytest.raises(ValueError):
        Ipv4(src=0, dst=0, proto=6, ttl=-1)
    with pytest.raises(ValueError):
        Ipv4(src=0, dst=0, proto=6, id=0x10000)
    with pytest.raises(ValueError):
        Ipv4(src=0, dst=0, proto=6, frag_offset=8192)
    with pytest.raises(ValueError):
        Ipv4(src=0, dst=0, proto=6, options=b"\x01\x01\x01")
    with pytest.raises(ValueError):
        Ipv4(src=0, dst=0, proto=6, options=bytes(44))
    with pytest.raises(TypeError):
        Ipv4(src="10.0.0.1", dst=0, proto=6)
    with pytest.raises(TypeError):
        Ipv4(src=0, dst=0, proto=6, df=1)
    with pytest.raises(TypeError):
        Ipv4(src=0, dst=0, proto=6, options="abcd")
    with pytest.raises(ValueError):
        Ipv4(src=0, dst=0, proto=6).build(bytes(65516))
    assert len(Ipv4(src=0, dst=0, proto=6).build(bytes(65515))) == 65535


def test_header_is_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        PING.ttl = 1  # type: ignore[misc]


# --- agreement with scapy -----------------------------------------------------------------------

# One option as (scapy object, its wire bytes).  Only option formats scapy dissects and rebuilds
# byte for byte: EOL, NOP, record route, router alert, and unregistered option numbers.
_UNREGISTERED = [n for n in range(32) if n not in IPOption.registered_ip_options]

_nop = st.just((IPOption_NOP(), b"\x01"))
_eol = st.just((IPOption_EOL(), b"\x00"))
_rr = st.builds(
    lambda routers, slot: (
        IPOption_RR(pointer=4 + 4 * slot, routers=[ip_to_str(r) for r in routers]),
        bytes([7, 3 + 4 * len(routers), 4 + 4 * slot])
        + b"".join(r.to_bytes(4, "big") for r in routers),
    ),
    st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=9),
    st.integers(0, 9),
)
_ra = st.builds(
    lambda v: (IPOption_Router_Alert(alert=v), b"\x94\x04" + v.to_bytes(2, "big")),
    st.integers(0, 0xFFFF),
)
_generic = st.builds(
    lambda copy, cls, num, value: (
        IPOption(copy_flag=copy, optclass=cls, option=num, value=value),
        bytes([copy << 7 | cls << 5 | num, 2 + len(value)]) + value,
    ),
    st.integers(0, 1),
    st.integers(0, 3),
    st.sampled_from(_UNREGISTERED),
    st.binary(max_size=10),
)


def _fit(opts: list[tuple[object, bytes]]) -> tuple[list[object], bytes]:
    """Keep options while they fit 40 bytes; return scapy objects and zero-padded wire bytes."""
    objs, wire = [], b""
    for obj, raw in opts:
        if len(wire) + len(raw) > 40:
            break
        objs.append(obj)
        wire += raw
    wire += bytes(-len(wire) % 4)
    return objs, wire


options_st = st.lists(st.one_of(_nop, _eol, _rr, _ra, _generic), max_size=8).map(_fit)

u32 = st.integers(0, 0xFFFFFFFF)
headers = st.builds(
    Ipv4,
    src=u32,
    dst=u32,
    proto=st.one_of(st.sampled_from([1, 6, 17]), st.integers(0, 255)),
    ttl=st.integers(0, 255),
    tos=st.integers(0, 255),
    id=st.integers(0, 0xFFFF),
    df=st.booleans(),
    mf=st.booleans(),
    evil=st.booleans(),
    frag_offset=st.one_of(st.just(0), st.integers(0, 8191)),
    options=options_st.map(lambda pair: pair[1]),
)


def _flags(ip: Ipv4) -> int:
    return (4 if ip.evil else 0) | (2 if ip.df else 0) | (1 if ip.mf else 0)


@settings(max_examples=200, deadline=None)
@given(ip=headers, payload=st.binary(max_size=64))
def test_our_build_parsed_by_scapy(ip: Ipv4, payload: bytes) -> None:
    wire = ip.build(payload)
    pkt = IP(wire)
    assert (pkt.version, pkt.ihl, pkt.len) == (4, ip.ihl, len(wire))
    assert (pkt.tos, pkt.id, pkt.ttl, pkt.proto) == (ip.tos, ip.id, ip.ttl, ip.proto)
    assert (int(pkt.flags), pkt.frag) == (_flags(ip), ip.frag_offset)
    assert (pkt.src, pkt.dst) == (ip_to_str(ip.src), ip_to_str(ip.dst))
    assert bytes(pkt)[20 : pkt.ihl * 4] == ip.options
    assert bytes(pkt.payload) == payload
    # scapy's verdict on our checksum: rebuilt with the field deleted, it computes the same.
    ours = int.from_bytes(wire[10:12], "big")
    assert pkt.chksum == ours
    pkt.chksum = None
    assert IP(bytes(pkt)).chksum == ours
    assert bytes(pkt) == wire


@settings(max_examples=200, deadline=None)
@given(ip=headers, opts=options_st, payload=st.binary(max_size=64))
def test_scapy_build_parsed_by_us(ip: Ipv4, opts: tuple[list[object], bytes], payload: bytes):
    objs, wire_opts = opts
    pkt = IP(
        src=ip_to_str(ip.src),
        dst=ip_to_str(ip.dst),
        proto=ip.proto,
        ttl=ip.ttl,
        tos=ip.tos,
        id=ip.id,
        flags=_flags(ip),
        frag=ip.frag_offset,
        options=objs,
    ) / Raw(payload)
    wire = bytes(pkt)
    parsed, rest = Ipv4.parse(wire)
    assert parsed == attrs.evolve(ip, options=wire_opts)
    assert parsed.checksum_ok is True
    assert parsed.checksum == IP(wire).chksum
    assert parsed.total_length == len(wire) == parsed.header_len + len(payload)
    assert rest == payload


# --- fuzzing ------------------------------------------------------------------------------------


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    how = rng.randrange(4)
    if how == 0 and data:  # one byte changed
        data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == 1 and data:  # several bytes changed
        for _ in range(rng.randint(2, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == 2:  # truncated
        del data[rng.randrange(len(data) + 1) :]
    else:  # one bit flipped in the header, then maybe truncated
        if data:
            i = rng.randrange(min(len(data), 60))
            data[i] ^= 1 << rng.randrange(8)
        if rng.random() < 0.5:
            del data[rng.randrange(len(data) + 1) :]
    return bytes(data)


def _fuzz_inputs(seeds: list[bytes], count: int = 10_000, salt: int = 0):
    rng = random.Random(0xE1E7 + salt)
    for i in range(count):
        if i % 3 == 0:
            yield rng.randbytes(rng.randint(0, 100))
        else:
            yield _mutate(rng, rng.choice(seeds))


FUZZ_SEEDS = [
    PING_HEADER + bytes(64),
    UDP_HEADER + bytes(95),
    FRAG_HEADER + b"fragment",
    Ipv4(src=1, dst=2, proto=6, options=bytes(40)).build(b"x" * 20),
    Ipv4(src=1, dst=2, proto=17, evil=True, mf=True, frag_offset=3).build(),
]


def _same_but_checksum(a: bytes, b: bytes) -> bool:
    return a[:10] == b[:10] and a[12:] == b[12:]


def test_fuzz_parse_raises_only_malformed() -> None:
    accepted = 0
    for data in _fuzz_inputs(FUZZ_SEEDS):
        try:
            ip, payload = Ipv4.parse(data)
        except MalformedPacket:
            continue
        accepted += 1
        original = data[: ip.total_length]
        rebuilt = ip.build(payload)
        assert _same_but_checksum(rebuilt, original)
        if ip.checksum_ok:
            # Only ones'-complement's two zeros (0x0000 / 0xffff) may differ.
            assert rebuilt == original or {ip.checksum, int.from_bytes(rebuilt[10:12])} == {
                0,
                0xFFFF,
            }
        else:
            assert rebuilt != original
    assert accepted > 1000  # the mutations reach past the header checks


def test_fuzz_parse_header_raises_only_malformed() -> None:
    for data in _fuzz_inputs(FUZZ_SEEDS, salt=1):
        try:
            ip, rest = Ipv4.parse_header(data)
        except MalformedPacket:
            continue
        assert ip.header_len + len(rest) == len(data)


def test_checksum_ok_matches_rfc1071_over_header() -> None:
    rng = random.Random(7)
    for _ in range(500):
        wire = _mutate(rng, FRAG_HEADER + b"fragment")
        try:
            ip, _ = Ipv4.parse(wire)
        except MalformedPacket:
            continue
        assert ip.checksum_ok == (internet_checksum(wire[: ip.header_len]) == 0)
