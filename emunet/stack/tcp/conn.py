"""The TCP connection state machine, modelled on Linux 6.x (RFC 9293 and the RFCs below).

A :class:`Connection` is a plain object: it is fed received segments (:meth:`Connection.process`)
and the time (every call takes ``now``, in seconds), sends segments through the ``xmit``
callback it was given, and tells the driver when it next needs the clock (:meth:`poll_at`,
:meth:`on_timer`).  It never imports trio and does no other I/O.

RFCs, and the Linux files whose behaviour each part reproduces (net/ipv4/...):

- RFC 9293 (TCP): every state and transition of section 3.3.2, the event processing of
  section 3.10, simultaneous open and close (tcp_input.c tcp_rcv_state_process,
  tcp_rcv_synsent_state_process, tcp_validate_incoming; tcp_minisocks.c tcp_check_req,
  tcp_timewait_state_process; tcp.c tcp_close, tcp_shutdown).
- RFC 5961: RST and SYN in synchronized states answered by a challenge ACK, exact RST resets,
  blind data injection (ACK below SND.UNA - MAX.SND.WND) dropped with a challenge ACK.  Rate
  limit as Linux >= 6.0: per socket, at most one challenge/out-of-window ACK per
  ``invalid_ratelimit`` (net.ipv4.tcp_invalid_ratelimit, 500 ms; TcpExtTCPACKSkipped*); the
  host-wide net.ipv4.tcp_challenge_ack_limit is INT_MAX (off) by default since 6.0 and is not
  modelled.
- RFC 7323: window scaling (our shift as tcp_select_initial_window from the largest receive
  buffer) and timestamps (a 1 ms clock ``int(now * 1000) + ts_offset``; PAWS; RTT from TSecr).
- RFC 2018 / 2883: SACK (receiver: up to 4 blocks, 3 with timestamps) and D-SACK as Linux
  (tcp_dsack_set for old and out-of-order duplicates), with sack.OfoQueue.
- RFC 6298 (rtt.RttEstimator), Karn; exponential backoff; tcp_retries2 as Linux's time budget
  (tcp_timer.c retransmits_timed_out / tcp_model_timeout); SYN retries by count.
- RFC 5681 / 6675 / 6582 / 6937: congestion control from cc.py, fast retransmit after three
  duplicate ACKs (NewReno, RFC 6582, when SACK is off) or RFC 6675 IsLost (sack.Scoreboard),
  PRR during recovery and CWR (tcp_cwnd_reduction), ca_state transitions as
  tcp_fastretrans_alert, recovery exit with cwnd = ssthresh (tcp_end_cwnd_reduction), RTO ->
  LOSS with cwnd 1 and go-back-N over the scoreboard.
- RFC 896 / 1122: Nagle with Minshall's variant (tcp_nagle_check), delayed ACKs with quick-ack
  mode and Linux's ato adaptation (tcp_event_data_recv, tcp_send_delayed_ack, __tcp_ack_snd_check,
  tcp_cleanup_rbuf), receiver silly-window avoidance and no window shrinking
  (__tcp_select_window, tcp_select_window), zero-window probes (tcp_probe_timer,
  tcp_send_probe0, tcp_write_wakeup), keepalive (tcp_keepalive_timer).
- RFC 1191: path MTU discovery (tcp_v4_mtu_reduced, tcp_sync_mss, tcp_simple_retransmit).
- RFC 6069: an ICMP host/net unreachable for the retransmitted head reverts one backoff step
  (tcp_ld_RTO_revert).
- RFC 8985 section 7: the tail loss probe (tcp_schedule_loss_probe, tcp_send_loss_probe,
  tcp_process_tlp_ack; net.ipv4.tcp_early_retrans 3), for SACK connections in OPEN/CWR.
- Buffers: tcp_rmem/tcp_wmem, SO_RCVBUF/SO_SNDBUF doubled and locked, send-buffer growth as
  tcp_sndbuf_expand, receive-buffer autotuning as tcp_rcv_space_adjust.

Memory model.  Linux charges skb truesize against the buffers and advertises
tcp_win_from_space() of them; here every queued payload byte costs two bytes of buffer, so the
advertised space is half the buffer (Linux's tcp_adv_win_scale = 1, which gives the familiar
SYN windows 64240 and 65160).  A segment held out of order costs at least its payload plus
an skb's overhead (sack.ofo_truesize), so tiny segments fill the buffer as they do in Linux;
when the buffer is full, tcp_prune_queue drops the out-of-order queue's top (PruneCalled,
OfoPruned) or the arriving segment (RcvPruned).  The send buffer counts payload bytes.

SYN timeouts are 1, 2, 4, ... s (0, 1, 3, 7, 15, 31, 63 s, ETIMEDOUT at 127 s) as in Linux
before 6.5; ``TcpConfig(syn_linear_timeouts=4)`` gives 6.5+'s first four linear timeouts.

Simplified, or not modelled (each a deliberate choice): RACK (loss detection is DupThresh/IsLost
with Linux's adaptive reordering degree) and F-RTO, undo of spurious reductions, TSO/GSO,
autocorking, the forced PSH every half window, compressed SACKs (every out-of-order segment is
ACKed at once), urgent data, ECN, TCP_USER_TIMEOUT, RFC 2861 cwnd validation after
application-limited periods (restart after idle is modelled), the 6.5+ scaling ratio of the
receive window (the fixed 1/2 above), and the host-wide challenge-ACK limit.
"""

from __future__ import annotations

import collections
import enum
import errno
from collections.abc import Callable, MutableMapping

import attrs

from ...wire.icmp import (
    ICMP_DEST_UNREACH,
    ICMP_FRAG_NEEDED,
    ICMP_HOST_UNREACH,
    ICMP_NET_UNREACH,
    ICMP_PARAMETERPROB,
    ICMP_TIME_EXCEEDED,
)
from ...wire.tcp import (
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
from .cc import CaEvent, CaState, CcState, new_congestion
from .rtt import TCP_TIMEOUT_FALLBACK, RttEstimator
from .sack import OfoQueue, Scoreboard

__all__ = ["Connection", "TcpConfig", "TcpInfo", "TcpState"]

MASK = 0xFFFFFFFF
_HALF = 0x80000000

# include/net/tcp.h
TCP_MSS_DEFAULT = 536  # RFC 9293: the MSS when the peer sends none
TCP_MIN_MSS = 88
TCP_MIN_SND_MSS = 48  # net.ipv4.tcp_min_snd_mss
TCP_MAX_WSCALE = 14
TCP_MAX_QUICKACKS = 16
TCP_FASTRETRANS_THRESH = 3
TCP_INFINITE_SSTHRESH = 0x7FFFFFFF
TCP_RTO_MIN = 0.2  # the constant tcp_model_timeout budgets with
TCP_TIMEOUT_MIN = 0.002  # 2 jiffies
TCP_RESOURCE_PROBE_INTERVAL = 0.5
TCP_PAWS_WINDOW = 1
TCP_PAWS_MSL = 60.0
TCPOLEN_TSTAMP_ALIGNED = 12
TCPOLEN_SACK_BASE_ALIGNED = 4
TCPOLEN_SACK_PERBLOCK = 8
MAX_TCP_OPTION_SPACE = 40
SOCK_MIN_SNDBUF = 4608  # 2 * TCP_SKB_MIN_TRUESIZE
SOCK_MIN_RCVBUF = 2304
TCP_PINGPONG_THRESH = 1  # net.ipv4.tcp_pingpong_thresh (6.x)

# tcp_ack flags (tcp_input.c)
FLAG_DATA = 0x01
FLAG_WIN_UPDATE = 0x02
FLAG_DATA_ACKED = 0x04
FLAG_RETRANS_DATA_ACKED = 0x08
FLAG_SYN_ACKED = 0x10
FLAG_DATA_SACKED = 0x20
FLAG_ECE = 0x40
FLAG_SND_UNA_ADVANCED = 0x400
FLAG_DSACKING_ACK = 0x800
FLAG_DSACK_TLP = 0x20000
FLAG_ACKED = FLAG_DATA_ACKED | FLAG_SYN_ACKED
FLAG_NOT_DUP = FLAG_DATA | FLAG_WIN_UPDATE | FLAG_ACKED
FLAG_CA_ALERT = FLAG_DATA_SACKED | FLAG_ECE | FLAG_DSACKING_ACK
FLAG_FORWARD_PROGRESS = FLAG_ACKED | FLAG_DATA_SACKED

# which job the retransmit timer does (icsk_pending)
_T_RTO = 1
_T_PROBE0 = 2
_T_SYNACK = 3  # a request sock's SYN-ACK timer (reqsk_timer_handler)
_T_TLP = 4  # tail loss probe (ICSK_TIME_LOSS_PROBE)

_NOP = Nop()
_SACK_PERM = SackPermitted()

# ICMP destination-unreachable codes -> (errno, fatal), net/ipv4/icmp.c icmp_err_convert
_ICMP_UNREACH_ERR = (
    (errno.ENETUNREACH, False),  # NET_UNREACH
    (errno.EHOSTUNREACH, False),  # HOST_UNREACH
    (errno.ENOPROTOOPT, True),  # PROT_UNREACH
    (errno.ECONNREFUSED, True),  # PORT_UNREACH
    (errno.EMSGSIZE, False),  # FRAG_NEEDED
    (errno.EOPNOTSUPP, False),  # SR_FAILED
    (errno.ENETUNREACH, True),  # NET_UNKNOWN
    (errno.EHOSTDOWN, True),  # HOST_UNKNOWN
    (errno.ENONET, True),  # HOST_ISOLATED
    (errno.ENETUNREACH, True),  # NET_ANO
    (errno.EHOSTUNREACH, True),  # HOST_ANO
    (errno.ENETUNREACH, False),  # NET_UNR_TOS
    (errno.EHOSTUNREACH, False),  # HOST_UNR_TOS
    (errno.EHOSTUNREACH, True),  # PKT_FILTERED
    (errno.EHOSTUNREACH, True),  # PREC_VIOLATION
    (errno.EHOSTUNREACH, True),  # PREC_CUTOFF
)


def _before(a: int, b: int) -> bool:
    """``a`` is before ``b`` in sequence space (Linux before())."""
    return bool((a - b) & MASK & _HALF)


def _after(a: int, b: int) -> bool:
    return bool((b - a) & MASK & _HALF)


def _diff(a: int, b: int) -> int:
    """a - b as a signed 32-bit distance."""
    d = (a - b) & MASK
    return d - 0x100000000 if d & _HALF else d


def _between(low: int, x: int, high: int) -> bool:
    return ((high - low) & MASK) >= ((x - low) & MASK)


def _win_from_space(space: int) -> int:
    """tcp_win_from_space with tcp_adv_win_scale 1: half the buffer (rounded up)."""
    return space - (space >> 1) if space > 0 else 0


class TcpState(enum.Enum):
    """RFC 9293 section 3.3.2 connection states; ``str()`` gives the RFC's spelling."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"

    def __str__(self) -> str:
        return self.value


_S = TcpState
_SYN_STATES = frozenset({_S.SYN_SENT, _S.SYN_RECEIVED})
# States in which the send side may still transmit data or a FIN.
_SENDING_STATES = frozenset(
    {_S.ESTABLISHED, _S.CLOSE_WAIT, _S.FIN_WAIT_1, _S.CLOSING, _S.LAST_ACK, _S.SYN_RECEIVED}
)


@attrs.frozen
class TcpConfig:
    """Sysctls and socket options a connection is created with (Linux names and defaults).

    The fields after ``init_cwnd`` are additions to the shared API, each a Linux sysctl.
    ``rcvbuf``/``sndbuf`` are the values given to SO_RCVBUF/SO_SNDBUF: the connection clamps
    them to ``rmem_max``/``wmem_max``, doubles them as Linux does and turns autotuning off.
    """

    window_scaling: bool = True  # net.ipv4.tcp_window_scaling
    timestamps: bool = True  # net.ipv4.tcp_timestamps
    sack: bool = True  # net.ipv4.tcp_sack
    syn_retries: int = 6  # net.ipv4.tcp_syn_retries
    synack_retries: int = 5  # net.ipv4.tcp_synack_retries
    retries2: int = 15  # net.ipv4.tcp_retries2
    fin_timeout: float = 60.0  # net.ipv4.tcp_fin_timeout
    time_wait: float = 60.0  # TCP_TIMEWAIT_LEN
    rto_initial: float = 1.0  # TCP_TIMEOUT_INIT
    rto_min: float = 0.2  # TCP_RTO_MIN
    rto_max: float = 120.0  # TCP_RTO_MAX
    delack_min: float = 0.04  # TCP_DELACK_MIN = TCP_ATO_MIN
    delack_max: float = 0.2  # TCP_DELACK_MAX
    nodelay: bool = False  # TCP_NODELAY
    keepalive: bool = False  # SO_KEEPALIVE
    keepalive_time: float = 7200.0  # net.ipv4.tcp_keepalive_time
    keepalive_intvl: float = 75.0  # net.ipv4.tcp_keepalive_intvl
    keepalive_probes: int = 9  # net.ipv4.tcp_keepalive_probes
    rmem: tuple[int, int, int] = (4096, 131072, 6291456)  # net.ipv4.tcp_rmem
    wmem: tuple[int, int, int] = (4096, 16384, 4194304)  # net.ipv4.tcp_wmem
    rcvbuf: int | None = None  # SO_RCVBUF as given by the user
    sndbuf: int | None = None  # SO_SNDBUF as given by the user
    congestion: str = "cubic"  # net.ipv4.tcp_congestion_control / TCP_CONGESTION
    init_cwnd: int = 10  # TCP_INIT_CWND
    # --- additions
    dsack: bool = True  # net.ipv4.tcp_dsack
    reordering: int = 3  # net.ipv4.tcp_reordering (initial DupThresh)
    max_reordering: int = 300  # net.ipv4.tcp_max_reordering
    orphan_retries: int = 0  # net.ipv4.tcp_orphan_retries (0: 8 while alive)
    syn_linear_timeouts: int = 0  # net.ipv4.tcp_syn_linear_timeouts (Linux >= 6.5: 4)
    invalid_ratelimit: float = 0.5  # net.ipv4.tcp_invalid_ratelimit
    slow_start_after_idle: bool = True  # net.ipv4.tcp_slow_start_after_idle
    early_retrans: int = 3  # net.ipv4.tcp_early_retrans: 3 or 4 enable the tail loss probe
    moderate_rcvbuf: bool = True  # net.ipv4.tcp_moderate_rcvbuf
    rmem_max: int = 212992  # net.core.rmem_max
    wmem_max: int = 212992  # net.core.wmem_max
    min_snd_mss: int = TCP_MIN_SND_MSS  # net.ipv4.tcp_min_snd_mss


@attrs.frozen
class TcpInfo:
    """A snapshot of a connection, like ``ss -ti`` / struct tcp_info.  Times in seconds,
    windows and queues in bytes, ``cwnd``/``ssthresh``/``unacked``/``sacked``/``lost``/
    ``retrans`` in segments (lost/retrans/sacked estimated from bytes when segments vary)."""

    state: TcpState
    ca_state: CaState
    retransmits: int  # consecutive timeouts without progress (icsk_retransmits)
    probes: int
    backoff: int
    rto: float
    ato: float
    snd_mss: int
    rcv_mss: int
    advmss: int
    pmtu: int
    unacked: int
    sacked: int
    lost: int
    retrans: int
    rtt: float | None
    rttvar: float
    min_rtt: float | None
    rcv_rtt: float | None
    cwnd: int
    ssthresh: int
    reordering: int
    total_retrans: int
    bytes_sent: int
    bytes_retrans: int
    bytes_acked: int
    bytes_received: int
    segs_out: int
    segs_in: int
    data_segs_out: int
    data_segs_in: int
    delivered: int
    snd_wnd: int
    rcv_wnd: int
    rcv_ssthresh: int
    rcv_space: int
    send_q: int
    recv_q: int
    sndbuf: int
    rcvbuf: int
    snd_wscale: int
    rcv_wscale: int
    timestamps: bool
    sack: bool
    wscale: bool
    nodelay: bool
    congestion: str


class Connection:
    """One TCP connection (Linux's struct tcp_sock, request sock and timewait sock in one).

    Attributes other code may read: ``state``, ``error`` (the errno Linux reports, or None),
    ``established``, ``finished``, ``rcvbuf``, ``sndbuf``, ``readable``, ``eof``, the sequence
    variables ``iss irs snd_una snd_nxt snd_wnd rcv_nxt rcv_wnd`` and ``config``.
    """

    def __init__(
        self,
        local: tuple[int, int],
        remote: tuple[int, int],
        *,
        isn: int,
        mss: int,
        config: TcpConfig,
        counters: MutableMapping[str, int],
        now: float,
        xmit: Callable[[Tcp, bytes], bool],
        ts_offset: int = 0,
        pmtu: int | None = None,
    ) -> None:
        if mss < TCP_MIN_SND_MSS:
            raise ValueError(f"mss {mss} is below {TCP_MIN_SND_MSS}")
        self.local = local
        self.remote = remote
        self.config = config
        self.counters = counters
        self._xmit = xmit
        self.ts_offset = ts_offset & MASK
        self.created = now

        self.state = TcpState.CLOSED
        self.error: int | None = None
        self.established = False
        self._soft_error: int | None = None  # sk_err_soft
        self._orphan = False  # SOCK_DEAD: closed by the user
        self._rcv_shutdown = False  # RCV_SHUTDOWN
        self._request = False  # a request sock (passive SYN-RECEIVED) until the final ACK
        self._tw_finwait2 = False  # a timewait sock in substate FIN-WAIT-2
        self._listen_origin = False  # opened by open_listen: RST returns to LISTEN

        # --- send sequence space (RFC 9293 3.3.1)
        self.iss = isn & MASK
        self.snd_una = self.iss
        self.snd_nxt = self.iss
        self.write_seq = self.iss  # one past the last byte queued (SYN, data, FIN)
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.max_window = 0
        self._sbuf = bytearray()  # unacked + unsent data, from _sbuf_seq
        self._sbuf_seq = (self.iss + 1) & MASK
        self._fin_queued = False
        self._push_marks: collections.deque[int] = collections.deque()  # end seq of writes
        self._snd_sml = self.iss  # end of the last small segment sent (Minshall)
        self.bytes_acked = 0
        self.bytes_sent = 0
        self.bytes_retrans = 0
        self.segs_out = 0
        self.data_segs_out = 0
        self.total_retrans = 0
        self.delivered = 0

        # --- receive sequence space
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_wnd = 0  # the window last advertised, bytes
        self.rcv_wup = 0  # rcv_nxt when it was advertised
        self._rq = bytearray()  # in-order data not yet read
        self._fin_rcvd = False  # FIN received in order
        self._ofo = OfoQueue()
        self._ofo_fin: int | None = None  # seq of a FIN received out of order
        self._dsack: tuple[int, int] | None = None
        self.bytes_received = 0
        self.segs_in = 0
        self.data_segs_in = 0

        # --- options and MSS
        self.advmss = mss
        self._pmtu = mss + 40 if pmtu is None else pmtu
        self.mss_clamp = TCP_MSS_DEFAULT  # the peer's MSS (rx_opt.mss_clamp)
        self.mss_cache = TCP_MSS_DEFAULT
        self.tstamp_ok = False
        self.sack_ok = False
        self.wscale_ok = False
        self.snd_wscale = 0
        self.rcv_wscale = 0
        self._tcp_header_len = 20
        self.ts_recent = 0
        self._ts_recent_stamp: float | None = None
        self._last_oow_ack: float | None = None

        # --- buffers
        if config.rcvbuf is not None:
            self.rcvbuf = max(2 * min(config.rcvbuf, config.rmem_max), SOCK_MIN_RCVBUF)
            self._rcvbuf_locked = True
        else:
            self.rcvbuf = config.rmem[1]
            self._rcvbuf_locked = False
        if config.sndbuf is not None:
            self.sndbuf = max(2 * min(config.sndbuf, config.wmem_max), SOCK_MIN_SNDBUF)
            self._sndbuf_locked = True
        else:
            self.sndbuf = config.wmem[1]
            self._sndbuf_locked = False
        self.window_clamp = 0
        self.rcv_ssthresh = 0
        self._rcvq_space = 0
        self._rcvq_seq = 0
        self._rcvq_time: float | None = None
        self._rcv_rtt: float = 0.0  # rcv_rtt_est.rtt_us << 3, in seconds (0: none)
        self._rcv_rtt_seq = 0
        self._rcv_rtt_time: float | None = None
        self._rcv_rtt_last_tsecr = 0

        # --- congestion control
        self.nodelay = config.nodelay
        self._cc = new_congestion(config.congestion, counters=counters)
        self.congestion = config.congestion
        self._st = CcState(cwnd=config.init_cwnd)
        self._ca_state = CaState.OPEN
        self.high_seq = self.iss
        self._prior_ssthresh = 0
        self._prior_cwnd = 0
        self._prr_delivered = 0
        self._prr_out = 0
        self._reno_sacked = 0  # duplicate ACKs counted as SACKed segments (tcp_add_reno_sack)
        self.reordering = config.reordering
        self._is_cwnd_limited = False
        self._max_packets_out = 0
        self._cwnd_usage_seq = self.iss
        self._lsndtime = now
        self._rcv_tstamp = now

        # --- retransmission
        self._rtt = RttEstimator(
            rto_initial=config.rto_initial, rto_min=config.rto_min, rto_max=config.rto_max
        )
        self._rto = config.rto_initial  # icsk_rto: doubled in place by timeouts
        self._backoff = 0  # icsk_backoff
        self._retransmits = 0  # icsk_retransmits
        self._total_rto = 0
        self._retrans_stamp: float | None = None
        self._probes_out = 0
        self._num_timeout = 0  # SYN-ACK timeouts of a request sock
        # the listener's young/old pruning of a request sock's retries (reqsk_timer_handler)
        self.synack_retries_now: Callable[[int], int] | None = None
        self._tlp_high_seq: int | None = None  # snd_nxt when a loss probe went out
        self._tlp_retrans = False  # the probe was a retransmission
        self._last_seg = (self.iss, 0)  # (seq, length) of the last segment sent (rtx tail)
        self._sb = Scoreboard(TCP_MSS_DEFAULT, snd_una=self.iss)

        # --- timers (absolute times, None when not armed)
        self._t_rexmit: float | None = None
        self._rexmit_kind = 0
        self._t_delack: float | None = None
        self._t_keepalive: float | None = None
        self._t_tw: float | None = None  # TIME-WAIT, or an orphan's FIN-WAIT-2 timeout

        # --- delayed ACK engine (icsk_ack)
        self._ack_sched = False  # ICSK_ACK_SCHED
        self._ack_now = False  # ICSK_ACK_NOW
        self._ack_pushed = False  # ICSK_ACK_PUSHED
        self._ack_pushed2 = False  # ICSK_ACK_PUSHED2
        self._quick = 0
        self._pingpong = 0
        self._ato = 0.0
        self._lrcvtime = now
        self.rcv_mss = TCP_MSS_DEFAULT
        self._last_seg_size = 0

    # ============================================================================ properties

    @property
    def finished(self) -> bool:
        """Nothing left to do: CLOSED (or TIME-WAIT over); the driver may forget it."""
        return self.state is TcpState.CLOSED

    @property
    def readable(self) -> int:
        """Bytes ready in the receive queue."""
        return len(self._rq)

    @property
    def eof(self) -> bool:
        """The FIN has arrived and every byte before it has been read."""
        return self._fin_rcvd and not self._rq

    @property
    def ca_state(self) -> CaState:
        return self._ca_state

    @property
    def cwnd(self) -> int:
        return self._st.cwnd

    @property
    def ssthresh(self) -> int:
        return self._st.ssthresh

    @property
    def rto(self) -> float:
        """The retransmission timeout now in force (backoff included)."""
        return self._rto

    @property
    def writable(self) -> bool:
        """sk_stream_is_writeable: at least a third of the send buffer is free."""
        queued = len(self._sbuf)
        return self.sndbuf - queued >= queued >> 1

    def send_space(self) -> int:
        """Bytes ``send`` would take now (free send buffer)."""
        return max(0, self.sndbuf - len(self._sbuf))

    def poll_at(self) -> float | None:
        """The earliest armed timer."""
        t = None
        for when in (self._t_rexmit, self._t_delack, self._t_keepalive, self._t_tw):
            if when is not None and (t is None or when < t):
                t = when
        return t

    def __repr__(self) -> str:
        return (
            f"<Connection {self.local[1]}->{self.remote[1]} {self.state} "
            f"una={self.snd_una} nxt={self.snd_nxt} rcv_nxt={self.rcv_nxt}>"
        )

    # ============================================================================ helpers

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def _ts_now(self, now: float) -> int:
        return (int(now * 1000.0 + 1e-6) + self.ts_offset) & MASK

    def _set_state(self, new: TcpState) -> None:
        """tcp_set_state: state change with Linux's MIB bookkeeping."""
        old = self.state
        if new is old:
            return
        if new is _S.ESTABLISHED:
            self._count("TcpCurrEstab")
        elif new is _S.CLOSED and old in (_S.ESTABLISHED, _S.CLOSE_WAIT):
            self._count("TcpEstabResets")
        if old is _S.ESTABLISHED:
            self._count("TcpCurrEstab", -1)
        self.state = new

    def _done(self) -> None:
        """tcp_done: the connection is over (CLOSED), nothing more is sent."""
        if self.state in _SYN_STATES:
            self._count("TcpAttemptFails")
        self._set_state(_S.CLOSED)
        self._clear_timers()
        self._sbuf = bytearray()
        self._fin_queued = False
        self._ofo.clear()

    def _clear_timers(self) -> None:
        self._t_rexmit = self._t_delack = self._t_keepalive = self._t_tw = None
        self._rexmit_kind = 0
        self._ack_sched = False

    @property
    def _data_end(self) -> int:
        return (self._sbuf_seq + len(self._sbuf)) & MASK

    def _unsent(self) -> int:
        """Bytes of data queued and not yet sent."""
        d = _diff(self._data_end, self.snd_nxt)
        return d if d > 0 else 0

    def _fin_pending(self) -> bool:
        """The FIN is queued and not yet sent."""
        return self._fin_queued and not _after(self.snd_nxt, self._data_end)

    def _has_unsent(self) -> bool:
        return self._unsent() > 0 or self._fin_pending()

    def _packets_out(self) -> bool:
        return self.snd_nxt != self.snd_una

    def _in_flight(self) -> int:
        """tcp_packets_in_flight, in segments: packets_out - sacked - lost + retransmitted."""
        sb = self._sb
        if not sb.sacked_bytes and not sb.lost_bytes and not sb.retrans_out:
            n = len(sb)
        else:
            pipe = sb.pipe()
            n = -(-pipe // self.mss_cache) if pipe > 0 else 0
        if self._reno_sacked:
            n = max(0, n - self._reno_sacked)
        return n

    def _sync_cc(self) -> CcState:
        st = self._st
        st.in_flight = self._in_flight()
        st.mss = self.mss_cache
        st.srtt = self._rtt.srtt
        st.min_rtt = self._rtt.min_rtt
        st.lsndtime = self._lsndtime
        return st

    def _set_ca_state(self, new: CaState, now: float) -> None:
        if new != self._ca_state:
            self._cc.set_state(self._sync_cc(), new, now)
            self._ca_state = new

    # ------------------------------------------------------------------ MSS and windows

    def _mtu_to_mss(self, pmtu: int) -> int:
        """tcp_mtu_to_mss: the payload per segment for a path MTU, timestamps deducted."""
        mss = pmtu - 40
        if mss > self.mss_clamp:
            mss = self.mss_clamp
        mss = max(mss, self.config.min_snd_mss)
        return mss - (self._tcp_header_len - 20)

    def _sync_mss(self, pmtu: int) -> int:
        """tcp_sync_mss: recompute mss_cache, bounded to half the largest peer window."""
        mss = self._mtu_to_mss(pmtu)
        mw = self.max_window
        cutoff = mw >> 1 if mw > TCP_MSS_DEFAULT else mw
        if cutoff and mss > cutoff:
            mss = max(cutoff, 68 - self._tcp_header_len)
        self._pmtu = pmtu
        self.mss_cache = mss
        self._sb.mss = mss
        self._st.mss = mss
        return mss

    def _sack_opt_blocks(self) -> int:
        if not self.sack_ok:
            return 0
        n = 1 if self._dsack else 0
        if len(self._ofo):
            n += len(self._ofo.sack_blocks(self.rcv_nxt, 4))
        if not n:
            return 0
        room = MAX_TCP_OPTION_SPACE - (self._tcp_header_len - 20)
        return min(n, (room - TCPOLEN_SACK_BASE_ALIGNED) // TCPOLEN_SACK_PERBLOCK)

    def _current_mss(self) -> int:
        """tcp_current_mss: mss_cache less the room the SACK blocks take now."""
        n = self._sack_opt_blocks()
        if n:
            return max(self.mss_cache - TCPOLEN_SACK_BASE_ALIGNED - n * TCPOLEN_SACK_PERBLOCK, 1)
        return self.mss_cache

    def _full_space(self) -> int:
        return _win_from_space(self.rcvbuf)

    def _queued_rcv(self) -> int:
        return len(self._rq) + self._ofo.nbytes

    def _space(self) -> int:
        """tcp_space: the window the free receive buffer allows."""
        return self._full_space() - self._queued_rcv()

    def _receive_window(self) -> int:
        """tcp_receive_window: what is left of the window last advertised."""
        w = self.rcv_wnd - _diff(self.rcv_nxt, self.rcv_wup)
        return w if w > 0 else 0

    def _raw_select_window(self) -> int:
        """__tcp_select_window: the window we would offer now, before any no-shrink rule."""
        mss = self.rcv_mss
        free_space = self._space()
        allowed_space = self._full_space()
        full_space = min(self.window_clamp, allowed_space)
        if mss > full_space:
            mss = full_space
            if mss <= 0:
                return 0
        if free_space < (full_space >> 1):
            self._quick = 0
            scale = self.rcv_wscale
            free_space = (free_space >> scale) << scale if free_space > 0 else 0
            if free_space < (allowed_space >> 4) or free_space < mss:
                return 0
        if free_space > self.rcv_ssthresh:
            free_space = self.rcv_ssthresh
        if self.rcv_wscale:
            unit = 1 << self.rcv_wscale
            return (free_space + unit - 1) & ~(unit - 1)
        window = self.rcv_wnd
        if window <= free_space - mss or window > free_space:
            window = (free_space // mss) * mss
        elif mss == full_space and free_space > window + (full_space >> 1):
            window = free_space
        return window

    def _select_window(self) -> int:
        """tcp_select_window: never shrink the offered window; returns the header value."""
        old_win = self.rcv_wnd
        cur_win = self._receive_window()
        new_win = self._raw_select_window()
        if new_win < cur_win:
            if new_win == 0:
                self._count("TcpExtTCPWantZeroWindowAdv")
            unit = 1 << self.rcv_wscale
            new_win = (cur_win + unit - 1) & ~(unit - 1)
        self.rcv_wnd = new_win
        self.rcv_wup = self.rcv_nxt
        new_win = min(new_win, 65535 << self.rcv_wscale) >> self.rcv_wscale
        if new_win == 0:
            if old_win:
                self._count("TcpExtTCPToZeroWindowAdv")
        elif old_win == 0:
            self._count("TcpExtTCPFromZeroWindowAdv")
        return new_win

    def _select_initial_window(self, mss: int) -> None:
        """tcp_select_initial_window (+ the SO_RCVBUF window clamp of tcp_connect_init)."""
        space = self._full_space()
        clamp = 65535 << TCP_MAX_WSCALE
        if self._rcvbuf_locked:
            clamp = min(clamp, space)
        space = min(clamp, space)
        if space > mss:
            space = (space // mss) * mss
        self.rcv_wnd = min(space, 65535)
        self.rcv_wscale = 0
        if self.wscale_ok:
            s = max(space, self.config.rmem[2], self.config.rmem_max)
            s = min(s, clamp)
            self.rcv_wscale = max(0, min(s.bit_length() - 1 - 15, TCP_MAX_WSCALE))
        self.window_clamp = min(65535 << self.rcv_wscale, clamp)
        self.rcv_ssthresh = self.rcv_wnd

    # ------------------------------------------------------------------ options

    def _parse_syn_options(self, tcp: Tcp) -> tuple[int | None, int | None]:
        """tcp_parse_options on a SYN: negotiate MSS, window scale, SACK, timestamps.
        Returns (tsval, tsecr) when the SYN carried timestamps we accept."""
        cfg = self.config
        mss = None
        wscale = None
        sack = False
        ts: Timestamps | None = None
        for opt in tcp.options:
            t = type(opt)
            if t is Mss:
                if opt.mss:  # type: ignore[union-attr]
                    mss = opt.mss  # type: ignore[union-attr]
            elif t is WindowScale:
                wscale = opt.shift  # type: ignore[union-attr]
            elif t is SackPermitted:
                sack = True
            elif t is Timestamps:
                ts = opt  # type: ignore[assignment]
        self.mss_clamp = mss if mss is not None else TCP_MSS_DEFAULT
        self.wscale_ok = wscale is not None and cfg.window_scaling
        self.snd_wscale = min(wscale, TCP_MAX_WSCALE) if self.wscale_ok and wscale else 0
        self.sack_ok = sack and cfg.sack
        self.tstamp_ok = ts is not None and cfg.timestamps
        self._tcp_header_len = 20 + (TCPOLEN_TSTAMP_ALIGNED if self.tstamp_ok else 0)
        if self.tstamp_ok and ts is not None:
            return ts.tsval, ts.tsecr
        return None, None

    def _syn_options(self, now: float, *, synack: bool) -> tuple:
        """The options of our SYN (tcp_syn_options) or SYN-ACK (tcp_synack_options), in the
        order tcp_options_write puts them."""
        cfg = self.config
        opts: list = [Mss(min(self.advmss, 65535))]
        ts = self.tstamp_ok if synack else cfg.timestamps
        sack = self.sack_ok if synack else cfg.sack
        ws = self.wscale_ok if synack else cfg.window_scaling
        if ts:
            tsecr = self.ts_recent if synack else 0
            if sack:
                opts.append(_SACK_PERM)
            else:
                opts += [_NOP, _NOP]
            opts.append(Timestamps(self._ts_now(now), tsecr))
        elif sack:
            opts += [_NOP, _NOP, _SACK_PERM]
        if ws:
            opts += [_NOP, WindowScale(self.rcv_wscale)]
        return tuple(opts)

    def _options(self, now: float) -> tuple:
        """tcp_established_options: timestamps, SACK blocks (a pending D-SACK first)."""
        opts: list = []
        if self.tstamp_ok:
            opts = [_NOP, _NOP, Timestamps(self._ts_now(now), self.ts_recent)]
        if self.sack_ok:
            n = self._sack_opt_blocks()
            if n:
                blocks = []
                if self._dsack:
                    blocks.append(self._dsack)
                    self._dsack = None  # a D-SACK is reported once (tcp_options_write)
                if len(blocks) < n:
                    blocks += self._ofo.sack_blocks(self.rcv_nxt, n - len(blocks))
                if blocks:
                    opts += [_NOP, _NOP, Sack(tuple(blocks))]
        return tuple(opts)

    # ============================================================================ output

    def _send_segment(self, seq: int, flags: int, payload: bytes, now: float) -> bool:
        """tcp_transmit_skb for a non-SYN segment: header, window, options, accounting."""
        opts = self._options(now)
        window = self._select_window()
        ack = self.rcv_nxt if flags & ACK else 0
        header = Tcp(self.local[1], self.remote[1], seq & MASK, ack, flags, window, 0, opts)
        if flags & ACK:
            self._event_ack_sent()
        length = len(payload) + (1 if flags & FIN else 0)
        if length == 0 or _after((seq + length) & MASK, self.snd_nxt):
            self._count("TcpOutSegs")
        self.segs_out += 1
        if payload:
            self._event_data_sent(now)
            self.data_segs_out += 1
            self.bytes_sent += len(payload)
        return self._xmit(header, payload)

    def _send_syn(self, now: float, *, retransmit: bool) -> bool:
        """Our SYN (SYN-SENT) or, once the peer's SYN is in (simultaneous open), SYN-ACK."""
        flags = SYN | (ACK if self.state is _S.SYN_RECEIVED else 0)
        header = Tcp(
            self.local[1],
            self.remote[1],
            self.iss,
            self.rcv_nxt if flags & ACK else 0,
            flags,
            min(self.rcv_wnd, 65535),
            0,
            self._syn_options(now, synack=False),
        )
        if not retransmit and self.snd_nxt == self.iss:
            self._count("TcpOutSegs")
        self.segs_out += 1
        return self._xmit(header, b"")

    def _send_synack(self, now: float) -> bool:
        """A request sock's SYN-ACK (tcp_make_synack)."""
        header = Tcp(
            self.local[1],
            self.remote[1],
            self.iss,
            self.rcv_nxt,
            SYN | ACK,
            min(self.rcv_wnd, 65535),
            0,
            self._syn_options(now, synack=True),
        )
        self.segs_out += 1
        return self._xmit(header, b"")

    def _acceptable_seq(self) -> int:
        """tcp_acceptable_seq: snd_nxt, unless the peer's window ends before it."""
        wnd_end = (self.snd_una + self.snd_wnd) & MASK
        if not _before(wnd_end, self.snd_nxt) or (
            self.wscale_ok and _diff(self.snd_nxt, wnd_end) < (1 << self.rcv_wscale)
        ):
            return self.snd_nxt
        return wnd_end

    def _send_ack(self, now: float) -> None:
        """tcp_send_ack: a pure ACK."""
        if self.state is _S.CLOSED:
            return
        self._send_segment(self._acceptable_seq(), ACK, b"", now)

    def _send_active_reset(self, now: float) -> None:
        """tcp_send_active_reset: RST|ACK from our state."""
        header = Tcp(
            self.local[1],
            self.remote[1],
            self._acceptable_seq(),
            self.rcv_nxt,
            RST | ACK,
            self._select_window(),
            0,
            self._options(now),
        )
        self._count("TcpOutRsts")
        self._count("TcpOutSegs")
        self.segs_out += 1
        self._xmit(header, b"")

    def _send_reset_for(self, tcp: Tcp, payload_len: int) -> None:
        """tcp_v4_send_reset: the reset answering an unacceptable segment (never a RST)."""
        if tcp.flags & RST:
            return
        if tcp.flags & ACK:
            header = Tcp(self.local[1], self.remote[1], tcp.ack, 0, RST, 0)
        else:
            header = Tcp(self.local[1], self.remote[1], 0, tcp.end_seq(payload_len), RST | ACK, 0)
        self._count("TcpOutRsts")
        self._count("TcpOutSegs")
        self.segs_out += 1
        self._xmit(header, b"")

    def _oow_rate_limited(self, now: float, counter: str) -> bool:
        """__tcp_oow_rate_limited: one out-of-window/challenge ACK per invalid_ratelimit."""
        last = self._last_oow_ack
        if last is not None and 0 <= now - last < self.config.invalid_ratelimit:
            self._count(counter)
            return True
        self._last_oow_ack = now
        return False

    def _send_challenge_ack(self, now: float) -> None:
        """tcp_send_challenge_ack (RFC 5961 section 7, per-socket limit of Linux >= 6.0)."""
        if self._oow_rate_limited(now, "TcpExtTCPACKSkippedChallenge"):
            return
        self._count("TcpExtTCPChallengeACK")
        self._send_ack(now)

    def _send_dupack(self, seq: int, end_seq: int, now: float) -> None:
        """tcp_send_dupack: ACK an unacceptable segment, D-SACKing what it repeated."""
        if end_seq != seq and _before(seq, self.rcv_nxt):
            self._count("TcpExtDelayedACKLost")
            self._enter_quickack_mode(TCP_MAX_QUICKACKS)
            if self.sack_ok and self.config.dsack:
                end = self.rcv_nxt if _after(end_seq, self.rcv_nxt) else end_seq
                self._dsack_set(seq, end)
        self._send_ack(now)

    def _dsack_set(self, seq: int, end_seq: int) -> None:
        if self.sack_ok and self.config.dsack:
            if _before(seq, self.rcv_nxt):
                self._count("TcpExtTCPDSACKOldSent")
            else:
                self._count("TcpExtTCPDSACKOfoSent")
            self._dsack = (seq & MASK, end_seq & MASK)

    # ------------------------------------------------------------------ data output

    def _psh_for(self, seq: int, end: int) -> bool:
        """PSH on the segment holding the end of a write (tcp_mark_push)."""
        marks = self._push_marks
        while marks and not _after(marks[0], seq):
            marks.popleft()
        if marks and not _after(marks[0], end):
            while marks and not _after(marks[0], end):
                marks.popleft()
            return True
        return False

    def _transmit_new(self, seq: int, length: int, fin: bool, now: float) -> bool:
        """Send new data [seq, seq+length) (+FIN) from the write queue (tcp_write_xmit)."""
        off = _diff(seq, self._sbuf_seq)
        payload = bytes(self._sbuf[off : off + length]) if length else b""
        end = (seq + length) & MASK
        flags = ACK
        if length and self._psh_for(seq, end):
            flags |= PSH
        if fin:
            flags |= FIN
        had_outstanding = self._packets_out()
        if not self._send_segment(seq, flags, payload, now):
            self._enter_cwr(now)
            return False
        total = length + (1 if fin else 0)
        self._sb.on_sent(seq, total, now)
        self.snd_nxt = (seq + total) & MASK
        self._last_seg = (seq, total)
        if length:
            self._count("TcpExtTCPOrigDataSent")
        if length < self.mss_cache:
            self._snd_sml = self.snd_nxt
        if not had_outstanding or self._rexmit_kind in (_T_PROBE0, _T_TLP):
            self._rearm_rto(now)
        return True

    def _nagle_ok(self, length: int, mss: int, nonagle: bool) -> bool:
        """tcp_nagle_test for the last (partial) segment: Minshall's variant."""
        if length >= mss or nonagle or self.nodelay:
            return True
        if not self._packets_out():
            return True
        sml = self._snd_sml
        minshall = _after(sml, self.snd_una) and not _after(sml, self.snd_nxt)
        return not minshall

    def _write_xmit(self, now: float, *, nonagle: bool = False, push_one: bool = False) -> int:
        """tcp_write_xmit: send what cwnd, the peer's window and Nagle allow (one segment
        only for a loss probe); returns the segments sent."""
        if self.state not in _SENDING_STATES or not _after(self.snd_una, self.iss):
            return 0
        mss = self._current_mss()
        sent = 0
        cwnd_limited = False
        st = self._st
        while True:
            seq = self.snd_nxt
            unsent = self._unsent()
            fin_pending = self._fin_pending()
            if unsent <= 0 and not fin_pending:
                break
            length = min(mss, unsent)
            fin = fin_pending and length == unsent
            if not fin and not push_one and self._in_flight() >= st.cwnd:
                cwnd_limited = True  # (a loss probe is forced out past cwnd)
                break
            end = (seq + length + (1 if fin else 0)) & MASK
            if _after(end, (self.snd_una + self.snd_wnd) & MASK):
                break
            if not fin and not self._nagle_ok(length, mss, nonagle):
                break
            if not self._transmit_new(seq, length, fin, now):
                break
            sent += 1
            if push_one:
                break
        if sent:
            if self._ca_state in (CaState.CWR, CaState.RECOVERY):
                self._prr_out += sent
            if not push_one:
                self._schedule_loss_probe(now, advancing_rto=False)  # one per tail episode
        self._cwnd_validate(cwnd_limited)
        if not self._packets_out() and self._has_unsent() and self._t_rexmit is None:
            # tcp_check_probe_timer
            self._arm_rexmit(now, self._probe0_base(), _T_PROBE0)
        return sent

    def _cwnd_validate(self, is_cwnd_limited: bool) -> None:
        """tcp_cwnd_validate: remember whether this window of data was cwnd-limited."""
        packets_out = len(self._sb)
        if (
            not _before(self.snd_una, self._cwnd_usage_seq)
            or is_cwnd_limited
            or (not self._is_cwnd_limited and packets_out > self._max_packets_out)
        ):
            self._is_cwnd_limited = is_cwnd_limited
            self._max_packets_out = packets_out
            self._cwnd_usage_seq = self.snd_nxt

    def _cwnd_limited(self) -> bool:
        """tcp_is_cwnd_limited."""
        if self._is_cwnd_limited:
            return True
        st = self._st
        if st.cwnd < st.ssthresh:
            return st.cwnd < 2 * self._max_packets_out
        return False

    def _retransmit(self, seq: int, length: int, now: float) -> bool:
        """tcp_retransmit_skb for [seq, seq+length) (SYN, data and FIN as they fall)."""
        if self.state is _S.SYN_SENT or (
            self.state is _S.SYN_RECEIVED and seq == self.iss and not self._request
        ):
            if seq == self.iss:
                ok = self._send_syn(now, retransmit=True)
                if ok:
                    self._count("TcpExtTCPSynRetrans")
                    self._after_retransmit(seq, 1, now)
                return ok
        if seq == self.iss and self._request:
            return self._retransmit_synack(now)
        # tcp_retransmit_skb: never more than the current MSS (SACK blocks take room)
        length = min(length, self._current_mss() + (1 if self._fin_queued else 0))
        data_end = self._data_end
        end = (seq + length) & MASK
        dlen = _diff(data_end, seq)
        dlen = max(0, min(dlen, length, self._current_mss()))
        fin = self._fin_queued and _between(seq, data_end, (end - 1) & MASK) and dlen < length
        off = _diff(seq, self._sbuf_seq)
        if off < 0:  # cannot happen: data below snd_una is gone
            return False
        payload = bytes(self._sbuf[off : off + dlen]) if dlen else b""
        flags = ACK | (FIN if fin else 0)
        if dlen and _diff(data_end, (seq + dlen) & MASK) == 0:
            flags |= PSH
        if not self._send_segment(seq, flags, payload, now):
            self._enter_cwr(now)
            return False
        self._after_retransmit(seq, dlen + (1 if fin else 0), now)
        self.bytes_retrans += dlen
        return True

    def _after_retransmit(self, seq: int, length: int, now: float) -> None:
        if self._retrans_stamp is None:
            sent = None
            for seg in self._sb.segments():
                if not _after(seq, seg.seq) or seq == seg.seq:
                    sent = seg.sent
                    break
            self._retrans_stamp = sent if sent is not None else now
        self._sb.on_sent(seq, length, now, retransmit=True)
        self._count("TcpRetransSegs")
        self.total_retrans += 1

    def _retransmit_synack(self, now: float) -> bool:
        ok = self._send_synack(now)
        if ok:
            self._count("TcpRetransSegs")
            self._count("TcpExtTCPSynRetrans")
            self.total_retrans += 1
            self._sb.on_sent(self.iss, 1, now, retransmit=True)
        return ok

    def _xmit_retransmit_queue(self, now: float) -> None:
        """tcp_xmit_retransmit_queue: retransmit segments marked lost while cwnd allows."""
        sb = self._sb
        st = self._st
        wnd_end = (self.snd_una + self.snd_wnd) & MASK
        while self._in_flight() < st.cwnd:
            nxt = sb.next_seg(self.snd_nxt, rule3=False)
            if nxt is None:
                break
            seq, length = nxt
            if not _before(seq, wnd_end) and seq != self.snd_una:
                break
            if not self._retransmit(seq, length, now):
                break
            if self._ca_state != CaState.LOSS:
                self._count("TcpExtTCPFastRetrans")
            else:
                self._count("TcpExtTCPSlowStartRetrans")
            if self._ca_state in (CaState.CWR, CaState.RECOVERY):
                self._prr_out += 1

    def _event_data_sent(self, now: float) -> None:
        """tcp_event_data_sent: TX_START after idle, lsndtime, ping-pong detection."""
        if not self._packets_out():
            self._cc.cwnd_event(self._sync_cc(), CaEvent.TX_START, now)
        self._lsndtime = now
        if now - self._lrcvtime < self._ato:
            self._pingpong = min(self._pingpong + 1, 255)

    # ============================================================================ timers

    def _arm_rexmit(self, now: float, delay: float, kind: int) -> None:
        self._t_rexmit = now + min(delay, self.config.rto_max)
        self._rexmit_kind = kind

    def _rearm_rto(self, now: float) -> None:
        """tcp_rearm_rto."""
        if not self._packets_out():
            if self._rexmit_kind in (_T_RTO, _T_TLP):
                self._t_rexmit = None
                self._rexmit_kind = 0
        elif self._rexmit_kind == _T_TLP:
            # the RTO counts from the head's transmission (tcp_rto_delta_us)
            self._arm_rexmit(now, max(self._rto_delta(now), 1e-6), _T_RTO)
        else:
            self._arm_rexmit(now, self._rto, _T_RTO)

    def _rto_delta(self, now: float) -> float:
        """tcp_rto_delta_us: how far in the future the RTO of the head segment is."""
        head = next(iter(self._sb.segments()), None)
        sent = head.sent if head is not None else now
        return sent + self._rto - now

    def _schedule_loss_probe(self, now: float, *, advancing_rto: bool) -> bool:
        """tcp_schedule_loss_probe: a probe 2 * SRTT after the last send (RFC 8985 7.2),
        plus rto_min when one segment is out (a delayed ACK), never later than the RTO."""
        if (
            self.config.early_retrans not in (3, 4)
            or not self.sack_ok
            or not self._packets_out()
            or self._ca_state not in (CaState.OPEN, CaState.CWR)
            or self.state in _SYN_STATES
            or self._request
        ):
            return False
        srtt = self._rtt.srtt
        if srtt is not None:
            timeout = 2 * srtt + (self.config.rto_min if len(self._sb) == 1 else TCP_TIMEOUT_MIN)
        else:
            timeout = self.config.rto_initial
        rto_delta = self._rto if advancing_rto else self._rto_delta(now)
        if rto_delta > 0:
            timeout = min(timeout, rto_delta)
        self._arm_rexmit(now, timeout, _T_TLP)
        return True

    def _send_loss_probe(self, now: float) -> None:
        """tcp_send_loss_probe: new data if the window allows, else the last segment again."""
        if self._tlp_high_seq is None and self._packets_out():
            self._tlp_retrans = False
            probed = False
            fits = False
            if self._has_unsent():
                length = min(self._current_mss(), self._unsent())
                end = (self.snd_nxt + length) & MASK
                fits = not _after(end, (self.snd_una + self.snd_wnd) & MASK)
            if fits:
                probed = self._write_xmit(now, nonagle=True, push_one=True) > 0
            else:
                seq, length = self._last_seg
                if _before(seq, self.snd_una):
                    length -= _diff(self.snd_una, seq)
                    seq = self.snd_una
                if length > 0 and self._retransmit(seq, length, now):
                    self._tlp_retrans = True
                    probed = True
            if probed:
                self._tlp_high_seq = self.snd_nxt
                self._count("TcpExtTCPLossProbes")
                self._t_rexmit = None  # the RTO restarts from now
                self._rexmit_kind = 0
        self._rearm_rto(now)

    def _process_tlp_ack(self, ack: int, flag: int, now: float) -> None:
        """tcp_process_tlp_ack: did the probe repair a loss?  (RFC 8985 7.4)"""
        high = self._tlp_high_seq
        if high is None or _before(ack, high):
            return
        if not self._tlp_retrans or flag & FLAG_DSACK_TLP:
            self._tlp_high_seq = None  # new data acked, or the original and the probe arrived
        elif _after(ack, high):
            # The probe repaired a loss: reduce cwnd once (CWR) and carry on.
            self._init_cwnd_reduction(now)
            self._set_ca_state(CaState.CWR, now)
            self._end_cwnd_reduction(now)
            self._try_to_open(now)
            self._count("TcpExtTCPLossProbeRecovery")
        elif not flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP | FLAG_DATA_SACKED):
            self._tlp_high_seq = None  # a pure duplicate ACK: both arrived, no loss

    def _probe0_base(self) -> float:
        return max(self._rto, TCP_RTO_MIN)

    def _probe0_when(self) -> float:
        return min(self._probe0_base() * (1 << min(self._backoff, 30)), self.config.rto_max)

    def on_timer(self, now: float) -> None:
        """Run every timer due at ``now``."""
        t = self._t_rexmit
        if t is not None and t <= now:
            kind = self._rexmit_kind
            self._t_rexmit = None
            # (a loss probe keeps its kind: if none goes out, the RTO counts from the head)
            self._rexmit_kind = _T_TLP if kind == _T_TLP else 0
            if kind == _T_RTO:
                self._retransmit_timer(now)
            elif kind == _T_PROBE0:
                self._probe_timer(now)
            elif kind == _T_SYNACK:
                self._synack_timer(now)
            elif kind == _T_TLP:
                self._send_loss_probe(now)
        t = self._t_delack
        if t is not None and t <= now:
            self._t_delack = None
            self._delack_timer(now)
        t = self._t_keepalive
        if t is not None and t <= now:
            self._t_keepalive = None
            self._keepalive_timer(now)
        t = self._t_tw
        if t is not None and t <= now:
            self._t_tw = None
            self._tw_timer(now)

    def _tw_timer(self, now: float) -> None:
        """TIME-WAIT (or an orphan's FIN-WAIT-2) is over (tw_timer_handler)."""
        if self.state in (_S.TIME_WAIT, _S.FIN_WAIT_2):
            self._count("TcpExtTW")
            self._set_state(_S.CLOSED)
            self._clear_timers()

    def _model_timeout(self, boundary: int) -> float:
        """tcp_model_timeout: the time ``boundary`` backed-off retransmissions take from an
        initial RTO of TCP_RTO_MIN."""
        rto_max = self.config.rto_max
        thresh = max(int(rto_max / TCP_RTO_MIN + 1e-9).bit_length() - 1, 0)
        if boundary <= thresh:
            return ((2 << boundary) - 1) * TCP_RTO_MIN
        return ((2 << thresh) - 1) * TCP_RTO_MIN + (boundary - thresh) * rto_max

    def _retransmits_timed_out(self, boundary: int, now: float) -> bool:
        if not self._retransmits:
            return False
        start = self._retrans_stamp if self._retrans_stamp is not None else now
        return now - start - self._model_timeout(boundary) >= -1e-9

    def _orphan_retries(self, alive: bool) -> int:
        retries = self.config.orphan_retries
        if self._soft_error is not None and not alive:
            retries = 0
        if retries == 0 and alive:
            retries = 8
        return retries

    def _write_timeout(self, now: float) -> bool:
        """tcp_write_timeout: has this connection retransmitted long enough?  Aborts it."""
        cfg = self.config
        if self.state in _SYN_STATES:
            retry_until = cfg.syn_retries
            if self.state is _S.SYN_SENT:
                retry_until += cfg.syn_linear_timeouts
            expired = self._retransmits >= retry_until
        else:
            retry_until = cfg.retries2
            if self._orphan:
                alive = self._rto < cfg.rto_max
                retry_until = self._orphan_retries(alive)
            expired = self._retransmits_timed_out(retry_until, now)
        if expired:
            self._write_err()
            return True
        return False

    def _write_err(self) -> None:
        """tcp_write_err: give up with the soft error seen, or ETIMEDOUT."""
        self.error = self._soft_error if self._soft_error is not None else errno.ETIMEDOUT
        self._done()
        self._count("TcpExtTCPAbortOnTimeout")

    def _retransmit_timer(self, now: float) -> None:
        """tcp_retransmit_timer."""
        if not self._packets_out() or self.state is _S.CLOSED:
            return
        self._tlp_high_seq = None
        cfg = self.config
        if self.snd_wnd == 0 and not self._orphan and self.state not in _SYN_STATES:
            # The receiver shrank its window: our retransmissions are window probes.
            if now - self._rcv_tstamp > cfg.rto_max:
                self._write_err()
                return
            self._enter_loss(now)
            self._retransmit_head(now)
        else:
            self._count("TcpExtTCPTimeouts")
            if self._write_timeout(now):
                return
            if self._retransmits == 0:
                if self._ca_state == CaState.RECOVERY:
                    self._count(
                        "TcpExtTCPSackRecoveryFail" if self.sack_ok else "TcpExtTCPRenoRecoveryFail"
                    )
                elif self._ca_state == CaState.LOSS:
                    self._count("TcpExtTCPLossFailures")
                elif self._ca_state == CaState.DISORDER or self._sb.sacked_bytes:
                    self._count(
                        "TcpExtTCPSackFailures" if self.sack_ok else "TcpExtTCPRenoFailures"
                    )
            self._enter_loss(now)
            self._retransmits += 1
            self._total_rto += 1
            if not self._retransmit_head(now):
                # Local congestion: try again soon, without backing off.
                self._arm_rexmit(now, TCP_RESOURCE_PROBE_INTERVAL, _T_RTO)
                return
        if self.state is not _S.SYN_SENT or self._total_rto > cfg.syn_linear_timeouts:
            self._backoff += 1
            self._rto = min(self._rto * 2, cfg.rto_max)
        self._arm_rexmit(now, self._rto, _T_RTO)

    def _retransmit_head(self, now: float) -> bool:
        nxt = self._sb.next_seg(self.snd_nxt, rule3=False)
        if nxt is None:
            length = min(self.mss_cache, max(1, _diff(self.snd_nxt, self.snd_una)))
            nxt = (self.snd_una, length)
        return self._retransmit(nxt[0], nxt[1], now)

    @property
    def young(self) -> bool:
        """A request sock whose SYN-ACK has not yet timed out (the accept queue's "young")."""
        return self._num_timeout == 0

    def _synack_timer(self, now: float) -> None:
        """reqsk_timer_handler: retransmit the SYN-ACK, or drop the request."""
        if self.state is not _S.SYN_RECEIVED or not self._request:
            return
        self._count("TcpExtTCPTimeouts")
        retries = self.config.synack_retries
        if self.synack_retries_now is not None:
            retries = self.synack_retries_now(retries)
        if self._num_timeout >= retries:
            self.error = errno.ETIMEDOUT
            self._set_state(_S.CLOSED)
            self._clear_timers()
            return
        self._retransmit_synack(now)
        self._num_timeout += 1
        self._arm_rexmit(now, self.config.rto_initial * (1 << self._num_timeout), _T_SYNACK)

    def _probe_timer(self, now: float) -> None:
        """tcp_probe_timer: the zero-window probe timer."""
        if self._packets_out() or not self._has_unsent() or self.state is _S.CLOSED:
            self._probes_out = 0
            return
        cfg = self.config
        max_probes = cfg.retries2
        if self._orphan:
            alive = self._probe0_when() < cfg.rto_max
            max_probes = self._orphan_retries(alive)
            if not alive and self._backoff >= max_probes:
                self._write_err()
                return
        if self._probes_out >= max_probes:
            self._write_err()
            return
        self._send_probe0(now)

    def _send_probe0(self, now: float) -> None:
        ok = self._write_wakeup(now, "TcpExtTCPWinProbe")
        if self._packets_out() or not self._has_unsent():
            self._probes_out = 0
            self._backoff = 0
            return
        self._probes_out += 1
        if ok:
            if self._backoff < self.config.retries2:
                self._backoff += 1
            when = self._probe0_when()
        else:
            when = TCP_RESOURCE_PROBE_INTERVAL
        self._arm_rexmit(now, when, _T_PROBE0)

    def _write_wakeup(self, now: float, counter: str) -> bool:
        """tcp_write_wakeup: send what the window allows, else a probe (snd_una - 1)."""
        if self.state is _S.CLOSED:
            return False
        wnd_end = (self.snd_una + self.snd_wnd) & MASK
        unsent = self._unsent()
        if (unsent or self._fin_pending()) and _before(self.snd_nxt, wnd_end):
            mss = self._current_mss()
            seg = _diff(wnd_end, self.snd_nxt)
            length = min(seg, mss, unsent)
            fin = self._fin_pending() and length == unsent and length < seg
            self._push_marks.appendleft((self.snd_nxt + length) & MASK)
            return self._transmit_new(self.snd_nxt, length, fin, now)
        self._count(counter)
        self._send_segment((self.snd_una - 1) & MASK, ACK, b"", now)
        return True

    def _delack_timer(self, now: float) -> None:
        """tcp_delack_timer_handler."""
        if self.state in (_S.CLOSED, _S.LISTEN):
            return
        if self._ack_sched:
            if self._pingpong < TCP_PINGPONG_THRESH:
                self._ato = min(self._ato * 2, self._rto)
            else:
                self._pingpong = 0
                self._ato = self.config.delack_min
            self._send_ack(now)
            self._count("TcpExtDelayedACKs")

    def _keepalive_timer(self, now: float) -> None:
        """tcp_keepalive_timer."""
        cfg = self.config
        if not cfg.keepalive or self.state in (_S.CLOSED, _S.SYN_SENT, _S.TIME_WAIT):
            return
        if self._tw_finwait2:
            return
        when = cfg.keepalive_time
        if not (self._packets_out() or self._has_unsent()):
            elapsed = min(now - self._lrcvtime, now - self._rcv_tstamp)
            if elapsed >= cfg.keepalive_time - 1e-9:
                if self._probes_out >= cfg.keepalive_probes:
                    self._send_active_reset(now)
                    self._write_err()
                    return
                if self._write_wakeup(now, "TcpExtTCPKeepAlive"):
                    self._probes_out += 1
                    when = cfg.keepalive_intvl
                else:
                    when = TCP_RESOURCE_PROBE_INTERVAL
            else:
                when = cfg.keepalive_time - elapsed
        self._t_keepalive = now + when

    # ============================================================================ delayed ACK

    def _incr_quickack(self, max_quickacks: int) -> None:
        quickacks = self.rcv_wnd // (2 * self.rcv_mss)
        if quickacks == 0:
            quickacks = 2
        quickacks = min(quickacks, max_quickacks)
        if quickacks > self._quick:
            self._quick = quickacks

    def _enter_quickack_mode(self, max_quickacks: int) -> None:
        self._incr_quickack(max_quickacks)
        self._pingpong = 0
        self._ato = self.config.delack_min

    def _in_quickack_mode(self) -> bool:
        return self._quick > 0 and self._pingpong < TCP_PINGPONG_THRESH

    def _event_ack_sent(self) -> None:
        """tcp_event_ack_sent: one quick ACK used up; the delayed-ACK timer is cancelled."""
        if self._quick:
            pkts = 1 if self._ack_sched else 0
            if pkts >= self._quick:
                self._quick = 0
                self._ato = self.config.delack_min
            else:
                self._quick -= pkts
        self._ack_sched = self._ack_now = self._ack_pushed = self._ack_pushed2 = False
        self._t_delack = None

    def _send_delayed_ack(self, now: float) -> None:
        """tcp_send_delayed_ack: arm the delayed-ACK timer within [delack_min, delack_max]."""
        cfg = self.config
        ato = self._ato
        if ato > cfg.delack_min:
            max_ato = 0.5
            if self._pingpong >= TCP_PINGPONG_THRESH or self._ack_pushed:
                max_ato = cfg.delack_max
            srtt = self._rtt.srtt
            if srtt is not None:
                rtt = max(srtt, cfg.delack_min)
                if rtt < max_ato:
                    max_ato = rtt
            ato = min(ato, max_ato)
        ato = min(ato, cfg.delack_max)
        timeout = now + ato
        if self._t_delack is not None:
            if self._t_delack <= now + ato / 4:
                self._send_ack(now)
                return
            if not timeout < self._t_delack:
                timeout = self._t_delack
        self._ack_sched = True
        self._t_delack = timeout

    def _ack_snd_check(self, now: float) -> None:
        """tcp_ack_snd_check / __tcp_ack_snd_check."""
        if not self._ack_sched:
            return
        if (
            (
                _diff(self.rcv_nxt, self.rcv_wup) > self.rcv_mss
                and (not self._rq or self._raw_select_window() >= self.rcv_wnd)
            )
            or self._in_quickack_mode()
            or self._ack_now
        ):
            self._send_ack(now)
            return
        if not len(self._ofo) and self._ofo_fin is None:
            self._send_delayed_ack(now)
            return
        # Out-of-order data: ACK at once (Linux compresses SACKs after three; not modelled).
        self._send_ack(now)

    def schedule_ack(self, now: float, delay: float) -> None:
        """Arm the delayed-ACK timer (the prequeue's first segment does, tcp_prequeue)."""
        if not self._ack_sched and self.state is not _S.CLOSED:
            self._t_delack = now + delay

    def _measure_rcv_mss(self, length: int, flags: int) -> None:
        """tcp_measure_rcv_mss: learn the peer's segment size; note pushed small segments."""
        lss = self._last_seg_size
        self._last_seg_size = 0
        if length >= self.rcv_mss:
            self.rcv_mss = min(length, self.advmss)
            if flags & PSH:
                self._ack_pushed = True
        else:
            hlen = length + self._tcp_header_len
            if hlen >= TCP_MSS_DEFAULT + 20 or (
                hlen >= TCP_MIN_MSS + 20 and not flags & (FIN | SYN | PSH)
            ):
                seglen = hlen - self._tcp_header_len
                self._last_seg_size = seglen
                if seglen == lss:
                    self.rcv_mss = seglen
                    return
            if self._ack_pushed:
                self._ack_pushed2 = True
            self._ack_pushed = True

    def _event_data_recv(self, length: int, flags: int, now: float) -> None:
        """tcp_event_data_recv: delayed-ACK engine (ato adaptation), receive RTT, window."""
        self._ack_sched = True
        self._measure_rcv_mss(length, flags)
        self._rcv_rtt_measure(now)
        cfg = self.config
        ato_min = cfg.delack_min
        if not self._ato:
            self._incr_quickack(TCP_MAX_QUICKACKS)
            self._ato = ato_min
        else:
            m = now - self._lrcvtime
            if m <= ato_min / 2:
                self._ato = self._ato / 2 + ato_min / 2
            elif m < self._ato:
                self._ato = self._ato / 2 + m
                if self._ato > self._rto:
                    self._ato = self._rto
            elif m > self._rto:
                self._incr_quickack(TCP_MAX_QUICKACKS)
        self._lrcvtime = now
        if length >= 128:
            self._grow_window(length)

    def _grow_window(self, length: int) -> None:
        """tcp_grow_window: raise rcv_ssthresh while the buffer has room (and ACK quickly)."""
        room = min(self.window_clamp, self._space()) - self.rcv_ssthresh
        if room <= 0:
            return
        incr = max(2 * self.advmss, 2 * length)
        self.rcv_ssthresh += min(room, incr)
        self._quick |= 1

    def _rcv_rtt_update(self, sample: float, win_dep: bool) -> None:
        old = self._rcv_rtt
        m = sample * 8
        if old == 0 or m < old:
            new = m
        else:
            if win_dep:
                return
            if self._rq:
                return
            new = old - old / 8 + sample
        self._rcv_rtt = new

    def _rcv_rtt_measure(self, now: float) -> None:
        """tcp_rcv_rtt_measure: one window of data per RTT (receiver side, no timestamps)."""
        if self._rcv_rtt_time is not None:
            if _before(self.rcv_nxt, self._rcv_rtt_seq):
                return
            self._rcv_rtt_update(max(now - self._rcv_rtt_time, 1e-6), True)
        self._rcv_rtt_seq = (self.rcv_nxt + self.rcv_wnd) & MASK
        self._rcv_rtt_time = now

    def _rcv_rtt_measure_ts(self, tsecr: int | None, seg_len: int, now: float) -> None:
        """tcp_rcv_rtt_measure_ts: the receiver's RTT from echoed timestamps."""
        if not tsecr or tsecr == self._rcv_rtt_last_tsecr:
            return
        self._rcv_rtt_last_tsecr = tsecr
        if seg_len >= self.rcv_mss:
            delta = (self._ts_now(now) - tsecr) & MASK
            if delta < _HALF:
                self._rcv_rtt_update(max(delta, 1) / 1000.0, False)

    def _rcv_space_adjust(self, now: float) -> None:
        """tcp_rcv_space_adjust: receive-buffer autotuning, once per receiver RTT."""
        if self._rcvq_time is None:
            self._rcvq_seq = self._copied_seq()
            self._rcvq_time = now
            return
        rtt = self._rcv_rtt / 8
        if rtt == 0 or now - self._rcvq_time < rtt:
            return
        copied = _diff(self._copied_seq(), self._rcvq_seq)
        if copied > self._rcvq_space:
            if self.config.moderate_rcvbuf and not self._rcvbuf_locked:
                space = max(self._rcvq_space, 1)
                rcvwin = (copied << 1) + 16 * self.advmss
                grow = rcvwin * (copied - space) // space
                rcvwin += grow << 1
                rcvbuf = min(rcvwin * 2, self.config.rmem[2])
                if rcvbuf > self.rcvbuf:
                    self.rcvbuf = rcvbuf
                    self.window_clamp = _win_from_space(rcvbuf)
            self._rcvq_space = copied
        self._rcvq_seq = self._copied_seq()
        self._rcvq_time = now

    def _copied_seq(self) -> int:
        return (self.rcv_nxt - len(self._rq) - (1 if self._fin_rcvd else 0)) & MASK

    def _cleanup_rbuf(self, copied: int, now: float) -> None:
        """tcp_cleanup_rbuf: after a read, ACK if owed or if the window grew a lot."""
        if self.state in (_S.CLOSED, _S.SYN_SENT, _S.TIME_WAIT) or self._request:
            return
        time_to_ack = False
        if self._ack_sched:
            if _diff(self.rcv_nxt, self.rcv_wup) > self.rcv_mss or (
                copied > 0
                and (self._ack_pushed2 or (self._ack_pushed and self._pingpong < 1))
                and not self._queued_rcv()
            ):
                time_to_ack = True
        if copied > 0 and not time_to_ack and not self._rcv_shutdown:
            rcv_window_now = self._receive_window()
            if 2 * rcv_window_now <= self.window_clamp:
                new_window = self._raw_select_window()
                if new_window and new_window >= 2 * rcv_window_now:
                    time_to_ack = True
        if time_to_ack:
            self._send_ack(now)

    # ============================================================================ opening

    def _init_send_side(self, now: float) -> None:
        """Scoreboard for the SYN, MSS from the route (tcp_connect_init)."""
        self._sb = Scoreboard(self.mss_cache, snd_una=self.iss)
        self.write_seq = (self.iss + 1) & MASK
        self._sbuf_seq = self.write_seq
        self._snd_sml = self.iss
        self._cwnd_usage_seq = self.iss

    def open_active(self, now: float) -> None:
        """connect(): CLOSED -> SYN-SENT, the SYN goes out (tcp_connect)."""
        if self.state is not _S.CLOSED:
            raise ValueError(f"open_active in {self.state}")
        cfg = self.config
        self._set_state(_S.SYN_SENT)
        self._count("TcpActiveOpens")
        self.wscale_ok = cfg.window_scaling
        self._tcp_header_len = 20
        self._sync_mss(self._pmtu)
        self._init_send_side(now)
        self._select_initial_window(self.advmss)
        self._rto = cfg.rto_initial
        self._retrans_stamp = now
        self._send_syn(now, retransmit=False)
        self._sb.on_sent(self.iss, 1, now)
        self.snd_nxt = (self.iss + 1) & MASK
        self._lsndtime = now
        self._arm_rexmit(now, self._rto, _T_RTO)

    def open_listen(self, now: float) -> None:
        """A passive OPEN: CLOSED -> LISTEN.  (emunet's listeners live in the TCP layer, which
        calls open_passive on a fresh Connection per SYN; this gives the RFC's LISTEN state to a
        single Connection: a SYN opens it, a RST in SYN-RECEIVED returns it to LISTEN.)"""
        if self.state is not _S.CLOSED:
            raise ValueError(f"open_listen in {self.state}")
        self._set_state(_S.LISTEN)
        self._listen_origin = True

    def _rcv_listen(self, tcp: Tcp, payload: bytes, now: float) -> None:
        """RFC 9293 3.10.7.2 (tcp_rcv_state_process, TCP_LISTEN)."""
        flags = tcp.flags
        if flags & RST:
            return
        if flags & ACK:
            self._send_reset_for(tcp, len(payload))
            return
        if flags & SYN:
            self.open_passive(tcp, now)

    def open_passive(self, syn: Tcp, now: float) -> None:
        """A listener's SYN: -> SYN-RECEIVED as a request sock, the SYN-ACK goes out
        (tcp_conn_request, tcp_openreq_init_rwin, tcp_make_synack)."""
        if self.state is not _S.CLOSED and self.state is not _S.LISTEN:
            raise ValueError(f"open_passive in {self.state}")
        self._num_timeout = 0
        self.snd_una = self.iss
        self._set_state(_S.SYN_RECEIVED)
        self._request = True
        self.irs = syn.seq
        self.rcv_nxt = (syn.seq + 1) & MASK
        self.rcv_wup = self.rcv_nxt
        tsval, _ = self._parse_syn_options(syn)
        if tsval is not None:
            self.ts_recent = tsval
            self._ts_recent_stamp = now
        self.snd_wnd = syn.window
        self.snd_wl1 = syn.seq
        self.max_window = self.snd_wnd
        self._sync_mss(self._pmtu)
        self._init_send_side(now)
        self._select_initial_window(self.advmss - (TCPOLEN_TSTAMP_ALIGNED if self.tstamp_ok else 0))
        self._rto = self.config.rto_initial
        self._send_synack(now)
        self._count("TcpOutSegs")
        self._sb.on_sent(self.iss, 1, now)
        self.snd_nxt = (self.iss + 1) & MASK
        self._lrcvtime = now
        self._arm_rexmit(now, self.config.rto_initial, _T_SYNACK)

    def open_cookie(
        self,
        ack: Tcp,
        payload: bytes,
        *,
        isn: int,
        peer_isn: int,
        mss: int,
        wscale: int | None,
        sack: bool,
        timestamps: bool,
        now: float,
    ) -> None:
        """A valid SYN-cookie ACK: the connection the cookie encoded, straight to ESTABLISHED
        (cookie_v4_check, then the segment is processed as by the new child socket)."""
        if self.state is not _S.CLOSED:
            raise ValueError(f"open_cookie in {self.state}")
        cfg = self.config
        self.iss = isn & MASK
        self.irs = peer_isn & MASK
        self.rcv_nxt = (self.irs + 1) & MASK
        self.rcv_wup = self.rcv_nxt
        self.mss_clamp = mss
        self.wscale_ok = wscale is not None and cfg.window_scaling
        self.snd_wscale = min(wscale or 0, TCP_MAX_WSCALE) if self.wscale_ok else 0
        self.sack_ok = sack and cfg.sack
        self.tstamp_ok = timestamps and cfg.timestamps
        self._tcp_header_len = 20 + (TCPOLEN_TSTAMP_ALIGNED if self.tstamp_ok else 0)
        if self.tstamp_ok:
            ts = ack.find_option(Timestamps)
            if ts is not None:
                self.ts_recent = ts.tsval
                self._ts_recent_stamp = now
        self.snd_wl1 = self.irs
        self._sync_mss(self._pmtu)
        self._init_send_side(now)
        self._select_initial_window(self.advmss - (TCPOLEN_TSTAMP_ALIGNED if self.tstamp_ok else 0))
        # The child of a cookie: its SYN-ACK is acknowledged by construction.
        self._set_state(_S.SYN_RECEIVED)
        self.snd_una = self.snd_nxt = (self.iss + 1) & MASK
        self._sb = Scoreboard(self.mss_cache, snd_una=self.snd_una)
        self._rto = cfg.rto_initial
        self._lrcvtime = now
        self._count("TcpPassiveOpens")
        self._rcv_state_process(ack, payload, now)

    def _become_established(self, now: float) -> None:
        """tcp_finish_connect / the SYN-RECEIVED arm of tcp_rcv_state_process:
        tcp_init_transfer (metrics, cwnd, congestion control, buffer space)."""
        if self.state in _SYN_STATES:
            self._set_state(_S.ESTABLISHED)
        self.established = True
        self._request = False
        self._retrans_stamp = None
        if self._rtt.srtt is None:
            # RFC 6298 (5.7): no RTT sample from the handshake: RTO 3 s (tcp_init_metrics)
            self._rtt.fallback(TCP_TIMEOUT_FALLBACK)
            self._rto = self._rtt.rto
        st = self._st
        st.cwnd = 1 if self.total_retrans > 1 else self.config.init_cwnd
        st.cwnd_cnt = 0
        self._cc.init(self._sync_cc(), now)
        self._init_buffer_space(now)
        self._lsndtime = now
        self._lrcvtime = now
        self._rcv_tstamp = now
        self._initialize_rcv_mss()
        if self.config.keepalive:
            self._t_keepalive = now + self.config.keepalive_time

    def _init_buffer_space(self, now: float) -> None:
        """tcp_init_buffer_space (tcp_app_win 31: reserve one segment)."""
        if not self._sndbuf_locked:
            self._sndbuf_expand()
        self._rcvq_time = now
        self._rcvq_seq = self._copied_seq()
        maxwin = self._full_space()
        if self.window_clamp >= maxwin:
            self.window_clamp = maxwin
        if self.window_clamp > 2 * self.advmss and self.window_clamp + self.advmss > maxwin:
            self.window_clamp = max(2 * self.advmss, maxwin - self.advmss)
        self.rcv_ssthresh = min(self.rcv_ssthresh, self.window_clamp)
        self._rcvq_space = min(self.rcv_ssthresh, self.rcv_wnd, self.config.init_cwnd * self.advmss)

    def _initialize_rcv_mss(self) -> None:
        """tcp_initialize_rcv_mss."""
        hint = min(self.advmss, self.mss_cache, self.rcv_wnd // 2, TCP_MSS_DEFAULT)
        self.rcv_mss = max(hint, TCP_MIN_MSS)

    def _sndbuf_expand(self) -> None:
        """tcp_sndbuf_expand: room for two windows of data (payload bytes here)."""
        per_mss = max(self.mss_clamp, self.mss_cache)
        nr_segs = max(self.config.init_cwnd, self._st.cwnd, self.reordering + 1)
        sndmem = 2 * nr_segs * per_mss
        if self.sndbuf < sndmem:
            self.sndbuf = max(self.sndbuf, min(sndmem, self.config.wmem[2]))

    # ============================================================================ input

    def process(self, tcp: Tcp, payload: bytes, now: float) -> None:
        """One received segment for this connection (checksum already verified)."""
        state = self.state
        self.segs_in += 1
        if payload:
            self.data_segs_in += 1
        if state is _S.CLOSED:
            return
        if state is _S.LISTEN:
            self._rcv_listen(tcp, payload, now)
        elif state is _S.SYN_SENT:
            self._rcv_synsent(tcp, payload, now)
        elif state is _S.TIME_WAIT:
            self._rcv_timewait(tcp, payload, now)
        elif self._tw_finwait2:
            self._rcv_tw_finwait2(tcp, payload, now)
        elif self._request:
            self._rcv_request(tcp, payload, now)
        else:
            self._rcv_state_process(tcp, payload, now)

    def _parse_opts(self, tcp: Tcp) -> tuple[Timestamps | None, Sack | None]:
        ts = sack = None
        for opt in tcp.options:
            t = type(opt)
            if t is Timestamps:
                if self.tstamp_ok and ts is None:
                    ts = opt
            elif t is Sack:
                if self.sack_ok and sack is None:
                    sack = opt
        return ts, sack  # type: ignore[return-value]

    def _paws_check(self, tsval: int, win: int, now: float) -> bool:
        """tcp_paws_check: True when the timestamp is acceptable."""
        if _diff(self.ts_recent, tsval) <= win:
            return True
        if self._ts_recent_stamp is not None and now - self._ts_recent_stamp >= 24 * 86400:
            return True
        return not self.ts_recent

    # ------------------------------------------------------------------ SYN-SENT

    def _rcv_synsent(self, tcp: Tcp, payload: bytes, now: float) -> None:
        """tcp_rcv_synsent_state_process (RFC 9293 3.10.7.3)."""
        flags = tcp.flags
        if flags & ACK:
            ack = tcp.ack
            if not _after(ack, self.snd_una) or _after(ack, self.snd_nxt):
                if self._retransmits == 0:
                    self._arm_rexmit(now, TCP_TIMEOUT_MIN, _T_RTO)
                self._send_reset_for(tcp, len(payload))
                return
            ts = None
            if self.config.timestamps:
                ts = tcp.find_option(Timestamps)
            if ts is not None and ts.tsecr:
                stamp = self._retrans_stamp
                start = self._ts_now(stamp if stamp is not None else now)
                if not _between(start, ts.tsecr, self._ts_now(now)):
                    self._count("TcpExtPAWSActive")
                    self._send_reset_for(tcp, len(payload))
                    return
            if flags & RST:
                self._reset()  # ECONNREFUSED
                return
            if not flags & SYN:
                return
            # Our SYN is acknowledged: SYN-SENT -> ESTABLISHED.
            self.irs = tcp.seq
            tsval, _tsecr = self._parse_syn_options(tcp)
            self.snd_wl1 = tcp.seq
            self.rcv_nxt = (tcp.seq + 1) & MASK
            self.rcv_wup = self.rcv_nxt
            if not self.wscale_ok:
                self.snd_wscale = self.rcv_wscale = 0
                self.window_clamp = min(self.window_clamp, 65535)
            self._ack_synack(tcp, ts, now)
            self.snd_wnd = tcp.window  # never scaled in a SYN
            self.max_window = max(self.max_window, self.snd_wnd)
            if tsval is not None:
                self.ts_recent = tsval
                self._ts_recent_stamp = now
                self.advmss -= TCPOLEN_TSTAMP_ALIGNED
            self._sync_mss(self._pmtu)
            self._become_established(now)
            self._send_ack(now)
            self._write_xmit(now)
            return
        if flags & RST:
            return
        if self.config.timestamps and self._ts_recent_stamp is not None:
            ts = tcp.find_option(Timestamps)
            if ts is not None and not self._paws_check(ts.tsval, 0, now):
                return
        if flags & SYN:
            # Crossed SYNs: simultaneous open (or a connection to ourselves).
            self._set_state(_S.SYN_RECEIVED)
            self.irs = tcp.seq
            tsval, _ = self._parse_syn_options(tcp)
            if tsval is not None:
                self.ts_recent = tsval
                self._ts_recent_stamp = now
            if not self.wscale_ok:
                self.snd_wscale = self.rcv_wscale = 0
                self.window_clamp = min(self.window_clamp, 65535)
            self.rcv_nxt = (tcp.seq + 1) & MASK
            self.rcv_wup = self.rcv_nxt
            self.snd_wnd = tcp.window
            self.snd_wl1 = tcp.seq
            self.max_window = self.snd_wnd
            self._sync_mss(self._pmtu)
            self._initialize_rcv_mss()
            self._send_syn(now, retransmit=True)

    def _ack_synack(self, tcp: Tcp, ts: Timestamps | None, now: float) -> None:
        """The part of tcp_ack that a SYN-ACK in SYN-SENT does: our SYN leaves the queue,
        with its RTT sample."""
        res = self._sb.on_ack(tcp.ack, now)
        self._snd_una_update(tcp.ack)
        self._retransmits = 0
        self._rearm_rto(now)
        rtt = res.rtt_sample if not res.retransmitted_acked else None
        if rtt is None and ts is not None and ts.tsecr:
            d = (self._ts_now(now) - ts.tsecr) & MASK
            if d < _HALF:
                rtt = max(d, 1) / 1000.0
        if rtt is not None:
            self._rtt_sample(rtt, now)
        self._rcv_tstamp = now

    def _snd_una_update(self, ack: int) -> None:
        delta = _diff(ack, self.snd_una)
        if delta > 0:
            self.bytes_acked += delta
            self.snd_una = ack & MASK
            data_end = self._data_end
            limit = ack if _before(ack, data_end) else data_end
            n = _diff(limit, self._sbuf_seq)
            if n > 0:
                del self._sbuf[:n]
                self._sbuf_seq = (self._sbuf_seq + n) & MASK

    def _rtt_sample(self, rtt: float, now: float) -> None:
        """tcp_ack_update_rtt's tail: a valid sample resets the backoff (RFC 6298)."""
        self._rtt.sample(rtt, now, snd_una=self.snd_una, snd_nxt=self.snd_nxt)
        self._rto = self._rtt.rto
        self._backoff = 0

    def _reset(self) -> None:
        """tcp_reset: the peer reset us; the errno as BSD and Linux report it."""
        if self.state is _S.SYN_SENT:
            self.error = errno.ECONNREFUSED
        elif self.state is _S.CLOSE_WAIT:
            self.error = errno.EPIPE
        elif self.state is _S.CLOSED:
            return
        else:
            self.error = errno.ECONNRESET
        self._done()

    # ------------------------------------------------------------------ request sock

    def _rcv_request(self, tcp: Tcp, payload: bytes, now: float) -> None:
        """tcp_check_req: a segment for a passive SYN-RECEIVED connection."""
        flg = tcp.flags & (RST | SYN | ACK)
        ts = tcp.find_option(Timestamps) if self.tstamp_ok else None
        paws_reject = False
        if ts is not None and self.ts_recent and not tcp.flags & RST:
            paws_reject = _diff(self.ts_recent, ts.tsval) > TCP_PAWS_WINDOW
        seq = tcp.seq
        end_seq = tcp.end_seq(len(payload))
        if seq == self.irs and flg == SYN and not paws_reject:
            # A retransmitted SYN: the SYN-ACK was lost, send it again.
            if not self._oow_rate_limited(now, "TcpExtTCPACKSkippedSynRecv"):
                if self._retransmit_synack(now):
                    delay = self.config.rto_initial * (1 << self._num_timeout)
                    self._arm_rexmit(now, delay, _T_SYNACK)
            return
        if flg & ACK and tcp.ack != ((self.iss + 1) & MASK):
            self._send_reset_for(tcp, len(payload))  # by the listener, in Linux
            return
        if paws_reject or not self._in_window(seq, end_seq, self.rcv_nxt, self.rcv_wnd):
            if not flg & RST and not self._oow_rate_limited(now, "TcpExtTCPACKSkippedSynRecv"):
                self._send_segment(self.snd_nxt, ACK, b"", now)
            if paws_reject:
                self._count("TcpExtPAWSEstab")
            return
        if ts is not None and not _after(seq, self.rcv_nxt):
            self.ts_recent = ts.tsval
            self._ts_recent_stamp = now
        if seq == self.irs:
            flg &= ~SYN
        if flg & (RST | SYN):
            self._count("TcpAttemptFails")
            if not flg & RST:
                self._send_reset_for(tcp, len(payload))
            self._count("TcpExtEmbryonicRsts")
            self._clear_timers()
            if self._listen_origin:
                self._request = False
                self._set_state(_S.LISTEN)  # RFC 9293: SYN-RECEIVED -> LISTEN on RST
            else:
                self._set_state(_S.CLOSED)
            return
        if not flg & ACK:
            return
        # The handshake completes: the full socket (tcp_create_openreq_child).
        self._request = False
        self._count("TcpPassiveOpens")
        res = self._sb.on_ack((self.iss + 1) & MASK, now)
        self._snd_una_update((self.iss + 1) & MASK)
        rtt = res.rtt_sample if not res.retransmitted_acked else None
        if rtt is None and ts is not None and ts.tsecr:
            d = (self._ts_now(now) - ts.tsecr) & MASK
            if d < _HALF:
                rtt = max(d, 1) / 1000.0
        if rtt is not None:
            self._rtt_sample(rtt, now)
        self._t_rexmit = None
        self._rexmit_kind = 0
        self._rcv_state_process(tcp, payload, now)

    @staticmethod
    def _in_window(seq: int, end_seq: int, s_win: int, wnd: int) -> bool:
        """tcp_in_window (tcp_minisocks.c)."""
        e_win = (s_win + wnd) & MASK
        if seq == s_win:
            return True
        if _after(end_seq, s_win) and _before(seq, e_win):
            return True
        return seq == e_win and seq == end_seq

    # ------------------------------------------------------------------ TIME-WAIT

    def _tw_ack(self, now: float) -> None:
        """tcp_v4_timewait_ack."""
        opts = ()
        if self.tstamp_ok:
            opts = (_NOP, _NOP, Timestamps(self._ts_now(now), self.ts_recent))
        win = min(self._receive_window(), 65535 << self.rcv_wscale) >> self.rcv_wscale
        header = Tcp(self.local[1], self.remote[1], self.snd_nxt, self.rcv_nxt, ACK, win, 0, opts)
        self._count("TcpOutSegs")
        self.segs_out += 1
        self._xmit(header, b"")

    def _tw_paws_reject(self, ts: Timestamps | None, rst: bool, now: float) -> bool:
        """tcp_paws_reject."""
        if ts is None or not self.tstamp_ok:
            return False
        if self._paws_check(ts.tsval, 0, now):
            return False
        if rst and (self._ts_recent_stamp is None or now - self._ts_recent_stamp >= TCP_PAWS_MSL):
            return False
        return True

    def _rcv_timewait(self, tcp: Tcp, payload: bytes, now: float) -> None:
        """tcp_timewait_state_process, substate TIME-WAIT."""
        flags = tcp.flags
        ts = tcp.find_option(Timestamps) if self.tstamp_ok else None
        paws_reject = self._tw_paws_reject(ts, bool(flags & RST), now)
        seq = tcp.seq
        end_seq = tcp.end_seq(len(payload))
        if not paws_reject and seq == self.rcv_nxt and (seq == end_seq or flags & RST):
            if flags & RST:
                # TIME-WAIT assassination (tcp_rfc1337 0): the timewait sock goes.
                self._set_state(_S.CLOSED)
                self._clear_timers()
                return
            self._t_tw = now + self.config.time_wait
            if ts is not None:
                self.ts_recent = ts.tsval
                self._ts_recent_stamp = now
            return
        if (
            flags & SYN
            and not flags & (RST | ACK)
            and not paws_reject
            and (
                _after(seq, self.rcv_nxt)
                or (ts is not None and _diff(self.ts_recent, ts.tsval) < 0)
            )
        ):
            # TCP_TW_SYN: a new incarnation may start; with no listener it is ACKed.
            self._tw_ack(now)
            return
        if paws_reject:
            self._count("TcpExtPAWSEstab")
        if not flags & RST:
            if paws_reject or flags & ACK:
                self._t_tw = now + self.config.time_wait
            if not self._tw_oow_limited(tcp, payload, now, "TcpExtTCPACKSkippedTimeWait"):
                self._tw_ack(now)

    def _tw_oow_limited(self, tcp: Tcp, payload: bytes, now: float, counter: str) -> bool:
        """tcp_timewait_check_oow_rate_limit: pure ACKs only are rate limited."""
        if payload or tcp.flags & (SYN | FIN):
            return False
        return self._oow_rate_limited(now, counter)

    def _rcv_tw_finwait2(self, tcp: Tcp, payload: bytes, now: float) -> None:
        """tcp_timewait_state_process, substate FIN-WAIT-2 (an orphan after close())."""
        flags = tcp.flags
        ts = tcp.find_option(Timestamps) if self.tstamp_ok else None
        paws_reject = self._tw_paws_reject(ts, bool(flags & RST), now)
        seq = tcp.seq
        end_seq = tcp.end_seq(len(payload))
        if paws_reject or not self._in_window(seq, end_seq, self.rcv_nxt, self._receive_window()):
            if not self._tw_oow_limited(tcp, payload, now, "TcpExtTCPACKSkippedFinWait2"):
                self._tw_ack(now)
            return
        if flags & RST:
            self._set_state(_S.CLOSED)
            self._clear_timers()
            return
        if flags & SYN and not _before(seq, self.rcv_nxt):
            self._send_reset_for(tcp, len(payload))
            self._set_state(_S.CLOSED)
            self._clear_timers()
            return
        if not flags & ACK or not _after(end_seq, self.rcv_nxt) or end_seq == seq:
            return
        if not flags & FIN or end_seq != ((self.rcv_nxt + 1) & MASK):
            # New data after the half-duplex close: reset (TCP_TW_RST).
            self._send_reset_for(tcp, len(payload))
            self._set_state(_S.CLOSED)
            self._clear_timers()
            return
        # FIN: enter the real TIME-WAIT.
        self._tw_finwait2 = False
        self.rcv_nxt = end_seq
        self._fin_rcvd = True
        if ts is not None:
            self.ts_recent = ts.tsval
            self._ts_recent_stamp = now
        self._set_state(_S.TIME_WAIT)
        self._t_tw = now + self.config.time_wait
        self._tw_ack(now)

    def _time_wait(self, now: float) -> None:
        """tcp_time_wait(TCP_TIME_WAIT): only the timewait sock remains, for 2MSL."""
        self._set_state(_S.TIME_WAIT)
        self._clear_timers()
        self._tw_finwait2 = False
        self._t_tw = now + self.config.time_wait

    def _fin_time(self) -> float:
        """tcp_fin_time: at least 3.5 RTO."""
        rto = self._rto
        return max(self.config.fin_timeout, 4 * rto - rto / 2)

    def _enter_tw_finwait2(self, now: float) -> None:
        """tcp_time_wait(TCP_FIN_WAIT2, tmo): an orphan waits for the peer's FIN a while."""
        timeo = self._fin_time()
        self._clear_timers()
        self._tw_finwait2 = True
        self._t_tw = now + timeo

    # ------------------------------------------------------------------ synchronized states

    def _validate_incoming(
        self, tcp: Tcp, seq: int, end_seq: int, ts: Timestamps | None, now: float
    ) -> bool:
        """tcp_validate_incoming: PAWS, sequence check, RST (RFC 5961 3.2), SYN (4.2)."""
        flags = tcp.flags
        state = self.state
        if (
            ts is not None
            and self.ts_recent
            and not self._paws_check(ts.tsval, TCP_PAWS_WINDOW, now)
        ):
            if not self._disordered_ack(tcp, seq, end_seq, ts):
                if not flags & RST:
                    if flags & SYN:
                        self._syn_challenge(now)
                        return False
                    self._count("TcpExtPAWSEstab")
                    if not self._oow_limited(tcp, seq, end_seq, now, "TcpExtTCPACKSkippedPAWS"):
                        self._send_dupack(seq, end_seq, now)
                    return False
        # Step 1: the sequence number (tcp_sequence).
        if _before(end_seq, self.rcv_wup) or _after(
            seq, (self.rcv_nxt + self._receive_window()) & MASK
        ):
            if not flags & RST:
                if flags & SYN:
                    self._syn_challenge(now)
                    return False
                if not self._oow_limited(tcp, seq, end_seq, now, "TcpExtTCPACKSkippedSeq"):
                    self._send_dupack(seq, end_seq, now)
            elif self._reset_check(seq):
                self._reset()
            return False
        # Step 2: RST.
        if flags & RST:
            if seq == self.rcv_nxt or self._reset_check(seq):
                self._reset()
                return False
            if self.sack_ok and len(self._ofo):
                blocks = self._ofo.sack_blocks(self.rcv_nxt, 4)
                if blocks and seq == max(
                    (b[1] for b in blocks), key=lambda e: _diff(e, self.rcv_nxt)
                ):
                    self._reset()
                    return False
            self._send_challenge_ack(now)
            return False
        # Step 4: SYN in a synchronized state.
        if flags & SYN:
            if (
                state is _S.SYN_RECEIVED
                and flags & ACK
                and (seq + 1) & MASK == end_seq
                and (seq + 1) & MASK == self.rcv_nxt
                and tcp.ack == self.snd_nxt
            ):
                return True  # the SYN-ACK of a simultaneous open
            self._syn_challenge(now)
            return False
        return True

    def _syn_challenge(self, now: float) -> None:
        if self.state is _S.ESTABLISHED:
            self._count("TcpInErrs")
        self._count("TcpExtTCPSYNChallenge")
        self._send_challenge_ack(now)

    def _oow_limited(self, tcp: Tcp, seq: int, end_seq: int, now: float, counter: str) -> bool:
        """tcp_oow_rate_limited: data segments are never rate limited."""
        if seq != end_seq and not tcp.flags & SYN:
            return False
        return self._oow_rate_limited(now, counter)

    def _reset_check(self, seq: int) -> bool:
        """tcp_reset_check: RCV.NXT - 1 resets too after the peer's FIN was received."""
        return seq == ((self.rcv_nxt - 1) & MASK) and self.state in (
            _S.CLOSE_WAIT,
            _S.LAST_ACK,
            _S.CLOSING,
        )

    def _disordered_ack(self, tcp: Tcp, seq: int, end_seq: int, ts: Timestamps) -> bool:
        """tcp_disordered_ack: a pure duplicate ACK that PAWS may let through."""
        if not (tcp.flags & ACK and seq == end_seq and seq == self.rcv_nxt):
            return False
        if tcp.ack != self.snd_una:
            return False
        nwin = tcp.window << self.snd_wscale
        if self._may_update_window(tcp.ack, seq, nwin):
            return False
        return _diff(self.ts_recent, ts.tsval) <= self._rto * 1024

    def _may_update_window(self, ack: int, ack_seq: int, nwin: int) -> bool:
        return (
            _after(ack, self.snd_una)
            or _after(ack_seq, self.snd_wl1)
            or (ack_seq == self.snd_wl1 and (nwin > self.snd_wnd or not nwin))
        )

    def _rcv_state_process(self, tcp: Tcp, payload: bytes, now: float) -> None:
        """tcp_rcv_established / tcp_rcv_state_process for every synchronized state."""
        flags = tcp.flags
        if not flags & (ACK | RST | SYN):
            return
        seq = tcp.seq
        end_seq = tcp.end_seq(len(payload))
        ts, sack = self._parse_opts(tcp)
        if not self._validate_incoming(tcp, seq, end_seq, ts, now):
            return
        state = self.state
        # Step 5: the ACK field.
        reason = self._ack(tcp, seq, end_seq, ts, sack, now, challenge=state is _S.ESTABLISHED)
        if reason <= 0:
            if state is _S.SYN_RECEIVED:
                self._send_reset_for(tcp, len(payload))
                return
            if reason < 0:
                if state is not _S.ESTABLISHED:
                    self._send_challenge_ack(now)
                return
        if self.state is _S.CLOSED:
            return
        if not self.established and state in (_S.SYN_RECEIVED, _S.FIN_WAIT_1):
            # SYN-RECEIVED -> ESTABLISHED (or, closed meanwhile, on in FIN-WAIT-1)
            if not _after(self.snd_una, self.iss):
                self._send_reset_for(tcp, len(payload))
                return
            self._become_established(now)
            self.snd_wnd = tcp.window << self.snd_wscale
            self.snd_wl1 = seq
            self.max_window = max(self.max_window, self.snd_wnd)
            if self.tstamp_ok:
                self.advmss -= TCPOLEN_TSTAMP_ALIGNED
                self._initialize_rcv_mss()
            self._sync_mss(self._pmtu)
            state = self.state
        if state is _S.FIN_WAIT_1:
            if self.snd_una == self.write_seq and self._fin_queued:
                self._set_state(_S.FIN_WAIT_2)
                if self._orphan:
                    if end_seq != seq and _after(
                        (end_seq - (1 if flags & FIN else 0)) & MASK, self.rcv_nxt
                    ):
                        self._count("TcpExtTCPAbortOnData")
                        self._send_reset_for(tcp, len(payload))
                        self._done()
                        return
                    if not flags & FIN:
                        self._enter_tw_finwait2(now)
                        return
        elif state is _S.CLOSING:
            if self.snd_una == self.write_seq and self._fin_queued:
                self._time_wait(now)
                return
        elif state is _S.LAST_ACK:
            if self.snd_una == self.write_seq and self._fin_queued:
                self._done()
                return
        # Step 7: the segment text (and FIN, step 8).
        state = self.state
        if ts is not None:
            self._rcv_rtt_measure_ts(ts.tsecr, len(payload), now)
        queue = True
        if state in (_S.CLOSE_WAIT, _S.CLOSING, _S.LAST_ACK) and not _before(seq, self.rcv_nxt):
            queue = False
        elif state in (_S.CLOSE_WAIT, _S.CLOSING, _S.LAST_ACK, _S.FIN_WAIT_1, _S.FIN_WAIT_2):
            if (
                self._rcv_shutdown
                and end_seq != seq
                and _after((end_seq - (1 if flags & FIN else 0)) & MASK, self.rcv_nxt)
            ):
                self._count("TcpExtTCPAbortOnData")
                self._send_reset_for(tcp, len(payload))
                self._reset()
                return
        if queue:
            self._data_queue(tcp, payload, seq, end_seq, now)
        if self.state is not _S.CLOSED and self.state is not _S.TIME_WAIT:
            self._data_snd_check(now)
            self._ack_snd_check(now)

    # ------------------------------------------------------------------ the ACK field

    def _ack(
        self,
        tcp: Tcp,
        seq: int,
        end_seq: int,
        ts: Timestamps | None,
        sack: Sack | None,
        now: float,
        *,
        challenge: bool,
    ) -> int:
        """tcp_ack: > 0 accepted, 0 an old (duplicate) ACK, < 0 invalid."""
        ack = tcp.ack
        prior_snd_una = self.snd_una
        sb = self._sb
        if _before(ack, prior_snd_una):
            max_window = min(self.max_window, self.bytes_acked)
            if _before(ack, (prior_snd_una - max_window) & MASK):
                # RFC 5961 5.2: blind data injection
                if challenge:
                    self._send_challenge_ack(now)
                return -1
            if sack is not None:
                flag = self._sacktag(sack, ack, now)
                rexmit = self._fastretrans_alert(prior_snd_una, 0, flag, now)
                if rexmit:
                    self._xmit_retransmit_queue(now)
            return 0
        if _after(ack, self.snd_nxt):
            return -2
        flag = 0
        if _after(ack, prior_snd_una):
            flag |= FLAG_SND_UNA_ADVANCED
            self._retransmits = 0
        # ts_recent (tcp_replace_ts_recent): only for in-window segments
        if ts is not None and not _after(seq, self.rcv_wup):
            if self._paws_check(ts.tsval, 0, now):
                self.ts_recent = ts.tsval
                self._ts_recent_stamp = now
        if seq != end_seq:
            flag |= FLAG_DATA
        else:
            self._count("TcpExtTCPPureAcks")
        flag |= self._ack_update_window(tcp, ack, seq, now)
        prior_packets = _diff(self.snd_nxt, prior_snd_una) > 0
        delivered_bytes = 0
        newly_lost = 0
        if sack is not None:
            flag |= self._sacktag(sack, ack, now)
            delivered_bytes += self._last_sacked_bytes
            newly_lost = self._last_newly_lost
        self._soft_error = None
        self._probes_out = 0
        self._rcv_tstamp = now
        if not prior_packets:
            self._ack_probe(now)
            if flag & FLAG_DSACKING_ACK:
                self._fastretrans_alert(prior_snd_una, 0, flag, now)
            if self._tlp_high_seq is not None:
                self._process_tlp_ack(ack, flag, now)
            return 1
        # tcp_clean_rtx_queue
        res = sb.on_ack(ack, now)
        acked_segs = 0
        if res.acked_bytes:
            acked_segs = max(res.acked_segments, 1)
            if _after(ack, self.iss) and prior_snd_una == self.iss:
                flag |= FLAG_SYN_ACKED
            if _after(ack, (self.iss + 1) & MASK):
                flag |= FLAG_DATA_ACKED
            if res.retransmitted_acked:
                flag |= FLAG_RETRANS_DATA_ACKED
            delivered_bytes += res.acked_bytes - res.previously_sacked_bytes
        rtt = None
        if res.rtt_sample is not None and not res.retransmitted_acked:
            rtt = res.rtt_sample
        if rtt is None and ts is not None and ts.tsecr and flag & FLAG_ACKED:
            d = (self._ts_now(now) - ts.tsecr) & MASK
            if d < _HALF:
                rtt = max(d, 1) / 1000.0
        if rtt is not None:
            self._rtt_sample(rtt, now)
        if self._reno_sacked and flag & FLAG_SND_UNA_ADVANCED and not self.sack_ok:
            # tcp_remove_reno_sacks: the dupACKed segments were among those acked
            self._reno_sacked = max(0, self._reno_sacked - max(acked_segs - 1, 0))
        self._snd_una_update(ack)
        if acked_segs or rtt is not None:
            self._cc.pkts_acked(self._sync_cc(), acked_segs, rtt, now)
        # duplicate-ACK and loss handling
        num_dupack = 0
        if self._ack_is_dubious(flag):
            if not flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP | FLAG_DSACKING_ACK):
                num_dupack = 1
            rexmit = self._fastretrans_alert(prior_snd_una, num_dupack, flag, now)
        else:
            rexmit = False
            if self._ca_state == CaState.OPEN:
                self._retrans_stamp = None
        if self._tlp_high_seq is not None:
            self._process_tlp_ack(ack, flag, now)
        if flag & FLAG_ACKED:
            # tcp_set_xmit_timer: a loss probe if it applies, else the RTO
            if not self._schedule_loss_probe(now, advancing_rto=True):
                self._rearm_rto(now)
            if not self._packets_out() and self._has_unsent():
                self._ack_probe(now)
        if not self.sack_ok and num_dupack:
            delivered_bytes += num_dupack * self.mss_cache
        delivered = -(-delivered_bytes // self.mss_cache) if delivered_bytes > 0 else 0
        self.delivered += delivered
        if delivered:
            self._count("TcpExtTCPDelivered", delivered)
        # tcp_cong_control
        if self._ca_state in (CaState.CWR, CaState.RECOVERY):
            self._cwnd_reduction(delivered, newly_lost, flag)
        elif flag & FLAG_DATA_ACKED and delivered:
            self._cc.cong_avoid(self._sync_cc(), delivered, now, self._cwnd_limited())
        if rexmit:
            self._xmit_retransmit_queue(now)
        if flag & FLAG_DATA_ACKED:
            self._check_space()
        return 1

    def _ack_update_window(self, tcp: Tcp, ack: int, ack_seq: int, now: float) -> int:
        """tcp_ack_update_window."""
        nwin = tcp.window
        if not tcp.flags & SYN:
            nwin <<= self.snd_wscale
        flag = 0
        if self._may_update_window(ack, ack_seq, nwin):
            flag |= FLAG_WIN_UPDATE
            self.snd_wl1 = ack_seq
            if self.snd_wnd != nwin:
                self.snd_wnd = nwin
                if self._has_unsent():
                    self._slow_start_after_idle_check(now)
                if nwin > self.max_window:
                    self.max_window = nwin
                    self._sync_mss(self._pmtu)
        return flag

    def _ack_probe(self, now: float) -> None:
        """tcp_ack_probe: did this ACK open the window for the head of the write queue?"""
        if not self._has_unsent():
            return
        length = min(self._current_mss(), self._unsent())
        fin = self._fin_pending() and length == self._unsent()
        end = (self.snd_nxt + length + (1 if fin else 0)) & MASK
        if not _after(end, (self.snd_una + self.snd_wnd) & MASK):
            self._backoff = 0
            if self._rexmit_kind == _T_PROBE0:
                self._t_rexmit = None
                self._rexmit_kind = 0
        else:
            self._arm_rexmit(now, self._probe0_when(), _T_PROBE0)

    def _ack_is_dubious(self, flag: int) -> bool:
        return (
            not flag & FLAG_NOT_DUP or bool(flag & FLAG_CA_ALERT) or self._ca_state != CaState.OPEN
        )

    _last_sacked_bytes = 0
    _last_newly_lost = 0

    def _sacktag(self, sack: Sack, ack: int, now: float) -> int:
        """tcp_sacktag_write_queue: apply the SACK blocks of an ACK."""
        res = self._sb.on_sack(sack.blocks, ack, self.snd_nxt)
        flag = 0
        self._last_sacked_bytes = res.newly_sacked_bytes
        self._last_newly_lost = (
            -(-res.newly_lost_bytes // self.mss_cache) if res.newly_lost_bytes else 0
        )
        if res.newly_sacked_bytes:
            flag |= FLAG_DATA_SACKED
        if res.dsack:
            flag |= FLAG_DSACKING_ACK
            block = res.dsack_block
            tlp = self._tlp_high_seq
            if block is not None and tlp is not None and block[1] == tlp:
                flag |= FLAG_DSACK_TLP
            if block is not None and _before(block[0], ack):
                self._count("TcpExtTCPDSACKRecv")
            else:
                self._count("TcpExtTCPDSACKOfoRecv")
        if res.discarded:
            self._count("TcpExtTCPSACKDiscard", res.discarded)
        if res.reorder_seq is not None:
            self._check_sack_reordering(res.reorder_seq)
        return flag

    def _check_sack_reordering(self, low_seq: int) -> None:
        """tcp_check_sack_reordering: raise the reordering degree (DupThresh)."""
        fack = self._sb.highest_sacked()
        if fack is None or not _before(low_seq, fack):
            return
        metric = _diff(fack, low_seq)
        mss = self.mss_cache
        if metric > self.reordering * mss:
            self.reordering = min(
                self.config.max_reordering, max(self.reordering, -(-metric // mss))
            )
            self._sb.dupthresh = self.reordering
        self._count("TcpExtTCPSACKReorder")

    # ------------------------------------------------------------------ loss recovery

    def _current_ssthresh(self) -> int:
        st = self._st
        if self._ca_state in (CaState.CWR, CaState.RECOVERY):
            return st.ssthresh
        return max(st.ssthresh, (st.cwnd >> 1) + (st.cwnd >> 2))

    def _init_cwnd_reduction(self, now: float) -> None:
        st = self._sync_cc()
        self.high_seq = self.snd_nxt
        self._tlp_high_seq = None
        st.cwnd_cnt = 0
        self._prior_cwnd = st.cwnd
        st.prior_cwnd = st.cwnd
        self._prr_delivered = 0
        self._prr_out = 0
        st.ssthresh = self._cc.ssthresh(st)

    def _enter_cwr(self, now: float) -> None:
        """tcp_enter_cwr: local congestion (the device queue refused a segment)."""
        self._prior_ssthresh = 0
        if self._ca_state < CaState.CWR:
            self._init_cwnd_reduction(now)
            self._set_ca_state(CaState.CWR, now)

    def _enter_recovery(self, now: float) -> None:
        self._count("TcpExtTCPSackRecovery" if self.sack_ok else "TcpExtTCPRenoRecovery")
        self._prior_ssthresh = 0
        if self._ca_state not in (CaState.CWR, CaState.RECOVERY):
            self._prior_ssthresh = self._current_ssthresh()
            self._init_cwnd_reduction(now)
        self._set_ca_state(CaState.RECOVERY, now)

    def _end_cwnd_reduction(self, now: float) -> None:
        st = self._st
        if st.ssthresh < TCP_INFINITE_SSTHRESH:
            st.cwnd = st.ssthresh
        self._cc.cwnd_event(self._sync_cc(), CaEvent.COMPLETE_CWR, now)

    def _cwnd_reduction(self, newly_acked_sacked: int, newly_lost: int, flag: int) -> None:
        """tcp_cwnd_reduction: Proportional Rate Reduction (RFC 6937, PRR-SSRB)."""
        if newly_acked_sacked <= 0 or not self._prior_cwnd:
            return
        st = self._st
        in_flight = self._in_flight()
        delta = st.ssthresh - in_flight
        self._prr_delivered += newly_acked_sacked
        if delta < 0:
            dividend = st.ssthresh * self._prr_delivered + self._prior_cwnd - 1
            sndcnt = dividend // self._prior_cwnd - self._prr_out
        elif flag & FLAG_SND_UNA_ADVANCED and not newly_lost:
            sndcnt = min(delta, max(self._prr_delivered - self._prr_out, newly_acked_sacked) + 1)
        else:
            sndcnt = min(delta, newly_acked_sacked)
        sndcnt = max(sndcnt, 0 if self._prr_out else 1)
        st.cwnd = max(in_flight + sndcnt, 1)

    def _enter_loss(self, now: float) -> None:
        """tcp_enter_loss: RTO; everything outstanding is lost, cwnd restarts at 1."""
        st = self._sync_cc()
        if (
            self._ca_state <= CaState.DISORDER
            or not _after(self.high_seq, self.snd_una)
            or (self._ca_state == CaState.LOSS and not self._retransmits)
        ):
            self._prior_ssthresh = self._current_ssthresh()
            self._prior_cwnd = st.cwnd
            st.prior_cwnd = st.cwnd
            st.ssthresh = self._cc.ssthresh(st)
            self._cc.cwnd_event(st, CaEvent.LOSS, now)
        if self._sb.mark_lost():
            self._count("TcpExtTCPSACKReneging")
        self._reno_sacked = 0
        st.cwnd = self._in_flight() + 1
        st.cwnd_cnt = 0
        if (
            self._ca_state <= CaState.DISORDER
            and self._sb.sacked_segments >= self.config.reordering
        ):
            self.reordering = min(self.reordering, self.config.reordering)
            self._sb.dupthresh = self.reordering
        self._set_ca_state(CaState.LOSS, now)
        self.high_seq = self.snd_nxt

    def _add_reno_sack(self, num_dupack: int) -> None:
        """tcp_add_reno_sack: duplicate ACKs stand for segments that left the network."""
        if num_dupack:
            packets = len(self._sb)
            self._reno_sacked = min(self._reno_sacked + num_dupack, max(packets - 1, 0))

    def _newreno_mark_lost(self, snd_una_advanced: bool) -> None:
        """tcp_newreno_mark_lost: the head is lost after DupThresh dupACKs or a partial ACK."""
        state = self._ca_state
        if (state < CaState.RECOVERY and self._reno_sacked >= self.reordering) or (
            state == CaState.RECOVERY and snd_una_advanced
        ):
            if not self._packets_out() or self._sb.is_lost(self.snd_una):
                return
            self._sb.mark_lost((self.snd_una + 1) & MASK)

    def _time_to_recover(self) -> bool:
        sb = self._sb
        if sb.lost_bytes:
            return True
        if self.sack_ok:
            return sb.sacked_segments + 1 > self.reordering
        return False

    def _try_to_open(self, now: float) -> None:
        """tcp_try_to_open / tcp_try_keep_open: OPEN, or DISORDER while anything is SACKed."""
        if not self._sb.retrans_out:
            self._retrans_stamp = None
        if self._ca_state != CaState.CWR:
            left_out = self._sb.sacked_bytes or self._sb.lost_bytes or self._reno_sacked
            state = CaState.DISORDER if left_out or self._sb.retrans_out else CaState.OPEN
            if self._ca_state != state:
                self._set_ca_state(state, now)
                self.high_seq = self.snd_nxt

    def _fastretrans_alert(
        self, prior_snd_una: int, num_dupack: int, flag: int, now: float
    ) -> bool:
        """tcp_fastretrans_alert, simplified but with Linux's state machine.
        Returns True when lost segments should be retransmitted (REXMIT_LOST)."""
        reno = not self.sack_ok
        sb = self._sb
        if not self._packets_out():
            self._reno_sacked = 0
        # D. exit conditions
        ca = self._ca_state
        if ca == CaState.OPEN:
            if not sb.retrans_out:
                self._retrans_stamp = None
        elif not _before(self.snd_una, self.high_seq):
            if ca == CaState.CWR:
                if self.snd_una != self.high_seq:
                    self._end_cwnd_reduction(now)
                    self._set_ca_state(CaState.OPEN, now)
            elif ca == CaState.RECOVERY:
                if reno:
                    self._reno_sacked = 0
                if self.snd_una == self.high_seq and reno:
                    if not sb.retrans_out:
                        self._retrans_stamp = None
                    return False  # NewReno holds until something above high_seq is acked
                self._set_ca_state(CaState.OPEN, now)
                self._end_cwnd_reduction(now)
        # E. process state
        ca = self._ca_state
        if ca == CaState.RECOVERY:
            if not flag & FLAG_SND_UNA_ADVANCED:
                if reno:
                    self._add_reno_sack(num_dupack)
            if reno:
                self._newreno_mark_lost(bool(flag & FLAG_SND_UNA_ADVANCED))
            return True
        if ca == CaState.LOSS:
            if not _before(self.snd_una, self.high_seq):
                if reno and self.snd_una == self.high_seq:
                    return False  # NewReno holds LOSS until something above high_seq
                self._set_ca_state(CaState.OPEN, now)
                if not sb.retrans_out:
                    self._retrans_stamp = None
                return False
            if reno:
                if _after(self.snd_nxt, self.high_seq) and num_dupack:
                    self._add_reno_sack(num_dupack)
                elif flag & FLAG_SND_UNA_ADVANCED:
                    self._reno_sacked = 0
            return True
        # OPEN, DISORDER, CWR
        if reno:
            if flag & FLAG_SND_UNA_ADVANCED:
                self._reno_sacked = 0
            self._add_reno_sack(num_dupack)
            self._newreno_mark_lost(bool(flag & FLAG_SND_UNA_ADVANCED))
        if not self._time_to_recover():
            self._try_to_open(now)
            return False
        self._enter_recovery(now)
        if self._packets_out() and not sb.lost_bytes:
            sb.mark_lost((self.snd_una + 1) & MASK)  # fast retransmit the head
        return True

    # ------------------------------------------------------------------ sending after ACKs

    def _data_snd_check(self, now: float) -> None:
        """tcp_data_snd_check: push pending data, then maybe grow the send buffer."""
        self._write_xmit(now)

    def _check_space(self) -> None:
        """tcp_check_space / tcp_new_space: grow the send buffer when it is not cwnd-bound."""
        if self._sndbuf_locked:
            return
        if self._in_flight() >= self._st.cwnd:
            return
        self._sndbuf_expand()

    def _slow_start_after_idle_check(self, now: float) -> None:
        """tcp_slow_start_after_idle_check / tcp_cwnd_restart (RFC 5681 4.1)."""
        if not self.config.slow_start_after_idle or self._packets_out():
            return
        delta = now - self._lsndtime
        if delta <= self._rto:
            return
        st = self._sync_cc()
        self._cc.cwnd_event(st, CaEvent.CWND_RESTART, now)
        st.ssthresh = self._current_ssthresh()
        restart = min(self.config.init_cwnd, st.cwnd)
        cwnd = st.cwnd
        delta -= self._rto
        while delta > 0 and cwnd > restart:
            cwnd >>= 1
            delta -= self._rto
        st.cwnd = max(cwnd, restart)

    # ------------------------------------------------------------------ the data

    def _data_queue(self, tcp: Tcp, payload: bytes, seq: int, end_seq: int, now: float) -> None:
        """tcp_data_queue: in-order data to the receive queue, the rest to the ofo queue."""
        if seq == end_seq:
            return
        self._dsack = None
        flags = tcp.flags
        fin = bool(flags & FIN)
        data_len = len(payload)
        if seq == self.rcv_nxt:
            if self._receive_window() == 0:
                if not data_len and fin:
                    self._queue_in_order(b"", True, flags, now)
                    return
                self._count("TcpExtTCPZeroWindowDrop")
                self._out_of_window()
                return
            if data_len and not self._rmem_schedule(seq):
                self._count("TcpExtTCPRcvQDrop")
                return
            self._queue_in_order(payload, fin, flags, now)
            return
        if not _after(end_seq, self.rcv_nxt):
            # A retransmission of data we have: D-SACK it, ACK at once.
            self._count("TcpExtDelayedACKLost")
            self._dsack_set(tcp.seq, end_seq)
            self._out_of_window()
            return
        if not _before(seq, (self.rcv_nxt + self._receive_window()) & MASK):
            self._count("TcpExtTCPZeroWindowDrop")
            self._out_of_window()
            return
        if _before(seq, self.rcv_nxt):
            # Partial: the head is old (D-SACK it), the tail new.
            self._dsack_set(seq, self.rcv_nxt)
            if self._receive_window() == 0:
                self._count("TcpExtTCPZeroWindowDrop")
                self._out_of_window()
                return
            cut = _diff(self.rcv_nxt, seq)
            payload = payload[cut:]
            if payload and not self._rmem_schedule(self.rcv_nxt):
                self._count("TcpExtTCPRcvQDrop")
                return
            self._queue_in_order(payload, fin, flags, now)
            return
        self._data_queue_ofo(seq, payload, fin, end_seq, now)

    def _out_of_window(self) -> None:
        self._enter_quickack_mode(TCP_MAX_QUICKACKS)
        self._ack_sched = True

    def _rmem(self) -> int:
        """sk_rmem_alloc: the receive queue at two bytes per payload byte, the out-of-order
        queue at its truesize (tiny segments cost an skb's overhead each)."""
        return 2 * len(self._rq) + self._ofo.truesize

    def _can_ingest(self) -> bool:
        return self._rmem() <= self.rcvbuf

    def _rmem_schedule(self, seq: int) -> bool:
        """tcp_try_rmem_schedule / tcp_prune_queue: room in the receive buffer for a segment at
        ``seq``, pruning the out-of-order queue from its top if not (tcp_prune_ofo_queue, goal
        rcvbuf/8 at a time, never below ``seq``).  False drops the segment (TcpExtRcvPruned)."""
        if self._can_ingest():
            return True
        self._count("TcpExtPruneCalled")
        # tcp_collapse would compact the queues here; segments are already charged as
        # collapsed ones, so only the destructive step is left.
        if self._ofo.prune(seq, self.rcvbuf >> 3, self._can_ingest):
            self._count("TcpExtOfoPruned")
            fin = self._ofo_fin
            if fin is not None:
                end = self._ofo.tail_end()
                if end is None or not _before(fin, end):
                    self._ofo_fin = None  # its segment was pruned with the rest
        if self._can_ingest():
            return True
        self._count("TcpExtRcvPruned")
        return False

    def _queue_in_order(self, payload: bytes, fin: bool, flags: int, now: float) -> None:
        if payload:
            self._rq += payload
            self._rcv_nxt_update(len(payload))
            self._event_data_recv(len(payload), flags, now)
        if fin:
            self._rcv_nxt_update(1)
            self._tcp_fin(now)
        if len(self._ofo) or self._ofo_fin is not None:
            self._ofo_queue(now)
            if not len(self._ofo):
                self._ack_now = True  # RFC 5681 4.2: the hole is filled, ACK at once

    def _rcv_nxt_update(self, n: int) -> None:
        self.rcv_nxt = (self.rcv_nxt + n) & MASK
        self.bytes_received += n

    def _ofo_queue(self, now: float) -> None:
        """tcp_ofo_queue: move what became contiguous to the receive queue."""
        if self._fin_rcvd:
            self._ofo.clear()
            self._ofo_fin = None
            return
        data = self._ofo.pop_in_order(self.rcv_nxt)
        if data:
            self._rq += data
            self._rcv_nxt_update(len(data))
        if self._ofo_fin is not None and self._ofo_fin == self.rcv_nxt:
            self._ofo_fin = None
            self._rcv_nxt_update(1)
            self._tcp_fin(now)

    def _data_queue_ofo(
        self, seq: int, payload: bytes, fin: bool, end_seq: int, now: float
    ) -> None:
        """tcp_data_queue_ofo."""
        self._count("TcpExtTCPOFOQueue")
        if payload and not self._rmem_schedule(seq):
            self._count("TcpExtTCPOFODrop")
            return
        self._ack_sched = True
        if fin:
            self._ofo_fin = (end_seq - 1) & MASK
        if payload:
            new = self._ofo.add(seq, payload)
            dup = self._ofo.last_dsack
            if dup is not None:
                if not new:
                    self._count("TcpExtTCPOFOMerge")
                self._dsack_set(dup[0], dup[1])

    def _tcp_fin(self, now: float) -> None:
        """tcp_fin: the peer's FIN, in order."""
        self._ack_sched = True
        self._rcv_shutdown = True
        self._fin_rcvd = True
        state = self.state
        if state in (_S.SYN_RECEIVED, _S.ESTABLISHED):
            self._set_state(_S.CLOSE_WAIT)
            self._pingpong = TCP_PINGPONG_THRESH
        elif state is _S.FIN_WAIT_1:
            # Simultaneous close.
            self._send_ack(now)
            self._set_state(_S.CLOSING)
        elif state is _S.FIN_WAIT_2:
            self._send_ack(now)
            self._time_wait(now)
        self._ofo.clear()
        self._ofo_fin = None

    # ============================================================================ user side

    def send(self, data: bytes, now: float) -> int:
        """Queue up to ``send_space()`` bytes of ``data`` (tcp_sendmsg); returns the count."""
        if (
            self.error is not None
            or self.state not in (_S.ESTABLISHED, _S.CLOSE_WAIT)
            or self._fin_queued
        ):
            return 0
        n = min(len(data), self.send_space())
        if n <= 0:
            return 0
        if not self._packets_out() and not self._has_unsent():
            self._slow_start_after_idle_check(now)
        self._sbuf += data[:n] if n < len(data) else data
        self.write_seq = (self.write_seq + n) & MASK
        self._push_marks.append(self.write_seq)
        self._write_xmit(now)
        return n

    def receive(self, max_bytes: int, now: float) -> bytes:
        """Take up to ``max_bytes`` of in-order data (tcp_recvmsg); b"" when none (check
        ``eof``).  Reading may send a window update (tcp_cleanup_rbuf)."""
        rq = self._rq
        n = min(max_bytes, len(rq))
        if n > 0:
            data = bytes(rq[:n])
            del rq[:n]
        else:
            data = b""
        if self.state in (_S.CLOSED, _S.SYN_SENT, _S.LISTEN) or self._request:
            return data
        if n:
            self._rcv_space_adjust(now)
        self._cleanup_rbuf(n, now)
        return data

    def shutdown(self, now: float) -> None:
        """SHUT_WR: a FIN after the queued data (tcp_shutdown)."""
        if self.state in (_S.ESTABLISHED, _S.SYN_SENT, _S.SYN_RECEIVED, _S.CLOSE_WAIT):
            if self._close_state():
                self._send_fin(now)

    def _close_state(self) -> bool:
        """tcp_close_state: the next state on close; True when a FIN is to be sent."""
        state = self.state
        if state is _S.ESTABLISHED or state is _S.SYN_RECEIVED:
            self._set_state(_S.FIN_WAIT_1)
            return True
        if state is _S.CLOSE_WAIT:
            self._set_state(_S.LAST_ACK)
            return True
        if state is _S.SYN_SENT:
            self._set_state(_S.CLOSED)
            self._clear_timers()
            return False
        return False

    def _send_fin(self, now: float) -> None:
        """tcp_send_fin: the FIN joins the write queue; pushed with Nagle off."""
        if self._fin_queued:
            return
        self._fin_queued = True
        self.write_seq = (self.write_seq + 1) & MASK
        self._write_xmit(now, nonagle=True)  # (only once our SYN is acknowledged)

    def close(self, now: float) -> None:
        """close() (tcp_close): unread data -> RST (TcpExtTCPAbortOnClose), else a FIN after
        the queued data; the connection is then an orphan."""
        self._orphan = True
        self._rcv_shutdown = True
        state = self.state
        if state is _S.CLOSED or state is _S.TIME_WAIT:
            return
        unread = len(self._rq)
        self._rq = bytearray()
        if state is _S.LISTEN:
            self._set_state(_S.CLOSED)
            return
        if self._request:
            self._set_state(_S.CLOSED)
            self._clear_timers()
            return
        if unread:
            self._count("TcpExtTCPAbortOnClose")
            self._set_state(_S.CLOSED)
            self._send_active_reset(now)
            self._done()
            self.error = self.error or errno.ECONNRESET
            return
        if self._close_state():
            self._send_fin(now)
        if self.state is _S.FIN_WAIT_2:
            self._enter_tw_finwait2(now)

    def abort(self, now: float) -> None:
        """Reset the connection now (tcp_disconnect / SO_LINGER 0): RST, CLOSED."""
        state = self.state
        if state is _S.CLOSED:
            return
        if (
            state in (_S.ESTABLISHED, _S.CLOSE_WAIT, _S.FIN_WAIT_1, _S.FIN_WAIT_2)
            or (state is _S.SYN_RECEIVED)
            or (state in (_S.CLOSING, _S.LAST_ACK) and self.snd_nxt != self.write_seq)
        ):
            if self._request:
                # a request sock answers the final ACK with a plain RST (tcp_v4_send_reset)
                header = Tcp(self.local[1], self.remote[1], self.snd_nxt, 0, RST, 0)
                self._count("TcpOutRsts")
                self._count("TcpOutSegs")
                self.segs_out += 1
                self._xmit(header, b"")
            elif not self._tw_finwait2:
                self._send_active_reset(now)
            if self.error is None:
                self.error = errno.ECONNRESET
        elif state is _S.SYN_SENT and self.error is None:
            self.error = errno.ECONNRESET
        self._request = False
        self._set_state(_S.CLOSED)
        self._clear_timers()
        self._sbuf = bytearray()
        self._fin_queued = False
        self._ofo.clear()

    def set_nodelay(self, nodelay: bool, now: float) -> None:
        """TCP_NODELAY; turning it on pushes what Nagle held."""
        self.nodelay = nodelay
        if nodelay:
            self._write_xmit(now, nonagle=True)

    def set_congestion(self, name: str, now: float) -> None:
        """TCP_CONGESTION: switch algorithm (tcp_reinit_congestion_control); OSError(ENOENT)
        for an unknown name, as setsockopt."""
        try:
            cc = new_congestion(name, counters=self.counters)
        except ValueError:
            raise OSError(errno.ENOENT, f"unknown congestion control {name!r}") from None
        self._cc = cc
        self.congestion = name
        if self.state not in (_S.CLOSED, _S.LISTEN):
            cc.init(self._sync_cc(), now)

    def timewait_syn_isn(self, syn: Tcp) -> int | None:
        """In TIME-WAIT: the ISN a new incarnation accepting ``syn`` should use
        (tcp_timewait_state_process, TCP_TW_SYN: snd_nxt + 65535 + 2), or None when the SYN
        may not reopen the connection."""
        if self.state is not _S.TIME_WAIT or not syn.flags & SYN or syn.flags & (RST | ACK):
            return None
        ts = syn.find_option(Timestamps) if self.tstamp_ok else None
        if self._tw_paws_reject(ts, False, self._ts_recent_stamp or 0.0):
            return None
        if _after(syn.seq, self.rcv_nxt) or (
            ts is not None and _diff(self.ts_recent, ts.tsval) < 0
        ):
            isn = (self.snd_nxt + 65535 + 2) & MASK
            return isn or 1
        return None

    # ============================================================================ ICMP

    def icmp_error(
        self,
        type_: int,
        code: int,
        info: int,
        now: float,
        *,
        seq: int | None = None,
        owned: bool = False,
    ) -> None:
        """tcp_v4_err.  ``info`` is the ICMP header's rest-of-header word (for frag needed,
        the path MTU the route now has); ``seq`` the quoted sequence number, if known;
        ``owned`` whether a user task holds the socket lock (sock_owned_by_user)."""
        state = self.state
        if state in (_S.CLOSED, _S.LISTEN, _S.TIME_WAIT) or self._tw_finwait2:
            return
        if seq is not None and not _between(self.snd_una, seq, self.snd_nxt):
            self._count("TcpExtOutOfWindowIcmps")
            return
        if type_ == ICMP_DEST_UNREACH:
            if code > 15:
                return
            if code == ICMP_FRAG_NEEDED:
                self._mtu_reduced(info & 0xFFFF, now)
                return
            err = _ICMP_UNREACH_ERR[code][0]
            if code in (ICMP_NET_UNREACH, ICMP_HOST_UNREACH):
                self._ld_rto_revert(now, seq)
        elif type_ == ICMP_TIME_EXCEEDED:
            err = errno.EHOSTUNREACH
        elif type_ == ICMP_PARAMETERPROB:
            err = errno.EPROTO
        else:
            return
        if state in _SYN_STATES:
            if self._request:
                return  # a request sock is dropped by the listener, not by ICMP
            # tcp_v4_err: in SYN-SENT every error ends the connect (tcp_done_with_error) —
            # icmp_err_convert's "fatal" flag matters only to connected sockets
            if owned:
                self._soft_error = err
            else:
                self.error = err
                self._done()
            return
        self._soft_error = err  # a connected socket keeps trying until it times out

    def icmp_seq_ok(self, seq: int) -> bool:
        """tcp_v4_err's window check: the quoted sequence lies in [snd_una, snd_nxt] (a
        request sock: it is the ISN of our SYN-ACK).  Listeners and closed sockets take any."""
        if self.state in (_S.CLOSED, _S.LISTEN, _S.TIME_WAIT) or self._tw_finwait2:
            return True  # ignored without a counter (tcp_v4_err's TIME-WAIT branch)
        if self._request:
            return seq == self.iss
        return _between(self.snd_una, seq, self.snd_nxt)

    def route_mtu_changed(self, pmtu: int) -> None:
        """tcp_current_mss's check before each send: the route's MTU is no longer the one the
        MSS was computed for (icsk_pmtu_cookie), so tcp_sync_mss, up or down.  How a device
        MTU change (``ip link set mtu``) reaches the socket; nothing is retransmitted: what
        was sent fitted the MTU of its time (a retransmission is cut to the new MSS)."""
        if self._request or self.state in (_S.CLOSED, _S.LISTEN, _S.TIME_WAIT):
            return
        if pmtu != self._pmtu:
            self._sync_mss(pmtu)

    def _mtu_reduced(self, mtu: int, now: float) -> None:
        """tcp_v4_mtu_reduced: lower the path MTU and retransmit what no longer fits."""
        if mtu <= 0 or self._request:
            return
        mtu = max(mtu, 68)
        if self._pmtu <= mtu:
            return
        self._sync_mss(mtu)
        if self.state is _S.SYN_SENT:
            return
        self._simple_retransmit(now)

    def _simple_retransmit(self, now: float) -> None:
        """tcp_simple_retransmit: segments larger than the new MSS are lost; resend them."""
        mss = self._current_mss()
        up_to = None
        for seg in self._sb.segments():
            if _diff(seg.end, seg.seq) > mss and not seg.sacked:
                up_to = seg.end
        if up_to is None:
            return
        self._sb.mark_lost(up_to)
        if self._ca_state != CaState.LOSS:
            self.high_seq = self.snd_nxt
            self._st.ssthresh = self._current_ssthresh()
            self._prior_ssthresh = 0
            self._set_ca_state(CaState.LOSS, now)
        self._xmit_retransmit_queue(now)

    def _ld_rto_revert(self, now: float, seq: int | None) -> None:
        """tcp_ld_RTO_revert (RFC 6069): undo one backoff step for an unreachable path."""
        if seq is not None and seq != self.snd_una:
            return
        if not self._retransmits or not self._backoff or self._rexmit_kind != _T_RTO:
            return
        self._backoff -= 1
        base = self._rtt.rto if self._rtt.srtt is not None else self.config.rto_initial
        self._rto = min(base * (1 << self._backoff), self.config.rto_max)
        head = next(iter(self._sb.segments()), None)
        sent = head.sent if head is not None else now
        remaining = self._rto - (now - sent)
        if remaining > 0:
            self._arm_rexmit(now, remaining, _T_RTO)
        else:
            self._t_rexmit = None
            self._rexmit_kind = 0
            self._retransmit_timer(now)

    # ============================================================================ status

    def info(self) -> TcpInfo:
        """A snapshot like ``ss -ti``."""
        sb = self._sb
        mss = max(self.mss_cache, 1)
        return TcpInfo(
            state=self.state,
            ca_state=self._ca_state,
            retransmits=self._retransmits,
            probes=self._probes_out,
            backoff=self._backoff,
            rto=self._rto,
            ato=self._ato,
            snd_mss=self.mss_cache,
            rcv_mss=self.rcv_mss,
            advmss=self.advmss,
            pmtu=self._pmtu,
            unacked=len(sb),
            sacked=sb.sacked_segments,
            lost=-(-sb.lost_bytes // mss),
            retrans=-(-sb.retrans_out // mss),
            rtt=self._rtt.srtt,
            rttvar=self._rtt.rttvar,
            min_rtt=self._rtt.min_rtt,
            rcv_rtt=(self._rcv_rtt / 8) if self._rcv_rtt else None,
            cwnd=self._st.cwnd,
            ssthresh=self._st.ssthresh,
            reordering=self.reordering,
            total_retrans=self.total_retrans,
            bytes_sent=self.bytes_sent,
            bytes_retrans=self.bytes_retrans,
            bytes_acked=self.bytes_acked,
            bytes_received=self.bytes_received,
            segs_out=self.segs_out,
            segs_in=self.segs_in,
            data_segs_out=self.data_segs_out,
            data_segs_in=self.data_segs_in,
            delivered=self.delivered,
            snd_wnd=self.snd_wnd,
            rcv_wnd=self.rcv_wnd,
            rcv_ssthresh=self.rcv_ssthresh,
            rcv_space=self._rcvq_space,
            send_q=len(self._sbuf),
            recv_q=len(self._rq),
            sndbuf=self.sndbuf,
            rcvbuf=self.rcvbuf,
            snd_wscale=self.snd_wscale,
            rcv_wscale=self.rcv_wscale,
            timestamps=self.tstamp_ok,
            sack=self.sack_ok,
            wscale=self.wscale_ok,
            nodelay=self.nodelay,
            congestion=self.congestion,
        )
