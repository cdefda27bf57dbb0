"""
test_hostile_sync.py - incremental sync against a server that changes under
the client or drops the connection: UIDVALIDITY changing between runs and
in the middle of one, messages expunged by another client during the run,
the connection dropped in the middle of a literal and in the middle of a
pipelined batch.  After every sequence of runs the archive holds each
server message exactly once, what was committed stays, and the next run
fetches exactly what is missing.
"""

import os

import pytest

import hostile
from conftest import sha256
from hostile import (FakeImap, Folder, HostileServer, Stopped,
                     assert_no_sanitizer_report, event_texts)


def msg(i, tag=b"s"):
    return (b"Subject: sync %s %d\r\nMessage-ID: <%s%d@hostile>\r\n\r\n"
            b"body %d\r\n" % (tag, i, tag, i, i))


def do_run(archive, name="alice", rc=None):
    r, proto = archive.run(name, timeout=60)
    assert_no_sanitizer_report(r)
    if rc is not None:
        assert r.rc == rc, str(r)
    return r, proto


def locations(archive):
    """{hash: [(folder, uidvalidity, uid), ...]}"""
    out = {}
    for m in archive.messages("alice"):
        out[m["hash"]] = sorted((loc["folder"], loc["uidvalidity"],
                                 loc["uid"]) for loc in m["locations"])
    return out


def assert_exactly_once(archive, msgs):
    files = archive.files()
    want = {sha256(m): m for m in msgs}
    assert set(files) == set(want), "archive %d files, server %d messages" \
        % (len(files), len(want))
    for h, raw in want.items():
        assert files[h] == raw
    listed = [m["hash"] for m in archive.messages("alice")]
    assert sorted(listed) == sorted(want), "duplicated or missing index rows"
    assert os.listdir(archive.path / "tmp") == []


def no_success_errno(proto):
    for t in event_texts(proto, "error"):
        assert not t.rstrip().endswith(": Success"), \
            "an error event blames errno 0: %r" % t


# ---- UIDVALIDITY ------------------------------------------------------------------


def test_uidvalidity_changes_between_runs(archive, certs):
    msgs = [msg(i) for i in range(1, 4)]
    srv = FakeImap([Folder("INBOX", msgs, uidvalidity=100)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs)
        archive.write_config(prof)
        _, p1 = do_run(archive, rc=0)
        assert p1["counts"]["archived"] == 3
        # The folder was recreated: new UIDVALIDITY, new UIDs, same bytes.
        srv.folders = [Folder("INBOX", msgs, uidvalidity=200, first_uid=11)]
        srv.fetched.clear()
        _, p2 = do_run(archive, rc=0)
        assert sorted(u for f in srv.fetched for u in f) == [11, 12, 13], \
            "the folder was not re-scanned under the new UIDVALIDITY"
        c = p2["counts"]
        assert (c["found"], c["archived"], c["skipped"], c["failed"]) == \
            (3, 0, 3, 0), p2
        srv.fetched.clear()
        _, p3 = do_run(archive, rc=0)
        assert srv.fetched == [], "unchanged folder fetched again"
        assert p3["counts"]["archived"] == 0
    assert_exactly_once(archive, msgs)
    locs = locations(archive)
    for i, m in enumerate(msgs, 1):
        assert ("INBOX", 200, 10 + i) in locs[sha256(m)], locs[sha256(m)]
        assert ("INBOX", 100, i) in locs[sha256(m)], locs[sha256(m)]


def test_uidvalidity_changes_in_the_middle_of_a_run(archive, certs):
    """During the FETCH the server announces a new UIDVALIDITY and from
    then on its UIDs mean other messages (the folder was recreated under
    the client).  Next run the server is consistent under the new
    UIDVALIDITY.  Nothing is lost, nothing duplicated."""
    old = [msg(i, b"old") for i in range(1, 4)]
    new = [msg(i, b"new") for i in range(1, 4)]

    class S(FakeImap):
        def answer_fetch(self, tag, uids):
            if self.conn.index > 0:
                return FakeImap.answer_fetch(self, tag, uids)
            out = b""
            for u in uids:
                if u == 2:
                    out += b"* OK [UIDVALIDITY 200] folder recreated\r\n"
                body = old[0] if u == 1 else new[u - 1]
                out += hostile.fetch_response(u, u, body)
            self.conn.send(out + tag + b" OK FETCH done\r\n")
    srv = S([Folder("INBOX", old, uidvalidity=100)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs)
        archive.write_config(prof)
        _, p1 = do_run(archive)
        srv.folders = [Folder("INBOX", new, uidvalidity=200)]
        _, p2 = do_run(archive, rc=0)
        _, p3 = do_run(archive, rc=0)
    assert p3["counts"]["archived"] == 0
    assert_exactly_once(archive, [old[0]] + new)
    locs = locations(archive)
    for i, m in enumerate(new, 1):
        assert ("INBOX", 200, i) in locs[sha256(m)], locs[sha256(m)]


def test_uidvalidity_changes_after_an_interrupted_run(archive, certs):
    """A run is cut off half-way; before the next one the folder is
    recreated with a new UIDVALIDITY and renumbered UIDs."""
    msgs = [msg(i) for i in range(1, 7)]

    class S(FakeImap):
        def answer_fetch(self, tag, uids):
            if self.conn.index == 0:
                self.conn.send(self.fetch_one(1) + self.fetch_one(2) +
                               self.fetch_one(3))
                self.conn.reset()
                raise Stopped()
            FakeImap.answer_fetch(self, tag, uids)
    srv = S([Folder("INBOX", msgs, uidvalidity=7)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs)
        archive.write_config(prof)
        _, p1 = do_run(archive, rc=1)
        assert p1["counts"]["archived"] == 3, p1
        srv.folders = [Folder("INBOX", msgs, uidvalidity=8, first_uid=50)]
        _, p2 = do_run(archive, rc=0)
        c = p2["counts"]
        assert (c["found"], c["archived"], c["skipped"]) == (6, 3, 3), p2
    assert_exactly_once(archive, msgs)


# ---- expunged during the run -----------------------------------------------------


@pytest.mark.parametrize("style", ["silent", "expunge_response"])
def test_message_expunged_during_run(archive, certs, style):
    msgs = [msg(i) for i in range(1, 5)]

    class S(FakeImap):
        def answer_fetch(self, tag, uids):
            f = self.selected
            out = b""
            if style == "expunge_response" and 3 in f.msgs:
                out += b"* 3 EXPUNGE\r\n* 3 EXISTS\r\n"
            for u in uids:
                if u != 3:
                    out += self.fetch_one(u)
            self.conn.send(out + tag + b" OK FETCH done\r\n")
    folder = Folder("INBOX", msgs)
    srv = S([folder])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs)
        archive.write_config(prof)
        r1, p1 = do_run(archive)
        del folder.msgs[3]		# now really gone
        srv.fetched.clear()
        r2, p2 = do_run(archive)
    assert r1.rc == 0, str(r1)
    assert p1["status"] == "succeeded", str(r1)
    assert p1["counts"]["archived"] == 3
    assert p1["counts"]["failed"] == 0
    warns = [e for e in p1["events"] if e["level"] == "warning"]
    assert any(e["uid"] == 3 and "expunged" in e["text"] for e in warns), \
        p1["events"]
    assert not event_texts(p1, "error")
    assert r2.rc == 0 and p2["status"] == "succeeded", str(r2)
    assert all(3 not in f for f in srv.fetched), srv.fetched
    assert not any(e["uid"] == 3 for e in p2["events"]), p2["events"]
    assert p2["counts"]["archived"] == 0
    assert_exactly_once(archive, [msgs[0], msgs[1], msgs[3]])


# ---- the connection dropped -------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "reset"])
def test_connection_dropped_in_the_middle_of_a_literal(archive, certs, how):
    msgs = [msg(i) for i in range(1, 6)]

    class S(FakeImap):
        def answer_fetch(self, tag, uids):
            if self.conn.index > 0:
                return FakeImap.answer_fetch(self, tag, uids)
            third = self.fetch_one(3)
            cut = third.index(b"}\r\n") + 3 + 12
            self.conn.send(self.fetch_one(1) + self.fetch_one(2) +
                           third[:cut])
            (self.conn.reset if how == "reset" else self.conn.close)()
            raise Stopped()
    srv = S([Folder("INBOX", msgs)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs)
        archive.write_config(prof)
        r1, p1 = do_run(archive, rc=1)
        assert p1["status"] == "failed"
        assert p1["counts"]["archived"] == 2, str(r1)
        assert set(archive.files()) == {sha256(msgs[0]), sha256(msgs[1])}
        assert os.listdir(archive.path / "tmp") == []
        r2, p2 = do_run(archive, rc=0)
    assert srv.fetched[-1] == [3, 4, 5], srv.fetched
    assert p2["counts"]["archived"] == 3
    assert p2["counts"]["skipped"] == 2
    assert_exactly_once(archive, msgs)
    for locs in locations(archive).values():
        assert len(locs) == 1, locs


def test_connection_dropped_in_the_middle_of_a_pipelined_batch(archive,
                                                               certs):
    n = 200
    msgs = [msg(i) for i in range(1, n + 1)]

    class S(FakeImap):
        pipelined = False

        def answer_fetch(self, tag, uids):
            if self.conn.index > 0:
                return FakeImap.answer_fetch(self, tag, uids)
            if len(self.fetched) == 1:
                # The other commands of the window are already here.
                self.conn.sleep(0.2)
                S.pipelined = b"UID FETCH" in self.conn.buf
                return FakeImap.answer_fetch(self, tag, uids)
            self.conn.send(b"".join(self.fetch_one(u) for u in uids[:10]))
            self.conn.close()
            raise Stopped()
    srv = S([Folder("INBOX", msgs)])
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs)
        archive.write_config(prof)
        r1, p1 = do_run(archive, rc=1)
        first = [u for f in srv.fetched for u in f]
        done1 = srv.fetched[0] + srv.fetched[1][:10]
        assert S.pipelined, "the client did not pipeline its FETCHes"
        assert p1["counts"]["archived"] == len(done1), str(r1)
        assert set(archive.files()) == {sha256(msgs[u - 1]) for u in done1}
        srv.fetched.clear()
        r2, p2 = do_run(archive, rc=0)
    second = sorted(u for f in srv.fetched for u in f)
    assert second == sorted(set(range(1, n + 1)) - set(done1)), \
        "second run fetched %d UIDs, %d were missing" % (
            len(second), n - len(done1))
    assert len(first) >= 128
    assert p2["counts"]["archived"] == n - len(done1)
    assert_exactly_once(archive, msgs)


@pytest.mark.parametrize("tls,how", [
    ("imaps", "close"),
    ("imaps", "reset"),
    ("imap", "close"), ("imap", "reset")])
def test_dropped_connection_error_names_the_cause(archive, certs, tls, how):
    """The error event of a dropped connection says what happened, not
    "Success" (errno 0 read after a TLS-level or EOF error)."""
    msgs = [msg(i) for i in range(1, 4)]

    class S(FakeImap):
        def answer_fetch(self, tag, uids):
            self.conn.send(self.fetch_one(1))
            (self.conn.reset if how == "reset" else self.conn.close)()
            raise Stopped()
    with HostileServer(S([Folder("INBOX", msgs)]),
                       tls="implicit" if tls == "imaps" else None,
                       cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol=tls)
        archive.write_config(prof)
        r, p = do_run(archive, rc=1)
    assert p["counts"]["archived"] == 1
    errors = event_texts(p, "error")
    assert errors, str(r)
    no_success_errno(p)
    text = " ".join(errors).lower()
    assert any(k in text for k in ("closed", "reset", "eof", "ended")), errors


# ---- POP3 ---------------------------------------------------------------------------

from hostile import FakePop3  # noqa: E402


@pytest.mark.parametrize("pipelining", [True, False])
def test_pop3_dropped_mid_retr_then_completed(archive, certs, pipelining):
    """The connection drops in the middle of the 3rd message (with and
    without PIPELINING): what was whole is committed, the rest comes next
    run, by UIDL, and nothing is retrieved twice."""
    msgs = [msg(i, b"pop") for i in range(1, 7)]
    caps = [b"USER", b"UIDL", b"SASL PLAIN"] + \
        ([b"PIPELINING"] if pipelining else [])

    class S(FakePop3):
        def on_retr(self, rest):
            n = int(rest)
            self.retrieved.append(n)
            reply = self.retr_reply(n)
            if self.conn.index == 0 and n == 3:
                self.conn.send(reply[:len(reply) // 2])
                self.conn.reset()
                raise Stopped()
            self.conn.send(reply)
    srv = S(msgs, caps=caps)
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="pop3s")
        archive.write_config(prof)
        r1, p1 = do_run(archive, rc=1)
        assert p1["counts"]["archived"] == 2, str(r1)
        assert os.listdir(archive.path / "tmp") == []
        srv.retrieved.clear()
        r2, p2 = do_run(archive, rc=0)
        assert sorted(srv.retrieved) == [3, 4, 5, 6], srv.retrieved
        srv.retrieved.clear()
        r3, p3 = do_run(archive, rc=0)
    assert srv.retrieved == []
    assert p3["counts"]["archived"] == 0
    assert_exactly_once(archive, msgs)


def test_pop3_message_deleted_by_another_client(archive, certs):
    msgs = [msg(i, b"gone") for i in range(1, 4)]

    class S(FakePop3):
        def retr_reply(self, n):
            if n == 2 and self.conn.index == 0:
                return b"-ERR no such message\r\n"
            return FakePop3.retr_reply(self, n)
    srv = S(msgs)
    with HostileServer(srv, tls="implicit", cert=certs.server) as hs:
        prof = hostile.profile(archive, hs, certs, protocol="pop3s")
        archive.write_config(prof)
        r1, p1 = do_run(archive, rc=0)
        # Now it is really gone: the maildrop holds the other two.
        srv.messages = [msgs[0], msgs[2]]
        srv.uidls = [b"uid-1", b"uid-3"]
        srv.retrieved.clear()
        r2, p2 = do_run(archive, rc=0)
    assert p1["status"] == "succeeded" and p1["counts"]["archived"] == 2
    assert any("no longer on the server" in t
               for t in event_texts(p1, "warning")), p1["events"]
    assert srv.retrieved == [] and p2["counts"]["archived"] == 0
    assert_exactly_once(archive, [msgs[0], msgs[2]])
