"""The emunet pytest plugin (entry point ``pytest11``): test your own trio code over emunet.

With pytest-trio installed (``trio_mode = true``), take the ``emu`` fixture.  It is the
autojump clock of the test — pytest-trio runs the test in virtual time because the fixture is a
``trio.testing.MockClock`` — carrying methods that load and run networks::

    async def test_echo_over_a_lossy_path(emu):
        async with emu.running("topologies/three-hop.yaml") as net:
            listener = await net.host("server").tcp_listen(7)
            ...

``emu.running(x)`` accepts a topology file path, YAML text, a generator spec such as
``"line,3"``, or a ready :class:`emunet.Network`; networks keep their file's seed unless
``seed=`` is given, and ``emu.seed`` (default 0) seeds trio's scheduler and ``emu.network()``,
so a failing test fails the same way every run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio.testing

from .network import Network
from .runner import make_scheduler_deterministic


class Emu:
    """What the ``emu`` fixture adds to the test's autojump clock: networks to build and run."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        make_scheduler_deterministic(seed)

    def network(self, seed: int | None = None) -> Network:
        """An empty Network to build with the Python API."""
        return Network(seed=self.seed if seed is None else seed)

    def load(self, topology: Any, seed: int | None = None) -> Network:
        """A Network from a topology file, YAML text or generator spec (not yet running)."""
        if isinstance(topology, Network):
            return topology
        from .topology import load_topology

        source = os.fspath(topology) if isinstance(topology, os.PathLike) else topology
        return load_topology(source, seed=seed)

    @contextlib.asynccontextmanager
    async def running(self, topology: Any, seed: int | None = None) -> AsyncIterator[Network]:
        """Load ``topology`` and run it for the body of the ``async with``."""
        net = self.load(topology, seed)
        async with net.running():
            yield net


def make_emu(seed: int = 0) -> trio.testing.MockClock:
    """An autojump MockClock carrying :class:`Emu`'s methods (trio's MockClock cannot be
    subclassed, and pytest-trio runs a test in virtual time only when one of its arguments
    is the clock itself)."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    helper = Emu(seed)
    clock.emu = helper  # type: ignore[attr-defined]
    clock.seed = seed  # type: ignore[attr-defined]
    clock.network = helper.network  # type: ignore[attr-defined]
    clock.load = helper.load  # type: ignore[attr-defined]
    clock.running = helper.running  # type: ignore[attr-defined]
    return clock


@pytest.fixture
def emu() -> trio.testing.MockClock:
    """Virtual time (the test's autojump clock) plus emunet networks: ``emu.running(topology)``,
    ``emu.load(topology)``, ``emu.network()``; see :mod:`emunet.testing`."""
    return make_emu()
