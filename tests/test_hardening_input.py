"""Issue 9, items 15-20: bad input from users gets one clear line on stderr and exit status 2,
never a traceback."""

from __future__ import annotations

import json
import pathlib

import pytest

from emunet import cli

ROOT = pathlib.Path(__file__).parent.parent
THREE_HOP = str(ROOT / "topologies" / "three-hop.yaml")


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["trace", THREE_HOP, "client", "server", "--tcp", "70000"],
            "a port is 1..65535, got 70000",
        ),
        (["trace", THREE_HOP, "client", "server", "--tcp", "0"], "a port is 1..65535, got 0"),
        (
            ["trace", THREE_HOP, "client", "server", "--udp", "70000"],
            "a port is 1..65535, got 70000",
        ),
        (["trace", THREE_HOP, "client", "server", "--udp", "x"], "expected an integer (a port)"),
        (["trace", THREE_HOP, "client", "server", "--size", "-1"], "a size in bytes is 0..65507"),
        (
            ["trace", THREE_HOP, "client", "server", "--size", "70000"],
            "a size in bytes is 0..65507",
        ),
        (["ping", THREE_HOP, "client", "server", "-c", "0"], "a count is 1..1000000, got 0"),
        (["ping", THREE_HOP, "client", "server", "-c", "10000000"], "a count is 1..1000000"),
        (["ping", THREE_HOP, "client", "server", "-s", "65508"], "a size in bytes is 0..65507"),
        (["ping", THREE_HOP, "client", "server", "-t", "256"], "a TTL is 1..255, got 256"),
        (["ping", THREE_HOP, "client", "server", "-t", "0"], "a TTL is 1..255, got 0"),
        (["traceroute", THREE_HOP, "client", "server", "-m", "0"], "a TTL is 1..255, got 0"),
        (["traceroute", THREE_HOP, "client", "server", "-q", "0"], "probes per hop is 1..10"),
        (["traceroute", THREE_HOP, "client", "server", "-p", "65536"], "a port is 1..65535"),
        (["iperf", THREE_HOP, "client", "server", "-P", "0"], "parallel streams is 1..128, got 0"),
        (["iperf", THREE_HOP, "client", "server", "-p", "99999"], "a port is 1..65535"),
        (["run", THREE_HOP, "--seed", "-3"], "expected an integer >= 0"),
        (["run", THREE_HOP, "--seed", str(2**64)], "a seed is at most 2**64 - 1"),
    ],
)
def test_item_15_cli_numeric_options_validated(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _main(capsys, *argv)
    assert status == 2
    assert out == ""
    line = _one_line(err)
    assert message in line


TAP_TOPOLOGY = """
name: with-tap
nodes:
  r1: {kind: router, interfaces: {eth0: 10.0.0.1/24}}
  linux: {kind: tap, device: emtap0, address: 10.0.0.2/24}
links:
  - {endpoints: [r1:eth0, linux:tap], delay: 1ms}
"""


@pytest.mark.parametrize("command", ["check", "run"])
def test_item_16_tap_needs_realtime(
    command: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tap.yaml"
    path.write_text(TAP_TOPOLOGY)
    status, out, err = _main(capsys, command, str(path))
    assert (status, out) == (2, "")
    line = _one_line(err)
    assert line == (
        f"emunet {command}: with-tap has a tap node ('linux', a real Linux device that lives "
        "in wall-clock time): add --realtime"
    )


def test_item_16_check_with_realtime_passes(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tap.yaml"
    path.write_text(TAP_TOPOLOGY)
    status, out, err = _main(capsys, "check", str(path), "--realtime")
    assert (status, err) == (0, "")
    assert out.startswith("tap.yaml: OK: with-tap")


BARE = """
name: bare
nodes:
  a: {interfaces: {eth0: 10.0.0.1/24}}
  b: {interfaces: {eth0: 10.0.0.2/24}}
links:
  - {endpoints: [a:eth0, b:eth0], LINK}
"""


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("delay: 30", "links[0].delay: 30 has no unit: write 30ms or 30s"),
        ("delay: '30'", "links[0].delay: 30 has no unit: write 30ms or 30s"),
        ("bandwidth: 30", "links[0].bandwidth: 30 has no unit: write 30Mbit or 30kbit"),
    ],
)
def test_item_19_bare_number_needs_unit(
    link: str, message: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bare.yaml"
    path.write_text(BARE.replace("LINK", link))
    status, out, err = _main(capsys, "check", str(path))
    assert (status, out) == (2, "")
    assert message in _one_line(err)


def test_item_19_cli_bare_interval_needs_unit(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _main(capsys, "ping", THREE_HOP, "client", "server", "-i", "2")
    assert (status, out) == (2, "")
    assert "2 has no unit: write 2ms or 2s" in _one_line(err)


# --------------------------------------------------------------------------- item 17
INTERRUPTIBLE = """\
name: ctrl-c
seed: 1
nodes:
  a: {interfaces: {eth0: 10.0.0.1/24}}
  b: {interfaces: {eth0: 10.0.0.2/24}}
links:
  - {endpoints: [a:eth0, b:eth0], delay: 1ms, bandwidth: 1Gbit}
experiments:
  - {type: ping, from: a, to: b, count: 2}
  - {type: tcp, from: a, to: b, time: 100000s}
"""


def test_item_17_ctrl_c_during_run_exits_130_with_the_report_so_far(tmp_path) -> None:
    """``emunet run`` on a terminal (a pty, so the progress line shows); once the progress line
    names the long transfer, SIGINT: the ping that finished is reported, the run says it was
    interrupted, the JSON is written, exit 130, no traceback."""
    import os
    import pty
    import select
    import signal
    import subprocess
    import sys
    import time

    topo = tmp_path / "ctrl-c.yaml"
    topo.write_text(INTERRUPTIBLE)
    report = tmp_path / "report.json"
    master, slave = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "emunet.cli", "run", str(topo), "--json", str(report)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    out = b""

    def read_until(marker: bytes, limit: float) -> bool:
        nonlocal out
        deadline = time.monotonic() + limit  # a bound against hanging, not a timing assertion
        while marker not in out:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([master], [], [], left)[0]:
                return False
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                return False
            if not chunk:
                return False
            out += chunk
        return True

    try:
        assert read_until(b"[2/2] tcp a -> b", 60), out.decode(errors="replace")
        child.send_signal(signal.SIGINT)
        read_until(b"\x00never", 60)  # everything until the child exits
        status = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
    text = out.decode(errors="replace")
    assert status == 130, text
    assert "Traceback" not in text
    assert "[1] ping a -> b" in text and "2 packets transmitted, 2 received" in text
    assert "INTERRUPTED after" in text and "1 of 2 experiments finished" in text
    data = json.loads(report.read_text())
    assert data["ok"] is False and data["interrupted"] == {"planned": 2}
    assert [e["type"] for e in data["experiments"]] == ["ping"]
    assert data["experiments"][0]["received"] == 2
    assert data["nodes"]["b"]["counters"]["TcpPassiveOpens"] == 1  # counters up to then
