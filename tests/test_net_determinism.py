"""Acceptance tests for issue 3, item 8: one seed makes a run reproducible (DESIGN.md section 3).

A lossy scenario (loss, jitter, duplication, reordering, a bandwidth limit; pings both ways and a
UDP stream at the same time) runs to completion in its own ``trio.run`` via ``emunet.run``,
writing one pcap per link.  Run twice with one seed it gives byte-identical pcaps and equal
counters; with another seed, different ones.  One run also happens in a fresh interpreter with
a different string-hash seed, which would expose any iteration over a set of strings or objects
on a path that decides packet order.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

import emunet

LOSSY = {
    "delay": "5ms",
    "jitter": "2ms",
    "bandwidth": "10Mbit",
    "loss": "5%",
    "duplicate": "2%",
    "reorder": "5%",
    "reorder_gap": "3ms",
}


def build(seed: int) -> emunet.Network:
    net = emunet.Network(seed=seed)
    net.add_host("client", interfaces={"eth0": "10.0.1.2/24"}, routes={"default": "10.0.1.1"})
    net.add_router("r1", interfaces={"eth0": "10.0.1.1/24", "eth1": "10.0.2.1/24"})
    net.add_host("server", interfaces={"eth0": "10.0.2.2/24"}, routes={"default": "10.0.2.1"})
    net.add_link("client:eth0", "r1:eth0", **LOSSY)
    net.add_link("r1:eth1", "server:eth0", **LOSSY)
    return net


def scenario(seed: int, pcap_dir: str) -> dict[str, Any]:
    """Run the lossy scenario under ``emunet.run(seed=seed)``; return everything it measured."""
    out: dict[str, Any] = {}

    async def main() -> None:
        net = build(seed)
        net.capture(pcap_dir)
        async with net.running():
            client, server = net.host("client"), net.host("server")
            received: list[tuple[int, float]] = []
            sink = server.udp_socket(5000)

            async def read() -> None:
                while True:
                    data, _ = await sink.recvfrom()
                    received.append((int.from_bytes(data[:4], "big"), trio.current_time()))

            async def stream() -> None:
                sock = client.udp_socket(0)
                for seq in range(300):
                    await sock.sendto(seq.to_bytes(4, "big") + bytes(496), ("10.0.2.2", 5000))
                    await trio.sleep(0.004)

            async def ping(host: Any, dst: str, key: str) -> None:
                out[key] = await host.ping(dst, count=30, interval=0.05, timeout=1)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                async with trio.open_nursery() as work:
                    work.start_soon(stream)
                    work.start_soon(ping, client, "10.0.2.2", "ping_client")
                    work.start_soon(ping, server, "10.0.1.2", "ping_server")
                await trio.sleep(1)
                nursery.cancel_scope.cancel()
            out["received"] = received
            out["end"] = trio.current_time()
            out["nstat"] = {h.name: h.nstat() for h in net.hosts()}
            out["devices"] = {h.name: h.link_stats() for h in net.hosts()}
            out["neigh"] = {h.name: [str(e) for _, e in h.neighbours()] for h in net.hosts()}
            out["links"] = {f"{a}-{b}": link.stats for (a, b), link in net.links.items()}

    emunet.run(main, seed=seed)
    return out


def pcaps(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.pcap"))}


def test_same_seed_same_pcaps_and_counters(tmp_path: Path) -> None:
    first = scenario(7, str(tmp_path / "a"))
    second = scenario(7, str(tmp_path / "b"))
    a, b = pcaps(tmp_path / "a"), pcaps(tmp_path / "b")
    assert sorted(a) == ["client_eth0--r1_eth0.pcap", "r1_eth1--server_eth0.pcap"]
    assert a == b
    assert first == second
    # The scenario really was lossy and busy, so that equality means something.
    links = first["links"]
    assert sum(s.a_to_b.lost + s.b_to_a.lost for s in links.values()) > 10
    assert sum(s.a_to_b.duplicated + s.b_to_a.duplicated for s in links.values()) > 0
    assert sum(s.a_to_b.reordered + s.b_to_a.reordered for s in links.values()) > 0
    assert 200 < len(first["received"]) < 300 + 20
    assert first["ping_client"].received > 0 and first["ping_client"].received < 30
    assert first["nstat"]["r1"]["IpForwDatagrams"] > 300


def test_other_seed_gives_other_pcaps_and_counters(tmp_path: Path) -> None:
    first = scenario(7, str(tmp_path / "a"))
    other = scenario(8, str(tmp_path / "c"))
    a, c = pcaps(tmp_path / "a"), pcaps(tmp_path / "c")
    assert sorted(a) == sorted(c)
    for name in a:
        assert a[name] != c[name]
    assert first["links"] != other["links"]
    assert first["received"] != other["received"]


def test_same_seed_in_a_fresh_interpreter_with_another_hash_seed(tmp_path: Path) -> None:
    """The pcaps must not depend on PYTHONHASHSEED (set iteration order) or on state left in
    this process by earlier runs."""
    here = scenario(7, str(tmp_path / "here"))
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import test_net_determinism as t; "
        "r = t.scenario(7, sys.argv[2]); print(len(r['received']), r['end'])"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    done = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(tmp_path / "there")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(here["received"])), str(here["end"])]
    assert pcaps(tmp_path / "here") == pcaps(tmp_path / "there")
