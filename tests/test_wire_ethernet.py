"""emunet.wire.ethernet: golden bytes, agreement with scapy both ways, and fuzzing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from emunet.wire.addr import BROADCAST_MAC, mac_from_str, mac_to_str
from emunet.wire.errors import MalformedPacket
from emunet.wire.ethernet import ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_ZLEN, Ethernet

HOST_MAC = mac_from_str("02:42:ac:11:00:02")
GW_MAC = mac_from_str("02:42:3b:5c:7e:01")

# --- golden bytes -------------------------------------------------------------------------------

# A Linux ARP request as it leaves the NIC: broadcast, 28-byte ARP body, padded to 60 bytes.
ARP_BODY = bytes.fromhex("0001080006040001 0242ac110002ac110002 000000000000ac110001")
ARP_FRAME = bytes.fromhex("ffffffffffff 0242ac110002 0806") + ARP_BODY + bytes(18)

# The head of a 98-byte ping frame from the host to its gateway (IPv4 header and ICMP follow).
PING_HEAD = bytes.fromhex("02423b5c7e01 0242ac110002 0800")
PING_PAYLOAD = bytes.fromhex("45000054 1c464000 40010760 0a000102 0a000202") + bytes(64)


def test_golden_arp_frame_parses() -> None:
    eth, payload = Ethernet.parse(ARP_FRAME)
    assert eth == Ethernet(BROADCAST_MAC, HOST_MAC, ETH_P_ARP)
    assert payload == ARP_BODY + bytes(18)  # padding is the upper layer's to trim


def test_golden_arp_frame_builds_padded() -> None:
    frame = Ethernet(BROADCAST_MAC, HOST_MAC, ETH_P_ARP).build(ARP_BODY)
    assert frame == ARP_FRAME
    assert len(frame) == ETH_ZLEN


def test_golden_ip_frame_both_ways() -> None:
    frame = PING_HEAD + PING_PAYLOAD
    eth, payload = Ethernet.parse(frame)
    assert eth == Ethernet(GW_MAC, HOST_MAC, ETH_P_IP)
    assert payload == PING_PAYLOAD
    assert eth.build(PING_PAYLOAD) == frame  # 98 bytes: no padding
    assert len(frame) == 98


def test_header_only_and_empty_payload() -> None:
    eth = Ethernet(GW_MAC, HOST_MAC, 0x88B5)
    assert eth.build() == PING_HEAD[:12] + b"\x88\xb5" + bytes(ETH_ZLEN - ETH_HLEN)
    assert Ethernet.parse(PING_HEAD[:12] + b"\x88\xb5") == (eth, b"")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than the 14-byte header"),
        (PING_HEAD[:13], "shorter than the 14-byte header"),
        (PING_HEAD[:12] + b"\x05\xdc" + bytes(46), "802.3 length field 1500"),
        (PING_HEAD[:12] + b"\x00\x00", "802.3 length field 0"),
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket, match=reason):
        Ethernet.parse(data)


def test_smallest_ethertype_accepted() -> None:
    eth, _ = Ethernet.parse(PING_HEAD[:12] + b"\x06\x00")
    assert eth.ethertype == 0x0600


def test_constructor_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        Ethernet(GW_MAC, HOST_MAC, 0x10000)
    with pytest.raises(ValueError):
        Ethernet(GW_MAC, HOST_MAC, -1)
    with pytest.raises(ValueError):
        Ethernet(GW_MAC[:5], HOST_MAC, ETH_P_IP)
    with pytest.raises(ValueError):
        Ethernet(GW_MAC, HOST_MAC + b"\x00", ETH_P_IP)


# --- agreement with scapy -----------------------------------------------------------------------

macs = st.one_of(st.binary(min_size=6, max_size=6), st.just(BROADCAST_MAC))
# Ethernet II only: below 0x0600 scapy (and everyone) reads an 802.3 length.
ethertypes = st.one_of(st.sampled_from([ETH_P_IP, ETH_P_ARP]), st.integers(0x0600, 0xFFFF))
payloads = st.binary(max_size=100)


@settings(max_examples=200, deadline=None)
@given(dst=macs, src=macs, ethertype=ethertypes, payload=payloads)
def test_our_build_parsed_by_scapy(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> None:
    frame = Ethernet(dst, src, ethertype).build(payload)
    pkt = Ether(frame)
    assert (pkt.dst, pkt.src, pkt.type) == (mac_to_str(dst), mac_to_str(src), ethertype)
    padded = payload + bytes(max(0, ETH_ZLEN - ETH_HLEN - len(payload)))
    assert bytes(pkt.payload) == padded
    assert len(frame) == max(ETH_ZLEN, ETH_HLEN + len(payload))


@settings(max_examples=200, deadline=None)
@given(dst=macs, src=macs, ethertype=ethertypes, payload=payloads)
def test_scapy_build_parsed_by_us(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> None:
    wire = bytes(Ether(dst=mac_to_str(dst), src=mac_to_str(src), type=ethertype) / Raw(payload))
    eth, rest = Ethernet.parse(wire)
    assert eth == Ethernet(dst, src, ethertype)
    assert rest == payload


# --- fuzzing ------------------------------------------------------------------------------------


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    how = rng.randrange(3)
    if how == 0 and data:  # one byte changed
        data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == 1 and data:  # several bytes changed, in the header
        for _ in range(rng.randint(2, 8)):
            data[rng.randrange(min(len(data), ETH_HLEN))] = rng.randrange(256)
    else:  # truncated
        del data[rng.randrange(len(data) + 1) :]
    return bytes(data)


def test_fuzz_parse_raises_only_malformed() -> None:
    rng = random.Random(0xE7)
    seeds = [ARP_FRAME, PING_HEAD + PING_PAYLOAD]
    accepted = 0
    for i in range(10_000):
        if i % 3 == 0:
            data = rng.randbytes(rng.randint(0, 100))
        else:
            data = _mutate(rng, rng.choice(seeds))
        try:
            eth, payload = Ethernet.parse(data)
        except MalformedPacket:
            continue
        accepted += 1
        assert eth.ethertype >= 0x0600
        frame = eth.build(payload)
        assert frame[: len(data)] == data and not any(frame[len(data) :])
    assert accepted > 1000
