"""pcap files read back with scapy and decode cleanly with tshark where it is installed."""

import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from emunet.fabric.pcap import PcapWriter, open_pcap

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def _frames() -> list[bytes]:
    """A few frames built with our own wire classes (not scapy): ICMP echo, UDP, ARP."""
    from emunet.wire.arp import ARP_REQUEST, Arp
    from emunet.wire.ethernet import ETH_P_ARP, ETH_P_IP, Ethernet
    from emunet.wire.icmp import ICMP_ECHO, Icmp
    from emunet.wire.ipv4 import IPPROTO_ICMP, IPPROTO_UDP, Ipv4
    from emunet.wire.udp import Udp

    a, b = 0x0A000102, 0x0A000202
    eth_ip = Ethernet(MAC_B, MAC_A, ETH_P_IP)
    icmp = Icmp.echo(ICMP_ECHO, 0x1234, 1).build(bytes(range(56)))
    udp = Udp(40000, 5001).build(b"hello, pcap" * 3, a, b)
    arp = Arp(ARP_REQUEST, MAC_A, a, bytes(6), 0x0A000101).build()
    return [
        eth_ip.build(Ipv4(a, b, IPPROTO_ICMP, id=1).build(icmp)),
        eth_ip.build(Ipv4(a, b, IPPROTO_UDP, id=2).build(udp)),
        Ethernet(b"\xff" * 6, MAC_A, ETH_P_ARP).build(arp),
    ]


def test_global_header_is_nanosecond_ethernet() -> None:
    buf = io.BytesIO()
    PcapWriter(buf)
    magic, major, minor, _zone, _sig, snaplen, linktype = struct.unpack("<IHHiIII", buf.getvalue())
    assert (magic, major, minor, snaplen, linktype) == (0xA1B23C4D, 2, 4, 262144, 1)


def test_record_timestamps_are_exact_nanoseconds() -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf)
    w.write(b"\x00" * 60, 1.000000001)
    w.write(b"\x00" * 60, 2_500_000_007)  # int nanoseconds
    data = buf.getvalue()[24:]
    assert struct.unpack_from("<IIII", data, 0) == (1, 1, 60, 60)
    assert struct.unpack_from("<IIII", data, 76) == (2, 500_000_007, 60, 60)


def test_snaplen_truncates_but_keeps_original_length() -> None:
    buf = io.BytesIO()
    w = PcapWriter(buf, snaplen=64)
    w.write(bytes(100), 0.0)
    assert struct.unpack_from("<IIII", buf.getvalue(), 24) == (0, 0, 64, 100)
    assert len(buf.getvalue()) == 24 + 16 + 64


def test_negative_time_is_refused() -> None:
    with pytest.raises(ValueError):
        PcapWriter(io.BytesIO()).write(b"", -1.0)


def test_scapy_reads_our_pcap(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    f, w = open_pcap(str(path))
    frames = _frames()
    with f:
        for i, frame in enumerate(frames):
            w.write(frame, 0.5 + i * 0.001)
    pkts = rdpcap(str(path))
    assert [bytes(p) for p in pkts] == frames
    assert [float(p.time) for p in pkts] == pytest.approx([0.5, 0.501, 0.502], abs=1e-9)
    assert pkts[0][ICMP].id == 0x1234 and pkts[0][IP].src == "10.0.1.2"
    assert bytes(pkts[1][UDP].payload) == b"hello, pcap" * 3
    assert isinstance(pkts[2], Ether)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_decodes_without_warnings(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    f, w = open_pcap(str(path))
    with f:
        for i, frame in enumerate(_frames()):
            w.write(frame, i * 0.001)
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-V",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.count("Frame ") >= 3
    assert "Malformed" not in out
    assert "[Checksum Status: Bad]" not in out
    assert "Checksum Status: Good" in out
    expert = subprocess.run(
        ["tshark", "-r", str(path), "-z", "expert,warn", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Malformed" not in expert and "Bad checksum" not in expert
