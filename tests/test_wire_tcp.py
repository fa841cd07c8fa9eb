"""emunet.wire.tcp: golden bytes, lenient options, agreement with scapy both ways, fuzzing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, TCPOptions, in4_chksum
from scapy.packet import Raw

from emunet.wire.addr import ip_from_str, ip_to_str
from emunet.wire.checksum import transport_checksum, transport_checksum_ok
from emunet.wire.errors import MalformedPacket
from emunet.wire.tcp import (
    ACK,
    CWR,
    ECE,
    FIN,
    NS,
    PSH,
    RST,
    SYN,
    URG,
    Mss,
    Nop,
    Sack,
    SackPermitted,
    Tcp,
    TcpOption,
    Timestamps,
    UnknownOption,
    UnparsedOptions,
    WindowScale,
    build_options,
    flags_to_str,
    parse_options,
)

CLIENT = ip_from_str("10.0.1.2")
SERVER = ip_from_str("10.0.2.2")

# Both built by scapy 2.8 (IP(src, dst)/TCP(...)), the IP header stripped.
# SYN 10.0.1.2:40000 -> 10.0.2.2:5001, seq 0x01020304, window 64240,
# options MSS 1460, SACK-permitted, timestamps 123456/0, NOP, window scale 7.
GOLDEN_SYN = bytes.fromhex(
    "9c4013890102030400000000a002faf09ffa0000020405b40402080a0001e2400000000001030307"
)
SYN_HEADER = Tcp(
    40000,
    5001,
    0x01020304,
    0,
    SYN,
    64240,
    options=(Mss(1460), SackPermitted(), Timestamps(123456, 0), Nop(), WindowScale(7)),
)
# PSH|ACK 10.0.2.2:5001 -> 10.0.1.2:40000, seq 0xfffffff0, ack 0x01020305, window 502,
# options NOP NOP timestamps 654321/123456 NOP NOP SACK (1,2) (3,4), payload b"data".
GOLDEN_DATA = bytes.fromhex(
    "13899c40fffffff001020305d01801f69cc500000101080a0009fbf10001e240010105120000000100000002"
    "000000030000000464617461"
)
DATA_HEADER = Tcp(
    5001,
    40000,
    0xFFFFFFF0,
    0x01020305,
    PSH | ACK,
    502,
    options=(Nop(), Nop(), Timestamps(654321, 123456), Nop(), Nop(), Sack(((1, 2), (3, 4)))),
)

# Kinds scapy decodes under a name of its own; the scapy comparisons leave them out of the
# unknown options they generate.
SCAPY_NAMED = frozenset(TCPOptions[0])
KNOWN = frozenset({0, 1, 2, 3, 4, 5, 8})


def _header(options: bytes, flags: int = ACK, payload: bytes = b"") -> bytes:
    """A raw segment with the given option bytes (length a multiple of 4), checksum 0."""
    assert len(options) % 4 == 0
    doff = (20 + len(options)) // 4
    word = (doff << 12) | flags
    return (
        bytes.fromhex("0001000200000064000000c8")
        + word.to_bytes(2, "big")
        + bytes.fromhex("100000000000")
        + options
        + payload
    )


# --- golden bytes ---------------------------------------------------------------------------


def test_build_golden_syn() -> None:
    assert SYN_HEADER.header_len == 40
    assert SYN_HEADER.data_offset == 10
    assert SYN_HEADER.build(b"", CLIENT, SERVER) == GOLDEN_SYN


def test_parse_golden_syn() -> None:
    tcp, payload = Tcp.parse(GOLDEN_SYN)
    assert tcp == SYN_HEADER
    assert tcp.checksum == 0x9FFA
    assert payload == b""
    assert transport_checksum_ok(CLIENT, SERVER, 6, GOLDEN_SYN)


def test_build_golden_data() -> None:
    assert DATA_HEADER.build(b"data", SERVER, CLIENT) == GOLDEN_DATA


def test_parse_golden_data() -> None:
    tcp, payload = Tcp.parse(GOLDEN_DATA)
    assert tcp == DATA_HEADER
    assert (tcp.seq, tcp.ack, tcp.flags, tcp.window, tcp.checksum) == (
        0xFFFFFFF0,
        0x01020305,
        0x18,
        502,
        0x9CC5,
    )
    assert payload == b"data"
    assert transport_checksum_ok(SERVER, CLIENT, 6, GOLDEN_DATA)
    assert not transport_checksum_ok(CLIENT, SERVER + 1, 6, GOLDEN_DATA)


def test_no_options() -> None:
    tcp = Tcp(1, 2, 3, 4, RST | ACK, 0, urgent=7)
    seg = tcp.build(b"", CLIENT, SERVER)
    assert len(seg) == 20
    assert seg[12:14] == b"\x50\x14"
    assert seg[18:20] == b"\x00\x07"
    assert Tcp.parse(seg) == (tcp, b"")


def test_flag_bits_on_the_wire() -> None:
    # Byte 13 holds CWR ECE URG ACK PSH RST SYN FIN; NS is byte 12 bit 0.
    for flag, byte12, byte13 in [
        (FIN, 0x50, 0x01),
        (SYN, 0x50, 0x02),
        (RST, 0x50, 0x04),
        (PSH, 0x50, 0x08),
        (ACK, 0x50, 0x10),
        (URG, 0x50, 0x20),
        (ECE, 0x50, 0x40),
        (CWR, 0x50, 0x80),
        (NS, 0x51, 0x00),
        (0x200, 0x52, 0x00),  # the reserved bits are kept, not lost
        (0x800, 0x58, 0x00),
    ]:
        seg = Tcp(1, 2, 3, 4, flag, 5).build(b"", CLIENT, SERVER)
        assert (seg[12], seg[13]) == (byte12, byte13), hex(flag)
        assert Tcp.parse(seg)[0].flags == flag


def test_ns_flag_with_scapy() -> None:
    seg = Tcp(1, 2, 3, 4, NS | ECE | CWR | SYN, 5).build(b"", CLIENT, SERVER)
    tcp = IP(bytes(IP(src="10.0.1.2", dst="10.0.2.2", proto=6) / Raw(seg)))[TCP]
    assert str(tcp.flags) == "SECN"


def test_computed_zero_checksum_stays_zero() -> None:
    # Unlike UDP, TCP sends a computed 0 as 0.
    base = Tcp(1, 2, 3, 4, ACK, 5)
    zero_word = base.build(b"\x00\x00", CLIENT, SERVER)
    zero_word = zero_word[:16] + b"\x00\x00" + zero_word[18:]
    word = transport_checksum(CLIENT, SERVER, 6, zero_word).to_bytes(2, "big")
    seg = base.build(word, CLIENT, SERVER)
    assert seg[16:18] == b"\x00\x00"
    assert transport_checksum_ok(CLIENT, SERVER, 6, seg)


def test_equality_ignores_checksum() -> None:
    assert Tcp(1, 2, 3, 4, ACK, 5, checksum=9) == Tcp(1, 2, 3, 4, ACK, 5)


def test_find_option_and_flags_to_str() -> None:
    assert SYN_HEADER.find_option(Mss) == Mss(1460)
    assert SYN_HEADER.find_option(WindowScale) == WindowScale(7)
    assert SYN_HEADER.find_option(Sack) is None
    assert flags_to_str(SYN) == "S"
    assert flags_to_str(SYN | ACK) == "S."
    assert flags_to_str(FIN | PSH | ACK) == "FP."
    assert flags_to_str(ACK) == "."
    assert flags_to_str(0) == "none"
    assert flags_to_str(SYN | ECE | CWR | NS) == "SEWN"


# --- options: every kind, and leniency like tcp_parse_options --------------------------------


@pytest.mark.parametrize(
    ("raw", "options"),
    [
        (b"", ()),
        (bytes.fromhex("020405b4"), (Mss(1460),)),
        (bytes.fromhex("01030300"), (Nop(), WindowScale(0))),
        (bytes.fromhex("0103030e"), (Nop(), WindowScale(14))),
        (bytes.fromhex("04020000"), (SackPermitted(),)),
        (bytes.fromhex("080a00000001000000020000"), (Timestamps(1, 2),)),
        (bytes.fromhex("080affffffffffffffff0000"), (Timestamps(0xFFFFFFFF, 0xFFFFFFFF),)),
        (bytes.fromhex("0101050affffffff00000000"), (Nop(), Nop(), Sack(((0xFFFFFFFF, 0),)))),
        (
            bytes.fromhex("01010522" + "00000001000000020000000300000004" * 2),
            (Nop(), Nop(), Sack(((1, 2), (3, 4), (1, 2), (3, 4)))),
        ),
        # Unknown kinds are kept: MD5 signature (19), TFO cookie (34), experimental (254).
        (
            bytes.fromhex("1312" + "ab" * 16 + "0101"),
            (UnknownOption(19, b"\xab" * 16), Nop(), Nop()),
        ),
        (
            bytes.fromhex("2206" + "c0ffee01" + "0000"),
            (UnknownOption(34, bytes.fromhex("c0ffee01")),),
        ),
        (bytes.fromhex("fe04f989"), (UnknownOption(254, bytes.fromhex("f989")),)),
        (bytes.fromhex("07020000"), (UnknownOption(7, b""),)),
    ],
)
def test_options_well_formed(raw: bytes, options: tuple[TcpOption, ...]) -> None:
    assert parse_options(raw) == options
    assert build_options(options) == raw
    seg = _header(raw)
    tcp, _ = Tcp.parse(seg)
    assert tcp.options == options
    assert tcp.build(b"", 1, 2)[20:] == raw


@pytest.mark.parametrize(
    ("raw", "options"),
    [
        # A known kind with a length not its own is skipped by Linux and kept here as unknown.
        (bytes.fromhex("02030500"), (UnknownOption(2, b"\x05"),)),
        (bytes.fromhex("020505b400"), (UnknownOption(2, bytes.fromhex("05b400")),)),
        (bytes.fromhex("03020000"), (UnknownOption(3, b""),)),
        (bytes.fromhex("03040700"), (UnknownOption(3, b"\x07\x00"),)),
        (bytes.fromhex("040300"), (UnknownOption(4, b"\x00"),)),
        (bytes.fromhex("0502"), (UnknownOption(5, b""),)),  # SACK without a block
        (bytes.fromhex("050600000001"), (UnknownOption(5, bytes.fromhex("00000001")),)),
        (bytes.fromhex("0808000000010000"), (UnknownOption(8, bytes.fromhex("000000010000")),)),
        (
            bytes.fromhex("080b0000000100000002ff"),
            (UnknownOption(8, bytes.fromhex("0000000100000002ff")),),
        ),
    ],
)
def test_options_known_kind_wrong_length(raw: bytes, options: tuple[TcpOption, ...]) -> None:
    assert parse_options(raw) == options
    padded = raw + bytes(-len(raw) % 4)
    assert build_options(options) == padded
    tcp, _ = Tcp.parse(_header(padded))
    assert tcp.options == options
    assert tcp.build(b"", 1, 2)[20:] == padded


@pytest.mark.parametrize(
    ("raw", "options"),
    [
        # Where Linux stops parsing, the rest of the option area is kept verbatim.
        (bytes.fromhex("02000000"), (UnparsedOptions(bytes.fromhex("02000000")),)),  # length 0
        (
            bytes.fromhex("020405b408010000"),
            (Mss(1460), UnparsedOptions(bytes.fromhex("08010000"))),
        ),
        (
            bytes.fromhex("01010105"),
            (Nop(), Nop(), Nop(), UnparsedOptions(b"\x05")),
        ),  # no length byte
        (
            bytes.fromhex("0101080a00000001"),
            (Nop(), Nop(), UnparsedOptions(bytes.fromhex("080a00000001"))),
        ),
        (bytes.fromhex("fe09000000000000"), (UnparsedOptions(bytes.fromhex("fe09") + bytes(6)),)),
        (bytes.fromhex("ffff" + "00" * 38), (UnparsedOptions(bytes.fromhex("ffff") + bytes(38)),)),
    ],
)
def test_options_unparsed_tail(raw: bytes, options: tuple[TcpOption, ...]) -> None:
    assert parse_options(raw) == options
    tcp, _ = Tcp.parse(_header(raw))
    assert tcp.options == options
    assert tcp.build(b"", 1, 2)[20:] == raw  # rebuilt byte for byte


def test_options_eol_ends_the_list() -> None:
    # EOL and whatever follows it are dropped; build pads with EOL again.
    assert parse_options(bytes.fromhex("020405b400030307")) == (Mss(1460),)
    assert parse_options(bytes.fromhex("00020405b4")) == ()
    assert parse_options(bytes.fromhex("0100ffffff")) == (Nop(),)
    tcp, _ = Tcp.parse(_header(bytes.fromhex("020405b400ffffff")))
    assert tcp.options == (Mss(1460),)
    assert tcp.header_len == 24  # the area after EOL is not kept
    assert tcp.build(b"", 1, 2)[20:] == bytes.fromhex("020405b4")
    tcp, _ = Tcp.parse(_header(bytes.fromhex("0101030300000000")))
    assert tcp.options == (Nop(), Nop(), WindowScale(0))
    assert tcp.build(b"", 1, 2)[20:] == bytes.fromhex("0101030300000000")


def test_options_unknown_kind_from_parse_round_trips() -> None:
    for kind in (6, 7, 9, 14, 15, 19, 28, 29, 30, 34, 69, 253, 254, 255):
        opt = UnknownOption(kind, bytes(range(kind % 7)))
        assert parse_options(opt.build()) == (opt,)


def test_option_validation() -> None:
    for bad in (
        lambda: Mss(0x10000),
        lambda: Mss(-1),
        lambda: WindowScale(256),
        lambda: Timestamps(1 << 32, 0),
        lambda: Timestamps(0, -1),
        lambda: Sack(()),
        lambda: Sack(((1, 2),) * 5),
        lambda: Sack(((1 << 32, 2),)),
        lambda: UnknownOption(0, b""),
        lambda: UnknownOption(1, b""),
        lambda: UnknownOption(256, b""),
        lambda: UnknownOption(9, bytes(254)),
        lambda: UnparsedOptions(b""),
    ):
        with pytest.raises(ValueError):
            bad()
    assert Sack([[1, 2], [3, 4]]).blocks == ((1, 2), (3, 4))


def test_header_validation() -> None:
    with pytest.raises(ValueError):
        Tcp(0x10000, 1, 0, 0, 0, 0)
    with pytest.raises(ValueError):
        Tcp(1, 1, 1 << 32, 0, 0, 0)
    with pytest.raises(ValueError):
        Tcp(1, 1, 0, -1, 0, 0)
    with pytest.raises(ValueError):
        Tcp(1, 1, 0, 0, 0x1000, 0)
    with pytest.raises(ValueError):
        Tcp(1, 1, 0, 0, 0, 0x10000)
    with pytest.raises(ValueError):
        Tcp(1, 1, 0, 0, 0, 0, urgent=0x10000)
    # 40 bytes of options fit; 41 (padded to 44) do not.
    four = Sack(((1, 2),) * 4)
    assert Tcp(1, 1, 0, 0, ACK, 0, options=(Nop(), Nop(), four, Nop(), Nop())).header_len == 60
    with pytest.raises(ValueError):
        Tcp(1, 1, 0, 0, ACK, 0, options=(four, Timestamps(1, 2)))
    with pytest.raises(ValueError):
        Tcp(1, 1, 0, 0, ACK, 0, options=(UnparsedOptions(b"\x05"), Nop()))
    with pytest.raises(TypeError):
        Tcp(1, 1, 0, 0, ACK, 0, options=(("MSS", 1460),))


def test_build_too_long() -> None:
    assert len(Tcp(1, 2, 3, 4, ACK, 5).build(bytes(0xFFFF - 20), 1, 2)) == 0xFFFF
    with pytest.raises(ValueError):
        Tcp(1, 2, 3, 4, ACK, 5).build(bytes(0xFFFF - 19), 1, 2)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(19),
        _header(b"")[:12] + b"\x40\x10" + _header(b"")[14:],  # data offset 4
        _header(b"")[:12] + b"\x00\x10" + _header(b"")[14:],  # data offset 0
        _header(b"")[:12] + b"\x60\x10" + _header(b"")[14:],  # 24-byte header in 20 bytes
        _header(b"")[:12] + b"\xf0\x10" + _header(b"")[14:] + bytes(39),  # 60 in 59
    ],
)
def test_parse_malformed(data: bytes) -> None:
    with pytest.raises(MalformedPacket):
        Tcp.parse(data)


def test_payload_is_everything_after_the_header() -> None:
    tcp, payload = Tcp.parse(_header(bytes.fromhex("020405b4"), payload=b"abc\x00\x00"))
    assert tcp.options == (Mss(1460),)
    assert payload == b"abc\x00\x00"  # TCP has no length field; IP trims


# --- agreement with scapy ---------------------------------------------------------------------


def _unknown_kinds(exclude: frozenset[int]) -> st.SearchStrategy[int]:
    return st.sampled_from([kind for kind in range(2, 256) if kind not in exclude])


u32 = st.integers(0, 0xFFFFFFFF)
option_strategies: list[st.SearchStrategy[TcpOption]] = [
    st.builds(Mss, st.integers(0, 0xFFFF)),
    st.builds(WindowScale, st.integers(0, 255)),
    st.just(SackPermitted()),
    st.builds(Sack, st.lists(st.tuples(u32, u32), min_size=1, max_size=4).map(tuple)),
    st.builds(Timestamps, u32, u32),
    st.just(Nop()),
]
scapy_options = st.one_of(
    *option_strategies,
    st.builds(UnknownOption, _unknown_kinds(SCAPY_NAMED | KNOWN), st.binary(max_size=12)),
)
# Any kind, known ones with lengths not their own (which parse back as UnknownOption too).
all_options = st.one_of(
    *option_strategies,
    st.builds(UnknownOption, st.integers(2, 255), st.binary(max_size=12)).filter(
        lambda opt: parse_options(opt.build()) == (opt,)
    ),
)


@st.composite
def option_lists(draw: st.DrawFn, options: st.SearchStrategy[TcpOption]) -> tuple[TcpOption, ...]:
    """Options in any order and mix, as many as fit the 40 bytes of a header."""
    out: list[TcpOption] = []
    size = 0
    for _ in range(draw(st.integers(0, 10))):
        opt = draw(options)
        n = len(opt.build())
        if size + n <= 40:
            out.append(opt)
            size += n
    return tuple(out)


def _to_scapy(opt: TcpOption) -> tuple:
    if isinstance(opt, Mss):
        return ("MSS", opt.mss)
    if isinstance(opt, WindowScale):
        return ("WScale", opt.shift)
    if isinstance(opt, SackPermitted):
        return ("SAckOK", b"")
    if isinstance(opt, Sack):
        return ("SAck", tuple(edge for block in opt.blocks for edge in block))
    if isinstance(opt, Timestamps):
        return ("Timestamp", (opt.tsval, opt.tsecr))
    if isinstance(opt, Nop):
        return ("NOP", None)
    assert isinstance(opt, UnknownOption)
    return (opt.kind, opt.data)


def _from_scapy(options: list) -> tuple[TcpOption, ...]:
    out: list[TcpOption] = []
    for name, value in options:
        if name == "EOL":
            break
        if name == "MSS":
            out.append(Mss(value))
        elif name == "WScale":
            out.append(WindowScale(value))
        elif name == "SAckOK":
            assert value == b""
            out.append(SackPermitted())
        elif name == "SAck":
            out.append(Sack(tuple(zip(value[::2], value[1::2], strict=True))))
        elif name == "Timestamp":
            out.append(Timestamps(*value))
        elif name == "NOP":
            out.append(Nop())
        else:
            assert isinstance(name, int), name
            out.append(UnknownOption(name, value))
    return tuple(out)


headers = st.builds(
    Tcp,
    src_port=st.integers(0, 0xFFFF),
    dst_port=st.integers(0, 0xFFFF),
    seq=u32,
    ack=u32,
    flags=st.integers(0, 0xFFF),
    window=st.integers(0, 0xFFFF),
    urgent=st.integers(0, 0xFFFF),
    options=option_lists(scapy_options),
)
addrs = st.integers(0, 0xFFFFFFFF)
payloads = st.binary(max_size=1500)


@settings(max_examples=250, deadline=None)
@given(tcp=headers, payload=payloads, src=addrs, dst=addrs)
def test_our_build_parsed_by_scapy(tcp: Tcp, payload: bytes, src: int, dst: int) -> None:
    seg = tcp.build(payload, src, dst)
    ip = IP(bytes(IP(src=ip_to_str(src), dst=ip_to_str(dst), proto=6) / Raw(seg)))
    got = ip[TCP]
    assert (got.sport, got.dport, got.seq, got.ack) == (
        tcp.src_port,
        tcp.dst_port,
        tcp.seq,
        tcp.ack,
    )
    assert (got.reserved << 9) | int(got.flags) == tcp.flags
    assert (got.window, got.urgptr) == (tcp.window, tcp.urgent)
    assert got.dataofs * 4 == tcp.header_len
    assert _from_scapy(got.options) == tcp.options
    assert got.chksum == int.from_bytes(seg[16:18], "big")
    assert bytes(got.payload) == payload
    assert in4_chksum(6, ip, seg) == 0  # scapy verifies the pseudo-header checksum


@settings(max_examples=250, deadline=None)
@given(tcp=headers, payload=payloads, src=addrs, dst=addrs)
def test_scapy_build_parsed_by_us(tcp: Tcp, payload: bytes, src: int, dst: int) -> None:
    pkt = IP(src=ip_to_str(src), dst=ip_to_str(dst)) / TCP(
        sport=tcp.src_port,
        dport=tcp.dst_port,
        seq=tcp.seq,
        ack=tcp.ack,
        reserved=tcp.flags >> 9,
        flags=tcp.flags & 0x1FF,
        window=tcp.window,
        urgptr=tcp.urgent,
        options=[_to_scapy(opt) for opt in tcp.options],
    )
    seg = bytes(pkt / Raw(payload))[20:]
    got, got_payload = Tcp.parse(seg)
    assert got == tcp
    assert got.checksum == int.from_bytes(seg[16:18], "big")
    assert got_payload == payload
    assert transport_checksum_ok(src, dst, 6, seg)
    assert got.build(got_payload, src, dst) == seg  # build(parse(x)) == x


@settings(max_examples=300, deadline=None)
@given(options=option_lists(all_options), payload=st.binary(max_size=64))
def test_round_trip_any_options(options: tuple[TcpOption, ...], payload: bytes) -> None:
    assert parse_options(build_options(options)) == options
    tcp = Tcp(1, 2, 3, 4, ACK, 5, options=options)
    seg = tcp.build(payload, CLIENT, SERVER)
    assert Tcp.parse(seg) == (tcp, payload)
    assert Tcp.parse(seg)[0].build(payload, CLIENT, SERVER) == seg
    assert transport_checksum_ok(CLIENT, SERVER, 6, seg)


@pytest.mark.parametrize(
    "options",
    [
        (Mss(536),),
        (WindowScale(14),),
        (SackPermitted(),),
        (Sack(((10, 20),)),),
        (Sack(((1, 2), (3, 4), (5, 6))),),
        (Timestamps(0xDEADBEEF, 1),),
        (Nop(),),
        (UnknownOption(254, b"\xf9\x89"),),
        (Mss(1460), SackPermitted(), Timestamps(7, 0), Nop(), WindowScale(10)),  # Linux's SYN
        (Nop(), Nop(), Timestamps(1, 2), Nop(), Nop(), Sack(((1, 2), (3, 4), (5, 6)))),
    ],
)
def test_each_option_kind_agrees_with_scapy(options: tuple[TcpOption, ...]) -> None:
    tcp = Tcp(1, 2, 3, 4, ACK, 5, options=options)
    seg = tcp.build(b"x", CLIENT, SERVER)
    scapy_seg = bytes(
        IP(src="10.0.1.2", dst="10.0.2.2")
        / TCP(
            sport=1,
            dport=2,
            seq=3,
            ack=4,
            flags="A",
            window=5,
            options=[_to_scapy(o) for o in options],
        )
        / Raw(b"x")
    )[20:]
    assert seg == scapy_seg
    assert Tcp.parse(scapy_seg) == (tcp, b"x")


# --- fuzzing ------------------------------------------------------------------------------------


def _check_parse(data: bytes) -> bool:
    try:
        tcp, payload = Tcp.parse(data)
    except MalformedPacket:
        return False
    assert tcp.header_len <= (data[12] >> 4) * 4
    assert payload == data[(data[12] >> 4) * 4 :]
    # Whatever was parsed builds, and parses back to the same header.
    assert Tcp.parse(tcp.build(payload, 1, 2)) == (tcp, payload)
    return True


def _random_options(rng: random.Random) -> bytes:
    pieces = [
        bytes.fromhex("020405b4"),
        bytes.fromhex("030307"),
        bytes.fromhex("0402"),
        bytes.fromhex("080a0000000100000002"),
        bytes.fromhex("050a0000000100000002"),
        bytes.fromhex("051200000001000000020000000300000004"),
        b"\x01",
        b"\x00",
        bytes((rng.randrange(256), rng.randrange(256))),
        bytes((rng.randrange(2, 256), 2 + rng.randrange(6))) + rng.randbytes(rng.randrange(8)),
    ]
    raw = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 8)))[:40]
    return raw + bytes(-len(raw) % 4)


def test_fuzz_parse() -> None:
    rng = random.Random(9293)
    parsed = 0
    for i in range(10_000):
        if i % 3 == 0:
            data = rng.randbytes(rng.randrange(0, 80))
        else:
            buf = bytearray(
                _header(_random_options(rng), rng.getrandbits(12), rng.randbytes(rng.randrange(4)))
            )
            for _ in range(rng.randrange(0, 4)):
                what = rng.randrange(4)
                if what == 0 and buf:
                    buf[rng.randrange(len(buf))] = rng.getrandbits(8)
                elif what == 1:
                    del buf[rng.randrange(len(buf) + 1) :]
                elif what == 2:
                    buf += rng.randbytes(rng.randrange(1, 8))
                elif len(buf) > 12:  # a random data offset
                    buf[12] = (buf[12] & 0x0F) | (rng.randrange(16) << 4)
            data = bytes(buf)
        parsed += _check_parse(data)
    assert parsed > 3000  # the mutations leave many segments parseable


def test_fuzz_parse_options() -> None:
    rng = random.Random(1323)
    for i in range(10_000):
        raw = rng.randbytes(rng.randrange(0, 44)) if i % 2 else _random_options(rng)
        if i % 5 == 0 and raw:
            raw = raw[: rng.randrange(len(raw))]
        options = parse_options(raw)  # never raises at all
        rebuilt = build_options(options)
        if len(raw) % 4 == 0:
            assert len(rebuilt) <= len(raw)
            assert parse_options(rebuilt) == options
