"""``emunet.run(main)``: trio.run in virtual time with a seeded, deterministic scheduler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing


def make_scheduler_deterministic(seed: int) -> None:
    """Make trio's scheduler order reproducible from ``seed``.

    Private trio API (trio/_core/_run.py), kept in this one function: trio shuffles each batch of
    runnable tasks with its module-level ``_r`` only when ``_ALLOW_DETERMINISTIC_SCHEDULING`` is
    set (as its Hypothesis plugin does); otherwise it reverses batches at random.  Both the flag
    and the seed are needed.  tests/test_runner.py fails loudly if trio changes either.
    """
    from trio._core import _run

    if not hasattr(_run, "_ALLOW_DETERMINISTIC_SCHEDULING") or not hasattr(_run, "_r"):
        raise RuntimeError(
            "this trio version lacks _ALLOW_DETERMINISTIC_SCHEDULING/_r; emunet cannot make "
            "runs reproducible"
        )
    _run._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
    _run._r.seed(seed)


def run(
    main: Callable[..., Awaitable[Any]], *args: Any, seed: int = 0, realtime: bool = False
) -> Any:
    """Run ``main(*args)`` like ``trio.run``: in virtual time (a MockClock that jumps to the next
    deadline whenever every task is blocked) unless ``realtime``, with the scheduler seeded."""
    make_scheduler_deterministic(seed)
    clock = None if realtime else trio.testing.MockClock(autojump_threshold=0)
    return trio.run(main, *args, clock=clock)
