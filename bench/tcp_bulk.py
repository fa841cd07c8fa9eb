"""TCP bulk transfer speed: MB of payload per wall-second from client to server through r1.

    .venv/bin/python bench/tcp_bulk.py [--mbytes 50] [--repeat 1] [--profile]
    .venv/bin/python bench/tcp_bulk.py --bandwidth 100Mbit --delay 10ms --mbytes 20

The network is client - r1 - server with 1 ms, 10 Gbit links (or the given ones), MTU 1500,
no loss, so at 10 Gbit the transfer is limited by emunet's own speed, not by the emulated
links; at 100 Mbit the links limit it and the figure to beat is real time (12.5 MB/s).  The
clock is virtual (``emunet.run``) and what is measured is wall time from connect to the last
byte read.

Next to it, the floor of DESIGN.md section 6: the same number of 1448-byte segments pushed
through the same number of bare trio channel hops that a data segment takes in emunet —

    sender -> client dev-tx (wire) -> r1 dev-rx -> r1 ip -> r1 dev-tx (wire)
           -> server dev-rx -> server ip -> server tcp -> reader

(8 channels) — once with a wake-up per segment, once drained in batches of 64.  The floor
carries no ACKs, builds and parses no headers and keeps no state; it is the cost of the task
hops alone.  ``--profile`` runs the emunet transfer under cProfile and prints the top costs.
"""

from __future__ import annotations

import argparse
import cProfile
import math
import pstats
import time

import trio

import emunet

MSS = 1448
HOPS = 8


def build(bandwidth: str = "10Gbit", delay: str = "1ms") -> emunet.Network:
    net = emunet.Network(seed=1)
    net.add_host("client", interfaces={"eth0": "10.0.1.2/24"}, routes={"default": "10.0.1.1"})
    net.add_router("r1", interfaces={"eth0": "10.0.1.1/24", "eth1": "10.0.2.1/24"})
    net.add_host("server", interfaces={"eth0": "10.0.2.2/24"}, routes={"default": "10.0.2.1"})
    net.add_link("client:eth0", "r1:eth0", delay=delay, bandwidth=bandwidth)
    net.add_link("r1:eth1", "server:eth0", delay=delay, bandwidth=bandwidth)
    return net


def stack_run(nbytes: int, bandwidth: str = "10Gbit", delay: str = "1ms") -> tuple[float, float]:
    """(wall seconds, virtual seconds) to move ``nbytes`` from client to server."""
    result: dict[str, float] = {}

    async def main() -> None:
        net = build(bandwidth, delay)
        async with net.running():
            listener = await net.host("server").tcp_listen(5001)
            chunk = b"\x5a" * (1 << 20)
            received = 0

            async def reader() -> None:
                nonlocal received
                stream = await listener.accept()
                while True:
                    data = await stream.receive_some(1 << 20)
                    if not data:
                        break
                    received += len(data)
                await stream.aclose()

            wall = time.perf_counter()
            virtual = trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                stream = await net.host("client").tcp_connect("10.0.2.2", 5001)
                left = nbytes
                while left > 0:
                    n = min(left, len(chunk))
                    await stream.send_all(chunk[:n])
                    left -= n
                await stream.send_eof()
            result["wall"] = time.perf_counter() - wall
            result["virtual"] = trio.current_time() - virtual
            await stream.aclose()
            if received != nbytes:
                raise RuntimeError(f"received {received} of {nbytes} bytes")

    emunet.run(main)
    return result["wall"], result["virtual"]


def floor_run(segments: int, batched: bool) -> float:
    """Wall seconds to push ``segments`` items through HOPS bare memory-channel hops."""

    async def main() -> float:
        channels = [trio.open_memory_channel(math.inf) for _ in range(HOPS)]

        async def hop(rx: trio.MemoryReceiveChannel, tx: trio.MemorySendChannel) -> None:
            async for item in rx:
                if batched:
                    batch = [item]
                    while len(batch) < 64:
                        try:
                            batch.append(rx.receive_nowait())
                        except trio.WouldBlock:
                            break
                    for b in batch:
                        tx.send_nowait(b)
                else:
                    await tx.send(item)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(HOPS - 1):
                nursery.start_soon(hop, channels[i][1], channels[i + 1][0])
            payload = b"\x5a" * MSS
            for _ in range(segments):
                channels[0][0].send_nowait(payload)
                await trio.lowlevel.checkpoint()
            got = 0
            last_rx = channels[-1][1]
            while got < segments:
                await last_rx.receive()
                got += 1
            nursery.cancel_scope.cancel()
        return time.perf_counter() - start

    return trio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbytes", type=float, default=50.0, help="payload in MB (1e6 bytes)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best counts")
    parser.add_argument("--profile", action="store_true", help="profile the emunet transfer")
    parser.add_argument("--bandwidth", default="10Gbit", help="both links' rate (10Gbit)")
    parser.add_argument("--delay", default="1ms", help="both links' one-way delay (1ms)")
    args = parser.parse_args()
    link = {"bandwidth": args.bandwidth, "delay": args.delay}
    nbytes = int(args.mbytes * 1e6)
    segments = math.ceil(nbytes / MSS)
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        stack_run(nbytes, **link)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    rows = []
    best = min((stack_run(nbytes, **link) for _ in range(args.repeat)), key=lambda r: r[0])
    rows.append(("emunet TCP client -> r1 -> server", best[0], f"virtual {best[1]:.3f} s"))
    for batched, name in ((False, "one wake-up per segment"), (True, "batches of 64")):
        t = min(floor_run(segments, batched) for _ in range(args.repeat))
        rows.append((f"floor: {HOPS} hops, {name}", t, ""))
    print(
        f"{nbytes / 1e6:.0f} MB, {segments} segments of {MSS} bytes, links {args.bandwidth} "
        f"{args.delay}, best of {args.repeat}"
    )
    print(f"{'path':<40} {'wall s':>8} {'MB/s':>8} {'x':>6}  note")
    for name, t, note in rows:
        print(f"{name:<40} {t:>8.3f} {nbytes / 1e6 / t:>8.2f} {best[0] / t:>6.1f}  {note}")


if __name__ == "__main__":
    main()
