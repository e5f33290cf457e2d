#!/usr/bin/python3
"""scsi_tool.py - two SCSI chores no libiscsi tool does, over bad_input.py's
minimal RFC 7143 client.

usage:
  scsi_tool.py wait-ready URL SECONDS
      TEST UNIT READY until the LU is ready, as an initiator waits out a
      SANITIZE (NOT READY, SANITIZE IN PROGRESS, SBC-3 4.11.1) or a becoming-
      ready LU. Exit 0 when ready; 1 naming what the LU still reported after
      SECONDS.
  scsi_tool.py sanitize URL [overwrite|block-erase]
      One SANITIZE (OVERWRITE: one pass of the pattern 0x5a), waits for its
      status without a time limit, prints "sanitize SECONDS" (bench/sanitize.sh).
URL is iscsi://HOST:PORT/TARGET_IQN/LUN. Exit 2 on usage error.
"""
import os
import re
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bad_input  # noqa: E402

NOT_READY, UNIT_ATTENTION = 0x02, 0x06
POLL = 0.2


def parse_url(url):
    m = re.match(r"^iscsi://([^/:]+):(\d+)/([^/]+)/(\d+)$", url)
    if not m:
        raise ValueError("not an iscsi://HOST:PORT/IQN/LUN URL: %s" % url)
    return m.group(1), int(m.group(2)), m.group(3), int(m.group(4))


def session(url):
    host, port, iqn, lun = parse_url(url)
    c = bad_input.Conn(host, port)
    c.login(iqn, b"\x80" + os.urandom(5))  # a session of its own, never a reinstatement
    return c, lun


def describe(key, asc, ascq):
    if key is None:
        return "no sense data"
    if (key, asc, ascq) == (NOT_READY, 0x04, 0x1B):
        return "NOT READY, SANITIZE IN PROGRESS"
    return "sense %x/%02x/%02x" % (key, asc, ascq)


def wait_ready(url, secs):
    end = time.monotonic() + secs
    c, lun = session(url)
    last = "nothing yet"
    try:
        while True:
            st, key, asc, ascq, _ = c.scsi(lun, bytes(6))
            if st == 0:
                return 0
            last = describe(key, asc, ascq)
            if key != UNIT_ATTENTION and key != NOT_READY:
                print("wait-ready: %s answered TEST UNIT READY with %s" % (url, last))
                return 1
            if time.monotonic() >= end:
                print("wait-ready: %s still %s after %d s" % (url, last, secs))
                return 1
            if key == NOT_READY:
                time.sleep(POLL)
    finally:
        c.close()


def sanitize(url, kind):
    c, lun = session(url)
    c.s.settimeout(None)  # a sanitize of a large LU takes as long as it takes
    if kind == "overwrite":
        pattern = b"\x5a" * 512
        param = struct.pack(">BBH", 0x01, 0, len(pattern)) + pattern
        cdb = struct.pack(">BB5xH", 0x48, 0x01, len(param))
    else:
        param = b""
        cdb = struct.pack(">BB5xH", 0x48, 0x02, 0)
    t0 = time.monotonic()
    for _ in range(3):
        st, key, asc, ascq, _ = c.scsi(lun, cdb, data_out=param)
        if key != UNIT_ATTENTION:
            break
    took = time.monotonic() - t0
    c.close()
    if st != 0:
        print("sanitize: %s: status 0x%02x, %s" % (url, st, describe(key, asc, ascq)))
        return 1
    print("sanitize %.2f" % took)
    return 0


def main():
    a = sys.argv[1:]
    try:
        if len(a) == 3 and a[0] == "wait-ready":
            return wait_ready(a[1], int(a[2]))
        if len(a) in (2, 3) and a[0] == "sanitize":
            kind = a[2] if len(a) == 3 else "overwrite"
            if kind in ("overwrite", "block-erase"):
                return sanitize(a[1], kind)
    except (bad_input.Closed, socket.timeout, OSError, RuntimeError, ValueError) as e:
        print("scsi_tool: %s: %s" % (type(e).__name__, e))
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
