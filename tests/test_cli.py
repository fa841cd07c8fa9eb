"""The ``emunet`` command: run, check, ping, traceroute, iperf and trace; exit statuses, the
one-line errors, pcap output (scapy and tshark read it), deterministic --json, the progress
line, and the real console script once."""

from __future__ import annotations

import glob
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.utils import rdpcap

from emunet import cli

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent
SHIPPED = sorted(glob.glob(str(ROOT / "topologies" / "*.yaml")))
BAD = sorted(glob.glob(str(HERE / "bad_topologies" / "*.yaml")))
THREE_HOP = str(ROOT / "topologies" / "three-hop.yaml")
MTU_MISMATCH = str(ROOT / "topologies" / "mtu-mismatch.yaml")

# A small routed network with a 576-byte link: ARP, forwarding, fragments, ICMP, UDP, TCP.
SMALL = """
name: small
seed: 9
defaults:
  link: {delay: 2ms, bandwidth: 100Mbit}
nodes:
  client: {interfaces: {eth0: 10.0.1.2/24}, routes: {default: 10.0.1.1}}
  r1: {kind: router, interfaces: {eth0: 10.0.1.1/24, eth1: 10.0.2.1/24}}
  server: {interfaces: {eth0: 10.0.2.2/24}, routes: {default: 10.0.2.1}}
links:
  - {endpoints: [client:eth0, r1:eth0], loss: 2%, jitter: 1ms}
  - {endpoints: [r1:eth1, server:eth0], mtu: 576}
experiments:
  - {type: ping, from: client, to: server, count: 3, size: 1000, interval: 100ms}
  - {type: udp, from: client, to: server, rate: 1Mbit, size: 700, time: 500ms}
  - {type: tcp, from: client, to: server, bytes: 60KB}
"""


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _expected(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    return f"{os.path.basename(path)}: {first[len('# expect: ') :].rstrip()}"


def _small(tmp_path: pathlib.Path, text: str = SMALL) -> str:
    path = tmp_path / "small.yaml"
    path.write_text(text)
    return str(path)


# ------------------------------------------------------------------------- run


# Every shipped topology runs to exit 0 with a clean report: tests/test_golden.py, which
# also checks its JSON report and pcaps against the golden ones.


def test_console_script_runs_three_hop(tmp_path: pathlib.Path, capsys) -> None:
    script = shutil.which("emunet", path=os.path.dirname(sys.executable)) or shutil.which("emunet")
    assert script is not None, "the emunet console script is not installed"
    there, here = tmp_path / "subprocess.json", tmp_path / "in-process.json"
    done = subprocess.run(
        [script, "run", THREE_HOP, "--json", str(there)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    # another process (another PYTHONHASHSEED) computes the very same figures
    _main(capsys, "run", THREE_HOP, "--json", str(here))
    assert there.read_bytes() == here.read_bytes()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("emunet run: three-hop (seed 42), 2 experiments")
    assert "[1] ping client -> server" in lines
    assert "--- 10.0.2.2 ping statistics ---" in lines
    assert "[2] tcp client -> server" in lines
    assert done.stderr == ""


def test_failed_experiment_exits_1(tmp_path: pathlib.Path, capsys) -> None:
    text = SMALL.split("experiments:")[0] + (
        "events:\n  - {at: 0s, link: [r1:eth1, server:eth0], set: {up: false}}\n"
        "experiments:\n  - {type: ping, from: client, to: server, count: 2, timeout: 1s}\n"
    )
    status, out, _ = _main(capsys, "run", _small(tmp_path, text))
    assert status == 1
    assert "2 packets transmitted, 0 received, 100% packet loss" in out
    assert "FAILED: 1 of 1 experiments" in out


def test_generator_spec_as_topology(capsys) -> None:
    status, out, _ = _main(capsys, "ping", "line,3,delay=1ms", "h1", "h3", "-c", "2")
    assert status == 0
    assert "2 packets transmitted, 2 received, 0% packet loss" in out


# ------------------------------------------------------------------------- bad input


def test_there_are_bad_files() -> None:
    assert len(BAD) >= 25


@pytest.mark.parametrize("path", BAD, ids=lambda p: os.path.basename(p))
def test_check_bad_file_exit_2_with_one_line(path: str, capsys) -> None:
    status, out, err = _main(capsys, "check", path)
    assert (status, out) == (2, "")
    assert err == _expected(path) + "\n"


def test_run_bad_file_exit_2_one_line(capsys) -> None:
    path = str(HERE / "bad_topologies" / "mtu-below-minimum.yaml")
    status, out, err = _main(capsys, "run", path)
    assert (status, out, err) == (2, "", _expected(path) + "\n")


def test_check_good_file(capsys) -> None:
    status, out, err = _main(capsys, "check", THREE_HOP)
    assert (status, err) == (0, "")
    assert out == (
        "three-hop.yaml: OK: three-hop (seed 42, routing static): 2 hosts, 1 router, "
        "2 links, 2 events, 2 experiments\n"
    )
    status, out, _ = _main(capsys, "check", "tree,depth=2,fanout=3")
    assert status == 0 and "4 routers, 9 hosts, 3 switches, 15 links" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run"], "emunet run: the following arguments are required: TOPOLOGY"),
        (["run", THREE_HOP, "--bogus"], "emunet: unrecognized arguments: --bogus"),
        (["run", THREE_HOP, "--seed", "-1"], "argument --seed: expected an integer >= 0"),
        (
            ["ping", THREE_HOP, "client", "server", "-c", "0"],
            "argument -c/--count: a count is 1..1000000, got 0",
        ),
        (["ping", THREE_HOP, "client", "nobody"], "emunet ping: DST 'nobody': no node named"),
        (["ping", THREE_HOP, "nobody", "server"], "emunet ping: SRC 'nobody': no node named"),
        (["ping", THREE_HOP, "client", "server", "-i", "1 fortnight"], "bad time"),
        (["iperf", THREE_HOP, "client", "server", "-b", "1Mbit"], "--rate needs --udp"),
        (["iperf", THREE_HOP, "client", "server", "-u", "-n", "1MB"], "--bytes is for TCP"),
        (["iperf", THREE_HOP, "client", "server", "-n", "1MB", "-t", "1s"], "not allowed with"),
        (["iperf", THREE_HOP, "client", "server", "-C", "vegas"], "'vegas' is not one of"),
        (["trace", THREE_HOP, "client", "server", "--tcp", "1", "--udp", "2"], "not allowed"),
        (["ping", "nonexistent.yaml", "a", "b"], "nonexistent.yaml: cannot read the file"),
        (["ping", "star,0", "h1", "h2"], "n: expected a positive integer"),
    ],
)
def test_bad_options_exit_2(argv: list[str], message: str, capsys) -> None:
    status, out, err = _main(capsys, *argv)
    assert (status, out) == (2, "")
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_version_and_help(capsys) -> None:
    assert _main(capsys, "--version")[:2] == (0, "emunet 0.1.0\n")
    status, out, _ = _main(capsys, "--help")
    assert status == 0 and "run" in out and "trace" in out
    assert _main(capsys)[0] == 2


# ------------------------------------------------------------------------- one experiment


def test_ping_subcommand_prints_iputils_summary(capsys) -> None:
    status, out, _ = _main(
        capsys, "ping", MTU_MISMATCH, "client", "server", "-c", "2", "-s", "1400"
    )
    assert status == 0
    assert out.splitlines() == [
        "PING 10.1.2.2 (10.1.2.2) 1400(1428) bytes of data.",
        "--- 10.1.2.2 ping statistics ---",
        "2 packets transmitted, 2 received, 0% packet loss, time 1015ms",
        "rtt min/avg/max/mdev = 14.566/21.580/28.595/7.014 ms",
    ]


def test_ping_to_an_address_and_the_whole_report(capsys) -> None:
    status, out, _ = _main(
        capsys, "ping", MTU_MISMATCH, "client", "10.1.1.2", "-c", "1", "--report"
    )
    assert status == 0
    assert "1 packets transmitted, 1 received" in out
    assert "Links, per direction" in out and "IcmpInEchoReps" in out


def test_traceroute_subcommand(capsys) -> None:
    status, out, _ = _main(capsys, "traceroute", MTU_MISMATCH, "client", "server", "-q", "2")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "traceroute to 10.1.2.2 (10.1.2.2), 30 hops max, 60 byte packets"
    assert [line.split()[1] for line in lines[1:]] == ["10.1.0.1", "10.1.1.2", "10.1.2.2"]


def test_iperf_udp_subcommand(capsys) -> None:
    argv = ["iperf", MTU_MISMATCH, "client", "server", "-u", "-b", "1Mbit", "-t", "1s"]
    status, out, _ = _main(capsys, *argv)
    assert status == 0
    assert "[  1] Sent 86 datagrams" in out
    assert out.rstrip().endswith("0/   86 (0%)")


def test_iperf_tcp_subcommand(capsys) -> None:
    argv = ["iperf", MTU_MISMATCH, "client", "server", "-n", "500KB", "-P", "2", "-C", "reno"]
    status, out, _ = _main(capsys, *argv)
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0] == "Connecting to host 10.1.2.2, port 5001 (reno)"
    assert lines[-2].startswith("[SUM]") and " 488 KBytes" in lines[-1]


# ------------------------------------------------------------------------- json, pcap


def test_json_same_seed_same_bytes(tmp_path: pathlib.Path, capsys) -> None:
    topology = _small(tmp_path)
    files = [tmp_path / name for name in ("a.json", "b.json", "c.json")]
    for path, seed in zip(files, ("5", "5", "6"), strict=True):
        status, _, _ = _main(capsys, "run", topology, "--seed", seed, "--json", str(path))
        assert status == 0
    one, two, three = (p.read_bytes() for p in files)
    assert one == two
    assert one != three
    data = json.loads(one)
    assert data["seed"] == 5 and [e["type"] for e in data["experiments"]] == ["ping", "udp", "tcp"]


def _checksums_ok(frame: Ether) -> None:
    """Every checksum scapy can recompute matches the one on the wire."""
    if IP not in frame:
        return
    ip = frame[IP]
    rebuilt = IP(bytes(ip.copy()))
    assert ip.chksum == IP(bytes(_without(rebuilt, "chksum"))).chksum
    if ip.frag or ip.flags.MF:
        return  # layer 4 of a fragment is checked after reassembly by tshark
    for layer in (TCP, UDP, ICMP):
        if layer in ip:
            original = ip[layer].chksum
            fresh = IP(bytes(_without(IP(bytes(ip)), "chksum", layer)))[layer].chksum
            assert original == fresh, f"bad {layer.__name__} checksum in {frame.summary()}"


def _without(packet, field: str, layer=IP):
    target = packet[layer]
    setattr(target, field, None)
    return packet


def test_pcap_reads_back_with_scapy_and_tshark(tmp_path: pathlib.Path, capsys) -> None:
    pcaps = tmp_path / "pcap"
    status, _, _ = _main(capsys, "run", _small(tmp_path), "--pcap", str(pcaps))
    assert status == 0
    files = sorted(pcaps.glob("*.pcap"))
    assert [f.name for f in files] == ["client_eth0--r1_eth0.pcap", "r1_eth1--server_eth0.pcap"]
    kinds: set[str] = set()
    for path in files:
        frames = rdpcap(str(path))
        assert len(frames) > 50
        times = [float(f.time) for f in frames]
        assert times == sorted(times) and times[0] >= 0.0
        for frame in frames:
            assert isinstance(frame, Ether)
            for layer in (ARP, ICMP, UDP, TCP):
                if layer in frame:
                    kinds.add(layer.__name__)
            if IP in frame and (frame[IP].frag or frame[IP].flags.MF):
                kinds.add("fragment")
            _checksums_ok(frame)
    assert kinds >= {"ARP", "ICMP", "UDP", "TCP", "fragment"}
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    for path in files:
        checks = []
        for proto in ("ip", "tcp", "udp"):  # tshark always checks ICMP checksums
            checks += ["-o", f"{proto}.check_checksum:TRUE"]
        verbose = subprocess.run(
            ["tshark", "-r", str(path), *checks, "-V"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        assert "Internet Protocol Version 4" in verbose
        assert "status: Good" in verbose  # checksums were checked ...
        for bad in ("Malformed", "status: Bad", "Status: Bad", "Bad checksum", "(Error/"):
            assert bad not in verbose, f"{path.name}: {bad}"  # ... and none was bad
        expert = subprocess.run(
            ["tshark", "-r", str(path), *checks, "-z", "expert,warn", "-q"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        assert "Malformed" not in expert and "Bad checksum" not in expert


# ------------------------------------------------------------------------- progress line


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_only_on_a_terminal(monkeypatch, capsys) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    status = cli.main(["ping", MTU_MISMATCH, "client", "server", "-c", "2"])
    assert status == 0
    shown = terminal.getvalue()
    assert shown.startswith("\r") and shown.endswith("\r\x1b[K")  # drawn, then cleared
    assert " s  " in shown
    assert "2 packets transmitted" in capsys.readouterr().out


# ------------------------------------------------------------------------- trace


def _trace_steps(out: str) -> dict[str, list[tuple[str, str]]]:
    """host -> [(function, detail), ...] from ``emunet trace`` output."""
    hosts: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in out.splitlines()[2:]:
        if not line or line.startswith("result: "):
            continue
        if not line.startswith(" "):
            current = hosts.setdefault(line, [])
            continue
        assert current is not None
        fields = line.split(None, 3)
        current.append((fields[2], fields[3] if len(fields) > 3 else ""))
    return hosts


def _in_order(steps: list[tuple[str, str]], expected: list[str]) -> list[int]:
    """Positions of ``expected`` as a subsequence of the steps' functions (fails if absent)."""
    positions = []
    start = 0
    names = [f for f, _ in steps]
    for name in expected:
        assert name in names[start:], f"{name} missing after {names[:start]} in {names}"
        start = names.index(name, start) + 1
        positions.append(start - 1)
    return positions


def _times(out: str) -> list[float]:
    return [float(line.split()[0]) for line in out.splitlines() if line.startswith("  ")]


def test_trace_tcp_connect_shows_the_packets_way(capsys) -> None:
    status, out, _ = _main(capsys, "trace", THREE_HOP, "client", "server", "--tcp", "5001")
    assert status == 0, out
    assert out.splitlines()[0] == (
        "emunet trace: TCP connect client -> 10.0.2.2 port 5001, then 64 bytes (three-hop, seed 42)"
    )
    hosts = _trace_steps(out)
    assert list(hosts) == ["client", "r1", "server"]
    client, r1, server = hosts["client"], hosts["r1"], hosts["server"]
    # the client's send chain, with the SYN waiting for ARP
    at = _in_order(
        client,
        [
            "inet_stream_connect",
            "tcp_transmit_skb",
            "ip_queue_xmit",
            "ip_finish_output",
            "neigh_resolve_output",
            "dev_queue_xmit",
            "netif_receive_skb",
            "arp_rcv",
            "dev_queue_xmit",
        ],
    )
    assert client[at[1]][1].startswith("[S] ")
    assert "NONE: ARP request, packet queued" in client[at[4]][1]
    assert "ARP request who-has 10.0.1.1 tell 10.0.1.2" in client[at[5]][1]
    assert "ARP reply 10.0.1.1 is-at" in client[at[6]][1]
    assert "IPv4" in client[at[8]][1]
    # r1 answers ARP, forwards the SYN and resolves the server before sending it on
    at = _in_order(
        r1,
        [
            "arp_rcv",
            "ip_rcv",
            "ip_forward",
            "ip_finish_output",
            "neigh_resolve_output",
            "dev_queue_xmit",
            "arp_rcv",
            "dev_queue_xmit",
        ],
    )
    assert r1[at[2]][1] == "via eth1 ttl 63"
    assert "mtu 576" in r1[at[3]][1]
    # the server: SYN to the listener, the handshake's ACK, then the data segment's decision
    # (three-hop's server has tcp_low_latency 1: no prequeue, processed at once)
    _in_order(
        server,
        [
            "netif_receive_skb",
            "ip_rcv",
            "ip_local_deliver",
            "tcp_v4_rcv",
            "tcp_conn_request",
            "tcp_transmit_skb",
            "tcp_v4_rcv",
            "tcp_check_req",
            "inet_csk_accept",
            "tcp_v4_rcv",
            "tcp_v4_do_rcv",
            "tcp_recvmsg",
        ],
    )
    assert "tcp_prequeue" not in [f for f, _ in server]
    assert out.splitlines()[-1].startswith("result: connected after ")
    assert "server accepted and read 64 bytes at" in out.splitlines()[-1]


def test_trace_tcp_shows_the_prequeue_decision(tmp_path: pathlib.Path, capsys) -> None:
    text = pathlib.Path(THREE_HOP).read_text()
    text = text.replace("sysctl: {net.ipv4.tcp_low_latency: 1}", "sysctl: {}")
    path = tmp_path / "prequeue.yaml"
    path.write_text(text)
    status, out, _ = _main(capsys, "trace", str(path), "client", "server", "--tcp", "80")
    assert status == 0, out
    server = _trace_steps(out)["server"]
    at = _in_order(server, ["tcp_check_req", "tcp_v4_rcv", "tcp_prequeue", "tcp_recvmsg"])
    assert server[at[2]][1] == "reader waiting: prequeue"


def test_trace_ping_with_fragments(capsys) -> None:
    status, out, _ = _main(capsys, "trace", MTU_MISMATCH, "client", "server", "--size", "1400")
    assert status == 0
    hosts = _trace_steps(out)
    assert list(hosts) == ["client", "r1", "r2", "server"]
    _in_order(hosts["client"], ["ping_v4_sendmsg", "ip_queue_xmit", "neigh_resolve_output"])
    at = _in_order(hosts["r1"], ["ip_forward", "ip_finish_output", "ip_fragment"])
    assert hosts["r1"][at[2]][1] == "3 fragments for mtu 576"
    _in_order(
        hosts["server"], ["ip_defrag", "ip_defrag", "ip_defrag", "ip_local_deliver", "icmp_rcv"]
    )
    _in_order(hosts["client"], ["icmp_rcv"])
    assert out.splitlines()[-1].startswith("result: echo reply from 10.1.2.2 after ")


def test_trace_udp_to_a_listening_port(capsys) -> None:
    status, out, _ = _main(capsys, "trace", THREE_HOP, "client", "server", "--udp", "53")
    assert status == 0
    hosts = _trace_steps(out)
    _in_order(hosts["client"], ["udp_sendmsg", "ip_queue_xmit", "dev_queue_xmit"])
    _in_order(hosts["server"], ["ip_rcv", "ip_local_deliver", "udp_rcv", "udp_recvmsg"])
    assert out.splitlines()[-1].startswith("result: server received 64 bytes after ")


def test_trace_to_an_unreachable_address_exits_1(capsys) -> None:
    status, out, _ = _main(capsys, "trace", THREE_HOP, "client", "10.0.2.99")
    assert status == 1
    r1 = _trace_steps(out)["r1"]
    # r1 asks for 10.0.2.99 three times, then reports host unreachable to the client
    assert [f for f, d in r1].count("dev_queue_xmit") >= 3
    assert out.splitlines()[-1] == "result: ICMP error instead of a reply from 10.0.2.99"
