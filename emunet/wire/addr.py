"""Address helpers: IPv4 addresses are ``int`` inside emunet, MAC addresses 6 ``bytes``."""

from __future__ import annotations

import socket
import struct

from .errors import MalformedPacket

BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
_IP = struct.Struct("!I")


def ip_from_str(text: str) -> int:
    """``"10.0.0.1"`` -> ``0x0A000001``; raises ValueError on anything else."""
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
    except (OSError, TypeError) as exc:
        raise ValueError(f"not an IPv4 address: {text!r}") from exc
    return _IP.unpack(packed)[0]


def ip_to_str(addr: int) -> str:
    return socket.inet_ntop(socket.AF_INET, _IP.pack(addr))


def ip_to_bytes(addr: int) -> bytes:
    return _IP.pack(addr)


def ip_from_bytes(data: bytes) -> int:
    if len(data) != 4:
        raise MalformedPacket(f"IPv4 address needs 4 bytes, got {len(data)}")
    return _IP.unpack(data)[0]


def mac_from_str(text: str) -> bytes:
    """``"02:00:00:00:00:01"`` -> 6 bytes; raises ValueError on anything else."""
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    try:
        out = bytes(int(p, 16) for p in parts)
    except ValueError as exc:
        raise ValueError(f"not a MAC address: {text!r}") from exc
    if any(len(p) != 2 for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return out


def mac_to_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def prefix_mask(length: int) -> int:
    """Netmask for a prefix length 0..32 as an int."""
    if not 0 <= length <= 32:
        raise ValueError(f"prefix length {length} is not in 0..32")
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
