"""Counters under the names ``nstat`` prints (group + field: ``Ip`` + ``ForwDatagrams``).

The MIB groups follow /proc/net/snmp and /proc/net/netstat of Linux 6.x.  A host keeps one
:class:`Snmp` counter; ``host.nstat()`` returns every known name, zeros included, in this order.
"""

from __future__ import annotations

import re
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
    "IcmpInParmProbs",
    "IcmpInEchos",
    "IcmpInEchoReps",
    "IcmpOutMsgs",
    "IcmpOutErrors",
    "IcmpOutRateLimitGlobal",
    "IcmpOutRateLimitHost",
    "IcmpOutDestUnreachs",
    "IcmpOutTimeExcds",
    "IcmpOutParmProbs",
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
    "TcpExtRcvPruned",
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
_AFTER_ICMP = len(IP + IP_EXT + ICMP)
_ICMPMSG = re.compile(r"IcmpMsg(In|Out)Type(\d{1,3})")


class Snmp(Counter):
    """A host's counters; ``snmp["IpInReceives"] += 1``.  Unknown names are a programming error
    caught by :meth:`nstat` (so a typo cannot hide a drop)."""

    def nstat(self) -> dict[str, int]:
        """Every counter, in nstat's order.  The per-type ICMP counters (IcmpMsgInType3,
        IcmpMsgOutType0, ...) exist, as in /proc/net/snmp's IcmpMsg line, once they moved:
        the in-types first, then the out-types, each by type number (icmpmsg_put)."""
        unknown = sorted(k for k in self if k not in _KNOWN_SET and not _ICMPMSG.fullmatch(k))
        if unknown:
            raise KeyError(f"counters with no Linux name: {unknown}")
        out = {name: self[name] for name in KNOWN[:_AFTER_ICMP]}
        msgs = sorted(
            (m.group(1) == "Out", int(m.group(2)), k)
            for k in self
            if (m := _ICMPMSG.fullmatch(k)) and self[k]
        )
        out.update((k, self[k]) for _, _, k in msgs)
        out.update((name, self[name]) for name in KNOWN[_AFTER_ICMP:])
        return out
