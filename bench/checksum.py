"""Time ``internet_checksum`` (whole-buffer arithmetic) against a per-16-bit-word Python loop.

Run: ``.venv/bin/python bench/checksum.py``.  Prints, per buffer size, nanoseconds per call for
each implementation and the ratio loop / emunet.  The loop is written here for comparison only
(RFC 1071's straightforward algorithm); emunet never uses it.
"""

from __future__ import annotations

import random
import timeit

from emunet.wire.checksum import internet_checksum

SIZES = (64, 576, 1500, 9000)


def loop_checksum(data: bytes) -> int:
    """RFC 1071 the straightforward way: add 16-bit words, fold the carries, complement."""
    if len(data) & 1:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ns_per_call(func, data: bytes, budget: float = 0.2) -> float:
    """Best of 5 repeats, each running about ``budget`` seconds."""
    timer = timeit.Timer(lambda: func(data))
    number, _ = timer.autorange()
    number = max(1, int(number * budget / 0.2))
    return min(timer.repeat(repeat=5, number=number)) / number * 1e9


def main() -> None:
    rng = random.Random(1071)
    print(f"{'size':>6}  {'emunet ns/call':>15}  {'loop ns/call':>13}  {'loop/emunet':>11}")
    for size in SIZES:
        data = rng.randbytes(size)
        assert internet_checksum(data) == loop_checksum(data)
        fast = ns_per_call(internet_checksum, data)
        slow = ns_per_call(loop_checksum, data)
        print(f"{size:>6}  {fast:>15.0f}  {slow:>13.0f}  {slow / fast:>10.1f}x")


if __name__ == "__main__":
    main()
