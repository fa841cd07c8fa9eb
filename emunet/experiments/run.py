"""Running a topology's experiments (DESIGN.md section 5): in file order, each after the
previous one ends unless it names a start time ``at`` (virtual seconds from the start of the
run, when it runs concurrently with the others), while the topology's timed ``events`` change
links in a background task; the result is a :class:`emunet.report.Report`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import trio

from .common import ExperimentResult
from .http import run_http
from .ping import run_ping
from .storm import run_storm
from .tcp import run_tcp
from .traceroute import run_traceroute
from .udp import run_udp

if TYPE_CHECKING:
    from ..network import Network
    from ..report import Report
    from ..topology.schema import Experiment, Topology

__all__ = ["RUNNERS", "run_experiment", "run_experiments"]

RUNNERS: dict[str, Callable[[Any, Any], Awaitable[ExperimentResult]]] = {
    "ping": run_ping,
    "traceroute": run_traceroute,
    "tcp": run_tcp,
    "udp": run_udp,
    "storm": run_storm,
    "http": run_http,
}
"""Experiment ``type`` -> its ``async def run_X(net, spec) -> XResult``."""

ProgressCallback = Callable[[list[str]], None]


class StopRequest:
    """Ends a run early (the CLI's Ctrl-C): :meth:`stop` cancels every scope given to
    :meth:`watch`, now or, for scopes watched later, at once.  Plain methods, no task, so that
    a run that is never stopped schedules exactly as one without it."""

    def __init__(self) -> None:
        self.requested = False
        self._scopes: list[trio.CancelScope] = []

    def stop(self) -> None:
        self.requested = True
        for scope in self._scopes:
            scope.cancel()

    def watch(self, scope: trio.CancelScope) -> None:
        self._scopes.append(scope)
        if self.requested:
            scope.cancel()


def _label(index: int, total: int, spec: Experiment) -> str:
    name = f"{spec.name}: " if spec.name else ""
    return f"[{index + 1}/{total}] {name}{spec.type} {spec.src} -> {spec.dst}"


async def run_experiment(net: Network, spec: Experiment) -> ExperimentResult:
    """Run one experiment record on a running network."""
    runner = RUNNERS.get(spec.type)
    if runner is None:
        raise ValueError(f"unknown experiment type {spec.type!r}")
    return await runner(net, spec)


async def run_experiments(
    net: Network,
    topology: Topology | None = None,
    *,
    experiments: Iterable[Experiment] | None = None,
    progress: ProgressCallback | None = None,
    stop: StopRequest | None = None,
) -> Report:
    """Run the experiments of ``topology`` (default: the one ``net`` was loaded from; or the
    ``experiments`` given) on the running ``net``, playing its events meanwhile, and return
    the :class:`~emunet.report.Report`.  ``progress(labels)`` is called with the labels of
    the experiments running whenever that set changes.  When ``stop`` is set (the CLI sets it
    on Ctrl-C) the experiments still running are cancelled and the report holds the ones that
    finished, with ``interrupted`` true."""
    from ..report import collect_report
    from ..topology.load import play_events

    if topology is None:
        topology = getattr(net, "topology", None)
    specs = tuple(
        experiments if experiments is not None else (topology.experiments if topology else ())
    )
    events = topology.events if topology is not None else ()
    start = trio.current_time()
    results: list[ExperimentResult | None] = [None] * len(specs)
    done = [trio.Event() for _ in specs]
    running: list[str] = []

    def changed() -> None:
        if progress is not None:
            progress(list(running))

    async def one(index: int, spec: Experiment) -> None:
        if spec.at is not None:
            await trio.sleep_until(start + spec.at)
        elif index > 0:
            await done[index - 1].wait()
        label = _label(index, len(specs), spec)
        running.append(label)
        changed()
        try:
            results[index] = await run_experiment(net, spec)
        finally:
            running.remove(label)
            changed()
            done[index].set()

    async with trio.open_nursery() as nursery:
        if events:
            nursery.start_soon(play_events, net, events)
        async with trio.open_nursery() as runners:
            if stop is not None:
                stop.watch(runners.cancel_scope)
            for index, spec in enumerate(specs):
                runners.start_soon(one, index, spec)
        nursery.cancel_scope.cancel()
    finished = [r for r in results if r is not None]
    interrupted = stop is not None and stop.requested and len(finished) < len(specs)
    return collect_report(
        net,
        finished,
        duration=trio.current_time() - start,
        topology=topology.name if topology is not None else None,
        planned=len(specs) if interrupted else None,
    )
