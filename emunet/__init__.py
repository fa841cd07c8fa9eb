"""emunet: a multi-host network emulator in pure Python on trio.

Each emulated host runs a TCP/IPv4 stack modelled on the Linux kernel's, one trio task per
layer; hosts are joined by virtual links with loss, delay, bandwidth, queue limit and MTU.

The names below are imported on first use, so that ``import emunet.wire`` (which imports this
package first) stays free of trio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Network": "emunet.network",
    "run": "emunet.runner",
    "PingResult": "emunet.stack.ping",
    "Hop": "emunet.stack.ping",
    "load_topology": "emunet.topology",
}
__all__ = ["Hop", "Network", "PingResult", "load_topology", "run"]

if TYPE_CHECKING:
    from .network import Network
    from .runner import run
    from .stack.ping import Hop, PingResult
    from .topology import load_topology


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emunet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
