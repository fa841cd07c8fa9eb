"""Counters under the names ``nstat`` prints (group + field: ``Ip`` + ``ForwDatagrams``).

The MIB groups follow /proc/net/snmp and /proc/net/netstat of Linux 6.x.  A host keeps one
:class:`Snmp` counter; ``host.nstat()`` returns every known name, zeros included, in this order.
"""

from __future__ import annotations

from collections import Counter

IP = [
    "IpForwarding",
    "IpDefaultTTL",
    "IpInReceives",
    "IpInHdrErrors",
    "IpInAddrErrors",
    "IpForwDatagrams",
    "IpInUnknownProtos",
    "IpInDiscards",
    "IpInDelivers",
    "IpOutRequests",
    "IpOutDiscards",
    "IpOutNoRoutes",
    "IpReasmTimeout",
    "IpReasmReqds",
    "IpReasmOKs",
    "IpReasmFails",
    "IpFragOKs",
    "IpFragFails",
    "IpFragCreates",
    "IpOutTransmits",
    "IpInNoRoutes",
    "IpInTruncatedPkts",
    "IpInCsumErrors",
]
IP_EXT = ["IpExtReasmOverlaps", "IpExtInOctets", "IpExtOutOctets"]
ICMP = [
    "IcmpInMsgs",
    "IcmpInErrors",
    "IcmpInCsumErrors",
    "IcmpInDestUnreachs",
    "IcmpInTimeExcds",
    "IcmpInEchos",
    "IcmpInEchoReps",
    "IcmpOutMsgs",
    "IcmpOutErrors",
    "IcmpOutRateLimitGlobal",
    "IcmpOutRateLimitHost",
    "IcmpOutDestUnreachs",
    "IcmpOutTimeExcds",
    "IcmpOutEchos",
    "IcmpOutEchoReps",
]
UDP = [
    "UdpInDatagrams",
    "UdpNoPorts",
    "UdpInErrors",
    "UdpOutDatagrams",
    "UdpRcvbufErrors",
    "UdpSndbufErrors",
    "UdpInCsumErrors",
]
TCP = [
    "TcpActiveOpens",
    "TcpPassiveOpens",
    "TcpAttemptFails",
    "TcpEstabResets",
    "TcpCurrEstab",
    "TcpInSegs",
    "TcpOutSegs",
    "TcpRetransSegs",
    "TcpInErrs",
    "TcpOutRsts",
    "TcpInCsumErrors",
]
TCP_EXT = [
    "TcpExtListenOverflows",
    "TcpExtListenDrops",
    "TcpExtTCPBacklogDrop",
    "TcpExtTCPPrequeued",
    "TcpExtTCPDirectCopyFromPrequeue",
    "TcpExtTCPDirectCopyFromBacklog",
    "TcpExtTCPPrequeueDropped",
    "TcpExtTCPTimeouts",
    "TcpExtTCPFastRetrans",
    "TcpExtTCPChallengeACK",
    "TcpExtSyncookiesSent",
    "TcpExtSyncookiesRecv",
    "TcpExtTCPAbortOnData",
    "TcpExtTCPAbortOnTimeout",
    "TcpExtTCPOFOQueue",
    "TcpExtTCPRcvQDrop",
    "TcpExtTW",
    "TcpExtDelayedACKs",
    "TcpExtTCPHystartTrainDetect",
    "TcpExtTCPHystartTrainCwnd",
    "TcpExtTCPHystartDelayDetect",
    "TcpExtTCPHystartDelayCwnd",
    "TcpExtSyncookiesFailed",
    "TcpExtTCPAbortOnClose",
    "TcpExtTCPSACKDiscard",
    "TcpExtTCPSACKReorder",
    "TcpExtTCPSACKReneging",
    "TcpExtTCPOFOMerge",
    "TcpExtTCPDSACKRecv",
    "TcpExtTCPDSACKOldSent",
    "TcpExtTCPDSACKOfoSent",
    "TcpExtTCPLossProbes",
    "TcpExtTCPSackRecovery",
    "TcpExtTCPRenoRecovery",
    "TcpExtTCPSlowStartRetrans",
    "TcpExtTCPLostRetransmit",
    "TcpExtTCPPureAcks",
    "TcpExtTCPHPAcks",
    "TcpExtTCPHPHits",
    "TcpExtTCPZeroWindowDrop",
    "TcpExtTCPToZeroWindowAdv",
    "TcpExtTCPFromZeroWindowAdv",
    "TcpExtTCPWantZeroWindowAdv",
    "TcpExtTCPKeepAlive",
    "TcpExtTCPAbortOnMemory",
    "TcpExtTCPAbortFailed",
    "TcpExtTCPMemoryPressures",
    "TcpExtTCPWinProbe",
    "TcpExtTCPSYNChallenge",
    "TcpExtPAWSEstab",
    "TcpExtTCPACKSkippedChallenge",
    "TcpExtTCPOrigDataSent",
    "TcpExtTCPDelivered",
    "TcpExtTCPSpuriousRTOs",
    "TcpExtTCPFullUndo",
    "TcpExtTCPPartialUndo",
    "TcpExtTCPLossUndo",
    "TcpExtTCPLossFailures",
    "TcpExtTCPRetransFail",
    "TcpExtTCPSynRetrans",
    "TcpExtTWRecycled",
    "TcpExtTWKilled",
    "TcpExtEmbryonicRsts",
    "TcpExtTCPRcvCoalesce",
    "TcpExtTCPOFODrop",
    "TcpExtTCPRcvPruned",
    "TcpExtTCPOFOPruned",
    "TcpExtTCPAutoCorking",
    "TcpExtTCPMTUPFail",
    "TcpExtTCPMTUPSuccess",
    # counted by tcp/conn.py (Linux names of /proc/net/netstat)
    "TcpExtDelayedACKLost",
    "TcpExtOfoPruned",
    "TcpExtOutOfWindowIcmps",
    "TcpExtLockDroppedIcmps",
    "TcpExtPAWSActive",
    "TcpExtPruneCalled",
    "TcpExtTCPACKSkippedPAWS",
    "TcpExtTCPACKSkippedSeq",
    "TcpExtTCPACKSkippedSynRecv",
    "TcpExtTCPACKSkippedTimeWait",
    "TcpExtTCPDSACKOfoRecv",
    "TcpExtTCPRenoFailures",
    "TcpExtTCPRenoRecoveryFail",
    "TcpExtTCPSackFailures",
    "TcpExtTCPSackRecoveryFail",
    "TcpExtTCPACKSkippedFinWait2",
    "TcpExtTCPLossProbeRecovery",
]
KNOWN = IP + IP_EXT + ICMP + UDP + TCP + TCP_EXT
_KNOWN_SET = frozenset(KNOWN)


class Snmp(Counter):
    """A host's counters; ``snmp["IpInReceives"] += 1``.  Unknown names are a programming error
    caught by :meth:`nstat` (so a typo cannot hide a drop)."""

    def nstat(self) -> dict[str, int]:
        unknown = sorted(k for k in self if k not in _KNOWN_SET)
        if unknown:
            raise KeyError(f"counters with no Linux name: {unknown}")
        return {name: self[name] for name in KNOWN}
