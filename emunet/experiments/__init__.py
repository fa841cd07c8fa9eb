"""Experiments on a running network (DESIGN.md section 5): ping, traceroute, tcp (iperf3-like
bulk transfer), udp (iperf -u), storm (a connection storm against one listener) and http (h11
over emunet's TCP).  One module per type, each ``async def run_X(net, spec) -> XResult`` with
``spec`` the topology's experiment record; :func:`run_experiments` runs a topology's
experiments with its timed events and returns the :class:`emunet.report.Report`.

    async with net.running():
        report = await run_experiments(net)     # net from emunet.load_topology(...)
    print(report)
"""

from __future__ import annotations

from .common import ExperimentError, ExperimentResult, Percentiles, node_address
from .http import HttpResult, run_http
from .ping import PingResult, run_ping
from .run import RUNNERS, run_experiment, run_experiments
from .storm import StormResult, run_storm
from .tcp import TcpResult, TcpStreamResult, run_tcp
from .traceroute import TracerouteResult, run_traceroute
from .udp import UdpResult, run_udp

__all__ = [
    "RUNNERS",
    "ExperimentError",
    "ExperimentResult",
    "HttpResult",
    "Percentiles",
    "PingResult",
    "StormResult",
    "TcpResult",
    "TcpStreamResult",
    "TracerouteResult",
    "UdpResult",
    "node_address",
    "run_experiment",
    "run_experiments",
    "run_http",
    "run_ping",
    "run_storm",
    "run_tcp",
    "run_traceroute",
    "run_udp",
]
