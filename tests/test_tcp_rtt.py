"""The RTT estimator (emunet.stack.tcp.rtt): RFC 6298 in the integer arithmetic of Linux's
tcp_rtt_estimator / tcp_set_rto, and the windowed minimum of lib/win_minmax.c."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emunet.stack.tcp.rtt import RttEstimator, WindowedMin


def test_before_any_sample() -> None:
    est = RttEstimator()
    assert est.srtt is None and est.min_rtt is None
    assert est.rto == 1.0
    assert RttEstimator(rto_initial=3.0).rto == 3.0


def test_first_sample_rfc6298_2_2() -> None:
    # R = 0.25 s (binary-exact): SRTT = R, RTTVAR = R/2, RTO = R + max(4 * R/2, 0.2) = 0.75.
    est = RttEstimator()
    est.sample(0.25, 10.0)
    assert est.srtt == 0.25
    assert est.rttvar == 0.125
    assert est.rto == 0.25 + max(4 * 0.125, 0.2) == 0.75
    assert est.min_rtt == 0.25


def test_first_sample_in_linux_units() -> None:
    # R = 100 ms: srtt_us = R << 3, mdev_us = R << 1 (= 4 * RTTVAR), rttvar_us = max(2R, rto_min).
    est = RttEstimator()
    est.sample(0.1, 1.0)
    assert (est.srtt_us, est.mdev_us, est.mdev_max_us, est.rttvar_us) == (
        800_000,
        200_000,
        200_000,
        200_000,
    )
    assert est.rto_us == 100_000 + max(4 * 50_000, 200_000) == 300_000
    assert (est.srtt, est.rttvar, est.rto) == (0.1, 0.05, 0.3)


def test_first_small_sample_is_floored_by_rto_min() -> None:
    est = RttEstimator()
    est.sample(0.01, 1.0)
    assert est.rttvar == 0.005  # 4 * RTTVAR = 20 ms is below rto_min
    assert est.rto_us == 10_000 + 200_000
    assert est.rto == 0.21


def test_rto_never_below_rto_min_with_small_rtts() -> None:
    est = RttEstimator()
    for i in range(200):
        est.sample(0.001, 1.0 + i * 0.001)
        assert est.rto >= 0.2
    assert est.srtt == 0.001
    assert est.rto_us == 1_000 + 200_000  # rttvar_us settles at rto_min


def test_rto_min_is_configurable() -> None:
    est = RttEstimator(rto_min=0.01)
    est.sample(0.001, 1.0)
    assert est.rto_us == 1_000 + 10_000


def test_second_sample_above_srtt() -> None:
    # RFC 6298 (2.3): RTTVAR = 3/4 * 0.05 + 1/4 * |0.1 - 0.2| = 0.0625,
    # SRTT = 7/8 * 0.1 + 1/8 * 0.2 = 0.1125, RTO = SRTT + 4 * RTTVAR = 0.3625.
    est = RttEstimator()
    est.sample(0.1, 1.0, snd_una=1000, snd_nxt=2000)
    est.sample(0.2, 1.2, snd_una=1500, snd_nxt=3000)  # still the first round
    assert est.srtt_us == 900_000 and est.srtt == 0.1125
    assert est.mdev_us == 250_000 and est.rttvar == 0.0625
    assert est.rttvar_us == 250_000  # followed mdev_max up at once
    assert est.rto_us == 112_500 + 250_000
    assert est.rto == 0.3625


def test_sample_below_srtt_moves_rttvar_with_the_smaller_gain() -> None:
    # Linux departs from RFC 6298 here: |error| 80 ms below SRTT enters mdev at 1/32, not 1/4.
    est = RttEstimator()
    est.sample(0.1, 1.0, snd_una=1000, snd_nxt=2000)
    est.sample(0.02, 1.2, snd_una=1500, snd_nxt=3000)
    assert est.srtt_us == 720_000 and est.srtt == 0.09
    # m = 80000 - 200000/4 = 30000, >> 3 = 3750: mdev 200000 -> 203750 (RFC: 230000)
    assert est.mdev_us == 203_750
    assert est.rttvar_us == 203_750
    assert est.rto_us == 90_000 + 203_750


def test_rttvar_decays_once_per_round_with_sequence_numbers() -> None:
    est = RttEstimator()
    est.sample(1.0, 1.0, snd_una=0, snd_nxt=100)  # mdev = rttvar = 2 s, round ends past 100
    assert est.rto == 3.0
    est.sample(1.0, 2.0, snd_una=101, snd_nxt=200)  # round over: mdev_max starts from rto_min
    assert (est.mdev_us, est.mdev_max_us, est.rttvar_us) == (1_500_000, 200_000, 2_000_000)
    assert est.rto == 3.0
    est.sample(1.0, 2.5, snd_una=150, snd_nxt=250)  # same round
    assert (est.mdev_us, est.mdev_max_us, est.rttvar_us) == (1_125_000, 1_125_000, 2_000_000)
    est.sample(1.0, 3.0, snd_una=201, snd_nxt=300)  # round over: decay a quarter of the gap
    assert est.mdev_us == 843_750
    assert est.rttvar_us == 2_000_000 - (2_000_000 - 1_125_000) // 4 == 1_781_250
    assert est.mdev_max_us == 200_000
    assert est.rto == 2.78125


def test_rttvar_decays_once_per_round_by_time_without_sequence_numbers() -> None:
    # The same samples; a round ends with the first sample of a segment sent after it began.
    est = RttEstimator()
    est.sample(1.0, 1.0)  # round begins at t = 1.0
    est.sample(1.0, 1.5)  # sent at 0.5: same round
    assert (est.mdev_max_us, est.rttvar_us) == (2_000_000, 2_000_000)
    est.sample(1.0, 2.5)  # sent at 1.5: round over, next begins at 2.5
    assert (est.mdev_us, est.mdev_max_us, est.rttvar_us) == (1_125_000, 200_000, 2_000_000)
    est.sample(1.0, 3.5)  # sent at 2.5: not after it
    assert (est.mdev_us, est.mdev_max_us) == (843_750, 843_750)
    est.sample(1.0, 3.6)  # sent at 2.6: round over
    assert est.rttvar_us == 2_000_000 - (2_000_000 - 843_750) // 4


def test_sequence_rounds_are_wrap_safe() -> None:
    est = RttEstimator()
    est.sample(1.0, 1.0, snd_una=0xFFFFFF00, snd_nxt=0xFFFFFFF0)
    est.sample(1.0, 2.0, snd_una=0x10, snd_nxt=0x100)  # after 0xFFFFFFF0 modulo 2**32
    assert est.mdev_max_us == 200_000


def test_steady_rtt_converges_to_srtt_plus_rto_min() -> None:
    est = RttEstimator()
    for i in range(100):
        est.sample(0.05, 1.0 + i * 0.05)
    assert est.srtt == 0.05
    assert est.rto_us == 50_000 + 200_000


def test_rto_is_bounded_by_rto_max() -> None:
    est = RttEstimator()
    est.sample(100.0, 100.0)
    assert est.srtt == 100.0
    assert est.rto == 120.0
    assert RttEstimator(rto_max=60.0, rto_initial=100.0).rto == 60.0


def test_backoff_doubles_and_stops_at_rto_max() -> None:
    est = RttEstimator()
    est.sample(0.1, 1.0)
    assert [est.backed_off(n) for n in range(5)] == [0.3, 0.6, 1.2, 2.4, 4.8]
    assert est.backed_off(9) == 120.0  # 153.6 s bounded
    assert est.backed_off(10_000) == 120.0
    fresh = RttEstimator()
    assert [fresh.backed_off(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 64, 120]
    with pytest.raises(ValueError):
        est.backed_off(-1)


def test_fallback_to_three_seconds() -> None:
    est = RttEstimator()
    est.sample(0.1, 1.0)
    est.fallback()
    assert est.srtt is None and est.rto == 3.0
    est.sample(0.2, 2.0)  # the next sample starts afresh
    assert est.srtt == 0.2 and est.rto == 0.6


def test_zero_rtt_sample() -> None:
    est = RttEstimator()
    est.sample(0.0, 1.0)
    assert est.srtt_us == 1  # srtt is kept non-zero
    assert est.rto_us == 200_000
    assert est.min_rtt == 0.000001


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        RttEstimator().sample(-0.1, 1.0)
    with pytest.raises(ValueError):
        RttEstimator(rto_min=0.0)
    with pytest.raises(ValueError):
        RttEstimator(rto_min=2.0, rto_max=1.0)
    with pytest.raises(ValueError):
        RttEstimator(rto_initial=0.0)


def test_min_rtt_is_a_running_minimum() -> None:
    est = RttEstimator()
    for now, rtt in [(1.0, 0.1), (2.0, 0.05), (3.0, 0.2), (4.0, 0.07)]:
        est.sample(rtt, now)
    assert est.min_rtt == 0.05


def test_min_rtt_forgets_after_its_window() -> None:
    est = RttEstimator()
    est.sample(0.01, 0.0)  # a short path, then a route change to a longer one
    for i in range(1, 350):
        est.sample(0.1, float(i))
        assert est.min_rtt == (0.01 if i <= 300 else 0.1), i


# ---- the windowed minimum (lib/win_minmax.c) ----------------------------------------------


def test_windowed_min_keeps_later_choices() -> None:
    m = WindowedMin(100)
    assert m.get() is None
    assert m.update(0, 10) == 10
    assert m.update(30, 20) == 10  # past a quarter: becomes the 2nd and 3rd choice
    assert m.update(60, 30) == 10  # past half, third still == second: the 3rd choice
    assert m.update(101, 40) == 20  # the best expired: 2nd choice promoted
    assert m.update(131, 50) == 30
    assert m.update(161, 60) == 40


def test_windowed_min_new_minimum_resets() -> None:
    m = WindowedMin(100)
    m.update(0, 10)
    m.update(10, 20)
    assert m.update(20, 5) == 5
    assert m.update(200, 50) == 50  # everything left the window


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 1000)), min_size=1, max_size=60))
def test_windowed_min_is_a_minimum_of_recent_samples(steps: list[tuple[int, int]]) -> None:
    # The estimate is never below the true minimum of the window and always a sample seen
    # no longer ago than the window allows (it may be a later, larger one).
    window = 100
    m = WindowedMin(window)
    t = 0
    seen: list[tuple[int, int]] = []
    for dt, v in steps:
        t += dt
        seen.append((t, v))
        got = m.update(t, v)
        recent = [val for when, val in seen if t - when <= window]
        assert got >= min(recent)
        assert got in [val for _, val in seen]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200_000_000), min_size=1, max_size=40))
def test_rto_stays_within_bounds(samples_us: list[int]) -> None:
    est = RttEstimator()
    now = 0.0
    for us in samples_us:
        now += 1.0
        est.sample(us / 1e6, now)
        assert 0.2 <= est.rto <= 120.0
        assert est.rto_us >= min((est.srtt_us >> 3) + 200_000, 120_000_000)
        assert est.rttvar_us >= 200_000
