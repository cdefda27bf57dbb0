"""
test_daemon.py - mailstowd against a real Dovecot: READY=1 on a
NOTIFY_SOCKET the test owns, `every 2s` profiles archiving new mail with no
CLI call, SIGHUP reloads (added profile scheduled; broken file refused with
file:line:col while the old profiles keep running), SIGTERM in the middle
of a large run (bounded exit, run `interrupted`, the next run completes,
every message archived once), the control socket (run, "already running",
bad input, peer credentials), journald fields over the native protocol,
and retries with backoff.
"""

import json
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time

import pytest

import mailgen
from conftest import BUILD, REPO, run_mailstow, sha256, to_yaml
from dovecot import _die_with_parent

MAILSTOWD = BUILD / "mailstowd"
WAIT = 30		# seconds for anything that should happen "soon"


def wait_for(pred, timeout=WAIT, what="condition", step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class Datagrams:
    """A bound AF_UNIX datagram socket; a thread keeps reading it (the
    daemon's sd_notify() would block on a full queue, as it would if
    systemd stopped reading) and keeps everything received."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.items = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _reader(self):
        while self.running:
            try:
                d = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.items.append(d)

    def poll(self):
        with self.lock:
            return list(self.items)

    def wait(self, pred, timeout=WAIT, what="datagram", start=0):
        def look():
            items = self.poll()
            for i in range(start, len(items)):
                if pred(items[i]):
                    return i + 1
            return None
        return wait_for(look, timeout, what, step=0.02)

    def close(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


def journal_fields(data):
    """systemd's native journal protocol -> {FIELD: value}."""
    out, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            assert data[nl + 9 + n:nl + 10 + n] == b"\n"
            i = nl + 10 + n
        out[k.decode()] = v.decode("utf-8", "replace")
    return out


class Ctl:
    """One control connection speaking the line protocol."""

    def __init__(self, path, timeout=WAIT):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(str(path))
        self.f = self.s.makefile("rb")

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        b = self.f.readline()
        return b.decode().rstrip("\n") if b else None

    def lines_until(self, *finals):
        out = []
        while True:
            ln = self.line()
            if ln is None:
                return out
            out.append(ln)
            if ln.split(" ", 1)[0] in finals:
                return out

    def close(self):
        self.f.close()
        self.s.close()


def connect_retry(path):
    try:
        return Ctl(path)
    except BlockingIOError:	# backlog full for a moment
        return None


def ctl_request(path, line, finals=("ok", "error", "done")):
    c = Ctl(path)
    try:
        c.send(line.encode() + b"\n")
        return c.lines_until(*finals)
    finally:
        c.close()


class Daemon:
    """mailstowd on a config, with the notify and journal sockets."""

    def __init__(self, workdir, config, journal=True, env=None):
        self.work = workdir
        self.config = config
        tag = "%x" % (time.monotonic_ns() & 0xffffffff)
        self.notify = Datagrams(workdir / ("notify." + tag))
        self.journal = Datagrams(workdir / ("journal." + tag)) \
            if journal else None
        self.err_path = workdir / ("mailstowd.%s.err" % tag)
        e = {k: v for k, v in os.environ.items()
             if k not in ("MAILSTOW_CONFIG", "JOURNAL_STREAM",
                          "WATCHDOG_USEC", "WATCHDOG_PID")}
        e["NOTIFY_SOCKET"] = self.notify.path
        if journal:
            e["MAILSTOW_JOURNAL_SOCKET"] = self.journal.path
        e.update(env or {})
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(MAILSTOWD), "-c", str(config)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err, env=e,
                preexec_fn=_die_with_parent)

    @property
    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def notes(self):
        return [d.decode() for d in self.notify.poll()]

    def wait_note(self, text, start=0, timeout=WAIT):
        return self.notify.wait(lambda d: text.encode() in d.split(b"\n"),
                                timeout, "%r on NOTIFY_SOCKET" % text, start)

    def entries(self):
        return [journal_fields(d) for d in self.journal.poll()]

    def messages(self):
        return [e.get("MESSAGE", "") for e in self.entries()]

    def wait_log(self, regex, timeout=WAIT):
        def look():
            if self.proc.poll() is not None:
                raise AssertionError("mailstowd exited %s\n%s"
                                     % (self.proc.returncode, self.stderr))
            text = "\n".join(self.messages()) if self.journal else self.stderr
            return re.search(regex, text)
        return wait_for(look, timeout, "log line /%s/" % regex)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signal and wait; (exit status, seconds it took)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("mailstowd did not exit within %ss\n%s"
                                 % (timeout, self.stderr))
        return rc, time.monotonic() - t0

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()
        if self.journal:
            self.journal.close()


@pytest.fixture
def sockdir():
    # AF_UNIX paths are short; pytest's tmp_path can be too long.
    d = tempfile.mkdtemp(prefix="mstd-", dir="/tmp")
    os.chmod(d, 0o755)
    yield __import__("pathlib").Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemons(sockdir):
    started = []

    def start(config, **kw):
        d = Daemon(sockdir, config, **kw)
        started.append(d)
        return d
    yield start
    bad = []
    for d in started:
        d.close()
        # Under SANITIZE=1 builds: any report fails the test.
        if re.search(r"AddressSanitizer|LeakSanitizer|runtime error:",
                     d.stderr):
            bad.append(d.stderr[-4000:])
    if bad:
        pytest.fail("sanitizer report from mailstowd:\n" + "\n".join(bad))


def write_config(archive, ctl, *profiles, extra=""):
    doc = {"archive": {"path": str(archive.path)},
           "daemon": {"control_socket": str(ctl)},
           "profiles": list(profiles)}
    archive.config.write_text("# written by test_daemon.py\n" +
                              to_yaml(doc) + "\n" + extra)
    os.chmod(archive.config, 0o600)
    return archive.config


def runs(archive, profile=None):
    """Run rows straight from the index (read-only): the CLI would need a
    valid config, and some tests break it on purpose."""
    db = sqlite3.connect("file:%s?mode=ro" % (archive.path / "index.sqlite"),
                         uri=True, timeout=5)
    try:
        rows = db.execute(
            "SELECT id, profile, trigger, status, started, finished, found, "
            "archived, "
            "skipped, failed, bytes FROM runs WHERE ?1 IS NULL OR "
            "profile = ?1 ORDER BY id", (profile,)).fetchall()
    except sqlite3.OperationalError:
        return []		# not created yet
    finally:
        db.close()
    return [{"run": r[0], "profile": r[1], "trigger": r[2], "status": r[3],
             "started": r[4], "finished": r[5],
             "counts": dict(zip(("found", "archived", "skipped", "failed",
                                 "bytes"), r[6:]))} for r in rows]


def done_runs(archive, profile):
    return [r for r in runs(archive, profile) if r["status"] != "running"]


def small_layout(seed):
    g = mailgen.MailGen(seed)
    return mailgen.Layout(folders={"INBOX": [g.varied() for _ in range(5)],
                                   "Sent": [g.varied() for _ in range(2)]},
                          copies=[])


def bulk_seed(dovecot, user, n, seed):
    """n messages into INBOX over one connection (APPEND, no copies)."""
    g = mailgen.MailGen(seed)
    conn = dovecot.imap_connect(user)
    try:
        for _ in range(n):
            dovecot.append(user, "INBOX", g.message(kind="plain").raw,
                           conn=conn)
    finally:
        conn.logout()


def server_hashes(dovecot, user):
    return {sha256(raw) for f in dovecot.fetch_all(user).values()
            for raw in f.values()}


def check_exactly_once(archive, dovecot, user, only=True):
    """Every server message is archived, each distinct message once, and
    every server location is recorded once (only: the archive holds no
    other user's files)."""
    msgs = archive.messages(user.name)
    hashes = [m["hash"] for m in msgs]
    assert len(hashes) == len(set(hashes)), "a message is listed twice"
    want = server_hashes(dovecot, user)
    assert set(hashes) == want, "%d missing, %d extra" % (
        len(want - set(hashes)), len(set(hashes) - want))
    locs = [(l["folder"], l["uidvalidity"], l["uid"])
            for m in msgs for l in m["locations"]]
    assert len(locs) == len(set(locs)), "a server location is recorded twice"
    files = archive.files()
    assert set(files) == want if only else want <= set(files)
    for h in want:
        assert sha256(files[h]) == h


# ---- READY, every 2s, archiving without the CLI ------------------------------


def test_ready_and_every_schedule_archives_new_mail(dovecot, archive, daemons,
                                                    sockdir):
    user = dovecot.add_user()
    dovecot.seed(user, small_layout(11))
    ctl = sockdir / "ctl"
    conf = write_config(archive, ctl, archive.profile(
        dovecot, user, name="every2", schedule="every 2s"))
    d = daemons(conf, journal=False)
    d.wait_note("READY=1", timeout=15)
    assert any(n.startswith("STATUS=") or "\nSTATUS=" in n
               for n in d.notes()), d.notes()
    # READY only once the control socket is up (mode 0660).
    assert ctl.is_socket()
    assert ctl.stat().st_mode & 0o777 == 0o660

    wait_for(lambda: len(done_runs(archive, "every2")) >= 2, 20,
             "two scheduled runs")
    first = done_runs(archive, "every2")
    assert all(r["trigger"] == "schedule" for r in first), first
    assert first[0]["status"] == "succeeded", first[0]
    assert first[0]["counts"]["archived"] == 7
    check_exactly_once(archive, dovecot, user)

    # New mail arrives; the daemon picks it up by itself.
    new = mailgen.MailGen(99).message(subject="arrived later")
    dovecot.append(user, "INBOX", new.raw)
    wait_for(lambda: sha256(new.raw) in {m["hash"] for m in
                                         archive.messages(user.name)},
             20, "the new message in the archive")
    # Two runs later it is still there once, and nothing else changed.
    n = len(done_runs(archive, "every2"))
    wait_for(lambda: len(done_runs(archive, "every2")) >= n + 1, 20,
             "another run")
    check_exactly_once(archive, dovecot, user)
    # "every 2s" counts from the end of a run (times are whole seconds).
    rs = done_runs(archive, "every2")
    assert all(r["status"] == "succeeded" for r in rs), rs
    for a, b in zip(rs, rs[1:]):
        assert b["started"] >= a["finished"] + 1, (a, b)
        assert b["started"] <= a["finished"] + 4, (a, b)
    # Plain stderr lines (no journal here), one per start and end.
    err = d.stderr
    assert re.search(r"mailstowd: profile every2 run \d+: started "
                     r"\(trigger schedule\)", err), err
    assert re.search(r"mailstowd: profile every2 run \d+: succeeded: "
                     r"found \d+ archived \d+ skipped \d+ failed 0", err), err
    rc, secs = d.stop()
    assert rc == 0, d.stderr
    assert not ctl.exists(), "control socket left behind"
    assert user.password not in err


# ---- SIGHUP ---------------------------------------------------------------------


def test_sighup_adds_profile_and_refuses_broken_file(dovecot, archive,
                                                     daemons, sockdir):
    ua, ub = dovecot.add_user(), dovecot.add_user()
    dovecot.seed(ua, small_layout(21))
    dovecot.seed(ub, small_layout(22))
    ctl = sockdir / "ctl"
    pa = archive.profile(dovecot, ua, name="pa", schedule="every 2s")
    conf = write_config(archive, ctl, pa)
    d = daemons(conf)
    d.wait_note("READY=1", timeout=15)
    wait_for(lambda: done_runs(archive, "pa"), 20, "a run of pa")

    pb = archive.profile(dovecot, ub, name="pb", schedule="every 2s")
    write_config(archive, ctl, pa, pb)
    mark = len(d.notes())
    d.proc.send_signal(signal.SIGHUP)
    i = d.wait_note("RELOADING=1", start=mark)
    reloading = d.notify.poll()[i - 1].decode()
    assert re.search(r"^MONOTONIC_USEC=\d+$", reloading, re.M), reloading
    d.wait_note("READY=1", start=i)
    wait_for(lambda: [r for r in done_runs(archive, "pb")
                      if r["status"] == "succeeded"], 20, "a run of pb")
    check_exactly_once(archive, dovecot, ub, only=False)
    st = "\n".join(ctl_request(ctl, "status json")[:-1])
    names = [p["name"] for p in json.loads(
        "\n".join(ln[5:] for ln in st.split("\n")))["profiles"]]
    assert names == ["pa", "pb"]

    # A broken file: unknown key on a known line.
    text = archive.config.read_text()
    bad_line = text.count("\n") + 1
    archive.config.write_text(text + "bogus_key: 1\n")
    mark = len(d.notes())
    d.proc.send_signal(signal.SIGHUP)
    i = d.wait_note("RELOADING=1", start=mark)
    d.wait_note("READY=1", start=i)
    m = d.wait_log(r"reload failed, keeping the running configuration: "
                   r"(\S+):(\d+):(\d+): bogus_key")
    assert m.group(1) == str(archive.config)
    assert int(m.group(2)) == bad_line and m.group(3) == "1"
    errs = [e for e in d.entries() if "reload failed" in e.get("MESSAGE", "")]
    assert errs and errs[0]["PRIORITY"] == "3"
    # Both profiles keep running on the old configuration.
    na, nb = len(done_runs(archive, "pa")), len(done_runs(archive, "pb"))
    wait_for(lambda: len(done_runs(archive, "pa")) > na and
             len(done_runs(archive, "pb")) > nb, 20,
             "runs of pa and pb after the failed reload")
    # The control socket's reload says the same.
    r = ctl_request(ctl, "reload")
    assert r[-1].startswith("error inval %s:%d:1:" % (archive.config,
                                                      bad_line)), r

    # Removing a profile stops its schedule.
    write_config(archive, ctl, pb)
    assert ctl_request(ctl, "reload") == ["ok"]
    time.sleep(0.5)		# a run of pa may still be ending
    na = len(runs(archive, "pa"))
    time.sleep(3)
    assert len(runs(archive, "pa")) == na, "removed profile still runs"
    rc, _ = d.stop()
    assert rc == 0


# ---- SIGTERM in the middle of a run ---------------------------------------------


def archived_count(archive, user):
    try:
        db = sqlite3.connect("file:%s?mode=ro" % (archive.path /
                                                   "index.sqlite"),
                             uri=True, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM messages WHERE "
                              "archive_user = ?", (user,)).fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def test_sigterm_mid_run_interrupts_and_loses_nothing(dovecot, archive,
                                                      daemons, sockdir):
    user = dovecot.add_user()
    total = 3000
    bulk_seed(dovecot, user, total, seed=31)
    ctl = sockdir / "ctl"
    conf = write_config(archive, ctl, archive.profile(
        dovecot, user, name="big", schedule="manual"))
    d = daemons(conf)
    d.wait_note("READY=1", timeout=15)

    c = Ctl(ctl, timeout=60)
    c.send(b"run big\n")
    started = c.line()
    assert re.fullmatch(r"started \d+", started), started
    run_id = int(started.split()[1])
    wait_for(lambda: archived_count(archive, user.name) > 0, 30,
             "the first committed messages", step=0.005)
    assert archived_count(archive, user.name) < total, \
        "the run ended before SIGTERM could interrupt it"
    rc, secs = d.stop(signal.SIGTERM, timeout=20)
    assert rc == 0, d.stderr
    assert secs < 12, "exit took %.1fs" % secs
    tail = c.lines_until("done", "error")
    c.close()
    assert tail[-1] == "done %d interrupted" % run_id, tail
    notes = "\n".join(d.notes())
    assert "STOPPING=1" in notes
    d.close()

    r = [x for x in runs(archive, "big") if x["run"] == run_id][0]
    assert r["status"] == "interrupted", r
    part = archived_count(archive, user.name)
    assert 0 < part < total

    # The next run (by a new daemon) completes the work.
    d2 = daemons(conf)
    d2.wait_note("READY=1", timeout=15)
    out = ctl_request(ctl, "run big", finals=("done", "error"))
    assert re.fullmatch(r"done \d+ succeeded", out[-1]), out
    last = runs(archive, "big")[-1]
    assert last["counts"]["archived"] == total - part, last
    check_exactly_once(archive, dovecot, user)
    assert d2.stop()[0] == 0


# ---- control socket -------------------------------------------------------------


def test_control_run_already_running_and_unknown(dovecot, archive, daemons,
                                                 sockdir):
    user = dovecot.add_user()
    dovecot.seed(user, mailgen.standard_mailbox(seed=41, big=2 * 1024 * 1024))
    ctl = sockdir / "ctl"
    conf = write_config(archive, ctl, archive.profile(
        dovecot, user, name="man", schedule="manual"))
    d = daemons(conf)
    d.wait_note("READY=1", timeout=15)

    first = Ctl(ctl, timeout=60)
    first.send(b"run man\n")
    started = first.line()
    assert re.fullmatch(r"started \d+", started), started
    run_id = int(started.split()[1])
    second = ctl_request(ctl, "run man")
    assert re.fullmatch(r"error busy profile man is already running since "
                        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(run %d\)"
                        % run_id, second[-1]), second
    rest = first.lines_until("done", "error")
    first.close()
    assert rest[-1] == "done %d succeeded" % run_id, rest
    assert any(ln.startswith("progress ") for ln in rest), rest
    rs = runs(archive, "man")
    assert [(r["run"], r["trigger"], r["status"]) for r in rs] == \
        [(run_id, "manual", "succeeded")]
    check_exactly_once(archive, dovecot, user)

    assert ctl_request(ctl, "run nosuch")[-1].startswith(
        "error noent no profile 'nosuch'")
    st = ctl_request(ctl, "status")
    assert st[-1] == "ok"
    assert any(re.search(r"^data man .*last: run %d succeeded" % run_id, ln)
               for ln in st), st
    assert d.stop()[0] == 0


def test_control_bad_input_and_limits(dovecot, archive, daemons, sockdir):
    user = dovecot.add_user()
    ctl = sockdir / "ctl"
    conf = write_config(archive, ctl, archive.profile(
        dovecot, user, name="p", schedule="manual"))
    d = daemons(conf)
    d.wait_note("READY=1", timeout=15)

    for junk in (b"hello\n", b"run\n", b"run a b\n", b"status\x00\n",
                 b"\xff\xfe\n", b"status xml\n"):
        c = Ctl(ctl)
        c.send(junk)
        out = c.lines_until("error")
        c.close()
        assert out and out[-1].startswith("error inval "), (junk, out)
    # Overlong line, no newline: refused without waiting for more.
    c = Ctl(ctl)
    c.send(b"r" * 5000)
    out = c.lines_until("error")
    c.close()
    assert out[-1].startswith("error inval request line too long"), out
    # A peer that says nothing is dropped after a few seconds.
    c = Ctl(ctl, timeout=15)
    t0 = time.monotonic()
    out = c.lines_until("error")
    c.close()
    assert out and out[-1].startswith("error proto no request"), out
    assert 3 <= time.monotonic() - t0 < 10
    # Too many idle connections: the extra ones are refused at once.
    idle = []
    for _ in range(40):
        idle.append(wait_for(lambda: connect_retry(ctl), 5, "connect"))
    try:
        refused = 0
        for c in idle[32:]:
            ln = c.line()
            if ln is not None and ln.startswith("error limit"):
                refused += 1
        assert refused == 8
    finally:
        for c in idle:
            c.close()
    # The daemon is still up and answers.
    wait_for(lambda: ctl_request(ctl, "status")[-1] == "ok", 10,
             "status after bad input")
    assert d.proc.poll() is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another "
                    "user")
def test_control_refuses_other_users(archive, daemons, sockdir, dovecot):
    user = dovecot.add_user()
    ctl = sockdir / "ctl"
    conf = write_config(archive, ctl, archive.profile(
        dovecot, user, name="p", schedule="manual"))
    d = daemons(conf)
    d.wait_note("READY=1", timeout=15)
    # Open the file mode so the daemon's own SO_PEERCRED check is what
    # stands between `nobody` and the daemon.
    os.chmod(ctl, 0o666)
    nobody = pwd.getpwnam("nobody")
    code = """if True:
        import socket, sys
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(sys.argv[1])
        try:
            s.sendall(b"status\\n")
        except OSError:
            pass		# refused already; the reason is there to read
        print(s.makefile().read())
        """

    def drop():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    p = subprocess.run(["/usr/bin/python3", "-c", code, str(ctl)],
                       capture_output=True, timeout=20, preexec_fn=drop)
    assert p.stdout.decode().startswith("error perm "), p
    assert ctl_request(ctl, "status")[-1] == "ok"


def test_cli_run_uses_daemon(dovecot, archive, daemons, sockdir):
    user = dovecot.add_user()
    dovecot.seed(user, small_layout(51))
    ctl = sockdir / "ctl"
    conf = write_config(archive, ctl, archive.profile(
        dovecot, user, name="cli", schedule="manual"))
    d = daemons(conf)
    d.wait_note("READY=1", timeout=15)
    r = run_mailstow("-c", conf, "run", "--json", "cli")
    assert r.rc == 0, r
    proto = r.json()
    assert proto["trigger"] == "manual" and proto["status"] == "succeeded"
    assert [x["run"] for x in runs(archive, "cli")] == [proto["run"]]
    st = run_mailstow("-c", conf, "status")
    assert st.rc == 0 and b"cli" in st.out, st
    rl = run_mailstow("-c", conf, "reload")
    assert rl.rc == 0, rl
    d.wait_note("READY=1", timeout=15)
    assert d.proc.poll() is None


# ---- journald -------------------------------------------------------------------


def test_journal_native_fields(dovecot, archive, daemons, sockdir):
    user = dovecot.add_user()
    dovecot.seed(user, small_layout(61))
    ctl = sockdir / "ctl"
    conf = write_config(archive, ctl, archive.profile(
        dovecot, user, name="jr", schedule="manual"))
    d = daemons(conf, env={"WATCHDOG_USEC": "400000"})
    d.wait_note("READY=1", timeout=15)
    out = ctl_request(ctl, "run jr", finals=("done", "error"))
    run_id = int(out[-1].split()[1])
    assert out[-1] == "done %d succeeded" % run_id, out
    d.wait_log(r"profile jr run %d: succeeded" % run_id)
    ents = [e for e in d.entries() if e.get("MAILSTOW_RUN") == str(run_id)]
    assert len(ents) == 2, ents		# one line at start, one at the end
    start, end = ents
    for e in ents:
        assert e["MAILSTOW_PROFILE"] == "jr"
        assert e["MAILSTOW_MAILBOX"] == user.name
        assert e["PRIORITY"] == "6"
        assert e["SYSLOG_IDENTIFIER"] == "mailstowd"
    assert start["MESSAGE"] == "profile jr run %d: started (trigger manual)" \
        % run_id
    assert re.fullmatch(r"profile jr run %d: succeeded: found 7 archived 7 "
                        r"skipped 0 failed 0, \d+ bytes in \d+s" % run_id,
                        end["MESSAGE"]), end
    # The watchdog is pinged at half of WATCHDOG_USEC.
    n = sum(1 for x in d.notes() if "WATCHDOG=1" in x.split("\n"))
    time.sleep(1.1)
    m = sum(1 for x in d.notes() if "WATCHDOG=1" in x.split("\n"))
    assert 3 <= m - n <= 8, (n, m)
    rc, _ = d.stop()
    assert rc == 0
    raw = b"".join(d.journal.poll())
    assert user.password.encode() not in raw
    assert user.password not in d.stderr


# ---- retries --------------------------------------------------------------------


def test_failed_runs_retry_with_backoff(archive, daemons, sockdir, dovecot):
    user = dovecot.add_user()
    ctl = sockdir / "ctl"
    s = socket.socket()
    s.bind(("127.0.0.1", 0))		# a port where nothing listens
    port = s.getsockname()[1]
    prof = archive.profile(dovecot, user, name="down", schedule="every 1h")
    prof["server"]["port"] = port
    conf = write_config(archive, ctl, prof)
    try:
        d = daemons(conf, env={"MAILSTOW_RETRY_BASE_MS": "100"})
        d.wait_note("READY=1", timeout=15)
        # 1 scheduled + 5 retries after 0.1+0.2+0.4+0.8+1.6 s.
        wait_for(lambda: len(done_runs(archive, "down")) >= 6, 20,
                 "six failed runs")
        time.sleep(2.5)
        rs = done_runs(archive, "down")
    finally:
        s.close()
    assert [r["trigger"] for r in rs] == ["schedule"] + ["retry"] * 5, rs
    assert all(r["status"] == "failed" for r in rs), rs
    gaps = [(b["run"], b["started"]) for b in rs]
    assert len(gaps) == 6
    d.wait_log(r"profile down: retry 5 of 5")
    assert d.stop()[0] == 0
