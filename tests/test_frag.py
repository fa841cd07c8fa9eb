"""IPv4 fragmentation and reassembly (emunet.stack.frag), against Linux's ip_output.c and
ip_fragment.c behaviour.  Synchronous and exact: time is passed in."""

from __future__ import annotations

import random
from collections import Counter

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from emunet.stack.frag import (
    FRAG_TRUESIZE_OVERHEAD,
    Expired,
    Reassembler,
    ip_fragment,
    options_fragment,
)
from emunet.wire.addr import ip_from_str
from emunet.wire.ipv4 import IPPROTO_UDP, Ipv4

SRC = ip_from_str("10.0.1.2")
DST = ip_from_str("10.0.2.2")
HDR = Ipv4(src=SRC, dst=DST, proto=IPPROTO_UDP, id=0x1234, ttl=63)

# Record Route (not copied, 7 bytes, room for one address), Router Alert (copied), End.
RR = bytes([0x07, 7, 4, 0, 0, 0, 0])
RA = bytes([0x94, 4, 0, 0])
OPTIONS = RR + RA + b"\x00"
OPTIONS_LATER = b"\x01" * 7 + RA + b"\x00"

REASM_COUNTERS = ("IpReasmReqds", "IpReasmOKs", "IpReasmFails", "IpReasmTimeout")


def data(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def shape(frags: list[tuple[Ipv4, bytes]]) -> list[tuple[int, int, bool]]:
    """(offset in 8-byte units, data length, MF) of each fragment."""
    return [(h.frag_offset, len(p), h.mf) for h, p in frags]


def counts(counters: Counter) -> dict[str, int]:
    names = (*REASM_COUNTERS, "IpExtReasmOverlaps")
    return {name: counters[name] for name in names if counters[name]}


def frag(offset: int, payload: bytes, *, mf: bool, hdr: Ipv4 = HDR, **kw: object) -> Ipv4:
    """A fragment header at byte ``offset`` (multiple of 8)."""
    assert offset % 8 == 0
    return attrs.evolve(hdr, frag_offset=offset // 8, mf=mf, **kw)


# ------------------------------------------------------------------------------------------
# ip_fragment


def test_fragment_4000_for_1500_then_576() -> None:
    payload = data(4000)
    frags = ip_fragment(HDR, payload, 1500)
    assert shape(frags) == [(0, 1480, True), (185, 1480, True), (370, 1040, False)]
    assert b"".join(p for _, p in frags) == payload
    for h, p in frags:
        assert (h.id, h.src, h.dst, h.proto, h.ttl, h.tos) == (0x1234, SRC, DST, 17, 63, 0)
        assert h.total_length == 20 + len(p)
        assert not h.df
        assert len(h.build(p)) <= 1500

    again = [ip_fragment(h, p, 576) for h, p in frags]
    assert [shape(f) for f in again] == [
        [(0, 552, True), (69, 552, True), (138, 376, True)],
        [(185, 552, True), (254, 552, True), (323, 376, True)],
        [(370, 552, True), (439, 488, False)],
    ]
    flat = [f for group in again for f in group]
    assert b"".join(p for _, p in flat) == payload
    assert all(len(h.build(p)) <= 576 for h, p in flat)
    assert {h.id for h, _ in flat} == {0x1234}

    # Whatever order the twice-fragmented pieces arrive in, they make the datagram again.
    counters: Counter = Counter()
    r = Reassembler(counters)
    results = [r.add(h, p, 0.0) for h, p in reversed(flat)]
    assert results[:-1] == [None] * 7
    assert results[-1] == (HDR, payload)
    assert results[-1][0].total_length == 4020
    assert counts(counters) == {"IpReasmReqds": 8, "IpReasmOKs": 1}


def test_fragment_exact_boundaries() -> None:
    # 1480 bytes fit a 1500 MTU exactly: nothing to split, the datagram comes back unchanged.
    payload = data(1480)
    hdr = attrs.evolve(HDR, df=True)
    assert ip_fragment(hdr, payload, 1500) == [(hdr, payload)]
    # One byte more: a full first fragment and a 1-byte last one.
    assert shape(ip_fragment(HDR, data(1481), 1500)) == [(0, 1480, True), (185, 1, False)]
    # Room not a multiple of 8 (MTU 1499 -> 1479 -> 1472 per fragment).
    assert shape(ip_fragment(HDR, data(3000), 1499)) == [
        (0, 1472, True),
        (184, 1472, True),
        (368, 56, False),
    ]
    # ... but a rest that fits the unrounded room goes whole (ip_frag_next rounds only when
    # more data follows).
    assert shape(ip_fragment(HDR, data(1472 + 1479), 1499)) == [(0, 1472, True), (184, 1479, False)]
    assert shape(ip_fragment(HDR, data(1472 + 1480), 1499)) == [
        (0, 1472, True),
        (184, 1472, True),
        (368, 8, False),
    ]
    # The IPv4 minimum MTU carries 8 bytes per fragment behind a full 60-byte header.
    hdr60 = attrs.evolve(HDR, options=bytes([0x94, 4, 0, 0]) * 10)
    assert shape(ip_fragment(hdr60, data(20), 68)) == [(0, 8, True), (1, 8, True), (2, 4, False)]


def test_fragment_flags_df_evil_and_pmtu() -> None:
    # Linux rebuilds frag_off: DF and the reserved bit are not copied, MF/offset recomputed.
    hdr = attrs.evolve(HDR, df=True, evil=True)
    frags = ip_fragment(hdr, data(3000), 1500)
    assert [(h.df, h.evil, h.mf) for h, _ in frags] == [(False, False, True)] * 2 + [
        (False, False, False)
    ]
    # IPSKB_FRAG_PMTU (refragmenting a datagram reassembled from DF fragments): DF on all.
    frags = ip_fragment(hdr, data(3000), 1500, frag_pmtu=True)
    assert [h.df for h, _ in frags] == [True, True, True]


def test_fragment_too_small_mtu() -> None:
    with pytest.raises(ValueError):
        ip_fragment(HDR, data(100), 27)
    hdr = attrs.evolve(HDR, options=OPTIONS)  # 32-byte header
    with pytest.raises(ValueError):
        ip_fragment(hdr, data(100), 39)
    assert shape(ip_fragment(hdr, data(20), 40)) == [(0, 8, True), (1, 8, True), (2, 4, False)]


def test_fragment_offset_overflow() -> None:
    # A fragment at offset 65000 with 600 bytes more cannot be split at MTU 68: the last piece
    # would sit at offset 65592, beyond the 13-bit field.
    hdr = attrs.evolve(HDR, frag_offset=65000 // 8)
    with pytest.raises(ValueError):
        ip_fragment(hdr, data(600), 68)


def test_fragment_options_copied_rule() -> None:
    hdr = attrs.evolve(HDR, options=OPTIONS)
    assert hdr.header_len == 32
    payload = data(4000)
    frags = ip_fragment(hdr, payload, 1500)  # 1468 per fragment, rounded to 1464
    assert shape(frags) == [(0, 1464, True), (183, 1464, True), (366, 1072, False)]
    assert [h.options for h, _ in frags] == [OPTIONS, OPTIONS_LATER, OPTIONS_LATER]
    assert all(h.header_len == 32 for h, _ in frags)

    # Refragmenting the first fragment (offset 0): its later pieces lose RR too.
    first = ip_fragment(*frags[0], 576)
    assert [h.options for h, _ in first] == [OPTIONS, OPTIONS_LATER, OPTIONS_LATER]
    # Refragmenting a later fragment: options were already reduced and stay as they are.
    second = ip_fragment(*frags[1], 576)
    assert [h.options for h, _ in second] == [OPTIONS_LATER] * 3

    # Reassembly keeps the offset-0 fragment's header, all options included.
    r = Reassembler(Counter())
    out = [r.add(h, p, 0.0) for h, p in [*first, *second, frags[2]]]
    assert out[-1] == (hdr, payload)


def test_options_fragment_walk() -> None:
    assert options_fragment(b"") == b""
    # NOPs skipped, copied kept, not-copied blanked, stop at End.
    opts = b"\x01" + RA + RR + b"\x00" + bytes([0x07, 3, 4, 0])
    assert options_fragment(opts) == b"\x01" + RA + b"\x01" * 7 + b"\x00" + bytes([7, 3, 4, 0])
    # A malformed length stops the walk (the rest is left alone).
    assert options_fragment(bytes([0x07, 1, 0, 0])) == bytes([0x07, 1, 0, 0])
    assert options_fragment(bytes([0x07, 9, 0, 0])) == bytes([0x07, 9, 0, 0])
    assert options_fragment(RR + b"\x01") == b"\x01" * 8


# ------------------------------------------------------------------------------------------
# Reassembly


def fragments_of(size: int = 4000, mtu: int = 1500, hdr: Ipv4 = HDR) -> list[tuple[Ipv4, bytes]]:
    return ip_fragment(hdr, data(size), mtu)


def test_reassemble_in_order() -> None:
    counters: Counter = Counter()
    r = Reassembler(counters)
    frags = fragments_of()
    assert r.add(*frags[0], 1.0) is None
    assert (r.queues, r.mem) == (1, 1500 + FRAG_TRUESIZE_OVERHEAD)
    assert r.poll_at() == 31.0
    assert r.add(*frags[1], 1.5) is None
    assert r.mem == 2 * (1500 + FRAG_TRUESIZE_OVERHEAD)
    hdr, payload = r.add(*frags[2], 2.0)
    assert (hdr, payload) == (HDR, data(4000))
    assert (hdr.mf, hdr.frag_offset, hdr.df, hdr.total_length) == (False, 0, False, 4020)
    assert (r.queues, r.mem, r.poll_at()) == (0, 0, None)
    assert r.expire(100.0) == []
    assert counts(counters) == {"IpReasmReqds": 3, "IpReasmOKs": 1}


def test_reassemble_reversed_and_interleaved() -> None:
    counters: Counter = Counter()
    r = Reassembler(counters)
    a = fragments_of()
    b = fragments_of(hdr=attrs.evolve(HDR, id=7))
    c = fragments_of(hdr=attrs.evolve(HDR, proto=6))  # same id, other protocol: another queue
    out = []
    for trio_ in zip(reversed(a), b, c, strict=True):
        for h, p in trio_:
            out.append(r.add(h, p, 0.0))
    done = [x for x in out if x is not None]
    assert [h for h, _ in done] == [HDR, attrs.evolve(HDR, id=7), attrs.evolve(HDR, proto=6)]
    assert all(p == data(4000) for _, p in done)
    assert counts(counters) == {"IpReasmReqds": 9, "IpReasmOKs": 3}
    assert (r.queues, r.mem) == (0, 0)


def test_duplicates_dropped_alone() -> None:
    counters: Counter = Counter()
    r = Reassembler(counters)
    frags = fragments_of(size=4000, mtu=576)  # 552 * 7 + 136
    assert len(frags) == 8
    for h, p in frags[:4]:
        assert r.add(h, p, 0.0) is None
    mem = r.mem
    # An exact duplicate, and a smaller fragment lying wholly inside the run held: dropped,
    # nothing counted but IpReasmReqds, nothing charged.
    assert r.add(*frags[2], 0.1) is None
    inside = frag(600, data(4000)[600:1600], mf=True)
    assert r.add(inside, data(4000)[600:1600], 0.1) is None
    assert (r.mem, r.queues) == (mem, 1)
    assert counts(counters) == {"IpReasmReqds": 6}
    for h, p in frags[4:]:
        result = r.add(h, p, 0.2)
    assert result == (HDR, data(4000))
    assert counts(counters) == {"IpReasmReqds": 10, "IpReasmOKs": 1}


def test_partial_overlap_kills_queue() -> None:
    counters: Counter = Counter()
    r = Reassembler(counters)
    payload = data(4000)
    frags = fragments_of()
    assert r.add(*frags[0], 0.0) is None
    # Starts inside the held run and goes beyond it (the tail fast path).
    bad = frag(1472, payload[1472:1600], mf=True)
    assert r.add(bad, payload[1472:1600], 0.5) is None
    assert (r.queues, r.mem, r.poll_at()) == (0, 0, None)
    assert counts(counters) == {"IpReasmReqds": 2, "IpReasmFails": 1, "IpExtReasmOverlaps": 1}
    assert r.expire(31.0) == []
    # The rest now opens a new queue that never completes (offset 0 is gone).
    assert r.add(*frags[1], 1.0) is None
    assert r.add(*frags[2], 1.0) is None
    assert r.queues == 1
    assert r.expire(31.0) == [Expired((SRC, DST, 0x1234, 17), None)]
    assert counts(counters) == {
        "IpReasmReqds": 4,
        "IpReasmFails": 2,
        "IpExtReasmOverlaps": 1,
        "IpReasmTimeout": 1,
    }


def test_overlap_inside_a_hole() -> None:
    # Held: [0,1480) and [2960,4000); a fragment [1400,2000) found by the binary search
    # overlaps the first run partially.
    counters: Counter = Counter()
    r = Reassembler(counters)
    payload = data(4000)
    frags = fragments_of()
    r.add(*frags[2], 0.0)
    r.add(*frags[0], 0.0)
    assert r.add(frag(1400, payload[1400:2000], mf=True), payload[1400:2000], 0.0) is None
    assert counts(counters) == {"IpReasmReqds": 3, "IpReasmFails": 1, "IpExtReasmOverlaps": 1}
    # Same with a fragment that starts in a hole and runs into the next run.
    r.add(*frags[2], 0.0)
    r.add(*frags[0], 0.0)
    assert r.add(frag(1480, payload[1480:3000], mf=True), payload[1480:3000], 0.0) is None
    assert counters["IpExtReasmOverlaps"] == 2
    assert r.queues == 0


def test_covering_two_runs_is_an_overlap_as_in_linux() -> None:
    payload = data(4000)
    f0, f1, f2 = fragments_of()
    # In-order arrival builds one run [0,2960): a fragment covering [1000,2000) is a duplicate.
    counters: Counter = Counter()
    r = Reassembler(counters)
    r.add(*f0, 0.0)
    r.add(*f1, 0.0)
    assert r.add(frag(1000, payload[1000:2000], mf=True), payload[1000:2000], 0.0) is None
    assert r.queues == 1
    assert counts(counters) == {"IpReasmReqds": 3}
    # Out of order: [2960,4000) first, then [0,1480) and [1480,2000) fill in by binary search,
    # each a run of its own.  A fragment covering [1000,1600) spans two runs: Linux calls that
    # an overlap although every byte of it is held.
    counters = Counter()
    r = Reassembler(counters)
    r.add(*f2, 0.0)
    r.add(*f0, 0.0)
    r.add(frag(1480, payload[1480:2000], mf=True), payload[1480:2000], 0.0)
    assert r.queues == 1
    # Inside one run it is still a duplicate.
    assert r.add(frag(8, payload[8:800], mf=True), payload[8:800], 0.0) is None
    assert r.queues == 1
    assert r.add(frag(1000, payload[1000:1600], mf=True), payload[1000:1600], 0.0) is None
    assert (r.queues, r.mem) == (0, 0)
    assert counts(counters) == {"IpReasmReqds": 5, "IpReasmFails": 1, "IpExtReasmOverlaps": 1}


def test_second_different_last_fragment_kills() -> None:
    counters: Counter = Counter()
    r = Reassembler(counters)
    f0, f1, f2 = fragments_of()
    r.add(*f2, 0.0)  # last: the datagram is 4000 bytes
    short_last = frag(2960, data(4000)[2960:3800], mf=False)
    assert r.add(short_last, data(4000)[2960:3800], 0.0) is None
    assert r.queues == 0
    assert counts(counters) == {"IpReasmReqds": 2, "IpReasmFails": 1}
    # A last fragment ending before data already held is as bad.
    r.add(*f1, 0.0)
    assert r.add(frag(1480, data(100), mf=False), data(100), 0.0) is None
    assert r.queues == 0
    # And a non-last fragment beyond the known end.
    r.add(*f2, 0.0)
    assert r.add(frag(4000, data(16), mf=True), data(16), 0.0) is None
    assert r.queues == 0
    assert counts(counters) == {"IpReasmReqds": 6, "IpReasmFails": 3}
    # The same last fragment twice is only a duplicate.
    r.add(*f2, 0.0)
    r.add(*f2, 0.0)
    assert r.queues == 1
    r.add(*f0, 0.0)
    assert r.add(*f1, 0.0) == (HDR, data(4000))


def test_zero_length_fragment_kills() -> None:
    counters: Counter = Counter()
    r = Reassembler(counters)
    f0, _, _ = fragments_of()
    r.add(*f0, 0.0)
    assert r.add(frag(1480, b"", mf=True), b"", 0.0) is None
    assert (r.queues, r.mem) == (0, 0)
    # A zero-length last fragment as well, even on a queue of its own.
    assert r.add(frag(1480, b"", mf=False), b"", 0.0) is None
    assert r.queues == 0
    assert counts(counters) == {"IpReasmReqds": 3, "IpReasmFails": 2}


def test_non_last_fragment_not_multiple_of_8_is_trimmed() -> None:
    # Linux rounds a non-last fragment's end down to 8 bytes and keeps the rest.
    counters: Counter = Counter()
    r = Reassembler(counters)
    payload = data(24)
    assert r.add(frag(0, payload[:13], mf=True), payload[:13], 0.0) is None
    assert r.mem == 20 + 13 + FRAG_TRUESIZE_OVERHEAD  # charged as received
    assert r.add(frag(8, payload[8:], mf=False), payload[8:], 0.0) == (HDR, payload)
    # Under 8 bytes nothing is left: the queue dies.
    assert r.add(frag(0, payload[:5], mf=True), payload[:5], 0.0) is None
    assert r.queues == 0
    assert counts(counters) == {"IpReasmReqds": 3, "IpReasmOKs": 1, "IpReasmFails": 1}


def test_timeout_exactly_30s_with_and_without_first() -> None:
    counters: Counter = Counter()
    r = Reassembler(counters)
    f0, f1, f2 = fragments_of()
    other = attrs.evolve(HDR, id=99)
    g0, g1, _ = fragments_of(hdr=other)
    r.add(*f1, 10.0)  # queue A: no offset-0 fragment
    r.add(*g0, 12.5)  # queue B: offset 0 in
    r.add(*f2, 39.0)  # arrivals never extend the timer
    r.add(*g1, 39.5)
    assert r.poll_at() == 40.0
    assert r.expire(39.999999) == []
    assert r.expire(40.0) == [Expired((SRC, DST, 0x1234, 17), None)]
    assert r.poll_at() == 42.5
    assert r.expire(42.4) == []
    assert r.expire(42.5) == [Expired((SRC, DST, 99, 17), g0)]
    assert (r.poll_at(), r.queues, r.mem) == (None, 0, 0)
    assert counts(counters) == {"IpReasmReqds": 4, "IpReasmFails": 2, "IpReasmTimeout": 2}
    assert g0[0].frag_offset == 0 and g0[1] == data(4000)[:1480]  # what ICMP quotes
    # After expiry the key starts afresh.
    r.add(*f0, 50.0)
    r.add(*f1, 50.0)
    assert r.add(*f2, 50.0) == (HDR, data(4000))


def test_add_expires_stale_queue_first() -> None:
    # A fragment for a queue whose time has come opens a new queue; the old one waits,
    # already counted, for expire().
    counters: Counter = Counter()
    r = Reassembler(counters)
    f0, f1, f2 = fragments_of()
    r.add(*f0, 0.0)
    r.add(*f1, 30.0)
    assert counts(counters) == {"IpReasmReqds": 2, "IpReasmFails": 1, "IpReasmTimeout": 1}
    assert r.poll_at() == 30.0
    assert r.expire(30.0) == [Expired((SRC, DST, 0x1234, 17), f0)]
    assert r.poll_at() == 60.0
    r.add(*f0, 31.0)
    assert r.add(*f2, 31.0) == (HDR, data(4000))


def test_memory_limit_flood_then_recovery() -> None:
    counters: Counter = Counter()
    high = 1024 * 1024
    r = Reassembler(counters, high_thresh=high)
    one = 20 + 1480 + FRAG_TRUESIZE_OVERHEAD
    chunk = data(1480)
    peak = 0
    for i in range(10_000):
        # First fragments of 10,000 different datagrams that never complete.
        h = Ipv4(src=SRC + (i >> 16), dst=DST, proto=IPPROTO_UDP, id=i & 0xFFFF, mf=True)
        assert r.add(h, chunk, i * 0.001) is None
        peak = max(peak, r.mem)
    assert high < peak <= high + one
    held = high // one + 1  # fragments are taken while mem <= high_thresh
    assert (r.queues, r.mem) == (held, held * one)
    assert counts(counters) == {"IpReasmReqds": 10_000, "IpReasmFails": 10_000 - held}
    # Every fragment is refused while over the limit, also for a queue already held.
    first_key = Ipv4(src=SRC, dst=DST, proto=IPPROTO_UDP, id=0, frag_offset=185)
    assert r.add(first_key, data(100), 10.0) is None
    assert counters["IpReasmFails"] == 10_000 - held + 1
    # Legitimate traffic fails until the flood times out ...
    f0, f1, f2 = fragments_of()
    assert [r.add(h, p, 20.0) for h, p in (f0, f1, f2)] == [None] * 3
    expired = r.expire(40.0)
    assert len(expired) == held
    assert all(e.first is not None for e in expired)
    assert (r.queues, r.mem, r.poll_at()) == (0, 0, None)
    assert counters["IpReasmTimeout"] == held
    # ... then reassembles.
    assert [r.add(h, p, 41.0) for h, p in (f0, f1, f2)] == [None, None, (HDR, data(4000))]


def test_oversize_datagram_fails() -> None:
    counters: Counter = Counter()
    r = Reassembler(counters)
    # 20 + 65515 = 65535: the largest datagram there is.
    frags = ip_fragment(HDR, data(65515), 9000)
    results = [r.add(h, p, 0.0) for h, p in frags]
    assert results[-1] == (HDR, data(65515))
    assert results[-1][0].total_length == 65535
    # One byte more cannot be a datagram: IpReasmFails at completion.
    frags = ip_fragment(attrs.evolve(HDR, id=1), data(65516), 9000)
    assert [r.add(h, p, 0.0) for h, p in frags] == [None] * len(frags)
    assert (r.queues, r.mem) == (0, 0)
    assert counts(counters) == {"IpReasmReqds": 16, "IpReasmOKs": 1, "IpReasmFails": 1}


def test_reassembled_flags_df_and_ecn() -> None:
    # DF on the largest fragment -> DF on the datagram (IPSKB_FRAG_PMTU in Linux).
    r = Reassembler(Counter())
    frags = ip_fragment(HDR, data(3000), 1500, frag_pmtu=True)
    assert [r.add(h, p, 0.0) for h, p in frags][-1][0].df is True
    # ECN: CE on one fragment and ECT(0) on the rest -> CE on the datagram.
    counters: Counter = Counter()
    r = Reassembler(counters)
    frags = ip_fragment(attrs.evolve(HDR, tos=0x02), data(3000), 1500)
    frags[1] = (attrs.evolve(frags[1][0], tos=0x03), frags[1][1])
    out = [r.add(h, p, 0.0) for h, p in frags][-1]
    assert out[0].tos == 0x03
    # Not-ECT mixed with CE is dropped (RFC 3168 5.3).
    frags = ip_fragment(HDR, data(3000), 1500)
    frags[2] = (attrs.evolve(frags[2][0], tos=0x03), frags[2][1])
    assert [r.add(h, p, 0.0) for h, p in frags] == [None] * 3
    assert counts(counters) == {"IpReasmReqds": 6, "IpReasmOKs": 1, "IpReasmFails": 1}
    assert (r.queues, r.mem) == (0, 0)


# ------------------------------------------------------------------------------------------
# Properties


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=2000) | st.integers(min_value=2000, max_value=20_000),
    mtu=st.integers(min_value=68, max_value=1500),
    seed=st.integers(min_value=0, max_value=2**32),
    dup_picks=st.lists(st.integers(min_value=0, max_value=10_000), max_size=10),
)
def test_shuffled_with_duplicates_reassembles(
    size: int, mtu: int, seed: int, dup_picks: list[int]
) -> None:
    payload = data(size, seed)
    frags = ip_fragment(HDR, payload, mtu)
    order = list(frags)
    random.Random(seed).shuffle(order)
    # Duplicates of fragments already sent, placed before the final fragment.
    body = order[:-1]
    for pick in dup_picks:
        if body:
            pos = pick % len(body)
            body.insert(pos + 1, body[pick % (pos + 1)])
    counters: Counter = Counter()
    r = Reassembler(counters)
    results = [r.add(h, p, 0.0) for h, p in [*body, order[-1]]]
    assert results[:-1] == [None] * len(body)
    assert results[-1] == (HDR, payload)
    assert (r.queues, r.mem) == (0, 0)
    assert counts(counters) == {"IpReasmReqds": len(body) + 1, "IpReasmOKs": 1}


_OPTION_SETS = [b"", OPTIONS, RA, RR + b"\x01", bytes([0x94, 4, 0, 0]) * 10]


@settings(max_examples=80, deadline=None)
@example(size=65_535, mtu=68, options=_OPTION_SETS[-1], tos=3, ident=0xFFFF, seed=1)
@example(size=65_535, mtu=9000, options=b"", tos=0, ident=0, seed=2)
@given(
    size=st.integers(min_value=0, max_value=3000) | st.integers(min_value=3000, max_value=65_535),
    mtu=st.integers(min_value=68, max_value=9000),
    options=st.sampled_from(_OPTION_SETS),
    tos=st.integers(min_value=0, max_value=255),
    ident=st.integers(min_value=0, max_value=0xFFFF),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_round_trip(size: int, mtu: int, options: bytes, tos: int, ident: int, seed: int) -> None:
    hdr = Ipv4(src=SRC, dst=DST, proto=IPPROTO_UDP, id=ident, tos=tos, options=options)
    size = min(size, 65_535 - hdr.header_len)
    payload = data(size, seed)
    frags = ip_fragment(hdr, payload, mtu)
    # Geometry: every piece fits, all but the last carry a multiple of 8, offsets are contiguous.
    room = (mtu - hdr.header_len) & ~7
    position = 0
    for i, (h, p) in enumerate(frags):
        assert h.header_len + len(p) <= mtu
        assert h.frag_offset * 8 == position
        assert h.mf == (i < len(frags) - 1)
        assert h.options == (options if i == 0 else options_fragment(options))
        if i < len(frags) - 1:
            assert len(p) == room
        elif len(frags) > 1:
            assert 0 < len(p) <= mtu - hdr.header_len
        position += len(p)
    assert position == size
    # Each piece survives the wire.
    wire = [Ipv4.parse(h.build(p)) for h, p in frags]
    assert wire == frags
    if len(frags) == 1:
        assert frags == [(hdr, payload)]  # it fits: nothing to split, nothing to reassemble
        return
    # 8-byte fragments of a 64 KiB datagram cost more than the default 4 MiB: lift the limit.
    r = Reassembler(Counter(), high_thresh=64 * 1024 * 1024)
    order = list(wire)
    random.Random(seed).shuffle(order)
    results = [r.add(h, p, 0.0) for h, p in order]
    assert results[-1] == (hdr, payload)
    assert results[:-1] == [None] * (len(order) - 1)
