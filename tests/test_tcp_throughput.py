"""TCP fills a clean path and shares a bottleneck (issue 5, item 3), in virtual time.

The rate is the payload delivered to the receiving application (goodput) over the last 5 s of a
10 s transfer; with 1448-byte segments in 1514-byte frames the most a 100 Mbit/s link can carry
is 95.6 Mbit/s of payload, so 90 Mbit/s is 94% of what the link allows.  Fairness is measured
over 20 s after a 10 s start on a 10 Mbit/s bottleneck with a 50-frame queue: small enough for
CUBIC to run through several congestion epochs (K is about 4 s there) in that time.
"""

import pytest
import trio

import emunet

MBIT = 1_000_000


def dumbbell(*, bottleneck: str, delay: str, senders: int) -> emunet.Network:
    """senders s1..sN - r1 - r2 - receiver d; the r1-r2 link is the bottleneck."""
    net = emunet.Network(seed=11)
    net.add_router("r1", interfaces={"eth0": "10.0.9.1/30"})
    net.add_router("r2", interfaces={"eth0": "10.0.9.2/30", "eth1": "10.0.2.1/24"})
    net.host("r1").add_route("10.0.2.0/24", via="10.0.9.2")
    net.add_host("d", interfaces={"eth0": "10.0.2.2/24"}, routes={"default": "10.0.2.1"})
    for i in range(1, senders + 1):
        net.host("r1").add_interface(f"eth{i}", f"10.0.{10 + i}.1/24", net._next_mac())
        net.add_host(
            f"s{i}",
            interfaces={"eth0": f"10.0.{10 + i}.2/24"},
            routes={"default": f"10.0.{10 + i}.1"},
        )
        net.add_link(f"s{i}:eth0", f"r1:eth{i}", delay="1ms", bandwidth="1Gbit")
    net.host("r2").add_route("10.0.0.0/8", via="10.0.9.1")
    net.add_link("r1:eth0", "r2:eth0", delay=delay, bandwidth=bottleneck, queue=50)
    net.add_link("r2:eth1", "d:eth0", delay="1ms", bandwidth="1Gbit")
    return net


async def _sink(listener, counts: list[int], index: int) -> None:
    stream = await listener.accept()
    while data := await stream.receive_some(1 << 20):
        counts[index] += len(data)


async def _source(host, port: int, stop_at: float, congestion: str) -> None:
    stream = await host.tcp_connect("10.0.2.2", port, congestion=congestion)
    chunk = bytes(1 << 20)
    with trio.move_on_at(stop_at):
        while True:
            await stream.send_all(chunk)


async def test_one_flow_fills_100mbit_at_20ms_rtt(autojump_clock) -> None:
    net = emunet.Network(seed=5)
    net.add_host("client", interfaces={"eth0": "10.0.1.2/24"}, routes={"default": "10.0.1.1"})
    net.add_router("r1", interfaces={"eth0": "10.0.1.1/24", "eth1": "10.0.2.1/24"})
    net.add_host("server", interfaces={"eth0": "10.0.2.2/24"}, routes={"default": "10.0.2.1"})
    net.add_link("client:eth0", "r1:eth0", delay="5ms", bandwidth="100Mbit")
    net.add_link("r1:eth1", "server:eth0", delay="5ms", bandwidth="100Mbit")
    counts = [0]
    async with net.running():
        listener = await net.host("server").tcp_listen(5001)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_sink, listener, counts, 0)
            t0 = trio.current_time()
            nursery.start_soon(_source, net.host("client"), 5001, t0 + 10, "cubic")
            await trio.sleep_until(t0 + 5)
            at5 = counts[0]
            await trio.sleep_until(t0 + 10)
            at10 = counts[0]
            nursery.cancel_scope.cancel()
    rate = (at10 - at5) * 8 / 5
    assert rate >= 90 * MBIT, f"{rate / MBIT:.1f} Mbit/s over the last 5 s"
    assert rate <= 100 * MBIT * 1448 / 1514 + 1  # never more than the link can carry


@pytest.mark.parametrize("congestion", ["cubic", "reno"])
async def test_two_flows_share_a_bottleneck(autojump_clock, congestion: str) -> None:
    net = dumbbell(bottleneck="10Mbit", delay="10ms", senders=2)
    counts = [0, 0]
    async with net.running():
        listeners = [await net.host("d").tcp_listen(5001 + i) for i in range(2)]
        async with trio.open_nursery() as nursery:
            for i in range(2):
                nursery.start_soon(_sink, listeners[i], counts, i)
            t0 = trio.current_time()
            for i in range(2):
                nursery.start_soon(_source, net.host(f"s{i + 1}"), 5001 + i, t0 + 30, congestion)
            await trio.sleep_until(t0 + 10)
            start = list(counts)
            await trio.sleep_until(t0 + 30)
            end = list(counts)
            nursery.cancel_scope.cancel()
    shares = [end[i] - start[i] for i in range(2)]
    total = sum(shares) * 8 / 20
    assert total >= 0.85 * 10 * MBIT * 1448 / 1514, f"{total / MBIT:.1f} Mbit/s together"
    low, high = sorted(shares)
    assert low >= 0.8 * high, f"shares {shares}"
