"""emunet.wire.arp: golden bytes, agreement with scapy both ways, and fuzzing."""

from __future__ import annotations

import random

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Padding

from emunet.wire.addr import (
    BROADCAST_MAC,
    ZERO_MAC,
    ip_from_str,
    ip_to_str,
    mac_from_str,
    mac_to_str,
)
from emunet.wire.arp import ARP_LEN, ARP_REPLY, ARP_REQUEST, Arp
from emunet.wire.errors import MalformedPacket
from emunet.wire.ethernet import ETH_P_ARP, Ethernet

HOST_MAC = mac_from_str("02:42:ac:11:00:02")
GW_MAC = mac_from_str("02:42:3b:5c:7e:01")
HOST_IP = ip_from_str("172.17.0.2")
GW_IP = ip_from_str("172.17.0.1")

# --- golden bytes -------------------------------------------------------------------------------

# Linux asking "who has 172.17.0.1? tell 172.17.0.2" (target MAC all zeros, as arp_send leaves it),
# laid out as Linux sends it in a 60-byte broadcast frame: 14 Ethernet + 28 ARP + 18 padding.
REQUEST_FRAME = bytes.fromhex(
    "ffffffffffff 0242ac110002 0806"  # Ethernet: broadcast, from the host, ARP
    "0001 0800 06 04 0001"  # Ethernet/IPv4, lengths 6/4, request
    "0242ac110002 ac110002"  # sender MAC, 172.17.0.2
    "000000000000 ac110001"  # target MAC unknown, 172.17.0.1
) + bytes(18)
REQUEST = Arp(ARP_REQUEST, HOST_MAC, HOST_IP, ZERO_MAC, GW_IP)

# The gateway's unicast reply.
REPLY_BODY = bytes.fromhex("0001 0800 06 04 0002 02423b5c7e01 ac110001 0242ac110002 ac110002")
REPLY = Arp(ARP_REPLY, GW_MAC, GW_IP, HOST_MAC, HOST_IP)


def test_golden_request_parses() -> None:
    eth, payload = Ethernet.parse(REQUEST_FRAME)
    assert eth == Ethernet(BROADCAST_MAC, HOST_MAC, ETH_P_ARP)
    arp, trailing = Arp.parse(payload)
    assert arp == REQUEST
    assert trailing == bytes(18)


def test_golden_request_builds() -> None:
    assert REQUEST.build() == REQUEST_FRAME[14:42]
    assert Ethernet(BROADCAST_MAC, HOST_MAC, ETH_P_ARP).build(REQUEST.build()) == REQUEST_FRAME


def test_golden_reply_both_ways() -> None:
    assert Arp.parse(REPLY_BODY) == (REPLY, b"")
    assert REPLY.build() == REPLY_BODY
    assert len(REPLY_BODY) == ARP_LEN


def test_other_operation_codes_parse() -> None:
    # RARP and InARP codes are not ours to act on, but not malformed either (arp_process ignores).
    body = bytearray(REPLY_BODY)
    body[7] = 3
    arp, _ = Arp.parse(bytes(body))
    assert arp == attrs.evolve(REPLY, op=3)


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (1, 6, "hardware type 6"),  # IEEE 802 hardware type
        (2, 0x86, "protocol type 0x8600"),
        (4, 8, "lengths 8/4"),
        (5, 16, "lengths 6/16"),
    ],
)
def test_malformed_fields(offset: int, value: int, reason: str) -> None:
    body = bytearray(REPLY_BODY)
    body[offset] = value
    with pytest.raises(MalformedPacket, match=reason):
        Arp.parse(bytes(body))


def test_too_short() -> None:
    for n in range(ARP_LEN):
        with pytest.raises(MalformedPacket, match="shorter than 28"):
            Arp.parse(REPLY_BODY[:n])


def test_constructor_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        Arp(0x10000, HOST_MAC, HOST_IP, ZERO_MAC, GW_IP)
    with pytest.raises(ValueError):
        Arp(1, HOST_MAC[:5], HOST_IP, ZERO_MAC, GW_IP)
    with pytest.raises(ValueError):
        Arp(1, HOST_MAC, 1 << 32, ZERO_MAC, GW_IP)
    with pytest.raises(ValueError):
        Arp(1, HOST_MAC, HOST_IP, ZERO_MAC, -1)
    with pytest.raises(TypeError):
        Arp(1, "02:42:ac:11:00:02", HOST_IP, ZERO_MAC, GW_IP)
    with pytest.raises(TypeError):
        Arp(1, HOST_MAC, "172.17.0.2", ZERO_MAC, GW_IP)
    with pytest.raises(TypeError):
        Arp(True, HOST_MAC, HOST_IP, ZERO_MAC, GW_IP)
    assert Arp(1, bytearray(HOST_MAC), HOST_IP, ZERO_MAC, GW_IP).sender_mac == HOST_MAC


# --- agreement with scapy -----------------------------------------------------------------------

macs = st.one_of(
    st.binary(min_size=6, max_size=6), st.sampled_from([BROADCAST_MAC, ZERO_MAC, HOST_MAC])
)
ips = st.integers(0, 0xFFFFFFFF)
arps = st.builds(
    Arp,
    op=st.one_of(st.sampled_from([ARP_REQUEST, ARP_REPLY]), st.integers(0, 0xFFFF)),
    sender_mac=macs,
    sender_ip=ips,
    target_mac=macs,
    target_ip=ips,
)


def _check_scapy_arp(pkt: ARP, arp: Arp) -> None:
    assert (pkt.hwtype, pkt.ptype, pkt.hwlen, pkt.plen) == (1, 0x0800, 6, 4)
    assert pkt.op == arp.op
    assert (pkt.hwsrc, pkt.psrc) == (mac_to_str(arp.sender_mac), ip_to_str(arp.sender_ip))
    assert (pkt.hwdst, pkt.pdst) == (mac_to_str(arp.target_mac), ip_to_str(arp.target_ip))


@settings(max_examples=200, deadline=None)
@given(arp=arps, src=macs)
def test_our_build_parsed_by_scapy(arp: Arp, src: bytes) -> None:
    # ARP has no checksum; scapy must read every field and rebuild the same bytes.
    wire = arp.build()
    pkt = ARP(wire)
    _check_scapy_arp(pkt, arp)
    assert bytes(pkt) == wire
    # Inside a padded Ethernet frame, as a device sends it.
    frame = Ether(Ethernet(BROADCAST_MAC, src, ETH_P_ARP).build(wire))
    _check_scapy_arp(frame[ARP], arp)
    assert bytes(frame[Padding]) == bytes(60 - 14 - ARP_LEN)


@settings(max_examples=200, deadline=None)
@given(arp=arps, src=macs)
def test_scapy_build_parsed_by_us(arp: Arp, src: bytes) -> None:
    pkt = ARP(
        op=arp.op,
        hwsrc=mac_to_str(arp.sender_mac),
        psrc=ip_to_str(arp.sender_ip),
        hwdst=mac_to_str(arp.target_mac),
        pdst=ip_to_str(arp.target_ip),
    )
    assert Arp.parse(bytes(pkt)) == (arp, b"")
    frame = Ether(dst="ff:ff:ff:ff:ff:ff", src=mac_to_str(src)) / pkt / Padding(bytes(18))
    eth, payload = Ethernet.parse(bytes(frame))
    assert eth.ethertype == ETH_P_ARP
    assert Arp.parse(payload) == (arp, bytes(18))


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
    else:  # one bit flipped, then maybe truncated
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        if rng.random() < 0.5:
            del data[rng.randrange(len(data) + 1) :]
    return bytes(data)


def test_fuzz_parse_raises_only_malformed() -> None:
    rng = random.Random(0xA2B)
    seeds = [REQUEST_FRAME[14:], REPLY_BODY, REPLY.build() + b"trailer"]
    accepted = 0
    for i in range(10_000):
        if i % 3 == 0:
            data = rng.randbytes(rng.randint(0, 100))
        else:
            data = _mutate(rng, rng.choice(seeds))
        try:
            arp, trailing = Arp.parse(data)
        except MalformedPacket:
            continue
        accepted += 1
        assert arp.build() + trailing == data
    assert accepted > 1000
