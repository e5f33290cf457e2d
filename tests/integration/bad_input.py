#!/usr/bin/python3
"""bad_input.py - send one kind of malformed input to an iSCSI target.

usage: bad_input.py HOST PORT TARGET_IQN LUN CASE     (bad_input.py --list)

Exit status 0 when the target reacted as expected (prints what it saw),
1 when it did not, 2 on usage error. A minimal iSCSI initiator (RFC 7143)
written for this test only: no digests, no R2T handling, ERL 0.
"""
import os
import socket
import struct
import sys
import time

INITIATOR = "iqn.2026-11.io.s3tgt:bad-input"
TMO = 10.0

# RFC 7143 11.2: opcodes (initiator | 0x40 = immediate) and responses
OP_NOP_OUT, OP_SCSI_CMD, OP_LOGIN_REQ, OP_TEXT_REQ = 0x00, 0x01, 0x03, 0x04
OP_NOP_IN, OP_SCSI_RSP, OP_LOGIN_RSP, OP_DATA_IN, OP_REJECT = 0x20, 0x21, 0x23, 0x25, 0x3F
IMMEDIATE = 0x40


class Closed(Exception):
    pass


def bhs(opcode, flags=0, b2=0, b3=0, ahs_len=0, dlen=0, lun=b"\0" * 8,
        itt=1, rest=b""):
    """48-byte Basic Header Segment (RFC 7143 11.2.1); rest = bytes 20..47."""
    rest = rest.ljust(28, b"\0")
    assert len(rest) == 28 and len(lun) == 8
    return struct.pack(">BBBBB3s8sI", opcode, flags, b2, b3, ahs_len,
                       dlen.to_bytes(3, "big"), lun, itt) + rest


def pad4(data):
    return data + b"\0" * (-len(data) % 4)


def lun_field(lun):
    # SAM-5 single level, peripheral device addressing for LUN < 256
    return bytes([0, lun]) + b"\0" * 6


def keys(pairs):
    return b"".join(k.encode() + b"=" + v.encode() + b"\0" for k, v in pairs)


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=TMO)
        self.s.settimeout(TMO)
        self.itt = 1
        self.isid = b"\x80\x12\x34\x56\x00\x01"
        self.cmdsn = 1
        self.statsn = 0

    def close(self):
        self.s.close()

    def send(self, raw):
        self.s.sendall(raw)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise Closed()
            buf += chunk
        return buf

    def recv_pdu(self):
        """-> (bhs bytes, data bytes); raises Closed on EOF/reset."""
        try:
            h = self.recv_exact(48)
            ahs = h[4] * 4
            dlen = int.from_bytes(h[5:8], "big")
            self.recv_exact(ahs)
            data = self.recv_exact(dlen + (-dlen % 4))[:dlen]
        except (ConnectionResetError, BrokenPipeError):
            raise Closed()
        return h, data

    def closed_within(self, secs=TMO):
        """True if the target closes the connection (PDUs before EOF ignored)."""
        end = time.monotonic() + secs
        try:
            while time.monotonic() < end:
                self.s.settimeout(max(0.1, end - time.monotonic()))
                h, _ = self.recv_pdu()
                print("  target sent opcode 0x%02x before closing" % (h[0] & 0x3F))
        except Closed:
            return True
        except socket.timeout:
            return False
        return False

    def login_pdu(self, csg, nsg, transit, data, isid=None):
        flags = (0x80 if transit else 0) | (csg << 2) | nsg
        isid = isid or self.isid
        # ISID(6) TSIH(2) | CID(2) rsvd(2) CmdSN ExpStatSN
        rest = struct.pack(">HHII", 0, 0, self.cmdsn, self.statsn)
        pdu = bhs(OP_LOGIN_REQ | IMMEDIATE, flags, 0, 0, 0, len(data),
                  isid + b"\0\0", self.itt, rest)
        self.send(pdu + pad4(data))

    def login_exchange(self, csg, nsg, data):
        """one request/response; -> (status class, detail, response keys, T bit, NSG)."""
        self.login_pdu(csg, nsg, True, data)
        h, d = self.recv_pdu()
        if h[0] & 0x3F == OP_REJECT:
            return ("reject", h[2], {}, False, 0)
        if h[0] & 0x3F != OP_LOGIN_RSP:
            raise RuntimeError("unexpected opcode 0x%02x during login" % h[0])
        self.statsn = struct.unpack(">I", h[24:28])[0] + 1
        kv = {}
        for item in d.split(b"\0"):
            if b"=" in item:
                k, v = item.split(b"=", 1)
                kv[k.decode(errors="replace")] = v.decode(errors="replace")
        return (h[36], h[37], kv, bool(h[1] & 0x80), h[1] & 3)

    def login(self, target, isid=None):
        """Full login to a normal session: security stage, then operational stage.
        isid: another ISID than the default, for a session beside another one."""
        if isid:
            self.isid = isid
        st, det, kv, t, nsg = self.login_exchange(0, 1, keys([
            ("InitiatorName", INITIATOR), ("TargetName", target),
            ("SessionType", "Normal"), ("AuthMethod", "None")]))
        if st != 0:
            raise RuntimeError("security stage failed: class %s detail %s" % (st, det))
        for _ in range(10):
            if t and nsg == 1:
                break
            st, det, kv, t, nsg = self.login_exchange(0, 1, b"")
        st, det, kv, t, nsg = self.login_exchange(1, 3, keys([
            ("HeaderDigest", "None"), ("DataDigest", "None"),
            ("MaxRecvDataSegmentLength", "65536"), ("ErrorRecoveryLevel", "0"),
            ("ImmediateData", "Yes"), ("InitialR2T", "Yes")]))
        for _ in range(10):
            if st != 0 or (t and nsg == 3):
                break
            st, det, kv, t, nsg = self.login_exchange(1, 3, b"")
        if st != 0 or not (t and nsg == 3):
            raise RuntimeError("operational stage failed: class %s detail %s" % (st, det))
        # login PDUs are immediate: the first command carries the same CmdSN

    def scsi(self, lun, cdb, read_len=0, data_out=b""):
        """-> (status, sense key, asc, ascq, data). data_out goes as immediate
        data only (login offers ImmediateData=Yes; FirstBurstLength 64 KiB)."""
        flags = 0x80 | (0x40 if read_len else 0) | (0x20 if data_out else 0)  # F, R, W
        xfer = read_len or len(data_out)
        rest = struct.pack(">III", xfer, self.cmdsn, self.statsn) + cdb.ljust(16, b"\0")
        self.itt += 1
        self.send(bhs(OP_SCSI_CMD, flags, 0, 0, 0, len(data_out), lun_field(lun), self.itt, rest)
                  + pad4(data_out))
        self.cmdsn += 1
        data = b""
        while True:
            h, d = self.recv_pdu()
            op = h[0] & 0x3F
            if op == OP_DATA_IN:
                data += d
                if h[1] & 0x01:  # S bit: status in the Data-In PDU
                    self.statsn = struct.unpack(">I", h[24:28])[0] + 1
                    return (h[3], None, None, None, data)
            elif op == OP_SCSI_RSP:
                self.statsn = struct.unpack(">I", h[24:28])[0] + 1
                key = asc = ascq = None
                if len(d) >= 2:
                    sense = d[2:2 + struct.unpack(">H", d[:2])[0]]
                    if len(sense) >= 14 and sense[0] & 0x7F in (0x70, 0x71):
                        key, asc, ascq = sense[2] & 0x0F, sense[12], sense[13]
                    elif len(sense) >= 4 and sense[0] & 0x7F in (0x72, 0x73):
                        key, asc, ascq = sense[1] & 0x0F, sense[2], sense[3]
                return (h[3], key, asc, ascq, data)
            elif op == OP_NOP_IN and h[20:24] != b"\xff\xff\xff\xff":
                # a ping while the command runs (a long SANITIZE): answer it,
                # or the target drops the connection (RFC 7143 11.18, 11.19)
                rest = struct.pack(">III", struct.unpack(">I", h[20:24])[0], self.cmdsn, self.statsn)
                self.send(bhs(OP_NOP_OUT | IMMEDIATE, 0x80, 0, 0, 0, 0, h[8:16], 0xFFFFFFFF, rest))
            elif op == OP_REJECT:
                raise RuntimeError("target sent Reject, reason 0x%02x" % h[2])


# ---------------------------------------------------------------------------
# cases: each gets (host, port, iqn, lun) and returns True when the target
# behaved as expected. Printing explains what was observed.

def c_garbage(a):
    c = Conn(a.host, a.port)
    c.send(os.urandom(4096))
    ok = c.closed_within()
    print("  4 KiB of random bytes: connection %s" % ("closed" if ok else "still open"))
    return ok


def c_huge_dsl(a):
    c = Conn(a.host, a.port)
    # a login PDU announcing 16 MiB - 1 of data; RFC 7143 login data is bounded
    # by MaxRecvDataSegmentLength (8192 during login, 12.12)
    c.send(bhs(OP_LOGIN_REQ | IMMEDIATE, 0x81, 0, 0, 0, 0xFFFFFF,
               b"\x80\x12\x34\x56\x00\x01\0\0", 1) + b"A" * 1000)
    ok = c.closed_within()
    print("  login BHS with DataSegmentLength 0xFFFFFF: connection %s" % ("closed" if ok else "still open"))
    return ok


def c_huge_ahs(a):
    c = Conn(a.host, a.port)
    # 1020 bytes of AHS made of zero-length AHS headers, which no Login request
    # uses (RFC 7143 11.12): the target must skip or refuse them, not hang or crash
    data = keys([("InitiatorName", INITIATOR), ("TargetName", a.iqn),
                 ("SessionType", "Normal"), ("AuthMethod", "None")])
    c.send(bhs(OP_LOGIN_REQ | IMMEDIATE, 0x81, 0, 0, 255, len(data),
               b"\x80\x12\x34\x56\x00\x01\0\0", 1) + b"\0" * 1020 + pad4(data))
    try:
        h, _ = c.recv_pdu()
    except Closed:
        print("  login with TotalAHSLength 255: connection closed")
        return True
    print("  login with TotalAHSLength 255: opcode 0x%02x status class %s" % (h[0] & 0x3F, h[36]))
    return h[0] & 0x3F in (OP_REJECT, OP_LOGIN_RSP)


def login_expect_failure(a, data, what, csg=0, nsg=1):
    c = Conn(a.host, a.port)
    try:
        st, det, kv, _, _ = c.login_exchange(csg, nsg, data)
    except Closed:
        print("  %s: connection closed" % what)
        return True
    print("  %s: login status class %s detail %s keys %s" % (what, st, det, kv))
    return st not in (0, 1)  # 0 success, 1 redirect


def c_login_unknown_key(a):
    c = Conn(a.host, a.port)
    st, det, kv, _, _ = c.login_exchange(0, 1, keys([
        ("InitiatorName", INITIATOR), ("TargetName", a.iqn), ("SessionType", "Normal"),
        ("AuthMethod", "None"), ("X-com.example.Foo", "bar"), ("FrobnicateLevel", "7")]))
    print("  unknown keys: status class %s detail %s keys %s" % (st, det, kv))
    # RFC 7143 6.2.1: an unrecognised key is answered with NotUnderstood
    return st == 0 and kv.get("FrobnicateLevel") == "NotUnderstood"


def c_login_duplicate_key(a):
    # RFC 7143 6.2: redeclaring a key that may not be repeated MUST be
    # answered with Login reject (initiator error)
    return login_expect_failure(a, keys([
        ("InitiatorName", INITIATOR), ("InitiatorName", INITIATOR + "2"),
        ("TargetName", a.iqn), ("SessionType", "Normal"), ("AuthMethod", "None")]),
        "duplicate InitiatorName")


def c_login_bad_numeric(a):
    c = Conn(a.host, a.port)
    st, det, kv, t, nsg = c.login_exchange(0, 1, keys([
        ("InitiatorName", INITIATOR), ("TargetName", a.iqn), ("SessionType", "Normal"),
        ("AuthMethod", "None")]))
    if st != 0:
        print("  security stage failed: class %s" % st)
        return False
    try:
        st, det, kv, _, _ = c.login_exchange(1, 3, keys([
            ("MaxRecvDataSegmentLength", "lots"), ("MaxBurstLength", "99999999999999999999"),
            ("HeaderDigest", "ROT13")]))
    except Closed:
        print("  invalid values: connection closed")
        return True
    print("  invalid values: status class %s detail %s keys %s" % (st, det, kv))
    # RFC 7143 6.2: an invalid value is answered with Reject, or the login fails
    return st not in (0, 1) or kv.get("MaxRecvDataSegmentLength") == "Reject"


def c_login_missing_initiator(a):
    return login_expect_failure(a, keys([
        ("TargetName", a.iqn), ("SessionType", "Normal"), ("AuthMethod", "None")]),
        "no InitiatorName")


def c_login_unknown_target(a):
    return login_expect_failure(a, keys([
        ("InitiatorName", INITIATOR), ("TargetName", a.iqn + ".does-not-exist"),
        ("SessionType", "Normal"), ("AuthMethod", "None")]), "unknown TargetName")


def c_login_malformed_text(a):
    return login_expect_failure(a, b"InitiatorName" + b"\xff" * 40 + b"NoEqualsSign",
                                "key without '=' and without NUL")


def c_login_bad_version(a):
    c = Conn(a.host, a.port)
    data = keys([("InitiatorName", INITIATOR), ("TargetName", a.iqn),
                 ("SessionType", "Normal"), ("AuthMethod", "None")])
    rest = struct.pack(">HHII", 0, 0, 1, 0)
    # Version-max = Version-min = 0x7f: unsupported (RFC 7143 11.12.4)
    c.send(bhs(OP_LOGIN_REQ | IMMEDIATE, 0x81, 0x7F, 0x7F, 0, len(data),
               b"\x80\x12\x34\x56\x00\x01\0\0", 1, rest) + pad4(data))
    try:
        h, _ = c.recv_pdu()
    except Closed:
        print("  version 0x7f: connection closed")
        return True
    print("  version 0x7f: opcode 0x%02x status class %s detail %s" % (h[0] & 0x3F, h[36], h[37]))
    return h[0] & 0x3F == OP_LOGIN_RSP and h[36] == 2 and h[37] == 5


def c_scsi_before_login(a):
    c = Conn(a.host, a.port)
    rest = struct.pack(">III", 36, 1, 0) + bytes([0x12, 0, 0, 0, 36, 0]).ljust(16, b"\0")
    c.send(bhs(OP_SCSI_CMD, 0xC0, 0, 0, 0, 0, lun_field(a.lun), 1, rest))
    ok = c.closed_within()
    print("  INQUIRY before login: connection %s" % ("closed" if ok else "still open"))
    return ok


def c_text_before_login(a):
    c = Conn(a.host, a.port)
    data = keys([("SendTargets", "All")])
    c.send(bhs(OP_TEXT_REQ | IMMEDIATE, 0x80, 0, 0, 0, len(data), b"\0" * 8, 1,
               struct.pack(">III", 0xFFFFFFFF, 1, 0)) + pad4(data))
    ok = c.closed_within()
    print("  Text request before login: connection %s" % ("closed" if ok else "still open"))
    return ok


def scsi_expect(a, cdb, want, what, lun=None, read_len=0):
    c = Conn(a.host, a.port)
    c.login(a.iqn)
    for _ in range(3):
        st, key, asc, ascq, _ = c.scsi(a.lun if lun is None else lun, cdb, read_len)
        if key != 6:  # UNIT ATTENTION (e.g. power on, SAM-5 5.14) is reported once per I_T nexus
            break
    got = (st, key, asc, ascq)
    print("  %s: status 0x%02x sense key/ASC/ASCQ %s" % (what, st, "none" if key is None else "%x/%02x/%02x" % (key, asc, ascq)))
    c.close()
    return got == want


def c_bad_opcodes(a):
    ok = True
    # CHECK CONDITION, ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE (SPC-4 4.5.6)
    for op in (0x02, 0x0C, 0x59, 0xD5, 0xFF):
        ok &= scsi_expect(a, bytes([op]) + b"\0" * 9, (2, 5, 0x20, 0), "opcode 0x%02x" % op)
    return ok


def c_read_beyond_end(a):
    # READ(16) at LBA 2^63: LOGICAL BLOCK ADDRESS OUT OF RANGE (SBC-3 4.5)
    cdb = bytes([0x88, 0]) + (1 << 63).to_bytes(8, "big") + (1).to_bytes(4, "big") + b"\0\0"
    return scsi_expect(a, cdb, (2, 5, 0x21, 0), "READ(16) LBA 2^63", read_len=4096)


def c_bad_lun(a):
    # TEST UNIT READY to a LUN that does not exist: LOGICAL UNIT NOT SUPPORTED
    return scsi_expect(a, b"\0" * 6, (2, 5, 0x25, 0), "TEST UNIT READY LUN 200", lun=200)


def c_unknown_iscsi_opcode(a):
    c = Conn(a.host, a.port)
    c.login(a.iqn)
    c.send(bhs(0x1B, 0x80, 0, 0, 0, 0, b"\0" * 8, 99, struct.pack(">III", 0, c.cmdsn, c.statsn)))
    try:
        h, _ = c.recv_pdu()
    except Closed:
        print("  iSCSI opcode 0x1b: connection closed")
        return True
    print("  iSCSI opcode 0x1b: target answered opcode 0x%02x reason 0x%02x" % (h[0] & 0x3F, h[2]))
    return h[0] & 0x3F == OP_REJECT


def c_truncated_bhs(a):
    c = Conn(a.host, a.port)
    c.login(a.iqn)
    c.send(bhs(OP_SCSI_CMD, 0x80, 0, 0, 0, 0, lun_field(a.lun), 5)[:20])
    c.close()
    print("  20 of 48 BHS bytes, then disconnect")
    return True


def c_truncated_data(a):
    c = Conn(a.host, a.port)
    c.login(a.iqn)
    cdb = bytes([0x2A, 0, 0, 0, 0, 0, 0, 0, 8, 0])  # WRITE(10) 8 blocks, immediate data
    rest = struct.pack(">III", 4096, c.cmdsn, c.statsn) + cdb.ljust(16, b"\0")
    c.send(bhs(OP_SCSI_CMD, 0xA0, 0, 0, 0, 4096, lun_field(a.lun), 6, rest) + b"x" * 100)
    c.close()
    print("  WRITE(10) with 100 of 4096 immediate data bytes, then disconnect")
    return True


def c_truncated_login(a):
    c = Conn(a.host, a.port)
    data = keys([("InitiatorName", INITIATOR), ("TargetName", a.iqn)])
    c.send(bhs(OP_LOGIN_REQ | IMMEDIATE, 0x81, 0, 0, 0, len(data),
               b"\x80\x12\x34\x56\x00\x01\0\0", 1) + data[:10])
    c.close()
    print("  login PDU cut inside its data segment, then disconnect")
    return True


def c_connection_storm(a):
    socks = []
    for _ in range(100):
        socks.append(socket.create_connection((a.host, a.port), timeout=TMO))
    for i, s in enumerate(socks):
        if i % 2:
            s.sendall(b"\0" * 13)
        s.close()
    print("  100 connections opened, half sent 13 bytes, all closed")
    return True


CASES = {
    "garbage": c_garbage,
    "huge-data-segment-length": c_huge_dsl,
    "huge-ahs-length": c_huge_ahs,
    "login-unknown-key": c_login_unknown_key,
    "login-duplicate-key": c_login_duplicate_key,
    "login-invalid-values": c_login_bad_numeric,
    "login-missing-initiator-name": c_login_missing_initiator,
    "login-unknown-target": c_login_unknown_target,
    "login-malformed-text": c_login_malformed_text,
    "login-unsupported-version": c_login_bad_version,
    "scsi-before-login": c_scsi_before_login,
    "text-before-login": c_text_before_login,
    "bad-scsi-opcodes": c_bad_opcodes,
    "read-beyond-end": c_read_beyond_end,
    "nonexistent-lun": c_bad_lun,
    "unknown-iscsi-opcode": c_unknown_iscsi_opcode,
    "truncated-bhs": c_truncated_bhs,
    "truncated-data": c_truncated_data,
    "truncated-login": c_truncated_login,
    "connection-storm": c_connection_storm,
}


class Args:
    pass


def main():
    if sys.argv[1:] == ["--list"]:
        print("\n".join(CASES))
        return 0
    if len(sys.argv) != 6 or sys.argv[5] not in CASES:
        print(__doc__, file=sys.stderr)
        return 2
    a = Args()
    a.host, a.port, a.iqn, a.lun = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    try:
        ok = CASES[sys.argv[5]](a)
    except (Closed, socket.timeout, OSError, RuntimeError) as e:
        print("  error: %s: %s" % (type(e).__name__, e))
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
