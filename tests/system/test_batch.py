"""
test_batch.py - batch profiles against the test Dovecot: one run archives
many mailboxes of one server, each into its own archive user, logging in
as a Dovecot master user (SASL PLAIN with the mailbox as authorization
identity, or "user*master") or with each mailbox's own password file.  A
mailbox that fails fails alone; mailboxes_file is read again at every run
of a running daemon, a malformed line is an error naming file:line and the
rest still runs; a mailbox added later is archived cold while the others
stay incremental.

What the server holds is read back over IMAP by the harness as each user;
what the archive holds is read with `mailstow messages USER --json` and
from the files under <archive>/messages.  Dovecot logs "Master user
logging in as USER" for every master login, which tells a master login
from the mailbox's own.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

import mailgen
from conftest import (BUILD, MASTER_USER, Archive, error_texts, sha256,
                      to_yaml)
import dovecot as harness
from dovecot import _die_with_parent

MAILSTOWD = BUILD / "mailstowd"


# ---- helpers ----------------------------------------------------------------


def mailbox_users(dc, n, tag, shared):
    """n fresh users, each with its own messages in INBOX and Sent, and
    `shared` (the same bytes) in every INBOX.  Returns [(User, {hash:
    bytes}) ...] with what the server then serves (BODY.PEEK[])."""
    out = []
    for i in range(n):
        user = dc.add_user("%s-%d" % (tag, i + 1))
        g = mailgen.MailGen(int(tag[1:], 16) * 10 + i)
        layout = mailgen.Layout(folders={
            "INBOX": [g.varied(), g.varied(), shared],
            "Sent": [g.varied()],
        }, copies=[])
        dc.seed(user, layout)
        held = {sha256(raw): raw for f in dc.fetch_all(user).values()
                for raw in f.values()}
        assert len(held) == 4
        out.append((user, held))
    return out


def tag():
    return "b%s" % os.urandom(3).hex()


def master_profile(archive, dc, name, method, mailboxes=None, **over):
    """A batch profile logging in as the harness's master user."""
    master = dc.master_users[MASTER_USER]
    prof = archive.profile(dc, master, name=name, **over)
    prof["auth"] = {"master_user": MASTER_USER,
                    "password_file": prof["auth"]["password_file"],
                    "method": method}
    if mailboxes is not None:
        prof["mailboxes"] = mailboxes
    return prof


def archived(archive, archive_user):
    """{hash: [locations]} of `mailstow messages USER --json`; a hash
    listed twice fails."""
    msgs = archive.messages(archive_user)
    hashes = [m["hash"] for m in msgs]
    assert len(hashes) == len(set(hashes)), \
        "%s holds a message twice: %s" % (archive_user, hashes)
    return {m["hash"]: m["locations"] for m in msgs}


def check_archive_user(archive, archive_user, profile, mailbox, held):
    """archive_user holds exactly `held` ({hash: bytes}), each seen in
    `mailbox` of `profile`, each file holding exactly its bytes."""
    got = archived(archive, archive_user)
    assert set(got) == set(held), "%s: %d missing, %d extra" % (
        archive_user, len(set(held) - set(got)), len(set(got) - set(held)))
    files = archive.files()
    for h, raw in held.items():
        assert files.get(h) == raw, "file %s of %s" % (h, archive_user)
        assert {(l["profile"], l["mailbox"]) for l in got[h]} == \
            {(profile, mailbox)}, got[h]


def master_logins(dc, start=0):
    """Users Dovecot let the master user act for, since log offset start."""
    return re.findall(r"Master user logging in as (\S+)",
                      dc.log_text()[start:])


def folder_rows(proto):
    """{(mailbox, folder): counts} of the protocol."""
    out = {}
    for f in proto["folders"]:
        key = (f["mailbox"], f["folder"])
        assert key not in out, "folder listed twice: %s" % (key,)
        out[key] = f
    return out


def counts_of(row):
    return tuple(row[k] for k in ("found", "archived", "skipped", "failed"))


# ---- master user ------------------------------------------------------------


@pytest.mark.parametrize("method", ["authzid", "separator"])
def test_master_user_batch(dovecot_master, archive, method):
    """Five mailboxes, each into its own archive user (the second into
    a differently named one), through the master user; a sixth that does
    not exist on the server fails alone."""
    dc = dovecot_master
    t = tag()
    g = mailgen.MailGen(7)
    shared = g.message(kind="plain", subject="To all staff")
    users = mailbox_users(dc, 5, t, shared)
    missing = "%s-nosuch" % t
    arch = {u.name: u.name for u, _ in users}
    arch[users[1][0].name] = "%s-archive" % users[1][0].name
    mboxes = [{"user": u.name} for u, _ in users]
    mboxes[1]["archive_user"] = arch[users[1][0].name]
    mboxes.insert(3, {"user": missing})
    # With method separator, "*" is the default separator (Dovecot's).
    prof = master_profile(archive, dc, "staff-" + t, method, mboxes,
                          max_parallel=2)
    archive.write_config(prof)

    start = len(dc.log_text())
    r, proto = archive.run(prof["name"])
    assert r.rc == 1, r
    assert proto["status"] == "completed_with_errors", r
    errs = [e for e in proto["events"] if e["level"] == "error"]
    assert len(errs) == 1, errs
    assert errs[0]["mailbox"] == missing, errs
    assert "auth" in errs[0]["text"].lower(), errs
    total = sum(len(held) for _, held in users)
    c = proto["counts"]
    assert (c["found"], c["archived"], c["skipped"], c["failed"]) == \
        (total, total, 0, 0), c
    assert c["bytes"] == sum(len(raw) for _, held in users
                             for raw in held.values()), c
    rows = folder_rows(proto)
    assert {m for m, _ in rows} == {u.name for u, _ in users}, rows
    for u, held in users:
        assert counts_of(rows[(u.name, "INBOX")]) == (3, 3, 0, 0), rows
        assert counts_of(rows[(u.name, "Sent")]) == (1, 1, 0, 0), rows
        check_archive_user(archive, arch[u.name], prof["name"], u.name, held)
    # The mailbox user's name is not an archive user when it has another.
    assert archived(archive, users[1][0].name) == {}
    assert archived(archive, missing) == {}
    # The shared message: one file, one row in each of the five archives.
    files = archive.files()
    assert files[sha256(shared.raw)] == shared.raw
    assert len(files) == 1 + 3 * 5
    # Every mailbox, the missing one too, was a master login.
    assert sorted(master_logins(dc, start)) == \
        sorted([u.name for u, _ in users] + [missing])
    archive.assert_secret_absent(dc.master_users[MASTER_USER].password)

    # Incremental per mailbox: nothing new, the missing one fails again.
    r2, proto2 = archive.run(prof["name"])
    assert r2.rc == 1, r2
    assert proto2["status"] == "completed_with_errors", r2
    c = proto2["counts"]
    assert (c["found"], c["archived"], c["skipped"], c["failed"]) == \
        (total, 0, total, 0), c
    assert [e["mailbox"] for e in proto2["events"]
            if e["level"] == "error"] == [missing], proto2
    assert len(archive.files()) == 1 + 3 * 5


@pytest.mark.parametrize("method", ["authzid", "separator"])
def test_master_user_batch_pop3(dovecot_master, archive, method):
    """The same over POP3 (AUTH PLAIN with an authorization identity, or
    USER "user*archiver"): each inbox into its own archive user."""
    dc = dovecot_master
    t = tag()
    users = []
    for i in range(2):
        u = dc.add_user("%s-%d" % (t, i + 1))
        g = mailgen.MailGen(int(t[1:], 16) * 10 + i)
        raws = [g.message(kind="plain").raw for _ in range(3)]
        for raw in raws:
            dc.deliver(u, "INBOX", raw)
        users.append((u, {sha256(raw): raw for raw in raws}))
    prof = master_profile(archive, dc, "pop-" + t, method,
                          [{"user": u.name, "archive_user": u.name + "-a"}
                           for u, _ in users],
                          protocol="pop3s", folders=Archive.DELETE)
    archive.write_config(prof)
    start = len(dc.log_text())
    r, proto = archive.run(prof["name"])
    assert r.rc == 0, r
    assert proto["status"] == "succeeded", r
    c = proto["counts"]
    assert (c["found"], c["archived"], c["failed"]) == (6, 6, 0), c
    for u, held in users:
        check_archive_user(archive, u.name + "-a", prof["name"], u.name, held)
    assert sorted(master_logins(dc, start)) == sorted(u.name for u, _ in users)


def test_master_user_wrong_password_fails_every_mailbox(dovecot_master,
                                                        archive):
    """A wrong master password: every mailbox fails, the run fails."""
    dc = dovecot_master
    t = tag()
    u1, u2 = dc.add_user(t + "-1"), dc.add_user(t + "-2")
    prof = master_profile(archive, dc, "wrong-" + t, "authzid",
                          [{"user": u1.name}, {"user": u2.name}],
                          password="not-the-master-password")
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 1, r
    assert proto["status"] == "failed", r
    assert sorted(e["mailbox"] for e in proto["events"]
                  if e["level"] == "error") == sorted([u1.name, u2.name])
    assert archive.files() == {}


# ---- mailboxes_file ---------------------------------------------------------


class Mailstowd:
    """mailstowd on archive's config, logging to a file; `mailstow run`
    then goes through its control socket (the daemon holds the archive,
    so a run that succeeds at all went through it)."""

    def __init__(self, archive, ctl):
        self.ctl = ctl
        self.err = archive.dir / "mailstowd.err"
        e = {k: v for k, v in os.environ.items()
             if k not in ("MAILSTOW_CONFIG", "NOTIFY_SOCKET", "JOURNAL_STREAM",
                          "WATCHDOG_USEC", "WATCHDOG_PID")}
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [str(MAILSTOWD), "-c", str(archive.config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, env=e, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "mailstowd exited: %s" % \
                self.err.read_text(errors="replace")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(ctl))
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("no control socket at %s" % ctl)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        text = self.err.read_text(errors="replace")
        assert not re.search(r"AddressSanitizer|LeakSanitizer|runtime error:",
                             text), text[-4000:]


def write_daemon_config(archive, ctl, *profiles):
    doc = {"archive": {"path": str(archive.path)},
           "daemon": {"control_socket": str(ctl)},
           "profiles": list(profiles)}
    archive.config.write_text("# written by test_batch.py\n" + to_yaml(doc) +
                              "\n")
    os.chmod(archive.config, 0o600)


@pytest.fixture
def ctl_path():
    # AF_UNIX paths are short; pytest's tmp_path can be too long.
    p = "/tmp/mstb-%s.sock" % os.urandom(4).hex()
    yield p
    if os.path.exists(p):
        os.unlink(p)


def test_mailboxes_file_reread_by_running_daemon(dovecot_master, archive,
                                                 ctl_path):
    dc = dovecot_master
    t = tag()
    g = mailgen.MailGen(11)
    users = mailbox_users(dc, 3, t, g.message(kind="plain"))
    (u1, h1), (u2, h2), (u3, h3) = users
    csv = archive.dir / "staff.csv"
    csv.write_text("# staff of the test\n"
                   "\n"
                   "%s\n"
                   "  %s , %s-arch  \n" % (u1.name, u2.name, u2.name))
    prof = master_profile(archive, dc, "file-" + t, "authzid")
    prof["mailboxes_file"] = str(csv)
    write_daemon_config(archive, ctl_path, prof)
    d = Mailstowd(archive, ctl_path)
    try:
        r, proto = archive.run(prof["name"])
        assert r.rc == 0, r
        assert proto["status"] == "succeeded", r
        assert {m for m, _ in folder_rows(proto)} == {u1.name, u2.name}
        check_archive_user(archive, u1.name, prof["name"], u1.name, h1)
        check_archive_user(archive, u2.name + "-arch", prof["name"], u2.name,
                           h2)

        # Edit the file under the running daemon: no reload, no restart.
        with open(csv, "a") as f:
            f.write("%s,%s,/etc/passwd,extra\n%s\n" % (u3.name, u3.name,
                                                       u3.name))
        r, proto = archive.run(prof["name"])
        assert r.rc == 1, r
        assert proto["status"] == "completed_with_errors", r
        errs = error_texts(proto)
        assert len(errs) == 1, errs
        assert errs[0].startswith("%s:5: " % csv), errs
        assert "more than three fields" in errs[0], errs
        rows = folder_rows(proto)
        # The new mailbox cold, the others incremental.
        assert counts_of(rows[(u3.name, "INBOX")]) == (3, 3, 0, 0), rows
        assert counts_of(rows[(u3.name, "Sent")]) == (1, 1, 0, 0), rows
        for u in (u1, u2):
            assert counts_of(rows[(u.name, "INBOX")]) == (3, 0, 3, 0), rows
        check_archive_user(archive, u3.name, prof["name"], u3.name, h3)
        check_archive_user(archive, u1.name, prof["name"], u1.name, h1)
        assert d.proc.poll() is None, "mailstowd died"
    finally:
        d.stop()


def test_mailboxes_file_line_numbers(dovecot_master, archive):
    """Errors name the line as an editor counts it: blank lines count."""
    dc = dovecot_master
    t = tag()
    u1 = dc.add_user(t + "-1")
    dc.deliver(u1, "INBOX", mailgen.MailGen(3).message(kind="plain").raw)
    csv = archive.dir / "mb.csv"
    csv.write_text("%s\n\n\n# comment\n\n%s\n,nobody\n\n%s\x01x\n"
                   % (u1.name, u1.name, u1.name))
    prof = master_profile(archive, dc, "lines-" + t, "authzid")
    prof["mailboxes_file"] = str(csv)
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 1, r
    assert proto["status"] == "completed_with_errors", r
    errs = sorted(error_texts(proto))
    assert len(errs) == 3, errs
    assert errs[0].startswith("%s:6: mailbox %s is listed twice"
                              % (csv, u1.name)), errs
    assert errs[1].startswith("%s:7: " % csv) and "user field" in errs[1], \
        errs
    assert errs[2].startswith("%s:9: " % csv), errs
    assert proto["counts"]["archived"] == 1


def test_mailboxes_file_missing(dovecot_master, archive):
    dc = dovecot_master
    t = tag()
    prof = master_profile(archive, dc, "nofile-" + t, "authzid")
    prof["mailboxes_file"] = str(archive.dir / "absent.csv")
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 1, r
    assert proto["status"] == "failed", r
    errs = error_texts(proto)
    assert len(errs) == 1 and str(archive.dir / "absent.csv") in errs[0], errs


# ---- one password per mailbox -----------------------------------------------


def test_own_password_files(dovecot_master, archive):
    """Without a master user: the YAML list and the file give each
    mailbox its password file (the archive_user field may be left empty);
    a mailbox without one fails alone, and nobody logs in as master."""
    dc = dovecot_master
    t = tag()
    g = mailgen.MailGen(5)
    (u1, h1), (u2, h2), (u3, h3) = mailbox_users(dc, 3, t,
                                                 g.message(kind="plain"))
    pw = {u.name: archive.password_file(u.name, u.password)
          for u in (u1, u2, u3)}
    lost = dc.add_user(t + "-nopw")
    csv = archive.dir / "own.csv"
    csv.write_text("%s,,%s\n%s, %s-arch ,%s\n%s\n" % (
        u2.name, pw[u2.name], u3.name, u3.name, pw[u3.name], lost.name))
    prof = archive.profile(dc, u1, name="own-" + t)
    prof["auth"] = {}
    prof["mailboxes"] = [{"user": u1.name,
                          "password_file": str(pw[u1.name])}]
    prof["mailboxes_file"] = str(csv)
    archive.write_config(prof)
    start = len(dc.log_text())
    r, proto = archive.run(prof["name"])
    assert r.rc == 1, r
    assert proto["status"] == "completed_with_errors", r
    errs = [e for e in proto["events"] if e["level"] == "error"]
    assert [e["mailbox"] for e in errs] == [lost.name], errs
    assert "password" in errs[0]["text"], errs
    check_archive_user(archive, u1.name, prof["name"], u1.name, h1)
    check_archive_user(archive, u2.name, prof["name"], u2.name, h2)
    check_archive_user(archive, u3.name + "-arch", prof["name"], u3.name, h3)
    assert archived(archive, str(pw[u2.name])) == {}
    assert master_logins(dc, start) == []
    for u in (u1, u2, u3):
        archive.assert_secret_absent(u.password)


def test_profile_password_for_every_mailbox(dovecot_master, archive):
    """Without a master user, a mailbox without its own password file uses
    the profile's password source (mailstow.yaml(5))."""
    dc = dovecot_master
    t = tag()
    secret = "shared-%s-Secret" % os.urandom(6).hex()
    u1 = dc.add_user(t + "-1", secret)
    u2 = dc.add_user(t + "-2", secret)
    raw1 = mailgen.MailGen(21).message(kind="plain").raw
    raw2 = mailgen.MailGen(22).message(kind="plain").raw
    dc.deliver(u1, "INBOX", raw1)
    dc.deliver(u2, "INBOX", raw2)
    prof = archive.profile(dc, u1, name="shared-" + t, password=secret)
    del prof["auth"]["user"]
    prof["mailboxes"] = [{"user": u1.name}, {"user": u2.name}]
    archive.write_config(prof)
    r, proto = archive.run(prof["name"])
    assert r.rc == 0, r
    assert proto["status"] == "succeeded", r
    assert set(archived(archive, u1.name)) == {sha256(raw1)}
    assert set(archived(archive, u2.name)) == {sha256(raw2)}


def test_many_failing_mailboxes_do_not_crash(archive):
    """2,000 mailboxes whose password files are missing: each fails alone
    and the run ends "failed" with an error per mailbox.  The failures
    happen before any connection, one right after the other, so this also
    checks that they are not handled by recursion: under an 8 MiB stack a
    recursive start-next/over pair overflows at about 3,900 mailboxes;
    the run is given a 2 MiB stack to keep the test short."""
    n = 2000
    csv = archive.dir / "many.csv"
    csv.write_text("".join("m%05d,,/nonexistent/m%05d.pw\n" % (i, i)
                           for i in range(n)))
    prof = {"name": "many", "server": {"host": "127.0.0.1", "port": 9,
                                       "protocol": "imaps"},
            "auth": {}, "mailboxes_file": str(csv)}
    archive.write_config(prof)
    p = subprocess.run(["sh", "-c", 'ulimit -s 2048 && exec "$0" "$@"',
                        str(BUILD / "mailstow"), "-c", str(archive.config),
                        "run", "--json", "many"], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=120)
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])
    proto = json.loads(p.stdout)
    assert proto["status"] == "failed"
    errs = [e for e in proto["events"] if e["level"] == "error"]
    assert len(errs) == n
    assert {e["mailbox"] for e in errs} == {"m%05d" % i for i in range(n)}
    assert all("/nonexistent/" in e["text"] for e in errs), errs[:3]


# ---- max_parallel -----------------------------------------------------------


class HoldingServer:
    """A TCP server on 127.0.0.1 that holds every connection for `hold`
    seconds before it answers "* BYE", counting how many are open at
    once."""

    def __init__(self, hold):
        self.hold = hold
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.active = self.peak = self.total = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn):
        with self.lock:
            self.active += 1
            self.total += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.hold)
            conn.sendall(b"* BYE too busy to talk\r\n")
        except OSError:
            pass
        finally:
            with self.lock:
                self.active -= 1
            conn.close()

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


def test_max_parallel_sessions(archive):
    """Seven mailboxes, max_parallel 3: three sessions at a time, never
    more, and every mailbox is tried once (each fails: the server says
    BYE)."""
    srv = HoldingServer(0.3)
    try:
        master = harness.User(MASTER_USER, "not-needed")
        prof = {"name": "parallel",
                "server": {"host": "127.0.0.1", "port": srv.port,
                           "protocol": "imap", "timeout": "10s"},
                "auth": {"master_user": MASTER_USER,
                         "password_file": str(archive.password_file(
                             "parallel", master.password)),
                         "allow_plaintext": True},
                "mailboxes": [{"user": "p%d" % i} for i in range(7)],
                "max_parallel": 3}
        archive.write_config(prof)
        r, proto = archive.run("parallel")
    finally:
        srv.close()
    assert r.rc == 1, r
    assert proto["status"] == "failed", r
    assert sorted(e["mailbox"] for e in proto["events"]
                  if e["level"] == "error") == ["p%d" % i for i in range(7)]
    assert srv.total == 7
    assert srv.peak == 3, "peak %d sessions at once" % srv.peak
