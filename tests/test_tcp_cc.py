"""Congestion control (emunet.stack.tcp.cc): Reno and CUBIC against RFC 5681 / RFC 9438 and the
arithmetic of Linux's tcp_cong.c and tcp_cubic.c. Synchronous, with explicit times."""

from __future__ import annotations

import collections

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_

from emunet.stack.tcp.cc import (
    AVAILABLE,
    CaEvent,
    CaState,
    CcState,
    CongestionOps,
    Cubic,
    Reno,
    cube_root,
    new_congestion,
    tcp_cong_avoid_ai,
    tcp_slow_start,
)

INF = 0x7FFFFFFF
BETA = 717 / 1024
C = 410 / 1024  # bic_scale 41: C = 41 * 10 / 1024, RFC 9438's 0.4 in Linux's fixed point
ALPHA = 3 * (1 - BETA) / (1 + BETA)  # the Reno-friendly increase per RTT


def one_rtt(ops: CongestionOps, st: CcState, t: float, rtt: float) -> float:
    """Deliver one window of single-segment ACKs, evenly spread over one RTT after ``t``."""
    n = st.cwnd
    for i in range(n):
        now = t + rtt * (i + 1) / n
        ops.pkts_acked(st, 1, rtt, now)
        ops.cong_avoid(st, 1, now, True)
    return t + rtt


# ---- the helpers of tcp_cong.c -------------------------------------------------------------


def test_slow_start_stops_at_ssthresh_and_returns_the_rest() -> None:
    st = CcState(cwnd=10, ssthresh=12)
    assert tcp_slow_start(st, 5) == 3
    assert st.cwnd == 12
    st = CcState(cwnd=10, ssthresh=100)
    assert tcp_slow_start(st, 4) == 0
    assert st.cwnd == 14


def test_slow_start_respects_the_clamp() -> None:
    st = CcState(cwnd=10, cwnd_clamp=11)
    tcp_slow_start(st, 5)
    assert st.cwnd == 11


def test_cong_avoid_ai_counts_credit() -> None:
    st = CcState(cwnd=10, ssthresh=5)
    tcp_cong_avoid_ai(st, 10, 9)
    assert (st.cwnd, st.cwnd_cnt) == (10, 9)
    tcp_cong_avoid_ai(st, 10, 1)
    assert (st.cwnd, st.cwnd_cnt) == (11, 0)
    tcp_cong_avoid_ai(st, 10, 25)  # a stretch ACK: two segments, 5 left over
    assert (st.cwnd, st.cwnd_cnt) == (13, 5)


def test_cong_avoid_ai_applies_credit_from_a_larger_w_gently() -> None:
    st = CcState(cwnd=10, ssthresh=5, cwnd_cnt=50)
    tcp_cong_avoid_ai(st, 10, 1)
    assert (st.cwnd, st.cwnd_cnt) == (11, 1)


# ---- Reno --------------------------------------------------------------------------------


def test_reno_slow_start_doubles_per_rtt_of_acks() -> None:
    reno, st = Reno(), CcState(cwnd=10)
    reno.init(st, 0.0)
    seen = []
    for _ in range(4):
        for _ in range(st.cwnd):
            reno.cong_avoid(st, 1, 0.0, True)
        seen.append(st.cwnd)
    assert seen == [20, 40, 80, 160]


def test_reno_slow_start_with_delayed_acks_counts_segments() -> None:
    reno, st = Reno(), CcState(cwnd=10)
    for _ in range(st.cwnd // 2):
        reno.cong_avoid(st, 2, 0.0, True)  # one ACK per two segments
    assert st.cwnd == 20


def test_reno_additive_increase_one_segment_per_window() -> None:
    reno, st = Reno(), CcState(cwnd=20, ssthresh=10)
    for _ in range(19):
        reno.cong_avoid(st, 1, 0.0, True)
    assert (st.cwnd, st.cwnd_cnt) == (20, 19)
    reno.cong_avoid(st, 1, 0.0, True)
    assert (st.cwnd, st.cwnd_cnt) == (21, 0)
    for _ in range(21):
        reno.cong_avoid(st, 1, 0.0, True)
    assert (st.cwnd, st.cwnd_cnt) == (22, 0)


def test_reno_leaves_slow_start_into_congestion_avoidance() -> None:
    reno, st = Reno(), CcState(cwnd=10, ssthresh=12)
    reno.cong_avoid(st, 5, 0.0, True)  # 2 for slow start, 3 counted towards the next +1
    assert (st.cwnd, st.cwnd_cnt) == (12, 3)


def test_reno_no_growth_unless_cwnd_limited() -> None:
    reno, st = Reno(), CcState(cwnd=10)
    reno.cong_avoid(st, 5, 0.0, False)
    assert st.cwnd == 10
    st = CcState(cwnd=20, ssthresh=10)
    for _ in range(40):
        reno.cong_avoid(st, 1, 0.0, False)
    assert (st.cwnd, st.cwnd_cnt) == (20, 0)


@pytest.mark.parametrize(
    ("cwnd", "expected"), [(40, 20), (41, 20), (10, 5), (4, 2), (3, 2), (1, 2)]
)
def test_reno_ssthresh_halves(cwnd: int, expected: int) -> None:
    assert Reno().ssthresh(CcState(cwnd=cwnd)) == expected


def test_reno_undo_restores_prior_cwnd() -> None:
    assert Reno().undo_cwnd(CcState(cwnd=10, prior_cwnd=30)) == 30
    assert Reno().undo_cwnd(CcState(cwnd=40, prior_cwnd=30)) == 40


# ---- CUBIC: the loss response -------------------------------------------------------------


@pytest.mark.parametrize(("cwnd", "expected"), [(100, 70), (10, 7), (1000, 700), (2, 2), (1, 2)])
def test_cubic_ssthresh_is_beta_times_cwnd(cwnd: int, expected: int) -> None:
    cubic = Cubic()
    assert cubic.ssthresh(CcState(cwnd=cwnd)) == expected  # cwnd * 717 // 1024, at least 2
    assert cubic.last_max_cwnd == cwnd
    assert cubic.epoch_start is None


def test_cubic_fast_convergence_lowers_w_max() -> None:
    cubic = Cubic()
    cubic.ssthresh(CcState(cwnd=100))
    assert cubic.last_max_cwnd == 100
    # A loss below the previous W_max: W_max = cwnd * (1 + beta) / 2 = 80 * 1741 / 2048.
    assert cubic.ssthresh(CcState(cwnd=80)) == 56
    assert cubic.last_max_cwnd == 68
    # Above it: W_max is just cwnd.
    cubic.ssthresh(CcState(cwnd=90))
    assert cubic.last_max_cwnd == 90


def test_cubic_without_fast_convergence_keeps_w_max_at_cwnd() -> None:
    cubic = Cubic(fast_convergence=False)
    cubic.ssthresh(CcState(cwnd=100))
    cubic.ssthresh(CcState(cwnd=80))
    assert cubic.last_max_cwnd == 80


def test_cubic_undo_restores_prior_cwnd() -> None:
    assert Cubic().undo_cwnd(CcState(cwnd=7, prior_cwnd=10)) == 10


def after_loss(cubic: Cubic, w_max: int, rtt: float) -> CcState:
    """A CUBIC flow that measured ``rtt`` and lost at ``w_max``; recovery left cwnd = ssthresh."""
    st = CcState(cwnd=w_max)
    cubic.init(st, 0.0)
    cubic.pkts_acked(st, 1, rtt, 0.0)  # delay_min
    st.ssthresh = cubic.ssthresh(st)
    st.cwnd = st.ssthresh
    return st


def test_cubic_k_is_the_cube_root_of_w_max_beta_over_c() -> None:
    cubic = Cubic(hystart=False)
    st = after_loss(cubic, 100, 0.1)
    one_rtt(cubic, st, 1.0, 0.1)
    k = (100 * (1 - 717 / 1024) / C) ** (1 / 3)
    # K is kept in 2**-10 s; 100 - 70 segments: cbrt(2**40 // 410 * 30) = 4316.
    assert cubic.bic_K == 4316
    assert abs(cubic.bic_K / 1024 - k) < 1 / 1024
    assert cubic.bic_origin_point == 100


def test_cubic_window_follows_the_cubic_curve() -> None:
    rtt = 0.1
    cubic = Cubic(hystart=False)
    st = after_loss(cubic, 100, rtt)
    t = one_rtt(cubic, st, 1.0, rtt)
    epoch = cubic.epoch_start / 1000  # jiffies at HZ 1000
    assert epoch == 1.001  # the first ACK in congestion avoidance
    k = cubic.bic_K / 1024
    samples = {}
    while t - epoch < 7.5:
        t = one_rtt(cubic, st, t, rtt)
        samples[round(t - epoch, 1)] = st.cwnd
    for when in (0.5, 1.0, 2.0, 3.0, 4.2, 5.0, 6.0, 7.0):
        w_cubic = C * (when - k) ** 3 + 100
        assert abs(samples[when] - w_cubic) < 1.5, (when, samples[when], w_cubic)
    # The plateau: at t = K the window is W_max, concave before, convex after.
    assert samples[4.2] == 100
    assert samples[2.0] < 100 < samples[7.0]
    # CUBIC won here: the Reno-friendly estimate stayed below it.
    assert cubic.tcp_cwnd < st.cwnd


def test_cubic_reno_friendly_region_wins_at_small_rtt_and_window() -> None:
    rtt, w_max = 0.02, 10
    friendly, plain = Cubic(hystart=False), Cubic(hystart=False, tcp_friendliness=False)
    st_f, st_p = after_loss(friendly, w_max, rtt), after_loss(plain, w_max, rtt)
    t = 1.0
    for _ in range(91):
        one_rtt(friendly, st_f, t, rtt)
        t = one_rtt(plain, st_p, t, rtt)
        elapsed = t - 1.0
        w_est = w_max * BETA + ALPHA * elapsed / rtt  # RFC 9438 section 4.3
        w_cubic = C * (elapsed - plain.bic_K / 1024) ** 3 + w_max
        # Linux's integer W_est (+1 per cwnd * 15 / 8 ACKs) re-evaluated at most every 1/32 s
        # lets cwnd trail the continuous W_est by up to about two segments here.
        assert w_est - 2.5 < st_f.cwnd < w_est + 1, (elapsed, st_f.cwnd, w_est)
        assert abs(st_p.cwnd - w_cubic) < 1.5, (elapsed, st_p.cwnd, w_cubic)
    assert st_f.cwnd == 54  # 7 + 0.53 * 91 RTTs
    assert st_p.cwnd == 10  # still at the plateau W_max


def test_cubic_growth_never_exceeds_one_and_a_half_per_rtt() -> None:
    cubic = Cubic(hystart=False)
    st = after_loss(cubic, 100, 0.1)
    st.cwnd = st.ssthresh = 20  # far below W_max: the curve's target is far above
    cubic.last_max_cwnd = 1000
    t = one_rtt(cubic, st, 1.0, 0.1)
    for _ in range(5):
        before = st.cwnd
        t = one_rtt(cubic, st, t, 0.1)
        assert st.cwnd <= before + before // 2 + 1


def test_cubic_first_epoch_without_loss_grows_at_least_five_percent_per_rtt() -> None:
    cubic = Cubic(hystart=False)
    st = CcState(cwnd=100, ssthresh=50)  # in congestion avoidance, W_max unknown (0)
    cubic.init(st, 0.0)
    one_rtt(cubic, st, 1.0, 0.1)
    assert cubic.cnt == 20
    assert st.cwnd == 105


def test_cubic_slow_start_below_ssthresh_is_reno_slow_start() -> None:
    cubic = Cubic(hystart=False)
    st = CcState(cwnd=10)
    cubic.init(st, 0.0)
    for _ in range(10):
        cubic.cong_avoid(st, 1, 0.0, True)
    assert st.cwnd == 20
    cubic.cong_avoid(st, 100, 0.0, False)
    assert st.cwnd == 20


def test_cubic_loss_state_resets_the_algorithm() -> None:
    cubic = Cubic(hystart=False)
    st = after_loss(cubic, 100, 0.1)
    one_rtt(cubic, st, 1.0, 0.1)
    assert cubic.epoch_start is not None and cubic.delay_min == 100_000
    cubic.set_state(st, CaState.LOSS, 2.0)
    assert cubic.epoch_start is None
    assert (cubic.last_max_cwnd, cubic.delay_min, cubic.cnt) == (0, 0, 0)
    cubic.set_state(st, CaState.RECOVERY, 2.0)  # other states change nothing


def test_cubic_delay_samples_ignored_right_after_a_reduction() -> None:
    cubic = Cubic(hystart=False)
    st = after_loss(cubic, 100, 0.1)
    one_rtt(cubic, st, 1.0, 0.1)  # epoch starts at 1.001
    cubic.pkts_acked(st, 1, 0.05, 1.9)
    assert cubic.delay_min == 100_000
    cubic.pkts_acked(st, 1, 0.05, 2.001)
    assert cubic.delay_min == 50_000


def test_cubic_tx_start_after_idle_shifts_the_epoch() -> None:
    cubic = Cubic(hystart=False)
    st = after_loss(cubic, 100, 0.1)
    one_rtt(cubic, st, 1.0, 0.1)
    assert cubic.epoch_start == 1001
    st.lsndtime = 1.1
    cubic.cwnd_event(st, CaEvent.TX_START, 4.1)  # idle 3 s
    assert cubic.epoch_start == 4001
    # The shift never moves the epoch into the future.
    st.lsndtime = 0.0
    cubic.cwnd_event(st, CaEvent.TX_START, 4.5)
    assert cubic.epoch_start == 4500
    # Other events leave it alone.
    cubic.cwnd_event(st, CaEvent.CWND_RESTART, 9.0)
    assert cubic.epoch_start == 4500


def test_cubic_tx_start_without_lsndtime_uses_the_last_ack() -> None:
    cubic = Cubic(hystart=False)
    st = after_loss(cubic, 100, 0.1)
    one_rtt(cubic, st, 1.0, 0.1)  # last ACK at 1.1
    cubic.cwnd_event(st, CaEvent.TX_START, 3.1)
    assert cubic.epoch_start == 3001


def test_cubic_tx_start_outside_an_epoch_does_nothing() -> None:
    cubic = Cubic()
    st = CcState(lsndtime=0.0)
    cubic.init(st, 0.0)
    cubic.cwnd_event(st, CaEvent.TX_START, 10.0)
    assert cubic.epoch_start is None


# ---- CUBIC: HyStart ------------------------------------------------------------------------


def ack(cubic: Cubic, st: CcState, now: float, rtt: float) -> None:
    """One ACK of one segment; the sender then fills the window again."""
    st.in_flight -= 1
    cubic.pkts_acked(st, 1, rtt, now)
    cubic.cong_avoid(st, 1, now, True)
    st.in_flight = st.cwnd


def finish_round(cubic: Cubic, st: CcState, now: float, rtt: float) -> float:
    """ACK, 3 ms apart (too far apart for a train), until HyStart starts its next round: the
    ACK that starts it is the new round's first sample."""
    start = cubic.round_start
    while cubic.round_start == start:
        now += 0.003
        ack(cubic, st, now, rtt)
    return now


def test_hystart_exits_slow_start_on_a_delay_increase() -> None:
    counters: collections.Counter[str] = collections.Counter()
    cubic = Cubic(counters=counters)
    st = CcState(cwnd=16, in_flight=16)
    cubic.init(st, 0.0)
    now = finish_round(cubic, st, 0.0, 0.010)  # the first round: 17 ACKs (16 in flight + 1)
    assert st.cwnd == 33 and cubic.delay_min == 10_000
    now = finish_round(cubic, st, now, 0.014)  # a round whose minimum is still 10 ms
    # A whole round 4 ms (the least threshold: max(4 ms, delay_min / 8)) above delay_min:
    # not more than the threshold, slow start goes on.
    now = finish_round(cubic, st, now, 0.014)
    assert not cubic.found and st.ssthresh == INF
    now = finish_round(cubic, st, now, 0.015)
    # A round 5 ms above: its first 8 samples are taken, the 9th ends slow start.
    for n in range(2, 10):
        cwnd = st.cwnd
        now += 0.003
        ack(cubic, st, now, 0.015)
        assert cubic.found == (n == 9)
    assert st.ssthresh == cwnd
    assert counters == {"TcpExtTCPHystartDelayDetect": 1, "TcpExtTCPHystartDelayCwnd": cwnd}
    # Congestion avoidance from here: with no W_max known yet, a window of ACKs adds 5 %
    # (one segment per 20 ACKed), not a window.
    before = st.cwnd
    for _ in range(before):
        now += 0.003
        ack(cubic, st, now, 0.015)
    assert cubic.cnt == 20
    assert st.cwnd == before + before // 20


def test_hystart_ack_train_exits_slow_start() -> None:
    counters: collections.Counter[str] = collections.Counter()
    cubic = Cubic(counters=counters)
    st = CcState(cwnd=20, in_flight=20)
    cubic.init(st, 0.0)
    # ACKs 1 ms apart with a 10 ms RTT: the train passes delay_min / 2 = 5 ms at the 6th.
    for n in range(1, 8):
        cwnd_before = st.cwnd
        ack(cubic, st, n * 0.001, 0.010)
        if n < 6:
            assert not cubic.found
        elif n == 6:
            assert cubic.found
            assert st.ssthresh == cwnd_before
    assert counters["TcpExtTCPHystartTrainDetect"] == 1
    assert counters["TcpExtTCPHystartTrainCwnd"] == 25


def test_hystart_waits_for_sixteen_segments() -> None:
    cubic = Cubic()
    st = CcState(cwnd=10, in_flight=10)
    cubic.init(st, 0.0)
    for n in range(1, 6):
        ack(cubic, st, n * 0.001, 0.010)
    assert not cubic.found and st.ssthresh == INF


def test_hystart_can_be_turned_off() -> None:
    cubic = Cubic(hystart=False)
    st = CcState(cwnd=20, in_flight=20)
    cubic.init(st, 0.0)
    for n in range(1, 20):
        ack(cubic, st, n * 0.001, 0.010)
    assert not cubic.found and st.ssthresh == INF


def test_initial_ssthresh_only_without_hystart() -> None:
    st = CcState()
    Cubic(initial_ssthresh=100).init(st, 0.0)
    assert st.ssthresh == INF
    Cubic(initial_ssthresh=100, hystart=False).init(st, 0.0)
    assert st.ssthresh == 100


# ---- registry and arithmetic ---------------------------------------------------------------


def test_new_congestion_returns_fresh_instances() -> None:
    assert AVAILABLE == ("cubic", "reno")
    a, b = new_congestion("cubic"), new_congestion("cubic")
    assert isinstance(a, Cubic) and a is not b and a.name == "cubic"
    assert isinstance(new_congestion("reno"), Reno) and new_congestion("reno").name == "reno"
    with pytest.raises(ValueError, match="bbr"):
        new_congestion("bbr")


def test_cubic_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        Cubic(beta=1024)
    with pytest.raises(ValueError):
        Cubic(bic_scale=0)


def test_enums_match_linux() -> None:
    assert [s.value for s in CaState] == [0, 1, 2, 3, 4]
    assert [e.name for e in CaEvent] == [
        "TX_START",
        "CWND_RESTART",
        "COMPLETE_CWR",
        "LOSS",
        "ECN_NO_CE",
        "ECN_IS_CE",
    ]


@settings(max_examples=300, deadline=None)
@given(st_.integers(min_value=0, max_value=1 << 64))
def test_cube_root_is_exact(a: int) -> None:
    x = cube_root(a)
    assert x**3 <= a < (x + 1) ** 3


def test_cube_root_rejects_negative() -> None:
    with pytest.raises(ValueError):
        cube_root(-1)
