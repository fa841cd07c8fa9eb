"""The out-of-order queue and the SACK scoreboard (emunet.stack.tcp.sack), against RFC 2018,
RFC 2883, RFC 6675 and Linux's tcp_input.c behaviour.  Synchronous and exact."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emunet.stack.tcp.sack import AckResult, OfoQueue, SackResult, Scoreboard, ofo_truesize
from emunet.wire.seqnum import MASK, seq_add, seq_lt, seq_sub

WRAP = 1 << 32


def stream(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


# ============================================================================================
# OfoQueue
# ============================================================================================


def test_holes_fill_and_pop_in_order() -> None:
    data = stream(3000)
    q = OfoQueue()
    assert q.add(2000, data[1000:2000]) is True
    assert q.add(3000, data[2000:3000]) is True
    assert len(q) == 2 and q.nbytes == 2000
    assert q.pop_in_order(1000) == b""  # the hole at 1000 is still open
    assert q.add(1000, data[0:1000]) is True
    assert q.pop_in_order(1000) == data
    assert len(q) == 0 and q.nbytes == 0
    assert q.sack_blocks(4000, 4) == []


def test_full_duplicate_is_nothing_new_and_reports_dsack() -> None:
    q = OfoQueue()
    assert q.add(2000, b"a" * 500)
    assert q.last_dsack is None
    assert q.add(2000, b"a" * 500) is False
    assert q.last_dsack == (2000, 2500)
    assert q.add(2100, b"a" * 100) is False
    assert q.last_dsack == (2100, 2200)
    assert q.nbytes == 500 and len(q) == 1
    assert q.add(3000, b"") is False and q.last_dsack is None


def test_partial_overlaps_are_trimmed() -> None:
    data = stream(1000)
    q = OfoQueue()
    assert q.add(1100, data[100:200])
    assert q.add(1150, data[150:300])  # right overlap: only 200..300 is new
    assert q.last_dsack == (1150, 1200)
    assert q.nbytes == 200 and q.ranges() == [(1100, 1300)]
    assert q.add(1050, data[50:120])  # left overlap: only 50..100 is new
    assert q.last_dsack == (1100, 1120)
    assert q.nbytes == 250 and q.ranges() == [(1050, 1300)]
    assert q.pop_in_order(1000) == b""
    assert q.add(1000, data[0:60])
    assert q.pop_in_order(1000) == data[0:300]


def test_segment_covering_several_held_ones_fills_only_the_holes() -> None:
    data = stream(1000)
    q = OfoQueue()
    q.add(1100, data[100:200])
    q.add(1300, data[300:400])
    q.add(1500, data[500:600])
    assert q.add(1050, data[50:650]) is True
    # Linux reports the first duplicate range (tcp_dsack_set); the others are not adjacent.
    assert q.last_dsack == (1100, 1200)
    assert q.nbytes == 600 and q.ranges() == [(1050, 1650)]
    assert len(q) == 7  # 3 held + 4 holes filled (pieces stay separate: no copying)
    assert q.add(1000, data[0:50])
    assert q.pop_in_order(1000) == data[0:650]


def test_pop_drops_data_below_rcv_nxt_and_trims_a_straddling_segment() -> None:
    data = stream(1000)
    q = OfoQueue()
    q.add(1100, data[100:200])
    q.add(1300, data[300:400])
    # The connection took 1000..1350 in order by itself (say a big retransmission).
    assert q.pop_in_order(1350) == data[350:400]
    assert len(q) == 0 and q.nbytes == 0


def test_rfc2018_case2_one_block_grows() -> None:
    """RFC 2018 section 5, case 2: the first of eight 500-byte segments is lost."""
    q = OfoQueue()
    rcv_nxt = 5000
    for n, seq in enumerate(range(5500, 9000, 500), start=1):
        q.add(seq, b"x" * 500)
        assert q.pop_in_order(rcv_nxt) == b""
        assert q.sack_blocks(rcv_nxt, 4) == [(5500, 6000 + 500 * (n - 1))]


def test_rfc2018_case3_most_recent_block_first() -> None:
    """RFC 2018 section 5, case 3: the 2nd, 4th, 6th and 8th segments are dropped."""
    q = OfoQueue()
    rcv_nxt = 5500  # the first segment came in order
    expected = {
        6000: [(6000, 6500)],
        7000: [(7000, 7500), (6000, 6500)],
        8000: [(8000, 8500), (7000, 7500), (6000, 6500)],
    }
    for seq, blocks in expected.items():
        q.add(seq, b"x" * 500)
        assert q.sack_blocks(rcv_nxt, 3) == blocks
    # The 4th segment was only delayed: its block goes first and absorbs its neighbours.
    q.add(6500, b"x" * 500)
    assert q.sack_blocks(rcv_nxt, 3) == [(6000, 7500), (8000, 8500)]
    # Then the 2nd arrives: RCV.NXT moves to 7500 and only 8000-8500 remains.
    q.add(5500, b"x" * 500)
    rcv_nxt += len(q.pop_in_order(rcv_nxt))
    assert rcv_nxt == 7500
    assert q.sack_blocks(rcv_nxt, 3) == [(8000, 8500)]


def test_only_four_blocks_are_remembered_and_max_blocks_limits_the_answer() -> None:
    q = OfoQueue()
    for k in range(5):  # five holes: blocks at 2000, 4000, ... 10000
        q.add(2000 * (k + 1), b"x" * 100)
    assert q.sack_blocks(1000, 4) == [(10000, 10100), (8000, 8100), (6000, 6100), (4000, 4100)]
    assert q.sack_blocks(1000, 3) == [(10000, 10100), (8000, 8100), (6000, 6100)]
    assert q.sack_blocks(1000, 1) == [(10000, 10100)]
    assert q.sack_blocks(1000, 0) == []
    # The held data is all still there; only the oldest block fell off the list (as Linux).
    assert len(q.ranges()) == 5
    # A segment touching the forgotten range builds a block of its own (tcp_sack_new_ofo_skb).
    q.add(2100, b"x" * 100)
    assert q.sack_blocks(1000, 4) == [(2100, 2200), (10000, 10100), (8000, 8100), (6000, 6100)]


def test_a_duplicate_moves_its_block_to_the_front() -> None:
    q = OfoQueue()
    q.add(2000, b"x" * 100)
    q.add(3000, b"x" * 100)
    assert q.sack_blocks(1000, 4) == [(3000, 3100), (2000, 2100)]
    assert q.add(2000, b"x" * 100) is False
    assert q.sack_blocks(1000, 4) == [(2000, 2100), (3000, 3100)]


def test_a_bridging_segment_coalesces_blocks() -> None:
    q = OfoQueue()
    q.add(2000, b"x" * 100)
    q.add(3000, b"x" * 100)
    q.add(4000, b"x" * 100)
    q.add(2100, b"x" * 900)  # joins 2000-2100 and 3000-3100
    assert q.sack_blocks(1000, 4) == [(2000, 3100), (4000, 4100)]


def test_blocks_never_reach_below_rcv_nxt() -> None:
    q = OfoQueue()
    q.add(2000, b"x" * 1000)
    q.add(4000, b"x" * 100)
    assert q.sack_blocks(2500, 4) == [(4000, 4100), (2500, 3000)]
    assert q.sack_blocks(3000, 4) == [(4000, 4100)]
    assert q.sack_blocks(5000, 4) == []


def test_prune_drops_highest_first_stops_at_the_incoming_segment_and_resets_sack() -> None:
    q = OfoQueue()
    q.add(2000, b"x" * 100)
    q.add(3000, b"x" * 200)
    q.add(4000, b"x" * 300)
    assert q.truesize == ofo_truesize(100) + ofo_truesize(200) + ofo_truesize(300) == 2328
    # goal reached after one segment, and the caller can ingest then: stop
    assert q.prune(1000, goal=500, can_ingest=lambda: True)
    assert q.ranges() == [(2000, 2100), (3000, 3200)] and q.nbytes == 300
    assert q.truesize == 676 + 776
    assert q.sack_blocks(1000, 4) == []  # tcp_sack_reset
    # an incoming segment above the tail: nothing may go (it would land last)
    assert not q.prune(3500, goal=10, can_ingest=lambda: False)
    # an incoming segment at 2500: the one at 3000 goes, the one at 2000 stays
    assert q.prune(2500, goal=10, can_ingest=lambda: False)
    assert q.ranges() == [(2000, 2100)] and q.truesize == 676
    assert q.prune(1000, goal=10, can_ingest=lambda: False)
    assert len(q) == 0 and q.nbytes == 0 and q.truesize == 0
    assert not q.prune(1000, goal=10, can_ingest=lambda: False)
    # After the reset a new segment gets a block of its own range only.
    q.add(5000, b"x" * 100)
    assert q.sack_blocks(1000, 4) == [(5000, 5100)]


def test_truesize_follows_what_is_held() -> None:
    q = OfoQueue()
    q.add(1000, b"x" * 1448)
    q.add(3000, b"y")
    assert q.truesize == 2 * 1448 + 577
    q.add(1000, b"x" * 2000)  # 552 new bytes between the two
    assert q.truesize == 2 * 1448 + 577 + (552 + 576)
    assert q.pop_in_order(1000) == b"x" * 2000 + b"y"
    assert q.truesize == 0


def test_clear() -> None:
    q = OfoQueue()
    q.add(2000, b"x" * 100)
    q.clear()
    assert len(q) == 0 and q.nbytes == 0 and q.sack_blocks(1000, 4) == []


def test_ofo_wraps_at_2_32() -> None:
    data = stream(3000)
    base = WRAP - 1500
    q = OfoQueue()
    assert q.add(seq_add(base, 2000), data[2000:3000])  # seq 500
    assert q.add(seq_add(base, 1000), data[1000:2000])  # seq 2**32 - 500, crosses the wrap
    assert q.sack_blocks(base, 4) == [(WRAP - 500, 1500)]
    assert q.ranges() == [(WRAP - 500, 1500)]
    assert q.pop_in_order(base) == b""
    assert q.add(base, data[0:1000])
    assert q.pop_in_order(base) == data
    assert q.sack_blocks(1500, 4) == []


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[int, bytes, list[tuple[int, int]], bool]:
    size = draw(st.integers(1, 3000))
    base = draw(st.one_of(st.integers(0, MASK), st.integers(WRAP - 4000, MASK)))
    # Cover the stream with random pieces, then add duplicates and overlapping pieces.
    cuts = sorted(set(draw(st.lists(st.integers(1, size - 1), max_size=20)) if size > 1 else []))
    edges = [0, *cuts, size]
    pieces = list(pairwise(edges))
    extra = draw(
        st.lists(
            st.tuples(st.integers(0, size - 1), st.integers(1, 800)).map(
                lambda t: (t[0], min(size, t[0] + t[1]))
            ),
            max_size=15,
        )
    )
    order = draw(st.permutations(pieces + extra))
    deliver_directly = draw(st.booleans())
    return base, stream(size, seed=size), list(order), deliver_directly


@settings(max_examples=300, deadline=None)
@given(arrivals())
def test_random_arrivals_reassemble_the_exact_stream(
    case: tuple[int, bytes, list[tuple[int, int]], bool],
) -> None:
    base, data, order, deliver_directly = case
    q = OfoQueue()
    out = bytearray()
    held: set[int] = set()  # model: offsets held in the queue
    for lo, hi in order:
        rcv = len(out)
        seq = seq_add(base, lo)
        queued = False
        if deliver_directly and lo <= rcv < hi:
            # The connection takes an in-order segment itself (tcp_data_queue), then drains.
            out += data[rcv:hi]
        elif not deliver_directly or hi > rcv:
            # (In "direct" mode an old duplicate is never queued; otherwise everything is.)
            new = set(range(lo, hi)) - held
            assert q.add(seq, data[lo:hi]) is bool(new)
            if not new:
                assert q.last_dsack == (seq, seq_add(seq, hi - lo))
            held |= set(range(lo, hi))
            queued = True
        out += q.pop_in_order(seq_add(base, len(out)))
        rcv = len(out)
        held = {o for o in held if o >= rcv}
        rcv_nxt = seq_add(base, rcv)
        # Invariants: bytes held, blocks inside held data and above rcv_nxt, disjoint.
        assert q.nbytes == len(held)
        blocks = q.sack_blocks(rcv_nxt, 4)
        assert len(blocks) <= 4
        for start, end in blocks:
            a, b = seq_sub(start, base), seq_sub(end, base)
            assert rcv <= a < b and set(range(a, b)) <= held
        spans = sorted((seq_sub(s, base), seq_sub(e, base)) for s, e in blocks)
        assert all(x[1] < y[0] for x, y in pairwise(spans))
        # RFC 2018: the block holding the segment just received comes first.
        if queued and hi > rcv:
            a, b = seq_sub(blocks[0][0], base), seq_sub(blocks[0][1], base)
            assert a <= max(lo, rcv) and hi <= b
    assert bytes(out) == data
    assert q.nbytes == 0 and len(q) == 0
    assert q.sack_blocks(seq_add(base, len(data)), 4) == []


# ============================================================================================
# Scoreboard
# ============================================================================================

MSS = 1000


def board(n: int, base: int = 0, *, mss: int = MSS, now: float = 0.0) -> Scoreboard:
    """A scoreboard with ``n`` full-sized segments sent from ``base`` at ``now``."""
    sb = Scoreboard(mss, snd_una=base)
    for k in range(n):
        sb.on_sent(seq_add(base, k * mss), mss, now)
    return sb


def blk(base: int, a: int, b: int) -> tuple[int, int]:
    """The SACK block for segments a..b-1 of a board made by ``board``."""
    return seq_add(base, a * MSS), seq_add(base, b * MSS)


def test_ack_accounting_is_exact() -> None:
    sb = board(5)
    assert sb.outstanding == 5000 and sb.pipe() == 5000 and len(sb) == 5
    assert sb.on_ack(0, 1.0) == AckResult(0, 0, None, False)  # not an advance
    res = sb.on_ack(2500, 1.0)  # two segments and half of the third
    assert res == AckResult(2500, 2, 1.0, False, 0)
    assert sb.outstanding == 2500 and sb.snd_una == 2500 and len(sb) == 3
    assert next((s.seq, s.end) for s in sb.segments()) == (2500, 3000)
    assert sb.on_ack(3000, 1.5) == AckResult(500, 1, 1.5, False, 0)
    assert sb.on_ack(1000, 2.0) == AckResult(0, 0, None, False)  # an old ACK


def test_rtt_sample_comes_from_the_newest_segment() -> None:
    sb = Scoreboard(MSS, snd_una=0)
    sb.on_sent(0, 1000, 0.0)
    sb.on_sent(1000, 1000, 0.25)
    sb.on_sent(2000, 1000, 0.5)
    assert sb.on_ack(3000, 1.0).rtt_sample == 0.5


def test_karn_no_rtt_sample_from_retransmitted_segments() -> None:
    sb = board(2)
    sb.on_sent(0, 1000, 1.0, retransmit=True)
    res = sb.on_ack(1000, 1.2)
    assert res == AckResult(1000, 1, None, True, 0)
    # Mixed: the newest never-retransmitted segment still gives a sample; the caller may
    # discard it because retransmitted data was acked too (Linux does).
    sb = board(2)
    sb.on_sent(0, 1000, 1.0, retransmit=True)
    res = sb.on_ack(2000, 1.2)
    assert res.rtt_sample == 1.2 and res.retransmitted_acked
    # Overlapping data sent without the flag is a retransmission all the same.
    sb = board(1)
    sb.on_sent(0, 1000, 1.0)
    assert sb.retrans_out == 1000
    assert sb.on_ack(1000, 2.0) == AckResult(1000, 1, None, True, 0)


def test_no_rtt_sample_from_segments_sacked_before() -> None:
    sb = board(3)
    sb.on_sack([(1000, 2000)], 0, 3000)
    res = sb.on_ack(2000, 1.0)
    assert res == AckResult(2000, 2, 1.0, False, 1000)
    sb = board(2)
    sb.on_sack([(1000, 2000)], 0, 2000)
    sb.on_sent(0, 1000, 0.5, retransmit=True)
    assert sb.on_ack(2000, 1.0) == AckResult(2000, 2, None, True, 1000)


def test_ack_beyond_tracked_data_empties_the_board() -> None:
    sb = board(2)
    assert sb.on_ack(2001, 1.0).acked_bytes == 2000  # a FIN the board never saw
    assert sb.outstanding == 0 and sb.snd_nxt == 2001 and len(sb) == 0
    sb.on_sent(2001, 500, 1.0)
    assert sb.outstanding == 500


def test_on_sent_rejects_a_gap() -> None:
    sb = board(1)
    with pytest.raises(ValueError):
        sb.on_sent(1500, 100, 0.0)


def test_sack_accounting_counts_only_new_bytes() -> None:
    sb = board(10)
    assert sb.on_sack([(3000, 4000)], 0, 10000) == SackResult(1000, False, 1)
    assert sb.on_sack([(3000, 5000)], 0, 10000) == SackResult(1000, False, 1)
    assert sb.on_sack([(3000, 5000)], 0, 10000) == SackResult(0, False, 0)
    assert sb.on_sack([(7000, 8000), (3000, 5000)], 0, 10000).newly_sacked_bytes == 1000
    assert sb.sacked_bytes == 3000 and sb.sacked_segments == 3
    assert sb.highest_sacked() == 8000
    # A cumulative ACK over SACKed data takes it off the books.
    res = sb.on_ack(4000, 1.0)
    assert res.acked_bytes == 4000 and res.previously_sacked_bytes == 1000
    assert sb.sacked_bytes == 2000 and sb.sacked_segments == 2


def test_sack_block_splits_a_segment_exactly() -> None:
    sb = board(2)
    assert sb.on_sack([(1200, 1700)], 0, 2000).newly_sacked_bytes == 500
    assert [(s.seq, s.end, s.sacked) for s in sb.segments()] == [
        (0, 1000, False),
        (1000, 1200, False),
        (1200, 1700, True),
        (1700, 2000, False),
    ]
    assert sb.on_sack([(1000, 2000)], 0, 2000).newly_sacked_bytes == 500
    assert sb.sacked_bytes == 1000


def test_invalid_sack_blocks_are_ignored() -> None:
    sb = board(10, base=5000)
    una, nxt = 5000, 15000
    cases = [
        (14000, 16000),  # beyond snd_nxt
        (9000, 8000),  # reversed
        (15000, 15000),  # starts at snd_nxt
        (8000, 8000),  # empty
    ]
    for block in cases:
        assert sb.on_sack([block], una, nxt) == SackResult(0, False, discarded=1), block
    # A non-first block starting at or below snd_una (only a D-SACK may).
    res = sb.on_sack([(9000, 10000), (5000, 6000)], una, nxt)
    assert res == SackResult(1000, False, 1, discarded=1)
    assert sb.sacked_bytes == 1000


def test_dsack_below_the_ack() -> None:
    """RFC 2883 section 4.1.1: a D-SACK for an already acknowledged retransmission."""
    sb = board(4)
    sb.on_sent(0, 1000, 1.0, retransmit=True)
    sb.on_ack(1000, 1.1)
    res = sb.on_sack([(0, 1000)], 1000, 4000)
    assert res == SackResult(0, True, dsack_block=(0, 1000))
    # Partly below snd_una: still a D-SACK by tcp_check_dsack, but nothing is tagged.
    res = sb.on_sack([(500, 1500)], 1000, 4000)
    assert res.dsack and res.newly_sacked_bytes == 0 and res.discarded == 0
    assert sb.sacked_bytes == 0


def test_dsack_inside_the_second_block() -> None:
    """RFC 2883 section 4.1.2/4.2: the duplicate lies inside a SACKed block."""
    sb = board(6)
    sb.on_sack([(3000, 5000)], 0, 6000)
    res = sb.on_sack([(3000, 4000), (3000, 5000)], 0, 6000)
    assert res == SackResult(0, True, dsack_block=(3000, 4000))
    # A first block merely overlapping the second is not a D-SACK.
    assert not sb.on_sack([(2000, 4000), (3000, 5000)], 0, 6000).dsack
    # A reversed first block is never one.
    assert not sb.on_sack([(900, 100)], 1000, 6000).dsack


def test_dsack_takes_a_redundant_retransmission_out_of_flight() -> None:
    sb = board(6)
    sb.on_sent(2000, 1000, 1.0, retransmit=True)  # say a rule-3 retransmission
    assert sb.retrans_out == 1000 and sb.pipe() == 7000
    sb.on_sack([(2000, 3000)], 0, 6000)  # the original arrived: not lost, keep it in flight
    assert sb.retrans_out == 1000 and sb.pipe() == 6000
    res = sb.on_sack([(2000, 3000), (2000, 3000)], 0, 6000)  # ...then the copy
    assert res.dsack and sb.retrans_out == 0 and sb.pipe() == 5000


def test_is_lost_by_segment_count_rfc6675() -> None:
    """IsLost: DupThresh (3) SACKed segments above the octet (RFC 6675 section 4)."""
    sb = board(10)
    sb.on_sack([(2000, 3000)], 0, 10000)
    assert not sb.is_lost(0) and sb.lost_bytes == 0
    sb.on_sack([(2000, 4000)], 0, 10000)
    assert not sb.is_lost(0) and sb.lost_bytes == 0
    res = sb.on_sack([(2000, 5000)], 0, 10000)
    assert res.newly_lost_bytes == 2000
    assert sb.is_lost(0) and sb.is_lost(1999) and sb.lost_bytes == 2000
    assert not sb.is_lost(2000)  # SACKed
    assert not sb.is_lost(5000)  # nothing SACKed above
    sb.on_sack([(6000, 7000), (2000, 5000)], 0, 10000)
    # Segment 5 has one SACKed segment above: not lost.
    assert not sb.is_lost(5000) and sb.lost_bytes == 2000
    sb.on_sack([(8000, 10000), (6000, 7000)], 0, 10000)
    assert sb.is_lost(5000) and sb.is_lost(7000) is False  # 7: two SACKed above
    assert sb.lost_bytes == 3000
    assert sb.is_lost(123456) is False  # outside the window


def test_is_lost_by_bytes_rfc6675() -> None:
    """IsLost: more than (DupThresh - 1) * SMSS SACKed bytes above, even in fewer segments."""
    sb = Scoreboard(500, snd_una=0)
    for k in range(5):  # 1000-byte segments sent before the MSS dropped to 500
        sb.on_sent(k * 1000, 1000, 0.0)
    sb.on_sack([(2000, 3000)], 0, 5000)
    assert sb.lost_bytes == 0  # 1000 bytes = 2 * SMSS: not more than
    sb.on_sack([(2000, 3000), (4000, 5000)], 0, 5000)
    assert sb.lost_bytes == 2000 and sb.is_lost(0) and sb.is_lost(1000)
    assert not sb.is_lost(3000)
    # A smaller DupThresh (or MSS) marks more at once.
    sb2 = board(5)
    sb2.on_sack([(4000, 5000)], 0, 5000)
    assert sb2.lost_bytes == 0
    sb2.dupthresh = 1
    assert sb2.lost_bytes == 4000


def test_pipe_rfc6675_setpipe() -> None:
    sb = board(10)
    assert sb.pipe() == 10000
    sb.on_sack([(1000, 4000)], 0, 10000)  # segment 0 lost, 1..3 SACKed
    assert sb.lost_bytes == 1000 and sb.sacked_bytes == 3000
    assert sb.pipe() == 10000 - 3000 - 1000
    sb.on_sent(0, 1000, 1.0, retransmit=True)
    assert sb.retrans_out == 1000 and sb.pipe() == 7000
    sb.on_sack([(5000, 6000), (1000, 4000)], 0, 10000)
    assert sb.lost_bytes == 1000  # segment 4 has only one SACKed segment above
    sb.on_sack([(5000, 8000), (1000, 4000)], 0, 10000)  # now three: 4 is lost too
    assert sb.lost_bytes == 2000 and sb.pipe() == 10000 - 6000 - 2000 + 1000
    sb.on_ack(4000, 2.0)  # the retransmission arrived
    assert sb.retrans_out == 0 and sb.lost_bytes == 1000
    assert sb.pipe() == 6000 - 3000 - 1000


def test_a_lost_retransmission_stays_in_pipe_until_rto() -> None:
    sb = board(6)
    sb.on_sack([(1000, 4000)], 0, 6000)
    sb.on_sent(0, 1000, 1.0, retransmit=True)
    assert sb.pipe() == 6000 - 3000 - 1000 + 1000
    sb.on_sack([(1000, 6000)], 0, 6000)  # later data arrives, the retransmission does not
    assert sb.pipe() == 1000 and sb.next_seg(6000) is None
    assert sb.mark_lost() is False
    assert sb.pipe() == 0 and sb.retrans_out == 0
    assert sb.next_seg(6000) == (0, 1000)


def test_next_seg_rules() -> None:
    sb = board(10)
    sb.on_sack([(3000, 6000)], 0, 10000)  # 0..2 lost (3 SACKed above)
    assert sb.lost_bytes == 3000
    # (1) the lost segments in order, each once
    assert sb.next_seg(10000) == (0, 1000)
    assert sb.next_seg(10000) == (0, 1000)  # a query: nothing changes until sent
    sb.on_sent(0, 1000, 1.0, retransmit=True)
    assert sb.next_seg(10000) == (1000, 1000)
    sb.on_sent(1000, 1000, 1.0, retransmit=True)
    sb.on_sent(2000, 1000, 1.0, retransmit=True)
    # (2) new data when there is some and the window allows
    assert sb.next_seg(10000, unsent=5000) == (10000, 1000)
    assert sb.next_seg(10000, unsent=300) == (10000, 300)
    assert sb.next_seg(10000, unsent=5000, wnd_end=10400) == (10000, 400)
    # (3) otherwise an un-SACKed, not lost segment below the highest SACK: none here
    assert sb.next_seg(10000, unsent=5000, wnd_end=10000) is None
    sb.on_sack([(7000, 8000), (3000, 6000)], 0, 10000)
    assert sb.lost_bytes == 3000  # segment 6 has one SACKed segment above: not lost
    assert sb.next_seg(10000) == (6000, 1000)
    assert sb.next_seg(10000, rule3=False) is None
    sb.on_sent(6000, 1000, 1.0, retransmit=True)
    assert sb.next_seg(10000) is None
    # (4) one rescue retransmission per recovery, holding the highest un-SACKed octet
    assert sb.next_seg(10000, rescue_point=10000) == (9000, 1000)
    assert sb.next_seg(10000, rescue_point=10000) is None
    sb.on_ack(10000, 2.0)
    sb.on_sent(10000, 1000, 2.0)
    assert sb.next_seg(11000, rescue_point=11000) == (10000, 1000)  # a new recovery


def test_next_seg_collapses_small_lost_segments_into_one_mss() -> None:
    sb = Scoreboard(1000, snd_una=0)
    for k in range(8):
        sb.on_sent(k * 400, 400, 0.0)
    sb.on_sack([(2000, 3200)], 0, 3200)  # 3 SACKed segments above 0..2000
    assert sb.lost_bytes == 2000
    assert sb.next_seg(3200) == (0, 1000)
    sb.on_sent(0, 1000, 1.0, retransmit=True)  # splits the third segment
    assert [(s.seq, s.end, s.retrans) for s in sb.segments()][:4] == [
        (0, 400, True),
        (400, 800, True),
        (800, 1000, True),
        (1000, 1200, False),
    ]
    assert sb.next_seg(3200) == (1000, 1000)
    assert sb.retrans_out == 1000


def test_next_seg_splits_a_segment_larger_than_the_mss() -> None:
    sb = board(5)
    sb.mss = 600
    sb.on_sack([(2000, 5000)], 0, 5000)
    assert sb.next_seg(5000) == (0, 600)
    sb.on_sent(0, 600, 1.0, retransmit=True)
    assert sb.next_seg(5000) == (600, 600)  # 600..1000 and the next lost segment


def test_mark_lost_on_rto() -> None:
    sb = board(6)
    sb.on_sack([(2000, 3000)], 0, 6000)
    sb.on_sent(0, 1000, 1.0, retransmit=True)
    assert sb.mark_lost() is False
    assert sb.lost_bytes == 5000 and sb.sacked_bytes == 1000 and sb.retrans_out == 0
    assert sb.pipe() == 0
    assert sb.next_seg(6000) == (0, 1000)
    sb.on_sent(0, 1000, 2.0, retransmit=True)
    assert sb.next_seg(6000) == (1000, 1000)
    sb.on_sent(1000, 1000, 2.0, retransmit=True)
    assert sb.next_seg(6000) == (3000, 1000)  # skips the SACKed segment
    # Only part of the window: up_to
    sb = board(6)
    sb.mark_lost(up_to=2500)
    assert sb.lost_bytes == 3000 and sb.is_lost(2000) and not sb.is_lost(3000)


def test_mark_lost_detects_reneging() -> None:
    sb = board(4)
    sb.on_sack([(1000, 2000)], 0, 4000)
    sb.on_ack(1000, 1.0)  # the receiver ACKs up to the SACKed data but not past it...
    assert sb.mark_lost() is True  # ...and the RTO finds the head SACKed: reneging
    assert sb.sacked_bytes == 0 and sb.highest_sacked() is None
    assert sb.lost_bytes == 3000 and sb.pipe() == 0
    assert sb.next_seg(4000) == (1000, 1000)


def test_reorder_seq_reports_an_original_sacked_below_the_highest_sack() -> None:
    sb = board(6)
    assert sb.on_sack([(4000, 5000)], 0, 6000).reorder_seq is None
    assert sb.on_sack([(2000, 3000), (4000, 5000)], 0, 6000).reorder_seq == 2000
    sb.on_sent(1000, 1000, 1.0, retransmit=True)
    # A retransmitted segment SACKed is no reordering signal.
    assert sb.on_sack([(1000, 3000), (4000, 5000)], 0, 6000).reorder_seq is None


def test_sack_before_or_after_ack_gives_the_same_board() -> None:
    def run(sack_first: bool) -> tuple[int, int, int, int]:
        sb = board(8)
        if sack_first:
            sb.on_sack([(5000, 7000), (2000, 3000)], 2000, 8000)
            sb.on_ack(2000, 1.0)
        else:
            sb.on_ack(2000, 1.0)
            sb.on_sack([(5000, 7000), (2000, 3000)], 2000, 8000)
        return sb.sacked_bytes, sb.lost_bytes, sb.pipe(), sb.outstanding

    assert run(True) == run(False) == (2000, 0, 4000, 6000)


def test_scoreboard_wraps_at_2_32() -> None:
    base = WRAP - 2500
    sb = board(6, base=base)
    assert sb.snd_una == base and sb.snd_nxt == 3500
    res = sb.on_sack([blk(base, 3, 6)], base, 3500)  # 500 .. 3500, past the wrap
    assert res.newly_sacked_bytes == 3000
    assert sb.highest_sacked() == 3500
    assert sb.lost_bytes == 3000 and sb.is_lost(WRAP - 1) and sb.is_lost(base)
    assert sb.next_seg(3500) == (base, 1000)
    sb.on_sent(base, 1000, 1.0, retransmit=True)
    assert sb.next_seg(3500) == (WRAP - 1500, 1000)
    assert sb.next_seg(3500, unsent=10) == (WRAP - 1500, 1000)
    res2 = sb.on_ack(WRAP - 500, 2.0)
    assert res2.acked_bytes == 2000 and sb.snd_una == WRAP - 500
    assert sb.on_ack(500, 2.0).acked_bytes == 1000
    assert sb.outstanding == 3000 and sb.sacked_bytes == 3000 and sb.pipe() == 0
    # D-SACK detection across the wrap: a block just below snd_una
    assert sb.on_sack([(WRAP - 200, 100)], 500, 3500).dsack


# ---- model-based property test ----------------------------------------------------------


class Model:
    """Per-segment reference: RFC 6675 IsLost recomputed from scratch after every SACK,
    Linux's scoreboard tags (LOST sticky, SACKED_RETRANS), pipe = out - sacked - lost + retrans.
    All segments are MSS-sized and SACK blocks fall on segment edges."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.una = 0  # segment index
        self.nxt = 0
        self.sacked: set[int] = set()
        self.lost: set[int] = set()
        self.retrans: set[int] = set()

    def seq(self, k: int) -> int:
        return seq_add(self.base, k * MSS)

    def sack(self, segs: set[int]) -> None:
        for k in segs - self.sacked:
            if k in self.lost:
                self.lost.discard(k)
                self.retrans.discard(k)
            self.sacked.add(k)
        for k in range(self.una, self.nxt):
            if k in self.sacked:
                continue
            above = sum(1 for j in self.sacked if j > k)
            if above >= 3 or above * MSS > 2 * MSS:
                self.lost.add(k)

    def ack(self, k: int) -> None:
        for j in range(self.una, k):
            self.sacked.discard(j)
            self.lost.discard(j)
            self.retrans.discard(j)
        self.una = k

    def rto(self) -> bool:
        reneg = self.una in self.sacked
        if reneg:
            self.sacked.clear()
        for k in range(self.una, self.nxt):
            if k not in self.sacked:
                self.lost.add(k)
                self.retrans.discard(k)
        return reneg

    def pipe(self) -> int:
        out = self.nxt - self.una
        return (out - len(self.sacked) - len(self.lost) + len(self.retrans)) * MSS

    def next_seg(self) -> tuple[int, int] | None:
        for k in range(self.una, self.nxt):
            if k in self.lost and k not in self.sacked and k not in self.retrans:
                return self.seq(k), MSS
        if self.sacked:
            high = max(self.sacked)
            for k in range(self.una, high):
                if k not in self.sacked and k not in self.lost and k not in self.retrans:
                    return self.seq(k), MSS
        return None


ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(1, 4)),
        st.tuples(
            st.just("sack"),
            # Blocks start above snd_una (a block at snd_una is invalid, tcp_is_sackblock_valid).
            st.lists(st.tuples(st.integers(1, 30), st.integers(1, 6)), min_size=1, max_size=4),
        ),
        st.tuples(st.just("ack"), st.integers(0, 6)),
        st.tuples(st.just("retransmit"), st.just(0)),
        st.tuples(st.just("rto"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=250, deadline=None)
@given(st.one_of(st.integers(0, MASK), st.integers(WRAP - 20 * MSS, MASK)), ops)
def test_scoreboard_matches_a_per_segment_model(base: int, program: list) -> None:
    sb = Scoreboard(MSS, snd_una=base)
    m = Model(base)
    now = 0.0
    for op, arg in program:
        now += 0.01
        if op == "send":
            for _ in range(arg):
                sb.on_sent(m.seq(m.nxt), MSS, now)
                m.nxt += 1
        elif op == "sack":
            blocks, segs = [], set()
            for off, length in arg:
                a = m.una + off
                b = min(a + length, m.nxt)
                if a < b:
                    blocks.append((m.seq(a), m.seq(b)))
                    segs |= set(range(a, b))
            if not blocks:
                continue
            before = sb.sacked_bytes
            res = sb.on_sack(blocks, m.seq(m.una), m.seq(m.nxt))
            m.sack(segs)
            assert res.newly_sacked_bytes == sb.sacked_bytes - before
            assert res.discarded == 0
        elif op == "ack":
            k = min(m.una + arg, m.nxt)
            res = sb.on_ack(m.seq(k), now)
            assert res.acked_bytes == (k - m.una) * MSS
            m.ack(k)
        elif op == "retransmit":
            seg = sb.next_seg(m.seq(m.nxt))
            assert seg == m.next_seg()
            if seg is not None:
                sb.on_sent(seg[0], seg[1], now, retransmit=True)
                m.retrans.add(m.una + seq_sub(seg[0], m.seq(m.una)) // MSS)
        else:
            assert sb.mark_lost() == m.rto()
        assert sb.outstanding == (m.nxt - m.una) * MSS
        assert sb.sacked_bytes == len(m.sacked) * MSS
        assert sb.lost_bytes == len(m.lost) * MSS, (sorted(m.lost), list(sb.segments()))
        assert sb.retrans_out == len(m.retrans) * MSS
        assert sb.pipe() == m.pipe()
        assert sb.next_seg(m.seq(m.nxt)) == m.next_seg()
        for k in range(m.una, m.nxt):
            assert sb.is_lost(m.seq(k)) == (k in m.lost)
        high = sb.highest_sacked()
        assert high == (m.seq(max(m.sacked) + 1) if m.sacked else None)
        if high is not None:
            assert seq_lt(m.seq(m.una), high)


byte_ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(1, 2500), st.just(0)),
        st.tuples(st.just("sack"), st.integers(1, 9000), st.integers(1, 4000)),
        st.tuples(st.just("ack"), st.integers(0, 3000), st.just(0)),
        st.tuples(st.just("retransmit"), st.integers(0, 9000), st.integers(1, 2000)),
        st.tuples(st.just("next"), st.just(0), st.just(0)),
        st.tuples(st.just("mss"), st.integers(300, 1500), st.just(0)),
        st.tuples(st.just("rto"), st.just(0), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=250, deadline=None)
@given(st.one_of(st.integers(0, MASK), st.integers(WRAP - 30000, MASK)), byte_ops)
def test_scoreboard_byte_level_invariants(base: int, program: list) -> None:
    """Unaligned SACK blocks, ACKs and retransmissions: exact per-byte SACK accounting, the
    segments tile [snd_una, snd_nxt), the counters match the tags, and loss marking is RFC
    6675 IsLost over the current segments (complete, and never spurious unless an RTO or an
    MSS increase made the sticky marks outlive the rule)."""
    sb = Scoreboard(MSS, snd_una=base)
    una = nxt = 0  # offsets from base
    sacked: set[int] = set()
    exempt = False
    now = 0.0

    def seq(off: int) -> int:
        return seq_add(base, off)

    for op, a, b in program:
        now += 0.01
        if op == "send":
            sb.on_sent(seq(nxt), a, now)
            nxt += a
        elif op == "sack":
            start, end = una + a, min(una + a + b, nxt)
            res = sb.on_sack([(seq(start), seq(end))], seq(una), seq(nxt))
            if start < end:
                new = set(range(start, end)) - sacked
                assert res.newly_sacked_bytes == len(new) and res.discarded == 0
                sacked |= new
            else:
                assert res.newly_sacked_bytes == 0 and res.discarded == 1
        elif op == "ack":
            k = min(una + a, nxt)
            res = sb.on_ack(seq(k), now)
            assert res.acked_bytes == k - una
            assert res.previously_sacked_bytes == len({o for o in sacked if o < k})
            sacked = {o for o in sacked if o >= k}
            una = max(una, k)
        elif op == "retransmit":
            start, end = una + a, min(una + a + b, nxt)
            if start < end:
                sb.on_sent(seq(start), end - start, now, retransmit=True)
        elif op == "next":
            seg = sb.next_seg(seq(nxt))
            if seg is not None:
                off = seq_sub(seg[0], base)
                assert una <= off and off + seg[1] <= nxt and 0 < seg[1] <= sb.mss
                sb.on_sent(seg[0], seg[1], now, retransmit=True)
        elif op == "mss":
            exempt |= a > sb.mss
            sb.mss = a
        else:
            # Reneging: an ACK landed on SACKed data, so the head segment is SACKed.
            reneged = una < nxt and una in sacked
            assert sb.mark_lost() is reneged
            if reneged:
                sacked = set()
            exempt = True

        segs = list(sb.segments())
        assert sb.outstanding == nxt - una
        if segs:
            assert seq_sub(segs[0].seq, base) == una and seq_sub(segs[-1].end, base) == nxt
            assert all(x.end == y.seq for x, y in pairwise(segs))
        else:
            assert una == nxt
        size = {id(s): seq_sub(s.end, s.seq) for s in segs}
        for s in segs:
            lo = seq_sub(s.seq, base)
            covered = set(range(lo, lo + size[id(s)])) <= sacked
            assert s.sacked == covered
            assert not (s.sacked and s.lost)
        assert sb.sacked_bytes == len(sacked)
        assert sb.sacked_segments == sum(1 for s in segs if s.sacked)
        assert sb.lost_bytes == sum(size[id(s)] for s in segs if s.lost)
        assert sb.retrans_out == sum(size[id(s)] for s in segs if s.retrans)
        assert sb.pipe() == sb.outstanding - sb.sacked_bytes - sb.lost_bytes + sb.retrans_out
        assert sb.highest_sacked() == (seq(max(sacked) + 1) if sacked else None)
        above_segs = above_bytes = 0
        for s in reversed(segs):
            if s.sacked:
                above_segs += 1
                above_bytes += size[id(s)]
                continue
            rfc = above_segs >= 3 or above_bytes > 2 * sb.mss
            assert s.lost or not rfc, "IsLost holds but the segment is not marked"
            if not exempt:
                assert rfc or not s.lost, "marked lost without IsLost"
