"""
test_daemon_faults.py - mailstowd keeps its promises on a failing disk.
The daemon runs under the LD_PRELOAD shim tests/fault/fault.c (built here
with cc), which makes fsync, write or rename fail with EIO or ENOSPC under
the archive's messages/ and tmp/ while SQLite and the sockets keep
working.  Against the real test Dovecot, each case checks what a user
would: the run in progress ends failed or completed_with_errors with an
error event naming the disk problem; every message the index holds (all
that was counted archived) is a file byte-identical to the server's copy;
the daemon stays up and answers `mailstow status`; and once the fault is
over (a one-call fault: the same daemon; a lasting one: a daemon started
without the shim) the next run archives exactly what was missed.  Two
profiles at once on a disk that fills under one of them: the other run
succeeds untouched, and the first loses nothing it counted.

Every wait is bounded: control requests by a wall-clock deadline, daemon
start and stop by the helpers of test_daemon.py.
"""

import hashlib
import os
import random
import re
import socket
import sqlite3
import subprocess
import threading
import time

import pytest

import dovecot as harness
from conftest import REPO, run_mailstow, sha256
from test_daemon import daemons, sockdir, write_config  # noqa: F401

RUN_LIMIT = 90		# seconds for one run asked over the control socket
ERRNO_TEXT = {"EIO": "Input/output error",
              "ENOSPC": "No space left on device"}


@pytest.fixture(scope="module")
def fault_so(tmp_path_factory):
    out = tmp_path_factory.mktemp("fault") / "fault.so"
    r = subprocess.run(["cc", "-Wall", "-Wextra", "-shared", "-fPIC", "-o",
                        str(out), str(REPO / "tests" / "fault" / "fault.c"),
                        "-ldl"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "cannot build the fault shim: %s" % r.stderr
    return out


def fault_env(fault_so, log, **kw):
    # A sanitizer build wants its runtime first; the shim only wraps
    # libc functions, so the order does not matter here.
    env = {"LD_PRELOAD": str(fault_so), "FAULT_LOG": str(log),
           "ASAN_OPTIONS": "verify_asan_link_order=0:" +
           os.environ.get("ASAN_OPTIONS", "")}
    env.update({k: str(v) for k, v in kw.items()})
    return env


def ctl_run(ctl, profile, limit=RUN_LIMIT, times=None):
    """`run PROFILE` on the control socket; (run id, final status).  The
    whole exchange is bounded by `limit`, not only each read.  `times`,
    a dict, gets the monotonic times the "started" and "done" lines came."""
    deadline = time.monotonic() + limit
    times = {} if times is None else times
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(str(ctl))
    buf = b""
    try:
        s.sendall(b"run %s\n" % profile.encode())
        while time.monotonic() < deadline:
            try:
                d = s.recv(65536)
            except socket.timeout:
                continue
            if not d:
                break
            buf += d
            for ln in buf.decode(errors="replace").split("\n"):
                if ln.startswith("started "):
                    times.setdefault("started", time.monotonic())
                m = re.fullmatch(r"done (\d+) (\S+)", ln)
                if m:
                    times["done"] = time.monotonic()
                    return int(m.group(1)), m.group(2)
                assert not ln.startswith("error "), ln
        raise AssertionError("run %s: no final line within %ss: %r"
                             % (profile, limit, buf[-2000:]))
    finally:
        s.close()


def protocol(archive, run_id):
    r = archive.cli("protocol", str(run_id), "--json")
    assert r.rc in (0, 1), str(r)
    return r.json()


def index(archive):
    return sqlite3.connect("file:%s?mode=ro" % (archive.path /
                                                 "index.sqlite"),
                           uri=True, timeout=10)


def assert_nothing_counted_is_lost(archive, user, server):
    """Every message the index holds for `user` is a file named by its
    SHA-256, byte-identical to one of the server's messages (`server`:
    {sha256: bytes}), and the archive answers `show` with those bytes;
    the index itself is intact.  Returns the set of hashes held."""
    db = index(archive)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        held = {h for (h,) in db.execute(
            "SELECT hash FROM messages WHERE archive_user = ?",
            (user.name,))}
        running = db.execute("SELECT count(*) FROM runs WHERE status = "
                             "'running'").fetchone()[0]
    finally:
        db.close()
    assert running == 0, "a run is still marked running"
    files = archive.files()
    for h in held:
        assert h in server, "index holds %s, which the server lacks" % h
        assert h in files, "index row %s has no file" % h
        assert files[h] == server[h], "file %s differs from the server" % h
        assert hashlib.sha256(files[h]).hexdigest() == h
    for h in sorted(held)[:3]:
        r = archive.cli("show", h)
        assert r.rc == 0 and r.out == server[h], str(r)
    return held


def server_copy(dovecot, user):
    return {sha256(raw): raw for f in dovecot.fetch_all(user).values()
            for raw in f.values()}


def check_exactly_once(archive, dovecot, user):
    server = server_copy(dovecot, user)
    held = assert_nothing_counted_is_lost(archive, user, server)
    assert held == set(server), "%d missing, %d extra" % (
        len(set(server) - held), len(held - set(server)))
    msgs = archive.messages(user.name)
    assert len(msgs) == len(held), "a message is listed twice"
    locs = [(loc["folder"], loc["uidvalidity"], loc["uid"])
            for m in msgs for loc in m["locations"]]
    assert len(locs) == len(set(locs)), "a server location is recorded twice"


def first_run_counts(archive, run_id):
    db = index(archive)
    try:
        return db.execute("SELECT count(*) FROM messages WHERE first_run "
                          "= ?", (run_id,)).fetchone()[0]
    finally:
        db.close()


def fmsg(seed, i):
    pad = b"x" * random.Random(seed * 100003 + i).randrange(0, 2000)
    return (b"From: Fault Test <fault@example.org>\r\n"
            b"To: archive@example.org\r\n"
            b"Subject: fault message %d/%d\r\n"
            b"Message-ID: <fault-%d-%d@example.org>\r\n"
            b"Date: Fri, 01 Mar 2024 08:00:00 +0000\r\n\r\n"
            b"body %d\r\n%s\r\n" % (seed, i, seed, i, i, pad))


def messages_for(seed, count, want=None):
    """`count` distinct messages; with `want`, only those whose SHA-256
    starts with a hex digit in it (so tests know their shard)."""
    out, i = [], 0
    while len(out) < count:
        m = fmsg(seed, i)
        i += 1
        if want is None or sha256(m)[0] in want:
            out.append(m)
    return out


def maildir_put(dc, user, msgs):
    """Straight into the user's Maildir new/: Dovecot serves the bytes
    as written (CRLF kept), and it is much faster than APPEND."""
    uid, gid = harness._mail_owner()
    home = dc.maildir / user.name
    md = home / "Maildir"
    for d in (home, md, md / "cur", md / "new", md / "tmp"):
        d.mkdir(exist_ok=True)
        os.chown(d, uid, gid)
    for i, data in enumerate(msgs):
        name = "%d.M%dP%d.mailstow-fault" % (1709280000 + i, i, os.getpid())
        tmp = md / "tmp" / name
        tmp.write_bytes(data)
        os.chown(tmp, uid, gid)
        os.rename(tmp, md / "new" / name)


def prepare(dovecot, archive, sdir, names, mailboxes):
    """Users holding `mailboxes` (a list of message lists), their profiles
    and a config; the archive is created by a clean run over empty
    mailboxes first, so the faults hit the messages, not the archive's
    creation."""
    ctl = sdir / "ctl"
    users = [dovecot.add_user() for _ in names]
    profs = [archive.profile(dovecot, u, name=n, schedule="manual")
             for u, n in zip(users, names)]
    conf = write_config(archive, ctl, *profs)
    for n in names:
        r, proto = archive.run(n)
        assert r.rc == 0 and proto["counts"]["found"] == 0, str(r)
    for u, msgs in zip(users, mailboxes):
        maildir_put(dovecot, u, msgs)
    for u, msgs in zip(users, mailboxes):
        assert set(server_copy(dovecot, u)) == {sha256(m) for m in msgs}
    return ctl, conf, users


def assert_daemon_answers(d, conf):
    assert d.proc.poll() is None, "mailstowd died\n%s" % d.stderr
    st = run_mailstow("-c", conf, "status", timeout=30)
    assert st.rc == 0, str(st)
    return st


def assert_fault_reported(archive, run_id, status, errno_text, log):
    assert status in ("failed", "completed_with_errors"), status
    proto = protocol(archive, run_id)
    assert proto["status"] == status
    errors = [e["text"] for e in proto.get("events", [])
              if e.get("level") == "error"]
    assert any(errno_text in e for e in errors), \
        "no error event names %r: %r" % (errno_text, errors)
    assert log.exists() and log.read_text().strip(), \
        "the shim never injected a fault"
    return proto


# ---- a lasting fault, then a daemon without it ---------------------------------

# Three commit groups (a group is 256 messages, lib/run/run.h), so that a
# fault from the Nth call on lets the first group commit and fails a later
# one: the run in progress has archived something when the disk breaks.
MESSAGES = 700
LATER = {"fsync,fdatasync": 600, "rename,renameat": 300, "write": 300}


@pytest.mark.parametrize("ops,err", [
    pytest.param("fsync,fdatasync", "EIO", id="fsync-EIO"),
    pytest.param("fsync,fdatasync", "ENOSPC", id="fsync-ENOSPC"),
    pytest.param("rename,renameat", "EIO", id="rename-EIO"),
    pytest.param("rename,renameat", "ENOSPC", id="rename-ENOSPC"),
    pytest.param("write", "ENOSPC", id="write-ENOSPC"),
    pytest.param("write", "EIO", id="write-EIO"),
])
def test_lasting_fault_daemon_survives_then_catches_up(
        dovecot, archive, daemons, sockdir, fault_so, tmp_path, ops, err):
    ctl, conf, (user,) = prepare(dovecot, archive, sockdir, ["disk"],
                                 [messages_for(7, MESSAGES)])
    server = server_copy(dovecot, user)
    root = os.path.realpath(archive.path)
    log = tmp_path / "fault.log"
    d = daemons(conf, journal=False, env=fault_env(
        fault_so, log, FAULT_OPS=ops, FAULT_ERRNO=err, FAULT_FROM=LATER[ops],
        FAULT_PATHS="%s/messages:%s/tmp" % (root, root)))
    d.wait_note("READY=1", timeout=15)

    run_id, status = ctl_run(ctl, "disk")
    proto = assert_fault_reported(archive, run_id, status, ERRNO_TEXT[err],
                                  log)
    held = assert_nothing_counted_is_lost(archive, user, server)
    assert proto["counts"]["archived"] == len(held) == \
        first_run_counts(archive, run_id), (proto["counts"], len(held))
    assert 0 < len(held) < len(server)
    print("%s %s: first run %s, %d of %d archived" % (ops, err, status,
                                                      len(held), len(server)))
    assert_daemon_answers(d, conf)

    # Still failing: a second run fails the same way, loses nothing.
    run2, status2 = ctl_run(ctl, "disk")
    assert run2 > run_id
    proto2 = assert_fault_reported(archive, run2, status2, ERRNO_TEXT[err],
                                   log)
    held2 = assert_nothing_counted_is_lost(archive, user, server)
    assert held <= held2
    assert proto2["counts"]["archived"] == len(held2) - len(held)
    st = assert_daemon_answers(d, conf)
    assert b"disk" in st.out, str(st)
    rc, secs = d.stop()
    assert rc == 0, d.stderr

    # The disk is fine again: a daemon without the shim catches up.
    d2 = daemons(conf, journal=False)
    d2.wait_note("READY=1", timeout=15)
    run3, status3 = ctl_run(ctl, "disk")
    assert status3 == "succeeded", protocol(archive, run3)
    proto3 = protocol(archive, run3)
    assert proto3["counts"]["archived"] == len(server) - len(held2)
    check_exactly_once(archive, dovecot, user)
    assert os.listdir(archive.path / "tmp") == []
    assert d2.stop()[0] == 0


# ---- a fault of one call: the same daemon recovers -------------------------------


@pytest.mark.parametrize("ops,err", [
    pytest.param("fsync,fdatasync", "EIO", id="fsync-EIO"),
    pytest.param("rename,renameat", "ENOSPC", id="rename-ENOSPC"),
    pytest.param("write", "ENOSPC", id="write-ENOSPC"),
])
def test_one_failed_call_then_same_daemon_catches_up(
        dovecot, archive, daemons, sockdir, fault_so, tmp_path, ops, err):
    ctl, conf, (user,) = prepare(dovecot, archive, sockdir, ["once"],
                                 [messages_for(8, MESSAGES)])
    server = server_copy(dovecot, user)
    root = os.path.realpath(archive.path)
    log = tmp_path / "fault.log"
    d = daemons(conf, journal=False, env=fault_env(
        fault_so, log, FAULT_OPS=ops, FAULT_ERRNO=err, FAULT_NTH=LATER[ops],
        FAULT_PATHS="%s/messages:%s/tmp" % (root, root)))
    d.wait_note("READY=1", timeout=15)

    run_id, status = ctl_run(ctl, "once")
    proto = assert_fault_reported(archive, run_id, status, ERRNO_TEXT[err],
                                  log)
    assert len(log.read_text().splitlines()) == 1
    held = assert_nothing_counted_is_lost(archive, user, server)
    assert 0 < proto["counts"]["archived"] == len(held) < len(server)
    print("%s %s once: first run %s, %d of %d archived" % (
        ops, err, status, len(held), len(server)))
    assert_daemon_answers(d, conf)

    # The window is over (the shim failed its one call): same process.
    run2, status2 = ctl_run(ctl, "once")
    assert status2 == "succeeded", protocol(archive, run2)
    assert protocol(archive, run2)["counts"]["archived"] == \
        len(server) - len(held)
    check_exactly_once(archive, dovecot, user)
    assert os.listdir(archive.path / "tmp") == []
    assert_daemon_answers(d, conf)
    assert d.stop()[0] == 0


# ---- two profiles at once, the disk fills under one -----------------------------


def shard_paths(root, hashes):
    return ":".join(sorted({"%s/messages/%s" % (root, h[:2])
                            for h in hashes}))


def test_disk_full_under_one_of_two_concurrent_profiles(
        dovecot, archive, daemons, sockdir, fault_so, tmp_path):
    """ENOSPC on every rename into, and every fsync of, the directories
    that profile `full`'s messages go to (and no other): its run fails
    with the disk named; `fine` runs at the same time on the same archive
    and index and succeeds, every message once, byte-identical."""
    ctl, conf, (uf, ug) = prepare(
        dovecot, archive, sockdir, ["full", "fine"],
        [messages_for(9, 300, "01234567"), messages_for(10, 300, "89abcdef")])
    sf, sg = server_copy(dovecot, uf), server_copy(dovecot, ug)
    root = os.path.realpath(archive.path)
    log = tmp_path / "fault.log"
    d = daemons(conf, journal=False, env=fault_env(
        fault_so, log, FAULT_OPS="rename,renameat,fsync,fdatasync",
        FAULT_ERRNO="ENOSPC", FAULT_PATHS=shard_paths(root, sf)))
    d.wait_note("READY=1", timeout=15)

    results, times = {}, {"full": {}, "fine": {}}

    def go(name):
        results[name] = ctl_run(ctl, name, times=times[name])
    ts = [threading.Thread(target=go, args=(n,)) for n in ("full", "fine")]
    for t in ts:
        t.start()
    for t in ts:
        t.join(RUN_LIMIT + 10)
    assert not any(t.is_alive() for t in ts), "a run never ended"
    assert set(results) == {"full", "fine"}, results

    # They overlapped: each started before the other finished.
    tf, tg = times["full"], times["fine"]
    assert tf["started"] < tg["done"] and tg["started"] < tf["done"], times
    pf = protocol(archive, results["full"][0])
    pg = protocol(archive, results["fine"][0])

    assert_fault_reported(archive, results["full"][0], results["full"][1],
                          ERRNO_TEXT["ENOSPC"], log)
    held_f = assert_nothing_counted_is_lost(archive, uf, sf)
    assert pf["counts"]["archived"] == len(held_f) < len(sf)
    print("disk full under one of two: %s %d of %d, other %s %d of %d" % (
        results["full"][1], len(held_f), len(sf), results["fine"][1],
        pg["counts"]["archived"], len(sg)))
    assert results["fine"][1] == "succeeded", pg
    assert pg["counts"]["archived"] == len(sg)
    check_exactly_once(archive, dovecot, ug)
    assert_daemon_answers(d, conf)
    assert d.stop()[0] == 0

    # Without the fault both catch up; nothing is stored twice.
    d2 = daemons(conf, journal=False)
    d2.wait_note("READY=1", timeout=15)
    for name in ("full", "fine"):
        run_id, status = ctl_run(ctl, name)
        assert status == "succeeded", protocol(archive, run_id)
    check_exactly_once(archive, dovecot, uf)
    check_exactly_once(archive, dovecot, ug)
    assert os.listdir(archive.path / "tmp") == []
    assert d2.stop()[0] == 0
