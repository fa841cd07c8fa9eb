"""IPv4 options on receive: the checks of ip_options_compile (net/ipv4/ip_options.c).

``compile_options(options)`` walks the option bytes of a received header as Linux does for an
skb: End of Options ends the walk, No Operation is one byte, every other option needs a length
byte of at least 2 that stays inside the header.  Record Route, Timestamp and the source-route
options (LSRR, SSRR) have their pointer and length checked; each may appear once; CIPSO is
refused as on a kernel without a CIPSO DOI configured.  Security, Stream ID, Router Alert and
unknown options pass.  A malformed option gives the offset (from the start of the IP header)
that an ICMP Parameter Problem points at.

Not modelled: the rewriting Linux does for Record Route and Timestamp (our address and time
written into the option) and source-route forwarding itself (ip_options_rcv_srr): a source-
routed packet is dropped unless ``accept_source_route`` allows it, and one that is allowed goes
to its destination address as if the option were absent.
"""

from __future__ import annotations

import attrs

IPOPT_END = 0
IPOPT_NOOP = 1
IPOPT_RR = 7
IPOPT_TIMESTAMP = 68
IPOPT_LSRR = 131
IPOPT_SSRR = 137
IPOPT_CIPSO = 134

IPOPT_TS_TSONLY = 0
IPOPT_TS_TSANDADDR = 1
IPOPT_TS_PRESPEC = 3

_HLEN = 20  # the options start after the fixed header


@attrs.frozen
class OptionsResult:
    """What the walk found: ``error`` is the Parameter Problem pointer (None when the options
    are well formed); ``srr`` whether a source-route option is present."""

    error: int | None = None
    srr: bool = False


def compile_options(options: bytes) -> OptionsResult:
    """ip_options_compile for a received packet (see the module docstring)."""
    size = len(options)
    i = 0
    seen: set[int] = set()
    srr = False

    def bad(at: int) -> OptionsResult:
        return OptionsResult(error=_HLEN + at, srr=srr)

    while i < size:
        kind = options[i]
        if kind == IPOPT_END:
            break
        if kind == IPOPT_NOOP:
            i += 1
            continue
        left = size - i
        if left < 2:
            return bad(i)
        optlen = options[i + 1]
        if optlen < 2 or optlen > left:
            return bad(i)
        if kind in (IPOPT_LSRR, IPOPT_SSRR):
            if optlen < 3:
                return bad(i + 1)
            if options[i + 2] < 4:
                return bad(i + 2)
            if srr:
                return bad(i)  # a second source route
            srr = True
        elif kind == IPOPT_RR:
            if IPOPT_RR in seen:
                return bad(i)
            if optlen < 3:
                return bad(i + 1)
            ptr = options[i + 2]
            if ptr < 4:
                return bad(i + 2)
            if ptr <= optlen and ptr + 3 > optlen:
                return bad(i + 2)  # room left, but not for a whole address
        elif kind == IPOPT_TIMESTAMP:
            if IPOPT_TIMESTAMP in seen:
                return bad(i)
            if optlen < 4:
                return bad(i + 1)
            ptr = options[i + 2]
            if ptr < 5:
                return bad(i + 2)
            flag = options[i + 3] & 0x0F
            if ptr <= optlen:
                if ptr + 3 > optlen:
                    return bad(i + 2)
                if flag in (IPOPT_TS_TSANDADDR, IPOPT_TS_PRESPEC) and ptr + 7 > optlen:
                    return bad(i + 2)
            elif flag != IPOPT_TS_PRESPEC and options[i + 3] >> 4 == 15:
                return bad(i + 3)  # full, and the overflow count cannot grow
        elif kind == IPOPT_CIPSO:
            return bad(i + 2)  # cipso_v4_validate: no DOI is configured
        seen.add(kind)
        i += optlen
    return OptionsResult(srr=srr)
