"""emunet beside ns-3's C++ core on the same TCP transfers, in one run, with the ratio.

    .venv/bin/pip install -e '.[ns3]'        # the ns3 wheel from PyPI: bench only
    .venv/bin/python bench/compare_ns3.py [--repeat 1] [--only 10gbit|100mbit]

Both simulate the same line: client - r1 - server, point-to-point links (10 Gbit / 1 ms, or
100 Mbit / 10 ms), MTU 1500, no loss, a 1000-frame queue on every link's sender, one TCP bulk
transfer client -> server (50 MB, or 20 MB), MSS 1448, CUBIC, initial window 10, timestamps,
SACK and window scaling.  What is measured is wall time from the first SYN to the last byte
delivered to the receiving application; the figure is MB of payload per wall-second.

emunet runs the stack of bench/tcp_bulk.py (Linux's default buffers with autotuning).  ns-3 has
no buffer autotuning, so it runs twice: with its default socket buffers (128 KiB, which caps its
window at 128 KiB) and with Linux's maxima (4 MiB send, 6 MiB receive).  The ratio is emunet's
rate over the faster of the two.  ns-3 runs in a child process (the bindings take seconds to
load); a missing ns3 package gives one line and the emunet figures alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import tcp_bulk  # noqa: E402

WORKLOADS = {
    # name: (MB, rate as emunet writes it, ns-3's spelling, one-way delay)
    "10gbit": (50.0, "10Gbit", "10Gbps", "1ms"),
    "100mbit": (20.0, "100Mbit", "100Mbps", "10ms"),
}
BUFFERS = {"ns-3 default buffers": None, "ns-3 Linux-size buffers": (4 << 20, 6 << 20)}


def ns3_child(mbytes: float, rate: str, delay: str, buffers: str) -> None:
    """Run one ns-3 transfer in this process and print its figures as JSON."""
    from ns import ns

    nbytes = int(mbytes * 1e6)
    default = ns.Config.SetDefault
    default("ns3::TcpL4Protocol::SocketType", ns.StringValue("ns3::TcpCubic"))
    default("ns3::TcpSocket::SegmentSize", ns.UintegerValue(tcp_bulk.MSS))
    default("ns3::TcpSocket::InitialCwnd", ns.UintegerValue(10))
    if buffers != "none":
        snd, rcv = (int(x) for x in buffers.split(","))
        default("ns3::TcpSocket::SndBufSize", ns.UintegerValue(snd))
        default("ns3::TcpSocket::RcvBufSize", ns.UintegerValue(rcv))
    nodes = ns.NodeContainer()
    nodes.Create(3)
    p2p = ns.PointToPointHelper()
    p2p.SetDeviceAttribute("DataRate", ns.StringValue(rate))
    p2p.SetDeviceAttribute("Mtu", ns.UintegerValue(1500))
    p2p.SetChannelAttribute("Delay", ns.StringValue(delay))
    p2p.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", ns.QueueSizeValue(ns.QueueSize("1000p")))
    first = p2p.Install(nodes.Get(0), nodes.Get(1))
    second = p2p.Install(nodes.Get(1), nodes.Get(2))
    ns.InternetStackHelper().Install(nodes)
    addresses = ns.Ipv4AddressHelper()
    addresses.SetBase(ns.Ipv4Address("10.0.1.0"), ns.Ipv4Mask("255.255.255.0"))
    addresses.Assign(first)
    addresses.SetBase(ns.Ipv4Address("10.0.2.0"), ns.Ipv4Mask("255.255.255.0"))
    server = addresses.Assign(second).GetAddress(1)
    ns.Ipv4GlobalRoutingHelper.PopulateRoutingTables()
    sink_helper = ns.PacketSinkHelper(
        "ns3::TcpSocketFactory", ns.InetSocketAddress(ns.Ipv4Address.GetAny(), 5001).ConvertTo()
    )
    sink_apps = sink_helper.Install(nodes.Get(2))
    source = ns.BulkSendHelper(
        "ns3::TcpSocketFactory", ns.InetSocketAddress(server, 5001).ConvertTo()
    )
    source.SetAttribute("MaxBytes", ns.UintegerValue(nbytes))
    source.Install(nodes.Get(0)).Start(ns.Seconds(0))
    sink = ns.DynamicCast[ns.PacketSink](sink_apps.Get(0))
    wall = time.perf_counter()
    # run in 10 ms steps of virtual time until the last byte is in (a Python callback per
    # packet would cost more than the simulation)
    while sink.GetTotalRx() < nbytes:
        ns.Simulator.Stop(ns.MilliSeconds(10))
        ns.Simulator.Run()
    wall = time.perf_counter() - wall
    print(json.dumps({"wall": wall, "virtual": ns.Simulator.Now().GetSeconds()}))
    ns.Simulator.Destroy()


def ns3_run(mbytes: float, rate: str, delay: str, buffers: tuple[int, int] | None) -> dict:
    spec = "none" if buffers is None else f"{buffers[0]},{buffers[1]}"
    out = subprocess.run(
        [sys.executable, __file__, "--ns3-child", str(mbytes), rate, delay, spec],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best counts")
    parser.add_argument("--only", choices=sorted(WORKLOADS), help="one workload")
    parser.add_argument("--ns3-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ns3_child:
        mbytes, rate, delay, buffers = args.ns3_child
        ns3_child(float(mbytes), rate, delay, buffers)
        return
    have_ns3 = importlib.util.find_spec("ns") is not None
    if not have_ns3:
        print("compare_ns3: ns-3 is not installed (pip install -e '.[ns3]'); emunet alone")
    head = f"{'workload':<22} {'who':<26} {'wall s':>8} {'MB/s':>8} {'virtual s':>10}"
    print(head)
    for name, (mbytes, rate, ns3_rate, delay) in WORKLOADS.items():
        if args.only and name != args.only:
            continue
        label = f"{mbytes:.0f} MB {rate}/{delay}"
        nbytes = int(mbytes * 1e6)
        wall, virtual = min(
            (tcp_bulk.stack_run(nbytes, rate, delay) for _ in range(args.repeat)),
            key=lambda r: r[0],
        )
        ours = nbytes / 1e6 / wall
        print(f"{label:<22} {'emunet':<26} {wall:>8.3f} {ours:>8.2f} {virtual:>10.3f}")
        if not have_ns3:
            continue
        best = 0.0
        for who, buffers in BUFFERS.items():
            runs = [ns3_run(mbytes, ns3_rate, delay, buffers) for _ in range(args.repeat)]
            run = min(runs, key=lambda r: r["wall"])
            theirs = nbytes / 1e6 / run["wall"]
            best = max(best, theirs)
            print(f"{'':<22} {who:<26} {run['wall']:>8.3f} {theirs:>8.2f} {run['virtual']:>10.3f}")
        print(f"{'':<22} {'emunet / best ns-3':<26} {'':>8} {ours / best:>7.2f}x")


if __name__ == "__main__":
    main()
