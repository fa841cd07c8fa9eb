"""Per-host sysctls under their Linux names and defaults (Documentation/networking/ip-sysctl.rst).

``host.sysctl["net.ipv4.tcp_low_latency"] = 1``.  Unknown names and values of the wrong type raise
``KeyError``/``TypeError``/``ValueError`` with a message naming the key.  Per-interface keys exist
for every interface the host has (``net.ipv4.conf.eth0.forwarding``); setting
``net.ipv4.ip_forward`` sets every interface's ``forwarding`` as Linux does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping

DEFAULTS: dict[str, int | str] = {
    "net.ipv4.ip_forward": 0,
    "net.ipv4.ip_default_ttl": 64,
    "net.ipv4.ipfrag_high_thresh": 4 * 1024 * 1024,
    "net.ipv4.ipfrag_low_thresh": 3 * 1024 * 1024,
    "net.ipv4.ipfrag_time": 30,
    "net.ipv4.icmp_ratelimit": 1000,  # ms, per peer
    "net.ipv4.icmp_ratemask": 0x1818,  # types 3, 4, 11, 12
    "net.ipv4.icmp_msgs_per_sec": 1000,
    "net.ipv4.icmp_msgs_burst": 50,
    "net.ipv4.icmp_echo_ignore_all": 0,
    "net.ipv4.icmp_echo_ignore_broadcasts": 1,
    "net.ipv4.ip_no_pmtu_disc": 0,
    "net.ipv4.conf.all.accept_source_route": 0,
    "net.ipv4.inet_peer_threshold": 65536 + 128,
    "net.ipv4.inet_peer_minttl": 120,  # s
    "net.ipv4.inet_peer_maxttl": 600,  # s
    "net.ipv4.route.min_pmtu": 552,
    "net.ipv4.route.min_adv_mss": 256,
    "net.ipv4.route.mtu_expires": 600,
    "net.core.netdev_max_backlog": 1000,
    "net.core.netdev_budget": 300,
    "net.core.rmem_default": 212992,
    "net.core.rmem_max": 212992,
    "net.core.wmem_default": 212992,
    "net.core.wmem_max": 212992,
    "net.core.somaxconn": 4096,
    "net.ipv4.neigh.default.base_reachable_time_ms": 30000,
    "net.ipv4.neigh.default.retrans_time_ms": 1000,
    "net.ipv4.neigh.default.delay_first_probe_time": 5,
    "net.ipv4.neigh.default.gc_stale_time": 60,
    "net.ipv4.neigh.default.ucast_solicit": 3,
    "net.ipv4.neigh.default.mcast_solicit": 3,
    "net.ipv4.neigh.default.unres_qlen_bytes": 212992,
    "net.ipv4.tcp_low_latency": 0,
    "net.ipv4.tcp_syn_retries": 6,
    "net.ipv4.tcp_synack_retries": 5,
    "net.ipv4.tcp_retries2": 15,
    "net.ipv4.tcp_fin_timeout": 60,
    "net.ipv4.tcp_abort_on_overflow": 0,
    "net.ipv4.tcp_syncookies": 1,
    "net.ipv4.tcp_max_syn_backlog": 128,
    "net.ipv4.tcp_window_scaling": 1,
    "net.ipv4.tcp_timestamps": 1,
    "net.ipv4.tcp_sack": 1,
    "net.ipv4.tcp_congestion_control": "cubic",
    "net.ipv4.tcp_keepalive_time": 7200,
    "net.ipv4.tcp_keepalive_intvl": 75,
    "net.ipv4.tcp_keepalive_probes": 9,
    "net.ipv4.tcp_rmem": "4096 131072 6291456",
    "net.ipv4.tcp_wmem": "4096 16384 4194304",
    "net.ipv4.tcp_mtu_probing": 0,
    "net.ipv4.tcp_dsack": 1,
    "net.ipv4.tcp_reordering": 3,
    "net.ipv4.tcp_max_reordering": 300,
    "net.ipv4.tcp_orphan_retries": 0,
    "net.ipv4.tcp_syn_linear_timeouts": 0,  # Linux >= 6.5 defaults to 4; see conn.py
    "net.ipv4.tcp_invalid_ratelimit": 500,  # ms
    "net.ipv4.tcp_slow_start_after_idle": 1,
    "net.ipv4.tcp_early_retrans": 3,
    "net.ipv4.tcp_moderate_rcvbuf": 1,
    "net.ipv4.tcp_min_snd_mss": 48,
}
CONF_DEFAULTS: dict[str, int] = {
    "forwarding": 0,
    "accept_redirects": 1,
    "send_redirects": 1,
    "accept_source_route": 1,  # and-ed with conf.all's 0, as IN_DEV_SOURCE_ROUTE does
}
_CONGESTION = ("cubic", "reno")


class Sysctl(MutableMapping[str, "int | str"]):
    def __init__(self, interfaces: list[str] | None = None) -> None:
        self._values: dict[str, int | str] = dict(DEFAULTS)
        self.listeners: list[Callable[[str, int | str], None]] = []
        for name in interfaces or []:
            self.add_interface(name)

    def add_interface(self, name: str) -> None:
        for key, value in CONF_DEFAULTS.items():
            self._values[f"net.ipv4.conf.{name}.{key}"] = value
        self._values[f"net.ipv4.conf.{name}.forwarding"] = self._values["net.ipv4.ip_forward"]

    def __getitem__(self, key: str) -> int | str:
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(f"unknown sysctl {key!r}") from None

    def __setitem__(self, key: str, value: int | str) -> None:
        if key not in self._values:
            raise KeyError(f"unknown sysctl {key!r}")
        old = self._values[key]
        if isinstance(old, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"sysctl {key} takes an integer, not {value!r}")
            if value < 0:
                raise ValueError(f"sysctl {key} must not be negative, got {value}")
        elif not isinstance(value, str):
            raise TypeError(f"sysctl {key} takes a string, not {value!r}")
        if key == "net.ipv4.tcp_congestion_control" and value not in _CONGESTION:
            raise ValueError(f"sysctl {key}: {value!r} is not one of {', '.join(_CONGESTION)}")
        self._values[key] = value
        for listener in self.listeners:
            listener(key, value)
        if key == "net.ipv4.ip_forward":
            for k in self._values:
                if k.startswith("net.ipv4.conf.") and k.endswith(".forwarding"):
                    self._values[k] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("sysctls cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)
