"""One direction of a link: a serializing bottleneck followed by netem-style impairments.

Behaviour follows Linux's netem qdisc (net/sched/sch_netem.c: ``netem_enqueue``,
``loss_gilb_ell``, ``tabledist``) with its parameters as iproute2's tc-netem(8) spells them.
The model is plain and deterministic: no trio, times are integer nanoseconds passed in by the
caller, and every random draw comes from the one ``random.Random`` the direction was given.

The device task that drives a direction does, per frame taken from its qdisc::

    end = direction.start(len(frame), now_ns)       # last bit leaves the sender
    (sleep until end)
    for arrival_ns, data in direction.transmit(frame, end):
        (deliver data to the peer at arrival_ns)

``transmit`` decides, in this order (netem's, but see below; the draw made at each step is in
brackets, and a draw is skipped when its probability or jitter is zero):

1. link down: the frame is dropped and counted in ``dropped_down`` [no draw].
2. duplicate [1 draw]: a second copy is made.
3. loss of the frame [1 draw for Bernoulli ``loss``; 2 for Gilbert-Elliott ``loss_ge``: the
   state transition, then the loss in the state the frame met]. As in netem, the copies that go
   on are ``1 + duplicated - lost``: a frame that is both duplicated and lost goes on once.
4. for the frame, then for its duplicate if there are two copies:
   a. the duplicate only: its own loss draw(s) as in step 3 (netem re-enqueues the clone at the
      root qdisc with duplication off, so it meets loss again);
   b. corrupt [1 draw, and 1 more for the bit]: one bit flipped at or after byte 14;
   c. reorder [1 draw]: the copy is held back by ``reorder_gap``;
   d. jitter [1 draw]: an integer number of nanoseconds uniform in [-jitter, +jitter], the
      total delay clamped at zero.

Arrival = end of serialization + max(0, delay + jitter draw) + (reorder_gap if reordered).
Jitter and reorder make arrivals non-monotonic (a later frame may arrive first, as with netem's
time-sorted queue): the caller delivers by arrival time, ties in the order ``transmit`` was
called.

Where emunet differs from netem, and why:

- Rate: serialization happens before the impairments and does not depend on them (netem's
  ``rate`` option queues behind the previous packet's *departure time*, delay included). Here
  the wire is busy for ``round(length * 8e9 / bandwidth)`` ns per frame, rounded per frame,
  with no Ethernet preamble/FCS/gap overhead, so 1000 frames of 1250 bytes at 10 Mbit/s take
  exactly 1 s. A frame on a link that is down takes no time on the wire (it is dropped).
- Reorder: netem sends a reordered packet *at once* (skipping the delay, so it overtakes
  earlier ones) and only every ``gap``-th; emunet holds the chosen frame back by
  ``reorder_gap`` so that later frames overtake it, and needs no delay to do so.
- Corruption never touches the 14-byte Ethernet header (netem flips any byte of the linear
  data): a flipped MAC or ethertype would be a silent misdelivery, whereas a flipped bit in the
  IP packet must be caught by the IPv4/UDP/TCP checksums, which is what users test.
- No correlation parameters (netem's ``crndstate``), no 4-state GI model, no delay
  distribution tables: jitter is uniform, as netem's default distribution.
- Gilbert-Elliott: ``loss_ge = (p, r, 1-h, 1-k)`` exactly as ``tc ... loss gemodel p r 1-h
  1-k``: p = P(good -> bad), r = P(bad -> good), 1-h = loss probability in the bad state, 1-k
  in the good state. Given 1 to 3 values, the rest take tc's defaults: r = 1-p, 1-h = 1,
  1-k = 0. The state starts good and is reset to good when ``loss_ge`` changes.
- netem handles the duplicate (re-enqueued at the root) before the original's corruption and
  delay; emunet handles the original first. Same distribution, different draw order.
- ``loss`` and ``loss_ge`` cannot both be set (tc refuses a second loss argument too).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from emunet.units import parse_fraction, parse_rate, parse_time

__all__ = ["Direction", "DirectionStats", "DirectionStatsSnapshot", "LinkParams"]

NS_PER_S = 1_000_000_000
ETH_HLEN = 14  # corruption starts after the Ethernet header
IPV4_MIN_MTU = 68  # RFC 791: every host must forward a 68-byte datagram
MAX_MTU = 65535

# --- converters: accept what a topology file or a user types, name the field on error ---


def _named(name: str, parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        try:
            return parse(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None

    convert.__name__ = f"convert_{name}"
    return convert


def _rate_or_none(value: Any) -> float | None:
    return None if value is None else parse_rate(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None


def _gemodel(value: Any) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"expected a sequence (p, r, 1-h, 1-k), got {value!r}")
    if not 1 <= len(value) <= 4:
        raise ValueError(f"expected 1 to 4 values (p, r, 1-h, 1-k), got {len(value)}")
    probs = [parse_fraction(v) for v in value]
    p = probs[0]
    r = probs[1] if len(probs) > 1 else 1.0 - p  # tc's defaults
    bad_loss = probs[2] if len(probs) > 2 else 1.0
    good_loss = probs[3] if len(probs) > 3 else 0.0
    return (p, r, bad_loss, good_loss)


@attrs.frozen
class LinkParams:
    """The impairments of one link direction, in netem's terms (times in seconds).

    Every field also accepts the unit strings of ``emunet.units``: ``delay="10ms"``,
    ``bandwidth="100Mbit"``, ``loss="1%"``, ``loss_ge=["1%", "30%"]``.
    """

    delay: float = attrs.field(default=0.0, converter=_named("delay", parse_time))
    """One-way propagation delay, seconds."""
    jitter: float = attrs.field(default=0.0, converter=_named("jitter", parse_time))
    """Uniform +- around ``delay``; the total delay never goes below 0."""
    bandwidth: float | None = attrs.field(
        default=None, converter=_named("bandwidth", _rate_or_none)
    )
    """bit/s; None = infinite (no serialization time)."""
    loss: float = attrs.field(default=0.0, converter=_named("loss", parse_fraction))
    """Bernoulli loss probability, 0..1."""
    loss_ge: tuple[float, float, float, float] | None = attrs.field(
        default=None, converter=_named("loss_ge", _gemodel)
    )
    """Gilbert-Elliott loss (p, r, 1-h, 1-k) as tc-netem's ``loss gemodel``."""
    duplicate: float = attrs.field(default=0.0, converter=_named("duplicate", parse_fraction))
    corrupt: float = attrs.field(default=0.0, converter=_named("corrupt", parse_fraction))
    reorder: float = attrs.field(default=0.0, converter=_named("reorder", parse_fraction))
    """Probability that a frame is held back by ``reorder_gap`` (later frames overtake it)."""
    reorder_gap: float = attrs.field(default=0.001, converter=_named("reorder_gap", parse_time))
    queue: int = attrs.field(default=1000, converter=_named("queue", _integer))
    """The sender's qdisc limit in frames (txqueuelen)."""
    mtu: int = attrs.field(default=1500, converter=_named("mtu", _integer))
    up: bool = attrs.field(default=True)

    @bandwidth.validator
    def _check_bandwidth(self, _attr: attrs.Attribute, value: float | None) -> None:
        if value is not None and not value > 0:
            raise ValueError(f"bandwidth: {value} bit/s must be positive (or None for infinite)")

    @queue.validator
    def _check_queue(self, _attr: attrs.Attribute, value: int) -> None:
        if value < 1:
            raise ValueError(f"queue: {value} frames is below the minimum 1")

    @mtu.validator
    def _check_mtu(self, _attr: attrs.Attribute, value: int) -> None:
        if value < IPV4_MIN_MTU:
            raise ValueError(f"mtu: {value} is below the IPv4 minimum {IPV4_MIN_MTU}")
        if value > MAX_MTU:
            raise ValueError(f"mtu: {value} is above the maximum {MAX_MTU}")

    @up.validator
    def _check_up(self, _attr: attrs.Attribute, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"up: expected true or false, got {value!r}")

    def __attrs_post_init__(self) -> None:
        if self.loss and self.loss_ge is not None:
            raise ValueError(
                "loss and loss_ge are two loss models; set one of them (the other to 0 / None)"
            )


_STAT_FIELDS = """
    tx_frames:    frames whose serialization ended while the link was up
    tx_bytes:     their bytes
    delivered:    copies handed to the peer (a duplicated frame can count twice)
    lost:         copies removed by the loss model (Bernoulli or Gilbert-Elliott)
    dropped_down: frames that reached a link that was down
    duplicated:   second copies made by ``duplicate``
    corrupted:    copies with one bit flipped
    reordered:    copies held back by ``reorder_gap``

Always ``delivered == tx_frames + duplicated - lost``.
"""


@attrs.frozen
class DirectionStatsSnapshot:
    __doc__ = "The counters of one link direction at one moment (frozen).\n" + _STAT_FIELDS

    tx_frames: int = 0
    tx_bytes: int = 0
    delivered: int = 0
    lost: int = 0
    dropped_down: int = 0
    duplicated: int = 0
    corrupted: int = 0
    reordered: int = 0

    def as_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


@attrs.define
class DirectionStats:
    __doc__ = "The live counters of one link direction; ``snapshot()`` freezes them.\n" + (
        _STAT_FIELDS
    )

    tx_frames: int = 0
    tx_bytes: int = 0
    delivered: int = 0
    lost: int = 0
    dropped_down: int = 0
    duplicated: int = 0
    corrupted: int = 0
    reordered: int = 0

    def snapshot(self) -> DirectionStatsSnapshot:
        return DirectionStatsSnapshot(**attrs.asdict(self))

    def as_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


def _seconds_to_ns(seconds: float) -> int:
    return round(seconds * NS_PER_S)


class Direction:
    """One direction of a full-duplex link: its wire (busy until when) and its impairments."""

    def __init__(self, params: LinkParams, rng: random.Random) -> None:
        self._rng = rng
        self.stats = DirectionStats()
        self._busy_until = 0
        self._ge_bad = False  # Gilbert-Elliott state: False = good
        self._params = LinkParams()
        self._apply(params)

    def __repr__(self) -> str:
        return f"Direction({self._params!r}, busy_until_ns={self._busy_until})"

    # --- parameters ---

    @property
    def params(self) -> LinkParams:
        return self._params

    @params.setter
    def params(self, params: LinkParams) -> None:
        self._apply(params)

    def set(self, **changes: Any) -> LinkParams:
        """Change some parameters (validated, units accepted); returns the new parameters.

        Frames already given their arrival times keep them, as in netem. The Gilbert-Elliott
        state restarts in the good state when ``loss_ge`` changes.
        """
        self._apply(attrs.evolve(self._params, **changes))
        return self._params

    def _apply(self, params: LinkParams) -> None:
        if not isinstance(params, LinkParams):
            raise TypeError(f"expected LinkParams, got {type(params).__name__}")
        if params.loss_ge != self._params.loss_ge:
            self._ge_bad = False
        self._params = params
        self._delay_ns = _seconds_to_ns(params.delay)
        self._jitter_ns = _seconds_to_ns(params.jitter)
        self._gap_ns = _seconds_to_ns(params.reorder_gap)

    # --- the wire ---

    @property
    def busy_until_ns(self) -> int:
        """When the last bit of the frame being serialized leaves (0 before any frame)."""
        return self._busy_until

    def serialization_ns(self, length: int) -> int:
        """Time on the wire of a frame of ``length`` bytes, rounded to the nanosecond."""
        bandwidth = self._params.bandwidth
        if bandwidth is None:
            return 0
        return round(length * 8 * NS_PER_S / bandwidth)

    def start(self, length: int, now_ns: int) -> int:
        """Begin serializing a frame offered at ``now_ns``; returns when its last bit leaves.

        The wire sends one frame at a time: a frame starts at ``now_ns`` or when the previous
        one ends, whichever is later. On a link that is down the frame takes no wire time.
        """
        begin = max(now_ns, self._busy_until)
        if not self._params.up:
            return begin
        end = begin + self.serialization_ns(length)
        self._busy_until = end
        return end

    def transmit(self, frame: bytes, now_ns: int) -> list[tuple[int, bytes]]:
        """The wire's verdict on a frame whose serialization ended at ``now_ns``.

        Returns ``(arrival_ns, frame)`` pairs: none when lost or down, two when duplicated
        (the original first; the two may arrive in either order). See the module docstring for
        the order of decisions and random draws.
        """
        stats = self.stats
        params = self._params
        if not params.up:
            stats.dropped_down += 1
            return []
        stats.tx_frames += 1
        stats.tx_bytes += len(frame)
        copies = 1
        if params.duplicate and self._rng.random() < params.duplicate:
            copies += 1
        if self._loss_event():
            copies -= 1
        if copies == 0:
            stats.lost += 1
            return []
        out = [self._impair(frame, now_ns)]
        if copies == 2:
            stats.duplicated += 1
            if self._loss_event():
                stats.lost += 1
            else:
                out.append(self._impair(frame, now_ns))
        stats.delivered += len(out)
        return out

    def _loss_event(self) -> bool:
        """One loss decision (netem ``loss_event``): Bernoulli or Gilbert-Elliott."""
        rng = self._rng
        ge = self._params.loss_ge
        if ge is None:
            loss = self._params.loss
            return bool(loss) and rng.random() < loss
        p, r, bad_loss, good_loss = ge
        # As netem's loss_gilb_ell: first the state transition, then the loss with the
        # probability of the state the frame met (the state before the transition).
        if self._ge_bad:
            if rng.random() < r:
                self._ge_bad = False
            return rng.random() < bad_loss
        if rng.random() < p:
            self._ge_bad = True
        return rng.random() < good_loss

    def _impair(self, frame: bytes, now_ns: int) -> tuple[int, bytes]:
        """Corrupt, reorder and delay one copy that survived the loss model."""
        rng = self._rng
        params = self._params
        stats = self.stats
        if params.corrupt and rng.random() < params.corrupt and len(frame) > ETH_HLEN:
            bit = rng.randrange(ETH_HLEN * 8, len(frame) * 8)
            mangled = bytearray(frame)
            mangled[bit >> 3] ^= 0x80 >> (bit & 7)
            frame = bytes(mangled)
            stats.corrupted += 1
        extra = 0
        if params.reorder and rng.random() < params.reorder:
            extra = self._gap_ns
            stats.reordered += 1
        delay = self._delay_ns
        if self._jitter_ns:
            delay = max(0, delay + rng.randint(-self._jitter_ns, self._jitter_ns))
        return now_ns + delay + extra, frame
