"""The RTT estimator and retransmission timeout (RFC 6298), in Linux 6.x's arithmetic.

Reproduces net/ipv4/tcp_input.c ``tcp_rtt_estimator``, ``tcp_set_rto`` and
``tcp_update_rtt_min``, include/net/tcp.h ``__tcp_set_rto``/``tcp_bound_rto``,
include/net/inet_connection_sock.h ``inet_csk_rto_backoff`` and lib/win_minmax.c.

Linux keeps, in integer microseconds:

- ``srtt_us``: the smoothed RTT scaled by 8 (SRTT = 7/8 SRTT + 1/8 R, RFC 6298 (2.3));
- ``mdev_us``: the mean deviation scaled by 4, i.e. 4 * RTTVAR (RTTVAR = 3/4 RTTVAR +
  1/4 |SRTT - R|), but with a gain of 1/32 instead of 1/4 when the sample is *below* SRTT, so a
  falling RTT does not inflate the timeout (the Eifel-like rule of tcp_rtt_estimator);
- ``mdev_max_us``: the largest ``mdev_us`` of the current round (one RTT of data), starting each
  round at ``rto_min``;
- ``rttvar_us``: what the RTO adds to SRTT. It follows ``mdev_max_us`` up at once and decays
  towards it by a quarter of the gap at the end of every round; it is never below ``rto_min``.

RTO = SRTT + rttvar_us, which is RFC 6298's SRTT + max(G, 4 * RTTVAR) with ``rto_min`` (200 ms)
in the place of the clock granularity G, bounded by ``rto_max`` (120 s, tcp_bound_rto). Before
the first sample the RTO is ``rto_initial`` (1 s, RFC 6298 (2.1)). The first sample R gives
SRTT = R, RTTVAR = R/2, RTO = R + max(2R, rto_min) (RFC 6298 (2.2)).

Departures, all deterministic: samples and ``now`` are rounded to whole microseconds; the RTO is
not rounded up to a jiffy; when the caller gives no sequence numbers a "round" ends with the
first sample whose segment was sent after the round began (``now - rtt`` later than its start),
which is what ``after(snd_una, rtt_seq)`` tells for the sampled segment.
"""

from __future__ import annotations

import attrs

from emunet.wire.seqnum import seq_gt

__all__ = ["TCP_TIMEOUT_FALLBACK", "RttEstimator", "WindowedMin"]

_USEC_PER_SEC = 1_000_000
TCP_TIMEOUT_FALLBACK = 3.0  # RFC 6298 (5.7): RTO once the SYN had to be retransmitted
TCP_MIN_RTT_WLEN = 300.0  # net.ipv4.tcp_min_rtt_wlen, seconds


def _usecs(seconds: float) -> int:
    return round(seconds * _USEC_PER_SEC)


@attrs.frozen
class _Sample:
    t: int  # when, us
    v: int  # value


class WindowedMin:
    """Running minimum of samples over a sliding time window (lib/win_minmax.c).

    Kathleen Nichols' algorithm: it keeps the best, second-best and third-best samples of
    successive parts of the window, so an old minimum ages out without storing every sample.
    Times and values are integers (here: microseconds).
    """

    def __init__(self, window: int) -> None:
        if window <= 0:
            raise ValueError("the window must be positive")
        self.window = window
        self._s: list[_Sample] | None = None

    def get(self) -> int | None:
        """The minimum over the window, or None before any sample."""
        return None if self._s is None else self._s[0].v

    def reset(self, t: int, v: int) -> int:
        """Forget everything but this sample."""
        self._s = [_Sample(t, v)] * 3
        return v

    def update(self, t: int, v: int) -> int:
        """Add the sample ``v`` taken at ``t`` (non-decreasing); returns the new minimum."""
        s = self._s
        new = _Sample(t, v)
        # A new minimum, or the newest kept sample has left the window: start afresh.
        if s is None or v <= s[0].v or t - s[2].t > self.window:
            return self.reset(t, v)
        if v <= s[1].v:
            s[1] = s[2] = new
        elif v <= s[2].v:
            s[2] = new
        win = self.window
        dt = t - s[0].t
        if dt > win:
            # The best sample expired: promote the second and third; the second may have
            # expired too (the third is within the window, checked above).
            s[0], s[1], s[2] = s[1], s[2], new
            if t - s[0].t > win:
                s[0], s[1], s[2] = s[1], s[2], new
        elif s[1].t == s[0].t and dt > win // 4:
            # A quarter of the window passed without a second choice: take one from now.
            s[1] = s[2] = new
        elif s[2].t == s[1].t and dt > win // 2:
            # Half the window passed without a third choice: take one from now.
            s[2] = new
        return s[0].v


class RttEstimator:
    """Smoothed RTT, variance and RTO for one connection (tcp_rtt_estimator + tcp_set_rto)."""

    def __init__(
        self,
        *,
        rto_initial: float = 1.0,
        rto_min: float = 0.2,
        rto_max: float = 120.0,
        min_rtt_window: float = TCP_MIN_RTT_WLEN,
    ) -> None:
        if not 0 < rto_min <= rto_max:
            raise ValueError(f"need 0 < rto_min <= rto_max, got {rto_min}, {rto_max}")
        if rto_initial <= 0:
            raise ValueError(f"rto_initial must be positive, got {rto_initial}")
        self.rto_min_us = _usecs(rto_min)
        self.rto_max_us = _usecs(rto_max)
        self.srtt_us = 0  # SRTT << 3; 0: no sample yet
        self.mdev_us = _usecs(rto_initial)  # 4 * RTTVAR (tcp_init_sock: TCP_TIMEOUT_INIT)
        self.mdev_max_us = 0  # largest mdev_us this round
        self.rttvar_us = 0  # what the RTO adds to SRTT
        self.rto_us = min(_usecs(rto_initial), self.rto_max_us)
        self._rtt_seq: int | None = None  # snd_nxt when the round began (if given)
        self._round_start_us = 0  # when the round began
        self._min_rtt = WindowedMin(_usecs(min_rtt_window))

    # ---- readings, in seconds
    @property
    def srtt(self) -> float | None:
        """Smoothed RTT (RFC 6298 SRTT), None before the first sample."""
        return self.srtt_us / (8 * _USEC_PER_SEC) if self.srtt_us else None

    @property
    def rttvar(self) -> float:
        """RTT variation (RFC 6298 RTTVAR: mdev / 4, what ``ss`` prints after the slash)."""
        return self.mdev_us / (4 * _USEC_PER_SEC)

    @property
    def rto(self) -> float:
        """The retransmission timeout without backoff."""
        return self.rto_us / _USEC_PER_SEC

    @property
    def min_rtt(self) -> float | None:
        """Minimum RTT over the last ``min_rtt_window`` seconds (tcp_min_rtt)."""
        v = self._min_rtt.get()
        return None if v is None else v / _USEC_PER_SEC

    # ---- input
    def sample(
        self,
        rtt: float,
        now: float,
        *,
        snd_una: int | None = None,
        snd_nxt: int | None = None,
    ) -> None:
        """One valid RTT measurement ``rtt`` (seconds, >= 0) taken at ``now``.

        Karn's rule is the caller's: no samples from retransmitted segments, except through
        timestamps. ``snd_una`` (after this ACK) and ``snd_nxt`` let rounds end exactly as
        Linux's ``rtt_seq``; without them the time the sampled segment was sent decides.
        """
        if rtt < 0:
            raise ValueError(f"negative RTT sample {rtt}")
        m = _usecs(rtt)
        now_us = _usecs(now)
        self._min_rtt.update(now_us, max(m, 1))
        srtt = self.srtt_us
        if srtt:
            m -= srtt >> 3  # the error of the estimate
            srtt += m  # SRTT = 7/8 SRTT + 1/8 R
            if m < 0:
                # Below the estimate: a smaller gain (1/32), so a falling RTT does not grow RTO.
                m = -m - (self.mdev_us >> 2)
                if m > 0:
                    m >>= 3
            else:
                m -= self.mdev_us >> 2
            self.mdev_us += m  # mdev = 3/4 mdev + 1/4 |error|
            if self.mdev_us > self.mdev_max_us:
                self.mdev_max_us = self.mdev_us
                if self.mdev_max_us > self.rttvar_us:
                    self.rttvar_us = self.mdev_max_us
            if self._round_over(now_us, _usecs(rtt), snd_una):
                # Once per round: decay rttvar towards this round's largest mdev.
                if self.mdev_max_us < self.rttvar_us:
                    self.rttvar_us -= (self.rttvar_us - self.mdev_max_us) >> 2
                self._new_round(now_us, snd_nxt)
                self.mdev_max_us = self.rto_min_us
        else:
            # The first measurement: SRTT = R, RTTVAR = R/2 (so RTO = 3R, or R + rto_min).
            srtt = m << 3
            self.mdev_us = m << 1
            self.rttvar_us = max(self.mdev_us, self.rto_min_us)
            self.mdev_max_us = self.rttvar_us
            self._new_round(now_us, snd_nxt)
        self.srtt_us = max(1, srtt)
        self._set_rto()

    def _round_over(self, now_us: int, rtt_us: int, snd_una: int | None) -> bool:
        if snd_una is not None and self._rtt_seq is not None:
            return seq_gt(snd_una, self._rtt_seq)
        return now_us - rtt_us > self._round_start_us

    def _new_round(self, now_us: int, snd_nxt: int | None) -> None:
        self._rtt_seq = snd_nxt
        self._round_start_us = now_us

    def _set_rto(self) -> None:
        # __tcp_set_rto then tcp_bound_rto.
        self.rto_us = min((self.srtt_us >> 3) + self.rttvar_us, self.rto_max_us)

    def fallback(self, rto: float = TCP_TIMEOUT_FALLBACK) -> None:
        """Forget the estimate and use ``rto`` (3 s) until the next sample, as Linux does when
        the handshake needed a retransmission and no timestamps can measure it (RFC 6298 (5.7),
        tcp_init_metrics)."""
        self.srtt_us = 0
        self.mdev_us = _usecs(rto)
        self.rto_us = min(_usecs(rto), self.rto_max_us)

    def backed_off(self, backoff: int) -> float:
        """The timer to arm after ``backoff`` consecutive timeouts: min(RTO * 2**backoff, max)."""
        if backoff < 0:
            raise ValueError(f"negative backoff {backoff}")
        # Shifting further than rto_max's width can only give rto_max: stop there.
        shift = min(backoff, self.rto_max_us.bit_length() + 1)
        return min(self.rto_us << shift, self.rto_max_us) / _USEC_PER_SEC

    def __repr__(self) -> str:
        return (
            f"<RttEstimator srtt={self.srtt} rttvar={self.rttvar} rto={self.rto} "
            f"min_rtt={self.min_rtt}>"
        )
