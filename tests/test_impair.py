"""The link impairment model (emunet/fabric/impair.py): exact, synchronous, seeded."""

from __future__ import annotations

import math
import random
import re
import struct
import subprocess
import sys

import attrs
import pytest

from emunet.fabric.impair import (
    Direction,
    DirectionStats,
    DirectionStatsSnapshot,
    LinkParams,
)
from emunet.wire.checksum import internet_checksum, transport_checksum, transport_checksum_ok

MS = 1_000_000  # ns


def frame_of(n: int, length: int = 100) -> bytes:
    """A recognisable frame: an Ethernet header then the sequence number."""
    return bytes(12) + b"\x08\x00" + n.to_bytes(4, "big") + bytes(length - 18)


def seq_of(frame: bytes) -> int:
    return int.from_bytes(frame[14:18], "big")


def check_invariant(stats: DirectionStats) -> None:
    assert stats.delivered == stats.tx_frames + stats.duplicated - stats.lost


def binomial_bounds(n: int, p: float, confidence: float) -> tuple[int, int]:
    """Smallest interval [lo, hi] with P(X < lo) <= a/2 and P(X > hi) <= a/2, X ~ B(n, p)."""
    alpha = (1 - confidence) / 2
    log_p, log_q = math.log(p), math.log1p(-p)

    def pmf(k: int) -> float:
        log_c = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        return math.exp(log_c + k * log_p + (n - k) * log_q)

    cdf = 0.0  # P(X <= k)
    lo = None
    for k in range(n + 1):
        cdf += pmf(k)
        if lo is None and cdf > alpha:
            lo = k  # the first k with P(X <= k) > alpha, so P(X < lo) <= alpha
        if 1 - cdf <= alpha:
            assert lo is not None
            return lo, k  # the first k with P(X > k) <= alpha
    raise AssertionError("unreachable")


class Scripted(random.Random):
    """A Random that returns scripted values and records every draw, to pin the draw order."""

    def __init__(self, script: list[tuple[str, object]]) -> None:
        super().__init__(0)
        self.script = list(script)
        self.calls: list[tuple] = []

    def _next(self, kind: str, *args: object) -> object:
        self.calls.append((kind, *args))
        assert self.script, f"unscripted draw {kind}{args}"
        expected, value = self.script.pop(0)
        assert expected == kind, f"draw {kind}{args} where the script has {expected}"
        return value

    def random(self) -> float:
        return self._next("random")

    def randrange(self, start, stop=None, step=1):  # type: ignore[override]
        return self._next("randrange", start, stop)

    def randint(self, a, b):  # type: ignore[override]
        return self._next("randint", a, b)


# --- serialization ---


def test_thousand_frames_at_10mbit_take_exactly_one_second() -> None:
    d = Direction(LinkParams(bandwidth="10Mbit"), random.Random(0))
    assert d.serialization_ns(1250) == 1_000_000
    ends = [d.start(1250, 0) for _ in range(1000)]
    assert ends == [(i + 1) * 1_000_000 for i in range(1000)]
    assert ends[-1] == 1_000_000_000
    assert d.busy_until_ns == 1_000_000_000


def test_wire_idles_between_frames_and_queues_behind_a_busy_one() -> None:
    d = Direction(LinkParams(bandwidth=1e9), random.Random(0))
    assert d.start(1500, 0) == 12_000
    assert d.start(1500, 5_000) == 24_000  # waits for the first frame's last bit
    assert d.start(1500, 100_000) == 112_000  # idle wire: starts at once
    assert d.start(64, 112_000) == 112_512


def test_serialization_rounds_per_frame_to_the_nanosecond() -> None:
    d = Direction(LinkParams(bandwidth="3Gbit"), random.Random(0))
    assert d.serialization_ns(1) == 3  # 2.67 ns
    assert d.serialization_ns(1500) == 4000
    assert Direction(LinkParams(bandwidth=7), random.Random(0)).serialization_ns(1) == round(
        8e9 / 7
    )


def test_infinite_bandwidth_takes_no_time() -> None:
    d = Direction(LinkParams(), random.Random(0))
    assert d.serialization_ns(65535) == 0
    assert d.start(1500, 42) == 42
    assert d.start(1500, 42) == 42


def test_bandwidth_change_applies_to_the_next_frame() -> None:
    d = Direction(LinkParams(bandwidth="10Mbit"), random.Random(0))
    assert d.start(1250, 0) == 1_000_000
    d.set(bandwidth="100Mbit")
    assert d.start(1250, 0) == 1_100_000


# --- delay, jitter ---


def test_delay_only() -> None:
    d = Direction(LinkParams(delay="10ms"), random.Random(0))
    frame = frame_of(1)
    assert d.transmit(frame, 5 * MS) == [(15 * MS, frame)]
    assert d.stats.snapshot() == DirectionStatsSnapshot(tx_frames=1, tx_bytes=100, delivered=1)


def test_jitter_stays_within_bounds_and_covers_them() -> None:
    d = Direction(LinkParams(delay="10ms", jitter="2ms"), random.Random(7))
    arrivals = [d.transmit(frame_of(i), i * MS)[0][0] for i in range(5000)]
    delays = [a - i * MS for i, a in enumerate(arrivals)]
    assert min(delays) >= 8 * MS and max(delays) <= 12 * MS
    assert min(delays) < 8 * MS + 20_000 and max(delays) > 12 * MS - 20_000
    assert abs(sum(delays) / len(delays) - 10 * MS) < 0.05 * MS
    # jitter reorders frames on its own (netem does too): some later frame arrives first
    assert any(arrivals[i + 1] < arrivals[i] for i in range(len(arrivals) - 1))


def test_jitter_larger_than_delay_never_goes_below_zero() -> None:
    d = Direction(LinkParams(delay="1ms", jitter="3ms"), random.Random(3))
    delays = [d.transmit(frame_of(i), 100 * MS)[0][0] - 100 * MS for i in range(2000)]
    assert min(delays) == 0  # clamped, about a third of them
    assert 500 < delays.count(0) < 850
    assert max(delays) <= 4 * MS


# --- loss ---


def test_bernoulli_loss_lies_within_binomial_bounds() -> None:
    n, p = 10_000, 0.10
    lo, hi = binomial_bounds(n, p, 0.999)
    assert 895 < lo < 905 and 1095 < hi < 1105  # about 1000 +- 3.29 sigma, sigma = 30
    for seed in range(5):
        d = Direction(LinkParams(loss="10%"), random.Random(seed))
        delivered = sum(len(d.transmit(frame_of(i), i)) for i in range(n))
        assert lo <= d.stats.lost <= hi
        assert delivered == d.stats.delivered == n - d.stats.lost
        check_invariant(d.stats)


def test_loss_one_drops_everything_and_zero_draws_nothing() -> None:
    d = Direction(LinkParams(loss=1.0), random.Random(0))
    assert all(d.transmit(frame_of(i), 0) == [] for i in range(100))
    assert d.stats.lost == 100 and d.stats.delivered == 0
    rng = Scripted([])
    d = Direction(LinkParams(delay="1ms"), rng)
    d.transmit(frame_of(1), 0)
    assert rng.calls == []  # no impairment, no draw


def runs_of_losses(lost: list[bool]) -> list[int]:
    runs, current = [], 0
    for flag in lost:
        if flag:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    if current:
        runs.append(current)
    return runs


def test_gilbert_elliott_loss_comes_in_bursts_of_mean_length_one_over_r() -> None:
    p, r = 0.01, 0.25
    d = Direction(LinkParams(loss_ge=(p, r, 1.0, 0.0)), random.Random(11))
    lost = [not d.transmit(frame_of(i), i) for i in range(100_000)]
    runs = runs_of_losses(lost)
    mean_burst = sum(runs) / len(runs)
    assert abs(mean_burst - 1 / r) < 0.4  # about 4 standard errors
    assert abs(sum(lost) / len(lost) - p / (p + r)) < 0.006  # stationary share of bad state
    # a Bernoulli loss of the same rate has runs of about 1 / (1 - rate) = 1.04
    b = Direction(LinkParams(loss=p / (p + r)), random.Random(11))
    b_runs = runs_of_losses([not b.transmit(frame_of(i), i) for i in range(100_000)])
    assert sum(b_runs) / len(b_runs) < 1.1
    assert d.stats.lost == sum(lost)


def test_gilbert_elliott_tc_defaults() -> None:
    assert LinkParams(loss_ge=["1%"]).loss_ge == (0.01, 0.99, 1.0, 0.0)
    assert LinkParams(loss_ge=("1%", "30%")).loss_ge == (0.01, 0.3, 1.0, 0.0)
    assert LinkParams(loss_ge=(0.1, 0.2, 0.5)).loss_ge == (0.1, 0.2, 0.5, 0.0)
    assert LinkParams(loss_ge=[0.1, 0.2, 0.5, 0.01]).loss_ge == (0.1, 0.2, 0.5, 0.01)


def test_gilbert_elliott_state_machine_exactly() -> None:
    # (p, r, 1-h, 1-k) = (0.5, 0.5, 0.5, 0.5): each draw below 0.5 means "yes"
    script = [
        ("random", 0.9),  # good: stay good
        ("random", 0.1),  # good-state loss (1-k): lost
        ("random", 0.1),  # good -> bad
        ("random", 0.9),  # loss judged in the good state the frame met: delivered
        ("random", 0.9),  # bad: stay bad
        ("random", 0.9),  # bad-state loss (1-h): delivered
        ("random", 0.9),  # stay bad
        ("random", 0.1),  # lost
        ("random", 0.1),  # bad -> good
        ("random", 0.1),  # judged in the bad state: lost
        ("random", 0.9),  # good, stays good
        ("random", 0.9),  # delivered
    ]
    rng = Scripted(script)
    d = Direction(LinkParams(loss_ge=(0.5, 0.5, 0.5, 0.5)), rng)
    verdicts = [len(d.transmit(frame_of(i), 0)) for i in range(6)]
    assert verdicts == [0, 1, 1, 0, 0, 1]
    assert rng.script == []


def test_changing_loss_ge_restarts_in_the_good_state() -> None:
    d = Direction(LinkParams(loss_ge=(1.0, 0.0, 1.0, 0.0)), random.Random(0))
    assert len(d.transmit(frame_of(0), 0)) == 1  # judged good, then moves to bad for ever
    assert all(d.transmit(frame_of(i), 0) == [] for i in range(1, 10))
    d.set(delay="1ms")  # an unrelated change keeps the state
    assert d.transmit(frame_of(10), 0) == []
    d.set(loss_ge=(1.0, 0.0, 1.0, 0.001))
    assert len(d.transmit(frame_of(11), 0)) == 1


# --- duplicate, corrupt, reorder ---


def test_duplicate_makes_two_identical_copies() -> None:
    d = Direction(LinkParams(delay="2ms", duplicate=1.0), random.Random(0))
    frame = frame_of(5)
    assert d.transmit(frame, 0) == [(2 * MS, frame), (2 * MS, frame)]
    assert d.stats.snapshot() == DirectionStatsSnapshot(
        tx_frames=1, tx_bytes=100, delivered=2, duplicated=1
    )


def test_duplicate_rate_and_invariant() -> None:
    d = Direction(LinkParams(duplicate="20%", loss="5%"), random.Random(4))
    for i in range(10_000):
        d.transmit(frame_of(i), i)
    check_invariant(d.stats)
    assert 1750 < d.stats.duplicated < 2050  # 20% duplicated, of which 95% not lost: 1900


def test_duplicated_and_lost_frame_goes_on_once_as_in_netem() -> None:
    # netem: count = 1 + duplicate - loss, so with both certain every frame arrives once
    d = Direction(LinkParams(duplicate=1.0, loss=1.0), random.Random(0))
    assert [len(d.transmit(frame_of(i), 0)) for i in range(10)] == [1] * 10
    assert d.stats.duplicated == 0 and d.stats.lost == 0 and d.stats.delivered == 10


def test_draw_order_is_the_documented_one() -> None:
    params = LinkParams(delay=10e-6, jitter=1e-6, duplicate=0.5, loss=0.5, corrupt=0.5, reorder=0.5)
    rng = Scripted(
        [
            ("random", 0.1),  # duplicate: yes
            ("random", 0.9),  # loss of the frame: no -> two copies
            ("random", 0.1),  # original: corrupt yes
            ("randrange", 112),  # the first bit of byte 14
            ("random", 0.9),  # original: reorder no
            ("randint", 500),  # original: jitter
            ("random", 0.1),  # duplicate: its own loss -> lost
        ]
    )
    d = Direction(params, rng)
    frame = frame_of(1)
    out = d.transmit(frame, 1000)
    assert rng.script == []
    assert ("randrange", 112, 800) in rng.calls and ("randint", -1000, 1000) in rng.calls
    corrupted = frame[:14] + bytes([frame[14] ^ 0x80]) + frame[15:]
    assert out == [(1000 + 10_000 + 500, corrupted)]
    assert d.stats.snapshot() == DirectionStatsSnapshot(
        tx_frames=1, tx_bytes=100, delivered=1, lost=1, duplicated=1, corrupted=1
    )


def test_reorder_draw_comes_before_jitter_and_adds_the_gap() -> None:
    rng = Scripted([("random", 0.1), ("randint", -7)])
    d = Direction(LinkParams(delay="1ms", jitter="1us", reorder=0.5, reorder_gap="5ms"), rng)
    assert d.transmit(frame_of(1), 0) == [(6 * MS - 7, frame_of(1))]
    assert d.stats.reordered == 1


def differing_bits(a: bytes, b: bytes) -> list[int]:
    assert len(a) == len(b)
    diff = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return [len(a) * 8 - 1 - i for i in range(len(a) * 8) if diff >> i & 1]


def test_corrupt_flips_exactly_one_bit_never_in_the_ethernet_header() -> None:
    rng = random.Random(5)
    d = Direction(LinkParams(corrupt=1.0), random.Random(6))
    positions = []
    for i in range(3000):
        frame = rng.randbytes(rng.randrange(15, 1515))
        [(_, out)] = d.transmit(frame, i)
        bits = differing_bits(frame, out)
        assert len(bits) == 1
        assert bits[0] >= 14 * 8
        positions.append(bits[0] / (len(frame) * 8))
    assert d.stats.corrupted == 3000
    assert min(positions) < 0.02 and max(positions) > 0.98  # the whole packet is a target


def test_corrupt_spares_a_frame_that_is_all_header() -> None:
    d = Direction(LinkParams(corrupt=1.0), random.Random(0))
    assert d.transmit(bytes(14), 0) == [(0, bytes(14))]
    assert d.stats.corrupted == 0


def udp_frame(payload: bytes) -> bytes:
    src, dst = 0x0A000001, 0x0A000002
    udp = struct.pack("!HHHH", 1234, 5678, 8 + len(payload), 0) + payload
    csum = transport_checksum(src, dst, 17, udp) or 0xFFFF
    udp = udp[:6] + csum.to_bytes(2, "big") + udp[8:]
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + internet_checksum(ip).to_bytes(2, "big") + ip[12:]
    return bytes(12) + b"\x08\x00" + ip + udp


def test_checksums_catch_every_corruption() -> None:
    d = Direction(LinkParams(corrupt=1.0), random.Random(9))
    frame = udp_frame(b"emunet payload " * 4)
    for i in range(500):
        [(_, out)] = d.transmit(frame, i)
        ip, udp = out[14:34], out[34:]
        src, dst = int.from_bytes(ip[12:16], "big"), int.from_bytes(ip[16:20], "big")
        assert internet_checksum(ip) != 0 or not transport_checksum_ok(src, dst, 17, udp)


def test_reorder_holds_a_frame_back_so_a_later_one_overtakes_it() -> None:
    d = Direction(
        LinkParams(delay="10ms", bandwidth="10Mbit", reorder="25%", reorder_gap="3ms"),
        random.Random(2),
    )
    arrivals = []
    for i in range(400):
        end = d.start(1250, 0)  # back to back: one every 1 ms
        [(arrival, frame)] = d.transmit(frame_of(i, 1250), end)
        arrivals.append((arrival, seq_of(frame)))
        assert arrival - end in (10 * MS, 13 * MS)
    held = [arrivals[i][0] - (i + 1) * MS == 13 * MS for i in range(400)]
    assert sum(held) == d.stats.reordered and 70 < sum(held) < 130
    # every held-back frame is overtaken by the next frame when that one was not held back
    overtaken = [i for i in range(399) if held[i] and not held[i + 1]]
    assert len(overtaken) > 50
    assert all(arrivals[i + 1][0] < arrivals[i][0] for i in overtaken)
    order = [seq for _, seq in sorted(arrivals)]
    assert order != sorted(order)


# --- link down ---


def test_down_link_drops_and_counts_everything() -> None:
    d = Direction(LinkParams(delay="1ms", bandwidth="10Mbit"), random.Random(0))
    end = d.start(1250, 0)
    d.set(up=False)  # goes down while the frame is on the wire
    assert d.transmit(frame_of(0, 1250), end) == []
    for i in range(1, 50):
        assert d.start(1250, end) == end  # no wire time
        assert d.transmit(frame_of(i, 1250), end) == []
    assert d.stats.snapshot() == DirectionStatsSnapshot(dropped_down=50)
    d.set(up=True)
    assert d.start(1250, end) == end + MS
    assert d.transmit(frame_of(50, 1250), end + MS) == [(end + 2 * MS, frame_of(50, 1250))]
    assert d.stats.dropped_down == 50 and d.stats.delivered == 1


def test_down_link_makes_no_random_draws() -> None:
    rng = Scripted([])
    d = Direction(LinkParams(loss=0.5, jitter="1ms", up=False), rng)
    assert d.transmit(frame_of(1), 0) == []
    assert rng.calls == []


# --- determinism ---


def verdicts(seed: int) -> list[list[tuple[int, bytes]]]:
    params = LinkParams(
        delay="5ms",
        jitter="1ms",
        bandwidth="100Mbit",
        loss="3%",
        duplicate="2%",
        corrupt="2%",
        reorder="5%",
    )
    d = Direction(params, random.Random(seed))
    out = []
    for i in range(2000):
        end = d.start(200, i * 10_000)
        out.append(d.transmit(frame_of(i, 200), end))
    check_invariant(d.stats)
    return out


def test_same_seed_same_verdicts_other_seed_different() -> None:
    assert verdicts(1) == verdicts(1)
    assert verdicts(1) != verdicts(2)


# --- parameters ---


def test_params_accept_units() -> None:
    p = LinkParams(
        delay="10ms",
        jitter="250us",
        bandwidth="100Mbit",
        loss="1%",
        duplicate="0.5%",
        corrupt=0.001,
        reorder="2%",
        reorder_gap="2ms",
        queue="100",
        mtu="1400",
    )
    assert (p.delay, p.jitter, p.bandwidth, p.loss) == (0.01, 0.00025, 100e6, 0.01)
    assert (p.duplicate, p.corrupt, p.reorder, p.reorder_gap) == (0.005, 0.001, 0.02, 0.002)
    assert (p.queue, p.mtu, p.up) == (100, 1400, True)
    assert LinkParams(mtu=68).mtu == 68 and LinkParams(mtu=65535).mtu == 65535
    assert LinkParams(bandwidth=None).bandwidth is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"delay": -0.001}, "delay: bad time"),
        ({"delay": "10 parsecs"}, "delay: bad time"),
        ({"jitter": float("inf")}, "jitter: bad time"),
        ({"reorder_gap": "-1ms"}, "reorder_gap"),
        ({"bandwidth": 0}, "bandwidth: 0.0 bit/s must be positive"),
        ({"bandwidth": "fast"}, "bandwidth: bad rate"),
        ({"loss": 1.5}, "loss: bad fraction"),
        ({"loss": "-1%"}, "loss: bad fraction"),
        ({"duplicate": "101%"}, "duplicate"),
        ({"corrupt": 2}, "corrupt"),
        ({"reorder": float("nan")}, "reorder"),
        ({"loss_ge": (0.1, 0.2, 0.3, 0.4, 0.5)}, "loss_ge: expected 1 to 4 values"),
        ({"loss_ge": ()}, "loss_ge: expected 1 to 4 values"),
        ({"loss_ge": "1%"}, "loss_ge: expected a sequence"),
        ({"loss_ge": (0.1, 1.2)}, "loss_ge: bad fraction"),
        ({"loss": 0.01, "loss_ge": (0.1,)}, "two loss models"),
        ({"queue": 0}, "queue: 0 frames is below the minimum 1"),
        ({"queue": 1.5}, "queue: expected an integer"),
        ({"mtu": 67}, "mtu: 67 is below the IPv4 minimum 68"),
        ({"mtu": 65536}, "mtu: 65536 is above the maximum 65535"),
        ({"mtu": True}, "mtu: expected an integer"),
        ({"up": "no"}, "up: expected true or false"),
    ],
)
def test_params_reject_bad_values(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        LinkParams(**changes)


def test_params_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        LinkParams().delay = 1.0  # type: ignore[misc]


def test_set_validates_and_keeps_old_params_on_error() -> None:
    d = Direction(LinkParams(delay="1ms"), random.Random(0))
    new = d.set(loss="2%", delay="3ms")
    assert new is d.params and new == LinkParams(delay=0.003, loss=0.02)
    with pytest.raises(ValueError, match="mtu"):
        d.set(mtu=10)
    with pytest.raises(TypeError):
        d.set(colour="red")
    assert d.params == new
    assert d.transmit(frame_of(0), 0) in ([], [(3 * MS, frame_of(0))])
    d.params = LinkParams(delay="7ms")
    assert d.transmit(frame_of(1), 0) == [(7 * MS, frame_of(1))]
    with pytest.raises(TypeError):
        d.params = {"delay": 1}  # type: ignore[assignment]


def test_stats_snapshot_is_a_frozen_copy() -> None:
    d = Direction(LinkParams(), random.Random(0))
    d.transmit(frame_of(0), 0)
    snap = d.stats.snapshot()
    d.transmit(frame_of(1), 0)
    assert snap.tx_frames == 1 and d.stats.tx_frames == 2
    assert snap.as_dict() == {
        "tx_frames": 1,
        "tx_bytes": 100,
        "delivered": 1,
        "lost": 0,
        "dropped_down": 0,
        "duplicated": 0,
        "corrupted": 0,
        "reordered": 0,
    }
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snap.lost = 3  # type: ignore[misc]


def test_impair_does_not_import_trio() -> None:
    code = "import sys, emunet.fabric.impair, emunet.units; assert 'trio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
