"""IPv4 fragmentation and reassembly, as Linux 6.x does them.

Fragmentation follows the slow path of ``ip_do_fragment`` with ``ip_frag_init``/``ip_frag_next``
and ``ip_options_fragment`` (net/ipv4/ip_output.c, net/ipv4/ip_options.c); reassembly follows
``ip_defrag``/``ip_frag_queue``/``ip_frag_reasm`` (net/ipv4/ip_fragment.c) and
``inet_frag_find``/``inet_frag_queue_insert`` (net/ipv4/inet_fragment.c), including the
overlap rule of RFC 5722 that Linux adopted for IPv4 in 2018 (CVE-2018-5391).

Both are plain code: no trio, time is the caller's ``now`` in seconds.  The IPv4 task calls
:func:`ip_fragment` after it has checked DF and counts IpFragOKs/IpFragCreates/IpFragFails
itself; it feeds every received fragment to :meth:`Reassembler.add`, sleeps until
:meth:`Reassembler.poll_at` and then calls :meth:`Reassembler.expire`, sending ICMP time
exceeded (code 1) for each :class:`Expired` that carries the offset-0 fragment.

Reassembly rules, in the order Linux applies them to one fragment:

1. IpReasmReqds for every fragment.
2. Fragment memory above ``high_thresh`` (ipfrag_high_thresh, 4 MiB): drop, IpReasmFails.
   Linux 6.x has no evictor: memory is given back only when queues complete, die or time out.
3. Find or create the queue for (src, dst, id, proto); its timer runs ``timeout`` seconds
   (ipfrag_time, 30 s) from creation and is never extended.
4. A last fragment (MF clear) that ends before data already seen, or a second last fragment
   with a different end, kills the queue (IpReasmFails).  A non-last fragment's end is rounded
   down to a multiple of 8 (the tail bytes are trimmed, not an error); if it then ends beyond
   the known last fragment the queue is killed.  A fragment left with no data (zero-length, or
   a non-last one shorter than 8 bytes after the rounding) kills the queue.
5. Insertion (``inet_frag_queue_insert``): a fragment lying wholly inside one *run* of held
   data is dropped alone and counts nothing; any other overlap kills the queue
   (IpExtReasmOverlaps and IpReasmFails).  Linux's runs are built only by fragments appended
   at the tail of the queue; a fragment that fills a hole starts a run of its own even when it
   touches its neighbours.  So a fragment that covers data held in two such runs counts as an
   overlap, exactly as in Linux, although all its bytes are already held.
6. Complete when the offset-0 and the last fragment are in and no hole remains.  Mixed ECN
   codepoints that RFC 3168 section 5.3 forbids (Not-ECT with ECT/CE) and a datagram longer
   than 65535 bytes fail (IpReasmFails); otherwise IpReasmOKs.

Not modelled: ``ipfrag_max_dist`` (the inet_peer reordering limit that reinitialises a queue
after 64 fragments from the same source went elsewhere), per-VRF/user keys, ``frag_max_size``.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import Counter
from itertools import chain

import attrs

from ..wire.ipv4 import IP_OFFSET, IPV4_MAX_LEN, Ipv4

# What one held fragment costs in the fragment memory, on top of its IP length.  Linux charges
# skb->truesize: the data buffer as allocated plus struct sk_buff and struct skb_shared_info
# (about 550 bytes together on x86-64), so a full-size 1500-byte fragment costs about 2.3 KiB.
# A fixed 768 bytes keeps that order of magnitude and makes the accounting deterministic.
FRAG_TRUESIZE_OVERHEAD = 768

IPFRAG_HIGH_THRESH = 4 * 1024 * 1024  # net.ipv4.ipfrag_high_thresh
IPFRAG_TIME = 30.0  # net.ipv4.ipfrag_time, seconds

_IPOPT_END = 0
_IPOPT_NOOP = 1
_IPOPT_COPIED = 0x80

# Return values of _Queue.insert, after inet_frag_queue_insert.
_INSERT_OK = 0
_INSERT_DUP = 1
_INSERT_OVERLAP = 2

# ECN codepoints (RFC 3168) and the bit each sets in a queue's ``ecn`` mask.
_ECN_MASK = 0x03
_ECN_CE = 0x03
_ECNBIT_NOT_ECT = 1 << 0
_ECNBIT_CE = 1 << 3
_ECNBIT_ECT = (1 << 1) | (1 << 2)  # ECT(1), ECT(0)

FragKey = tuple[int, int, int, int]  # (src, dst, id, proto), as ip_find's key


# --------------------------------------------------------------------------------------------
# Fragmentation


def options_fragment(options: bytes) -> bytes:
    """The options that fragments after the first carry (ip_options_fragment).

    Every option whose copied flag is clear becomes NOPs of the same length, so the header
    length does not change.  The walk stops at End of Options or at a malformed length, leaving
    the rest as it was.
    """
    out = bytearray(options)
    i = 0
    size = len(out)
    while i < size:
        kind = out[i]
        if kind == _IPOPT_END:
            break
        if kind == _IPOPT_NOOP:
            i += 1
            continue
        if i + 1 >= size:
            break
        optlen = out[i + 1]
        if optlen < 2 or optlen > size - i:
            break
        if not kind & _IPOPT_COPIED:
            out[i : i + optlen] = bytes([_IPOPT_NOOP]) * optlen
        i += optlen
    return bytes(out)


def ip_fragment(
    header: Ipv4, payload: bytes, mtu: int, *, frag_pmtu: bool = False
) -> list[tuple[Ipv4, bytes]]:
    """Split one datagram into fragments that fit ``mtu`` (the slow path of ip_do_fragment).

    Each fragment carries ``header`` with new offset, flags and length: data per fragment is
    ``mtu - header_len`` rounded down to a multiple of 8, and the rest goes whole into the last
    one as soon as it fits ``mtu - header_len``; offsets
    continue from ``header.frag_offset`` (so a fragment can be fragmented again); MF is set on
    all but the last, and on the last too when ``header`` had MF.  When ``header`` is at offset
    0, fragments after the first keep only the options with the copied flag (the others become
    NOPs); a later fragment's options were already reduced and are kept as they are.

    As in Linux the fragments' flags are rebuilt: DF is set only with ``frag_pmtu``
    (IPSKB_FRAG_PMTU, a datagram reassembled from DF fragments) and the reserved bit is never
    copied.  ``checksum`` is left 0 (``build`` computes it); ``total_length`` is filled in.

    A datagram that already fits is returned unchanged as the only element.  The caller checks
    DF and counts.  Raises ValueError when ``mtu`` cannot carry the header plus 8 bytes of data,
    or when an offset would not fit the 13-bit field.
    """
    hlen = header.header_len
    room = mtu - hlen
    if room < 8:
        raise ValueError(f"an MTU of {mtu} cannot carry a {hlen}-byte header and 8 bytes of data")
    left = len(payload)
    if left <= room:
        return [(header, payload)]
    step = room & ~7  # every fragment but the last carries whole 8-byte blocks
    offset = header.frag_offset << 3
    # Pieces as ip_frag_next cuts them: the rest goes whole once it fits the room (even when
    # the room is not a multiple of 8), else one step of it.
    pieces: list[tuple[int, int]] = []
    ptr = 0
    while ptr < left:
        size = left - ptr if left - ptr <= room else step
        pieces.append((ptr, size))
        ptr += size
    last_offset = offset + pieces[-1][0]
    if last_offset >> 3 > IP_OFFSET:
        raise ValueError(f"fragment offset {last_offset} does not fit the 13-bit field")

    first = attrs.evolve(
        header,
        df=frag_pmtu,
        mf=True,
        evil=False,
        frag_offset=offset >> 3,
        total_length=hlen + step,
        checksum=0,
        checksum_ok=True,
    )
    fragments = [(first, payload[:step])]
    later_options = options_fragment(header.options) if offset == 0 else header.options
    later = attrs.evolve(first, options=later_options)
    last = len(pieces) - 1
    for i in range(1, len(pieces)):
        ptr, size = pieces[i]
        frag = attrs.evolve(
            later,
            mf=header.mf if i == last else True,
            frag_offset=(offset + ptr) >> 3,
            total_length=hlen + size,
        )
        fragments.append((frag, payload[ptr : ptr + size]))
    return fragments


# --------------------------------------------------------------------------------------------
# Reassembly


@attrs.frozen
class Expired:
    """A reassembly queue that timed out (ip_expire)."""

    key: FragKey
    """(src, dst, id, proto) of the datagram."""
    first: tuple[Ipv4, bytes] | None
    """The offset-0 fragment (header, data held) when it had arrived: the caller quotes it in
    an ICMP time exceeded, code 1 (fragment reassembly time exceeded).  None otherwise: then
    Linux sends nothing."""


class _Queue:
    """One incomplete datagram (struct ipq / inet_frag_queue).

    Held data is kept as *runs* sorted by offset, as Linux's rb-tree of runs: ``starts[i]`` and
    ``ends[i]`` bound run ``i`` and ``chunks[i]`` holds its fragments' data in order.
    """

    __slots__ = (
        "alive",
        "chunks",
        "deadline",
        "ecn",
        "ends",
        "first",
        "key",
        "last_in",
        "len",
        "max_df_size",
        "max_size",
        "meat",
        "mem",
        "starts",
    )

    def __init__(self, key: FragKey, deadline: float) -> None:
        self.key = key
        self.deadline = deadline
        self.alive = True
        self.len = 0  # the datagram's data length as far as known (end of the furthest data)
        self.meat = 0  # bytes of data held
        self.mem = 0  # accounted memory of the fragments held
        self.last_in = False
        self.first: tuple[Ipv4, bytes] | None = None  # the offset-0 fragment
        self.ecn = 0
        self.max_size = 0  # largest fragment (IP length after trimming)
        self.max_df_size = 0  # largest fragment with DF set
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.chunks: list[list[bytes]] = []

    def insert(self, offset: int, end: int, data: bytes) -> int:
        """Place [offset, end) among the runs; _INSERT_DUP or _INSERT_OVERLAP leave it out."""
        starts, ends = self.starts, self.ends
        if not starts:
            starts.append(offset)
            ends.append(end)
            self.chunks.append([data])
            return _INSERT_OK
        tail = ends[-1]
        if tail < end:
            # The common case: the fragment goes after everything held.
            if offset < tail:
                return _INSERT_OVERLAP
            if offset == tail:
                self.chunks[-1].append(data)
                ends[-1] = end
            else:
                starts.append(offset)
                ends.append(end)
                self.chunks.append([data])
            return _INSERT_OK
        i = bisect_right(starts, offset) - 1
        if i >= 0 and ends[i] > offset:
            return _INSERT_DUP if end <= ends[i] else _INSERT_OVERLAP
        j = i + 1
        if starts[j] < end:  # j exists: ends[-1] >= end > offset, so some run starts later
            return _INSERT_OVERLAP
        starts.insert(j, offset)
        ends.insert(j, end)
        self.chunks.insert(j, [data])
        return _INSERT_OK


class Reassembler:
    """ip_defrag for one host: reassembly queues, their memory and their timers.

    ``counters`` receives IpReasmReqds, IpReasmOKs, IpReasmFails, IpReasmTimeout and
    IpExtReasmOverlaps.  Memory is accounted per held fragment as its IP length (header and
    data as received) plus :data:`FRAG_TRUESIZE_OVERHEAD`.

    Time only moves forward.  :meth:`add` first expires every queue whose time has come (as
    Linux's timer would have fired before the packet arrived); those wait, already counted, for
    the next :meth:`expire`, and :meth:`poll_at` then answers their (past) deadline.
    """

    def __init__(
        self,
        counters: Counter,
        *,
        high_thresh: int = IPFRAG_HIGH_THRESH,
        timeout: float = IPFRAG_TIME,
    ) -> None:
        self._counters = counters
        self._high_thresh = high_thresh
        self._timeout = timeout
        self._queues: dict[FragKey, _Queue] = {}
        self._timers: list[tuple[float, int, _Queue]] = []  # heap; dead queues skipped lazily
        self._seq = 0
        self._mem = 0
        self._expired: list[Expired] = []
        self._expired_at: float | None = None

    @property
    def mem(self) -> int:
        """Bytes of fragment memory accounted now (frag_mem_limit)."""
        return self._mem

    @property
    def queues(self) -> int:
        """Number of incomplete datagrams held."""
        return len(self._queues)

    def poll_at(self) -> float | None:
        """When :meth:`expire` has work next: the earliest queue deadline, or None."""
        if self._expired_at is not None:
            return self._expired_at
        timers = self._timers
        while timers and not timers[0][2].alive:
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def expire(self, now: float) -> list[Expired]:
        """Remove every queue whose deadline is at or before ``now`` (ip_expire): IpReasmFails
        and IpReasmTimeout each.  Returns them in deadline order."""
        self._expire_due(now)
        expired = self._expired
        self._expired = []
        self._expired_at = None
        return expired

    def add(self, header: Ipv4, payload: bytes, now: float) -> tuple[Ipv4, bytes] | None:
        """Take one received fragment (ip_defrag); return the whole datagram once complete.

        The datagram's header is the offset-0 fragment's with MF and offset cleared, DF set
        only if the largest fragment had it, the reserved bit cleared, ECN CE merged as RFC 3168
        asks, ``total_length`` filled in and ``checksum`` 0.
        """
        counters = self._counters
        counters["IpReasmReqds"] += 1
        timers = self._timers
        if timers and timers[0][0] <= now:
            self._expire_due(now)
        if not self._high_thresh or self._mem > self._high_thresh:
            counters["IpReasmFails"] += 1
            return None

        key = (header.src, header.dst, header.id, header.proto)
        q = self._queues.get(key)
        if q is None:
            q = _Queue(key, now + self._timeout)
            self._queues[key] = q
            self._seq += 1
            heapq.heappush(timers, (q.deadline, self._seq, q))

        offset = header.frag_offset << 3
        end = offset + len(payload)
        if not header.mf:
            # The last fragment fixes the length; anything contradicting it is corruption.
            if end < q.len or (q.last_in and end != q.len):
                return self._discard(q)
            q.last_in = True
            q.len = end
        else:
            end &= ~7  # data of a non-last fragment comes in 8-byte blocks: trim the rest
            if end > q.len:
                if q.last_in:
                    return self._discard(q)
                q.len = end
        if end == offset:
            return self._discard(q)

        data = payload[: end - offset] if end - offset != len(payload) else payload
        result = q.insert(offset, end, data)
        if result == _INSERT_DUP:
            return None
        if result == _INSERT_OVERLAP:
            counters["IpExtReasmOverlaps"] += 1
            return self._discard(q)

        hlen = header.header_len
        truesize = hlen + len(payload) + FRAG_TRUESIZE_OVERHEAD
        q.mem += truesize
        self._mem += truesize
        q.meat += end - offset
        q.ecn |= 1 << (header.tos & _ECN_MASK)
        if offset == 0:
            q.first = (header, data)
        fragsize = end - offset + hlen
        if fragsize > q.max_size:
            q.max_size = fragsize
        if header.df and fragsize > q.max_df_size:
            q.max_df_size = fragsize

        if q.last_in and q.first is not None and q.meat == q.len:
            return self._reasm(q)
        return None

    # ----------------------------------------------------------------------------------------

    def _kill(self, q: _Queue) -> tuple[Ipv4, bytes] | None:
        """Unhash the queue, stop its timer and give its memory back (inet_frag_kill).

        The data is released at once (the dead queue may wait in the timer heap until its
        deadline); the offset-0 fragment is returned for the caller's last use.
        """
        q.alive = False
        del self._queues[q.key]
        self._mem -= q.mem
        q.mem = 0
        first = q.first
        q.first = None
        q.starts, q.ends, q.chunks = [], [], []
        return first

    def _discard(self, q: _Queue) -> None:
        self._kill(q)
        self._counters["IpReasmFails"] += 1
        return None

    def _reasm(self, q: _Queue) -> tuple[Ipv4, bytes] | None:
        """Glue a complete queue into one datagram (ip_frag_reasm)."""
        chunks = q.chunks
        first = self._kill(q)
        counters = self._counters
        ecn = q.ecn
        if ecn & _ECNBIT_NOT_ECT and ecn != _ECNBIT_NOT_ECT:
            counters["IpReasmFails"] += 1  # RFC 3168 5.3: Not-ECT mixed with ECT or CE
            return None
        assert first is not None
        head = first[0]
        total = head.header_len + q.len
        if total > IPV4_MAX_LEN:
            counters["IpReasmFails"] += 1
            return None
        tos = head.tos
        if ecn & _ECNBIT_CE and ecn & _ECNBIT_ECT:
            tos |= _ECN_CE
        payload = b"".join(chunks[0]) if len(chunks) == 1 else b"".join(chain.from_iterable(chunks))
        header = attrs.evolve(
            head,
            tos=tos,
            df=q.max_df_size == q.max_size,
            mf=False,
            evil=False,
            frag_offset=0,
            total_length=total,
            checksum=0,
            checksum_ok=True,
        )
        counters["IpReasmOKs"] += 1
        return header, payload

    def _expire_due(self, now: float) -> None:
        timers = self._timers
        counters = self._counters
        while timers and timers[0][0] <= now:
            deadline, _, q = heapq.heappop(timers)
            if not q.alive:
                continue
            first = self._kill(q)
            counters["IpReasmFails"] += 1
            counters["IpReasmTimeout"] += 1
            self._expired.append(Expired(q.key, first))
            if self._expired_at is None:
                self._expired_at = deadline


__all__ = [
    "FRAG_TRUESIZE_OVERHEAD",
    "IPFRAG_HIGH_THRESH",
    "IPFRAG_TIME",
    "Expired",
    "FragKey",
    "Reassembler",
    "ip_fragment",
    "options_fragment",
]
