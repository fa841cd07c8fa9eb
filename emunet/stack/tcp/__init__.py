"""TCP for an emulated host, modelled on Linux 6.x (RFC 9293 and the RFCs each module names).

The package is split as the kernel splits net/ipv4/tcp*.c:

- ``cc``    congestion control: the ``tcp_congestion_ops`` interface, Reno and CUBIC
            (tcp_cong.c, tcp_cubic.c; RFC 5681, RFC 9438)
- ``rtt``   the RTT estimator and retransmission timeout (tcp_input.c tcp_rtt_estimator,
            tcp_set_rto; RFC 6298)
- ``sack``  the receiver's out-of-order queue and the sender's SACK scoreboard
            (RFC 2018, RFC 2883, RFC 6675)
- ``conn``  the connection state machine, plain: fed segments and ``now``, no trio
- ``layer``, ``sock``  the TCP task (tcp_v4_rcv, listeners) and the user-facing sockets

``cc``, ``rtt``, ``sack`` and ``conn`` never import trio. This file deliberately imports no
submodule: import the one you need (``from emunet.stack.tcp import cc``).
"""
