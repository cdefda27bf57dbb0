"""
test_crash.py - crash consistency, disk faults and the archive lock.

Crashes, against the real test Dovecot: a mailbox
of a few thousand small messages is archived by `mailstow run` processes
that are SIGKILLed at seeded random moments (at least 50 times), each
restarted at once; new mail keeps arriving so that there is always work to
interrupt.  After one clean run the archive must hold every server message
exactly once, every file's SHA-256 matches its name, SQLite's integrity
check passes, no index row lacks its file, temp files left by the kills are
gone, and the last run succeeded.

The mailbox is written straight into the user's Maildir (Dovecot picks up
new/ on the next access): thousands of IMAP APPENDs or `doveadm save`
processes would take most of the time budget.

Disk faults, against the hostile server (hostile.py): an LD_PRELOAD shim
(tests/fault/fault.c, built here with cc) makes fsync, write or rename
fail with EIO or ENOSPC under the archive's messages/ and tmp/; the run
reports it, nothing is counted or indexed, and the next run archives the
messages.  A trace mode of the shim checks the order of the durable steps
(data fsync, rename, directory fsync, index commit).  Two processes on one
archive: the second is refused by the lock and names the holder.
"""

import hashlib
import os
import pathlib
import random
import shutil
import signal
import tempfile
import sqlite3
import subprocess
import time

from conftest import MAILSTOW, all_messages, require_mailstow, sha256
import dovecot as harness

SEED = int(os.environ.get("MAILSTOW_CRASH_SEED", "20240301"))
INITIAL = 3000
KILLS = 50
ARRIVALS = 1500	# new messages each time a run caught up
BUDGET = 75.0		# seconds for the kill loop


def maildir_seed(dc, user, start, count, rnd):
    """Write `count` messages into user's INBOX (Maildir new/).  Every
    50th message repeats the bytes of the one before it (a server copy:
    stored once, recorded twice)."""
    uid, gid = harness._mail_owner()
    home = dc.maildir / user.name
    md = home / "Maildir"
    for d in (home, md, md / "cur", md / "new", md / "tmp"):
        d.mkdir(exist_ok=True)
        os.chown(d, uid, gid)
    last = None
    for i in range(start, start + count):
        if i % 50 == 49 and last is not None:
            data = last
        else:
            pad = b"x" * rnd.randrange(0, 400)
            data = (b"From: Crash Test <crash@example.org>\r\n"
                    b"To: archive@example.org\r\n"
                    b"Subject: crash message %d\r\n"
                    b"Message-ID: <crash-%d@example.org>\r\n"
                    b"Date: Fri, 01 Mar 2024 08:00:00 +0000\r\n\r\n"
                    b"body %d %s\r\n" % (i, i, i, pad))
        last = data
        name = "%d.M%dP%d.mailstow-crash" % (1709280000 + i, i,
                                                os.getpid())
        tmp = md / "tmp" / name
        tmp.write_bytes(data)
        os.chown(tmp, uid, gid)
        os.rename(tmp, md / "new" / name)


def spawn(archive, name):
    require_mailstow()
    return subprocess.Popen([str(MAILSTOW), "-c", str(archive.config),
                             "run", name], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def fast_archive_dir(tmp_path):
    """SIGKILL keeps the page cache, so fsync adds nothing to what this
    test can see; on tmpfs the same code runs ~10x faster and the kills
    spread over the whole mailbox within the time budget.
    MAILSTOW_CRASH_ON_DISK=1 keeps it on the test's own file system."""
    if os.environ.get("MAILSTOW_CRASH_ON_DISK") != "1" and \
            os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return tempfile.mkdtemp(prefix="mailstow-crash-", dir="/dev/shm")
    top = tmp_path / "on-disk"
    top.mkdir()
    return str(top)


def wait_for_temp_file(p, tmpdir, limit=2.0):
    """Return when tmpdir holds a file (TimeoutExpired, so the caller
    kills) or the process ended by itself (normal return)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if p.poll() is not None:
            return
        try:
            if os.listdir(tmpdir):
                raise subprocess.TimeoutExpired(p.args, 0)
        except FileNotFoundError:
            pass
        time.sleep(0.0005)
    raise subprocess.TimeoutExpired(p.args, limit)


def test_sigkill_at_random_points(dovecot, archive, tmp_path):
    top = fast_archive_dir(tmp_path)
    ok = False
    try:
        crash_loop(dovecot, archive, os.path.join(top, "archive"))
        ok = True
    finally:
        if ok or os.environ.get("MAILSTOW_KEEP_TMP") != "1":
            shutil.rmtree(top, ignore_errors=True)
        else:
            print("crash test archive kept in %s" % top)


def crash_loop(dovecot, archive, path):
    rnd = random.Random(SEED)
    user = dovecot.add_user()
    maildir_seed(dovecot, user, 0, INITIAL, rnd)
    total = INITIAL
    prof = archive.profile(dovecot, user, name="crash")
    archive.path = pathlib.Path(path)
    archive.write_config(prof)
    tmpdir = archive.path / "tmp"

    kills = finished = left_tmp = cycle = since_finished = 0
    scale = 1.0
    t0 = time.monotonic()
    # At least KILLS kills, and on until the mailbox was caught up once, so
    # that the kills are spread over the whole archive, not its start.
    while (kills < KILLS or finished == 0) and \
            time.monotonic() - t0 < BUDGET:
        # Early (store open, sweep, TLS, login), and during the fetch
        # and commits (a run of 3000 messages takes ~0.25 s on tmpfs,
        # one with nothing to do ~0.05 s).
        delay = scale * rnd.choice([rnd.uniform(0.0, 0.06),
                                    rnd.uniform(0.04, 0.3),
                                    rnd.uniform(0.04, 0.3)])
        cycle += 1
        p = spawn(archive, "crash")
        try:
            if cycle % 5 == 0:
                # Aimed: the moment a message is half-way into tmp/.
                wait_for_temp_file(p, tmpdir)
            else:
                p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
            kills += 1
            since_finished += 1
            if since_finished % 10 == 0:
                # A slow or busy machine: give runs more time, so that
                # the kills still reach the end of the mailbox.
                scale *= 1.5
            if tmpdir.exists() and os.listdir(tmpdir):
                left_tmp += 1
        else:
            err = p.stderr.read()
            assert p.returncode == 0, "run exited %d: %r" % (p.returncode,
                                                             err[-2000:])
            finished += 1
            since_finished = 0
            # All caught up: new mail arrives, so there is work to kill.
            maildir_seed(dovecot, user, total, ARRIVALS, rnd)
            total += ARRIVALS
        finally:
            p.stderr.close()
    assert kills >= KILLS and finished > 0, \
        "only %d kills and %d complete runs in %.0fs" % (kills, finished,
                                                        BUDGET)
    print("crash: %d kills, %d runs finished, %d kills left temp files, "
          "%d messages, %.1fs" % (kills, finished, left_tmp, total,
                                  time.monotonic() - t0))

    r, proto = archive.run("crash", timeout=120)
    assert r.rc == 0, str(r)
    assert proto["status"] == "succeeded", str(r)
    r2, proto2 = archive.run("crash", timeout=60)
    assert r2.rc == 0 and proto2["counts"]["archived"] == 0, str(r2)

    server = dovecot.fetch_all(user)
    msgs = all_messages(server)
    assert len(msgs) == total
    want = {sha256(m) for m in msgs}

    # Every file is named by its SHA-256, and the files are exactly the
    # server's distinct messages.
    files = archive.files()
    for h, data in files.items():
        assert hashlib.sha256(data).hexdigest() == h, "file %s corrupt" % h
    assert set(files) == want, "%d missing, %d extra" % (
        len(want - set(files)), len(set(files) - want))

    # The index: intact, one message row per distinct content, one
    # location per server UID, and no row without its file.
    db = sqlite3.connect("file:%s?mode=ro" % (archive.path / "index.sqlite"),
                         uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = [h for (h,) in db.execute("SELECT hash FROM messages")]
        assert len(rows) == len(set(rows)) == len(want)
        assert set(rows) == want
        blobs = [h for (h,) in db.execute("SELECT hash FROM blobs")]
        for h in blobs:
            assert h in files, "index row %s has no file" % h
        locs = db.execute("SELECT folder, uidvalidity, uid FROM locations "
                          "WHERE profile = 'crash'").fetchall()
        assert len(locs) == len(set(locs)) == total, \
            "%d locations for %d server messages" % (len(locs), total)
        running = db.execute("SELECT count(*) FROM runs WHERE status = "
                             "'running'").fetchone()[0]
        assert running == 0
        interrupted = db.execute("SELECT count(*) FROM runs WHERE status = "
                                 "'interrupted'").fetchone()[0]
    finally:
        db.close()
    assert interrupted >= kills * 0.8, \
        "%d runs marked interrupted after %d kills" % (interrupted, kills)
    assert os.listdir(tmpdir) == [], "temp files left after the last run"
    assert left_tmp > 0, "no kill ever left a temp file: the sweep was " \
        "not exercised (kills %d, finished %d)" % (kills, finished)
    last = archive.cli("protocol", "--last", "crash", "--json")
    assert last.json()["status"] == "succeeded"


# ---- fault injection (tests/fault/fault.c, LD_PRELOAD) ---------------------------

import pytest  # noqa: E402

import hostile  # noqa: E402
from hostile import FakeImap, Folder, HostileServer  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fault_so(tmp_path_factory):
    out = tmp_path_factory.mktemp("fault") / "fault.so"
    r = subprocess.run(["cc", "-Wall", "-Wextra", "-shared", "-fPIC", "-o",
                        str(out), str(REPO / "tests" / "fault" / "fault.c"),
                        "-ldl"], capture_output=True, text=True)
    assert r.returncode == 0, "cannot build the fault shim: %s" % r.stderr
    return out


def fmsg(i, tag=b"f"):
    return (b"Subject: fault %s %d\r\nMessage-ID: <%s%d@fault>\r\n\r\n"
            b"body %d\r\n" % (tag, i, tag, i, i))


def fault_env(fault_so, log, **kw):
    # A sanitizer build wants its runtime first; the shim only wraps
    # libc functions, so the order does not matter here.
    env = {"LD_PRELOAD": str(fault_so), "FAULT_LOG": str(log),
           "ASAN_OPTIONS": "verify_asan_link_order=0:" +
           os.environ.get("ASAN_OPTIONS", "")}
    env.update({k: str(v) for k, v in kw.items()})
    return env


def root_of(archive):
    return os.path.realpath(archive.path)


def fault_setup(archive, certs, hs):
    """Profile and archive.  The archive is created by a run over an
    empty mailbox before any fault starts, so that the faults hit the
    messages, not the creation of the archive."""
    prof = hostile.profile(archive, hs, certs)
    archive.write_config(prof)
    srv = hs.script
    folders, srv.folders = srv.folders, [Folder("INBOX", [])]
    try:
        r, proto = archive.run(prof["name"])
    finally:
        srv.folders = folders
    assert r.rc == 0 and proto["counts"]["found"] == 0, str(r)
    return prof


def assert_not_counted(archive, proto, r, errno_text, log):
    assert r.rc == 1, str(r)
    assert proto["status"] in ("completed_with_errors", "failed"), str(r)
    assert proto["counts"]["archived"] == 0, str(r)
    errors = hostile.event_texts(proto, "error")
    assert any(errno_text in e for e in errors), \
        "no error event names %r: %r" % (errno_text, errors)
    assert archive.messages("alice") == [], "failed messages were indexed"
    assert log.exists() and log.read_text().strip(), \
        "the shim never injected a fault"
    assert os.listdir(archive.path / "tmp") == []


@pytest.mark.parametrize("ops,err,text", [
    pytest.param("fsync,fdatasync", "EIO", "Input/output error",
                 id="fsync-EIO"),
    pytest.param("fsync,fdatasync", "ENOSPC", "No space left on device",
                 id="fsync-ENOSPC"),
    pytest.param("rename,renameat", "ENOSPC", "No space left on device",
                 id="rename-ENOSPC"),
    pytest.param("rename,renameat", "EIO", "Input/output error",
                 id="rename-EIO"),
    pytest.param("write", "ENOSPC", "No space left on device",
                 id="write-ENOSPC"),
    pytest.param("write", "EIO", "Input/output error", id="write-EIO"),
])
def test_disk_fault_not_counted_then_archived(archive, certs, fault_so,
                                              tmp_path, ops, err, text):
    msgs = [fmsg(i) for i in range(1, 4)]
    log = tmp_path / "fault.log"
    with HostileServer(FakeImap([Folder("INBOX", msgs)]), tls="implicit",
                       cert=certs.server) as hs:
        prof = fault_setup(archive, certs, hs)
        root = root_of(archive)
        env = fault_env(fault_so, log, FAULT_OPS=ops, FAULT_ERRNO=err,
                        FAULT_PATHS="%s/messages:%s/tmp" % (root, root))
        r, proto = archive.run(prof["name"], env=env)
        assert_not_counted(archive, proto, r, text, log)
        r2, proto2 = archive.run(prof["name"])
    assert r2.rc == 0, str(r2)
    assert proto2["status"] == "succeeded"
    assert proto2["counts"]["archived"] == 3
    assert set(archive.files()) == {sha256(m) for m in msgs}
    assert len(archive.messages("alice")) == 3


def test_one_fsync_fails_in_a_batch(archive, certs, fault_so, tmp_path):
    """Only the 2nd fsync fails: the whole commit group is not counted
    (a file already renamed stays as a file without a row, which is
    harmless); the next run archives every message exactly once."""
    msgs = [fmsg(i, b"nth") for i in range(1, 6)]
    log = tmp_path / "fault.log"
    with HostileServer(FakeImap([Folder("INBOX", msgs)]), tls="implicit",
                       cert=certs.server) as hs:
        prof = fault_setup(archive, certs, hs)
        root = root_of(archive)
        env = fault_env(fault_so, log, FAULT_OPS="fsync,fdatasync",
                        FAULT_NTH=2, FAULT_PATHS="%s/tmp" % root)
        r, proto = archive.run(prof["name"], env=env)
        assert_not_counted(archive, proto, r, "Input/output error", log)
        assert len(log.read_text().splitlines()) == 1
        r2, proto2 = archive.run(prof["name"])
    assert r2.rc == 0, str(r2)
    assert proto2["counts"]["archived"] == 5
    assert set(archive.files()) == {sha256(m) for m in msgs}
    assert sorted(m["hash"] for m in archive.messages("alice")) == \
        sorted(sha256(m) for m in msgs)


def parse_trace(path):
    ops = []
    for line in path.read_text().splitlines():
        op, rest = line.split(" ", 1)
        if op == "fail":
            continue
        ops.append((op, rest))
    return ops


def check_commit_order(trace, root, hashes):
    """Rule 1 of DESIGN.md, from the order of system calls: for each
    message the data is fsynced, then renamed into messages/ab/, then
    that directory is fsynced, and only then the index commits (SQLite in
    WAL mode syncs index.sqlite-wal when a transaction commits); no index
    commit falls between a message's rename and its directory sync."""
    wal = "%s/index.sqlite-wal" % root
    for h in hashes:
        final = "%s/messages/%s/%s" % (root, h[:2], h)
        d = "%s/messages/%s" % (root, h[:2])
        ren = [i for i, (op, p) in enumerate(trace)
               if op.startswith("rename") and p.endswith("-> " + final)]
        dsync = [i for i, (op, p) in enumerate(trace)
                 if op in ("fsync", "fdatasync") and p == d]
        walsync = [i for i, (op, p) in enumerate(trace)
                   if op in ("fsync", "fdatasync") and p == wal]
        assert dsync, "directory %s never synced" % d
        assert walsync, "the index was never synced"
        if ren:
            i = ren[-1]
            tmp = trace[i][1].split(" -> ")[0]
            fs = [k for k, (op, p) in enumerate(trace[:i])
                  if op in ("fsync", "fdatasync") and p == tmp]
            assert fs, "%s renamed without an fsync of its data" % h
            after = [k for k in dsync if k > i]
            assert after, "%s renamed, its directory never synced after" % h
            assert not [k for k in walsync if i < k < after[0]], \
                "index committed between the rename of %s and the sync of " \
                "its directory" % h
            start = after[0]
        else:
            start = dsync[-1]
        assert [k for k in walsync if k > start], \
            "no index commit after the directory of %s was synced" % h


def test_commit_order_of_durable_steps(archive, certs, fault_so, tmp_path):
    msgs = [fmsg(i, b"order") for i in range(1, 6)]
    log = tmp_path / "trace.log"
    with HostileServer(FakeImap([Folder("INBOX", msgs)]), tls="implicit",
                       cert=certs.server) as hs:
        prof = fault_setup(archive, certs, hs)
        root = root_of(archive)
        env = fault_env(fault_so, log, FAULT_TRACE=1, FAULT_PATHS=root)
        r, proto = archive.run(prof["name"], env=env)
    assert r.rc == 0, str(r)
    assert proto["counts"]["archived"] == 5
    check_commit_order(parse_trace(log), root, [sha256(m) for m in msgs])


def test_directory_sync_failure_then_file_found_in_place(archive, certs,
                                                         fault_so, tmp_path):
    """The rename succeeds but the directory fsync fails: not counted.
    The next run finds the file in place - and must sync its directory
    before it commits the row, since the earlier sync never succeeded."""
    msgs = [fmsg(i, b"dir") for i in range(1, 4)]
    hashes = [sha256(m) for m in msgs]
    log = tmp_path / "fault.log"
    trace = tmp_path / "trace.log"
    with HostileServer(FakeImap([Folder("INBOX", msgs)]), tls="implicit",
                       cert=certs.server) as hs:
        prof = fault_setup(archive, certs, hs)
        root = root_of(archive)
        # The directories exist from the archive's creation, so the
        # rename happens and only the directory sync fails.
        for h in hashes:
            assert (archive.path / "messages" / h[:2]).is_dir()
        env = fault_env(fault_so, log, FAULT_OPS="fsync,fdatasync",
                        FAULT_PATHS="%s/messages" % root)
        r, proto = archive.run(prof["name"], env=env)
        assert_not_counted(archive, proto, r, "Input/output error", log)
        assert set(archive.files()) == set(hashes), \
            "expected the renamed files in place (rows absent)"
        env = fault_env(fault_so, trace, FAULT_TRACE=1, FAULT_PATHS=root)
        r2, proto2 = archive.run(prof["name"], env=env)
    assert r2.rc == 0, str(r2)
    assert proto2["counts"]["archived"] == 3
    check_commit_order(parse_trace(trace), root, hashes)


# ---- two processes on one archive ------------------------------------------------


def test_second_process_refused_by_the_lock(archive, certs):
    msgs = [fmsg(i, b"lock") for i in range(1, 3)]
    srv = FakeImap([Folder("INBOX", msgs)])

    def script(conn):
        if conn.index == 0:		# hold the first run: never greet
            conn.wait_closed(30)
            return
        srv(conn)
    with HostileServer(script, tls="implicit", cert=certs.server,
                       lifetime=40) as hs:
        prof = hostile.profile(archive, hs, certs, timeout="20s")
        archive.write_config(prof)
        first = spawn(archive, prof["name"])
        try:
            end = time.monotonic() + 10
            while not hs.conns and time.monotonic() < end:
                time.sleep(0.01)
            assert hs.conns, "the first run never connected"
            r = archive.cli("run", "--json", prof["name"], timeout=30)
            assert first.poll() is None, "the first run ended early"
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            first.stderr.close()
        assert r.rc == 1, str(r)
        assert len(hs.conns) == 1, "the second process connected anyway"
        assert str(archive.path) in r.stderr, str(r)
        assert "in use" in r.stderr and str(first.pid) in r.stderr, str(r)
        # The lock dies with its holder: the next run works.
        r3, proto3 = archive.run(prof["name"])
    assert r3.rc == 0, str(r3)
    assert proto3["counts"]["archived"] == 2
