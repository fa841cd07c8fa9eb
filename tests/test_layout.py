"""Package-level guarantees: wire/ and the plain stack classes never import trio."""

import subprocess
import sys

import pytest

PLAIN_MODULES = [
    "emunet.wire",
    "emunet.wire.ethernet",
    "emunet.wire.arp",
    "emunet.wire.ipv4",
    "emunet.wire.icmp",
    "emunet.wire.udp",
    "emunet.wire.tcp",
    "emunet.wire.checksum",
    "emunet.wire.seqnum",
    "emunet.wire.addr",
    "emunet.fabric.pcap",
    "emunet.fabric.impair",
    "emunet.units",
    "emunet.trace",
    # the plain classes of the stack: logic with an explicit `now`, driven by the layer tasks
    "emunet.stack.frag",
    "emunet.stack.neigh",
    "emunet.stack.route",
    "emunet.stack.ip",
    "emunet.stack.icmp",
    "emunet.stack.udp",
    "emunet.stack.snmp",
    "emunet.stack.sysctl",
    "emunet.stack.skb",
    "emunet.stack.tcp.cc",
    "emunet.stack.tcp.rtt",
    "emunet.stack.tcp.sack",
]


@pytest.mark.parametrize("module", PLAIN_MODULES)
def test_module_imports_no_trio(module: str) -> None:
    # A fresh interpreter: importing the module must not pull trio into sys.modules.
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "bad = sorted(m for m in sys.modules if m == 'trio' or m.startswith('trio.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"{module} imported {out}"
