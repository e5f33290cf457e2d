#!/usr/bin/python3
"""nop_client.py - a raw iSCSI initiator for test_nop_keepalive.sh.

usage: nop_client.py HOST PORT TARGET_IQN INTERVAL TIMEOUT MODE

Logs in (bad_input.py's minimal RFC 7143 client), then:
  silent  never sends again. Exit 0 if exactly one NOP-In ping came, about
          INTERVAL s after login, and the target closed the connection about
          INTERVAL + TIMEOUT s after login (RFC 7143 11.19).
  answer  answers every ping with a NOP-Out echoing its TTT (11.18.3) for
          3 * (INTERVAL + TIMEOUT) s. Exit 0 if the pings kept coming, the
          connection stayed and a SCSI command still works.
Prints what it saw; exit 1 otherwise, 2 on usage error.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bad_input  # noqa: E402

OP_NOP_OUT, OP_NOP_IN = 0x00, 0x20
RSVD_TAG = 0xFFFFFFFF
SLACK = 1.5  # seconds of scheduling slack allowed after a deadline

bad_input.INITIATOR = "iqn.2026-11.io.s3tgt:nop-client"


def check_ping(h, c):
    """-> the TTT of a keepalive NOP-In, or raise."""
    itt, ttt, statsn = struct.unpack(">III", h[16:28])
    dlen = int.from_bytes(h[5:8], "big")
    if h[0] & 0x3F != OP_NOP_IN:
        raise RuntimeError("expected NOP-In, got opcode 0x%02x" % (h[0] & 0x3F))
    if itt != RSVD_TAG or ttt == RSVD_TAG or dlen != 0 or h[8:16] != b"\0" * 8:
        raise RuntimeError("NOP-In ping with ITT 0x%08x TTT 0x%08x DataSegmentLength %d "
                           "LUN %s" % (itt, ttt, dlen, h[8:16].hex()))
    # 11.19.3: the next StatSN, not advanced by a NOP-In that wants an answer
    if statsn != c.statsn:
        raise RuntimeError("NOP-In StatSN %d, expected %d" % (statsn, c.statsn))
    return ttt


def silent(c, interval, timeout):
    t0 = time.monotonic()
    end = t0 + interval + timeout + 10
    pings = []
    try:
        while True:
            c.s.settimeout(max(0.1, end - time.monotonic()))
            h, _ = c.recv_pdu()
            check_ping(h, c)
            pings.append(time.monotonic() - t0)
            print("  NOP-In ping %.2f s after login" % pings[-1])
    except bad_input.Closed:
        closed = time.monotonic() - t0
    except socket.timeout:
        print("  still connected %.1f s after login" % (time.monotonic() - t0))
        return False
    print("  connection closed %.2f s after login" % closed)
    ok = len(pings) == 1 and interval - 0.2 <= pings[0] <= interval + SLACK
    return ok and interval + timeout - 0.2 <= closed <= interval + timeout + SLACK


def answer(c, interval, timeout):
    t0 = time.monotonic()
    secs = 3 * (interval + timeout)
    pings = 0
    while time.monotonic() - t0 < secs:
        c.s.settimeout(max(0.1, secs - (time.monotonic() - t0)))
        try:
            h, _ = c.recv_pdu()
        except socket.timeout:
            break
        ttt = check_ping(h, c)
        pings += 1
        # 11.18: ITT reserved with the I bit, TTT and LUN copied from the NOP-In
        rest = struct.pack(">III", ttt, c.cmdsn, c.statsn)
        c.send(bad_input.bhs(OP_NOP_OUT | bad_input.IMMEDIATE, 0x80, 0, 0, 0, 0, h[8:16],
                             RSVD_TAG, rest))
    print("  answered %d pings in %.1f s" % (pings, time.monotonic() - t0))
    # TEST UNIT READY: any status will do, the connection must carry it
    status, _, _, _, _ = c.scsi(0, b"\0" * 6)
    print("  TEST UNIT READY afterwards: status 0x%02x" % status)
    return pings >= secs / (interval + 0.5) - 1


def main():
    if len(sys.argv) != 7 or sys.argv[6] not in ("silent", "answer"):
        print(__doc__, file=sys.stderr)
        return 2
    host, port, iqn = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    interval, timeout = float(sys.argv[4]), float(sys.argv[5])
    c = bad_input.Conn(host, port)
    c.login(iqn)
    try:
        ok = (silent if sys.argv[6] == "silent" else answer)(c, interval, timeout)
    except (RuntimeError, bad_input.Closed) as e:
        print("  %s" % (e or "connection closed"))
        ok = False
    c.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
