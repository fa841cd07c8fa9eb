"""emunet.wire.icmp: golden bytes, agreement with scapy both ways, quoting, and fuzzing."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP, IPerror
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum

from emunet.wire.addr import ip_from_str, ip_to_str
from emunet.wire.errors import MalformedPacket
from emunet.wire.icmp import (
    ICMP_DEST_UNREACH,
    ICMP_ECHO,
    ICMP_ECHOREPLY,
    ICMP_EXC_FRAGTIME,
    ICMP_EXC_TTL,
    ICMP_FRAG_NEEDED,
    ICMP_HOST_UNREACH,
    ICMP_NET_UNREACH,
    ICMP_PORT_UNREACH,
    ICMP_PROT_UNREACH,
    ICMP_QUOTE_LIMIT,
    ICMP_TIME_EXCEEDED,
    Icmp,
    icmp_type_is_error,
    parse_quote,
    quote,
)
from emunet.wire.ipv4 import IPPROTO_TCP, IPPROTO_UDP, Ipv4

# --- golden bytes -------------------------------------------------------------------------------

# A Linux `ping` echo request: id 0x0d05, seq 1, 56 data bytes = a struct timeval (tv_sec
# 0x655d4a8b, tv_usec 500000, little-endian 64-bit) then the bytes 0x10..0x37.
# Checksum by hand: header 0800 + 0000 + 0d05 + 0001 = 1506; timeval 8b4a + 5d65 + 20a1 + 0700
# = 11050; pattern 1011 + 1213 + ... + 3637 = 20 * 1011 + 0202 * (0 + 1 + ... + 19) = 2bed0;
# total 3e426 -> e426 + 3 = e429; ~e429 = 1bd6.
PING_DATA = bytes.fromhex("8b4a5d6500000000 20a1070000000000") + bytes(range(0x10, 0x38))
PING_HEADER = bytes.fromhex("08001bd6 0d050001")

# A router's "time to live exceeded in transit" about a 60-byte traceroute UDP probe
# (10.0.1.2:35407 -> 10.0.2.2:33434, TTL 1, data 0x40..0x5f), quoted whole.
# Checksum by hand: header 0b00; the quoted 60 bytes sum to 7e8bb; 7f3bb -> f3bb + 7 = f3c2;
# ~f3c2 = 0c3d.
PROBE = bytes.fromhex(
    "4500003c 5a3d0000 01114871 0a000102 0a000202"  # IPv4, UDP, TTL 1
    "8a4f829a 0028e6ab"  # UDP ports, length 40, checksum
) + bytes(range(0x40, 0x60))
TIME_EXCEEDED_HEADER = bytes.fromhex("0b000c3d 00000000")

# "Fragmentation needed", next-hop MTU 576, about a 1500-byte DF TCP segment, quoting the
# RFC 792 minimum (header + 8 bytes: ports and sequence number).
# Checksum by hand: 0304 + 0000 + 0000 + 0240 = 0544; the quoted 28 bytes sum to 31b3d;
# 32081 -> 2081 + 3 = 2084; ~2084 = df7b.
FRAG_QUOTE = bytes.fromhex("450005dc 4a1b4000 4006d3fd 0a000102 0a000202 c3501389 11223344")
FRAG_NEEDED_HEADER = bytes.fromhex("0304df7b 00000240")


def test_golden_echo_request_both_ways() -> None:
    icmp, data = Icmp.parse(PING_HEADER + PING_DATA)
    assert icmp == Icmp(ICMP_ECHO, 0, 0x0D050001)
    assert icmp == Icmp.echo(ICMP_ECHO, 0x0D05, 1)
    assert (icmp.id, icmp.seq, icmp.checksum, icmp.checksum_ok) == (0x0D05, 1, 0x1BD6, True)
    assert data == PING_DATA
    assert Icmp.echo(ICMP_ECHO, 0x0D05, 1).build(PING_DATA) == PING_HEADER + PING_DATA


def test_golden_echo_reply_differs_only_in_type_and_checksum() -> None:
    # Type 8 -> 0 lowers the first word by 0800, so the checksum rises by 0800: 1bd6 -> 23d6.
    reply = Icmp.echo(ICMP_ECHOREPLY, 0x0D05, 1).build(PING_DATA)
    assert reply == bytes.fromhex("000023d6 0d050001") + PING_DATA
    assert Icmp.parse(reply)[0].checksum_ok


def test_golden_time_exceeded_both_ways() -> None:
    icmp, data = Icmp.parse(TIME_EXCEEDED_HEADER + PROBE)
    assert icmp == Icmp.time_exceeded() == Icmp(ICMP_TIME_EXCEEDED, ICMP_EXC_TTL)
    assert (icmp.checksum, icmp.checksum_ok, icmp.is_error) == (0x0C3D, True, True)
    assert data == PROBE
    assert Icmp.time_exceeded().build(quote(PROBE)) == TIME_EXCEEDED_HEADER + PROBE
    inner, transport = parse_quote(data)
    assert (ip_to_str(inner.src), ip_to_str(inner.dst), inner.ttl) == ("10.0.1.2", "10.0.2.2", 1)
    assert (inner.proto, inner.total_length, inner.checksum_ok) == (IPPROTO_UDP, 60, True)
    assert transport[:4] == bytes.fromhex("8a4f829a")


def test_golden_frag_needed_both_ways() -> None:
    icmp, data = Icmp.parse(FRAG_NEEDED_HEADER + FRAG_QUOTE)
    assert icmp == Icmp.frag_needed(576) == Icmp(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 576)
    assert (icmp.next_hop_mtu, icmp.checksum, icmp.checksum_ok) == (576, 0xDF7B, True)
    assert Icmp.frag_needed(576).build(FRAG_QUOTE) == FRAG_NEEDED_HEADER + FRAG_QUOTE
    inner, transport = parse_quote(data)
    assert inner == Ipv4(
        src=ip_from_str("10.0.1.2"),
        dst=ip_from_str("10.0.2.2"),
        proto=IPPROTO_TCP,
        id=0x4A1B,
        df=True,
    )
    assert inner.total_length == 1500
    assert transport == bytes.fromhex("c350138911223344")


def test_bad_checksum_is_reported_not_raised() -> None:
    for message in (PING_HEADER + PING_DATA, TIME_EXCEEDED_HEADER + PROBE):
        bad = bytearray(message)
        bad[-1] ^= 0x40  # a data byte: the checksum covers the whole message
        icmp, data = Icmp.parse(bytes(bad))
        assert icmp.checksum_ok is False
        assert icmp == Icmp.parse(message)[0]
        assert data == bytes(bad[8:])
    bad = bytearray(PING_HEADER + PING_DATA)
    bad[2:4] = b"\x00\x00"
    assert Icmp.parse(bytes(bad))[0].checksum_ok is False


def test_too_short() -> None:
    for n in range(8):
        with pytest.raises(MalformedPacket, match="shorter than 8"):
            Icmp.parse(PING_HEADER[:n])
    assert Icmp.parse(PING_HEADER)[1] == b""


def test_all_zero_message_checksum() -> None:
    # The ones'-complement sum of zeros is 0, so the checksum field is ffff (never 0 for it).
    wire = Icmp(0, 0).build()
    assert wire == bytes.fromhex("0000ffff00000000")
    assert Icmp.parse(wire)[0].checksum_ok
    assert not Icmp.parse(bytes(8))[0].checksum_ok


def test_constructors_and_validation() -> None:
    assert Icmp.dest_unreach(ICMP_PORT_UNREACH) == Icmp(3, 3, 0)
    assert Icmp.time_exceeded(ICMP_EXC_FRAGTIME) == Icmp(11, 1, 0)
    assert Icmp.echo(ICMP_ECHOREPLY, 0xFFFF, 0xFFFF).rest == 0xFFFFFFFF
    with pytest.raises(ValueError):
        Icmp.echo(ICMP_DEST_UNREACH, 1, 1)
    with pytest.raises(ValueError):
        Icmp.echo(ICMP_ECHO, 0x10000, 1)
    with pytest.raises(ValueError):
        Icmp.echo(ICMP_ECHO, 1, -1)
    with pytest.raises(ValueError):
        Icmp.frag_needed(0x10000)
    with pytest.raises(ValueError):
        Icmp(256, 0)
    with pytest.raises(ValueError):
        Icmp(0, 256)
    with pytest.raises(ValueError):
        Icmp(0, 0, 1 << 32)
    with pytest.raises(TypeError):
        Icmp("echo", 0)  # type: ignore[arg-type]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Icmp(0, 0).code = 1  # type: ignore[misc]


def test_error_types_as_linux() -> None:
    errors = {t for t in range(256) if icmp_type_is_error(t)}
    assert errors == {3, 4, 5, 11, 12} | set(range(19, 256))
    assert not Icmp.echo(ICMP_ECHO, 1, 1).is_error
    assert Icmp.frag_needed(1400).is_error


# --- quote / parse_quote ------------------------------------------------------------------------


def _packet(size: int, **fields: object) -> bytes:
    ip = Ipv4(src=ip_from_str("10.0.1.2"), dst=ip_from_str("10.0.2.2"), proto=17, **fields)
    return ip.build(bytes(i & 0xFF for i in range(size - ip.header_len)))


def test_quote_fills_a_576_byte_error() -> None:
    packet = _packet(1500, df=True)
    quoted = quote(packet)
    assert quoted == packet[:548]
    assert 20 + 8 + len(quoted) == 576 == 20 + 8 + ICMP_QUOTE_LIMIT


def test_quote_small_packet_whole_without_link_padding() -> None:
    packet = _packet(30)
    assert quote(packet) == packet
    assert quote(packet + bytes(16)) == packet  # Ethernet padding is not quoted


def test_quote_smaller_limit() -> None:
    # Over a 68-byte MTU with no IP options Linux has 68 - 20 - 8 = 40 bytes of room.
    packet = _packet(100, options=bytes.fromhex("07070400000000 00"))
    assert quote(packet, limit=40) == packet[:40]
    assert quote(packet, limit=0) == b""
    with pytest.raises(ValueError):
        quote(packet, limit=-1)


def test_quote_never_raises_on_odd_bytes() -> None:
    assert quote(b"") == b""
    assert quote(b"\x45") == b"\x45"
    junk = b"\x4f\x00\xff\xff" + bytes(600)  # IHL 15, Total Length larger than the data
    assert quote(junk) == junk[:548]
    junk = b"\x41\x00\x00\x10" + bytes(600)  # IHL 1: not trimmed by its Total Length
    assert quote(junk) == junk[:548]


def test_parse_quote_limits() -> None:
    assert parse_quote(FRAG_QUOTE)[1] == FRAG_QUOTE[20:]
    with pytest.raises(MalformedPacket, match="quotes 7 bytes"):
        parse_quote(FRAG_QUOTE[:27])
    with pytest.raises(MalformedPacket, match="IHL 4"):
        parse_quote(b"\x44" + FRAG_QUOTE[1:])
    with pytest.raises(MalformedPacket):
        parse_quote(b"\x46" + FRAG_QUOTE[1:])  # options claimed, so only 4 bytes follow


# --- agreement with scapy -----------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
data_st = st.binary(max_size=120)
inner_headers = st.builds(
    Ipv4,
    src=st.integers(0, 0xFFFFFFFF),
    dst=st.integers(0, 0xFFFFFFFF),
    proto=st.sampled_from([1, 6, 17]),
    ttl=st.integers(0, 255),
    id=u16,
    df=st.booleans(),
    options=st.sampled_from([b"", b"\x01\x01\x01\x00", bytes.fromhex("0707040000000000")]),
)


@st.composite
def quoted_packets(draw: st.DrawFn) -> bytes:
    """The quote of an offending IPv4 packet: the default 548 bytes, or header + 8 and more."""
    ip = draw(inner_headers)
    size = draw(st.integers(8, 700))
    packet = ip.build(draw(st.binary(min_size=size, max_size=size)))
    limit = draw(st.one_of(st.just(ICMP_QUOTE_LIMIT), st.integers(ip.header_len + 8, 548)))
    quoted = quote(packet, limit)
    assert len(quoted) >= ip.header_len + 8
    return quoted


errors = st.one_of(
    st.builds(Icmp.frag_needed, st.integers(68, 0xFFFF)),
    st.builds(
        Icmp.dest_unreach,
        st.sampled_from([ICMP_NET_UNREACH, ICMP_HOST_UNREACH, ICMP_PROT_UNREACH, ICMP_PORT_UNREACH])
        | st.integers(0, 15),
    ),
    st.builds(Icmp.time_exceeded, st.sampled_from([ICMP_EXC_TTL, ICMP_EXC_FRAGTIME])),
)


def _scapy_verdict(pkt: ICMP) -> int:
    """scapy's own checksum of the message: rebuilt with the field deleted."""
    pkt.chksum = None
    return ICMP(bytes(pkt)).chksum


@settings(max_examples=200, deadline=None)
@given(type_=st.sampled_from([ICMP_ECHO, ICMP_ECHOREPLY]), id_=u16, seq=u16, data=data_st)
def test_echo_our_build_parsed_by_scapy(type_: int, id_: int, seq: int, data: bytes) -> None:
    wire = Icmp.echo(type_, id_, seq).build(data)
    pkt = ICMP(wire)
    assert (pkt.type, pkt.code, pkt.id, pkt.seq) == (type_, 0, id_, seq)
    assert bytes(pkt.payload) == data
    ours = int.from_bytes(wire[2:4], "big")
    assert pkt.chksum == ours
    assert _scapy_verdict(pkt) == ours


@settings(max_examples=200, deadline=None)
@given(type_=st.sampled_from([ICMP_ECHO, ICMP_ECHOREPLY]), id_=u16, seq=u16, data=data_st)
def test_echo_scapy_build_parsed_by_us(type_: int, id_: int, seq: int, data: bytes) -> None:
    wire = bytes(ICMP(type=type_, id=id_, seq=seq) / Raw(data))
    icmp, payload = Icmp.parse(wire)
    assert icmp == Icmp.echo(type_, id_, seq)
    assert (icmp.id, icmp.seq) == (id_, seq)
    assert icmp.checksum == ICMP(wire).chksum and icmp.checksum_ok
    assert payload == data


@settings(max_examples=200, deadline=None)
@given(icmp=errors, quoted=quoted_packets())
def test_error_our_build_parsed_by_scapy(icmp: Icmp, quoted: bytes) -> None:
    wire = icmp.build(quoted)
    pkt = ICMP(wire)
    assert (pkt.type, pkt.code) == (icmp.type, icmp.code)
    if icmp.type == ICMP_DEST_UNREACH:
        assert pkt.nexthopmtu == icmp.next_hop_mtu
        assert (pkt.reserved, pkt.length) == (0, 0)
    else:
        assert (pkt.reserved, pkt.length, pkt.unused) == (0, 0, 0)
    inner = pkt[IPerror]
    ours_inner, _ = parse_quote(quoted)
    assert (inner.src, inner.dst) == (ip_to_str(ours_inner.src), ip_to_str(ours_inner.dst))
    assert (inner.proto, inner.id, inner.ttl) == (ours_inner.proto, ours_inner.id, ours_inner.ttl)
    # scapy's re-serialization of a parsed error is not byte-faithful (past 128 quoted bytes it
    # guesses at RFC 4884 extensions; odd quoted UDP lengths move bytes), so the bytes are
    # checked by scapy's checksum routine below and by its field values above, not by rebuild.
    assert wire[8:] == quoted
    ours = int.from_bytes(wire[2:4], "big")
    assert pkt.chksum == ours
    # scapy's checksum routine over the raw message with the field zeroed (rebuilding the
    # parsed packet is not byte-faithful for quoted UDP headers with odd lengths).
    assert scapy_checksum(wire[:2] + b"\x00\x00" + wire[4:]) == ours


@st.composite
def scapy_offenders(draw: st.DrawFn) -> bytes:
    """An offending UDP/IP packet built by scapy, cut as Linux would quote it."""
    pkt = (
        IP(
            src=ip_to_str(draw(st.integers(0, 0xFFFFFFFF))),
            dst=ip_to_str(draw(st.integers(0, 0xFFFFFFFF))),
            ttl=draw(st.integers(0, 255)),
            id=draw(u16),
            flags=draw(st.sampled_from([0, 2])),
        )
        / UDP(sport=draw(u16), dport=draw(u16))
        / Raw(draw(st.binary(max_size=700)))
    )
    return bytes(pkt)[: draw(st.integers(28, 548))]


@settings(max_examples=200, deadline=None)
@given(icmp=errors, quoted=scapy_offenders())
def test_error_scapy_build_parsed_by_us(icmp: Icmp, quoted: bytes) -> None:
    if icmp.type == ICMP_DEST_UNREACH:
        pkt = ICMP(type=3, code=icmp.code, nexthopmtu=icmp.next_hop_mtu)
    else:
        pkt = ICMP(type=11, code=icmp.code)
    wire = bytes(pkt / Raw(quoted))
    parsed, payload = Icmp.parse(wire)
    assert parsed == icmp
    assert parsed.checksum == ICMP(wire).chksum and parsed.checksum_ok
    assert payload == quoted
    inner, transport = parse_quote(payload)
    scapy_inner = IP(quoted)
    assert (ip_to_str(inner.src), ip_to_str(inner.dst)) == (scapy_inner.src, scapy_inner.dst)
    assert (inner.proto, inner.id, inner.df) == (IPPROTO_UDP, scapy_inner.id, scapy_inner.flags.DF)
    assert inner.checksum_ok and transport == quoted[20:]


# --- fuzzing ------------------------------------------------------------------------------------


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    how = rng.randrange(4)
    if how == 0 and data:  # one byte changed
        data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == 1 and data:  # several bytes changed, mostly in the headers
        for _ in range(rng.randint(2, 8)):
            data[rng.randrange(min(len(data), 48))] = rng.randrange(256)
    elif how == 2:  # truncated
        del data[rng.randrange(len(data) + 1) :]
    else:  # one bit flipped, then maybe truncated
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        if rng.random() < 0.5:
            del data[rng.randrange(len(data) + 1) :]
    return bytes(data)


def _fuzz_inputs(seeds: list[bytes], salt: int):
    rng = random.Random(0x1C3 + salt)
    for i in range(10_000):
        if i % 3 == 0:
            yield rng.randbytes(rng.randint(0, 100))
        else:
            yield _mutate(rng, rng.choice(seeds))


MESSAGES = [
    PING_HEADER + PING_DATA,
    TIME_EXCEEDED_HEADER + PROBE,
    FRAG_NEEDED_HEADER + FRAG_QUOTE,
    Icmp.echo(ICMP_ECHOREPLY, 1, 2).build(),
]


def test_fuzz_parse_raises_only_malformed() -> None:
    accepted = 0
    for data in _fuzz_inputs(MESSAGES, salt=0):
        try:
            icmp, payload = Icmp.parse(data)
        except MalformedPacket:
            continue
        accepted += 1
        rebuilt = icmp.build(payload)
        assert rebuilt[:2] + rebuilt[4:] == data[:2] + data[4:]
        if icmp.checksum_ok:
            # Only ones'-complement's two zeros (0x0000 / 0xffff) may differ.
            assert rebuilt == data or {icmp.checksum, int.from_bytes(rebuilt[2:4])} == {0, 0xFFFF}
        else:
            assert rebuilt != data
    assert accepted > 1000


def test_fuzz_parse_quote_raises_only_malformed() -> None:
    accepted = 0
    for data in _fuzz_inputs([PROBE, FRAG_QUOTE, quote(_packet(1500))], salt=1):
        try:
            inner, transport = parse_quote(data)
        except MalformedPacket:
            continue
        accepted += 1
        assert len(transport) >= 8 and inner.header_len + len(transport) == len(data)
    assert accepted > 1000


def test_fuzz_quote_never_raises() -> None:
    for data in _fuzz_inputs([PROBE, _packet(700)], salt=2):
        quoted = quote(data)
        assert data.startswith(quoted) and len(quoted) <= ICMP_QUOTE_LIMIT
