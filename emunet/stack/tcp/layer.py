"""tcp_v4_rcv and the listening side of TCP: demultiplexing, the socket backlog and the prequeue,
listen SYN and accept queues with their overflow rules, SYN cookies, resets for closed ports, and
the TCP timers (net/ipv4/tcp_ipv4.c, tcp_minisocks.c, inet_connection_sock.c, syncookies.c, and
the prequeue of Linux <= 4.13's tcp_prequeue).

Plain code, no trio: the host's TCP task calls :meth:`TcpLayer.rcv` for every segment and
:meth:`TcpLayer.run_timers` when the earliest connection timer is due; the socket layer
(:mod:`emunet.stack.tcp.sock`) calls in from user tasks.  A socket here is a :class:`TcpSock`:
one :class:`~emunet.stack.tcp.conn.Connection` plus what the kernel's struct sock adds around it
(owner flag, backlog, prequeue, the listener it belongs to).  Sockets are woken through
``sock.waker`` (set by the socket layer), never awaited here.

The receive decision of tcp_v4_rcv, in order (DESIGN.md section 1):
  socket owned by a user task      -> backlog (limit rcvbuf + sndbuf/2 + 64 KiB, else
                                      TcpExtTCPBacklogDrop), processed at release_sock
  a reader waits, prequeue is on   -> prequeue (tcp_low_latency 0, connection established,
                                      segment carries data): the first one wakes the reader and
                                      arms a delayed ACK; at 32 segments or over rcvbuf all are
                                      processed at once (TcpExtTCPPrequeueDropped)
  otherwise                        -> tcp_v4_do_rcv now
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import heapq
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ...wire.checksum import transport_checksum_ok
from ...wire.errors import MalformedPacket
from ...wire.icmp import ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED
from ...wire.ipv4 import IPPROTO_TCP, Ipv4
from ...wire.tcp import ACK, FIN, RST, SYN, Mss, SackPermitted, Tcp, Timestamps, WindowScale
from .conn import Connection, TcpConfig, TcpState

if TYPE_CHECKING:
    from ..host import Host
    from ..skb import SkBuff

EPHEMERAL_LOW, EPHEMERAL_HIGH = 32768, 60999  # net.ipv4.ip_local_port_range
PREQUEUE_MAX = 32  # segments (tcp_prequeue)
BACKLOG_EXTRA = 64 * 1024  # tcp_add_backlog: rcvbuf + sndbuf/2 + 64 KiB
BACKLOG_TRUESIZE = 256  # skb truesize beyond the payload, as the backlog charges it
# MSS values a SYN cookie can encode (net/ipv4/syncookies.c msstab)
COOKIE_MSS = (536, 1300, 1440, 1460)
COOKIE_PERIOD = 64.0  # seconds per cookie counter step (MAX_SYNCOOKIE_AGE is 2 steps)
TS_OPT_MASK = 0x3F  # low TSval bits carrying wscale + sack when timestamps are on


class TcpSock:
    """A TCP socket: a connection and the struct-sock state around it."""

    __slots__ = (
        "backlog",
        "backlog_bytes",
        "conn",
        "deferred_timer",
        "key",
        "layer",
        "listener",
        "owned",
        "prequeue",
        "prequeue_bytes",
        "reader_waiting",
        "timer_at",
        "waker",
    )

    def __init__(self, layer: TcpLayer, conn: Connection, key: tuple[int, int, int, int]) -> None:
        self.layer = layer
        self.conn = conn
        self.key = key  # (local ip, local port, remote ip, remote port)
        self.owned = False  # sock_owned_by_user
        self.backlog: deque[tuple[Tcp, bytes]] = deque()
        self.backlog_bytes = 0
        self.prequeue: deque[tuple[Tcp, bytes]] = deque()
        self.prequeue_bytes = 0
        self.reader_waiting = False  # tp->ucopy.task: a reader blocks in tcp_recvmsg
        self.listener: Listener | None = None  # set while in a listener's queues
        self.timer_at: float | None = None
        self.deferred_timer = False
        self.waker: Callable[[], None] | None = None

    def wake(self) -> None:
        if self.waker is not None:
            self.waker()

    # lock_sock / release_sock ------------------------------------------------------------
    def lock(self) -> None:
        self.owned = True

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """lock_sock ... release_sock around a block (release processes the backlog)."""
        self.lock()
        try:
            yield
        finally:
            self.release(self.layer.host.now())

    def release(self, now: float) -> int:
        """release_sock: process the backlog until it stays empty; returns segments done."""
        done = 0
        conn = self.conn
        while self.backlog:
            batch = self.backlog
            self.backlog = deque()
            self.backlog_bytes = 0
            for tcp, payload in batch:
                conn.process(tcp, payload, now)
                done += 1
        if self.deferred_timer:
            self.deferred_timer = False
            conn.on_timer(now)
        self.owned = False
        self.layer.after(self, now)
        return done

    def process_prequeue(self, now: float) -> int:
        """tcp_prequeue_process: the reader's task processes every prequeued segment."""
        done = 0
        conn = self.conn
        while self.prequeue:
            tcp, payload = self.prequeue.popleft()
            self.prequeue_bytes -= len(payload)
            conn.process(tcp, payload, now)
            done += 1
        if done:
            self.layer.snmp["TcpExtTCPPrequeued"] += 1  # once per tcp_prequeue_process call
            self.layer.after(self, now)
        return done


class Listener:
    """A listening socket's queues: SYN queue (request socks) and accept queue."""

    def __init__(self, layer: TcpLayer, port: int, backlog: int, config: TcpConfig) -> None:
        self.layer = layer
        self.port = port
        self.backlog = backlog  # sk_max_ack_backlog
        self.config = config
        self.syn_queue: dict[tuple[int, int, int, int], TcpSock] = {}
        self.accept_queue: deque[TcpSock] = deque()
        self.waker: Callable[[], None] | None = None
        self.closed = False

    def acceptq_full(self) -> bool:
        """sk_acceptq_is_full: more queued than the backlog allows."""
        return len(self.accept_queue) > self.backlog

    def reqsk_queue_full(self) -> bool:
        """inet_csk_reqsk_queue_is_full."""
        return len(self.syn_queue) >= self.backlog

    def synack_retries(self, retries: int) -> int:
        """reqsk_timer_handler's pruning: once the SYN queue is more than half full, old
        requests (whose SYN-ACK already timed out) get fewer retries, down to 2, so that a
        flood of requests nobody answers frees the queue in ~7 s instead of 63 s."""
        qlen = len(self.syn_queue)
        if qlen << 1 <= max(8, self.backlog):
            return retries
        young = sum(1 for child in self.syn_queue.values() if child.conn.young) << 1
        while retries > 2 and qlen >= young:
            retries -= 1
            young <<= 1
        return retries

    def wake(self) -> None:
        if self.waker is not None:
            self.waker()


class TcpLayer:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.snmp = host.snmp
        self.sysctl = host.sysctl
        self.socks: dict[tuple[int, int, int, int], TcpSock] = {}
        self.listeners: dict[int, Listener] = {}
        self._timers: list[tuple[float, int, TcpSock]] = []
        self._timer_seq = 0
        self._next_port = EPHEMERAL_LOW + host.rng.randrange(EPHEMERAL_HIGH - EPHEMERAL_LOW + 1)
        self._cookie_secret = host.rng.getrandbits(64).to_bytes(8, "big")
        self._pending_pmtu: list[tuple[TcpSock, int]] = []
        self.wakeup_at: Callable[[float | None], None] = lambda when: None

    # ------------------------------------------------------------------ configuration
    def config(self, **overrides: Any) -> TcpConfig:
        """A TcpConfig from the host's sysctls, with per-socket options applied."""
        s = self.sysctl

        def triple(key: str) -> tuple[int, int, int]:
            a, b, c = (int(x) for x in str(s[key]).split())
            return (a, b, c)

        cfg = TcpConfig(
            window_scaling=bool(s["net.ipv4.tcp_window_scaling"]),
            timestamps=bool(s["net.ipv4.tcp_timestamps"]),
            sack=bool(s["net.ipv4.tcp_sack"]),
            syn_retries=int(s["net.ipv4.tcp_syn_retries"]),
            synack_retries=int(s["net.ipv4.tcp_synack_retries"]),
            retries2=int(s["net.ipv4.tcp_retries2"]),
            fin_timeout=float(s["net.ipv4.tcp_fin_timeout"]),
            keepalive_time=float(s["net.ipv4.tcp_keepalive_time"]),
            keepalive_intvl=float(s["net.ipv4.tcp_keepalive_intvl"]),
            keepalive_probes=int(s["net.ipv4.tcp_keepalive_probes"]),
            rmem=triple("net.ipv4.tcp_rmem"),
            wmem=triple("net.ipv4.tcp_wmem"),
            congestion=str(s["net.ipv4.tcp_congestion_control"]),
            dsack=bool(s["net.ipv4.tcp_dsack"]),
            reordering=int(s["net.ipv4.tcp_reordering"]),
            max_reordering=int(s["net.ipv4.tcp_max_reordering"]),
            orphan_retries=int(s["net.ipv4.tcp_orphan_retries"]),
            syn_linear_timeouts=int(s["net.ipv4.tcp_syn_linear_timeouts"]),
            invalid_ratelimit=int(s["net.ipv4.tcp_invalid_ratelimit"]) / 1000.0,
            slow_start_after_idle=bool(s["net.ipv4.tcp_slow_start_after_idle"]),
            early_retrans=int(s["net.ipv4.tcp_early_retrans"]),
            moderate_rcvbuf=bool(s["net.ipv4.tcp_moderate_rcvbuf"]),
            rmem_max=int(s["net.core.rmem_max"]),
            wmem_max=int(s["net.core.wmem_max"]),
            min_snd_mss=int(s["net.ipv4.tcp_min_snd_mss"]),
        )
        if overrides:
            import attrs

            cfg = attrs.evolve(cfg, **overrides)
        return cfg

    # ------------------------------------------------------------------ sockets
    def new_conn(
        self,
        local: tuple[int, int],
        remote: tuple[int, int],
        config: TcpConfig,
        now: float,
        *,
        isn: int | None = None,
        ts_offset: int | None = None,
    ) -> TcpSock:
        key = (local[0], local[1], remote[0], remote[1])
        host = self.host
        route = host.fib.lookup(remote[0])
        mtu = host.ip.route_mtu(route, remote[0], now) if route is not None else 1500
        holder: list[TcpSock] = []

        def xmit(tcp: Tcp, payload: bytes) -> bool:
            return self._xmit(holder[0], tcp, payload)

        # ipv4_default_advmss: the MSS we advertise never falls below route.min_adv_mss
        advmss = max(mtu - 40, int(self.sysctl["net.ipv4.route.min_adv_mss"]))
        conn = Connection(
            local,
            remote,
            isn=host.rng.getrandbits(32) if isn is None else isn,
            mss=min(advmss, 65535 - 40),
            pmtu=mtu,
            config=config,
            counters=self.snmp,
            now=now,
            xmit=xmit,
            ts_offset=host.rng.getrandbits(32) if ts_offset is None else ts_offset,
        )
        sock = TcpSock(self, conn, key)
        holder.append(sock)
        return sock

    def register(self, sock: TcpSock) -> None:
        if sock.key in self.socks:
            raise OSError(errno.EADDRINUSE, f"{_errstr(errno.EADDRINUSE)}: {sock.key}")
        self.socks[sock.key] = sock

    def pick_port(self, local_ip: int, remote: tuple[int, int]) -> int:
        """An ephemeral port whose 4-tuple is free (inet_hash_connect, sequential)."""
        span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
        for _ in range(span):
            port = self._next_port
            self._next_port = EPHEMERAL_LOW + (port + 1 - EPHEMERAL_LOW) % span
            if port in self.listeners:
                continue
            if (local_ip, port, remote[0], remote[1]) not in self.socks:
                return port
        raise OSError(errno.EADDRNOTAVAIL, _errstr(errno.EADDRNOTAVAIL))

    def listen(self, port: int, backlog: int, config: TcpConfig) -> Listener:
        if port in self.listeners:
            raise OSError(errno.EADDRINUSE, f"{_errstr(errno.EADDRINUSE)}: TCP port {port}")
        somaxconn = int(self.sysctl["net.core.somaxconn"])
        listener = Listener(self, port, min(max(backlog, 0), somaxconn), config)
        self.listeners[port] = listener
        return listener

    def unlisten(self, listener: Listener, now: float) -> None:
        """Closing a listener resets its queued children (inet_csk_listen_stop)."""
        listener.closed = True
        self.listeners.pop(listener.port, None)
        for child in [*listener.syn_queue.values(), *listener.accept_queue]:
            child.listener = None
            child.conn.abort(now)
            self.after(child, now)
        listener.syn_queue.clear()
        listener.accept_queue.clear()

    def _xmit(self, sock: TcpSock, tcp: Tcp, payload: bytes) -> bool:
        lip, _lport, rip, _rport = sock.key
        host = self.host
        now = host.now()
        if host.tracer is not None:
            host.tracer.record(
                now, host.name, "tcp_transmit_skb", ("tcp", sock.key), _describe(tcp, payload)
            )
        try:
            df = not host.ip.pmtu_locked(rip, now)  # ip_dont_fragment, IP_PMTUDISC_WANT
            return host.ip.output(
                rip, IPPROTO_TCP, tcp.build(payload, lip, rip), now, src=lip, df=df
            )
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                # ip_fragment with DF on a local packet: Linux sends itself ICMP frag needed
                route = host.fib.lookup(rip)
                if route is not None:
                    mtu = host.ip.route_mtu(route, rip, now)
                    host.ip.update_pmtu(rip, mtu, now)  # below min_pmtu: locked, DF off
                    self._pending_pmtu.append((sock, host.ip.route_mtu(route, rip, now)))
            return True  # lost on the way out; the retransmit timer recovers

    # ------------------------------------------------------------------ timers
    def after(self, sock: TcpSock, now: float) -> None:
        """After any call into a connection: wake its waiters, re-arm its timer, forget it
        when finished, apply deferred path-MTU notices."""
        while self._pending_pmtu:
            target, mtu = self._pending_pmtu.pop()
            target.conn.icmp_error(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu, now)
            if target is not sock:
                self._after_one(target)
        self._after_one(sock)

    def _after_one(self, sock: TcpSock) -> None:
        conn = sock.conn
        sock.wake()
        if sock.listener is not None:
            sock.listener.wake()
        if conn.finished:
            if self.socks.get(sock.key) is sock:
                del self.socks[sock.key]
            if sock.listener is not None:
                sock.listener.syn_queue.pop(sock.key, None)
                if sock in sock.listener.accept_queue:
                    sock.listener.accept_queue.remove(sock)
                sock.listener = None
            sock.timer_at = None
            return
        when = conn.poll_at()
        if when is not None and when != sock.timer_at:
            self._timer_seq += 1
            heapq.heappush(self._timers, (when, self._timer_seq, sock))
            self.wakeup_at(when)
        sock.timer_at = when

    def poll_at(self) -> float | None:
        timers = self._timers
        while timers and timers[0][2].timer_at != timers[0][0]:
            heapq.heappop(timers)  # stale entry
        return timers[0][0] if timers else None

    def run_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _, sock = heapq.heappop(timers)
            if sock.timer_at != when:
                continue
            sock.timer_at = None
            if sock.owned:
                sock.deferred_timer = True  # tcp_write_timer: TCP_WRITE_TIMER_DEFERRED
                continue
            sock.conn.on_timer(now)
            self.after(sock, now)

    # ------------------------------------------------------------------ receive
    def rcv(self, skb: SkBuff, now: float) -> None:
        """tcp_v4_rcv."""
        snmp = self.snmp
        ip = skb.ip
        seg = skb.payload
        try:
            tcp, payload = Tcp.parse(seg)
        except MalformedPacket:
            snmp["TcpInErrs"] += 1
            return
        if not transport_checksum_ok(ip.src, ip.dst, IPPROTO_TCP, seg):
            snmp["TcpInCsumErrors"] += 1
            snmp["TcpInErrs"] += 1
            return
        snmp["TcpInSegs"] += 1
        if skb.trace is not None:
            skb.note(now, self.host.name, "tcp_v4_rcv", _v4_rcv_detail(self, ip, tcp, payload))
        if ip.dst not in self.host.local_addrs:
            return  # TCP never answers broadcast or multicast
        key = (ip.dst, tcp.dst_port, ip.src, tcp.src_port)
        sock = self.socks.get(key)
        if sock is not None:
            conn = sock.conn
            if conn.state is TcpState.TIME_WAIT and tcp.flags & SYN and not tcp.flags & (RST | ACK):
                listener = self.listeners.get(tcp.dst_port)
                if listener is not None and _after(tcp.seq, conn):
                    # tcp_timewait_state_process: TCP_TW_SYN, a new incarnation
                    del self.socks[key]
                    sock.timer_at = None
                    skb.note(now, self.host.name, "tcp_v4_rcv", "TIME-WAIT reused by new SYN")
                    self._listen_rcv(listener, ip, tcp, payload, now, skb)
                    return
            if sock.listener is not None and conn.state is TcpState.SYN_RECEIVED:
                self._child_rcv(sock, tcp, payload, now, skb)
                return
            self._deliver(sock, tcp, payload, now, skb)
            return
        listener = self.listeners.get(tcp.dst_port)
        if listener is not None:
            self._listen_rcv(listener, ip, tcp, payload, now, skb)
            return
        skb.note(now, self.host.name, "tcp_v4_rcv", f"port {tcp.dst_port}: no socket, reset")
        self.send_reset(ip, tcp, len(payload), now)

    def _deliver(self, sock: TcpSock, tcp: Tcp, payload: bytes, now: float, skb: SkBuff) -> None:
        conn = sock.conn
        host = self.host
        if sock.owned:
            limit = conn.rcvbuf + conn.sndbuf // 2 + BACKLOG_EXTRA
            size = len(payload) + BACKLOG_TRUESIZE  # skb truesize approximation
            # sk_rcvqueues_full: backlog + receive queue memory (2 bytes per payload byte,
            # conn.py's model), not counting the arriving skb
            if sock.backlog_bytes + 2 * conn.readable > limit:
                self.snmp["TcpExtTCPBacklogDrop"] += 1
                skb.note(now, host.name, "tcp_add_backlog", "backlog full: dropped")
                return
            sock.backlog.append((tcp, payload))
            sock.backlog_bytes += size
            skb.note(now, host.name, "tcp_add_backlog", "socket owned by user: backlog")
            return
        if (
            # a segment left in the prequeue by a reader that returned (with data from the
            # receive queue) keeps later segments behind it: processed at once, they would
            # overtake it and land in the out-of-order queue
            (sock.reader_waiting or sock.prequeue)
            and (payload or sock.prequeue)  # an empty segment never overtakes prequeued data
            and conn.state is TcpState.ESTABLISHED
            and not self.sysctl["net.ipv4.tcp_low_latency"]
        ):
            sock.prequeue.append((tcp, payload))
            sock.prequeue_bytes += len(payload)
            skb.note(now, host.name, "tcp_prequeue", "reader waiting: prequeue")
            if len(sock.prequeue) == 1:
                sock.wake()
                conn.schedule_ack(now, 3 * conn.config.rto_min / 4)
                self.after(sock, now)
            elif (
                len(sock.prequeue) >= PREQUEUE_MAX
                or sock.prequeue_bytes + conn.readable > conn.rcvbuf
            ):
                n = 0
                while sock.prequeue:
                    t, p = sock.prequeue.popleft()
                    conn.process(t, p, now)
                    n += 1
                sock.prequeue_bytes = 0
                self.snmp["TcpExtTCPPrequeueDropped"] += n
                self.after(sock, now)
            return
        skb.note(now, host.name, "tcp_v4_do_rcv", str(conn.state))
        conn.process(tcp, payload, now)
        self.after(sock, now)

    # ------------------------------------------------------------------ listening
    def _listen_rcv(
        self, listener: Listener, ip: Ipv4, tcp: Tcp, payload: bytes, now: float, skb: SkBuff
    ) -> None:
        """tcp_v4_do_rcv on a listener: tcp_v4_conn_request for SYNs, cookies for ACKs."""
        flags = tcp.flags
        host = self.host
        if flags & RST:
            return
        if flags & ACK:
            # tcp_rcv_state_process, LISTEN: any ACK (a SYN-ACK too) draws a reset, after
            # tcp_v4_cookie_check had its look at a plain ACK
            if (
                not flags & SYN
                and self.sysctl["net.ipv4.tcp_syncookies"]
                and self._cookie_ack(listener, ip, tcp, payload, now, skb)
            ):
                return
            self.send_reset(ip, tcp, len(payload), now)
            return
        if not flags & SYN or flags & FIN:
            return  # SYN+FIN is discarded (SKB_DROP_REASON_TCP_FLAGS: no counter)
        want_cookie = False
        syncookies = int(self.sysctl["net.ipv4.tcp_syncookies"])
        if syncookies == 2 or listener.reqsk_queue_full():
            if not syncookies:
                self.snmp["TcpExtListenDrops"] += 1
                skb.note(now, host.name, "tcp_conn_request", "SYN queue full: dropped")
                return
            want_cookie = True
        if listener.acceptq_full():
            self.snmp["TcpExtListenOverflows"] += 1
            self.snmp["TcpExtListenDrops"] += 1
            skb.note(now, host.name, "tcp_conn_request", "accept queue full: SYN dropped")
            return
        local = (ip.dst, tcp.dst_port)
        remote = (ip.src, tcp.src_port)
        if want_cookie:
            self._send_cookie(listener, local, remote, tcp, now)
            skb.note(now, host.name, "tcp_conn_request", "SYN queue full: SYN cookie")
            return
        child = self.new_conn(local, remote, listener.config, now)
        child.listener = listener
        child.conn.synack_retries_now = listener.synack_retries
        listener.syn_queue[child.key] = child
        self.socks[child.key] = child
        skb.note(now, host.name, "tcp_conn_request", "SYN queued: SYN-ACK")
        child.conn.open_passive(tcp, now)
        self.after(child, now)

    def _child_rcv(self, child: TcpSock, tcp: Tcp, payload: bytes, now: float, skb: SkBuff) -> None:
        """tcp_check_req: the segment for a request sock in the SYN queue."""
        listener = child.listener
        assert listener is not None
        conn = child.conn
        completes = tcp.flags & ACK and not tcp.flags & (SYN | RST)
        if completes and listener.acceptq_full():
            self.snmp["TcpExtListenOverflows"] += 1
            self.snmp["TcpExtListenDrops"] += 1
            if self.sysctl["net.ipv4.tcp_abort_on_overflow"]:
                skb.note(now, self.host.name, "tcp_check_req", "accept queue full: reset")
                self.snmp["TcpExtEmbryonicRsts"] += 1
                conn.abort(now)
            else:
                skb.note(now, self.host.name, "tcp_check_req", "accept queue full: ACK ignored")
            self.after(child, now)
            return
        conn.process(tcp, payload, now)
        if conn.state is not TcpState.SYN_RECEIVED and child.key in listener.syn_queue:
            del listener.syn_queue[child.key]
            if conn.error is None and conn.state is not TcpState.CLOSED:
                listener.accept_queue.append(child)
                skb.note(now, self.host.name, "tcp_check_req", "handshake done: accept queue")
        self.after(child, now)

    # SYN cookies (net/ipv4/syncookies.c, simplified) -------------------------------------
    def _cookie_hash(self, local: tuple[int, int], remote: tuple[int, int], count: int) -> int:
        text = b"%d.%d.%d.%d.%d" % (local[0], local[1], remote[0], remote[1], count)
        digest = hashlib.blake2b(text, key=self._cookie_secret, digest_size=4).digest()
        return int.from_bytes(digest, "big")

    def _cookie_ts_off(self, local: tuple[int, int], remote: tuple[int, int]) -> int:
        """secure_tcp_ts_off: one TSval offset per address pair, so that a connection made
        from a cookie goes on from the SYN-ACK's TSval (else the peer's PAWS rejects it)."""
        return self._cookie_hash((local[0], 0), (remote[0], 0), -1)

    def _send_cookie(
        self,
        listener: Listener,
        local: tuple[int, int],
        remote: tuple[int, int],
        syn: Tcp,
        now: float,
    ) -> None:
        peer_mss = 536
        wscale: int | None = None
        sack = ts = False
        for opt in syn.options:
            if isinstance(opt, Mss):
                peer_mss = opt.mss
            elif isinstance(opt, WindowScale):
                wscale = min(opt.shift, 14)
            elif isinstance(opt, SackPermitted):
                sack = True
            elif isinstance(opt, Timestamps):
                ts = True
        idx = max(i for i, m in enumerate(COOKIE_MSS) if m <= peer_mss or i == 0)
        count = int(now // COOKIE_PERIOD)
        isn = (self._cookie_hash(local, remote, count) + syn.seq + (count << 24)) & 0xFFFFFFFF
        isn = (isn & ~0x3) | idx
        ts_offset = 0
        if ts and listener.config.timestamps:
            # cookie_init_timestamp: the low TSval bits carry wscale (0xF = none) and SACK
            # (cookie_init_timestamp moves the TSval back, never forward, to carry them)
            enc = (wscale if wscale is not None else 0xF) | (0x10 if sack else 0)
            now_ms = int(now * 1000.0 + 1e-6)  # conn.py's TSval clock
            stamp = (now_ms & ~TS_OPT_MASK) | enc
            if stamp > now_ms:
                stamp -= TS_OPT_MASK + 1
            ts_offset = (self._cookie_ts_off(local, remote) + stamp - now_ms) & 0xFFFFFFFF
        sock = self.new_conn(local, remote, listener.config, now, isn=isn, ts_offset=ts_offset)
        sock.conn.open_passive(syn, now)  # sends the SYN-ACK; the state is not kept
        self.snmp["TcpExtSyncookiesSent"] += 1

    def _cookie_ack(
        self, listener: Listener, ip: Ipv4, tcp: Tcp, payload: bytes, now: float, skb: SkBuff
    ) -> bool:
        local = (ip.dst, tcp.dst_port)
        remote = (ip.src, tcp.src_port)
        isn = (tcp.ack - 1) & 0xFFFFFFFF
        peer_isn = (tcp.seq - 1) & 0xFFFFFFFF
        count = int(now // COOKIE_PERIOD)
        for c in (count, count - 1):
            expect = (self._cookie_hash(local, remote, c) + peer_isn + (c << 24)) & 0xFFFFFFFF
            if (expect & ~0x3) == (isn & ~0x3):
                break
        else:
            self.snmp["TcpExtSyncookiesFailed"] += 1
            return False
        self.snmp["TcpExtSyncookiesRecv"] += 1
        mss = COOKIE_MSS[isn & 0x3]
        wscale: int | None = None
        sack = timestamps = False
        ts_off = self._cookie_ts_off(local, remote)
        for opt in tcp.options:
            if isinstance(opt, Timestamps):
                timestamps = True
                enc = (opt.tsecr - ts_off) & TS_OPT_MASK
                wscale = None if enc & 0xF == 0xF else enc & 0xF
                sack = bool(enc & 0x10)
        if listener.acceptq_full():
            self.snmp["TcpExtListenOverflows"] += 1
            self.snmp["TcpExtListenDrops"] += 1
            skb.note(now, self.host.name, "cookie_v4_check", "accept queue full: dropped")
            return True
        child = self.new_conn(local, remote, listener.config, now, isn=isn, ts_offset=ts_off)
        child.listener = listener
        self.socks[child.key] = child
        child.conn.open_cookie(
            tcp,
            payload,
            isn=isn,
            peer_isn=peer_isn,
            mss=mss,
            wscale=wscale,
            sack=sack,
            timestamps=timestamps,
            now=now,
        )
        if child.conn.state is not TcpState.CLOSED:
            listener.accept_queue.append(child)
        skb.note(now, self.host.name, "cookie_v4_check", "valid cookie: accept queue")
        self.after(child, now)
        return True

    # ------------------------------------------------------------------ resets and errors
    def send_reset(self, ip: Ipv4, tcp: Tcp, length: int, now: float) -> None:
        """tcp_v4_send_reset for a segment that matches no socket (RFC 9293 3.10.7.1)."""
        if tcp.flags & RST:
            return
        if tcp.flags & ACK:
            rst = Tcp(tcp.dst_port, tcp.src_port, tcp.ack, 0, RST, 0)
        else:
            rst = Tcp(tcp.dst_port, tcp.src_port, 0, tcp.end_seq(length), RST | ACK, 0)
        try:
            self.host.ip.output(
                ip.src, IPPROTO_TCP, rst.build(b"", ip.dst, ip.src), now, src=ip.dst
            )
        except OSError:
            return
        self.snmp["TcpOutSegs"] += 1
        self.snmp["TcpOutRsts"] += 1

    def err(self, offender: int, icmp: Any, inner: Ipv4, rest: bytes, now: float) -> None:
        """tcp_v4_err: an ICMP error about a segment we sent (RFC 5927's checks)."""
        sport = (rest[0] << 8) | rest[1]
        dport = (rest[2] << 8) | rest[3]
        sock = self.socks.get((inner.src, sport, inner.dst, dport))
        if sock is None:
            return  # Linux: __ICMP_INC_STATS(ICMP_MIB_INERRORS) for no socket
        frag_needed = icmp.type == ICMP_DEST_UNREACH and icmp.code == ICMP_FRAG_NEEDED
        if sock.owned and not frag_needed:
            self.snmp["TcpExtLockDroppedIcmps"] += 1  # counted, then handled as Linux does
        seq = int.from_bytes(rest[4:8], "big") if len(rest) >= 8 else None
        conn = sock.conn
        if seq is not None and not conn.icmp_seq_ok(seq):
            self.snmp["TcpExtOutOfWindowIcmps"] += 1
            return
        info = icmp.rest
        if frag_needed:
            # tcp_v4_mtu_reduced -> inet_csk_update_pmtu: the route learns the MTU, and the
            # connection is told the route's MTU (min_pmtu applied, never the forged value)
            host = self.host
            host.ip.update_pmtu(inner.dst, icmp.next_hop_mtu, now)
            route = host.fib.lookup(inner.dst)
            if route is None:
                return
            info = host.ip.route_mtu(route, inner.dst, now)
        conn.icmp_error(icmp.type, icmp.code, info, now, owned=sock.owned)
        self.after(sock, now)


def _after(seq: int, conn: Connection) -> bool:
    """A new SYN may reuse a TIME-WAIT pair when its sequence is past what we received."""
    rcv_nxt = getattr(conn, "rcv_nxt", None)
    if rcv_nxt is None:
        return True
    return ((seq - rcv_nxt) & 0xFFFFFFFF) < 0x80000000 and seq != rcv_nxt


def _v4_rcv_detail(layer: TcpLayer, ip: Ipv4, tcp: Tcp, payload: bytes) -> str:
    """For the tracer: the segment and what tcp_v4_rcv found for it (socket, owner, reader)."""
    sock = layer.socks.get((ip.dst, tcp.dst_port, ip.src, tcp.src_port))
    if sock is not None:
        if sock.owned:
            found = f"{sock.conn.state}, owned by user"
        elif sock.reader_waiting:
            found = f"{sock.conn.state}, reader waiting"
        else:
            found = str(sock.conn.state)
    elif tcp.dst_port in layer.listeners:
        found = "listener"
    else:
        found = "no socket"
    return f"{tcp.src_port} > {tcp.dst_port} {_describe(tcp, payload)}: {found}"


def _describe(tcp: Tcp, payload: bytes) -> str:
    from ...wire.tcp import flags_to_str

    return f"[{flags_to_str(tcp.flags)}] seq {tcp.seq} ack {tcp.ack} len {len(payload)}"


def _errstr(code: int) -> str:
    import os

    return os.strerror(code)
