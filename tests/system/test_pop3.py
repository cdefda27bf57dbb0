"""
test_pop3.py - POP3 profiles (pop3s, pop3+starttls, pop3) against the test
Dovecot: the inbox lands in the archive byte for byte as RETR serves it
(dot-unstuffed), later runs retrieve only what has a new UIDL, the
maildrop keeps its messages and UIDLs, dot lines and a missing final
newline survive, and a refused login names the server's -ERR without
leaking the password.  Two scripted servers on 127.0.0.1 cover what
Dovecot will not do: drop the connection in the middle of RETR, and
leave STLS out of CAPA.

What "the bytes RETR serves" are is computed here by a small socket
client with its own unstuffing, independent of the C decoder.  Dovecot's
log line for each POP3 logout ("retr=N/..., del=N/...") tells how many
messages a session retrieved and that it deleted none.
"""

import re
import socket
import threading
import time

import pytest

import mailgen
from conftest import Archive, sha256, error_texts

CRLF = b"\r\n"


# ---- what the server holds, read without mailstow -------------------------


class RawPop3:
    """Plain-text POP3 over a socket: STAT, UIDL and RETR bytes exactly as
    the server sends them, minus byte-stuffing and the terminator."""

    def __init__(self, port, user, password):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.sock.makefile("rb")
        self.status()
        self.cmd("USER %s" % user)
        self.cmd("PASS %s" % password)

    def status(self):
        line = self.f.readline()
        assert line.startswith(b"+OK"), line
        return line[3:].strip()

    def cmd(self, text):
        self.sock.sendall(text.encode() + CRLF)
        return self.status()

    def multi(self, text):
        self.cmd(text)
        out = []
        while True:
            line = self.f.readline()
            assert line.endswith(b"\n"), "truncated reply to %s" % text
            if line == b".\r\n":
                return out
            out.append(line[1:] if line.startswith(b".") else line)

    def close(self):
        self.cmd("QUIT")
        self.sock.close()


def logouts(dc, user):
    return [m for m in LOGOUT.finditer(dc.log_text())
            if m.group("user") == user.name]


def maildrop(dc, user):
    """(count, [uidl in order], {uidl: bytes}) of the user's maildrop.
    Returns only once Dovecot has logged this session's logout, so that a
    later run_logged() does not take it for the run's own session."""
    seen = len(logouts(dc, user))
    c = RawPop3(dc.ports["pop3"], user.name, user.password)
    try:
        count = int(c.cmd("STAT").split()[0])
        uidls = [l.split()[1].decode() for l in c.multi("UIDL")]
        msgs = {u: b"".join(c.multi("RETR %d" % (i + 1)))
                for i, u in enumerate(uidls)}
    finally:
        c.close()
    deadline = time.monotonic() + 5
    while len(logouts(dc, user)) <= seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert count == len(uidls)
    return count, uidls, msgs


LOGOUT = re.compile(r"pop3\((?P<user>[^)]*)\).*Logged out .*"
                    r"retr=(?P<retr>\d+)/\d+, del=(?P<dele>\d+)/\d+")


def run_logged(archive, dc, user, prof):
    """Run `prof` and return (Result, protocol, [(retr, del)] of the POP3
    sessions of `user` that Dovecot logged meanwhile)."""
    start = len(dc.log_text())
    r, proto = archive.run(prof["name"])
    sessions = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        sessions = [(int(m.group("retr")), int(m.group("dele")))
                    for m in LOGOUT.finditer(dc.log_text()[start:])
                    if m.group("user") == user.name]
        if sessions or r.rc != 0:
            break
        time.sleep(0.05)
    return r, proto, sessions


def pop3_profile(archive, dc, user, protocol="pop3s", **over):
    """A POP3 profile: like an IMAP one, but without folders."""
    return archive.profile(dc, user, protocol=protocol,
                           folders=Archive.DELETE, **over)


def inbox_user(dc, messages):
    """A fresh user whose inbox holds `messages` (bytes), delivered
    without logging in."""
    user = dc.add_user()
    for raw in messages:
        dc.deliver(user, "INBOX", raw)
    return user


def check_run(r, proto, found, archived):
    assert r.rc == 0, r
    assert proto["status"] == "succeeded", r
    c = proto["counts"]
    assert (c["found"], c["archived"], c["skipped"], c["failed"]) == \
        (found, archived, found - archived, 0), c
    assert not error_texts(proto), proto
    assert [f["folder"] for f in proto["folders"]] == ["INBOX"], proto


# ---- against Dovecot -----------------------------------------------------------


@pytest.mark.parametrize("protocol", ["pop3s", "pop3+starttls", "pop3"])
def test_cold_run_then_nothing_new(dovecot, archive, seeded, protocol):
    user, imap = seeded()		# the standard mailbox, a 5 MB one too
    count, uidls, msgs = maildrop(dovecot, user)
    assert count == len(imap["INBOX"]) >= 10
    distinct = set(msgs.values())
    prof = pop3_profile(archive, dovecot, user, protocol)
    archive.write_config(prof)

    r, proto, sessions = run_logged(archive, dovecot, user, prof)
    check_run(r, proto, count, len(distinct))
    assert sessions == [(count, 0)], "retrieved/deleted: %s" % sessions
    files = archive.files()
    assert files == {sha256(m): m for m in distinct}
    texts = " ".join(e["text"] for e in proto["events"])
    if protocol == "pop3":
        assert "not encrypted" in texts, proto["events"]
    else:
        assert "TLSv1" in texts, proto["events"]

    # Second run: every UIDL is known, nothing is even retrieved.
    r, second, sessions = run_logged(archive, dovecot, user, prof)
    check_run(r, second, count, 0)
    assert second["run"] > proto["run"]
    assert sessions == [(0, 0)], "retrieved/deleted: %s" % sessions
    assert archive.files() == files

    # The maildrop is as it was: same count, same UIDLs, same bytes.
    assert maildrop(dovecot, user) == (count, uidls, msgs)
    archive.assert_secret_absent(user.password)


def test_new_message_is_the_only_one_archived(dovecot, archive):
    g = mailgen.MailGen(seed=3101)
    user = inbox_user(dovecot, [g.message().raw for _ in range(3)])
    prof = pop3_profile(archive, dovecot, user)
    archive.write_config(prof)
    r, proto, _ = run_logged(archive, dovecot, user, prof)
    check_run(r, proto, 3, 3)
    before = archive.files()

    dovecot.deliver(user, "INBOX", g.message(kind="mixed",
                                             attachment=5000).raw)
    count, uidls, msgs = maildrop(dovecot, user)
    new = msgs[uidls[-1]]
    r, proto, sessions = run_logged(archive, dovecot, user, prof)
    check_run(r, proto, 4, 1)
    assert sessions == [(1, 0)], "retrieved/deleted: %s" % sessions
    after = archive.files()
    assert set(after) - set(before) == {sha256(new)}
    assert after[sha256(new)] == new


def test_dot_lines_and_missing_final_newline(dovecot, archive):
    dots = CRLF.join([
        b"From: Dot Tester <dots@example.org>",
        b"To: alice@example.org",
        b"Subject: lines that start with dots",
        b"Message-ID: <dots.1@example.org>",
        b"",
        b".",
        b"..",
        b".hidden",
        b"...three",
        b"a line. with. dots.",
        b". ",
        b"end",
    ]) + CRLF
    bare = mailgen.MailGen(seed=3102).message(final_newline=False).raw
    assert not bare.endswith(b"\n")
    user = inbox_user(dovecot, [dots, bare])
    count, uidls, msgs = maildrop(dovecot, user)
    imap = dovecot.fetch_all(user)["INBOX"]
    got_dots, got_bare = msgs[uidls[0]], msgs[uidls[1]]
    assert got_dots == imap[1] and b"\r\n.\r\n..\r\n.hidden" in got_dots
    # RFC 1939 3: every line of a multi-line reply ends in CRLF, so the
    # server adds one; the archive keeps what RETR delivers.
    assert got_bare == imap[2] + CRLF

    prof = pop3_profile(archive, dovecot, user)
    archive.write_config(prof)
    r, proto, _ = run_logged(archive, dovecot, user, prof)
    check_run(r, proto, 2, 2)
    assert archive.files() == {sha256(got_dots): got_dots,
                               sha256(got_bare): got_bare}


def test_wrong_password(dovecot, archive):
    user = inbox_user(dovecot, [mailgen.MailGen(seed=3103).message().raw])
    wrong = "Wrong-%s-pw" % sha256(user.name.encode())[:12]
    prof = pop3_profile(archive, dovecot, user, password=wrong)
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 1, r
    assert proto["status"] == "failed", r
    assert proto["counts"]["archived"] == 0
    text = " ".join(error_texts(proto))
    # Dovecot: "-ERR [AUTH] Authentication failed."
    assert "[AUTH]" in text and "Authentication failed" in text, text
    assert archive.files() == {}
    archive.assert_secret_absent(wrong)
    archive.assert_secret_absent(user.password)


# ---- scripted servers -------------------------------------------------------


class FakePop3:
    """A POP3 server in a thread for one connection at a time.  Offers
    USER and UIDL (and STLS if asked to), serves `messages`
    ({uidl: bytes}) with byte-stuffing, and can drop the connection after
    `cut` bytes of the reply to RETR `cut_msg`.  Records every command."""

    def __init__(self, messages, capa=(b"USER", b"UIDL"), cut_msg=None,
                 cut=0):
        self.messages = list(messages.items())
        self.capa = capa
        self.cut_msg = cut_msg
        self.cut = cut
        self.commands = []
        self.lsn = socket.socket()
        self.lsn.bind(("127.0.0.1", 0))
        self.lsn.listen(4)
        self.port = self.lsn.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.lsn.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(20)
                try:
                    self._session(conn)
                except OSError:
                    pass

    @staticmethod
    def _stuff(raw):
        lines = raw.split(b"\n")
        body = b"\n".join(b"." + l if l.startswith(b".") else l
                          for l in lines)
        if not body.endswith(CRLF):
            body += CRLF
        return body + b".\r\n"

    def _session(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"+OK fake ready\r\n")
        for line in f:
            cmd = line.rstrip(b"\r\n").decode(errors="replace")
            self.commands.append(cmd)
            verb, _, arg = cmd.partition(" ")
            verb = verb.upper()
            if verb == "CAPA":
                conn.sendall(b"+OK\r\n" + b"".join(c + CRLF for c in
                                                   self.capa) + b".\r\n")
            elif verb in ("USER", "PASS"):
                conn.sendall(b"+OK\r\n")
            elif verb == "STAT":
                conn.sendall(b"+OK %d %d\r\n" % (
                    len(self.messages),
                    sum(len(m) for _, m in self.messages)))
            elif verb in ("UIDL", "LIST"):
                out = b"+OK\r\n"
                for i, (u, m) in enumerate(self.messages):
                    out += b"%d %s\r\n" % (i + 1, u.encode() if verb ==
                                           "UIDL" else b"%d" % len(m))
                conn.sendall(out + b".\r\n")
            elif verb == "RETR":
                n = int(arg)
                reply = b"+OK\r\n" + self._stuff(self.messages[n - 1][1])
                if n == self.cut_msg:
                    conn.sendall(reply[:self.cut])
                    return
                conn.sendall(reply)
            elif verb == "QUIT":
                conn.sendall(b"+OK bye\r\n")
                return
            else:
                conn.sendall(b"-ERR not here\r\n")

    def close(self):
        # shutdown() wakes the thread blocked in accept(); close() alone
        # would leave it waiting on the old socket, and a signal would
        # restart its accept() on this descriptor *number*, by then
        # another test's listener, stealing that test's connection.
        try:
            self.lsn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsn.close()
        self.thread.join(timeout=10)


@pytest.fixture
def fake_pop3():
    servers = []

    def make(*args, **kw):
        s = FakePop3(*args, **kw)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.close()


def fake_profile(archive, dc, user, server, protocol="pop3"):
    """A profile for a FakePop3 (user: a harness User for its name and
    password; dc: the Dovecot whose CA file a TLS profile names)."""
    class _Srv:
        host = "127.0.0.1"
        ports = {"pop3": server.port, "pop3s": server.port}
        ca_file = dc.ca_file
    return pop3_profile(archive, _Srv, user, protocol)


def test_dropped_mid_retr_records_no_partial_message(dovecot, archive,
                                                     fake_pop3):
    g = mailgen.MailGen(seed=3104)
    first = g.message().raw
    second = g.message(kind="mixed", attachment=20000).raw
    user = dovecot.add_user()		# a name and a password, nothing more
    cut = fake_pop3({"u-1": first, "u-2": second}, cut_msg=2, cut=9000)
    prof = fake_profile(archive, dovecot, user, cut)
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 1 and proto["status"] == "failed", r
    assert "message 2" in " ".join(error_texts(proto)), proto
    assert archive.files() == {sha256(first): first}
    assert not any(c.upper().startswith("DELE") for c in cut.commands)

    # The next run gets the whole message, and only that one.
    whole = fake_pop3({"u-1": first, "u-2": second})
    prof = fake_profile(archive, dovecot, user, whole)
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    check_run(r, proto, 2, 1)
    assert archive.files() == {sha256(first): first, sha256(second): second}
    assert [c for c in whole.commands if c.startswith("RETR")] == ["RETR 2"]
    assert not any(c.upper().startswith("DELE") for c in whole.commands)


def test_stls_missing_means_no_credentials(dovecot, archive, fake_pop3):
    user = dovecot.add_user()
    srv = fake_pop3({"u-1": b"Subject: x\r\n\r\nbody\r\n"})
    prof = fake_profile(archive, dovecot, user, srv,
                        protocol="pop3+starttls")
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 1 and proto["status"] == "failed", r
    assert "STLS" in " ".join(error_texts(proto)), proto
    assert srv.commands == ["CAPA"], srv.commands
    archive.assert_secret_absent(user.password)
