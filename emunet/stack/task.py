"""Plumbing between layer tasks: an unbounded inbox drained in NAPI-style batches, and a timer
whose deadline any task may pull earlier.

An inbox is a deque plus a parking lot: ``put`` never blocks (a layer never waits on another
layer), and the owning task takes everything queued at once with ``get_batch``.  Where Linux has
a bounded queue with drops (the device rx backlog), the owner checks ``len()`` before ``put``.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Inbox(Generic[T]):
    __slots__ = ("_items", "_lot", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._items: deque[T] = deque()
        self._lot = trio.lowlevel.ParkingLot()

    def __len__(self) -> int:
        return len(self._items)

    def poke(self) -> None:
        """Wake the owner with nothing new (it returns an empty batch and looks again)."""
        if self._lot:
            self._lot.unpark_all()

    def put(self, item: T) -> None:
        self._items.append(item)
        if self._lot:
            self._lot.unpark()

    async def get_batch(self, budget: int = 64, deadline: float = math.inf) -> list[T]:
        """Wait (until ``deadline``) for at least one item; return up to ``budget`` of them."""
        items = self._items
        if not items:
            if deadline == math.inf:
                await self._lot.park()
            else:
                with trio.move_on_at(deadline):
                    await self._lot.park()
            if not items:
                return []
        else:
            await trio.lowlevel.checkpoint()
        if len(items) <= budget:
            batch = list(items)
            items.clear()
            return batch
        return [items.popleft() for _ in range(budget)]


class Wakeup:
    """A deadline for a layer task's timers that other tasks may move earlier.

    With no timer armed the owner just waits on its inbox (no cancel scope to build); pulling
    the deadline in then pokes the inbox so the owner wakes and re-arms.
    """

    __slots__ = ("_inbox", "_scope", "deadline")

    def __init__(self) -> None:
        self.deadline = math.inf
        self._scope: trio.CancelScope | None = None
        self._inbox: Inbox | None = None

    def at(self, when: float | None) -> None:
        """Make sure the owner wakes by ``when`` (None: no timer needed)."""
        if when is None or when >= self.deadline:
            return
        self.deadline = when
        if self._scope is not None:
            self._scope.deadline = when
        elif self._inbox is not None:
            self._inbox.poke()

    async def wait(self, inbox: Inbox[T], budget: int = 64) -> list[T]:
        """Wait for inbox items or the deadline, whichever comes first."""
        if self.deadline == math.inf:
            self._inbox = inbox
            try:
                return await inbox.get_batch(budget)
            finally:
                self._inbox = None
        with trio.CancelScope(deadline=self.deadline) as scope:
            self._scope = scope
            try:
                return await inbox.get_batch(budget)
            finally:
                self._scope = None
        return []

    def reset(self, when: float | None) -> None:
        """Set the deadline after the owner ran its timers."""
        self.deadline = math.inf if when is None else when
