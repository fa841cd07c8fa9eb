"""The receiver's out-of-order queue and the sender's SACK scoreboard.

Behaviour follows RFC 2018 (SACK, section 4: which blocks a receiver reports and in what order),
RFC 2883 (D-SACK), RFC 6675 (conservative SACK loss recovery: IsLost, SetPipe, NextSeg with
DupThresh 3) and, for the details the RFCs leave open, Linux 6.x net/ipv4/tcp_input.c:
``tcp_data_queue_ofo``, ``tcp_ofo_queue``, ``tcp_sack_new_ofo_skb``, ``tcp_sack_remove``,
``tcp_prune_ofo_queue`` (receiver) and ``tcp_sacktag_write_queue``, ``tcp_sacktag_one``,
``tcp_check_dsack``, ``tcp_is_sackblock_valid``, ``tcp_clean_rtx_queue``,
``tcp_timeout_mark_lost`` (sender).

Plain code: no trio, time is the caller's ``now`` (seconds).  Every sequence number that crosses
the API is a 32-bit TCP sequence number; inside, both classes unwrap them into unbounded Python
ints ("positions", congruent to the sequence number mod 2**32) with emunet.wire.seqnum, so that
sorting and bisecting is plain integer work and wrap-around at 2**32 costs nothing.

Notes for conn.py (T1) -- what this module adds to, or decides beyond, the brief's API
-----------------------------------------------------------------------------------------
OfoQueue(max_sacks=4)
    ``add(seq, data) -> bool``: data already held is dropped, only the new bytes are kept (the
    held bytes never overlap).  After every ``add`` the attribute ``last_dsack`` is the
    (start, end) of the first duplicated range of that segment (what Linux's tcp_dsack_set /
    tcp_dsack_extend would report in a D-SACK block), or None.  ``add`` does not know rcv_nxt:
    call it only for segments beyond rcv_nxt (as tcp_data_queue_ofo), or call
    ``pop_in_order(rcv_nxt)`` right after, which drops anything below rcv_nxt.
    ``pop_in_order(rcv_nxt)`` returns the bytes contiguous at rcv_nxt and forgets the SACK
    blocks now covered (tcp_sack_remove); call it whenever rcv_nxt advances.
    The SACK blocks are Linux's ``selective_acks`` list: at most ``max_sacks`` (TCP_NUM_SACKS,
    4) remembered, updated per received segment as tcp_sack_new_ofo_skb does (the block the
    segment extends moves to the front and absorbs neighbours; otherwise a new block goes to
    the front and the oldest falls off).  ``sack_blocks(rcv_nxt, max_blocks)`` returns the
    first ``max_blocks`` of them (pass 3 with timestamps, 4 without, one fewer when a D-SACK
    block goes first).  ``prune`` (tcp_prune_ofo_queue) resets the SACK list.
    ``__len__`` is the number of segments held, ``nbytes`` the payload bytes held,
    ``truesize`` what they are charged against the receive buffer (``ofo_truesize``);
    ``ranges()`` lists the held (start, end) ranges.

Scoreboard(mss=536, *, dupthresh=3, snd_una=None)
    Byte accounting (RFC 6675); ``mss`` (SMSS) and ``dupthresh`` are settable attributes
    (raise dupthresh like Linux's tp->reordering if you model reordering).
    ``on_sent``: the part of [seq, seq+length) at or beyond the highest byte already sent is new
    data (it must start exactly there); any part below it is a retransmission whatever the
    ``retransmit`` flag says (Karn: never an RTT sample again).  SYN/FIN may be tracked or not;
    an ACK beyond the tracked data simply empties the board.
    ``on_ack(snd_una, now) -> AckResult``: ``rtt_sample`` as the brief says (newest
    never-retransmitted fully-acked segment that had not been SACKed before).  Linux instead
    takes the oldest such segment and no sample at all when the ACK also covers retransmitted
    data: ``retransmitted_acked`` lets the caller apply that rule.  Extra fields:
    ``previously_sacked_bytes`` (delivered = acked - previously_sacked + newly sacked).
    ``on_sack(blocks, snd_una, snd_nxt) -> SackResult``: pass the ACK field of the segment as
    snd_una (it decides D-SACK, tcp_check_dsack); validity uses the larger of it and the board's
    own snd_una (tcp_is_sackblock_valid: a non-D-SACK block must start after snd_una and end at
    or before snd_nxt).  Call it before or after ``on_ack`` for the same segment, either works.
    Extra fields: ``newly_sacked_segments``, ``dsack_block`` (the first block, when D-SACK),
    ``reorder_seq`` (lowest newly SACKed never-retransmitted seq below the previous highest
    SACK: Linux's reordering signal, TcpExtTCPSACKReorder), ``newly_lost_bytes``,
    ``discarded`` (invalid non-D-SACK blocks, TcpExtTCPSACKDiscard).  Whether a D-SACK is
    "dubious" (more D-SACKed segments than total retransmissions) is the connection's call.
    Loss marking is eager and sticky, as Linux's TCPCB_LOST: after every on_sack each
    un-SACKed segment with at least ``dupthresh`` SACKed segments, or more than
    (dupthresh - 1) * mss SACKed bytes, above it is marked lost (RFC 6675 IsLost, counting
    SACKed segments as Linux and the RACK DupThresh rule do); the mark stays until the segment
    is SACKed or acked.  So ``lost_bytes > 0`` (or ``is_lost(snd_una)``) is RFC 6675's
    "IsLost(HighACK + 1)" test for entering recovery.
    ``pipe()`` = outstanding - sacked - lost + retrans_out (Linux tcp_packets_in_flight in
    bytes).  It is RFC 6675 SetPipe except that a retransmitted octet counts only while its
    retransmission is assumed in flight (RFC 6675 counts every un-SACKed octet <= HighRxt).
    ``retrans_out`` counts retransmitted bytes still assumed in flight: cleared when acked,
    when SACKed while marked lost, when D-SACKed, and by ``mark_lost``.
    ``next_seg(snd_nxt, *, unsent=0, wnd_end=None, rule3=True, rescue_point=None)``:
    RFC 6675 NextSeg, returns (seq, length) with length <= mss, or None.
    (1) the first segment marked lost, not SACKed and not already retransmitted (HighRxt is
    kept per segment, as Linux's TCPCB_SACKED_RETRANS; after mark_lost every lost segment
    qualifies even above the highest SACK); (2) new data at snd_nxt when ``unsent`` > 0 and
    ``wnd_end`` (snd_una + snd_wnd, None = no limit) allows; (3) if ``rule3``, the first
    un-SACKed, not lost, not retransmitted segment below the highest SACK; (4) only when
    ``rescue_point`` (RecoveryPoint) is given: one rescue retransmission ending at the highest
    un-SACKed byte, once until snd_una reaches the rescue point -- this rule records that it
    fired, everything else in next_seg is a pure query.  A returned range may span several
    consecutive eligible segments (Linux tcp_retrans_try_collapse).  Send it and report it with
    ``on_sent(seq, length, now, retransmit=True)``.
    ``mark_lost(up_to=None) -> bool`` (RTO, tcp_timeout_mark_lost): every un-SACKed segment
    starting below ``up_to`` (default: all) is marked lost and its retransmission forgotten, so
    pipe() drops to 0 (or to what lies above ``up_to``); returns True when the receiver reneged (the
    first segment was SACKed: then all SACK marks are cleared first, TcpExtTCPSACKReneging).
    ``highest_sacked()`` is the end (one past the highest octet) of the highest SACKed range.
    Other read-only helpers: ``outstanding``, ``snd_una``, ``snd_nxt``, ``sacked_segments``,
    ``__len__`` (segments tracked), ``segments()`` (for tests and ``ss``-like output).
Not modelled: RACK-TLP (Linux's default loss detection), lost-retransmission detection (a lost
retransmission waits for the RTO, as in RFC 6675), Linux's refusal to split a one-MSS skb on a
partial SACK (here segments are split at SACK block edges, which is exact per octet).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator

import attrs

from ...wire.seqnum import MASK, seq_le, seq_lt, seq_sub

TCP_NUM_SACKS = 4  # include/net/tcp.h: SACK blocks a Linux receiver remembers
# SKB_TRUESIZE(0) on x86_64: SKB_DATA_ALIGN(sizeof(struct sk_buff)) 256 plus
# SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) 320 -- what every held skb costs beyond its data.
SKB_TRUESIZE_OVERHEAD = 576


def ofo_truesize(nbytes: int) -> int:
    """What a held out-of-order segment of ``nbytes`` is charged against the receive buffer:
    twice its payload (the buffer model of conn.py, tcp_adv_win_scale 1) but never less than
    the payload plus one skb's overhead, so that tiny segments cost what Linux charges them."""
    return max(2 * nbytes, nbytes + SKB_TRUESIZE_OVERHEAD)


DUPTHRESH = 3  # RFC 6675 DupThresh (Linux TCP_FASTRETRANS_THRESH, sysctl tcp_reordering)

# ============================================================================================
# Receiver: the out-of-order queue
# ============================================================================================


class OfoQueue:
    """Out-of-order data waiting for a hole to fill (tp->out_of_order_queue) and the SACK
    blocks that describe it (tp->selective_acks).

    Held data is kept as non-overlapping segments sorted by position: ``_starts[i]`` and
    ``_data[i]``.  New data is cut to fit the holes, so every byte is held at most once (a pop
    trims only a segment that rcv_nxt overtook on its own).
    """

    def __init__(self, max_sacks: int = TCP_NUM_SACKS) -> None:
        if max_sacks < 1:
            raise ValueError("max_sacks must be at least 1")
        self.max_sacks = max_sacks
        self._starts: list[int] = []
        self._data: list[bytes] = []
        self._sacks: list[list[int]] = []  # [start, end] positions, most recent first
        self._ref: int | None = None  # a recent position, to unwrap sequence numbers
        self.nbytes = 0
        self.truesize = 0  # the sum of ofo_truesize() of the held segments (sk_rmem_alloc)
        self.last_dsack: tuple[int, int] | None = None

    # ---- helpers ---------------------------------------------------------------------------

    def _pos(self, seq: int) -> int:
        """Unwrap ``seq`` next to the last position seen (anchor afresh when empty)."""
        ref = self._ref
        if ref is None or not self._starts:
            pos = seq & MASK  # nothing held, so no SACK block either: no position to keep
        else:
            pos = ref + seq_sub(seq, ref & MASK)
        self._ref = pos
        return pos

    def __len__(self) -> int:
        return len(self._starts)

    def ranges(self) -> list[tuple[int, int]]:
        """The held data as contiguous (start, end) sequence ranges, in sequence order."""
        out: list[list[int]] = []
        for start, data in zip(self._starts, self._data, strict=True):
            end = start + len(data)
            if out and out[-1][1] == start:
                out[-1][1] = end
            else:
                out.append([start, end])
        return [(s & MASK, e & MASK) for s, e in out]

    def clear(self) -> None:
        self._starts.clear()
        self._data.clear()
        self._sacks.clear()
        self.nbytes = 0
        self.truesize = 0
        self.last_dsack = None

    # ---- receive ---------------------------------------------------------------------------

    def add(self, seq: int, data: bytes) -> bool:
        """Queue a segment (tcp_data_queue_ofo); False when it brought no new byte."""
        self.last_dsack = None
        if not data:
            return False
        start = self._pos(seq)
        end = start + len(data)
        starts, held = self._starts, self._data

        # Walk the held segments that meet [start, end): the holes between them get new data,
        # the covered parts are duplicates.
        i = bisect_right(starts, start) - 1
        if i < 0 or starts[i] + len(held[i]) <= start:
            i += 1
        pieces: list[tuple[int, int]] = []  # new (from, to) positions
        dup: list[int] | None = None  # the first duplicated range
        cur = start
        j = i
        while j < len(starts) and starts[j] < end:
            s = starts[j]
            e = s + len(held[j])
            if s > cur:
                pieces.append((cur, s))
            lo, hi = max(s, cur), min(e, end)
            if dup is None:
                dup = [lo, hi]
            elif dup[1] == lo:  # tcp_dsack_extend only extends an adjacent range
                dup[1] = hi
            cur = max(cur, e)
            j += 1
        if cur < end:
            pieces.append((cur, end))
        if dup is not None:
            self.last_dsack = (dup[0] & MASK, dup[1] & MASK)

        if pieces:
            if len(pieces) == 1 and pieces[0] == (start, end):
                new = [(start, bytes(data))]
            else:
                view = memoryview(data)
                new = [(a, bytes(view[a - start : b - start])) for a, b in pieces]
            if j > i:
                # The new pieces fill the holes between held segments i..j-1: interleave.
                new = sorted([*zip(starts[i:j], held[i:j], strict=True), *new])
            starts[i:j] = [a for a, _ in new]
            held[i:j] = [d for _, d in new]
            self.nbytes += sum(b - a for a, b in pieces)
            self.truesize += sum(ofo_truesize(b - a) for a, b in pieces)

        # Linux calls tcp_sack_new_ofo_skb for every out-of-order segment, duplicates included.
        self._sack_new(start, end)
        return bool(pieces)

    def _sack_new(self, start: int, end: int) -> None:
        """tcp_sack_new_ofo_skb: the block holding [start, end) goes first."""
        sacks = self._sacks
        for k, blk in enumerate(sacks):
            if start <= blk[1] and blk[0] <= end:  # tcp_sack_extend: overlap or touch
                blk[0] = min(blk[0], start)
                blk[1] = max(blk[1], end)
                if k:
                    del sacks[k]
                    sacks.insert(0, blk)
                # tcp_sack_maybe_coalesce: the first block absorbs any it now meets.
                first = sacks[0]
                n = 1
                while n < len(sacks):
                    other = sacks[n]
                    if other[0] <= first[1] and first[0] <= other[1]:
                        first[0] = min(first[0], other[0])
                        first[1] = max(first[1], other[1])
                        del sacks[n]
                    else:
                        n += 1
                return
        if len(sacks) >= self.max_sacks:
            sacks.pop()  # the array is full: forget the oldest block
        sacks.insert(0, [start, end])

    def pop_in_order(self, rcv_nxt: int) -> bytes:
        """Remove and return the data now contiguous at ``rcv_nxt`` (tcp_ofo_queue)."""
        if not self._starts:
            self._sacks.clear()
            return b""
        nxt = self._pos(rcv_nxt)
        starts, held = self._starts, self._data
        k = 0
        n = len(starts)
        # Whatever lies wholly below rcv_nxt is a duplicate by now.
        while k < n and starts[k] + len(held[k]) <= nxt:
            self.nbytes -= len(held[k])
            self.truesize -= ofo_truesize(len(held[k]))
            k += 1
        chunks: list[bytes] = []
        if k < n and starts[k] < nxt:  # straddles rcv_nxt: keep the new part
            cut = nxt - starts[k]
            chunks.append(held[k][cut:])
            self.nbytes -= len(held[k])
            self.truesize -= ofo_truesize(len(held[k]))
            nxt += len(held[k]) - cut
            k += 1
        while k < n and starts[k] == nxt:
            chunks.append(held[k])
            self.nbytes -= len(held[k])
            self.truesize -= ofo_truesize(len(held[k]))
            nxt += len(held[k])
            k += 1
        if k:
            del starts[:k]
            del held[:k]
        # tcp_sack_remove: blocks that rcv_nxt reached are gone; all of them once empty.
        if not starts:
            self._sacks.clear()
        elif self._sacks:
            self._sacks = [b for b in self._sacks if b[0] > nxt]
        self._ref = nxt
        if not chunks:
            return b""
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def sack_blocks(self, rcv_nxt: int, max_blocks: int) -> list[tuple[int, int]]:
        """The SACK blocks to send, the most recently changed first (RFC 2018 section 4)."""
        if not self._sacks or max_blocks <= 0:
            return []
        nxt = self._pos(rcv_nxt)
        out: list[tuple[int, int]] = []
        for start, end in self._sacks:
            if end <= nxt:
                continue
            out.append((max(start, nxt) & MASK, end & MASK))
            if len(out) == max_blocks:
                break
        return out

    def tail_end(self) -> int | None:
        """The sequence number just past the highest held byte (None when empty)."""
        if not self._starts:
            return None
        return (self._starts[-1] + len(self._data[-1])) & MASK

    def prune(self, in_seq: int, goal: int, can_ingest: Callable[[], bool]) -> bool:
        """tcp_prune_ofo_queue: drop whole segments from the highest sequence down, but none
        below ``in_seq`` (the segment being received would then land last).  Every ``goal``
        bytes of truesize freed (and when nothing is left) ``can_ingest()`` is asked whether to
        stop.  Resets the SACK blocks when anything went (tcp_sack_reset); True if so."""
        starts, held = self._starts, self._data
        if not starts:
            return False
        pos = self._pos(in_seq)
        left = goal
        pruned = False
        while starts:
            if pos > starts[-1]:
                break
            starts.pop()
            data = held.pop()
            pruned = True
            self.nbytes -= len(data)
            size = ofo_truesize(len(data))
            self.truesize -= size
            left -= size
            if not starts or left <= 0:
                if can_ingest():
                    break
                left = goal
        if pruned:
            self._sacks.clear()
        return pruned


# ============================================================================================
# Sender: the scoreboard
# ============================================================================================


@attrs.frozen
class AckResult:
    """What a cumulative ACK removed from the retransmission queue (tcp_clean_rtx_queue)."""

    acked_bytes: int
    """Bytes newly covered by snd_una (including ones SACKed before)."""
    acked_segments: int
    """Segments wholly acked (a partially acked segment is not counted)."""
    rtt_sample: float | None
    """now - send time of the newest wholly acked segment never retransmitted nor SACKed."""
    retransmitted_acked: bool
    """Some acked byte had been retransmitted (Linux FLAG_RETRANS_DATA_ACKED)."""
    previously_sacked_bytes: int = 0
    """Of acked_bytes, those that had already been SACKed."""


@attrs.frozen
class SackResult:
    """What one ACK's SACK option changed (tcp_sacktag_write_queue)."""

    newly_sacked_bytes: int
    dsack: bool
    """The first block is a D-SACK (RFC 2883 section 4)."""
    newly_sacked_segments: int = 0
    dsack_block: tuple[int, int] | None = None
    reorder_seq: int | None = None
    """Lowest newly SACKed, never retransmitted seq below the previous highest SACK."""
    newly_lost_bytes: int = 0
    discarded: int = 0
    """Invalid blocks ignored (not counting a D-SACK block)."""


class _Seg:
    """One transmitted segment of the retransmission queue, with Linux's scoreboard tags."""

    __slots__ = ("end", "ever_retrans", "lost", "retrans", "sacked", "sent", "start")

    def __init__(self, start: int, end: int, sent: float) -> None:
        self.start = start
        self.end = end
        self.sent = sent  # time of the last transmission
        self.sacked = False  # TCPCB_SACKED_ACKED
        self.lost = False  # TCPCB_LOST
        self.retrans = False  # TCPCB_SACKED_RETRANS: a retransmission assumed in flight
        self.ever_retrans = False  # TCPCB_EVER_RETRANS (Karn)


@attrs.frozen
class SegmentInfo:
    """A read-only view of one scoreboard segment (``Scoreboard.segments()``)."""

    seq: int
    end: int
    sent: float
    sacked: bool
    lost: bool
    retrans: bool
    ever_retrans: bool


class Scoreboard:
    """The sender's view of its outstanding data (RFC 6675 scoreboard, Linux's rtx queue).

    Segments are kept sorted by position in ``_segs`` with their starts in ``_starts`` (for
    bisect), tiling [snd_una, snd_nxt) exactly.  The SACKed parts are also kept as merged
    ranges (``_sr_starts``/``_sr_ends``) so that a SACK block seen again on every ACK costs only
    the search for its new part.  Loss marking advances a pointer ``_lost_pos``: every
    un-SACKed segment below it is lost, and ``_below_segs``/``_below_bytes`` count the SACKed
    segments below it, so the SACKed amount above any candidate is a subtraction.
    """

    def __init__(
        self, mss: int = 536, *, dupthresh: int = DUPTHRESH, snd_una: int | None = None
    ) -> None:
        if mss <= 0:
            raise ValueError("mss must be positive")
        self._mss = mss
        self._dupthresh = dupthresh
        self._segs: list[_Seg] = []
        self._starts: list[int] = []
        self._sr_starts: list[int] = []
        self._sr_ends: list[int] = []
        self._anchored = snd_una is not None  # una/nxt known (else set by the first event)
        self._una = 0 if snd_una is None else snd_una & MASK
        self._nxt = self._una
        self.sacked_bytes = 0
        self.sacked_segments = 0
        self.lost_bytes = 0
        self.retrans_out = 0
        self._lost_pos = self._una
        self._below_segs = 0
        self._below_bytes = 0
        self._retx_pos = self._lost_pos  # NextSeg rule 1 scan hint
        self._rule3_pos = self._lost_pos  # NextSeg rule 3 scan hint
        self._rescue: int | None = None  # RescueRxt

    # ---- configuration ---------------------------------------------------------------------

    @property
    def mss(self) -> int:
        return self._mss

    @mss.setter
    def mss(self, value: int) -> None:
        if value <= 0:
            raise ValueError("mss must be positive")
        self._mss = value
        self._advance_lost()

    @property
    def dupthresh(self) -> int:
        return self._dupthresh

    @dupthresh.setter
    def dupthresh(self, value: int) -> None:
        if value < 1:
            raise ValueError("dupthresh must be at least 1")
        self._dupthresh = value
        self._advance_lost()

    # ---- read-only state -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._segs)

    @property
    def snd_una(self) -> int | None:
        return self._una & MASK if self._anchored else None

    @property
    def snd_nxt(self) -> int | None:
        return self._nxt & MASK if self._anchored else None

    @property
    def outstanding(self) -> int:
        """Bytes sent and not cumulatively acked (FlightSize before SACK)."""
        return self._nxt - self._una

    def pipe(self) -> int:
        """RFC 6675 SetPipe in bytes: outstanding - SACKed - lost + retransmitted in flight."""
        return self.outstanding - self.sacked_bytes - self.lost_bytes + self.retrans_out

    def highest_sacked(self) -> int | None:
        """One past the highest SACKed octet, or None when nothing is SACKed."""
        return self._sr_ends[-1] & MASK if self._sr_ends else None

    def is_lost(self, seq: int) -> bool:
        """RFC 6675 IsLost for the octet ``seq`` (False outside the outstanding data)."""
        seg = self._seg_at(self._pos(seq))
        return seg is not None and seg.lost

    def segments(self) -> Iterator[SegmentInfo]:
        for s in self._segs:
            yield SegmentInfo(
                s.start & MASK, s.end & MASK, s.sent, s.sacked, s.lost, s.retrans, s.ever_retrans
            )

    # ---- helpers ---------------------------------------------------------------------------

    def _pos(self, seq: int) -> int:
        if not self._anchored:
            return seq & MASK
        return self._una + seq_sub(seq, self._una & MASK)

    def _anchor(self, pos: int) -> None:
        """Nothing outstanding: (re)start the board at ``pos``."""
        self._anchored = True
        self._una = self._nxt = pos
        self._lost_pos = self._retx_pos = self._rule3_pos = pos

    def _seg_at(self, pos: int) -> _Seg | None:
        i = bisect_right(self._starts, pos) - 1
        if i < 0:
            return None
        seg = self._segs[i]
        return seg if pos < seg.end else None

    def _index_at(self, pos: int) -> int:
        """Index of the segment holding ``pos`` (or the first after it)."""
        i = bisect_right(self._starts, pos) - 1
        if i < 0:
            return 0
        return i if pos < self._segs[i].end else i + 1

    def _split(self, i: int, at: int) -> None:
        """Cut segment i at position ``at`` (start < at < end); byte totals are unchanged."""
        seg = self._segs[i]
        tail = _Seg(at, seg.end, seg.sent)
        tail.sacked, tail.lost = seg.sacked, seg.lost
        tail.retrans, tail.ever_retrans = seg.retrans, seg.ever_retrans
        seg.end = at
        self._segs.insert(i + 1, tail)
        self._starts.insert(i + 1, at)
        if seg.sacked:
            self.sacked_segments += 1
            if tail.end <= self._lost_pos:
                self._below_segs += 1

    def _threshold(self, segs: int, nbytes: int) -> bool:
        return segs >= self._dupthresh or nbytes > (self._dupthresh - 1) * self._mss

    def _advance_lost(self) -> int:
        """Mark lost every un-SACKed segment that now has enough SACKed data above it
        (RFC 6675 IsLost; Linux tcp_mark_head_lost).  Returns the bytes newly marked."""
        if self.sacked_segments - self._below_segs == 0:
            return 0
        segs = self._segs
        i = bisect_left(self._starts, self._lost_pos)
        above_segs = self.sacked_segments - self._below_segs
        above_bytes = self.sacked_bytes - self._below_bytes
        newly = 0
        while i < len(segs):
            seg = segs[i]
            size = seg.end - seg.start
            if seg.sacked:
                if not self._threshold(above_segs - 1, above_bytes - size):
                    break
                above_segs -= 1
                above_bytes -= size
                self._below_segs += 1
                self._below_bytes += size
            else:
                if not self._threshold(above_segs, above_bytes):
                    break
                if not seg.lost:
                    seg.lost = True
                    self.lost_bytes += size
                    newly += size
            self._lost_pos = seg.end
            i += 1
        return newly

    def _add_sacked_range(self, start: int, end: int) -> list[tuple[int, int]]:
        """Merge [start, end) into the SACKed ranges; return the parts that were not in."""
        rs, re_ = self._sr_starts, self._sr_ends
        gaps: list[tuple[int, int]] = []
        lo = bisect_left(re_, start)  # first range ending at or after start (meets it)
        hi = bisect_right(rs, end)  # ranges starting at or before end meet it too
        cur = start
        for k in range(lo, hi):
            if rs[k] > cur:
                gaps.append((cur, min(rs[k], end)))
            cur = max(cur, re_[k])
        if cur < end:
            gaps.append((cur, end))
        if lo < hi:
            new_start, new_end = min(start, rs[lo]), max(end, re_[hi - 1])
        else:
            new_start, new_end = start, end
        rs[lo:hi] = [new_start]
        re_[lo:hi] = [new_end]
        return gaps

    # ---- events ----------------------------------------------------------------------------

    def on_sent(self, seq: int, length: int, now: float, *, retransmit: bool = False) -> None:
        """A segment [seq, seq+length) went out (tcp_transmit_skb / tcp_retransmit_skb).

        Bytes at or beyond the highest byte sent so far are new data; bytes below it are a
        retransmission (the ``retransmit`` flag is informative only).
        """
        if length <= 0:
            return
        if not self._anchored:
            self._anchor(seq & MASK)
        start = self._pos(seq)
        end = start + length
        if not self._segs and start > self._nxt:
            # Nothing outstanding and the caller skipped sequence space the board never saw
            # (e.g. an untracked SYN or FIN): start again there.
            self._anchor(start)
        una, nxt = self._una, self._nxt
        start = max(start, una)
        if end <= start:
            return
        if start < nxt:
            sacked_segments = self.sacked_segments
            self._mark_retransmitted(start, min(end, nxt), now)
            if self.sacked_segments != sacked_segments:  # a SACKed segment was split
                self._advance_lost()
            start = min(end, nxt)
        if start < end:
            if start != nxt:
                raise ValueError(
                    f"on_sent: new data at {seq & MASK} leaves a gap after snd_nxt {nxt & MASK}"
                )
            self._segs.append(_Seg(start, end, now))
            self._starts.append(start)
            self._nxt = end

    def _mark_retransmitted(self, start: int, end: int, now: float) -> None:
        i = self._index_at(start)
        segs = self._segs
        if i < len(segs) and segs[i].start < start:
            self._split(i, start)
            i += 1
        while i < len(segs) and segs[i].start < end:
            seg = segs[i]
            if seg.end > end:
                self._split(i, end)
            if not seg.retrans:
                seg.retrans = True
                self.retrans_out += seg.end - seg.start
            seg.ever_retrans = True
            seg.sent = now
            i += 1

    def on_ack(self, snd_una: int, now: float) -> AckResult:
        """snd_una advanced: forget everything below it (tcp_clean_rtx_queue)."""
        if not self._anchored:
            self._anchor(snd_una & MASK)
            return AckResult(0, 0, None, False)
        una = self._pos(snd_una)
        if una <= self._una:
            return AckResult(0, 0, None, False)
        segs = self._segs
        acked = acked_segs = prev_sacked = 0
        retrans_acked = False
        newest: float | None = None
        lost_pos = self._lost_pos
        k = 0
        while k < len(segs):
            seg = segs[k]
            if seg.start >= una:
                break
            full = seg.end <= una
            size = (seg.end if full else una) - seg.start
            acked += size
            if seg.sacked:
                prev_sacked += size
                self.sacked_bytes -= size
                below = seg.end <= lost_pos
                if below:
                    self._below_bytes -= size
                if full:
                    self.sacked_segments -= 1
                    if below:
                        self._below_segs -= 1
            if seg.lost:
                self.lost_bytes -= size
            if seg.retrans:
                self.retrans_out -= size
            if seg.ever_retrans:
                retrans_acked = True
            if not full:
                seg.start = una
                self._starts[k] = una
                break
            acked_segs += 1
            if not seg.ever_retrans and not seg.sacked and (newest is None or seg.sent > newest):
                newest = seg.sent
            k += 1
        if k:
            del segs[:k]
            del self._starts[:k]
        # The SACKed ranges below the new snd_una go too.
        rs, re_ = self._sr_starts, self._sr_ends
        n = bisect_right(re_, una)
        if n:
            del rs[:n]
            del re_[:n]
        if rs and rs[0] < una:
            rs[0] = una
        self._una = una
        if una > self._nxt:
            self._nxt = una  # acked sequence space the board never tracked (SYN, FIN)
        self._lost_pos = max(self._lost_pos, una)
        self._retx_pos = max(self._retx_pos, una)
        self._rule3_pos = max(self._rule3_pos, una)
        return AckResult(
            acked_bytes=acked,
            acked_segments=acked_segs,
            rtt_sample=None if newest is None else now - newest,
            retransmitted_acked=retrans_acked,
            previously_sacked_bytes=prev_sacked,
        )

    def on_sack(self, blocks: Iterable[tuple[int, int]], snd_una: int, snd_nxt: int) -> SackResult:
        """Apply one ACK's SACK blocks (tcp_sacktag_write_queue)."""
        blocks = list(blocks)
        if not blocks:
            return SackResult(0, False)

        # RFC 2883 section 4 / tcp_check_dsack: the first block is a D-SACK when it lies below
        # the ACK, or inside the second block.
        s0, e0 = blocks[0]
        dsack = False
        if seq_lt(s0, e0):
            if seq_lt(s0, snd_una):
                dsack = True
            elif len(blocks) > 1:
                s1, e1 = blocks[1]
                dsack = seq_le(e0, e1) and seq_le(s1, s0)
        dsack_block = (s0 & MASK, e0 & MASK) if dsack else None

        if not self._anchored:
            return SackResult(0, dsack, dsack_block=dsack_block)

        una = self._una
        valid_una = max(una, self._pos(snd_una))
        nxt_limit = self._pos(snd_nxt)
        prior_high = self._sr_ends[-1] if self._sr_ends else None
        newly = newly_segs = discarded = 0
        reorder: int | None = None
        for k, (bs, be) in enumerate(blocks):
            start = self._pos(bs)
            end = start + seq_sub(be, bs)
            is_dsack = dsack and k == 0
            # tcp_is_sackblock_valid
            if end > nxt_limit or start >= end or start >= nxt_limit:
                if not is_dsack:
                    discarded += 1
                continue
            if start <= valid_una:
                if not is_dsack:
                    discarded += 1
                continue  # a D-SACK below snd_una: nothing left to tag
            start = max(start, una)
            end = min(end, self._nxt)
            if start >= end:
                continue
            if is_dsack:
                self._dsack_clear_retrans(start, end)
            for gs, ge in self._add_sacked_range(start, end):
                b, s, r = self._tag_range(gs, ge, prior_high)
                newly += b
                newly_segs += s
                if r is not None and (reorder is None or r < reorder):
                    reorder = r
        newly_lost = self._advance_lost() if newly else 0
        return SackResult(
            newly_sacked_bytes=newly,
            dsack=dsack,
            newly_sacked_segments=newly_segs,
            dsack_block=dsack_block,
            reorder_seq=None if reorder is None else reorder & MASK,
            newly_lost_bytes=newly_lost,
            discarded=discarded,
        )

    def _dsack_clear_retrans(self, start: int, end: int) -> None:
        """A D-SACKed retransmission is no longer in flight (tcp_sacktag_one, dup_sack)."""
        segs = self._segs
        i = self._index_at(start)
        while i < len(segs) and segs[i].start < end:
            seg = segs[i]
            if seg.retrans and seg.start >= start and seg.end <= end:
                seg.retrans = False
                self.retrans_out -= seg.end - seg.start
                if seg.lost and not seg.sacked:  # eligible for NextSeg rule 1 again
                    self._retx_pos = min(self._retx_pos, seg.start)
            i += 1

    def _tag_range(
        self, start: int, end: int, prior_high: int | None
    ) -> tuple[int, int, int | None]:
        """SACK-tag [start, end), which holds no SACKed byte yet (tcp_sacktag_one)."""
        segs = self._segs
        i = self._index_at(start)
        if i < len(segs) and segs[i].start < start:
            self._split(i, start)
            i += 1
        nbytes = nsegs = 0
        reorder: int | None = None
        lost_pos = self._lost_pos
        while i < len(segs) and segs[i].start < end:
            seg = segs[i]
            if seg.end > end:
                self._split(i, end)
            size = seg.end - seg.start
            if seg.lost:
                if seg.retrans:  # the retransmission arrived
                    seg.retrans = False
                    self.retrans_out -= size
                seg.lost = False
                self.lost_bytes -= size
            # (A retransmission not marked lost stays counted in flight, as in Linux.)
            if reorder is None and not seg.ever_retrans and prior_high is not None:
                if seg.start < prior_high:  # an original segment arrived out of order
                    reorder = seg.start
            seg.sacked = True
            self.sacked_bytes += size
            self.sacked_segments += 1
            if seg.end <= lost_pos:
                self._below_segs += 1
                self._below_bytes += size
            nbytes += size
            nsegs += 1
            i += 1
        return nbytes, nsegs, reorder

    def mark_lost(self, up_to: int | None = None) -> bool:
        """RTO (tcp_timeout_mark_lost): every un-SACKed segment starting below ``up_to`` (all
        by default) is lost and no retransmission of it is in flight any more.  If the first
        segment was SACKed the receiver reneged: all SACK marks are dropped first (returns
        True)."""
        segs = self._segs
        if not segs:
            return False
        reneg = segs[0].sacked
        if reneg:
            for seg in segs:
                seg.sacked = False
            self.sacked_bytes = self.sacked_segments = 0
            self._sr_starts.clear()
            self._sr_ends.clear()
        limit = self._nxt if up_to is None else self._pos(up_to)
        if reneg:
            # Segments below the old loss pointer were lost or SACKed; keep them lost.
            limit = max(limit, self._lost_pos)
        boundary = self._una
        for seg in segs:
            if seg.start >= limit:
                break
            boundary = seg.end
            if seg.sacked:
                continue
            size = seg.end - seg.start
            if seg.retrans:
                seg.retrans = False
                self.retrans_out -= size
            if not seg.lost:
                seg.lost = True
                self.lost_bytes += size
        self._lost_pos = max(self._lost_pos, boundary)
        self._below_segs = self._below_bytes = 0
        for seg in segs:
            if seg.end > self._lost_pos:
                break
            if seg.sacked:
                self._below_segs += 1
                self._below_bytes += seg.end - seg.start
        self._retx_pos = self._rule3_pos = self._una
        return reneg

    # ---- what to send next -----------------------------------------------------------------

    def next_seg(
        self,
        snd_nxt: int,
        *,
        unsent: int = 0,
        wnd_end: int | None = None,
        rule3: bool = True,
        rescue_point: int | None = None,
    ) -> tuple[int, int] | None:
        """RFC 6675 NextSeg: (seq, length) of the next segment to send in recovery, or None."""
        segs = self._segs
        mss = self._mss
        if segs:
            # (1) the first lost, un-SACKed segment not retransmitted yet.
            i = self._index_at(self._retx_pos)
            lost_pos = self._lost_pos
            while i < len(segs) and segs[i].start < lost_pos:
                seg = segs[i]
                if seg.lost and not seg.sacked and not seg.retrans:
                    self._retx_pos = seg.start
                    return self._run(i, mss, _eligible_lost)
                i += 1
            self._retx_pos = lost_pos

        # (2) new data, if there is some and the receiver's window allows.
        if unsent > 0:
            room = unsent if wnd_end is None else seq_sub(wnd_end, snd_nxt)
            length = min(mss, unsent, room)
            if length > 0:
                return snd_nxt & MASK, length

        if not segs:
            return None

        # (3) an un-SACKed segment below the highest SACK, though not (yet) deemed lost.
        if rule3 and self._sr_ends:
            high = self._sr_ends[-1]
            i = self._index_at(max(self._rule3_pos, self._lost_pos))
            while i < len(segs) and segs[i].start < high:
                seg = segs[i]
                if not (seg.sacked or seg.lost or seg.retrans):
                    self._rule3_pos = seg.start
                    return self._run(i, mss, _eligible_rule3)
                i += 1
            self._rule3_pos = high

        # (4) one rescue retransmission per recovery, ending at the highest un-SACKed octet.
        if rescue_point is not None and (self._rescue is None or self._una >= self._rescue):
            for seg in reversed(segs):
                if not seg.sacked:
                    start = max(seg.start, seg.end - mss)
                    self._rescue = self._pos(rescue_point)
                    return start & MASK, seg.end - start
        return None

    def _run(self, i: int, mss: int, eligible: Callable[[_Seg], bool]) -> tuple[int, int]:
        """From segment i, as many following contiguous eligible bytes as fit in one MSS."""
        segs = self._segs
        start = segs[i].start
        end = segs[i].end
        i += 1
        while end - start < mss and i < len(segs) and segs[i].start == end and eligible(segs[i]):
            end = segs[i].end
            i += 1
        return start & MASK, min(end - start, mss)


def _eligible_lost(seg: _Seg) -> bool:
    return seg.lost and not seg.sacked and not seg.retrans


def _eligible_rule3(seg: _Seg) -> bool:
    return not (seg.sacked or seg.lost or seg.retrans)
