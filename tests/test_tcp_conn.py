"""Synchronous tests of emunet.stack.tcp.conn.Connection (RFC 9293 state machine, Linux 6.x).

Two kinds of tests, as smoltcp's socket/tcp.rs does them:

- one Connection fed hand-made segments at explicit times (:class:`Box`: ``box.send(...)``
  plays the peer, ``box.recv(...)`` checks what the connection sent);
- two Connections back to back through a tiny in-test wire (:class:`Wire`) with explicit
  drops, reordering, duplication and delays.
"""

from __future__ import annotations

import errno
import heapq
import random
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emunet.stack.tcp.cc import CaState
from emunet.stack.tcp.conn import Connection, TcpConfig, TcpInfo, TcpState
from emunet.wire.icmp import (
    ICMP_DEST_UNREACH,
    ICMP_FRAG_NEEDED,
    ICMP_HOST_UNREACH,
    ICMP_NET_UNREACH,
    ICMP_PORT_UNREACH,
)
from emunet.wire.tcp import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    Mss,
    Nop,
    Sack,
    SackPermitted,
    Tcp,
    Timestamps,
    WindowScale,
)

MASK = 0xFFFFFFFF
A_IP, B_IP = 0x0A000001, 0x0A000002
LPORT, RPORT = 40000, 80
ISN = 1000  # ours
PISN = 5000  # the peer's
S = TcpState


# ============================================================================ one connection


class Box:
    """One Connection under test; the test plays the peer."""

    def __init__(
        self,
        cfg: TcpConfig | None = None,
        *,
        isn: int = ISN,
        mss: int = 1460,
        ts_offset: int = 0,
        now: float = 0.0,
    ) -> None:
        self.out: list[tuple[float, Tcp, bytes]] = []
        self.counters: Counter[str] = Counter()
        self.accept = True
        self.now = now
        self.conn = Connection(
            (A_IP, LPORT),
            (B_IP, RPORT),
            isn=isn,
            mss=mss,
            config=cfg or TcpConfig(),
            counters=self.counters,
            now=now,
            xmit=self._xmit,
            ts_offset=ts_offset,
        )

    def _xmit(self, tcp: Tcp, payload: bytes) -> bool:
        self.out.append((self.now, tcp, bytes(payload)))
        return self.accept

    # -- the peer sends ("send!")
    def send(
        self,
        at: float,
        *,
        seq: int,
        ack: int = 0,
        flags: int = ACK,
        window: int = 65535,
        payload: bytes = b"",
        options: tuple = (),
    ) -> None:
        self.advance(at)
        tcp = Tcp(RPORT, LPORT, seq & MASK, ack & MASK, flags, window, 0, options)
        self.conn.process(tcp, payload, at)

    # -- what the connection sent ("recv!")
    def recv(
        self,
        *,
        flags: int | None = None,
        seq: int | None = None,
        ack: int | None = None,
        window: int | None = None,
        payload: bytes | None = None,
        length: int | None = None,
        at: float | None = None,
    ) -> Tcp:
        assert self.out, "expected a segment, none was sent"
        when, tcp, data = self.out.pop(0)
        if flags is not None:
            assert tcp.flags == flags, (tcp, flags)
        if seq is not None:
            assert tcp.seq == seq & MASK, (tcp.seq, seq)
        if ack is not None:
            assert tcp.ack == ack & MASK, (tcp.ack, ack)
        if window is not None:
            assert tcp.window == window, (tcp.window, window)
        if payload is not None:
            assert data == payload
        if length is not None:
            assert len(data) == length, (len(data), length)
        if at is not None:
            assert when == pytest.approx(at, abs=1e-9), (when, at)
        self.last_payload = data
        return tcp

    def do(self, at: float, method: str, *args, **kwargs):
        """Call ``conn.method(*args, at)`` at time ``at`` (timers before it fire first)."""
        self.advance(at)
        return getattr(self.conn, method)(*args, at, **kwargs)

    def nothing(self) -> None:
        assert not self.out, f"unexpected {self.out}"

    def drain(self) -> list[tuple[float, Tcp, bytes]]:
        out, self.out = self.out, []
        return out

    def advance(self, to: float) -> None:
        """Fire every timer due up to ``to`` at its exact time."""
        conn = self.conn
        while True:
            t = conn.poll_at()
            if t is None or t > to:
                break
            self.now = t
            conn.on_timer(t)
        self.now = max(self.now, to)

    def run(self, to: float) -> list[float]:
        """Advance to ``to``; the times at which segments were sent meanwhile."""
        start = len(self.out)
        self.advance(to)
        return [t for t, _, _ in self.out[start:]]


def syn_ack_options(ts: int | None = None, ws: int | None = None, sack: bool = False, mss=1460):
    opts: list = [Mss(mss)] if mss else []
    if sack:
        opts.append(SackPermitted())
    if ts is not None:
        opts.append(Timestamps(ts, 0))
    if ws is not None:
        opts += [Nop(), WindowScale(ws)]
    return tuple(opts)


def established(
    cfg: TcpConfig | None = None,
    *,
    options: tuple | None = None,
    window: int = 65535,
    at: float = 0.1,
    mss: int = 1460,
) -> Box:
    """An active open completed at ``at`` (RTT = at); the peer's options as given (default:
    MSS 1460 only, so no timestamps, no SACK, no window scaling)."""
    box = Box(cfg, mss=mss)
    box.conn.open_active(0.0)
    box.recv(flags=SYN)
    box.send(
        at,
        seq=PISN,
        ack=ISN + 1,
        flags=SYN | ACK,
        window=window,
        options=syn_ack_options() if options is None else options,
    )
    box.recv(flags=ACK, seq=ISN + 1, ack=PISN + 1)
    assert box.conn.state is S.ESTABLISHED
    return box


def passive(cfg: TcpConfig | None = None, *, options: tuple | None = None) -> Box:
    """A request sock: the SYN at 0 from the peer, our SYN-ACK out."""
    box = Box(cfg)
    syn = Tcp(
        RPORT, LPORT, PISN, 0, SYN, 65535, 0, syn_ack_options() if options is None else options
    )
    box.conn.open_passive(syn, 0.0)
    box.recv(flags=SYN | ACK, seq=ISN, ack=PISN + 1)
    return box


# ============================================================================ two connections


class Wire:
    """Two Connections back to back.  ``drop(src, tcp, payload, n)`` decides losses (n counts
    segments per direction); ``delay(src, tcp, payload) -> seconds`` the one-way delay."""

    def __init__(
        self,
        cfg_a: TcpConfig | None = None,
        cfg_b: TcpConfig | None = None,
        *,
        delay: float | Callable = 0.01,
        drop: Callable | None = None,
        dup: Callable | None = None,
        mss: int = 1460,
        passive_b: bool = True,
        isn_a: int = ISN,
        isn_b: int = PISN,
    ) -> None:
        self.now = 0.0
        self.events: list = []
        self.seq = 0
        self.delay = delay
        self.drop = drop
        self.dup = dup
        self.sent = {"a": 0, "b": 0}
        self.log: list[tuple[float, str, Tcp, bytes]] = []
        self.counters = {"a": Counter(), "b": Counter()}
        self.cfg_b = cfg_b or TcpConfig()
        self.mss = mss
        self.isn_b = isn_b
        self.a = self._conn("a", cfg_a or TcpConfig(), (A_IP, LPORT), (B_IP, RPORT), isn_a)
        self.b: Connection | None = None
        if not passive_b:
            self.b = self._conn("b", self.cfg_b, (B_IP, RPORT), (A_IP, LPORT), self.isn_b)

    def _conn(self, name, cfg, local, remote, isn) -> Connection:
        return Connection(
            local,
            remote,
            isn=isn,
            mss=self.mss,
            config=cfg,
            counters=self.counters[name],
            now=self.now,
            xmit=lambda tcp, payload: self._xmit(name, tcp, payload),
        )

    def _xmit(self, src: str, tcp: Tcp, payload: bytes) -> bool:
        # Every segment crosses as bytes, as on a real link.
        tcp, payload = Tcp.parse(tcp.build(payload, A_IP, B_IP))
        n = self.sent[src]
        self.sent[src] += 1
        self.log.append((self.now, src, tcp, payload))
        if self.drop is not None and self.drop(src, tcp, payload, n):
            return True
        d = self.delay(src, tcp, payload) if callable(self.delay) else self.delay
        self._push(self.now + d, src, tcp, payload)
        if self.dup is not None and self.dup(src, tcp, payload, n):
            self._push(self.now + d + 0.0005, src, tcp, payload)
        return True

    def _push(self, t: float, src: str, tcp: Tcp, payload: bytes) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, "b" if src == "a" else "a", tcp, payload))

    def run(self, until: float, *, stop: Callable[[], bool] | None = None) -> None:
        """Deliver segments and fire timers in time order up to ``until``."""
        while stop is None or not stop():
            t = self.events[0][0] if self.events else None
            for c in (self.a, self.b):
                p = c.poll_at() if c is not None else None
                if p is not None and (t is None or p < t):
                    t = p
            if t is None or t > until:
                break
            self.now = t
            if self.events and self.events[0][0] <= t:
                _, _, dst, tcp, payload = heapq.heappop(self.events)
                if dst == "b" and self.b is None:
                    if tcp.flags & SYN and not tcp.flags & ACK:
                        self.b = self._conn(
                            "b", self.cfg_b, (B_IP, RPORT), (A_IP, LPORT), self.isn_b
                        )
                        self.b.open_passive(tcp, t)
                    continue
                conn = self.a if dst == "a" else self.b
                conn.process(tcp, payload, t)
                continue
            for c in (self.a, self.b):
                if c is not None:
                    p = c.poll_at()
                    if p is not None and p <= t:
                        c.on_timer(t)
        if stop is None or not stop():
            self.now = max(self.now, until)

    def connect(self, until: float = 1.0) -> None:
        self.a.open_active(self.now)
        self.run(until, stop=lambda: self.b is not None and self.b.state is S.ESTABLISHED)
        assert self.a.state is S.ESTABLISHED

    def transfer(self, data: bytes, *, limit: float = 600.0, step: float = 0.01) -> bytes:
        """Send ``data`` from a to b, reading as it arrives; the bytes b received."""
        got = bytearray()
        sent = 0
        a = self.a
        while len(got) < len(data) and self.now < limit:
            if sent < len(data):
                sent += a.send(data[sent:], self.now)
            self.run(self.now + step)
            assert self.b is not None
            got += self.b.receive(1 << 20, self.now)
            if a.state is S.CLOSED or self.b.state is S.CLOSED:
                break
        return bytes(got)

    def segments(self, src: str, *, flags: int | None = None) -> list[tuple[float, Tcp, bytes]]:
        return [
            (t, tcp, p)
            for t, s, tcp, p in self.log
            if s == src and (flags is None or tcp.flags & flags == flags)
        ]


# ============================================================================ opening, options


def test_state_names():
    assert str(S.SYN_RECEIVED) == "SYN-RECEIVED"
    assert str(S.TIME_WAIT) == "TIME-WAIT"
    assert [str(s) for s in S] == [
        "CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
        "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT",
    ]  # fmt: skip


def test_syn_options_and_window_as_linux():
    box = Box()
    box.conn.open_active(0.0)
    syn = box.recv(flags=SYN, seq=ISN, ack=0, window=64240)
    # Linux: <mss 1460,sackOK,TS val ecr 0,nop,wscale 7>
    assert syn.options == (Mss(1460), SackPermitted(), Timestamps(0, 0), Nop(), WindowScale(7))
    assert box.conn.state is S.SYN_SENT
    assert box.counters["TcpActiveOpens"] == 1 and box.counters["TcpOutSegs"] == 1


def test_syn_options_follow_sysctls():
    box = Box(TcpConfig(sack=False, window_scaling=False))
    box.conn.open_active(0.0)
    assert box.recv(flags=SYN).options == (Mss(1460), Nop(), Nop(), Timestamps(0, 0))
    box = Box(TcpConfig(timestamps=False))
    box.conn.open_active(0.0)
    assert box.recv(flags=SYN).options == (
        Mss(1460), Nop(), Nop(), SackPermitted(), Nop(), WindowScale(7)
    )  # fmt: skip


def test_wscale_from_the_largest_receive_buffer():
    # ilog2(max(rmem[2], rmem_max)) - 15: 6 MiB -> 7, 64 MiB -> 11, else rmem_max 208 KiB -> 2
    for rmem2, shift in ((6291456, 7), (64 << 20, 11), (131072, 2)):
        box = Box(TcpConfig(rmem=(4096, 131072, rmem2)))
        box.conn.open_active(0.0)
        assert box.recv().find_option(WindowScale) == WindowScale(shift)
    # SO_RCVBUF 8192 -> rcvbuf 16384 -> window clamp 8192: no scaling needed
    box = Box(TcpConfig(rcvbuf=8192))
    box.conn.open_active(0.0)
    syn = box.recv()
    assert syn.find_option(WindowScale) == WindowScale(0)
    assert syn.window == 7300  # rounddown(8192, 1460)
    assert box.conn.rcvbuf == 16384


def test_synack_window_and_options_as_linux():
    box = passive(options=syn_ack_options(ts=777, ws=7, sack=True))
    # (already received) check the SYN-ACK in detail
    box2 = Box()
    syn = Tcp(RPORT, LPORT, PISN, 0, SYN, 64240, 0, syn_ack_options(ts=777, ws=7, sack=True))
    box2.conn.open_passive(syn, 0.5)
    sa = box2.recv(flags=SYN | ACK, seq=ISN, ack=PISN + 1, window=65160)
    assert sa.options == (Mss(1460), SackPermitted(), Timestamps(500, 777), Nop(), WindowScale(7))
    assert box.conn.state is S.SYN_RECEIVED
    # No window scale from the peer: none in the SYN-ACK, no TS/SACK either.
    box3 = Box()
    box3.conn.open_passive(Tcp(RPORT, LPORT, PISN, 0, SYN, 8192, 0, (Mss(1400),)), 0.0)
    sa = box3.recv(window=64240)
    assert sa.options == (Mss(1460),)


def test_peer_mss_clamps_ours_and_536_without_option():
    box = established(options=syn_ack_options(mss=1000))
    assert box.conn.mss_cache == 1000
    box = established(options=())
    assert box.conn.mss_cache == 536
    box = established(options=syn_ack_options(ts=5, mss=1460))
    assert box.conn.mss_cache == 1448  # 1460 - 12 bytes of timestamps
    box = established(options=syn_ack_options(mss=9000))
    assert box.conn.mss_cache == 1460  # our route MTU bounds it


def test_active_open_three_way_handshake():
    # CLOSED -> SYN-SENT -> ESTABLISHED (rcv SYN,ACK / snd ACK)
    box = Box()
    box.conn.open_active(0.0)
    box.recv(flags=SYN, seq=ISN)
    box.send(
        0.05,
        seq=PISN,
        ack=ISN + 1,
        flags=SYN | ACK,
        options=syn_ack_options(ts=100, ws=2, sack=True),
    )
    ack = box.recv(flags=ACK, seq=ISN + 1, ack=PISN + 1, window=502)  # 64256 >> 7
    assert ack.options == (Nop(), Nop(), Timestamps(50, 100))
    c = box.conn
    assert c.state is S.ESTABLISHED and c.established
    assert c.snd_wscale == 2 and c.rcv_wscale == 7 and c.sack_ok and c.tstamp_ok
    assert c.snd_wnd == 65535  # the SYN-ACK's window is never scaled
    assert box.counters["TcpCurrEstab"] == 1
    assert c.info().rtt == pytest.approx(0.05)
    assert c.info().bytes_acked == 1  # the SYN, as Linux counts it


def test_passive_open_completes_on_ack():
    # LISTEN -> SYN-RECEIVED -> ESTABLISHED (rcv ACK of SYN)
    box = passive(options=syn_ack_options(ts=10, ws=7, sack=True))
    assert box.counters["TcpPassiveOpens"] == 0
    box.send(0.03, seq=PISN + 1, ack=ISN + 1, window=600, options=(Nop(), Nop(), Timestamps(40, 0)))
    c = box.conn
    assert c.state is S.ESTABLISHED
    assert c.snd_wnd == 600 << 7
    assert box.counters["TcpPassiveOpens"] == 1 and box.counters["TcpCurrEstab"] == 1
    assert c.info().rtt == pytest.approx(0.03)
    box.nothing()


def test_listen_state_and_rst_back_to_listen():
    box = Box()
    c = box.conn
    c.open_listen(0.0)
    assert c.state is S.LISTEN
    box.send(0.0, seq=7, ack=123, flags=ACK)  # an ACK to a listener: reset
    box.recv(flags=RST, seq=123)
    box.send(0.1, seq=PISN, flags=SYN, options=(Mss(1460),))  # LISTEN -> SYN-RECEIVED
    box.recv(flags=SYN | ACK, ack=PISN + 1)
    assert c.state is S.SYN_RECEIVED
    box.send(0.2, seq=PISN + 1, flags=RST)  # SYN-RECEIVED -> LISTEN (rcv RST)
    assert c.state is S.LISTEN
    assert box.counters["TcpAttemptFails"] == 1
    c.close(0.3)  # LISTEN -> CLOSED
    assert c.state is S.CLOSED


def test_syn_sent_close():
    box = Box()
    box.conn.open_active(0.0)
    box.recv(flags=SYN)
    box.conn.close(0.5)  # SYN-SENT -> CLOSED, nothing sent (RFC 9293 3.10.4)
    assert box.conn.state is S.CLOSED and box.conn.finished
    box.nothing()
    assert box.conn.poll_at() is None


def test_simultaneous_open():
    # SYN-SENT -> SYN-RECEIVED (rcv SYN / snd SYN,ACK) -> ESTABLISHED (rcv ACK of SYN)
    box = Box()
    box.conn.open_active(0.0)
    box.recv(flags=SYN, seq=ISN)
    box.send(0.01, seq=PISN, flags=SYN, options=(Mss(1460),))
    assert box.conn.state is S.SYN_RECEIVED
    box.recv(flags=SYN | ACK, seq=ISN, ack=PISN + 1)
    # The peer's SYN-ACK (crossed): accepted in SYN-RECEIVED (tcp_validate_incoming's pass).
    box.send(0.02, seq=PISN, ack=ISN + 1, flags=SYN | ACK, options=(Mss(1460),))
    assert box.conn.state is S.ESTABLISHED
    box.recv(flags=ACK, seq=ISN + 1, ack=PISN + 1)
    assert box.counters["TcpActiveOpens"] == 1 and box.counters["TcpPassiveOpens"] == 0


def test_simultaneous_open_two_connections():
    w = Wire(passive_b=False)
    w.a.open_active(0.0)
    w.b.open_active(0.0)
    w.run(1.0)
    assert w.a.state is S.ESTABLISHED and w.b.state is S.ESTABLISHED
    assert w.transfer(b"x" * 5000) == b"x" * 5000
    assert w.counters["a"]["TcpCurrEstab"] == 1 and w.counters["b"]["TcpCurrEstab"] == 1


def test_syn_received_close_sends_fin_once_synced():
    # SYN-RECEIVED -> FIN-WAIT-1 (CLOSE / snd FIN): the FIN follows our SYN once it is acked
    box = Box()
    box.conn.open_active(0.0)
    box.recv(flags=SYN)
    box.send(0.01, seq=PISN, flags=SYN, options=(Mss(1460),))
    box.recv(flags=SYN | ACK)
    box.do(0.015, "close")
    assert box.conn.state is S.FIN_WAIT_1
    box.nothing()
    box.send(0.02, seq=PISN + 1, ack=ISN + 1)
    box.recv(flags=FIN | ACK, seq=ISN + 1, ack=PISN + 1)
    box.send(0.03, seq=PISN + 1, ack=ISN + 2)
    assert box.conn.state is S.FIN_WAIT_2


def test_active_close_through_time_wait():
    # ESTABLISHED -> FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT -> CLOSED after 60 s
    box = established()
    c = box.conn
    box.do(1.0, "shutdown")
    assert c.state is S.FIN_WAIT_1
    box.recv(flags=FIN | ACK, seq=ISN + 1, ack=PISN + 1)
    box.send(1.1, seq=PISN + 1, ack=ISN + 2)  # rcv ACK of FIN
    assert c.state is S.FIN_WAIT_2
    box.nothing()
    box.send(2.0, seq=PISN + 1, ack=ISN + 2, flags=FIN | ACK)  # rcv FIN / snd ACK
    assert c.state is S.TIME_WAIT
    box.recv(flags=ACK, seq=ISN + 2, ack=PISN + 2)
    assert c.poll_at() == pytest.approx(62.0)
    box.advance(61.999)
    assert c.state is S.TIME_WAIT
    box.advance(62.0)
    assert c.state is S.CLOSED and c.finished
    assert box.counters["TcpExtTW"] == 1
    assert box.counters["TcpEstabResets"] == 0 and box.counters["TcpCurrEstab"] == 0


def test_fin_wait_1_fin_and_ack_together_goes_to_time_wait():
    box = established()
    box.do(1.0, "shutdown")
    box.recv(flags=FIN | ACK)
    box.send(1.1, seq=PISN + 1, ack=ISN + 2, flags=FIN | ACK)
    assert box.conn.state is S.TIME_WAIT
    box.recv(flags=ACK, ack=PISN + 2)


def test_passive_close_close_wait_last_ack():
    # ESTABLISHED -> CLOSE-WAIT (rcv FIN / snd ACK) -> LAST-ACK (CLOSE / snd FIN) -> CLOSED
    box = established()
    c = box.conn
    box.send(1.0, seq=PISN + 1, ack=ISN + 1, flags=FIN | ACK)
    assert c.state is S.CLOSE_WAIT and c.eof
    assert c.receive(100, 1.0) == b""
    # The FIN's ACK goes by the delayed-ACK timer, at once as no data came before (ato 0).
    box.nothing()
    assert box.run(1.05) == [1.0]
    box.recv(flags=ACK, ack=PISN + 2)
    assert box.counters["TcpExtDelayedACKs"] == 1
    box.do(2.0, "close")
    assert c.state is S.LAST_ACK
    box.recv(flags=FIN | ACK, seq=ISN + 1, ack=PISN + 2)
    box.send(2.1, seq=PISN + 2, ack=ISN + 2)
    assert c.state is S.CLOSED and c.finished and c.error is None
    assert box.counters["TcpEstabResets"] == 0  # from ESTABLISHED only


def test_close_wait_fin_ack_piggybacks_when_closed_quickly():
    box = established()
    box.send(0.5, seq=PISN + 1, ack=ISN + 1, payload=b"request")
    box.recv(flags=ACK, ack=PISN + 8)  # quick ACK
    assert box.conn.receive(100, 0.5) == b"request"
    box.send(0.6, seq=PISN + 8, ack=ISN + 1, flags=FIN | ACK)
    # ping-pong mode after a FIN (tcp_fin): the ACK waits up to ato = 40 ms
    assert box.conn.poll_at() == pytest.approx(0.64)
    box.do(0.61, "close")
    # One segment: the FIN carries the ACK of the peer's FIN
    box.recv(flags=FIN | ACK, seq=ISN + 1, ack=PISN + 9)
    box.nothing()
    assert box.run(0.8) == []  # (the FIN is retransmitted at 0.91: RTO 0.3 s)


def test_simultaneous_close():
    # FIN-WAIT-1 -> CLOSING (rcv FIN / snd ACK) -> TIME-WAIT (rcv ACK of FIN)
    box = established()
    c = box.conn
    box.do(1.0, "shutdown")
    box.recv(flags=FIN | ACK, seq=ISN + 1)
    box.send(1.05, seq=PISN + 1, ack=ISN + 1, flags=FIN | ACK)  # their FIN crossed ours
    assert c.state is S.CLOSING
    box.recv(flags=ACK, seq=ISN + 2, ack=PISN + 2)
    box.send(1.1, seq=PISN + 2, ack=ISN + 2)
    assert c.state is S.TIME_WAIT
    assert c.poll_at() == pytest.approx(61.1)


def test_simultaneous_close_two_connections():
    w = Wire()
    w.connect()
    w.a.shutdown(w.now)
    w.b.shutdown(w.now)
    w.run(w.now + 1)
    assert w.a.state is S.TIME_WAIT and w.b.state is S.TIME_WAIT
    w.run(w.now + 61)
    assert w.a.finished and w.b.finished


def test_time_wait_reacks_retransmitted_fin_and_restarts_timer():
    box = established()
    c = box.conn
    box.do(1.0, "shutdown")
    box.recv(flags=FIN | ACK)
    box.send(1.1, seq=PISN + 1, ack=ISN + 2, flags=FIN | ACK)
    box.recv(flags=ACK, ack=PISN + 2)
    assert c.poll_at() == pytest.approx(61.1)
    box.send(30.0, seq=PISN + 1, ack=ISN + 2, flags=FIN | ACK)  # our ACK was lost
    box.recv(flags=ACK, seq=ISN + 2, ack=PISN + 2)
    assert c.poll_at() == pytest.approx(90.0)  # TIME-WAIT restarted
    box.advance(90.0)
    assert c.finished


def test_time_wait_assassination_by_rst():
    box = established()
    box.do(1.0, "shutdown")
    box.recv()
    box.send(1.1, seq=PISN + 1, ack=ISN + 2, flags=FIN | ACK)
    box.recv()
    box.send(2.0, seq=PISN + 2, flags=RST)
    assert box.conn.finished  # tcp_rfc1337 = 0


def test_time_wait_new_syn_isn():
    box = established()
    box.do(1.0, "shutdown")
    box.recv()
    box.send(1.1, seq=PISN + 1, ack=ISN + 2, flags=FIN | ACK)
    box.recv()
    newer = Tcp(RPORT, LPORT, PISN + 100000, 0, SYN, 65535)
    older = Tcp(RPORT, LPORT, (PISN - 100000) & MASK, 0, SYN, 65535)
    assert box.conn.timewait_syn_isn(newer) == ISN + 2 + 65535 + 2
    assert box.conn.timewait_syn_isn(older) is None


def test_orphan_fin_wait_2_times_out():
    box = established()
    c = box.conn
    box.do(1.0, "close")
    box.recv(flags=FIN | ACK)
    box.send(1.1, seq=PISN + 1, ack=ISN + 2)
    assert c.state is S.FIN_WAIT_2
    assert c.poll_at() == pytest.approx(61.1)  # tcp_fin_timeout
    box.advance(61.1)
    assert c.finished
    box.nothing()


def test_half_closed_fin_wait_2_stays():
    box = established()
    c = box.conn
    box.do(1.0, "shutdown")
    box.recv()
    box.send(1.1, seq=PISN + 1, ack=ISN + 2)
    assert c.state is S.FIN_WAIT_2
    assert c.poll_at() is None  # not closed by the user: no timeout
    box.send(5.0, seq=PISN + 1, ack=ISN + 2, payload=b"late data")
    assert c.receive(100, 5.0) == b"late data"


def test_data_after_close_resets():
    box = established()
    c = box.conn
    box.do(1.0, "close")
    box.recv(flags=FIN | ACK)
    box.send(1.05, seq=PISN + 1, ack=ISN + 1, payload=b"more")  # data after close()
    box.recv(flags=RST, seq=ISN + 1)
    assert c.state is S.CLOSED
    assert box.counters["TcpExtTCPAbortOnData"] == 1


def test_close_with_unread_data_resets():
    box = established()
    c = box.conn
    box.send(1.0, seq=PISN + 1, ack=ISN + 1, payload=b"unread")
    box.drain()
    box.do(1.5, "close")
    rst = box.recv(flags=RST | ACK, seq=ISN + 1, ack=PISN + 7)
    assert rst is not None
    assert c.state is S.CLOSED
    assert box.counters["TcpExtTCPAbortOnClose"] == 1
    assert box.counters["TcpEstabResets"] == 1 and box.counters["TcpOutRsts"] == 1


def test_abort_sends_rst():
    box = established()
    box.do(1.0, "abort")
    box.recv(flags=RST | ACK, seq=ISN + 1, ack=PISN + 1)
    assert box.conn.finished and box.conn.error == errno.ECONNRESET


# ============================================================================ RFC 5961


def test_rst_out_of_window_is_ignored():
    box = established()
    box.send(1.0, seq=PISN + 1 + 70000, flags=RST)
    box.send(1.0, seq=PISN - 10, flags=RST)
    assert box.conn.state is S.ESTABLISHED
    box.nothing()


def test_rst_in_window_but_not_exact_draws_challenge_ack():
    box = established()
    box.send(1.0, seq=PISN + 1 + 1000, flags=RST)
    assert box.conn.state is S.ESTABLISHED
    box.recv(flags=ACK, seq=ISN + 1, ack=PISN + 1)
    assert box.counters["TcpExtTCPChallengeACK"] == 1
    # Linux >= 6.0: at most one per socket per 500 ms (tcp_invalid_ratelimit)
    box.send(1.2, seq=PISN + 1 + 2000, flags=RST)
    box.nothing()
    assert box.counters["TcpExtTCPACKSkippedChallenge"] == 1
    box.send(1.5, seq=PISN + 1 + 3000, flags=RST)
    box.recv(flags=ACK, ack=PISN + 1)
    assert box.counters["TcpExtTCPChallengeACK"] == 2


def test_rst_exact_resets():
    box = established()
    box.send(1.0, seq=PISN + 1, flags=RST)
    c = box.conn
    assert c.state is S.CLOSED and c.error == errno.ECONNRESET and c.finished
    box.nothing()
    assert box.counters["TcpEstabResets"] == 1 and box.counters["TcpCurrEstab"] == 0


def test_rst_in_close_wait_is_epipe():
    box = established()
    box.send(1.0, seq=PISN + 1, ack=ISN + 1, flags=FIN | ACK)
    box.send(1.1, seq=PISN + 2, flags=RST)
    assert box.conn.error == errno.EPIPE and box.conn.finished
    assert box.counters["TcpEstabResets"] == 1


def test_syn_in_established_draws_challenge_ack():
    box = established()
    box.send(1.0, seq=PISN + 500, flags=SYN, options=(Mss(1460),))
    assert box.conn.state is S.ESTABLISHED
    box.recv(flags=ACK, seq=ISN + 1, ack=PISN + 1)
    assert box.counters["TcpExtTCPSYNChallenge"] == 1
    assert box.counters["TcpExtTCPChallengeACK"] == 1
    assert box.counters["TcpInErrs"] == 1


def test_blind_data_injection_is_dropped_with_challenge_ack():
    box = established()
    c = box.conn
    box.do(1.0, "send", b"a" * 1000)
    box.recv(length=1000)
    box.send(1.1, seq=PISN + 1, ack=ISN + 1001)
    # ACK below SND.UNA - MAX.SND.WND (bytes_acked bounds it: 1001 bytes acked so far)
    box.send(1.2, seq=PISN + 1, ack=ISN - 50000, payload=b"evil")
    box.recv(flags=ACK, seq=ISN + 1001, ack=PISN + 1)
    assert c.readable == 0
    assert box.counters["TcpExtTCPChallengeACK"] == 1
    # An old but plausible ACK still delivers its data
    box.send(1.3, seq=PISN + 1, ack=ISN + 500, payload=b"good")
    assert c.receive(10, 1.3) == b"good"


def test_ack_of_unsent_data_is_dropped():
    box = established()
    box.send(1.0, seq=PISN + 1, ack=ISN + 5000, payload=b"data")
    assert box.conn.readable == 0
    box.nothing()


def test_syn_sent_rst_rules():
    # RST without ACK: ignored; with an unacceptable ACK: ignored; acking our SYN: refused
    box = Box()
    box.conn.open_active(0.0)
    box.recv()
    box.send(0.1, seq=0, flags=RST)
    box.send(0.1, seq=0, ack=ISN + 7, flags=RST | ACK)
    assert box.conn.state is S.SYN_SENT
    box.nothing()
    box.send(0.2, seq=0, ack=ISN + 1, flags=RST | ACK)
    assert box.conn.state is S.CLOSED and box.conn.error == errno.ECONNREFUSED
    assert box.counters["TcpAttemptFails"] == 1


def test_syn_sent_bad_ack_gets_reset():
    box = Box()
    box.conn.open_active(0.0)
    box.recv()
    box.send(0.1, seq=PISN, ack=ISN + 100, flags=SYN | ACK)
    box.recv(flags=RST, seq=ISN + 100)
    assert box.conn.state is S.SYN_SENT
    # and the SYN goes again soon (TCP_TIMEOUT_MIN) as nothing was retransmitted yet
    assert box.conn.poll_at() == pytest.approx(0.102)


def test_syn_received_bad_ack_gets_reset():
    box = passive()
    box.send(0.1, seq=PISN + 1, ack=ISN + 99)
    box.recv(flags=RST, seq=ISN + 99)
    assert box.conn.state is S.SYN_RECEIVED


def test_syn_received_rst_drops_request():
    box = passive()
    box.send(0.1, seq=PISN + 1, flags=RST)
    assert box.conn.finished
    assert box.counters["TcpAttemptFails"] == 1
    box.nothing()


def test_paws_rejects_old_timestamp():
    box = established(options=syn_ack_options(ts=1000, ws=7, sack=True))
    c = box.conn
    ts = lambda v: (Nop(), Nop(), Timestamps(v, 100))  # noqa: E731
    box.send(1.0, seq=PISN + 1, ack=ISN + 1, payload=b"one", options=ts(2000))
    assert c.receive(10, 1.0) == b"one"
    box.drain()
    box.send(1.1, seq=PISN + 4, ack=ISN + 1, payload=b"old", options=ts(1500))
    assert c.readable == 0
    assert box.counters["TcpExtPAWSEstab"] == 1
    box.recv(flags=ACK, ack=PISN + 4)  # a duplicate ACK answers it


# ============================================================================ timers


def test_syn_retransmissions_then_etimedout_at_127s():
    box = Box()
    c = box.conn
    c.open_active(0.0)
    box.run(200.0)
    assert [t for t, _, _ in box.out] == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0]
    assert all(tcp.flags == SYN and tcp.seq == ISN for _, tcp, _ in box.out)
    assert c.state is S.CLOSED and c.error == errno.ETIMEDOUT
    assert box.counters["TcpExtTCPTimeouts"] == 7
    assert box.counters["TcpRetransSegs"] == 6 and box.counters["TcpExtTCPSynRetrans"] == 6
    assert box.counters["TcpOutSegs"] == 1
    assert box.counters["TcpAttemptFails"] == 1
    assert box.counters["TcpExtTCPAbortOnTimeout"] == 1


def test_syn_timeout_time_is_exact():
    box = Box()
    box.conn.open_active(0.0)
    box.advance(126.999)
    assert box.conn.state is S.SYN_SENT
    box.advance(127.0)
    assert box.conn.state is S.CLOSED


def test_syn_linear_timeouts_of_linux_6_5():
    box = Box(TcpConfig(syn_linear_timeouts=4))
    box.conn.open_active(0.0)
    assert box.run(300.0) == [1, 2, 3, 4, 5, 7, 11, 19, 35, 67]
    assert box.conn.error == errno.ETIMEDOUT and box.now == 300.0


def test_synack_retransmissions_then_drop():
    box = passive()
    assert box.run(100.0) == [1.0, 3.0, 7.0, 15.0, 31.0]
    assert box.conn.finished
    assert box.counters["TcpRetransSegs"] == 5 and box.counters["TcpExtTCPSynRetrans"] == 5
    assert box.counters["TcpExtTCPTimeouts"] == 6


def test_retransmitted_syn_gets_synack_again():
    box = passive()
    box.send(0.5, seq=PISN, flags=SYN, options=(Mss(1460),))
    box.recv(flags=SYN | ACK, seq=ISN, ack=PISN + 1, at=0.5)
    assert box.conn.poll_at() == pytest.approx(1.5)  # timer restarted, TCP_TIMEOUT_INIT << 0
    assert box.counters["TcpRetransSegs"] == 1
    box.send(0.6, seq=PISN, flags=SYN, options=(Mss(1460),))  # rate limited (500 ms)
    box.nothing()


def test_handshake_with_retransmitted_syn_falls_back_to_3s_rto_without_timestamps():
    box = Box()
    box.conn.open_active(0.0)
    box.advance(1.0)
    box.drain()
    box.send(1.5, seq=PISN, ack=ISN + 1, flags=SYN | ACK, options=(Mss(1460),))
    # Karn: no RTT sample from a retransmitted SYN, no timestamps -> RTO 3 s (RFC 6298 5.7)
    assert box.conn.info().rtt is None and box.conn.rto == 3.0
    assert box.conn.cwnd == 10  # one SYN retransmission keeps the initial window


def test_rto_never_below_200ms():
    box = established(at=0.001)  # RTT 1 ms
    c = box.conn
    assert c.rto == pytest.approx(0.201)
    box.do(1.0, "send", b"x" * 100)
    box.recv(length=100, at=1.0)
    times = box.run(1.7)
    assert times == [pytest.approx(1.201), pytest.approx(1.603)]  # 0.201, then doubled
    assert box.counters["TcpExtTCPTimeouts"] == 2
    assert box.counters["TcpRetransSegs"] == 2
    assert c.ca_state is CaState.LOSS and c.cwnd == 1


def test_retries2_time_budget_etimedout():
    box = established(at=0.001)
    c = box.conn
    box.do(1.0, "send", b"x" * 100)
    box.recv()
    box.advance(2000.0)
    times = [t for t, _, _ in box.drain()]
    assert len(times) == 15  # 15 retransmissions: tcp_retries2
    # tcp_model_timeout(15, 200 ms) = 1023 * 0.2 + 6 * 120 = 924.6 s from the first send
    expect = []
    t, rto = 1.0, 0.201
    for _ in range(16):
        t += rto
        expect.append(t)
        rto = min(rto * 2, 120.0)
    assert times == pytest.approx(expect[:15])
    assert expect[14] - 1.0 < 924.6 <= expect[15] - 1.0
    assert c.error == errno.ETIMEDOUT and c.finished
    assert box.counters["TcpExtTCPAbortOnTimeout"] == 1 and box.counters["TcpEstabResets"] == 1


def test_rto_backoff_reset_by_valid_rtt_sample():
    box = established(options=syn_ack_options(ts=1, ws=0), at=0.05)  # no SACK: no TLP
    c = box.conn
    box.do(1.0, "send", b"a" * 100)
    box.recv()
    box.advance(1.3)  # RTO 0.25 -> retransmission at 1.25, backoff 1
    box.recv(at=1.25)
    assert c.rto == pytest.approx(0.5)
    # The ACK echoes the retransmission's timestamp: a valid sample despite Karn
    box.send(1.3, seq=PISN + 1, ack=ISN + 101, options=(Nop(), Nop(), Timestamps(2, 1250)))
    assert c.info().backoff == 0 and c.rto < 0.5
    assert c.ca_state is CaState.LOSS  # (NewReno leaves LOSS once above the recovery point)


def test_zero_window_probes_back_off():
    box = established(at=0.1)  # RTO 0.3
    c = box.conn
    box.do(1.0, "send", b"a" * 1000)
    box.recv(length=1000)
    box.send(1.1, seq=PISN + 1, ack=ISN + 1001, window=0)  # all acked, window closed
    box.do(1.2, "send", b"b" * 500)
    box.nothing()
    times = box.run(4.0)
    assert times == pytest.approx([1.5, 2.1, 3.3])  # probe0 base 0.3, doubling
    for _, probe, data in box.drain():
        assert probe.seq == ISN + 1000 and probe.flags == ACK and not data  # snd_una - 1
    assert box.counters["TcpExtTCPWinProbe"] == 3
    # The peer answers with the window open: the data goes at once
    box.send(4.0, seq=PISN + 1, ack=ISN + 1001, window=1000)
    box.recv(seq=ISN + 1001, length=500)
    assert c.info().backoff == 0


def test_zero_window_probe_answered_keeps_connection_forever():
    box = established(at=0.1)
    c = box.conn
    box.send(0.5, seq=PISN + 1, ack=ISN + 1, window=0)
    box.do(1.0, "send", b"b" * 500)
    for _ in range(40):
        when = c.poll_at()
        box.advance(when)
        box.recv(seq=ISN)
        box.send(when + 0.1, seq=PISN + 1, ack=ISN + 1, window=0)
    assert c.state is S.ESTABLISHED
    assert c.poll_at() - box.now <= 120.0  # the interval is capped at TCP_RTO_MAX


def test_small_window_gets_partial_probe():
    # tcp_write_wakeup: a window too small for the segment is filled by the probe
    box = established(at=0.1)
    box.send(0.5, seq=PISN + 1, ack=ISN + 1, window=100)
    box.do(1.0, "send", b"z" * 1000)
    box.nothing()  # 1000 bytes do not fit a 100-byte window (sender SWS avoidance)
    box.advance(1.3)
    box.recv(seq=ISN + 1, length=100, at=1.3)


def test_keepalive_probes_and_reset():
    cfg = TcpConfig(keepalive=True, keepalive_time=100.0, keepalive_intvl=10.0, keepalive_probes=3)
    box = established(cfg, at=0.1)
    c = box.conn
    times = box.run(200.0)
    assert times == pytest.approx([100.1, 110.1, 120.1, 130.1])
    probes = box.drain()
    for _, tcp, data in probes[:3]:
        assert tcp.seq == ISN and tcp.flags == ACK and not data
    assert probes[3][1].flags == RST | ACK
    assert c.error == errno.ETIMEDOUT and c.finished
    assert box.counters["TcpExtTCPKeepAlive"] == 3


def test_keepalive_answered():
    cfg = TcpConfig(keepalive=True, keepalive_time=100.0, keepalive_intvl=10.0)
    box = established(cfg, at=0.1)
    box.advance(100.1)
    box.recv(seq=ISN, at=100.1)
    box.send(100.2, seq=PISN + 1, ack=ISN + 1)
    box.advance(150.0)
    box.nothing()
    assert box.conn.poll_at() == pytest.approx(200.2)


def test_keepalive_off_by_default():
    box = established()
    assert box.conn.poll_at() is None
    box.advance(100000.0)
    box.nothing()


# ============================================================================ receiving


def seg(i: int, size: int = 1460) -> int:
    """The peer's sequence number of its i-th full segment."""
    return PISN + 1 + i * size


def test_quick_acks_then_delayed_acks():
    box = established(at=0.1)
    c = box.conn
    data = b"d" * 1460
    t = 1.0
    for i in range(16):  # quick-ack mode at the start (tcp_incr_quickack: up to 16)
        box.send(t, seq=seg(i), ack=ISN + 1, payload=data)
        box.recv(flags=ACK, ack=seg(i + 1), at=t)
        assert c.receive(1 << 16, t) == data
        t += 0.01
    box.send(t, seq=seg(16), ack=ISN + 1, payload=data)
    c.receive(1 << 16, t)
    box.nothing()  # delayed: ato is 40 ms
    assert c.poll_at() == pytest.approx(t + 0.04)
    box.send(t + 0.01, seq=seg(17), ack=ISN + 1, payload=data)
    box.recv(flags=ACK, ack=seg(18), at=t + 0.01)  # every second full segment is ACKed
    c.receive(1 << 16, t + 0.01)
    assert c.poll_at() is None
    box.send(t + 0.02, seq=seg(18), ack=ISN + 1, payload=data)
    c.receive(1 << 16, t + 0.02)
    box.advance(t + 0.5)
    box.recv(flags=ACK, ack=seg(19), at=t + 0.06)  # the delayed-ACK timer, 40 ms
    assert box.counters["TcpExtDelayedACKs"] == 1


def test_delayed_ack_bounded_by_delack_max():
    box = established(at=0.5)  # srtt 0.5 s does not lift the bound past 200 ms
    c = box.conn
    c._quick = 0
    box.send(1.0, seq=seg(0), ack=ISN + 1, payload=b"x" * 10)
    box.drain()
    c._ato = 5.0  # as if inflated by missed delayed ACKs
    c._quick = 0
    box.send(3.0, seq=seg(0) + 10, ack=ISN + 1, payload=b"y" * 10)
    when = c.poll_at()
    assert when - 3.0 <= 0.2 + 1e-9


def test_out_of_order_segment_gets_immediate_dupack_with_sack():
    box = established(options=syn_ack_options(sack=True))
    c = box.conn
    box.send(1.0, seq=seg(1), ack=ISN + 1, payload=b"b" * 1460)  # seg 0 missing
    dup = box.recv(flags=ACK, ack=seg(0), at=1.0)
    assert dup.find_option(Sack) == Sack(((seg(1), seg(2)),))
    assert box.counters["TcpExtTCPOFOQueue"] == 1
    box.send(1.01, seq=seg(3), ack=ISN + 1, payload=b"d" * 1460)
    dup = box.recv(flags=ACK, ack=seg(0))
    # the block of the most recent segment first (RFC 2018 section 4)
    assert dup.find_option(Sack) == Sack(((seg(3), seg(4)), (seg(1), seg(2))))
    box.send(1.02, seq=seg(0), ack=ISN + 1, payload=b"a" * 1460)  # fills the first hole
    fill = box.recv(flags=ACK, ack=seg(2), at=1.02)
    assert fill.find_option(Sack) == Sack(((seg(3), seg(4)),))
    assert c.receive(1 << 16, 1.02) == b"a" * 1460 + b"b" * 1460


def test_duplicate_segment_gets_dsack():
    box = established(options=syn_ack_options(sack=True))
    c = box.conn
    box.send(1.0, seq=seg(0), ack=ISN + 1, payload=b"a" * 1000)
    box.drain()
    box.send(1.1, seq=seg(0), ack=ISN + 1, payload=b"a" * 1000)  # a spurious retransmission
    ack = box.recv(flags=ACK, ack=seg(0) + 1000, at=1.1)
    assert ack.find_option(Sack) == Sack(((seg(0), seg(0) + 1000),))  # D-SACK (RFC 2883)
    assert box.counters["TcpExtTCPDSACKOldSent"] == 1
    assert box.counters["TcpExtDelayedACKLost"] == 1
    assert c.receive(5000, 1.1) == b"a" * 1000
    # Without SACK: the immediate ACK, no option
    box = established()
    box.send(1.0, seq=seg(0), ack=ISN + 1, payload=b"a" * 1000)
    box.drain()
    box.send(1.1, seq=seg(0), ack=ISN + 1, payload=b"a" * 1000)
    assert box.recv(flags=ACK, ack=seg(0) + 1000).options == ()


def test_sack_blocks_limited_to_three_with_timestamps():
    box = established(options=syn_ack_options(sack=True, ts=5, ws=0))
    for i in (1, 3, 5, 7, 9):
        box.send(1.0 + i / 100, seq=seg(i, 100), ack=ISN + 1, payload=b"x" * 100,
                 options=(Nop(), Nop(), Timestamps(10 + i, 0)))  # fmt: skip
    last = box.drain()[-1][1]
    blocks = last.find_option(Sack).blocks
    assert len(blocks) == 3 and blocks[0] == (seg(9, 100), seg(10, 100))


def test_receive_window_never_shrinks_and_zero_window():
    box = established(TcpConfig(rcvbuf=4096), at=0.1)  # buffer 8192, window space 4096
    c = box.conn
    assert c.rcv_wnd == 2920  # rounddown(4096, 1460); no scaling
    box.send(1.0, seq=seg(0), ack=ISN + 1, payload=b"a" * 1460)
    assert box.recv(ack=seg(1), at=1.0).window == 1460  # quick ACK; 2636 free -> 1 MSS
    box.send(1.01, seq=seg(1), ack=ISN + 1, payload=b"b" * 1460)
    box.nothing()  # not more than one full segment since the last ACK: delayed
    box.advance(1.1)
    # 1176 bytes free is less than an MSS: the window closes (silly window avoidance), but
    # its right edge stays where it was
    zero = box.recv(ack=seg(2), window=0, at=1.05)
    assert seg(2) + zero.window == seg(1) + 1460
    # Data beyond a zero window is dropped and ACKed at once
    box.send(1.2, seq=seg(2), ack=ISN + 1, payload=b"c" * 100)
    box.recv(ack=seg(2), window=0, at=1.2)
    assert c.readable == 2920
    assert box.counters["TcpExtTCPZeroWindowDrop"] == 1
    assert box.counters["TcpExtTCPToZeroWindowAdv"] == 1
    # Reading opens the window: a window update goes out (tcp_cleanup_rbuf)
    assert len(box.do(1.3, "receive", 1 << 16)) == 2920
    box.recv(flags=ACK, ack=seg(2), window=2920, at=1.3)
    assert box.counters["TcpExtTCPFromZeroWindowAdv"] == 1


def test_receive_buffer_autotuning_grows():
    w = Wire(delay=0.01)
    w.connect()
    before = w.b.rcvbuf
    data = random.Random(3).randbytes(3_000_000)
    assert w.transfer(data) == data
    assert w.b.rcvbuf > before
    assert w.b.info().rcv_wnd > 65535  # scaled window grew past 64 KiB
    # SO_RCVBUF disables autotuning
    w = Wire(cfg_b=TcpConfig(rcvbuf=65536))
    w.connect()
    assert w.transfer(data[:500_000]) == data[:500_000]
    assert w.b.rcvbuf == 131072


def test_send_buffer_grows_with_cwnd():
    w = Wire(delay=0.01)
    w.connect()
    assert w.a.sndbuf == 2 * 10 * 1460  # tcp_sndbuf_expand: 2 * cwnd * max(mss_clamp, mss)
    data = bytes(2_000_000)
    assert w.transfer(data) == data
    assert w.a.sndbuf >= 2 * w.a.cwnd * 1448 // 2
    w = Wire(TcpConfig(sndbuf=10000))
    w.connect()
    assert w.a.sndbuf == 20000
    assert w.transfer(data[:100_000]) == data[:100_000]
    assert w.a.sndbuf == 20000


# ============================================================================ sending


def test_nagle_holds_a_second_small_segment():
    box = established(at=0.1)
    c = box.conn
    box.do(1.0, "send", b"a" * 100)
    box.recv(seq=ISN + 1, length=100, flags=ACK | PSH, at=1.0)
    box.do(1.01, "send", b"b" * 100)
    box.do(1.02, "send", b"c" * 100)
    box.nothing()  # a small segment is in flight (Minshall's Nagle)
    box.send(1.1, seq=PISN + 1, ack=ISN + 101)
    box.recv(seq=ISN + 101, length=200, at=1.1)
    # Full segments are never held; the tail goes when no small segment is in flight
    box.send(1.2, seq=PISN + 1, ack=ISN + 301)
    box.do(1.3, "send", b"x" * 3000)
    assert [len(p) for _, _, p in box.drain()] == [1460, 1460, 80]
    assert c.info().send_q == 3000


def test_nodelay_sends_at_once():
    box = established(TcpConfig(nodelay=True), at=0.1)
    box.do(1.0, "send", b"a" * 100)
    box.do(1.01, "send", b"b" * 100)
    assert [len(p) for _, _, p in box.drain()] == [100, 100]
    # TCP_NODELAY switched on later pushes what Nagle held
    box = established(at=0.1)
    box.do(1.0, "send", b"a" * 100)
    box.do(1.01, "send", b"b" * 100)
    assert len(box.drain()) == 1
    box.do(1.02, "set_nodelay", True)
    box.recv(seq=ISN + 101, length=100)


def test_shutdown_pushes_held_data_with_fin():
    box = established(at=0.1)
    box.do(1.0, "send", b"a" * 100)
    box.do(1.01, "send", b"b" * 100)
    box.drain()
    box.do(1.02, "shutdown")
    box.recv(flags=ACK | PSH | FIN, seq=ISN + 101, length=100)


def test_initial_window_and_segment_sizes():
    box = established(at=0.1, options=syn_ack_options(ts=1, ws=7, sack=True))
    box.do(1.0, "send", b"x" * 100_000)
    sent = box.drain()
    assert len(sent) == 10  # initial cwnd 10
    assert all(len(p) == 1448 for _, _, p in sent)  # 1460 - timestamps
    assert box.counters["TcpOutSegs"] == 12 and box.counters["TcpExtTCPOrigDataSent"] == 10


def test_peer_window_limits_sending():
    box = established(at=0.1, window=3000)
    box.do(1.0, "send", b"x" * 10000)
    assert [len(p) for _, _, p in box.drain()] == [1460, 1460]  # a third would pass 3000
    box.send(1.1, seq=PISN + 1, ack=ISN + 1461, window=3000)
    box.recv(seq=ISN + 2921, length=1460)
    box.nothing()
    # tcp_bound_to_half_wnd: segments at most half the largest window the peer offered
    box = established(at=0.1, window=2000)
    assert box.conn.mss_cache == 1000
    box.do(1.0, "send", b"x" * 10000)
    assert [len(p) for _, _, p in box.drain()] == [1000, 1000]


def test_local_drop_enters_cwr_and_retries():
    box = established(at=0.1)
    c = box.conn
    box.accept = False
    box.do(1.0, "send", b"x" * 3000)
    assert len(box.drain()) == 1  # refused by the device queue: not lost, not sent
    assert c.ca_state is CaState.CWR
    assert c.snd_nxt == ISN + 1
    box.accept = True
    when = c.poll_at()
    assert when == pytest.approx(1.3)  # the probe timer retries (tcp_check_probe_timer)
    box.advance(when)
    got = box.drain()
    assert got and got[0][1].seq == ISN + 1


# ============================================================================ loss recovery


def sent_seqs(box: Box) -> list[int]:
    return [tcp.seq - ISN - 1 for _, tcp, _ in box.drain()]


def test_fast_retransmit_newreno():
    box = established(at=0.1)  # no SACK
    c = box.conn
    box.do(1.0, "send", b"x" * 14600)
    assert sent_seqs(box) == [i * 1460 for i in range(10)]
    box.send(1.1, seq=PISN + 1, ack=ISN + 1461)  # segment 0 arrived (a window update too)
    assert sent_seqs(box) == []  # nothing new to send
    # segment 1 lost: three duplicate ACKs
    box.send(1.1, seq=PISN + 1, ack=ISN + 1461)
    box.send(1.1, seq=PISN + 1, ack=ISN + 1461)
    assert c.ca_state is CaState.DISORDER
    box.nothing()
    box.send(1.1, seq=PISN + 1, ack=ISN + 1461)
    assert c.ca_state is CaState.RECOVERY
    box.recv(seq=ISN + 1461, length=1460, at=1.1)  # fast retransmit
    assert box.counters["TcpExtTCPFastRetrans"] == 1
    assert box.counters["TcpExtTCPRenoRecovery"] == 1
    assert c.ssthresh == 7  # CUBIC: 11 * 717 / 1024
    # partial ACK (RFC 6582): segment 4 was lost too -> retransmitted at once
    box.send(1.2, seq=PISN + 1, ack=ISN + 1 + 4 * 1460)
    assert sent_seqs(box) == [4 * 1460]
    assert c.ca_state is CaState.RECOVERY
    # everything acked: NewReno holds the state until something above the recovery point is
    # acked (RFC 6582, Linux tcp_try_undo_recovery), then cwnd = ssthresh
    box.send(1.3, seq=PISN + 1, ack=ISN + 1 + 14600)
    assert c.ca_state is CaState.RECOVERY
    box.do(1.4, "send", b"y" * 100)
    box.recv(seq=ISN + 1 + 14600, length=100)
    box.send(1.5, seq=PISN + 1, ack=ISN + 1 + 14700)
    assert c.ca_state is CaState.OPEN and c.cwnd == 7
    assert box.counters["TcpRetransSegs"] == 2 and box.counters["TcpExtTCPTimeouts"] == 0


def test_sack_recovery():
    box = established(at=0.1, options=syn_ack_options(sack=True))
    c = box.conn
    box.do(1.0, "send", b"x" * 14600)
    box.drain()

    def sack(*segs):
        return (
            Nop(),
            Nop(),
            Sack(tuple((ISN + 1 + a * 1460, ISN + 1 + b * 1460) for a, b in segs)),
        )

    # segments 0 and 5 lost
    box.send(1.1, seq=PISN + 1, ack=ISN + 1, options=sack((1, 2)))
    box.send(1.1, seq=PISN + 1, ack=ISN + 1, options=sack((1, 3)))
    assert c.ca_state is CaState.DISORDER
    box.nothing()
    box.send(1.1, seq=PISN + 1, ack=ISN + 1, options=sack((1, 4)))  # 3 SACKed above: IsLost
    assert c.ca_state is CaState.RECOVERY
    assert sent_seqs(box) == [0]
    assert box.counters["TcpExtTCPSackRecovery"] == 1
    box.send(1.1, seq=PISN + 1, ack=ISN + 1, options=sack((1, 5)))
    box.send(1.1, seq=PISN + 1, ack=ISN + 1, options=sack((6, 7), (1, 5)))
    box.send(1.1, seq=PISN + 1, ack=ISN + 1, options=sack((6, 8), (1, 5)))
    box.send(1.1, seq=PISN + 1, ack=ISN + 1, options=sack((6, 9), (1, 5)))  # 5 is lost now
    assert 5 * 1460 in sent_seqs(box)
    box.send(1.2, seq=PISN + 1, ack=ISN + 1 + 5 * 1460, options=sack((6, 10)))
    box.send(1.2, seq=PISN + 1, ack=ISN + 1 + 14600)
    assert c.ca_state is CaState.OPEN and c.cwnd == c.ssthresh == 7
    assert box.counters["TcpExtTCPFastRetrans"] == 2
    assert box.counters["TcpExtTCPTimeouts"] == 0


def test_dsack_received_is_counted():
    box = established(at=0.1, options=syn_ack_options(sack=True))
    box.do(1.0, "send", b"x" * 1460)
    box.drain()
    box.send(1.1, seq=PISN + 1, ack=ISN + 1461)
    box.send(
        1.2, seq=PISN + 1, ack=ISN + 1461, options=(Nop(), Nop(), Sack(((ISN + 1, ISN + 1461),)))
    )
    assert box.counters["TcpExtTCPDSACKRecv"] == 1


def test_rto_go_back_n_in_loss_state():
    box = established(at=0.1, options=syn_ack_options(sack=True))
    c = box.conn
    box.do(1.0, "send", b"x" * 5 * 1460)
    box.drain()
    box.advance(1.3)  # a tail loss probe first (2 * SRTT + 2 ms): the last segment again
    assert [(t, tcp.seq - ISN - 1) for t, tcp, _ in box.drain()] == [(pytest.approx(1.202), 5840)]
    assert box.counters["TcpExtTCPLossProbes"] == 1
    box.advance(1.6)  # then the RTO, restarted by the probe: the head only, cwnd 1
    assert [(t, tcp.seq - ISN - 1) for t, tcp, _ in box.drain()] == [(pytest.approx(1.502), 0)]
    assert c.ca_state is CaState.LOSS and c.cwnd == 1 and c.ssthresh == 7
    assert box.counters["TcpExtTCPTimeouts"] == 1
    box.send(1.7, seq=PISN + 1, ack=ISN + 1461)
    assert sent_seqs(box) == [1460, 2920]  # slow start: cwnd 2, go-back-N
    assert box.counters["TcpExtTCPSlowStartRetrans"] == 2
    box.send(1.8, seq=PISN + 1, ack=ISN + 1 + 5 * 1460)  # the rest had arrived after all
    assert c.ca_state is CaState.OPEN
    assert box.counters["TcpRetransSegs"] == 4


def test_tail_loss_probe_sends_new_data_when_it_can():
    box = established(at=0.1, options=syn_ack_options(sack=True))
    box.do(1.0, "send", b"x" * 20 * 1460)
    assert len(box.drain()) == 10  # cwnd
    box.advance(1.25)
    probe = box.recv(seq=ISN + 1 + 10 * 1460, length=1460, at=1.202)  # new data beyond cwnd
    assert probe is not None
    assert box.counters["TcpExtTCPLossProbes"] == 1 and box.counters["TcpRetransSegs"] == 0
    assert box.conn.poll_at() == pytest.approx(1.502)  # the RTO, from the probe


def test_tail_loss_probe_repairs_a_lost_tail():
    box = established(at=0.1, options=syn_ack_options(sack=True))
    c = box.conn
    box.do(1.0, "send", b"x" * 3 * 1460)
    box.drain()
    box.send(1.1, seq=PISN + 1, ack=ISN + 1 + 2 * 1460)  # the last segment was lost
    box.advance(1.5)
    probe = box.recv(seq=ISN + 1 + 2 * 1460, length=1460)
    assert probe is not None
    box.send(1.6, seq=PISN + 1, ack=ISN + 1 + 3 * 1460)
    assert c.ca_state is CaState.OPEN and box.counters["TcpExtTCPTimeouts"] == 0
    box.do(2.0, "send", b"y" * 100)  # an ACK beyond the probe's snd_nxt: it repaired a loss
    box.drain()
    box.send(2.1, seq=PISN + 1, ack=ISN + 1 + 3 * 1460 + 100)
    assert box.counters["TcpExtTCPLossProbeRecovery"] == 1
    assert c.ssthresh == 7


# ============================================================================ ICMP


def test_pmtu_frag_needed_lowers_mss_and_retransmits():
    box = established(at=0.1)
    c = box.conn
    box.do(1.0, "send", b"x" * 3 * 1460)
    box.drain()
    box.do(1.05, "icmp_error", ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 1000)
    assert c.mss_cache == 960 and c.info().pmtu == 1000
    sent = box.drain()
    assert [(tcp.seq - ISN - 1, len(p)) for _, tcp, p in sent] == [
        (0, 960), (960, 960), (1920, 960), (2880, 960), (3840, 540)
    ]  # fmt: skip
    assert c.ca_state is CaState.LOSS
    assert box.counters["TcpRetransSegs"] == 5
    # Larger or equal MTUs are ignored; the floor is tcp_min_snd_mss (48)
    box.do(1.06, "icmp_error", ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 1400)
    assert c.mss_cache == 960
    box.do(1.07, "icmp_error", ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 68)
    assert c.mss_cache == 48
    # rest-of-header word: the MTU is its low 16 bits
    box2 = established(at=0.1)
    box2.do(1.0, "icmp_error", ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, (7 << 16) | 576)
    assert box2.conn.mss_cache == 536


def test_pmtu_over_a_wire_with_a_small_mtu():
    # Segments above 576 bytes vanish on the path; the first loss triggers the ICMP (as a
    # router would) and the transfer finishes at the lower MSS.
    w = Wire()
    w.connect()
    pending: list[int] = []

    def drop(src, tcp, payload, n):
        if src == "a" and len(payload) + 40 > 576:
            pending.append(576)
            return True
        return False

    w.drop = drop
    data = random.Random(5).randbytes(100_000)
    got = bytearray()
    sent = 0
    while len(got) < len(data) and w.now < 60:
        if sent < len(data):
            sent += w.a.send(data[sent:], w.now)
        while pending:
            w.a.icmp_error(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, pending.pop(), w.now)
        w.run(w.now + 0.01)
        got += w.b.receive(1 << 20, w.now)
    assert bytes(got) == data
    assert w.a.mss_cache == 536 - 12


def test_icmp_port_unreachable_in_syn_sent_is_hard():
    box = Box()
    box.conn.open_active(0.0)
    box.do(0.01, "icmp_error", ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0)
    assert box.conn.error == errno.ECONNREFUSED and box.conn.finished
    assert box.counters["TcpAttemptFails"] == 1


def test_icmp_host_unreachable_in_syn_sent_ends_the_connect():
    # tcp_v4_err: in SYN-SENT every ICMP error ends the connect at once (tcp_done_with_error);
    # icmp_err_convert's "fatal" flag only matters to connected sockets
    box = Box()
    c = box.conn
    c.open_active(0.0)
    box.do(0.01, "icmp_error", ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0)
    assert c.error == errno.EHOSTUNREACH and c.finished
    assert box.counters["TcpAttemptFails"] == 1


def test_icmp_in_syn_sent_while_owned_is_a_soft_error():
    box = Box()
    c = box.conn
    c.open_active(0.0)
    box.do(0.01, "icmp_error", ICMP_DEST_UNREACH, ICMP_NET_UNREACH, 0, owned=True)
    assert c.state is S.SYN_SENT and c.error is None
    box.advance(200.0)
    assert c.error == errno.ENETUNREACH  # reported when the SYN retries run out


def test_icmp_host_unreachable_reverts_backoff_rfc6069():
    box = established(at=0.1)
    c = box.conn
    box.do(1.0, "send", b"x")
    first = len(box.out)
    for _ in range(8):
        when = c.poll_at()
        box.advance(when)
        box.do(when + 0.01, "icmp_error", ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0, seq=ISN + 1)
    # each RTO is reverted to the un-backed-off 300 ms instead of doubling
    assert [round(t, 3) for t, _, _ in box.out[first:]] == [
        1.3, 1.6, 1.9, 2.2, 2.5, 2.8, 3.1, 3.4
    ]  # fmt: skip
    assert c.error is None and c.state is S.ESTABLISHED


def test_icmp_soft_error_in_established_only_on_timeout():
    box = established(at=0.1)
    c = box.conn
    box.do(1.0, "send", b"x")
    box.do(1.1, "icmp_error", ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0)
    assert c.error is None and c.state is S.ESTABLISHED
    box.send(1.2, seq=PISN + 1, ack=ISN + 2)  # progress clears the soft error
    assert c._soft_error is None


# ============================================================================ whole transfers


def _drops(rate: float, seed: int):
    rng = random.Random(seed)
    return lambda src, tcp, payload, n: rng.random() < rate


@pytest.mark.parametrize(
    "cfg",
    [
        TcpConfig(),
        TcpConfig(sack=False),
        TcpConfig(timestamps=False),
        TcpConfig(sack=False, timestamps=False, window_scaling=False, congestion="reno"),
    ],
    ids=["default", "nosack", "nots", "reno-bare"],
)
def test_one_megabyte_over_a_lossy_reordering_wire(cfg):
    rng = random.Random(11)
    w = Wire(
        cfg,
        cfg,
        drop=_drops(0.03, 7),
        delay=lambda src, tcp, p: 0.01 + (0.004 if rng.random() < 0.1 else 0.0),
        dup=lambda src, tcp, p, n: rng.random() < 0.02,
    )
    w.connect(10.0)
    data = random.Random(1).randbytes(1_000_000)
    assert w.transfer(data) == data
    assert w.a.total_retrans > 0
    w.a.shutdown(w.now)
    w.run(w.now + 30)
    assert w.b.eof and w.b.state is S.CLOSE_WAIT
    w.b.close(w.now)
    w.run(w.now + 200)
    assert w.a.finished and w.b.finished


def test_clean_transfer_counters_and_info():
    w = Wire()
    w.connect()
    data = bytes(range(256)) * 1000
    assert w.transfer(data) == data
    w.run(w.now + 1)
    a, b = w.counters["a"], w.counters["b"]
    assert a["TcpRetransSegs"] == 0 and a["TcpExtTCPTimeouts"] == 0
    assert a["TcpExtTCPOrigDataSent"] == w.a.info().data_segs_out >= -(-len(data) // 1448)
    assert a["TcpOutSegs"] == w.a.info().segs_out
    assert b["TcpPassiveOpens"] == 1 and a["TcpActiveOpens"] == 1
    info = w.a.info()
    assert isinstance(info, TcpInfo)
    assert info.bytes_acked == len(data) + 1 and w.b.info().bytes_received == len(data)
    assert info.rtt == pytest.approx(0.02, rel=0.2) and info.snd_mss == 1448
    assert info.state is S.ESTABLISHED and info.ca_state is CaState.OPEN
    assert info.send_q == 0 and w.b.info().recv_q == 0


def test_bidirectional_transfer():
    w = Wire(drop=_drops(0.02, 3))
    w.connect()
    x, y = random.Random(1).randbytes(200_000), random.Random(2).randbytes(150_000)
    gx, gy = bytearray(), bytearray()
    sx = sy = 0
    while (len(gx) < len(x) or len(gy) < len(y)) and w.now < 120:
        sx += w.a.send(x[sx:], w.now)
        sy += w.b.send(y[sy:], w.now)
        w.run(w.now + 0.01)
        gx += w.b.receive(1 << 20, w.now)
        gy += w.a.receive(1 << 20, w.now)
    assert bytes(gx) == x and bytes(gy) == y


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.sampled_from([0.0, 0.01, 0.05, 0.15]),
    reorder=st.sampled_from([0.0, 0.05, 0.3]),
    dup=st.sampled_from([0.0, 0.05]),
    sack=st.booleans(),
    ts=st.booleans(),
    size=st.one_of(st.integers(1, 3000), st.integers(50_000, 200_000)),
    isn=st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32 - 100_000, 2**32 - 1)),
)
def test_random_impairments_deliver_the_stream_intact(
    seed, loss, reorder, dup, sack, ts, size, isn
):
    rng = random.Random(seed)
    cfg = TcpConfig(sack=sack, timestamps=ts)
    w = Wire(
        cfg,
        cfg,
        drop=lambda s, t, p, n: rng.random() < loss,
        delay=lambda s, t, p: 0.01 + (rng.random() * 0.02 if rng.random() < reorder else 0.0),
        dup=lambda s, t, p, n: rng.random() < dup,
        isn_a=isn,  # near 2**32 now and then: sequence wrap-around
        isn_b=(MASK - isn) & MASK,
    )
    w.a.open_active(0.0)
    w.run(300, stop=lambda: w.a.state is not S.SYN_SENT)
    if w.a.state is not S.ESTABLISHED:
        assert w.a.error == errno.ETIMEDOUT  # (possible at 15% loss: seven SYNs lost)
        return
    data = rng.randbytes(size)
    got = w.transfer(data, limit=900)
    assert got == data


def test_out_of_order_fin_waits_for_the_data():
    box = established(options=syn_ack_options(sack=True))
    c = box.conn
    box.send(1.0, seq=PISN + 101, ack=ISN + 1, flags=FIN | ACK, payload=b"b" * 100)
    box.recv(flags=ACK, ack=PISN + 1)
    assert c.state is S.ESTABLISHED
    box.send(1.1, seq=PISN + 1, ack=ISN + 1, payload=b"a" * 100)
    box.recv(flags=ACK, ack=PISN + 202)  # data and FIN now in order: ACKed at once
    assert c.state is S.CLOSE_WAIT
    assert c.receive(1000, 1.1) == b"a" * 100 + b"b" * 100 and c.eof


def test_open_cookie_goes_straight_to_established():
    box = Box()
    ack = Tcp(RPORT, LPORT, PISN + 1, ISN + 1, ACK, 1000, 0, (Nop(), Nop(), Timestamps(50, 7)))
    box.conn.open_cookie(
        ack, b"hello", isn=ISN, peer_isn=PISN, mss=1460, wscale=7, sack=True, timestamps=True,
        now=0.2,
    )  # fmt: skip
    c = box.conn
    assert c.state is S.ESTABLISHED and c.established
    assert c.snd_wnd == 1000 << 7 and c.mss_cache == 1448 and c.sack_ok
    assert c.receive(100, 0.2) == b"hello"
    assert box.counters["TcpPassiveOpens"] == 1
    box.recv(flags=ACK, ack=PISN + 6)


def test_sequence_numbers_wrap_around():
    isn = MASK - 2000
    box = Box(isn=isn)
    box.conn.open_active(0.0)
    box.recv(flags=SYN, seq=isn)
    box.send(0.1, seq=MASK - 10, ack=isn + 1, flags=SYN | ACK, options=(Mss(1460),))
    box.recv(flags=ACK, seq=isn + 1, ack=MASK - 9)
    box.do(1.0, "send", b"w" * 4000)
    segs = box.drain()
    assert [t.seq for _, t, _ in segs] == [(isn + 1 + i * 1460) & MASK for i in range(3)]
    box.send(1.1, seq=MASK - 9, ack=(isn + 4001) & MASK, payload=b"r" * 3000)
    assert box.conn.receive(5000, 1.1) == b"r" * 3000
    assert box.conn.rcv_nxt == (MASK - 9 + 3000) & MASK
    assert box.conn.info().send_q == 0


def test_curr_estab_is_a_gauge():
    w = Wire()
    w.connect()
    assert w.counters["a"]["TcpCurrEstab"] == 1 and w.counters["b"]["TcpCurrEstab"] == 1
    w.a.shutdown(w.now)  # leaving ESTABLISHED (for FIN-WAIT-1) counts down, as Linux
    w.run(w.now + 0.1)
    assert w.counters["a"]["TcpCurrEstab"] == 0 and w.counters["b"]["TcpCurrEstab"] == 0


# ============================================================================ RFC 9293 figure 5


def _to_syn_rcvd_active() -> Box:
    box = Box()
    box.conn.open_active(0.0)
    box.drain()
    box.send(0.01, seq=PISN, flags=SYN, options=(Mss(1460),))
    box.drain()
    return box


def _to_fin_wait_1() -> Box:
    box = established()
    box.do(1.0, "shutdown")
    box.drain()
    return box


def _to_fin_wait_2() -> Box:
    box = _to_fin_wait_1()
    box.send(1.1, seq=PISN + 1, ack=ISN + 2)
    return box


def _to_close_wait() -> Box:
    box = established()
    box.send(1.0, seq=PISN + 1, ack=ISN + 1, flags=FIN | ACK)
    box.advance(1.1)
    box.drain()
    return box


def _to_closing() -> Box:
    box = _to_fin_wait_1()
    box.send(1.05, seq=PISN + 1, ack=ISN + 1, flags=FIN | ACK)
    box.drain()
    return box


def _to_last_ack() -> Box:
    box = _to_close_wait()
    box.do(2.0, "close")
    box.drain()
    return box


def _to_time_wait() -> Box:
    box = _to_fin_wait_2()
    box.send(2.0, seq=PISN + 1, ack=ISN + 2, flags=FIN | ACK)
    box.drain()
    return box


def _listen() -> Box:
    box = Box()
    box.conn.open_listen(0.0)
    return box


def _syn_rcvd_from_listen() -> Box:
    box = _listen()
    box.send(0.1, seq=PISN, flags=SYN, options=(Mss(1460),))
    box.drain()
    return box


# (name, setup, event, expected state, flags of the segment sent or None)
ARROWS = [
    ("CLOSED-LISTEN passive OPEN", Box, lambda b: b.conn.open_listen(0.0), S.LISTEN, None),
    ("CLOSED-SYN-SENT active OPEN", Box, lambda b: b.conn.open_active(0.0), S.SYN_SENT, SYN),
    (
        "LISTEN-SYN-RECEIVED rcv SYN",
        _listen,
        lambda b: b.send(0.1, seq=PISN, flags=SYN, options=(Mss(1460),)),
        S.SYN_RECEIVED,
        SYN | ACK,
    ),
    ("LISTEN-CLOSED CLOSE", _listen, lambda b: b.do(0.1, "close"), S.CLOSED, None),
    (
        "SYN-RECEIVED-LISTEN rcv RST",
        _syn_rcvd_from_listen,
        lambda b: b.send(0.2, seq=PISN + 1, flags=RST),
        S.LISTEN,
        None,
    ),
    (
        "SYN-SENT-SYN-RECEIVED rcv SYN",
        lambda: (b := Box(), b.conn.open_active(0.0), b.drain())[0],
        lambda b: b.send(0.01, seq=PISN, flags=SYN, options=(Mss(1460),)),
        S.SYN_RECEIVED,
        SYN | ACK,
    ),
    (
        "SYN-SENT-ESTABLISHED rcv SYN,ACK",
        lambda: (b := Box(), b.conn.open_active(0.0), b.drain())[0],
        lambda b: b.send(0.01, seq=PISN, ack=ISN + 1, flags=SYN | ACK, options=(Mss(1460),)),
        S.ESTABLISHED,
        ACK,
    ),
    (
        "SYN-SENT-CLOSED CLOSE",
        lambda: (b := Box(), b.conn.open_active(0.0), b.drain())[0],
        lambda b: b.do(0.1, "close"),
        S.CLOSED,
        None,
    ),
    (
        "SYN-RECEIVED-ESTABLISHED rcv ACK of SYN (passive)",
        _syn_rcvd_from_listen,
        lambda b: b.send(0.2, seq=PISN + 1, ack=ISN + 1),
        S.ESTABLISHED,
        None,
    ),
    (
        "SYN-RECEIVED-ESTABLISHED rcv ACK of SYN (simultaneous open)",
        _to_syn_rcvd_active,
        lambda b: b.send(0.02, seq=PISN + 1, ack=ISN + 1),
        S.ESTABLISHED,
        None,
    ),
    (
        "SYN-RECEIVED-FIN-WAIT-1 CLOSE",
        _to_syn_rcvd_active,
        lambda b: b.do(0.02, "close"),
        S.FIN_WAIT_1,
        None,  # the FIN follows once our SYN is acknowledged
    ),
    (
        "ESTABLISHED-FIN-WAIT-1 CLOSE",
        established,
        lambda b: b.do(1.0, "close"),
        S.FIN_WAIT_1,
        FIN | ACK,
    ),
    (
        "ESTABLISHED-CLOSE-WAIT rcv FIN",
        established,
        lambda b: (b.send(1.0, seq=PISN + 1, ack=ISN + 1, flags=FIN | ACK), b.advance(1.1)),
        S.CLOSE_WAIT,
        ACK,
    ),
    (
        "FIN-WAIT-1-FIN-WAIT-2 rcv ACK of FIN",
        _to_fin_wait_1,
        lambda b: b.send(1.1, seq=PISN + 1, ack=ISN + 2),
        S.FIN_WAIT_2,
        None,
    ),
    (
        "FIN-WAIT-1-CLOSING rcv FIN",
        _to_fin_wait_1,
        lambda b: b.send(1.05, seq=PISN + 1, ack=ISN + 1, flags=FIN | ACK),
        S.CLOSING,
        ACK,
    ),
    (
        "FIN-WAIT-2-TIME-WAIT rcv FIN",
        _to_fin_wait_2,
        lambda b: b.send(2.0, seq=PISN + 1, ack=ISN + 2, flags=FIN | ACK),
        S.TIME_WAIT,
        ACK,
    ),
    (
        "CLOSING-TIME-WAIT rcv ACK of FIN",
        _to_closing,
        lambda b: b.send(1.1, seq=PISN + 2, ack=ISN + 2),
        S.TIME_WAIT,
        None,
    ),
    ("TIME-WAIT-CLOSED timeout 2MSL", _to_time_wait, lambda b: b.advance(62.0), S.CLOSED, None),
    (
        "CLOSE-WAIT-LAST-ACK CLOSE",
        _to_close_wait,
        lambda b: b.do(2.0, "close"),
        S.LAST_ACK,
        FIN | ACK,
    ),
    (
        "LAST-ACK-CLOSED rcv ACK of FIN",
        _to_last_ack,
        lambda b: b.send(2.1, seq=PISN + 2, ack=ISN + 2),
        S.CLOSED,
        None,
    ),
]


@pytest.mark.parametrize(
    ("setup", "event", "end", "sent"),
    [a[1:] for a in ARROWS],
    ids=[a[0] for a in ARROWS],
)
def test_rfc9293_arrow(setup, event, end, sent):
    box = setup()
    event(box)
    assert box.conn.state is end
    if sent is None:
        box.nothing()
    else:
        assert box.recv().flags == sent
        box.nothing()


@pytest.mark.parametrize(
    "setup",
    [established, _to_fin_wait_1, _to_fin_wait_2, _to_close_wait, _to_closing, _to_last_ack],
    ids=["ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK"],
)
def test_rst_closes_every_synchronized_state(setup):
    box = setup()
    box.advance(3.0)
    box.drain()  # (FIN retransmissions meanwhile)
    rcv_nxt = box.conn.rcv_nxt
    box.send(3.0, seq=rcv_nxt, flags=RST)
    assert box.conn.state is S.CLOSED
    box.nothing()


def test_retransmission_fits_current_mss_with_sack_blocks():
    # tcp_retransmit_skb re-segments at tcp_current_mss: SACK blocks in our header take room
    box = established(at=0.1, options=syn_ack_options(sack=True))
    c = box.conn
    box.do(1.0, "send", b"x" * 1460)
    box.recv(length=1460)
    box.send(1.05, seq=PISN + 1001, ack=ISN + 1, payload=b"o" * 10)  # out of order from them
    box.recv(flags=ACK)  # its dupACK, with a SACK block
    box.advance(1.3)  # the loss probe (at the RTO time, one segment out): 1448 + 12 of SACK
    assert [len(p) for _, _, p in box.drain()] == [1448]
    box.send(1.4, seq=PISN + 1, ack=ISN + 1449)
    box.advance(1.8)
    assert [len(p) for _, _, p in box.drain()] == [12]  # the rest by the next probe
    box.send(1.9, seq=PISN + 1, ack=ISN + 1461)
    assert c.info().send_q == 0


def test_tail_loss_probe_off_with_early_retrans_0():
    box = established(TcpConfig(early_retrans=0), at=0.1, options=syn_ack_options(sack=True))
    box.do(1.0, "send", b"x" * 3 * 1460)
    box.drain()
    assert box.run(1.35) == [pytest.approx(1.3)]  # the RTO, no probe
    assert box.counters["TcpExtTCPLossProbes"] == 0 and box.counters["TcpExtTCPTimeouts"] == 1


def test_abort_of_a_request_sock_sends_plain_rst():
    box = passive()
    box.do(0.1, "abort")  # tcp_abort_on_overflow: the listener resets the final ACK
    box.recv(flags=RST, seq=ISN + 1)
    assert box.conn.finished
