"""
test_hostile_parse.py - what a hostile server can put into responses:
absurd literal sizes (isync CVE-2021-3657), endless lines, NULs, deep
nesting, bad UIDs, unasked-for FETCH data, huge UID ranges, control bytes
in [ALERT] text, and servers that trickle or chatter forever (fetchmail
CVE-2011-1947), over IMAP and POP3.  Each case asserts the outcome: the
session is refused or the item skipped, memory stays small, no control
byte reaches a protocol text, and the run ends within a bound.  Hostile
mailbox names and UIDLs: test_hostile_names.py (it imports the helpers
here).
"""

import os
import time

import pytest

import hostile
from conftest import sha256
from hostile import (FakeImap, Folder, HostileServer, Stopped, event_texts,
                     fetch_response, run_measured)

# Peak RSS of a run (mailstow needs ~10 MiB, plus 8 MiB for a longest line).
MAXRSS_KIB = hostile.rss_bound_kib(64)


def msg(i, extra=b""):
    return (b"Subject: parse %d\r\nMessage-ID: <p%d@hostile>\r\n\r\n"
            b"body %d\r\n" % (i, i, i)) + extra


def run_profile(archive, certs, hs, timeout="5s", run_timeout=60, **over):
    prof = hostile.profile(archive, hs, certs, timeout=timeout, **over)
    archive.write_config(prof)
    r, rss = run_measured(archive, "run", "--json", prof["name"],
                          timeout=run_timeout)
    if os.environ.get("HOSTILE_VERBOSE"):
        print("peak RSS %d KiB" % rss)
    assert r.out.strip(), "no protocol printed\n%s" % r
    return r, r.json(), rss


def assert_failed(r, proto, keywords):
    assert r.rc == 1, str(r)
    assert proto["status"] == "failed", str(r)
    errors = event_texts(proto, "error")
    text = " ".join(errors).lower()
    assert any(k.lower() in text for k in keywords), \
        "error events %r name none of %r" % (errors, keywords)


def test_fake_server_baseline(archive, certs):
    msgs = [msg(i) for i in range(3)]
    srv = FakeImap([Folder("INBOX", msgs)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        r, proto, _ = run_profile(archive, certs, hs)
    assert r.rc == 0, str(r)
    assert proto["counts"]["archived"] == 3
    assert set(archive.files()) == {sha256(m) for m in msgs}
    assert not hs.errors
    assert_read_only(hs)


READ_ONLY = {"CAPABILITY", "AUTHENTICATE", "LOGIN", "LIST", "EXAMINE",
             "UID SEARCH", "UID FETCH", "LOGOUT", "NOOP"}


def assert_read_only(hs):
    """Rule 2: nothing but reading commands, bodies with BODY.PEEK[]."""
    cmds = hs.commands()
    assert set(cmds) <= READ_ONLY, "commands that may change the " \
        "server: %r" % sorted(set(cmds) - READ_ONLY)
    for line in hs.all_lines():
        if b" UID FETCH " in line:
            assert b"BODY.PEEK[]" in line and b"BODY[]" not in \
                line.replace(b"BODY.PEEK[]", b""), line


def test_response_codes_in_the_wrong_context(archive, certs):
    """Codes where they do not belong change nothing: [READ-WRITE] on
    EXAMINE, [CAPABILITY ...] and [UIDVALIDITY]/[UIDNEXT] with odd values
    in FETCH and LIST answers, write permissions in [PERMANENTFLAGS], an
    unknown code with a literal-looking argument.  The run archives everything,
    stays read-only, and records the right UIDVALIDITY."""
    msgs = [msg(i) for i in range(1, 4)]

    class S(FakeImap):
        def on_list(self, tag, rest):
            self.conn.send(self.list_line(self.folders[0]) +
                           b"* OK [UIDVALIDITY 0] stray\r\n" + tag +
                           b" OK [UIDNEXT 4294967295] LIST done\r\n")

        def on_examine(self, tag, rest):
            f = self.selected = self.folders[0]
            self.conn.send(self.examine_lines(f) +
                           b"* OK [PERMANENTFLAGS (\\* \\Deleted)] rw\r\n"
                           b"* OK [XWEIRD {5}] not a literal\r\n" +
                           tag + b" OK [READ-WRITE] EXAMINE done\r\n")

        def answer_fetch(self, tag, uids):
            self.conn.send(
                b"* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] stray\r\n"
                b"* OK [UIDNEXT 1:4294967295] stray\r\n" +
                b"".join(self.fetch_one(u) for u in uids) + tag +
                b" OK [CAPABILITY IMAP4rev1] FETCH done\r\n")
    srv = S([Folder("INBOX", msgs, uidvalidity=77)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        r, proto, _ = run_profile(archive, certs, hs)
    assert r.rc == 0, str(r)
    assert proto["counts"]["archived"] == 3
    assert_read_only(hs)
    for m in archive.messages("alice"):
        assert [loc["uidvalidity"] for loc in m["locations"]] == [77]


# ---- literal sizes -------------------------------------------------------------


class HugeLiteral(FakeImap):
    """Announces a literal of `size` bytes for UID 1 and then waits."""
    size = b"0"

    def on_fetch(self, tag, rest):
        self.conn.send(b"* 1 FETCH (UID 1 RFC822.SIZE 10 BODY[] {" +
                       self.size + b"}\r\n" + b"x" * 100)
        self.conn.wait_closed(20)
        raise Stopped()


@pytest.mark.parametrize("size", [b"2147483648", b"4294967296",
                                  b"4294967306", b"18446744073709551616",
                                  b"99999999999999999999"],
                         ids=["2^31", "2^32", "2^32+10", "2^64", "20digits"])
def test_huge_literal_refused_before_allocation(archive, certs, size):
    srv = HugeLiteral([Folder("INBOX", [msg(1)])])
    srv.size = size
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        r, proto, rss = run_profile(archive, certs, hs)
    assert_failed(r, proto, ["literal larger than", "too large", "literal"])
    assert r.seconds < 10, "took %.1fs" % r.seconds
    assert rss < MAXRSS_KIB, "peak RSS %d KiB" % rss
    assert hs.conns[0].closed_by_client
    assert archive.files() == {}
    assert os.listdir(archive.path / "tmp") == []


def test_message_above_max_message_size_is_skipped(archive, certs):
    """A literal over the profile's max_message_size (but not absurd) is
    drained, recorded as a failed item, and the rest is archived."""
    big = msg(2, b"B" * 4000)
    msgs = [msg(1), big, msg(3)]
    srv = FakeImap([Folder("INBOX", msgs)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        r, proto, _ = run_profile(archive, certs, hs,
                                  max_message_size="1K")
    assert r.rc == 1, str(r)
    assert proto["status"] == "completed_with_errors", str(r)
    assert proto["counts"]["archived"] == 2
    assert proto["counts"]["failed"] == 1
    assert set(archive.files()) == {sha256(msgs[0]), sha256(msgs[2])}
    errs = [e for e in proto["events"] if e["level"] == "error"]
    assert any(e["uid"] == 2 and "max_message_size" in e["text"]
               for e in errs), errs


class StreamedHuge(FakeImap):
    """UID 2 is `huge` bytes long and really sent (in chunks, as long as
    the client reads); UIDs 1 and 3 are normal."""
    huge = 300 * 1000 * 1000

    def fetch_one(self, uid):
        return b"" if uid == 2 else FakeImap.fetch_one(self, uid)

    def answer_fetch(self, tag, uids):
        for u in uids:
            if u == 2 and not self.want_body:
                self.conn.send(b"* 2 FETCH (UID 2 RFC822.SIZE %d)\r\n"
                               % self.huge)
                continue
            if u != 2:
                self.conn.send(self.fetch_one(u))
                continue
            self.conn.send(b"* 2 FETCH (UID 2 RFC822.SIZE %d BODY[] {%d}\r\n"
                           % (self.huge, self.huge))
            chunk = b"Z" * (1 << 20)
            left = self.huge
            while left > 0:
                n = min(left, len(chunk))
                self.conn.send(chunk[:n])
                left -= n
            self.conn.send(b")\r\n")
        self.conn.send(tag + b" OK FETCH done\r\n")


def test_message_above_parser_bound_does_not_block_the_folder(archive, certs):
    """A 300 MB message with the default max_message_size (256M): it is
    not archived, but it must not stop UID 3 (fetched in the same batch)
    from being archived - not in this run, and not in any later one."""
    msgs = [msg(1), b"placeholder", msg(3)]
    srv = StreamedHuge([Folder("INBOX", msgs)])
    with HostileServer(srv, tls="implicit", cert=certs.server,
                       lifetime=60) as hs:
        for _ in range(2):
            r, proto, rss = run_profile(archive, certs, hs, timeout="10s")
    assert rss < MAXRSS_KIB, "peak RSS %d KiB" % rss
    files = archive.files()
    assert sha256(msgs[0]) in files
    assert sha256(msgs[2]) in files, \
        "UID 3 was never archived: one oversized message blocks the " \
        "messages after it\n%s" % r
    assert proto["status"] == "completed_with_errors", str(r)


# ---- lines, NULs, nesting --------------------------------------------------------


def test_endless_line_without_crlf(archive, certs):
    class S(FakeImap):
        def on_capability(self, tag, rest):
            sent = self.conn.send_until_closed(
                b"* OK " + b"A" * (1 << 20), limit=64 << 20)
            self.conn.server.log("sent %d" % sent)
            self.sent = sent
            raise Stopped()
    srv = S([Folder("INBOX", [msg(1)])])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        r, proto, rss = run_profile(archive, certs, hs)
    assert_failed(r, proto, ["longer than"])
    assert hs.conns[0].closed_by_client, "client never disconnected"
    assert srv.sent < 32 << 20, "client read %d bytes of one line" % srv.sent
    assert rss < MAXRSS_KIB, "peak RSS %d KiB" % rss


@pytest.mark.parametrize("where", ["greeting", "list", "capability"])
def test_nul_in_response_line(archive, certs, where):
    class S(FakeImap):
        def greet(self):
            if where == "greeting":
                self.conn.send(b"* OK hello\x00world\r\n")
            else:
                FakeImap.greet(self)

        def on_capability(self, tag, rest):
            if where == "capability":
                self.conn.send(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\x00X\r\n"
                               + tag + b" OK done\r\n")
            else:
                FakeImap.on_capability(self, tag, rest)

        def on_list(self, tag, rest):
            self.conn.send(b'* LIST () "/" "IN\x00BOX"\r\n' + tag +
                           b" OK LIST done\r\n")
    with HostileServer(S([Folder("INBOX", [msg(1)])]), tls="implicit",
                       cert=certs.server) as hs:
        r, proto, _ = run_profile(archive, certs, hs)
    assert_failed(r, proto, ["nul"])
    assert archive.files() == {}
    for t in event_texts(proto):
        assert "\x00" not in t


def test_nul_inside_message_literal_archived_byte_exact(archive, certs):
    weird = (b"Subject: binary\r\nMessage-ID: <nul@hostile>\r\n\r\n"
             b"a\x00b\x00\x00c\r\n\x00\r\n.\r\n\xff\xfe\r\n")
    msgs = [msg(1), weird]
    srv = FakeImap([Folder("INBOX", msgs)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        r, proto, _ = run_profile(archive, certs, hs)
    assert r.rc == 0, str(r)
    files = archive.files()
    assert files[sha256(weird)] == weird
    shown = archive.cli("show", sha256(weird))
    assert shown.rc == 0 and shown.out == weird


def test_deeply_nested_parentheses(archive, certs):
    class S(FakeImap):
        def on_fetch(self, tag, rest):
            self.conn.send(b"* 1 FETCH (UID 1 X " + b"(" * 100000 +
                           b")" * 100000 + b")\r\n" + tag + b" OK done\r\n")
            self.conn.wait_closed(10)
            raise Stopped()
    with HostileServer(S([Folder("INBOX", [msg(1)])]), tls="implicit",
                       cert=certs.server) as hs:
        r, proto, rss = run_profile(archive, certs, hs)
    assert_failed(r, proto, ["nested deeper"])
    assert rss < MAXRSS_KIB


# ---- UIDs ------------------------------------------------------------------------


BAD_UIDS = [b"0", b"4294967296", b"-1", b"abc", b"1.5",
            b"99999999999999999999"]


@pytest.mark.parametrize("bad", BAD_UIDS,
                         ids=[b.decode() for b in BAD_UIDS])
def test_bad_uid_in_search(archive, certs, bad):
    class S(FakeImap):
        def search_result(self, f):
            return b"1 " + bad + b" 2"
    with HostileServer(S([Folder("INBOX", [msg(1), msg(2)])]),
                       tls="implicit", cert=certs.server) as hs:
        r, proto, _ = run_profile(archive, certs, hs)
    assert_failed(r, proto, ["invalid uid"])
    assert "UID FETCH" not in hs.commands()
    assert archive.files() == {}


@pytest.mark.parametrize("bad", BAD_UIDS,
                         ids=[b.decode() for b in BAD_UIDS])
def test_bad_uid_in_fetch(archive, certs, bad):
    body = msg(1)

    class S(FakeImap):
        def fetch_one(self, uid):
            return b"* 1 FETCH (UID " + bad + b" BODY[] {%d}\r\n" % \
                len(body) + body + b")\r\n"
    with HostileServer(S([Folder("INBOX", [body])]), tls="implicit",
                       cert=certs.server) as hs:
        r, proto, _ = run_profile(archive, certs, hs)
    assert_failed(r, proto, ["invalid uid"])
    assert archive.files() == {}


def test_fetch_for_uid_never_asked_for(archive, certs):
    """Unasked-for UIDs and a second copy of an asked one are ignored (a
    warning each), never archived; the asked ones are archived."""
    msgs = [msg(1), msg(2)]
    stray = msg(99, b"never asked for\r\n")
    again = msg(2, b"a different body for UID 2\r\n")

    class S(FakeImap):
        def on_fetch(self, tag, rest):
            self.conn.send(fetch_response(7, 99, stray) +
                           self.fetch_one(1) + self.fetch_one(2) +
                           fetch_response(2, 2, again) +
                           fetch_response(8, 4000000000, stray) +
                           tag + b" OK FETCH done\r\n")
    with HostileServer(S([Folder("INBOX", msgs)]), tls="implicit",
                       cert=certs.server) as hs:
        r, proto, _ = run_profile(archive, certs, hs)
    assert r.rc == 0, str(r)
    assert proto["counts"]["archived"] == 2
    assert set(archive.files()) == {sha256(m) for m in msgs}
    warns = [e for e in proto["events"] if e["level"] == "warning"]
    assert any("99" in e["text"] for e in warns), warns
    assert len([e for e in warns if "not asked for" in e["text"]]) >= 3, warns
    listed = archive.messages("alice")
    assert sorted(m["hash"] for m in listed) == sorted(sha256(m) for m in msgs)


def test_esearch_range_to_2_32_refused(archive, certs):
    class S(FakeImap):
        def on_search(self, tag, rest):
            self.conn.send(b'* ESEARCH (TAG "' + tag + b'") UID ALL '
                           b"1:4294967295\r\n" + tag + b" OK done\r\n")
    srv = S([Folder("INBOX", [msg(i) for i in range(3)])], esearch=True)
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        r, proto, rss = run_profile(archive, certs, hs)
    assert any(c == "UID SEARCH" for c in hs.commands())
    assert b"RETURN" in b" ".join(hs.all_lines()), "ESEARCH was not used"
    assert_failed(r, proto, ["4294967295"])
    assert "UID FETCH" not in hs.commands()
    assert rss < MAXRSS_KIB, "peak RSS %d KiB" % rss
    assert r.seconds < 10


# ---- [ALERT] and control bytes ---------------------------------------------------


def no_control(text):
    return not any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in text)


def check_texts_clean(archive, name, proto, r):
    for e in proto["events"]:
        assert no_control(e["text"]), "raw control byte in %r" % e["text"]
    txt = archive.cli("protocol", "--last", name)
    for out in (txt.out, txt.err, r.out, r.err):
        for bad in (b"\x1b", b"\x07", b"\x00", b"\r"):
            assert bad not in out, "raw %r in output:\n%r" % (bad, out)
    for line in txt.stdout.splitlines():
        assert not line.lstrip().startswith("forged"), line


def test_alert_with_escape_sequences_is_escaped(archive, certs):
    class S(FakeImap):
        def on_authenticate(self, tag, rest):
            self.conn.send(b"* OK [ALERT] \x1b[31mred\x1b[0m\x07 bell "
                           b"\x7f del \xc3\x28 bad-utf8\r\n")
            FakeImap.on_authenticate(self, tag, rest)
    with HostileServer(S([Folder("INBOX", [msg(1)])]), tls="implicit",
                       cert=certs.server) as hs:
        r, proto, _ = run_profile(archive, certs, hs)
    assert r.rc == 0, str(r)
    alerts = [t for t in event_texts(proto) if "red" in t and "bell" in t]
    assert alerts, "the ALERT was not shown: %r" % event_texts(proto)
    check_texts_clean(archive, "alice", proto, r)


@pytest.mark.parametrize("tail", [
    b"first\rforged: mailstow: run 1 succeeded",
    b"first\nforged: mailstow: run 1 succeeded",
    b"first\r\n\rforged line",
], ids=["CR", "LF", "CRLF-CR"])
def test_alert_with_line_breaks_cannot_forge_lines(archive, certs, tail):
    class S(FakeImap):
        def on_authenticate(self, tag, rest):
            self.conn.send(b"* OK [ALERT] " + tail + b"\r\n")
            FakeImap.on_authenticate(self, tag, rest)
    with HostileServer(S([Folder("INBOX", [msg(1)])]), tls="implicit",
                       cert=certs.server) as hs:
        r, proto, _ = run_profile(archive, certs, hs)
    assert r.rc in (0, 1), str(r)
    check_texts_clean(archive, "alice", proto, r)
    for t in event_texts(proto):
        assert not t.startswith("forged"), t




# ---- servers that never finish ------------------------------------------------------


@pytest.mark.parametrize("where", ["literal", "line"])
def test_trickling_server_ends_within_bound(archive, certs, where):
    """One byte every 2 s forever during FETCH, server.timeout 3s: the
    run ends well within 20 s."""
    body = msg(1, b"T" * 500)

    class S(FakeImap):
        def on_fetch(self, tag, rest):
            head = b"* 1 FETCH (UID 1 RFC822.SIZE %d BODY[] {%d}\r\n" % (
                len(body), len(body))
            if where == "literal":
                self.conn.send(head)
                self.conn.trickle(body, 2.0)
            else:
                self.conn.trickle(head, 2.0)
            self.conn.wait_closed(60)
    with HostileServer(S([Folder("INBOX", [body])]), tls="implicit",
                       cert=certs.server, lifetime=60) as hs:
        t0 = time.monotonic()
        r, proto, _ = run_profile(archive, certs, hs, timeout="3s",
                                  run_timeout=40)
        elapsed = time.monotonic() - t0
    assert elapsed < 20, "run took %.1fs" % elapsed
    assert_failed(r, proto, ["no progress", "timed out", "timeout"])
    assert archive.files() == {}


def test_chattering_server_ends_within_bound(archive, certs):
    """During FETCH the server never answers, but sends a harmless
    untagged response every second forever.  Each is a complete response,
    so an idle timer never fires; a per-command deadline must still end
    the run (server.timeout 3s; bound 12 s, the server gives up at 16).
    """
    class S(FakeImap):
        def on_fetch(self, tag, rest):
            n = 0
            while True:
                n += 1
                self.conn.send(b"* OK still working %d\r\n" % n
                               if n % 2 else b"* 1 EXISTS\r\n")
                self.conn.sleep(1.0)
    with HostileServer(S([Folder("INBOX", [msg(1)])]), tls="implicit",
                       cert=certs.server, lifetime=16) as hs:
        t0 = time.monotonic()
        r, proto, _ = run_profile(archive, certs, hs, timeout="3s",
                                  run_timeout=60)
        elapsed = time.monotonic() - t0
    assert elapsed < 12, "a server chattering forever held the run for " \
        "%.1fs (server.timeout 3s)\n%s" % (elapsed, r)
    assert_failed(r, proto, ["no progress", "timed out", "timeout",
                             "deadline"])


# ---- POP3 ---------------------------------------------------------------------------

from hostile import FakePop3  # noqa: E402


def pmsg(i, extra=b""):
    return (b"Subject: pop3 parse %d\r\nMessage-ID: <pp%d@hostile>\r\n\r\n"
            b"body %d\r\n" % (i, i, i)) + extra


def pop3_run(archive, certs, hs, **kw):
    return run_profile(archive, certs, hs, protocol="pop3s", **kw)




def test_pop3_retr_closed_before_final_dot(archive, certs):
    msgs = [pmsg(i, b"line\r\n" * 20) for i in range(1, 4)]

    class S(FakePop3):
        def on_retr(self, rest):
            n = int(rest)
            self.retrieved.append(n)
            reply = self.retr_reply(n)
            if self.conn.index == 0 and n == 2:
                self.conn.send(reply[:-3])	# all but ".\r\n"
                self.conn.close()
                raise Stopped()
            self.conn.send(reply)
    srv = S(msgs, caps=(b"USER", b"UIDL", b"SASL PLAIN"))
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        r1, p1, _ = pop3_run(archive, certs, hs)
        assert r1.rc == 1 and p1["status"] == "failed", str(r1)
        assert set(archive.files()) == {sha256(msgs[0])}, \
            "a message cut before its final '.' was archived"
        assert os.listdir(archive.path / "tmp") == []
        srv.retrieved.clear()
        r2, p2, _ = pop3_run(archive, certs, hs)
    assert r2.rc == 0, str(r2)
    assert sorted(srv.retrieved) == [2, 3]
    assert set(archive.files()) == {sha256(m) for m in msgs}
    assert len(archive.messages("alice")) == 3


def test_pop3_oversized_list_size_never_retrieved(archive, certs):
    msgs = [pmsg(1), pmsg(2), pmsg(3)]

    class S(FakePop3):
        def on_list(self, rest):
            self.conn.send(b"+OK\r\n1 50\r\n2 2147483648\r\n3 50\r\n.\r\n")
    srv = S(msgs)
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        r, proto, rss = pop3_run(archive, certs, hs)
    assert 2 not in srv.retrieved, srv.retrieved
    assert proto["counts"]["archived"] == 2, str(r)
    assert proto["status"] == "completed_with_errors", str(r)
    assert any("max_message_size" in t for t in event_texts(proto, "error"))
    assert rss < MAXRSS_KIB


@pytest.mark.parametrize("where", ["uidl", "retr"])
def test_pop3_endless_line_without_crlf(archive, certs, where):
    """In a listing: a line over 8 KiB ends the session.  In a message:
    long lines are legal, but the message may not grow past
    max_message_size (1M here) - the client stops reading long before the
    64 MiB the server would send."""
    class S(FakePop3):
        def flood(self):
            self.sent = self.conn.send_until_closed(
                b"1 " + b"A" * (1 << 20), limit=64 << 20)
            raise Stopped()

        def on_uidl(self, rest):
            if where == "uidl":
                self.conn.send(b"+OK\r\n")
                self.flood()
            FakePop3.on_uidl(self, rest)

        def on_retr(self, rest):
            if where == "retr":
                self.conn.send(b"+OK 100 octets\r\n")
                self.flood()
            FakePop3.on_retr(self, rest)
    srv = S([pmsg(1)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        r, proto, rss = pop3_run(archive, certs, hs, max_message_size="1M")
    assert r.rc == 1 and proto["status"] in ("failed",
                                             "completed_with_errors"), str(r)
    assert hs.conns[0].closed_by_client, \
        "the client read all %d bytes" % srv.sent
    assert srv.sent < 32 << 20, srv.sent
    assert rss < MAXRSS_KIB
    assert archive.files() == {}


def test_pop3_nul_in_status_line(archive, certs):
    class S(FakePop3):
        def on_stat(self, rest):
            self.conn.send(b"+OK 1\x00 100\r\n")
    with HostileServer(S([pmsg(1)]), tls="implicit", cert=certs.server) as hs:
        r, proto, _ = pop3_run(archive, certs, hs)
    assert_failed(r, proto, ["nul"])


def test_pop3_trickling_retr_ends_within_bound(archive, certs):
    body = pmsg(1, b"T" * 500 + b"\r\n")

    class S(FakePop3):
        def on_retr(self, rest):
            self.conn.send(b"+OK %d octets\r\n" % len(body))
            self.conn.trickle(hostile.dot_stuff(body), 2.0)
    with HostileServer(S([body]), tls="implicit", cert=certs.server,
                       lifetime=60) as hs:
        t0 = time.monotonic()
        r, proto, _ = pop3_run(archive, certs, hs, timeout="3s",
                               run_timeout=40)
        elapsed = time.monotonic() - t0
    assert elapsed < 20, "run took %.1fs" % elapsed
    assert_failed(r, proto, ["no progress", "timed out"])
    assert archive.files() == {}
