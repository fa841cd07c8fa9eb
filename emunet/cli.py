"""The ``emunet`` command (DESIGN.md section 5)::

    emunet run TOPOLOGY [--seed N] [--pcap DIR] [--json FILE] [--realtime]
    emunet check TOPOLOGY
    emunet ping TOPOLOGY SRC DST [-c COUNT] [-i INTERVAL] [-s SIZE] [-W TIMEOUT] [-t TTL]
    emunet traceroute TOPOLOGY SRC DST [-m MAX_HOPS] [-q QUERIES] [-w WAIT] [-p PORT]
    emunet iperf TOPOLOGY SRC DST [--bytes N | --time T] [--udp --rate R] [-P N] [-l LEN] [-C CC]
    emunet trace TOPOLOGY SRC DST [--tcp PORT | --udp PORT] [--size N]

TOPOLOGY is a topology file or a generator spec (``tree,depth=2,fanout=3``).  ``run`` runs the
topology's experiments (with its timed events) and prints the report; ``ping``,
``traceroute`` and ``iperf`` run one experiment instead of the file's (events still play) and
print its table as the tool would; ``trace`` sends one packet (an echo request, a UDP
datagram, or a TCP connect and a little data) with tracing on and prints its way through each
host's stack.

Exit status: 0 when the experiments succeed, 1 when one fails, 2 on bad input (a bad topology:
its one-line error on stderr, no traceback; bad options).  While it runs on a terminal,
stderr shows a progress line (virtual time, running experiments).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import attrs
import trio

if TYPE_CHECKING:
    from .experiments.run import StopRequest
    from .network import Network
    from .report import Report
    from .topology.schema import Experiment, Topology
    from .trace import TraceRecord

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C
TRACE_TIMEOUT = 10.0  # virtual seconds a trace waits for its packet's answer


class UsageError(Exception):
    """Bad input: printed as one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


# ----------------------------------------------------------------------------- progress


class Progress(trio.abc.Instrument):
    """The live progress line: virtual time and the running experiments, redrawn on stderr at
    most every ``interval`` wall seconds.  A trio instrument, so that it adds no task: runs
    stay identical with and without it."""

    def __init__(self, stream: TextIO, interval: float = 0.2) -> None:
        self.stream = stream
        self.interval = interval
        self.labels: list[str] = []
        self._next = 0.0
        self._shown = False

    def update(self, labels: list[str]) -> None:
        self.labels = labels

    def before_io_wait(self, timeout: float) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            self.draw()

    def draw(self) -> None:
        try:
            virtual = trio.current_time()
        except RuntimeError:  # pragma: no cover - outside trio.run
            return
        text = f"{virtual:10.3f} s  " + ("; ".join(self.labels) or "...")
        width = max(20, shutil.get_terminal_size().columns - 1)
        self.stream.write("\r" + text[:width] + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


# ----------------------------------------------------------------------------- helpers


def _seed(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    value = int(text)
    if value >= 2**64:
        raise argparse.ArgumentTypeError(f"{text} is too large: a seed is at most 2**64 - 1")
    return value


def _bounded(low: int, high: int, what: str) -> Any:
    """An argparse type: a decimal integer in ``low..high`` (inclusive), else one clear
    line naming the range (``--tcp 70000``: "a port is 1..65535, got 70000")."""

    def convert(text: str) -> int:
        stripped = text.strip()
        digits = stripped[1:] if stripped[:1] in "+-" else stripped
        if not digits.isdigit():
            raise argparse.ArgumentTypeError(f"expected an integer ({what}), got {text!r}")
        value = int(stripped)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} is {low}..{high}, got {value}")
        return value

    convert.__name__ = what  # argparse names the type in its messages
    return convert


_PORT = _bounded(1, 65535, "a port")
_COUNT = _bounded(1, 1_000_000, "a count")
_PAYLOAD = _bounded(0, 65507, "a size in bytes")
_TTL = _bounded(1, 255, "a TTL")
_QUERIES = _bounded(1, 10, "probes per hop")
_PARALLEL = _bounded(1, 128, "parallel streams")


def _load(args: argparse.Namespace, seed: int | None = None) -> Topology:
    from .topology.load import load_topology

    topology = load_topology(args.topology)
    taps = [name for name, node in topology.nodes.items() if node.kind == "tap"]
    if taps and not getattr(args, "realtime", False):
        raise UsageError(
            f"emunet {args.command}: {topology.name} has a tap node ({taps[0]!r}, a real Linux "
            "device that lives in wall-clock time): add --realtime"
        )
    if seed is not None:
        topology = attrs.evolve(topology, seed=seed)
    return topology


def _build(topology: Topology) -> Network:
    from .topology import TopologyError
    from .topology.load import build_network

    try:
        return build_network(topology)
    except TopologyError:
        raise
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise TopologyError(topology.file, "", str(message)) from None


def _run_network(
    net: Network,
    body: Any,
    *,
    seed: int,
    realtime: bool,
    progress: Progress | None,
    interruptible: bool = False,
) -> Any:
    """Run ``body(net, progress_callback, stop)`` inside ``net.running()`` with emunet.run.

    With ``interruptible`` the first Ctrl-C (SIGINT) sets ``stop`` and the body ends early with
    what it has (``emunet run`` reports the experiments that finished); a second Ctrl-C, or
    the first without ``interruptible``, interrupts at once (KeyboardInterrupt, exit 130)."""
    import emunet

    from .experiments.run import StopRequest

    async def main() -> Any:
        if progress is not None:
            trio.lowlevel.add_instrument(progress)
        stop = StopRequest()
        previous: Any = None
        if interruptible and threading.current_thread() is threading.main_thread():
            # A plain signal handler, not a task: an idle task would change trio's scheduling
            # and with it every seeded run.  The next Ctrl-C gets trio's own handler back.
            token = trio.lowlevel.current_trio_token()
            previous = signal.getsignal(signal.SIGINT)

            def on_sigint(signum: int, frame: Any) -> None:
                signal.signal(signal.SIGINT, previous)
                token.run_sync_soon(_interrupted, stop)

            signal.signal(signal.SIGINT, on_sigint)
        try:
            async with net.running():
                update = progress.update if progress is not None else None
                return await body(net, update, stop)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if progress is not None:
                with contextlib.suppress(KeyError):  # trio drops an instrument that raised
                    trio.lowlevel.remove_instrument(progress)
                progress.clear()

    return emunet.run(main, seed=seed, realtime=realtime)


def _interrupted(stop: StopRequest) -> None:
    print("\nemunet: interrupted; reporting what finished (Ctrl-C again to quit)",
          file=sys.stderr, flush=True)  # fmt: skip
    stop.stop()


def _progress(enabled: bool = True) -> Progress | None:
    if enabled and sys.stderr.isatty():
        return Progress(sys.stderr)
    return None


def _run_experiments(
    topology: Topology,
    experiments: Sequence[Experiment] | None,
    args: argparse.Namespace,
) -> Report:
    from .experiments import run_experiments

    net = _build(topology)
    if getattr(args, "pcap", None):
        net.capture(args.pcap)

    async def body(net: Network, update: Any, stop: StopRequest) -> Report:
        return await run_experiments(
            net, topology, experiments=experiments, progress=update, stop=stop
        )

    report: Report = _run_network(
        net,
        body,
        seed=topology.seed,
        realtime=args.realtime,
        progress=_progress(),
        interruptible=True,
    )
    if getattr(args, "json", None):
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(report.to_json())
    return report


def _check_node(command: str, topology: Topology, name: str, role: str, *, stack: bool) -> None:
    """SRC must be an emulated host or router; DST a node with an address (or an address)."""
    from .wire.addr import ip_from_str

    node = topology.nodes.get(name)
    if node is None:
        if role == "DST" and not stack:
            try:
                ip_from_str(name)
                return
            except ValueError:
                pass
        raise UsageError(
            f"emunet {command}: {role} {name!r}: no node named {name!r} in {topology.name}"
        )
    if stack and node.kind not in ("host", "router"):
        raise UsageError(f"emunet {command}: {role} {name!r} is a {node.kind}: it runs no programs")
    if node.kind == "switch":
        raise UsageError(f"emunet {command}: {role} {name!r} is a switch: it has no address")


def _experiment(cls: Any, command: str, **fields: Any) -> Experiment:
    from .units import require_unit_for

    try:
        for key, value in fields.items():
            if value is not None:
                require_unit_for(key, value)
        return cls(**{k: v for k, v in fields.items() if v is not None})
    except ValueError as exc:
        raise UsageError(f"emunet {command}: {exc}") from None


# ----------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    topology = _load(args, args.seed)
    report = _run_experiments(topology, None, args)
    sys.stdout.write(str(report) + "\n")
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_check(args: argparse.Namespace) -> int:
    topology = _load(args)
    _build(topology)
    kinds: dict[str, int] = {}
    for node in topology.nodes.values():
        kinds[node.kind] = kinds.get(node.kind, 0) + 1

    def count(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 'es' if word.endswith('ch') else 's'}"

    parts = [count(n, kind) for kind, n in kinds.items()]
    parts += [
        count(len(topology.links), "link"),
        count(len(topology.events), "event"),
        count(len(topology.experiments), "experiment"),
    ]
    label = os.path.basename(topology.file)
    print(f"{label}: OK: {topology.name} (seed {topology.seed}, routing {topology.routing}): "
          + ", ".join(parts))  # fmt: skip
    return EXIT_OK


def _single(args: argparse.Namespace, spec: Experiment, topology: Topology) -> int:
    report = _run_experiments(topology, (spec,), args)
    if args.report:
        sys.stdout.write(str(report) + "\n")
    else:
        for result in report.results:
            sys.stdout.write(str(result) + "\n")
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_ping(args: argparse.Namespace) -> int:
    from .topology.schema import PingExperiment

    topology = _load(args, args.seed)
    _check_node(args.command, topology, args.src, "SRC", stack=True)
    _check_node(args.command, topology, args.dst, "DST", stack=False)
    spec = _experiment(
        PingExperiment,
        "ping",
        src=args.src,
        dst=args.dst,
        count=args.count,
        interval=args.interval,
        size=args.size,
        timeout=args.timeout,
        ttl=args.ttl,
    )
    return _single(args, spec, topology)


def cmd_traceroute(args: argparse.Namespace) -> int:
    from .topology.schema import TracerouteExperiment

    topology = _load(args, args.seed)
    _check_node(args.command, topology, args.src, "SRC", stack=True)
    _check_node(args.command, topology, args.dst, "DST", stack=False)
    spec = _experiment(
        TracerouteExperiment,
        "traceroute",
        src=args.src,
        dst=args.dst,
        max_hops=args.max_hops,
        queries=args.queries,
        wait=args.wait,
        port=args.port,
    )
    return _single(args, spec, topology)


def cmd_iperf(args: argparse.Namespace) -> int:
    from .topology.schema import TcpExperiment, UdpExperiment

    topology = _load(args, args.seed)
    _check_node(args.command, topology, args.src, "SRC", stack=True)
    _check_node(args.command, topology, args.dst, "DST", stack=True)
    spec: Experiment
    if args.udp:
        for option, value in (("--bytes", args.bytes), ("-P", args.parallel), ("-C", args.cc)):
            if value is not None:
                raise UsageError(f"emunet iperf: {option} is for TCP, not with --udp")
        spec = _experiment(
            UdpExperiment,
            "iperf",
            src=args.src,
            dst=args.dst,
            rate=args.rate,
            size=args.length,
            time=args.time,
            port=args.port,
        )
    else:
        if args.rate is not None:
            raise UsageError("emunet iperf: --rate needs --udp (TCP sends as fast as it can)")
        spec = _experiment(
            TcpExperiment,
            "iperf",
            src=args.src,
            dst=args.dst,
            bytes=args.bytes,
            time=args.time,
            parallel=args.parallel,
            length=args.length,
            congestion=args.cc,
            port=args.port,
        )
    return _single(args, spec, topology)


# ----------------------------------------------------------------------------- trace


@attrs.frozen
class TraceOutcome:
    """What ``emunet trace`` saw: the records, one line of result, and whether it worked."""

    records: tuple[TraceRecord, ...]
    summary: str
    ok: bool


def format_trace(records: Sequence[TraceRecord]) -> list[str]:
    """The records grouped host by host (hosts in the order they first appear), each host's
    in time order, times in milliseconds."""
    hosts: dict[str, list[TraceRecord]] = {}
    for record in records:
        hosts.setdefault(record.host, []).append(record)
    lines: list[str] = []
    for host, items in hosts.items():
        lines.append(host)
        width = max(len(r.function) for r in items)
        for r in sorted(items, key=lambda r: r.time):
            lines.append(f"  {r.time * 1000:12.6f} ms  {r.function:<{width}}  {r.detail}".rstrip())
        lines.append("")
    return lines


async def _trace_icmp(net: Network, src: str, address: str, size: int) -> tuple[str, bool]:
    result = await net.host(src).ping(address, 1, size=size, timeout=TRACE_TIMEOUT / 2)
    if result.received:
        return f"echo reply from {address} after {result.rtts[0] * 1000:.3f} ms", True
    if result.errors:
        return f"ICMP error instead of a reply from {address}", False
    return f"no reply from {address}", False


async def _trace_udp(
    net: Network, src: str, dst: str, address: str, port: int, size: int
) -> tuple[str, bool]:
    from .stack.host import Host
    from .wire.addr import ip_to_str

    target = net.nodes.get(dst)
    sink = target.udp_socket(port) if isinstance(target, Host) else None
    outcome: list[tuple[str, bool]] = []
    try:
        with net.host(src).udp_socket(recverr=True) as sock:
            start = trio.current_time()
            await sock.sendto(bytes(size), (address, port))
            async with trio.open_nursery() as nursery:

                async def delivered() -> None:
                    assert sink is not None
                    data, _ = await sink.recvfrom()
                    took = (trio.current_time() - start) * 1000
                    outcome.append((f"{dst} received {len(data)} bytes after {took:.3f} ms", True))
                    nursery.cancel_scope.cancel()

                async def refused() -> None:
                    err = await sock.recv_error()
                    if err is not None:
                        who = ip_to_str(err.offender)
                        text = f"ICMP type {err.type} code {err.code} from {who}"
                        outcome.append((text, False))
                    nursery.cancel_scope.cancel()

                if sink is not None:
                    nursery.start_soon(delivered)
                nursery.start_soon(refused)
    finally:
        if sink is not None:
            sink.close()
    return outcome[0] if outcome else (f"no answer from {address}:{port}", False)


async def _trace_tcp(
    net: Network, src: str, dst: str, address: str, port: int, size: int
) -> tuple[str, bool]:
    from .experiments.common import error_text
    from .stack.host import Host

    target = net.nodes.get(dst)
    listener = await target.tcp_listen(port) if isinstance(target, Host) else None
    outcome: list[str] = []
    streams: list[Any] = []
    failed: list[str] = []
    start = trio.current_time()
    try:
        async with trio.open_nursery() as nursery:

            async def server() -> None:
                assert listener is not None
                peer = await listener.accept()
                streams.append(peer)
                got = 0
                while got < size:
                    data = await peer.receive_some()
                    if not data:
                        break
                    got += len(data)
                took = (trio.current_time() - start) * 1000
                outcome.append(f"{dst} accepted and read {got} bytes at {took:.3f} ms")
                nursery.cancel_scope.cancel()

            if listener is not None:
                nursery.start_soon(server)
            try:
                stream = await net.host(src).tcp_connect(address, port)
                streams.append(stream)
                took = (trio.current_time() - start) * 1000
                outcome.insert(0, f"connected after {took:.3f} ms")
                if size:
                    await stream.send_all(bytes(size))
            except OSError as exc:
                failed.append(f"connect failed: {error_text(exc)}")
                nursery.cancel_scope.cancel()
            if listener is None:
                nursery.cancel_scope.cancel()
    finally:
        net.trace(False)
        for stream in streams:
            stream.abort()
        if listener is not None:
            with trio.CancelScope(shield=True):
                await listener.aclose()
    if failed:
        return failed[0], False
    return "; ".join(outcome), len(outcome) == 2 or (listener is None and bool(outcome))


def cmd_trace(args: argparse.Namespace) -> int:
    from .experiments.common import node_address

    topology = _load(args, args.seed)
    _check_node(args.command, topology, args.src, "SRC", stack=True)
    _check_node(
        args.command, topology, args.dst, "DST", stack=args.tcp is not None or args.udp is not None
    )
    if args.size is not None and args.size < 0:
        raise UsageError("emunet trace: --size must not be negative")
    net = _build(topology)
    if args.pcap:
        net.capture(args.pcap)
    address = node_address(net, args.dst)
    if args.tcp is not None:
        size = 64 if args.size is None else args.size
        what = f"TCP connect {args.src} -> {address} port {args.tcp}"
        if size:
            what += f", then {size} bytes"
    elif args.udp is not None:
        size = 64 if args.size is None else args.size
        what = f"UDP datagram of {size} bytes {args.src} -> {address} port {args.udp}"
    else:
        size = 56 if args.size is None else args.size
        what = f"ICMP echo request of {size} bytes {args.src} -> {address}"

    async def body(net: Network, update: Any, stop: StopRequest) -> TraceOutcome:
        tracer = net.trace()
        assert tracer is not None
        summary, ok = f"nothing within {TRACE_TIMEOUT:g} s", False
        with trio.move_on_after(TRACE_TIMEOUT):
            if args.tcp is not None:
                summary, ok = await _trace_tcp(net, args.src, args.dst, address, args.tcp, size)
            elif args.udp is not None:
                summary, ok = await _trace_udp(net, args.src, args.dst, address, args.udp, size)
            else:
                summary, ok = await _trace_icmp(net, args.src, address, size)
        net.trace(False)
        return TraceOutcome(tuple(tracer.records), summary, ok)

    outcome: TraceOutcome = _run_network(
        net, body, seed=topology.seed, realtime=args.realtime, progress=None
    )
    lines = [f"emunet trace: {what} ({topology.name}, seed {topology.seed})", ""]
    lines += format_trace(outcome.records)
    lines.append(f"result: {outcome.summary}")
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK if outcome.ok else EXIT_FAILED


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="emunet",
        description="A multi-host network emulator with Linux-faithful TCP/IPv4 stacks.",
        epilog="TOPOLOGY is a topology file or a generator spec such as tree,depth=2,fanout=3.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def common(p: argparse.ArgumentParser, *, json: bool = True) -> None:
        p.add_argument("--seed", type=_seed, help="override the topology's seed")
        p.add_argument("--pcap", metavar="DIR", help="write one pcap file per link into DIR")
        if json:
            p.add_argument("--json", metavar="FILE", help="write every figure as JSON to FILE")
        p.add_argument(
            "--realtime", action="store_true", help="run in wall-clock time, not virtual time"
        )

    def endpoints(p: argparse.ArgumentParser, dst_help: str) -> None:
        p.add_argument("topology", metavar="TOPOLOGY")
        p.add_argument("src", metavar="SRC", help="the host that sends")
        p.add_argument("dst", metavar="DST", help=dst_help)

    run = sub.add_parser("run", help="run a topology's experiments and print the report")
    run.add_argument("topology", metavar="TOPOLOGY")
    common(run)
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="check a topology file (exit 2 with the error)")
    check.add_argument("topology", metavar="TOPOLOGY")
    check.add_argument(
        "--realtime", action="store_true", help="check for a wall-clock run (needed by tap nodes)"
    )
    check.set_defaults(func=cmd_check)

    report_help = "print the whole report (links, counters), not only the tool's table"

    ping = sub.add_parser("ping", help="ping from one host to another (iputils ping)")
    endpoints(ping, "a node name or an IPv4 address")
    ping.add_argument("-c", "--count", type=_COUNT, help="echo requests to send (3)")
    ping.add_argument("-i", "--interval", help="time between requests (1s)")
    ping.add_argument("-s", "--size", type=_PAYLOAD, help="bytes of echo data (56)")
    ping.add_argument("-W", "--timeout", help="wait for replies when none came (10s)")
    ping.add_argument("-t", "--ttl", type=_TTL, help="IP time to live")
    ping.add_argument("--report", action="store_true", help=report_help)
    common(ping)
    ping.set_defaults(func=cmd_ping)

    tr = sub.add_parser("traceroute", help="trace the route to a host (Linux traceroute)")
    endpoints(tr, "a node name or an IPv4 address")
    tr.add_argument("-m", "--max-hops", dest="max_hops", type=_TTL, help="largest TTL (30)")
    tr.add_argument("-q", "--queries", type=_QUERIES, help="probes per hop (1)")
    tr.add_argument("-w", "--wait", help="wait for each answer (5s)")
    tr.add_argument("-p", "--port", type=_PORT, help="first destination port (33434)")
    tr.add_argument("--report", action="store_true", help=report_help)
    common(tr)
    tr.set_defaults(func=cmd_traceroute)

    iperf = sub.add_parser("iperf", help="a TCP transfer (iperf3) or a UDP stream (iperf -u)")
    endpoints(iperf, "the host that receives")
    amount = iperf.add_mutually_exclusive_group()
    amount.add_argument("-n", "--bytes", help="TCP: bytes to send in all (e.g. 10MB)")
    amount.add_argument("-t", "--time", help="how long to send (TCP and UDP: 10s)")
    iperf.add_argument("-u", "--udp", action="store_true", help="a UDP stream instead of TCP")
    iperf.add_argument("-b", "--rate", help="UDP: target rate (1Mbit)")
    iperf.add_argument("-P", "--parallel", type=_PARALLEL, help="TCP: parallel streams (1)")
    iperf.add_argument("-l", "--length", help="TCP write size (128KiB); UDP datagram (1470)")
    iperf.add_argument("-C", "--congestion", dest="cc", help="TCP: cubic or reno")
    iperf.add_argument("-p", "--port", type=_PORT, help="server port (5001)")
    iperf.add_argument("--report", action="store_true", help=report_help)
    common(iperf)
    iperf.set_defaults(func=cmd_iperf)

    trace = sub.add_parser(
        "trace", help="follow one packet through every host's stack, step by step"
    )
    endpoints(trace, "a node name (or an address for ICMP)")
    proto = trace.add_mutually_exclusive_group()
    proto.add_argument("--tcp", type=_PORT, metavar="PORT", help="a TCP connect to PORT (and data)")
    proto.add_argument("--udp", type=_PORT, metavar="PORT", help="one UDP datagram to PORT")
    trace.add_argument(
        "--size",
        type=_PAYLOAD,
        help="bytes of data (ICMP 56; UDP 64; TCP 64 after connect, 0: none)",
    )
    common(trace, json=False)
    trace.set_defaults(func=cmd_trace)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: returns the exit status (0 ok, 1 an experiment failed, 2 bad
    input)."""
    from .experiments.common import ExperimentError
    from .topology import TopologyError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.version:
            from . import __version__

            print(f"emunet {__version__}")
            return EXIT_OK
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return int(args.func(args))
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except (TopologyError, ExperimentError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a file we cannot write, a TAP device we may not open
        name = f" {exc.filename}" if exc.filename else ""
        print(f"emunet:{name}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("emunet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
