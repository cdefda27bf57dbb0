"""
test_slow_disk.py - a disk slower than the network: the store's writer
thread falls behind, the sessions stop reading, and nothing is lost.

One mailbox on the real test Dovecot holds ~11 MB of messages of 60-120 KB
(most above the 64 KiB chunk, so they reach the disk in several writes).
`mailstow -v run` archives it over IMAP, and over POP3, under the
LD_PRELOAD shim tests/fault/fault.c with FAULT_ACTION=delay: every write(2)
into the archive's tmp/ sleeps DELAY_MS first, so the writer drains about
3 MB/s while loopback delivers far faster and the writer's queue must pass
its 4 MiB high mark (STORE_WRITER_HIGH, lib/store/store_private.h).  The
run must still succeed with every message byte-identical to the server's,
leave tmp/ empty, and say on stderr (debug level) that it paused reading
more than once (paused, resumed, paused again); a second run without the
shim finds nothing new.

Then mailstowd on a disk so slow (1 s a write) that a run cannot end
within the daemon's stop timeout after SIGTERM: the commit thread is
still waiting for the writer when the daemon gives up.  The daemon must
exit by itself, cleanly (no use of the freed store: it leaves the store
to the exit), and the next daemon must open the archive, mark the run
interrupted and archive everything exactly once.
"""

import base64
import os
import random
import re
import signal
import subprocess
import time

import pytest

from conftest import Archive, sha256
from test_daemon import Ctl, daemons, runs, sockdir, wait_for  # noqa: F401
from test_daemon_faults import (assert_nothing_counted_is_lost,
                                check_exactly_once, ctl_run, fault_env,
                                fault_so, maildir_put,  # noqa: F401
                                prepare, protocol, server_copy)

MESSAGES = 120
SIZES = (60 * 1000, 120 * 1000)
CHUNK = 64 * 1024		# STORE_BLOB_CHUNK: bytes per write(2)
DELAY_MS = 20
PAUSED = "the archive's disk is behind; reading paused"
RESUMED = "the archive's disk caught up; reading again"
RUN_LIMIT = 30			# seconds for one `mailstow run`


def big_message(seed, i, rnd):
    """A deterministic message of 60-120 KB: a base64 attachment of
    random bytes, CRLF line ends (as Dovecot serves them from Maildir)."""
    size = rnd.randrange(*SIZES)
    raw = base64.b64encode(rnd.randbytes(size * 3 // 4))
    lines = b"\r\n".join(raw[k:k + 76] for k in range(0, len(raw), 76))
    return (b"From: Slow Disk <slow@example.org>\r\n"
            b"To: archive@example.org\r\n"
            b"Subject: slow disk %d/%d\r\n"
            b"Message-ID: <slow-%d-%d@example.org>\r\n"
            b"Date: Fri, 01 Mar 2024 08:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            b"%s\r\n" % (seed, i, seed, i, lines))


def big_mailbox(seed):
    rnd = random.Random(seed)
    return [big_message(seed, i, rnd) for i in range(MESSAGES)]


def check_all_once(archive, dovecot, user, protocol, msgs):
    """Every seeded message is archived once, byte for byte.  A POP3
    location has no UID to tell two apart (it shows as uid 0), so the
    check of distinct locations is IMAP's only."""
    if protocol == "imaps":
        check_exactly_once(archive, dovecot, user)
    else:
        server = server_copy(dovecot, user)
        assert assert_nothing_counted_is_lost(archive, user, server) == \
            set(server)
        listed = [m["hash"] for m in archive.messages(user.name)]
        assert sorted(listed) == sorted(server), "listed twice or missing"
    files = archive.files()
    assert len(files) == len(msgs)
    for m in msgs:
        assert files[sha256(m)] == m
    assert os.listdir(archive.path / "tmp") == []


@pytest.mark.parametrize("protocol", ["imaps", "pop3s"])
def test_slow_disk_pauses_reading_and_loses_nothing(
        dovecot, archive, fault_so, tmp_path, protocol):
    seed = {"imaps": 31, "pop3s": 32}[protocol]
    user = dovecot.add_user()
    over = {"folders": Archive.DELETE} if protocol == "pop3s" else {}
    prof = archive.profile(dovecot, user, protocol=protocol, name="slow",
                           **over)
    archive.write_config(prof)
    # The archive is made by a run over the empty mailbox, so that
    # FAULT_PATHS can name tmp/ by its real path.
    r, proto = archive.run("slow", timeout=RUN_LIMIT)
    assert r.rc == 0 and proto["counts"]["archived"] == 0, str(r)

    msgs = big_mailbox(seed)
    total = sum(map(len, msgs))
    assert total > 2.5 * 4 * 1024 * 1024
    assert sum(len(m) > CHUNK for m in msgs) > MESSAGES // 2
    maildir_put(dovecot, user, msgs)
    server = server_copy(dovecot, user)
    assert set(server) == {sha256(m) for m in msgs}

    tmpdir = os.path.realpath(archive.path / "tmp")
    log = tmp_path / "fault.log"
    env = fault_env(fault_so, log, FAULT_OPS="write", FAULT_ACTION="delay",
                    FAULT_DELAY_MS=DELAY_MS, FAULT_PATHS=tmpdir)
    r = archive.cli("-v", "run", "--json", "slow", env=env,
                    timeout=RUN_LIMIT)
    assert r.rc == 0, str(r)
    proto = r.json()
    assert proto["status"] == "succeeded", str(r)
    assert proto["counts"]["archived"] == MESSAGES, proto["counts"]
    assert proto["counts"]["failed"] == 0, proto["counts"]

    # The shim slowed the writer's own files: its one log line names a
    # write under tmp/.  (No timing is asserted: machines here are
    # shared.)
    lines = log.read_text().splitlines() if log.exists() else []
    assert len(lines) == 1 and lines[0].startswith(
        "delay write %s/" % tmpdir), lines
    writes = sum(-(-len(m) // CHUNK) for m in msgs)

    # Backpressure ran: reading paused, resumed, and paused again once
    # the queue refilled; every pause was followed by its resume.
    marks = [ln for ln in r.stderr.splitlines()
             if PAUSED in ln or RESUMED in ln]
    pauses = sum(PAUSED in ln for ln in marks)
    assert pauses >= 2, "reading paused %d times\n%s" % (pauses, r)
    assert [PAUSED in ln for ln in marks] == [True, False] * pauses, marks
    print("%s: %d messages, %.1f MB, %d writes, %d pauses, %.1fs"
          % (protocol, MESSAGES, total / 1e6, writes, pauses, r.seconds))

    check_all_once(archive, dovecot, user, protocol, msgs)

    # Without the shim: nothing new, nothing written twice.
    r2, proto2 = archive.run("slow", timeout=RUN_LIMIT)
    assert r2.rc == 0 and proto2["status"] == "succeeded", str(r2)
    assert proto2["counts"]["archived"] == 0, proto2["counts"]
    check_all_once(archive, dovecot, user, protocol, msgs)


# ---- SIGTERM while the writer is far behind ------------------------------------

STUCK_DELAY_MS = 1000		# per 64 KiB write: ~64 s to drain 4 MiB
STOP_TIMEOUT_S = 10		# MD_STOP_TIMEOUT_S, daemon/mailstowd.c
EXIT_LIMIT = 25			# seconds from SIGTERM to a forced kill
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|"
                       r"runtime error:|heap-use-after-free")


def test_sigterm_with_writer_behind_exits_after_stop_timeout(
        dovecot, archive, daemons, sockdir, fault_so, tmp_path):
    msgs = big_mailbox(33)
    ctl, conf, (user,) = prepare(dovecot, archive, sockdir, ["stuck"],
                                 [msgs])
    tmpdir = os.path.realpath(archive.path / "tmp")
    log = tmp_path / "fault.log"
    d = daemons(conf, journal=False, env=fault_env(
        fault_so, log, FAULT_OPS="write", FAULT_ACTION="delay",
        FAULT_DELAY_MS=STUCK_DELAY_MS, FAULT_PATHS=tmpdir))
    d.wait_note("READY=1", timeout=15)

    c = Ctl(ctl, timeout=60)
    try:
        c.send(b"run stuck\n")
        started = c.line()
        assert started and re.fullmatch(r"started \d+", started), started
        run_id = int(started.split()[1])
        # The writer is in its first 1 s write; a few more seconds and
        # its queue holds megabytes that take about a minute to drain.
        wait_for(lambda: log.exists() and log.read_text().strip(), 20,
                 "the first delayed write")
        assert log.read_text().startswith("delay write %s/" % tmpdir)
        time.sleep(3)
        assert d.proc.poll() is None, "mailstowd died\n%s" % d.stderr

        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(timeout=EXIT_LIMIT)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait()
            pytest.fail("mailstowd did not exit within %ss of SIGTERM\n%s"
                        % (EXIT_LIMIT, d.stderr[-4000:]))
        secs = time.monotonic() - t0
    finally:
        c.close()
    err = d.stderr
    assert not SANITIZER.search(err), err[-6000:]
    assert rc == 0, "exit status %s\n%s" % (rc, err[-4000:])
    # The stop timeout fired: the run really was stuck (no timing is
    # asserted: machines here are shared).
    assert "did not end within %ds" % STOP_TIMEOUT_S in err, err[-4000:]
    row = [r for r in runs(archive, "stuck") if r["run"] == run_id]
    assert row and row[0]["status"] == "running", row
    print("exit %.1fs after SIGTERM; fault log %r"
          % (secs, log.read_text().strip()))

    # A daemon without the shim: the archive opens (the lock went with
    # the process), the stuck run is marked interrupted, and a new run
    # archives what it had not committed.
    server = server_copy(dovecot, user)
    d2 = daemons(conf, journal=False)
    d2.wait_note("READY=1", timeout=15)
    proto = protocol(archive, run_id)
    assert proto["status"] == "interrupted", proto
    held = assert_nothing_counted_is_lost(archive, user, server)
    run2, status2 = ctl_run(ctl, "stuck", limit=30)
    assert status2 == "succeeded", protocol(archive, run2)
    assert protocol(archive, run2)["counts"]["archived"] == \
        MESSAGES - len(held)
    check_exactly_once(archive, dovecot, user)
    assert os.listdir(archive.path / "tmp") == []
    assert d2.stop()[0] == 0
    assert not SANITIZER.search(d2.stderr), d2.stderr[-6000:]
