"""
test_daemon_sched.py - mailstowd's schedule keys and its per-host limit
against the test Dovecot: a profile whose hourly fire was missed while
the daemon was down runs once at start (trigger "catch-up"), and not with
catch_up: false or when its last run began after that fire; cron times
are read in the profile's timezone and a jitter delays them within its
bound, as `status` shows; a batch profile with max_parallel 4 under
daemon.max_connections_per_host 2 never holds more than two connections
to the server (counted by a TCP relay in front of Dovecot), a second
profile of that host waits for it ("waiting_for_host"), and every
mailbox is archived.

Decisions taken at start are checked right after READY=1: the daemon
queues a catch-up run before it reports ready, so no waiting on a clock
is needed to see that a run did or did not start.
"""

import datetime
import json
import os
import socket
import sqlite3
import threading
import time
import zoneinfo

import pytest

import mailgen
from conftest import MASTER_USER, sha256, to_yaml
from test_daemon import (Ctl, Daemon, MAILSTOWD, done_runs, runs,  # noqa
                         daemons, sockdir, wait_for)

WAIT = 60


def write_config(archive, ctl, *profiles, daemon=None):
    d = {"control_socket": str(ctl)}
    d.update(daemon or {})
    doc = {"archive": {"path": str(archive.path)}, "daemon": d,
           "profiles": list(profiles)}
    archive.config.write_text("# written by test_daemon_sched.py\n" +
                              to_yaml(doc) + "\n")
    os.chmod(archive.config, 0o600)
    return archive.config


def status(ctl):
    c = Ctl(ctl)
    try:
        c.send(b"status json\n")
        lines = c.lines_until("ok", "error")
    finally:
        c.close()
    assert lines and lines[-1] == "ok", lines
    return json.loads("\n".join(ln[5:] for ln in lines[:-1]))


def prof_status(st, name):
    return [p for p in st["profiles"] if p["name"] == name][0]


def iso_utc(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def hourly_in(zone):
    """("M * * * *", next fire) with M half an hour from now in `zone`:
    the most recent fire was about 30 minutes ago, the next is about 30
    minutes away, whatever the zone's offset."""
    now = datetime.datetime.now(zoneinfo.ZoneInfo(zone))
    m = (now.minute + 30) % 60
    nxt = now.replace(minute=m, second=0, microsecond=0)
    if nxt <= now:
        nxt += datetime.timedelta(hours=1)
    return "%d * * * *" % m, nxt.astimezone(datetime.timezone.utc)


def age_last_run(archive, profile, started_ago, took=10):
    """Move the profile's newest run `started_ago` seconds into the past."""
    db = sqlite3.connect(str(archive.path / "index.sqlite"), timeout=10)
    try:
        (rid,) = db.execute("SELECT max(id) FROM runs WHERE profile = ?",
                            (profile,)).fetchone()
        now = int(time.time())
        db.execute("UPDATE runs SET started = ?, finished = ? WHERE id = ?",
                   (now - started_ago, now - started_ago + took, rid))
        db.commit()
    finally:
        db.close()
    return rid


def first_run(dovecot, archive, name):
    """A user with mail and one finished run of profile `name` (manual)."""
    user = dovecot.add_user()
    g = mailgen.MailGen(int.from_bytes(os.urandom(2), "big"))
    dovecot.seed(user, mailgen.Layout(folders={
        "INBOX": [g.varied() for _ in range(3)]}, copies=[]))
    prof = archive.profile(dovecot, user, name=name)
    archive.write_config(prof)
    r, proto = archive.run(name)
    assert r.rc == 0 and proto["status"] == "succeeded", r
    return user, prof


# ---- catch-up -------------------------------------------------------------------


@pytest.mark.parametrize("case", ["missed", "catch_up_false", "ran_after"])
def test_catch_up_at_start(dovecot, archive, daemons, sockdir, case):
    zone = "Asia/Kolkata"		# +05:30: its minutes are not UTC's
    user, prof = first_run(dovecot, archive, "hourly")
    # Two hours ago (the fire half an hour ago was missed), or a minute
    # ago (after that fire: nothing was missed).
    last = age_last_run(archive, "hourly",
                        60 if case == "ran_after" else 7200)
    expr, nxt = hourly_in(zone)
    prof.update(schedule=expr, timezone=zone,
                catch_up=case != "catch_up_false")
    new = mailgen.MailGen(7).message(subject="while the daemon was down")
    dovecot.append(user, "INBOX", new.raw)
    ctl = sockdir / "ctl"
    d = daemons(write_config(archive, ctl, prof), journal=False)
    d.wait_note("READY=1", timeout=15)

    st = prof_status(status(ctl), "hourly")
    # The next regular fire is read in the profile's zone.
    assert iso_utc(st["next"]) == nxt, (st, expr)
    if case != "missed":
        assert st["state"] == "idle", st
        assert [r["run"] for r in runs(archive, "hourly")] == [last]
        # The last result comes from the store, not from this daemon's
        # memory: it survives a restart.
        assert st["last"] is not None and st["last"]["run"] == last, st
        assert st["last"]["status"] == "succeeded", st
        if case == "catch_up_false":
            d.wait_log(r"profile hourly: a fire was missed since run %d "
                       r"started at .*; not caught up \(catch_up: false\)"
                       % last)
        else:
            assert "a fire was missed" not in d.stderr
        return

    # Queued before READY=1: it is running or already over.
    assert st["state"] != "idle" or len(runs(archive, "hourly")) == 2, st
    wait_for(lambda: len(done_runs(archive, "hourly")) == 2, WAIT,
             "the catch-up run")
    rs = runs(archive, "hourly")
    assert [(r["trigger"], r["status"]) for r in rs[1:]] == \
        [("catch-up", "succeeded")], rs
    assert rs[1]["counts"]["archived"] == 1, rs[1]
    assert sha256(new.raw) in {m["hash"] for m in
                               archive.messages(user.name)}
    assert "profile hourly: a fire was missed since run %d" % last \
        in d.stderr
    # Once, however many fires were missed; the next one is regular.
    time.sleep(2)
    assert len(runs(archive, "hourly")) == 2
    st = prof_status(status(ctl), "hourly")
    assert st["state"] == "idle" and iso_utc(st["next"]) == nxt, st
    assert d.stop()[0] == 0


def test_catch_up_for_profile_added_by_reload(dovecot, archive, daemons,
                                              sockdir):
    """A profile a reload adds back, whose hourly fire was missed since
    its last run, catches up as it would at start; `status` shows its
    last result from the store."""
    user, prof = first_run(dovecot, archive, "hourly")
    last = age_last_run(archive, "hourly", 7200)
    expr, nxt = hourly_in("UTC")
    prof.update(schedule=expr, timezone="UTC")
    other = archive.profile(dovecot, user, name="other", schedule="manual")
    ctl = sockdir / "ctl"
    d = daemons(write_config(archive, ctl, other), journal=False)
    d.wait_note("READY=1", timeout=15)
    assert "hourly" not in [p["name"] for p in status(ctl)["profiles"]]
    new = mailgen.MailGen(8).message(subject="before the reload")
    dovecot.append(user, "INBOX", new.raw)
    write_config(archive, ctl, other, prof)
    c = Ctl(ctl)
    c.send(b"reload\n")
    assert c.lines_until("ok", "error") == ["ok"]
    c.close()
    wait_for(lambda: len(done_runs(archive, "hourly")) == 2, WAIT,
             "the catch-up run after the reload")
    rs = runs(archive, "hourly")
    assert [(r["trigger"], r["status"]) for r in rs] == \
        [("manual", "succeeded"), ("catch-up", "succeeded")], rs
    assert rs[1]["counts"]["archived"] == 1, rs[1]
    assert "profile hourly: a fire was missed since run %d" % last \
        in d.stderr
    st = prof_status(status(ctl), "hourly")
    assert iso_utc(st["next"]) == nxt, st
    wait_for(lambda: prof_status(status(ctl), "hourly")["last"] is not None
             and prof_status(status(ctl), "hourly")["last"]["run"] ==
             rs[1]["run"], WAIT, "status to show the catch-up run")
    # The profile that was there all along did not run.
    assert runs(archive, "other") == []
    assert d.stop()[0] == 0


def test_every_resumes_after_last_end(dovecot, archive, daemons, sockdir):
    """every 1h: ended 10 minutes ago -> next in 50 minutes, no run now;
    ended 2 hours ago -> caught up at start."""
    user, prof = first_run(dovecot, archive, "ev")
    age_last_run(archive, "ev", 620, took=20)
    prof["schedule"] = "every 1h"
    ctl = sockdir / "ctl"
    d = daemons(write_config(archive, ctl, prof), journal=False)
    d.wait_note("READY=1", timeout=15)
    st = prof_status(status(ctl), "ev")
    assert st["state"] == "idle", st
    left = (iso_utc(st["next"]) -
            datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    assert 50 * 60 - 30 < left <= 50 * 60 + 5, st
    assert d.stop()[0] == 0
    d.close()

    age_last_run(archive, "ev", 7200)
    d = daemons(archive.config, journal=False)
    d.wait_note("READY=1", timeout=15)
    wait_for(lambda: len(done_runs(archive, "ev")) == 2, WAIT,
             "the catch-up run")
    assert runs(archive, "ev")[-1]["trigger"] == "catch-up"
    assert d.stop()[0] == 0


def test_jitter_in_status(dovecot, archive, daemons, sockdir):
    """Three profiles with jitter 20m: each next fire lies within
    [fire, fire + 20m) and not all of them at the fire itself."""
    user = dovecot.add_user()
    expr, nxt = hourly_in("UTC")
    profs = [archive.profile(dovecot, user, name="j%d" % i, schedule=expr,
                             timezone="UTC", jitter="20m")
             for i in range(3)]
    ctl = sockdir / "ctl"
    d = daemons(write_config(archive, ctl, *profs), journal=False)
    d.wait_note("READY=1", timeout=15)
    st = status(ctl)
    delays = []
    for i in range(3):
        t = iso_utc(prof_status(st, "j%d" % i)["next"])
        delays.append((t - nxt).total_seconds())
    assert all(0 <= x <= 20 * 60 for x in delays), delays
    assert max(delays) >= 2, delays
    assert d.stop()[0] == 0


def test_reload_with_new_timezone_reschedules(dovecot, archive, daemons,
                                              sockdir):
    """Only the timezone changes: the next fire moves to the new zone's
    wall time after a reload."""
    user = dovecot.add_user()
    expr, nxt = hourly_in("UTC")
    prof = archive.profile(dovecot, user, name="tz", schedule=expr,
                           timezone="UTC")
    ctl = sockdir / "ctl"
    d = daemons(write_config(archive, ctl, prof), journal=False)
    d.wait_note("READY=1", timeout=15)
    assert iso_utc(prof_status(status(ctl), "tz")["next"]) == nxt
    prof["timezone"] = "Asia/Kolkata"
    write_config(archive, ctl, prof)
    c = Ctl(ctl)
    c.send(b"reload\n")
    assert c.lines_until("ok", "error") == ["ok"]
    c.close()
    # The same minute M in a zone 5:30 ahead: 30 minutes off, either way.
    got = iso_utc(prof_status(status(ctl), "tz")["next"])
    assert abs((got - nxt).total_seconds()) == 30 * 60, (got, nxt)
    now = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Kolkata"))
    assert got > now and got.astimezone(now.tzinfo).minute == \
        int(expr.split()[0]), (got, expr)
    assert d.stop()[0] == 0


# ---- per-host connection limit -------------------------------------------------


class Relay:
    """A TCP relay on 127.0.0.1 to `port` that records when each client
    connection opened and closed.  Each connection is held `hold` seconds
    before its first byte is relayed, so that sessions surely overlap
    when a client opens them at once."""

    def __init__(self, port, hold):
        self.port_to, self.hold = port, hold
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.spans = []			# [open, close or None]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            span = [time.monotonic(), None]
            with self.lock:
                self.spans.append(span)
            threading.Thread(target=self._serve, args=(c, span),
                             daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _serve(self, c, span):
        try:
            time.sleep(self.hold)
            up = socket.create_connection(("127.0.0.1", self.port_to))
        except OSError:
            c.close()
            span[1] = time.monotonic()
            return
        t = threading.Thread(target=self._pump, args=(up, c), daemon=True)
        t.start()
        self._pump(c, up)	# returns when the client closed its side
        span[1] = time.monotonic()
        t.join(timeout=30)
        up.close()
        c.close()

    def peak(self, slack=0.15):
        """Most connections open at one instant.  A connection counts as
        closed `slack` seconds before the relay saw it close: the client
        may open the next session in the moment between closing one and
        the relay noticing; every session lives at least `hold`."""
        with self.lock:
            spans = [(a, (b if b is not None else time.monotonic()) - slack)
                     for a, b in self.spans]
        ev = sorted([(a, 1) for a, b in spans] + [(b, -1) for a, b in spans
                                                  if b > a],
                    key=lambda e: (e[0], e[1]))
        cur = best = 0
        for _, d in ev:
            cur += d
            best = max(best, cur)
        return best

    def total(self):
        with self.lock:
            return len(self.spans)

    def close(self):
        # shutdown() wakes the thread blocked in accept(); close() alone
        # would leave it waiting on the old socket, and a signal would
        # restart its accept() on this descriptor *number*, by then
        # another test's listener, stealing that test's connection.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=10)


def batch_users(dc, n, tag):
    out = []
    for i in range(n):
        user = dc.add_user("%s-%d" % (tag, i + 1))
        g = mailgen.MailGen(1000 + i)
        dc.seed(user, mailgen.Layout(folders={
            "INBOX": [g.varied(), g.varied()]}, copies=[]))
        held = {sha256(raw) for f in dc.fetch_all(user).values()
                for raw in f.values()}
        out.append((user, held))
    return out


def batch_profile(archive, dc, relay, name, users, max_parallel):
    master = dc.master_users[MASTER_USER]
    prof = archive.profile(dc, master, name=name)
    prof["server"]["port"] = relay.port
    prof["auth"] = {"master_user": MASTER_USER,
                    "password_file": prof["auth"]["password_file"]}
    prof["mailboxes"] = [{"user": u.name} for u, _ in users]
    prof["max_parallel"] = max_parallel
    return prof


def test_max_connections_per_host(dovecot_master, archive, daemons,
                                  sockdir):
    dc = dovecot_master
    tag = "h%s" % os.urandom(3).hex()
    big = batch_users(dc, 6, tag + "a")
    small = batch_users(dc, 2, tag + "b")
    relay = Relay(dc.ports["imaps"], hold=0.4)
    try:
        pa = batch_profile(archive, dc, relay, "wide", big, 4)
        pb = batch_profile(archive, dc, relay, "other", small, 2)
        ctl = sockdir / "ctl"
        d = daemons(write_config(archive, ctl, pa, pb,
                                 daemon={"max_connections_per_host": 2}),
                    journal=False)
        d.wait_note("READY=1", timeout=15)

        ca = Ctl(ctl, timeout=WAIT)
        ca.send(b"run wide\n")
        assert ca.line().startswith("started ")
        cb = Ctl(ctl, timeout=WAIT)
        cb.send(b"run other\n")
        # "wide" holds both sessions of the host: "other" waits for it.
        st = wait_for(lambda: (lambda s: s if prof_status(s, "other")[
            "state"] != "idle" else None)(status(ctl)), WAIT,
            "the request for other")
        assert prof_status(st, "wide")["sessions"] == 2, st
        o = prof_status(st, "other")
        assert o["state"] == "waiting_for_host" and \
            o["host"] == "127.0.0.1", st
        assert st["hosts"] == [{"host": "127.0.0.1", "sessions": 2,
                                "limit": 2, "waiting": ["other"]}], st
        ta = ca.lines_until("done", "error")
        tb = cb.lines_until("done", "error")
        ca.close()
        cb.close()
    finally:
        relay.close()
    assert ta[-1].endswith(" succeeded"), ta
    assert tb[-1].endswith(" succeeded"), tb
    assert relay.total() == 8
    assert relay.peak() == 2, "peak %d connections at once" % relay.peak()
    for u, held in big + small:
        got = {m["hash"] for m in archive.messages(u.name)}
        assert got == held, u.name
    assert d.stop()[0] == 0
