"""Frames per wall-second through one router, next to the floor (DESIGN.md section 6).

Run: ``.venv/bin/python bench/forwarding.py [--frames N] [--repeat R]``.

The stack: client -> r1 -> server, links with no bandwidth limit and no delay, UDP datagrams of
64 bytes sent by a user task on the client in bursts of 200 (then a 1 ms virtual pause, so that
no queue overflows: qdisc and rx backlog hold 1000) and read by a user task on the server.  The
clock is virtual (``emunet.run``); what is measured is wall time, from the first send to the
last datagram read.

The floor: the same number of items pushed in the same bursts through the same number of bare
trio memory-channel hops.  A datagram changes task 8 times on its way (the qdisc schedules
serialization when a frame is queued, and each device's tx task delivers its frames at their
arrival times):

    sender -> client dev-tx (wire) -> r1 dev-rx -> r1 ip -> r1 dev-tx (wire)
           -> server dev-rx -> server ip -> server udp -> reader

so the floor is a producer, 7 forwarding tasks and a consumer joined by 8 channels.  Three
floors are shown: every item wakes the next task (``await send.send``: a hop with no batching);
each task drains its channel in batches of up to 64 (``receive_nowait``) as the stack's layer
tasks do, with the producer yielding once per item as ``sendto`` does; and the same batched
hops fed a whole burst at a time (the lowest cost of a hop).  The stack also parses and builds
every header at each hop, routes, resolves neighbours and counts, which the floor does not.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import trio

import emunet

HOPS = 8
BURST = 200
PAYLOAD = bytes(64)
BATCH = 64


async def _pace(i: int) -> None:
    if i % BURST == BURST - 1:
        await trio.sleep(0.001)  # virtual: every queue drains before the next burst


def stack_run(frames: int) -> float:
    """Wall seconds to carry ``frames`` datagrams client -> r1 -> server."""
    result: list[float] = []

    async def main() -> None:
        net = emunet.Network(seed=1)
        net.add_host("client", interfaces={"eth0": "10.0.1.2/24"}, routes={"default": "10.0.1.1"})
        net.add_router("r1", interfaces={"eth0": "10.0.1.1/24", "eth1": "10.0.2.1/24"})
        net.add_host("server", interfaces={"eth0": "10.0.2.2/24"}, routes={"default": "10.0.2.1"})
        net.add_link("client:eth0", "r1:eth0")
        net.add_link("r1:eth1", "server:eth0")
        async with net.running():
            client, server = net.host("client"), net.host("server")
            sink = server.udp_socket(5000)
            sink.rcvbuf = 1 << 30
            sock = client.udp_socket(4000)
            await sock.sendto(b"warm-up", ("10.0.2.2", 5000))  # ARP on both hops
            await sink.recvfrom()
            done = trio.Event()

            async def read() -> None:
                for _ in range(frames):
                    await sink.recvfrom()
                result.append(time.perf_counter())
                done.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                await trio.sleep(0.01)
                start = time.perf_counter()
                for i in range(frames):
                    await sock.sendto(PAYLOAD, ("10.0.2.2", 5000))
                    await _pace(i)
                await done.wait()
            result.append(start)
            forwarded = net.host("r1").nstat()["IpForwDatagrams"]
            assert forwarded == frames + 1, forwarded

    emunet.run(main, seed=1)
    end, start = result
    return end - start


def floor_run(frames: int, mode: str) -> float:
    """Wall seconds to push ``frames`` items through HOPS bare memory-channel hops; ``mode``
    is "each" (one wake-up per item), "batched" (batched hops, a checkpoint per item sent) or
    "burst" (batched hops, each burst sent at once)."""
    result: list[float] = []

    async def forward_each(recv: trio.MemoryReceiveChannel, send: trio.MemorySendChannel) -> None:
        async for item in recv:
            await send.send(item)

    async def forward_batched(
        recv: trio.MemoryReceiveChannel, send: trio.MemorySendChannel
    ) -> None:
        while True:
            send.send_nowait(await recv.receive())
            for _ in range(BATCH - 1):
                try:
                    item = recv.receive_nowait()
                except trio.WouldBlock:
                    break
                send.send_nowait(item)

    async def main() -> None:
        channels = [trio.open_memory_channel(math.inf) for _ in range(HOPS)]
        forward = forward_each if mode == "each" else forward_batched
        async with trio.open_nursery() as nursery:
            for (_, recv), (send, _) in itertools.pairwise(channels):
                nursery.start_soon(forward, recv, send)
            first_send, last_recv = channels[0][0], channels[-1][1]
            done = trio.Event()

            async def consume() -> None:
                for _ in range(frames):
                    await last_recv.receive()
                result.append(time.perf_counter())
                done.set()

            nursery.start_soon(consume)
            await trio.sleep(0.01)
            start = time.perf_counter()
            for i in range(frames):
                if mode == "each":
                    await first_send.send(PAYLOAD)
                elif mode == "batched":
                    first_send.send_nowait(PAYLOAD)
                    await trio.lowlevel.checkpoint()  # as sendto does
                else:
                    first_send.send_nowait(PAYLOAD)
                await _pace(i)
            await done.wait()
            result.append(start)
            nursery.cancel_scope.cancel()

    emunet.run(main, seed=1)
    end, start = result
    return end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of R runs")
    args = parser.parse_args()
    n = args.frames
    floors = (
        ("each", "one wake-up per item"),
        ("batched", f"batches of {BATCH}, yield per send"),
        ("burst", f"batches of {BATCH}, burst at once"),
    )
    rows = [("emunet: client -> r1 -> server (UDP)", lambda: stack_run(n))]
    for mode, text in floors:
        rows.append((f"floor: {HOPS} hops, {text}", lambda mode=mode: floor_run(n, mode)))
    times = {name: min(run() for _ in range(args.repeat)) for name, run in rows}
    stack = times[rows[0][0]]
    print(f"{n} frames, best of {args.repeat}, {HOPS} task hops per frame")
    head = ("path", "wall s", "frames/s", "us/frame", "us/hop", "stack/x")
    print("{:<48} {:>8} {:>10} {:>9} {:>7} {:>8}".format(*head))
    for name, _ in rows:
        t = times[name]
        print(
            f"{name:<48} {t:>8.3f} {n / t:>10.0f} {t / n * 1e6:>9.1f} "
            f"{t / n / HOPS * 1e6:>7.2f} {stack / t:>7.1f}x"
        )


if __name__ == "__main__":
    main()
