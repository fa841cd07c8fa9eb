"""32-bit sequence-number arithmetic (RFC 9293 section 3.4), wrap-safe.

``a`` is before ``b`` when the signed 32-bit difference ``a - b`` is negative, as Linux's
``before()`` in include/net/tcp.h.
"""

from __future__ import annotations

MOD = 1 << 32
MASK = MOD - 1
_SIGN = 1 << 31


def seq_add(a: int, n: int) -> int:
    return (a + n) & MASK


def seq_sub(a: int, b: int) -> int:
    """Distance from ``b`` forward to ``a`` as a signed 32-bit integer."""
    d = (a - b) & MASK
    return d - MOD if d & _SIGN else d


def seq_lt(a: int, b: int) -> bool:
    return bool((a - b) & MASK & _SIGN)


def seq_le(a: int, b: int) -> bool:
    return a == b or seq_lt(a, b)


def seq_gt(a: int, b: int) -> bool:
    return seq_lt(b, a)


def seq_ge(a: int, b: int) -> bool:
    return a == b or seq_lt(b, a)


def seq_between(low: int, x: int, high: int) -> bool:
    """``low <= x <= high`` in sequence space (Linux ``between()``)."""
    return ((high - low) & MASK) >= ((x - low) & MASK)


def seq_max(a: int, b: int) -> int:
    return b if seq_lt(a, b) else a


def seq_min(a: int, b: int) -> int:
    return a if seq_lt(a, b) else b
