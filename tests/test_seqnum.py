"""emunet.wire.seqnum: wrap-safe sequence-number arithmetic (RFC 9293 section 3.4)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from emunet.wire.seqnum import (
    seq_add,
    seq_between,
    seq_ge,
    seq_gt,
    seq_le,
    seq_lt,
    seq_max,
    seq_min,
    seq_sub,
)

TOP = 2**32 - 1
HALF = 2**31


def _s32(x: int) -> int:
    """Reference: the value as a signed 32-bit integer, as C's (s32) cast in Linux's before()."""
    x &= 0xFFFFFFFF
    return x - 2**32 if x >= 2**31 else x


def ref_lt(a: int, b: int) -> bool:
    return _s32(a - b) < 0


# Values near the wrap, near the 2**31 boundary, and anywhere.
edges = st.sampled_from([0, 1, 2, TOP, TOP - 1, HALF - 1, HALF, HALF + 1, 12345, 0xDEADBEEF])
seqs = st.one_of(edges, st.integers(0, TOP))
offsets = st.integers(-(2**31) + 1, 2**31 - 1)


# --- explicit values ------------------------------------------------------------------------


def test_wrap_around_zero() -> None:
    assert seq_lt(TOP, 0)
    assert seq_gt(0, TOP)
    assert seq_lt(TOP - 10, 5)
    assert seq_gt(5, TOP - 10)
    assert not seq_lt(0, TOP)
    assert seq_le(TOP, 0)
    assert seq_ge(0, TOP)
    assert seq_add(TOP, 1) == 0
    assert seq_add(TOP, 11) == 10
    assert seq_add(0, -1) == TOP
    assert seq_sub(0, TOP) == 1
    assert seq_sub(TOP, 0) == -1
    assert seq_sub(5, TOP - 10) == 16


def test_equal_values() -> None:
    for x in (0, 1, HALF, TOP):
        assert not seq_lt(x, x)
        assert not seq_gt(x, x)
        assert seq_le(x, x)
        assert seq_ge(x, x)
        assert seq_sub(x, x) == 0
        assert seq_max(x, x) == x == seq_min(x, x)


def test_two_to_the_31_boundary() -> None:
    # Just under half the space apart: the order is the plain one.
    assert seq_lt(0, HALF - 1)
    assert not seq_lt(HALF - 1, 0)
    assert seq_sub(HALF - 1, 0) == HALF - 1
    # Just over half the space: the order flips, the later value is "before".
    assert seq_lt(HALF + 1, 0)
    assert not seq_lt(0, HALF + 1)
    assert seq_sub(HALF + 1, 0) == -(HALF - 1)
    # Exactly 2**31 apart the signed difference is -2**31 both ways, so each is "before" the
    # other: Linux's before() behaves the same, and TCP keeps windows below 2**30 to avoid it.
    assert seq_lt(0, HALF)
    assert seq_lt(HALF, 0)
    assert seq_lt(TOP, HALF - 1)
    assert seq_lt(HALF - 1, TOP)
    assert seq_sub(HALF, 0) == -HALF
    assert seq_sub(0, HALF) == -HALF


def test_between() -> None:
    assert seq_between(10, 10, 20)
    assert seq_between(10, 20, 20)
    assert seq_between(10, 15, 20)
    assert not seq_between(10, 9, 20)
    assert not seq_between(10, 21, 20)
    # A range across the wrap.
    assert seq_between(TOP - 5, TOP, 5)
    assert seq_between(TOP - 5, 0, 5)
    assert seq_between(TOP - 5, 5, 5)
    assert not seq_between(TOP - 5, 6, 5)
    assert not seq_between(TOP - 5, TOP - 6, 5)
    # low == high: only that value.
    assert seq_between(7, 7, 7)
    assert not seq_between(7, 8, 7)


def test_max_min_across_the_wrap() -> None:
    assert seq_max(TOP, 3) == 3
    assert seq_min(TOP, 3) == TOP
    assert seq_max(3, TOP) == 3
    assert seq_min(3, TOP) == TOP
    assert seq_max(HALF - 1, 0) == HALF - 1
    assert seq_max(HALF + 1, 0) == 0


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(a=seqs, b=seqs)
def test_comparisons_match_signed_difference(a: int, b: int) -> None:
    assert seq_lt(a, b) is ref_lt(a, b)
    assert seq_gt(a, b) is ref_lt(b, a)
    assert seq_le(a, b) is (a == b or ref_lt(a, b))
    assert seq_ge(a, b) is (a == b or ref_lt(b, a))
    assert seq_sub(a, b) == _s32(a - b)


@settings(max_examples=300, deadline=None)
@given(a=seqs, b=seqs)
def test_trichotomy_away_from_half(a: int, b: int) -> None:
    if (a - b) & 0xFFFFFFFF == HALF:
        return  # the one distance where both orders hold (see test_two_to_the_31_boundary)
    assert [seq_lt(a, b), a == b, seq_gt(a, b)].count(True) == 1
    if seq_lt(a, b):
        assert (seq_max(a, b), seq_min(a, b)) == (b, a)
    else:
        assert (seq_max(a, b), seq_min(a, b)) == (a, b)


@settings(max_examples=300, deadline=None)
@given(a=seqs, n=offsets)
def test_add_then_compare(a: int, n: int) -> None:
    b = seq_add(a, n)
    assert 0 <= b <= TOP
    assert seq_sub(b, a) == n
    assert seq_lt(a, b) is (n > 0)
    assert seq_gt(a, b) is (n < 0)
    assert seq_add(b, -n) == a


@settings(max_examples=300, deadline=None)
@given(low=seqs, span=st.integers(0, TOP), x=seqs)
def test_between_matches_distance(low: int, span: int, x: int) -> None:
    high = seq_add(low, span)
    expected = ((x - low) & 0xFFFFFFFF) <= span
    assert seq_between(low, x, high) is expected
    assert seq_between(low, low, high)
    assert seq_between(low, high, high)
