"""Congestion control: the ``tcp_congestion_ops`` interface, Reno and CUBIC (with HyStart).

Reproduces Linux 6.x net/ipv4/tcp_cong.c (``tcp_slow_start``, ``tcp_cong_avoid_ai``, Reno:
RFC 5681 section 3.1) and net/ipv4/tcp_cubic.c (CUBIC, RFC 9438 as Linux implements it, and
HyStart's ACK-train and delay detection). Windows are counted in segments, as ``snd_cwnd`` is.

The Connection owns a ``CcState`` and one ``CongestionOps`` (from ``new_congestion``); it calls
the hooks where tcp_input.c / tcp_output.c call ``icsk_ca_ops``:

- ``init`` when the connection is established (tcp_init_congestion_control);
- ``pkts_acked`` for every ACK that acknowledged something or gave an RTT sample, *after* the
  acknowledged segments were removed from ``st.in_flight`` (as tcp_clean_rtx_queue does), with
  the RTT of the newest segment the ACK covers (``ca_rtt_us``), or None; before ``cong_avoid``
  for the same ACK;
- ``cong_avoid`` for an ACK advancing snd_una while in OPEN or DISORDER (tcp_cong_avoid), with
  ``cwnd_limited`` as tcp_is_cwnd_limited says (in slow start: cwnd < 2 * max packets out);
- ``ssthresh`` on entering RECOVERY, CWR or LOSS; ``undo_cwnd`` on a spurious-loss undo;
- ``set_state`` on every ca_state change; ``cwnd_event`` for CA events (TX_START when data is
  sent with nothing in flight, before ``st.lsndtime`` is updated to that send).

Arithmetic is Linux's fixed point (BICTCP_HZ = 10, beta 717/1024, C = bic_scale 41 * 10 / 1024,
``beta_scale``, ``cube_factor``) with these departures, all deterministic:

- Time. ``now`` (seconds) is rounded to whole microseconds (Linux's ``tcp_mstamp`` unit for
  HyStart and delays); CUBIC's epoch arithmetic is in jiffies derived from that with HZ = 1000.
  Linux's jiffies start at an arbitrary value and 0 means "no epoch"; here "no epoch" is None.
  Integers never wrap (Linux uses u32/u64).
- Cube root. K is the exact integer cube root (floor); Linux's ``cubic_root`` is a table lookup
  plus one Newton-Raphson step, within about 0.2 %.
- HyStart rounds. Linux ends a round when snd_una passes the snd_nxt recorded at the round's
  start. ``CcState`` carries no sequence numbers, so a round ends when more segments have been
  acknowledged (``acked`` summed over ``pkts_acked``) than were in flight at its start: the same
  point for full-sized segments.
- HyStart's ACK-train threshold. There is no pacing and no GSO, so ``hystart_ack_delay`` is 0
  and, as Linux does for a socket that is not paced, the threshold is delay_min / 2.
- Idle restart. TX_START shifts the epoch by the idle time ``now - st.lsndtime``; when the
  Connection does not keep ``lsndtime`` the time of the last ACK seen stands in for it.
"""

from __future__ import annotations

import enum
from collections.abc import MutableMapping

import attrs

__all__ = [
    "AVAILABLE",
    "HZ",
    "CaEvent",
    "CaState",
    "CcState",
    "CongestionOps",
    "Cubic",
    "Reno",
    "cube_root",
    "new_congestion",
    "tcp_cong_avoid_ai",
    "tcp_in_slow_start",
    "tcp_reno_ssthresh",
    "tcp_reno_undo_cwnd",
    "tcp_slow_start",
]

TCP_INFINITE_SSTHRESH = 0x7FFFFFFF
TCP_INIT_CWND = 10
HZ = 1000  # jiffies per second for CUBIC's epoch clock (CONFIG_HZ=1000)

_USEC_PER_SEC = 1_000_000


class CaState(enum.IntEnum):
    """``tcp_ca_state`` (include/net/tcp.h), in Linux's order."""

    OPEN = 0
    DISORDER = 1
    CWR = 2
    RECOVERY = 3
    LOSS = 4


class CaEvent(enum.Enum):
    """``tcp_ca_event`` (include/net/tcp.h)."""

    TX_START = enum.auto()  # first transmit when no packets in flight
    CWND_RESTART = enum.auto()  # congestion window restart after idle
    COMPLETE_CWR = enum.auto()  # end of congestion recovery
    LOSS = enum.auto()  # loss timeout
    ECN_NO_CE = enum.auto()  # ECT set, but not CE marked
    ECN_IS_CE = enum.auto()  # received CE marked IP packet


@attrs.define
class CcState:
    """The congestion state a Connection keeps, in segments as Linux's ``tcp_sock`` does."""

    cwnd: int = TCP_INIT_CWND  # snd_cwnd (tcp_init_cwnd)
    ssthresh: int = TCP_INFINITE_SSTHRESH  # snd_ssthresh
    cwnd_cnt: int = 0  # snd_cwnd_cnt: ACKed segments towards the next +1 in congestion avoidance
    cwnd_clamp: int = 0xFFFFFFFF  # snd_cwnd_clamp
    mss: int = 536  # current send MSS in bytes
    in_flight: int = 0  # tcp_packets_in_flight, segments
    srtt: float | None = None  # smoothed RTT, seconds
    min_rtt: float | None = None  # windowed minimum RTT, seconds
    prior_cwnd: int = 0  # cwnd before the last reduction, for undo
    lsndtime: float | None = None  # time of the last data sent (tcp_sock.lsndtime), if kept


def tcp_in_slow_start(st: CcState) -> bool:
    """``tcp_in_slow_start``: cwnd below ssthresh."""
    return st.cwnd < st.ssthresh


def tcp_slow_start(st: CcState, acked: int) -> int:
    """RFC 5681 slow start, one segment per segment ACKed (a stretch ACK of N counts N).

    cwnd grows by ``acked`` but not past ssthresh; returns the ACKed segments left over once
    ssthresh is reached, for congestion avoidance to use (Linux tcp_slow_start).
    """
    cwnd = min(st.cwnd + acked, st.ssthresh)
    if cwnd < st.cwnd:  # not in slow start at all: leave cwnd alone, nothing consumed
        return acked
    leftover = acked - (cwnd - st.cwnd)
    st.cwnd = min(cwnd, st.cwnd_clamp)
    return leftover


def tcp_cong_avoid_ai(st: CcState, w: int, acked: int) -> None:
    """Additive increase: cwnd += 1 for every ``w`` segments ACKed (Linux tcp_cong_avoid_ai).

    Credit earned while ``w`` was larger is applied gently: at most one segment at once.
    """
    w = max(w, 1)
    if st.cwnd_cnt >= w:
        st.cwnd_cnt = 0
        st.cwnd += 1
    st.cwnd_cnt += acked
    if st.cwnd_cnt >= w:
        delta = st.cwnd_cnt // w
        st.cwnd_cnt -= delta * w
        st.cwnd += delta
    st.cwnd = min(st.cwnd, st.cwnd_clamp)


def tcp_reno_ssthresh(st: CcState) -> int:
    """Half the window, at least two segments (RFC 5681 equation 4, on cwnd as Linux)."""
    return max(st.cwnd >> 1, 2)


def tcp_reno_undo_cwnd(st: CcState) -> int:
    """The window to restore after a spurious reduction: back to where it was before."""
    return max(st.cwnd, st.prior_cwnd)


class CongestionOps:
    """``tcp_congestion_ops``: the hooks a congestion control algorithm provides.

    The base class holds the defaults Linux applies when an algorithm leaves a hook out: no-op
    ``init``, ``pkts_acked``, ``set_state`` and ``cwnd_event``, and Reno's ``undo_cwnd``.
    """

    name: str = ""

    def init(self, st: CcState, now: float) -> None:
        """The connection is established (or the algorithm was switched to)."""

    def ssthresh(self, st: CcState) -> int:
        """On loss or ECN: the new slow start threshold (the Connection stores it)."""
        raise NotImplementedError

    def cong_avoid(self, st: CcState, acked: int, now: float, cwnd_limited: bool) -> None:
        """An ACK advanced snd_una by ``acked`` segments in OPEN/DISORDER: grow cwnd."""
        raise NotImplementedError

    def pkts_acked(self, st: CcState, acked: int, rtt: float | None, now: float) -> None:
        """An ACK acknowledged ``acked`` segments; ``rtt`` is its newest segment's RTT."""

    def set_state(self, st: CcState, state: CaState, now: float) -> None:
        """The connection's ca_state is about to become ``state``."""

    def cwnd_event(self, st: CcState, event: CaEvent, now: float) -> None:
        """A congestion-avoidance event (``tcp_ca_event``)."""

    def undo_cwnd(self, st: CcState) -> int:
        """The cwnd to restore when a reduction proves spurious."""
        return tcp_reno_undo_cwnd(st)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class Reno(CongestionOps):
    """TCP Reno / NewReno window growth (RFC 5681; Linux tcp_reno_* in tcp_cong.c)."""

    name = "reno"

    def ssthresh(self, st: CcState) -> int:
        return tcp_reno_ssthresh(st)

    def cong_avoid(self, st: CcState, acked: int, now: float, cwnd_limited: bool) -> None:
        if not cwnd_limited:
            return
        if tcp_in_slow_start(st):
            acked = tcp_slow_start(st, acked)
            if not acked:
                return
        # Congestion avoidance: one segment per window of ACKed segments (RFC 5681 eq. 3).
        tcp_cong_avoid_ai(st, st.cwnd, acked)


# ---- CUBIC ---------------------------------------------------------------------------------

BICTCP_BETA_SCALE = 1024  # beta is beta/1024
BICTCP_HZ = 10  # CUBIC's time unit is 1/2**10 s
HYSTART_ACK_TRAIN = 0x1
HYSTART_DELAY = 0x2
HYSTART_MIN_SAMPLES = 8  # RTT samples per round before the delay test applies
HYSTART_DELAY_MIN = 4000  # us: bounds of the delay increase that ends slow start
HYSTART_DELAY_MAX = 16000  # us


def _usecs(seconds: float) -> int:
    return round(seconds * _USEC_PER_SEC)


def _jiffies(seconds: float) -> int:
    return _usecs(seconds) * HZ // _USEC_PER_SEC


def _usecs_to_jiffies(us: int) -> int:
    return -(-us * HZ // _USEC_PER_SEC)  # rounds up, as usecs_to_jiffies does


def cube_root(a: int) -> int:
    """The integer cube root of ``a`` >= 0, rounded down."""
    if a < 0:
        raise ValueError("cube_root of a negative number")
    if a == 0:
        return 0
    x = round(a ** (1.0 / 3.0))
    while x * x * x > a:
        x -= 1
    while (x + 1) * (x + 1) * (x + 1) <= a:
        x += 1
    return x


class Cubic(CongestionOps):
    """CUBIC (RFC 9438) with HyStart, as Linux's tcp_cubic.c.

    The window follows W_cubic(t) = C * (t - K)**3 + W_max from the start of each congestion
    avoidance epoch, K = cbrt(W_max * (1 - beta) / C), aiming one minimum RTT ahead; the
    Reno-friendly estimate (TCP friendliness) takes over where standard TCP would be faster;
    fast convergence lowers W_max when a loss comes below the previous one.

    The keyword arguments are the module parameters of tcp_cubic.c, with Linux's defaults.
    ``counters`` (an nstat-style Counter) receives TcpExtTCPHystartTrainDetect,
    TcpExtTCPHystartTrainCwnd, TcpExtTCPHystartDelayDetect and TcpExtTCPHystartDelayCwnd.
    """

    name = "cubic"

    def __init__(
        self,
        *,
        fast_convergence: bool = True,
        beta: int = 717,
        initial_ssthresh: int = 0,
        bic_scale: int = 41,
        tcp_friendliness: bool = True,
        hystart: bool = True,
        hystart_detect: int = HYSTART_ACK_TRAIN | HYSTART_DELAY,
        hystart_low_window: int = 16,
        hystart_ack_delta_us: int = 2000,
        counters: MutableMapping[str, int] | None = None,
    ) -> None:
        if not 0 < beta < BICTCP_BETA_SCALE:
            raise ValueError(f"beta {beta} is not in (0, {BICTCP_BETA_SCALE})")
        if bic_scale <= 0:
            raise ValueError(f"bic_scale {bic_scale} must be positive")
        self.fast_convergence = fast_convergence
        self.beta = beta
        self.initial_ssthresh = initial_ssthresh
        self.bic_scale = bic_scale
        self.tcp_friendliness = tcp_friendliness
        self.hystart = hystart
        self.hystart_detect = hystart_detect
        self.hystart_low_window = hystart_low_window
        self.hystart_ack_delta_us = hystart_ack_delta_us
        self.counters = counters
        # Scale factors precomputed at module load in Linux (cubictcp_register).
        # ACKs per +1 of the Reno-friendly window, << 3: 8 / alpha with alpha = 3(1-b)/(1+b).
        self.beta_scale = 8 * (BICTCP_BETA_SCALE + beta) // 3 // (BICTCP_BETA_SCALE - beta)
        self.cube_rtt_scale = bic_scale * 10  # C * 2**10 (C = 410/1024 for bic_scale 41)
        # K in 2**-10 s is cbrt(cube_factor * (W_max - cwnd)), with cube_factor = 2**30 / C.
        self.cube_factor = (1 << (10 + 3 * BICTCP_HZ)) // (bic_scale * 10)
        self._reset()
        self._hystart_clear(0, 0)
        self._last_ack_time: float | None = None

    # struct bictcp
    def _reset(self) -> None:
        self.cnt = 0  # increase cwnd by 1 after this many ACKed segments
        self.last_max_cwnd = 0  # W_max: cwnd at the last loss (after fast convergence)
        self.last_cwnd = 0  # cwnd at the last update of cnt
        self.last_time = 0  # jiffies of that update
        self.bic_origin_point = 0  # the plateau of the cubic curve
        self.bic_K = 0  # time from epoch start to the plateau, 2**-10 s
        self.delay_min = 0  # minimum RTT seen, us (0: none yet)
        self.epoch_start: int | None = None  # jiffies; None: no epoch running
        self.ack_cnt = 0  # segments ACKed since the Reno-friendly window last grew
        self.tcp_cwnd = 0  # the Reno-friendly window estimate W_est
        self.found = False  # HyStart found its exit point

    def _hystart_clear(self, now_us: int, in_flight: int) -> None:
        self.round_start = now_us  # us, start of this HyStart round
        self.last_ack = now_us  # us, last ACK close enough to be part of a train
        self.curr_rtt: int | None = None  # minimum RTT of this round, us
        self.sample_cnt = 0  # RTT samples taken this round
        self._round_pkts = in_flight  # segments outstanding when the round began
        self._round_acked = 0  # segments ACKed since

    def _hystart_reset(self, st: CcState, now: float) -> None:
        self._hystart_clear(_usecs(now), st.in_flight)

    def _count(self, name: str, n: int = 1) -> None:
        if self.counters is not None:
            self.counters[name] = self.counters.get(name, 0) + n

    # tcp_congestion_ops
    def init(self, st: CcState, now: float) -> None:
        self._reset()
        if self.hystart:
            self._hystart_reset(st, now)
        if not self.hystart and self.initial_ssthresh:
            st.ssthresh = self.initial_ssthresh

    def cwnd_event(self, st: CcState, event: CaEvent, now: float) -> None:
        if event is not CaEvent.TX_START:
            return
        # Restart after idle (application limited): shift the epoch by the idle time so that
        # the window keeps to the cubic curve instead of jumping ahead on it.
        last_send = st.lsndtime if st.lsndtime is not None else self._last_ack_time
        if last_send is None or self.epoch_start is None:
            return
        now_j = _jiffies(now)
        delta = now_j - _jiffies(last_send)
        if delta > 0:
            self.epoch_start = min(self.epoch_start + delta, now_j)

    def ssthresh(self, st: CcState) -> int:
        self.epoch_start = None  # end of epoch
        cwnd = st.cwnd
        if cwnd < self.last_max_cwnd and self.fast_convergence:
            # Fast convergence: release bandwidth for new flows, W_max = cwnd * (1 + beta) / 2.
            self.last_max_cwnd = cwnd * (BICTCP_BETA_SCALE + self.beta) // (2 * BICTCP_BETA_SCALE)
        else:
            self.last_max_cwnd = cwnd
        return max(cwnd * self.beta // BICTCP_BETA_SCALE, 2)

    def set_state(self, st: CcState, state: CaState, now: float) -> None:
        if state == CaState.LOSS:
            self._reset()
            self._hystart_reset(st, now)

    def undo_cwnd(self, st: CcState) -> int:
        return tcp_reno_undo_cwnd(st)

    def cong_avoid(self, st: CcState, acked: int, now: float, cwnd_limited: bool) -> None:
        self._last_ack_time = now
        if not cwnd_limited:
            return
        if tcp_in_slow_start(st):
            acked = tcp_slow_start(st, acked)
            if not acked:
                return
        self._update(st.cwnd, acked, _jiffies(now))
        tcp_cong_avoid_ai(st, self.cnt, acked)

    def _update(self, cwnd: int, acked: int, now_j: int) -> None:
        """bictcp_update: recompute ``cnt``, the ACKs per +1 that track the target window."""
        self.ack_cnt += acked
        if self.last_cwnd == cwnd and now_j - self.last_time <= HZ // 32:
            return
        # The cubic function updates cnt at most once per jiffy; an epoch reset forces it.
        if self.epoch_start is None or now_j != self.last_time:
            self.last_cwnd = cwnd
            self.last_time = now_j
            if self.epoch_start is None:
                self.epoch_start = now_j
                self.ack_cnt = acked
                self.tcp_cwnd = cwnd  # W_est starts at the window the epoch starts with
                if self.last_max_cwnd <= cwnd:
                    self.bic_K = 0
                    self.bic_origin_point = cwnd
                else:
                    self.bic_K = cube_root(self.cube_factor * (self.last_max_cwnd - cwnd))
                    self.bic_origin_point = self.last_max_cwnd
            # t, in 2**-10 s, one minimum RTT ahead: where the window should be after this RTT.
            t = now_j - self.epoch_start + _usecs_to_jiffies(self.delay_min)
            t = (t << BICTCP_HZ) // HZ
            offs = abs(t - self.bic_K)
            delta = (self.cube_rtt_scale * offs * offs * offs) >> (10 + 3 * BICTCP_HZ)
            if t < self.bic_K:
                target = max(self.bic_origin_point - delta, 0)  # concave region, below W_max
            else:
                target = self.bic_origin_point + delta  # convex region
            if target > cwnd:
                self.cnt = cwnd // (target - cwnd)
            else:
                self.cnt = 100 * cwnd  # a very small increment
            # With no loss seen yet the curve has no plateau: grow at least 5 % per RTT.
            if self.last_max_cwnd == 0 and self.cnt > 20:
                self.cnt = 20
        if self.tcp_friendliness:
            # Reno-friendly region: W_est grows by alpha = 3(1-beta)/(1+beta) per window ACKed.
            per_segment = (cwnd * self.beta_scale) >> 3
            if per_segment > 0 and self.ack_cnt > per_segment:
                n = (self.ack_cnt - 1) // per_segment
                self.ack_cnt -= n * per_segment
                self.tcp_cwnd += n
            if self.tcp_cwnd > cwnd:  # standard TCP would be faster: keep up with it
                max_cnt = cwnd // (self.tcp_cwnd - cwnd)
                self.cnt = min(self.cnt, max_cnt)
        # Never faster than one segment per two ACKed: 1.5x per RTT.
        self.cnt = max(self.cnt, 2)

    def pkts_acked(self, st: CcState, acked: int, rtt: float | None, now: float) -> None:
        self._last_ack_time = now
        self._round_acked += acked
        if rtt is None:
            return
        # Discard delay samples right after a window reduction.
        if self.epoch_start is not None and _jiffies(now) - self.epoch_start < HZ:
            return
        delay = max(_usecs(rtt), 1)
        if self.delay_min == 0 or self.delay_min > delay:
            self.delay_min = delay
        if (
            not self.found
            and tcp_in_slow_start(st)
            and self.hystart
            and st.cwnd >= self.hystart_low_window
        ):
            self._hystart_update(st, delay, now)

    def _hystart_update(self, st: CcState, delay: int, now: float) -> None:
        now_us = _usecs(now)
        if self._round_acked > self._round_pkts:  # snd_una passed the round's end
            self._hystart_clear(now_us, st.in_flight)
        if self.hystart_detect & HYSTART_ACK_TRAIN:
            # ACK train: ACKs arriving closely spaced for longer than delay_min / 2 since the
            # round began mean the window already fills the path.
            if now_us - self.last_ack <= self.hystart_ack_delta_us:
                self.last_ack = now_us
                threshold = self.delay_min >> 1
                if now_us - self.round_start > threshold:
                    self.found = True
                    self._count("TcpExtTCPHystartTrainDetect")
                    self._count("TcpExtTCPHystartTrainCwnd", st.cwnd)
                    st.ssthresh = st.cwnd
        if self.hystart_detect & HYSTART_DELAY:
            # Delay increase: this round's minimum RTT over 8+ samples exceeds delay_min by
            # delay_min / 8, clamped to [4 ms, 16 ms].
            if self.curr_rtt is None or self.curr_rtt > delay:
                self.curr_rtt = delay
            if self.sample_cnt < HYSTART_MIN_SAMPLES:
                self.sample_cnt += 1
            else:
                grace = min(max(self.delay_min >> 3, HYSTART_DELAY_MIN), HYSTART_DELAY_MAX)
                if self.curr_rtt > self.delay_min + grace:
                    self.found = True
                    self._count("TcpExtTCPHystartDelayDetect")
                    self._count("TcpExtTCPHystartDelayCwnd", st.cwnd)
                    st.ssthresh = st.cwnd


AVAILABLE: tuple[str, ...] = ("cubic", "reno")


def new_congestion(name: str, *, counters: MutableMapping[str, int] | None = None) -> CongestionOps:
    """A fresh instance of the algorithm ``name`` ("cubic" or "reno"); ValueError otherwise.

    ``counters`` receives the algorithm's nstat counters (CUBIC's HyStart ones).
    """
    if name == "cubic":
        return Cubic(counters=counters)
    if name == "reno":
        return Reno()
    raise ValueError(f"unknown congestion control {name!r}; available: {', '.join(AVAILABLE)}")
