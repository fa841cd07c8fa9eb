"""Test helpers for real Linux peers: network namespaces holding emunet's TAP devices, and
commands run inside them (``ip netns exec``).

Everything a test creates is named ``emu...`` and removed by the test's own teardown, even when it
fails; traffic stays inside the namespaces the test made.  Tests that need these skip with the
reason when the machine cannot run them (not root, no /dev/net/tun, no ``ip``, a program such as
``ping`` or ``tcpdump`` missing, or namespaces refused).

    def test_x(netns_factory):
        ns = netns_factory()                      # a fresh, empty namespace "emu<pid>n<k>"
        net.add_tap("tap0", device=ns.dev("tap0"), netns=ns.name, address="10.0.1.3/24")
        ... async:  result = await ns.run("ping", "-c", "1", "10.0.1.2")
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import trio

import emunet

COMMAND_TIMEOUT = 10.0  # seconds: no single command may hang a test longer
_counter = itertools.count(1)


@functools.cache
def skip_reason() -> str | None:
    """Why this machine cannot run TAP/namespace tests, or None when it can (probed once)."""
    reason: str | None = None
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        reason = "needs root (CAP_NET_ADMIN) to create TAP devices and network namespaces"
    elif not os.path.exists("/dev/net/tun"):
        reason = "/dev/net/tun does not exist"
    elif shutil.which("ip") is None:
        reason = "the `ip` command (iproute2) is not installed"
    else:
        name = f"emu{os.getpid()}probe"
        made = subprocess.run(["ip", "netns", "add", name], capture_output=True, timeout=10)
        if made.returncode != 0:
            reason = f"`ip netns add` failed: {made.stderr.decode(errors='replace').strip()}"
        else:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=10)
    return reason


def require(*programs: str) -> None:
    """Skip the calling test unless namespaces work and every program is installed."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    for program in programs:
        if shutil.which(program) is None:
            pytest.skip(f"`{program}` is not installed (.ci/run installs it when run as root)")


class Netns:
    """A network namespace made for one test (``ip netns add``); :meth:`destroy` removes it."""

    def __init__(self, tag: str = "n") -> None:
        self.index = next(_counter)
        self.name = f"emu{os.getpid()}{tag}{self.index}"
        self.created = False

    def dev(self, base: str = "tap") -> str:
        """A device name unique to this namespace and process (at most 15 bytes)."""
        name = f"emu{base}{os.getpid() % 100000}{self.index}"
        return name[:15]

    def create(self) -> Netns:
        subprocess.run(
            ["ip", "netns", "add", self.name], check=True, capture_output=True, timeout=10
        )
        self.created = True
        subprocess.run(
            ["ip", "-n", self.name, "link", "set", "lo", "up"],
            check=True,
            capture_output=True,
            timeout=10,
        )
        return self

    def destroy(self) -> None:
        if self.created:
            self.created = False
            subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, timeout=10)

    def argv(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    async def run(
        self, *cmd: str, timeout: float = COMMAND_TIMEOUT, check: bool = False
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``cmd`` inside the namespace without blocking trio; output captured."""
        with trio.fail_after(timeout):
            return await trio.run_process(
                self.argv(*cmd), capture_stdout=True, capture_stderr=True, check=check
            )

    def run_sync(
        self, *cmd: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside the namespace from synchronous code (text output)."""
        return subprocess.run(self.argv(*cmd), capture_output=True, text=True, timeout=timeout)

    @contextlib.asynccontextmanager
    async def background(self, *cmd: str, stop: int = signal.SIGTERM) -> AsyncIterator[Process]:
        """Start ``cmd`` in the namespace; on exit send it ``stop`` (then SIGKILL after 3 s)."""
        proc = await trio.lowlevel.open_process(
            self.argv(*cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        wrapper = Process(proc)
        try:
            yield wrapper
        finally:
            with trio.CancelScope(shield=True):
                await wrapper.stop(stop)

    def neighbours(self, device: str) -> dict[str, dict[str, Any]]:
        """``ip -j neigh show dev DEVICE`` by address."""
        out = subprocess.run(
            ["ip", "-j", "-n", self.name, "neigh", "show", "dev", device],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return {entry["dst"]: entry for entry in json.loads(out.stdout or "[]")}

    def route_get(self, dst: str) -> dict[str, Any]:
        """``ip -j route get DST`` (with the cached PMTU as ``metrics`` when there is one)."""
        out = subprocess.run(
            ["ip", "-j", "-d", "-n", self.name, "route", "get", dst],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return json.loads(out.stdout)[0]


class Process:
    """A background process in a namespace, with line reading on its stdout and stderr."""

    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self.output = {"stdout": b"", "stderr": b""}

    async def read_until(
        self, marker: bytes, stream: str = "stdout", timeout: float = 5.0
    ) -> bytes:
        """Read ``stream`` until it contains ``marker``; return what was read up to and
        including the marker's line.  Fails (TooSlowError / AssertionError) rather than hang."""
        pipe = self.proc.stdout if stream == "stdout" else self.proc.stderr
        assert pipe is not None
        with trio.fail_after(timeout):
            while True:
                seen = self.output[stream]
                at = seen.find(marker)
                if at >= 0:
                    end = seen.find(b"\n", at)
                    if end >= 0:
                        self.output[stream] = seen[end + 1 :]
                        return seen[: end + 1]
                chunk = await pipe.receive_some(65536)
                if not chunk:
                    raise AssertionError(
                        f"{stream} ended before {marker!r}; got {seen!r}, "
                        f"stderr {self.output['stderr']!r}"
                    )
                self.output[stream] += chunk

    async def read_lines(
        self, count: int, stream: str = "stdout", timeout: float = 5.0
    ) -> list[bytes]:
        """The next ``count`` whole lines of ``stream``."""
        lines = []
        for _ in range(count):
            lines.append(await self.read_until(b"", stream, timeout))
        return lines

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        proc = self.proc
        if proc.returncode is None:
            proc.send_signal(sig)
            with trio.move_on_after(3):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                await pipe.aclose()

    async def wait(self, timeout: float = COMMAND_TIMEOUT) -> int:
        with trio.fail_after(timeout):
            return await self.proc.wait()


@contextlib.contextmanager
def netns(tag: str = "n") -> Iterator[Netns]:
    """A fresh namespace for the ``with`` block, deleted afterwards whatever happens."""
    ns = Netns(tag)
    try:
        yield ns.create()
    finally:
        ns.destroy()


@pytest.fixture
def netns_factory() -> Iterator[Any]:
    """Make namespaces on demand (skipping when the machine cannot); all removed at teardown."""
    require()
    made: list[Netns] = []

    def make(tag: str = "n") -> Netns:
        ns = Netns(tag)
        made.append(ns)
        return ns.create()

    try:
        yield make
    finally:
        for ns in made:
            ns.destroy()


# --------------------------------------------------------------------------- shared topologies
# The MACs of the Linux ends (set on the TAP devices, so ARP tables can be checked exactly).
LINUX_MAC = "02:11:22:33:44:01"
LINUX_MAC2 = "02:11:22:33:44:02"


def run_real(main: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Run ``main`` in real time, failing (never hanging) after ``timeout`` seconds."""

    async def guarded() -> Any:
        with trio.fail_after(timeout):
            return await main()

    return emunet.run(guarded, realtime=True)


def two_namespaces_and_a_router(ns1: Netns, ns2: Netns, **link2: Any) -> emunet.Network:
    """Linux ns1 (10.0.1.3) -- tap1 -- r1 -- tap2 -- Linux ns2 (10.0.2.3)."""
    net = emunet.Network(seed=4)
    net.add_router("r1", interfaces={"eth0": "10.0.1.1/24", "eth1": "10.0.2.1/24"})
    net.add_tap(
        "tap1", device=ns1.dev(), netns=ns1.name, address="10.0.1.3/24",
        routes={"default": "10.0.1.1"}, mac=LINUX_MAC,
    )  # fmt: skip
    net.add_tap(
        "tap2", device=ns2.dev(), netns=ns2.name, address="10.0.2.3/24",
        routes={"default": "10.0.2.1"}, mac=LINUX_MAC2,
    )  # fmt: skip
    net.add_link("tap1:tap", "r1:eth0")
    net.add_link("r1:eth1", "tap2:tap", **link2)
    return net
