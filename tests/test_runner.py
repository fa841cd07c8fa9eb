"""emunet.run: virtual time and a seeded scheduler, through the private trio API that
runner.make_scheduler_deterministic uses.  These fail loudly if trio changes that API."""

import trio

import emunet
from emunet.runner import make_scheduler_deterministic


def test_trio_still_has_the_private_hooks() -> None:
    from trio._core import _run

    assert hasattr(_run, "_ALLOW_DETERMINISTIC_SCHEDULING")
    assert hasattr(_run, "_r")
    make_scheduler_deterministic(1)
    assert _run._ALLOW_DETERMINISTIC_SCHEDULING is True


async def _race() -> list[int]:
    order: list[int] = []

    async def worker(i: int) -> None:
        for _ in range(3):
            await trio.lowlevel.checkpoint()
            order.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(worker, i)
    return order


def test_same_seed_same_task_order_other_seed_other_order() -> None:
    a = emunet.run(_race, seed=3)
    b = emunet.run(_race, seed=3)
    c = [emunet.run(_race, seed=s) for s in (4, 5, 6)]
    assert a == b
    assert any(order != a for order in c)


def test_virtual_time_jumps() -> None:
    async def main() -> float:
        await trio.sleep(3600)
        return trio.current_time()

    assert emunet.run(main) == 3600.0
