"""Classic pcap files (LINKTYPE_ETHERNET) with nanosecond timestamps from the emulator's clock.

Format: https://www.tcpdump.org/manpages/pcap-savefile.5.html — a 24-byte global header whose
magic 0xA1B23C4D marks nanosecond resolution, then per frame a 16-byte record header (seconds,
nanoseconds, captured length, original length) followed by the frame bytes.  Wireshark, tshark,
tcpdump and scapy's ``rdpcap`` read it.  Timestamps are virtual time, so a run's pcap is
byte-identical for a given seed.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

PCAP_MAGIC_NS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
DEFAULT_SNAPLEN = 262144

# magic, version major, version minor, thiszone, sigfigs, snaplen, linktype
_GLOBAL = struct.Struct("<IHHiIII")
# seconds, nanoseconds, captured length, original length
_RECORD = struct.Struct("<IIII")


class PcapWriter:
    """Writes frames to an open binary file; the caller owns (and closes) the file."""

    def __init__(self, file: BinaryIO, snaplen: int = DEFAULT_SNAPLEN) -> None:
        if snaplen <= 0:
            raise ValueError(f"snaplen must be positive, got {snaplen}")
        self._file = file
        self.snaplen = snaplen
        self.frames = 0
        file.write(_GLOBAL.pack(PCAP_MAGIC_NS, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def write(self, frame: bytes, time: float | int) -> None:
        """Record ``frame`` seen at ``time`` (float seconds, or int nanoseconds)."""
        ns = time if isinstance(time, int) else round(time * 1_000_000_000)
        if ns < 0:
            raise ValueError(f"negative timestamp {time!r}")
        seconds, nanos = divmod(ns, 1_000_000_000)
        captured = frame[: self.snaplen]
        self._file.write(_RECORD.pack(seconds, nanos, len(captured), len(frame)))
        self._file.write(captured)
        self.frames += 1

    def flush(self) -> None:
        self._file.flush()


def open_pcap(path: str, snaplen: int = DEFAULT_SNAPLEN) -> tuple[BinaryIO, PcapWriter]:
    """Open ``path`` for writing and return the file and its writer."""
    f = open(path, "wb")
    return f, PcapWriter(f, snaplen)
