"""Real Linux as a peer: a TAP device as one end of an emunet link.

A TAP device is the kernel's software Ethernet interface (drivers/net/tun.c, described in the
kernel's Documentation/networking/tuntap.rst): a process opens ``/dev/net/tun``, attaches to a
named device with the ``TUNSETIFF`` ioctl (``IFF_TAP | IFF_NO_PI``: Ethernet frames without the
4-byte packet-information prefix), and from then on each ``read`` returns one frame that Linux
transmitted on the device and each ``write`` hands Linux one frame as if the device had received
it.  The device lives while the descriptor is open (it is not made persistent).

:class:`TapPort` is a link endpoint like a host's device or a switch port (``label``, ``txq``,
``netif_rx``), so ``net.add_link("h:eth0", "tap0:tap")`` joins an emulated interface or switch
port to Linux:

- Linux -> emunet: the reader task waits with ``trio.lowlevel.wait_readable`` and reads frames
  in NAPI-sized batches into the port's :class:`~emunet.fabric.link.TxQueue`, which serializes
  them onto the link like any sender.  A frame shorter than 60 bytes is padded to 60, as a real
  NIC pads on transmit (Linux hands a TAP reader unpadded 42-byte ARP frames).
- emunet -> Linux: the link's delivery task calls ``netif_rx``, which writes the frame to the
  descriptor (a TAP write never blocks; a frame Linux refuses, e.g. while the device is down, is
  counted as ``rx_dropped``).
- The link between them is an ordinary :class:`~emunet.fabric.link.Link`: its impairments
  (delay, loss, bandwidth, ...) apply both ways; by default it has none, so frames cross at
  once.  A link ``mtu`` also becomes the Linux device's MTU when the TAP is opened.

Optionally the TAP is moved into a network namespace (``ip link set DEV netns NS``; created when
missing and then deleted again on close) and given the Linux side's address, MTU, MAC and
routes.  A device that emunet configures also gets IPv6 turned off
(``net.ipv6.conf.DEV.disable_ipv6``): emunet speaks IPv4 only, and Linux's router solicitations
and MLD reports would only be counted as ``rx_nohandler`` by emulated hosts.

Linux runs on the wall clock, so a TAP works only in real-time mode (``emunet.run(main,
realtime=True)`` or plain ``trio.run``): opening one under trio's ``MockClock`` raises
:class:`TapError`.  Creating TAP devices needs CAP_NET_ADMIN (root).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import struct
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import trio
import trio.testing

from ..wire.addr import ip_from_str, mac_from_str, mac_to_str
from ..wire.ethernet import ETH_HLEN, ETH_ZLEN
from .link import BUDGET, TxQueue

__all__ = ["IFF_NO_PI", "IFF_TAP", "TUNSETIFF", "TapError", "TapPort", "check_realtime"]

TUN_PATH = "/dev/net/tun"
TUNSETIFF = 0x400454CA  # _IOW('T', 202, int), include/uapi/linux/if_tun.h
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16
# struct ifreq (40 bytes on Linux): ifr_name[IFNAMSIZ], then a union whose first member we use
# is short ifr_flags; the rest of the union is padding.
_IFREQ = struct.Struct("16sH22x")
READ_SIZE = 65536 + ETH_HLEN  # larger than any frame a TAP with the maximum MTU can hold
PORT_NAME = "tap"  # the one port of a TAP node: "tap0:tap"
IP_TIMEOUT = 10.0  # seconds for one `ip` command

TAP_STATS = (
    "rx_packets", "rx_bytes", "rx_dropped", "tx_packets", "tx_bytes", "tx_errors",
    "tx_dropped", "tx_carrier_errors", "tx_length_errors",
)  # fmt: skip


class TapError(RuntimeError):
    """A TAP device could not be used: no real time, no /dev/net/tun, no permission, `ip`
    failed, or the device vanished while running."""


def check_realtime(what: str = "a TAP device") -> None:
    """Raise :class:`TapError` when the running trio loop uses a MockClock (virtual time)."""
    clock = trio.lowlevel.current_clock()
    if isinstance(clock, trio.testing.MockClock):
        raise TapError(
            f"{what} joins real Linux, which runs on the wall clock, so it cannot run under "
            "trio's MockClock (virtual time); run with emunet.run(main, realtime=True) or "
            "trio.run(main)"
        )


def ifreq(device: str, flags: int) -> bytes:
    """The ``struct ifreq`` that ``TUNSETIFF`` takes: the device name and the flags."""
    name = device.encode()
    if not 0 < len(name) < IFNAMSIZ:
        raise ValueError(f"device name {device!r} must have 1 to {IFNAMSIZ - 1} bytes")
    return _IFREQ.pack(name, flags)


def _check_device(device: str) -> str:
    if not isinstance(device, str):
        raise TypeError(f"TAP device name must be a str, got {device!r}")
    ifreq(device, 0)
    if device in (".", "..") or any(c in device for c in "/: \t\n%"):
        raise ValueError(f"{device!r} is not a valid Linux interface name")
    return device


def _check_cidr(text: str) -> str:
    """``"10.0.1.3/24"`` as ``ip addr add`` takes it; ValueError otherwise."""
    addr, slash, plen = text.partition("/") if isinstance(text, str) else ("", "", "")
    if not slash or not plen.isdigit() or not 0 <= int(plen) <= 32:
        raise ValueError(f"{text!r} is not an address with a prefix length (like 10.0.1.3/24)")
    ip_from_str(addr)
    return text


class TapPort:
    """A TAP node: ``net.add_tap("tap0", device="emutap0", netns="emuns0",
    address="10.0.1.3/24", routes={"default": "10.0.1.1"})``, linked as ``"tap0:tap"``.

    ``device`` is the Linux interface name (default: the node name); ``netns`` a network
    namespace to move it into; ``address``, ``routes`` (``"default"`` or ``"net/len"`` ->
    gateway), ``mac`` (default: the kernel's random one) and ``mtu`` (a link's ``mtu`` sets it)
    configure the Linux side.  Without a namespace, address, routes or MAC the device is only
    created, left down and untouched for the user to configure.

    ``stats`` count from the port's side, as for a switch port: ``tx_*`` are frames Linux sent
    that go onto the link, ``rx_*`` frames from the link written to Linux.
    """

    kind = "tap"

    def __init__(
        self,
        name: str,
        device: str | None = None,
        *,
        netns: str | None = None,
        address: str | None = None,
        routes: Mapping[str, str] | None = None,
        mac: str | bytes | None = None,
        mtu: int = 1500,
        queue: int = 1000,
    ) -> None:
        self.name = name
        self.device = _check_device(name if device is None else device)
        if netns is not None and (
            not isinstance(netns, str) or not netns or "/" in netns or netns in (".", "..")
        ):
            raise ValueError(f"network namespace name {netns!r} is not valid")
        self.netns = netns
        self.address = None if address is None else _check_cidr(address)
        self.routes: dict[str, str] = {}
        for dst, via in (routes or {}).items():
            if dst != "default":
                _check_cidr(dst)
            ip_from_str(via)
            self.routes[dst] = via
        if isinstance(mac, str):
            mac = mac_from_str(mac)
        if mac is not None and (len(mac) != 6 or mac[0] & 1):
            raise ValueError(f"TAP MAC {mac!r} must be 6 bytes of a unicast address")
        self.mac: bytes | None = mac
        if not isinstance(mtu, int) or not 68 <= mtu <= 65535:
            raise ValueError(f"TAP mtu {mtu!r} is not in 68..65535")
        self.mtu = mtu
        self.label = f"{name}:{PORT_NAME}"
        self.stats: Counter = Counter(dict.fromkeys(TAP_STATS, 0))
        self.txq = TxQueue(self.label, self.stats, queue)
        self._fd: int | None = None
        self._created_netns = False

    def __repr__(self) -> str:
        where = f" in netns {self.netns}" if self.netns else ""
        return f"<TapPort {self.name} ({self.device}{where})>"

    @property
    def configures(self) -> bool:
        """Whether emunet configures the Linux side (namespace, address, routes or MAC given)."""
        return bool(self.netns or self.address or self.routes or self.mac)

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def port(self, name: str) -> TapPort:
        """The node's one link endpoint, ``"<node>:tap"``."""
        if name != PORT_NAME:
            raise KeyError(f"TAP node {self.name!r} has one port, {PORT_NAME!r}, not {name!r}")
        return self

    # ----------------------------------------------------------------- the Linux side
    async def open(self) -> None:
        """Create the TAP device and configure the Linux side (needs root and real time)."""
        check_realtime(f"TAP node {self.name!r}")
        if self._fd is not None:
            raise TapError(f"TAP node {self.name!r} is already open")
        if not os.path.exists(TUN_PATH):
            raise TapError(f"{TUN_PATH} does not exist: this system cannot create TAP devices")
        if self.configures and shutil.which("ip") is None:
            raise TapError("the `ip` command (iproute2) is needed to configure a TAP device")
        try:
            fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise TapError(f"cannot open {TUN_PATH}: {exc.strerror}") from exc
        try:
            fcntl.ioctl(fd, TUNSETIFF, ifreq(self.device, IFF_TAP | IFF_NO_PI))
        except OSError as exc:
            os.close(fd)
            hint = " (CAP_NET_ADMIN is needed)" if exc.errno == errno.EPERM else ""
            raise TapError(f"cannot create TAP device {self.device}: {exc.strerror}{hint}") from exc
        self._fd = fd
        try:
            await self._configure()
        except BaseException:
            self.close()
            raise

    async def _ip(self, *args: str, netns: bool = True) -> None:
        cmd = ["ip"]
        if netns and self.netns is not None:
            cmd += ["-n", self.netns]
        cmd += args
        await self._run(cmd)

    async def _run(self, cmd: Sequence[str], check: bool = True) -> None:
        with trio.fail_after(IP_TIMEOUT):
            result = await trio.run_process(
                list(cmd), capture_stdout=True, capture_stderr=True, check=False
            )
        if check and result.returncode != 0:
            err = result.stderr.decode(errors="replace").strip()
            raise TapError(f"TAP node {self.name!r}: `{' '.join(cmd)}` failed: {err}")

    async def _configure(self) -> None:
        if not self.configures:
            return
        dev = self.device
        if self.netns is not None:
            if not os.path.exists(f"/run/netns/{self.netns}"):
                await self._ip("netns", "add", self.netns, netns=False)
                self._created_netns = True
            await self._ip("link", "set", "dev", dev, "netns", self.netns, netns=False)
            await self._ip("link", "set", "dev", "lo", "up")
        await self._disable_ipv6()
        link = ["link", "set", "dev", dev, "mtu", str(self.mtu)]
        if self.mac is not None:
            link += ["address", mac_to_str(self.mac)]
        await self._ip(*link)
        if self.address is not None:
            await self._ip("addr", "add", self.address, "dev", dev)
        await self._ip("link", "set", "dev", dev, "up")
        for dst, via in self.routes.items():
            await self._ip("route", "add", dst, "via", via, "dev", dev)

    async def _disable_ipv6(self) -> None:
        knob = f"/proc/sys/net/ipv6/conf/{self.device}/disable_ipv6"
        if self.netns is None:
            try:
                with open(knob, "w") as f:
                    f.write("1")
            except OSError:
                pass  # a kernel without IPv6
            return
        script = 'test -e "$1" && echo 1 > "$1" || true'
        await self._run(["ip", "netns", "exec", self.netns, "sh", "-c", script, "sh", knob])

    def close(self) -> None:
        """Close the descriptor (Linux removes the device) and delete a namespace we created.
        Safe to call more than once, and on a TAP never opened."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                trio.lowlevel.notify_closing(fd)
            except RuntimeError:  # not inside trio
                pass
            os.close(fd)
        if self._created_netns:
            self._created_netns = False
            assert self.netns is not None
            subprocess.run(
                ["ip", "netns", "delete", self.netns],
                capture_output=True,
                timeout=IP_TIMEOUT,
                check=False,
            )

    # ----------------------------------------------------------------- frames
    def netif_rx(self, frame: bytes) -> None:
        """A frame from the link: Linux receives it on the TAP device."""
        stats = self.stats
        stats["rx_packets"] += 1
        stats["rx_bytes"] += len(frame)
        fd = self._fd
        if fd is None:
            stats["rx_dropped"] += 1
            return
        try:
            os.write(fd, frame)
        except OSError:  # EIO while the Linux device is down, ENOMEM, ...
            stats["rx_dropped"] += 1

    def from_linux(self, frame: bytes) -> None:
        """A frame Linux transmitted: padded to the Ethernet minimum and queued for the link."""
        if len(frame) < ETH_HLEN:
            self.stats["tx_length_errors"] += 1
            self.stats["tx_errors"] += 1
            return
        if len(frame) < ETH_ZLEN:
            frame += bytes(ETH_ZLEN - len(frame))
        self.txq.enqueue(frame)

    async def reader(self) -> None:
        """The task that reads what Linux transmits, a batch at a time."""
        fd = self._fd
        if fd is None:
            raise TapError(f"TAP node {self.name!r} is not open")
        from_linux = self.from_linux
        while True:
            await trio.lowlevel.wait_readable(fd)
            for _ in range(BUDGET):
                try:
                    frame = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    break
                except OSError as exc:
                    raise TapError(
                        f"TAP device {self.device} failed while reading: {exc.strerror}"
                    ) from exc
                from_linux(frame)

    def tasks(self) -> list[tuple[str, Any]]:
        """The reader and the transmitter, for a nursery (after :meth:`open`)."""
        return [
            (f"{self.name}/tap-rx", self.reader),
            (f"{self.name}/dev-tx:{PORT_NAME}", self.txq.run),
        ]
