"""Topology files (DESIGN.md section 5): the schema, loading and checking, generators like
Mininet's ``--topo``, and ``routing: auto``.

``emunet.load_topology(source)`` (this package's :func:`load_topology`) returns a built
:class:`emunet.Network`; :func:`emunet.topology.load.load_topology` returns the checked
:class:`Topology` record without building anything (what ``emunet check`` needs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .schema import (
    EXPERIMENT_TYPES,
    Defaults,
    Event,
    Experiment,
    HttpExperiment,
    LinkSpec,
    Node,
    PingExperiment,
    StormExperiment,
    TcpExperiment,
    Topology,
    TopologyError,
    TracerouteExperiment,
    UdpExperiment,
)

if TYPE_CHECKING:
    from ..network import Network

__all__ = [
    "EXPERIMENT_TYPES",
    "Defaults",
    "Event",
    "Experiment",
    "HttpExperiment",
    "LinkSpec",
    "Node",
    "PingExperiment",
    "StormExperiment",
    "TcpExperiment",
    "Topology",
    "TopologyError",
    "TracerouteExperiment",
    "UdpExperiment",
    "build_network",
    "load_topology",
    "topology_from_spec",
]


def load_topology(
    source: str | os.PathLike[str] | Mapping[str, Any] | Topology, *, seed: int | None = None
) -> Network:
    """``emunet.load_topology``: read and check a topology (a YAML file or text, a generator
    spec such as ``"tree,depth=2,fanout=3"``, a mapping or a :class:`Topology`) and build its
    :class:`emunet.Network`; ``seed`` overrides the file's.  ``net.topology`` holds the
    checked record (its events and experiments).  Raises :class:`TopologyError`."""
    from .load import build_network
    from .load import load_topology as load

    topology = load(source)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise TopologyError(topology.file, "seed", f"expected an integer >= 0, got {seed!r}")
        topology = attrs.evolve(topology, seed=seed)
    return build_network(topology)


def build_network(topology: Topology) -> Network:
    """See :func:`emunet.topology.load.build_network`."""
    from .load import build_network as build

    return build(topology)


def topology_from_spec(spec: str) -> Topology:
    """See :func:`emunet.topology.generators.topology_from_spec`."""
    from .generators import topology_from_spec as generate

    return generate(spec)
