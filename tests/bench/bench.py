#!/usr/bin/python3
"""
bench.py - `make bench`: mailstow against mbsync (and mpop for POP3) on a
private Dovecot over loopback TLS, with a deterministic corpus written
straight into Dovecot's maildir (corpus.py).  Every figure is the median of
--reps runs; mailstow and its peer run alternately in the same session so
their ratio is fair.  Writes tests/bench/results.md (or --results).

    bench.py [--messages 20000] [--reps 3] [--seed 1] [--many 64x1000]
             [--big-mb 100] [--workdir DIR] [--keep] [--no-install]
    bench.py --profile [--messages 2000]      where mailstow's time goes

Every timed run is also checked: a mailstow run that did not succeed, or
an archive that lacks a message the server holds, stops the bench; a
figure for a broken run would be worthless.
"""

import argparse
import datetime
import hashlib
import json
import os
import pathlib
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "system"))
import corpus  # noqa: E402
import dovecot as harness  # noqa: E402

RUN_TIMEOUT = 900
NEW_MESSAGES = 100

# The targets of issue 7 (ratios are mailstow / peer, measured in one run).
TARGETS = {
    "cold": "ratio <= 0.5",
    "warm": "ratio <= 1.0",
    "rtt": "<= 1 per unchanged folder",
    "new": "< 1 s",
    "pop3": "faster than every POP3 peer",
    "rss": "<= 32 MB",
    "big": "<= 8 MB above the run without it",
    "many_rss": "<= 64 MB",
    "stall": "<= 50 ms",
}


def log(fmt, *args):
    sys.stderr.write("bench: " + (fmt % args if args else fmt) + "\n")
    sys.stderr.flush()


def build_dir():
    b = os.environ.get("MAILSTOW_BUILD") or os.environ.get("BUILD") or \
        "build"
    b = pathlib.Path(b)
    return b if b.is_absolute() else REPO / b


# ---- running a program and measuring it ----------------------------------


class Sample:
    """One finished run: wall seconds, CPU seconds, peak RSS (KiB)."""

    def __init__(self, argv, rc, seconds, user, sys_, maxrss_kb, out, err):
        self.argv, self.rc, self.seconds = argv, rc, seconds
        self.user, self.sys, self.maxrss_kb = user, sys_, maxrss_kb
        self.out, self.err = out, err
        self.protocols = []

    @property
    def cpu(self):
        return self.user + self.sys

    @property
    def rss_mb(self):
        return self.maxrss_kb / 1024.0

    def __str__(self):
        return "$ %s\nexit %d after %.2fs\n--- stdout\n%s\n--- stderr\n%s" \
            % (" ".join(map(str, self.argv)), self.rc, self.seconds,
               self.out[-3000:].decode("utf-8", "replace"),
               self.err[-3000:].decode("utf-8", "replace"))


GNU_TIME = "/usr/bin/time"


def measure(argv, tmp, env=None, timeout=RUN_TIMEOUT, cwd=None):
    """Run argv to completion.  Wall time: time.monotonic around it.  CPU
    and peak RSS: GNU time's wait4() of its child.  Not our own wait4():
    a child forked from this Python process starts with our RSS as its
    high-water mark (Linux folds the pre-exec mm's peak into ru_maxrss),
    which would hide any figure below Python's own size."""
    outp, errp, tp = tmp / "run.out", tmp / "run.err", tmp / "run.time"
    argv = [str(a) for a in argv]
    use_time = os.access(GNU_TIME, os.X_OK)
    full = [GNU_TIME, "-f", "%U %S %M", "-o", str(tp)] + argv if use_time \
        else argv
    hwm = [0]
    with open(outp, "wb") as o, open(errp, "wb") as e:
        t0 = time.monotonic()
        p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=o,
                             stderr=e, env=env, cwd=cwd,
                             start_new_session=True)
        timer = threading.Timer(timeout, lambda: os.killpg(p.pid,
                                                           signal.SIGKILL))
        timer.start()
        poll = None
        if not use_time:
            poll = threading.Thread(target=_poll_hwm, args=(
                p.pid, os.path.basename(argv[0])[:15], hwm))
            poll.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        seconds = time.monotonic() - t0
        if poll is not None:
            poll.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    user, sys_, rss = ru.ru_utime, ru.ru_stime, hwm[0]
    if use_time:
        last = tp.read_text().strip().splitlines()[-1:] if tp.exists() \
            else []
        m = re.fullmatch(r"([\d.]+) ([\d.]+) (\d+)", last[0] if last else "")
        if m:
            user, sys_, rss = float(m.group(1)), float(m.group(2)), \
                int(m.group(3))
    return Sample(argv, p.returncode, seconds, user, sys_, rss,
                  outp.read_bytes(), errp.read_bytes())


def _poll_hwm(pid, name, out):
    """Without GNU time: the child's VmHWM, read every 5 ms until it is
    gone (a lower bound; growth in its last milliseconds can be missed).
    Only once it runs `name`: before its exec it still shares our memory."""
    path = "/proc/%d/status" % pid
    while True:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            return
        m = re.search(r"VmHWM:\s+(\d+) kB", text)
        if m is None:		# a zombie has no memory left
            return
        if re.search(r"^Name:\s+%s$" % re.escape(name), text, re.M):
            out[0] = max(out[0], int(m.group(1)))
        time.sleep(0.005)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---- the server -----------------------------------------------------------


class BenchDovecot(harness.Dovecot):
    """The system tests' Dovecot plus a rawlog directory: Dovecot writes a
    user's rawlog only while rawlog/<user> exists, so the timed runs pay
    nothing for it."""

    def _config(self):
        return super()._config() + "rawlog_dir = %s/rawlog/%%u\n" % self.root

    def owner(self):
        st = os.stat(self.maildir)
        return st.st_uid, st.st_gid

    def mail_root(self, user):
        home = self.maildir / user
        if not home.exists():
            home.mkdir(mode=0o700)
            os.chown(home, *self.owner())
        return home / "Maildir"

    def rawlog_on(self, user):
        d = self.root / "rawlog" / user
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        os.chown(d, *self.owner())
        return d

    def rawlog_off(self, user):
        shutil.rmtree(self.root / "rawlog" / user, ignore_errors=True)


def rawlog_round_trips(d):
    """(commands, round trips, folder round trips) in the rawlogs of d.
    A round trip is a burst of client lines with no server output between
    them (pipelined commands count once); a folder round trip is one whose
    burst holds a command about a folder's contents."""
    folder_cmds = ("EXAMINE", "SELECT", "STATUS", "SEARCH", "FETCH", "UID",
                   "NOOP", "CHECK")
    events = []
    for f in sorted(d.iterdir()):
        side = 1 if f.suffix == ".in" else 0	# server first on ties
        for line in f.read_bytes().split(b"\n"):
            m = re.match(rb"(\d+\.\d+) (.*)", line)
            if m:
                events.append((float(m.group(1)), side, m.group(2)))
    events.sort(key=lambda e: (e[0], e[1]))
    cmds = trips = ftrips = 0
    prev = None
    burst_folder = False
    for _, side, text in events:
        if side == 1:
            words = text.split()
            # literal continuation lines have no tag and command
            is_cmd = len(words) >= 2 and re.match(rb"[A-Za-z0-9.]+$",
                                                  words[0])
            if prev != 1:
                trips += 1
                burst_folder = False
            if is_cmd:
                cmds += 1
                if words[1].upper().decode() in folder_cmds and \
                        not burst_folder:
                    ftrips += 1
                    burst_folder = True
        prev = side
    return cmds, trips, ftrips


def warm_server(dc, user):
    """Build Dovecot's index and pull the files into the page cache, so the
    first timed run does not pay for what the later ones find ready."""
    c = dc.imap_connect(user)
    try:
        for folder in dc.folders(user, c):
            typ, data = c.select(harness.imap_mailbox(folder), readonly=True)
            if typ == "OK" and int(data[0]) > 0:
                c.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE)")
            c.close()
    finally:
        c.logout()
    for p in dc.mail_root(user).rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                while f.read(1 << 20):
                    pass


# ---- the tools --------------------------------------------------------------


def yaml_str(s):
    return json.dumps(str(s), ensure_ascii=False)


class Mailstow:
    def __init__(self, bench, name):
        self.b = bench
        self.dir = bench.work / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.archive = self.dir / "archive"
        self.config = self.dir / "mailstow.yaml"

    def write_config(self, users, protocol="imaps"):
        dc = self.b.dc
        port = dc.ports["imaps" if protocol == "imaps" else "pop3s"]
        lines = ["# written by tests/bench/bench.py", "archive:",
                 "  path: %s" % yaml_str(self.archive), "profiles:"]
        for u in users:
            pw = self.dir / ("%s.password" % u)
            pw.write_text(dc.users[u].password + "\n")
            os.chmod(pw, 0o600)
            lines += [
                "  - name: %s" % u,
                "    server: {host: 127.0.0.1, port: %d, protocol: %s, "
                "timeout: 120s, tls: {ca_file: %s}}"
                % (port, protocol, yaml_str(dc.ca_file)),
                "    auth: {user: %s, password_file: %s}" % (u, yaml_str(pw)),
                "    schedule: manual"]
            if protocol == "imaps":
                lines.insert(-1, '    folders: {include: ["*"]}')
        self.config.write_text("\n".join(lines) + "\n")
        os.chmod(self.config, 0o600)

    def write_batch_config(self, name, users, parallel):
        """One batch profile over `users`, each with its password file,
        up to `parallel` sessions at once."""
        dc = self.b.dc
        lines = ["# written by tests/bench/bench.py", "archive:",
                 "  path: %s" % yaml_str(self.archive), "profiles:",
                 "  - name: %s" % name,
                 "    server: {host: 127.0.0.1, port: %d, protocol: imaps, "
                 "timeout: 120s, tls: {ca_file: %s}}"
                 % (dc.ports["imaps"], yaml_str(dc.ca_file)),
                 "    auth: {}",
                 "    mailboxes:"]
        for u in users:
            pw = self.dir / ("%s.password" % u)
            pw.write_text(dc.users[u].password + "\n")
            os.chmod(pw, 0o600)
            lines.append("      - {user: %s, password_file: %s}"
                         % (u, yaml_str(pw)))
        lines += ["    max_parallel: %d" % parallel,
                  '    folders: {include: ["*"]}',
                  "    schedule: manual"]
        self.config.write_text("\n".join(lines) + "\n")
        os.chmod(self.config, 0o600)

    def config_ok(self):
        """Does this mailstow accept the config (`mailstow check`)?"""
        r = subprocess.run([str(self.b.mailstow), "-c", str(self.config),
                            "check"], capture_output=True, text=True)
        return r.returncode == 0, r.stderr.strip()

    def argv(self, users, verbose=False):
        return [self.b.mailstow, "-c", self.config] + \
            (["-v"] if verbose else []) + ["run", "--json"] + list(users)

    def wipe(self):
        self.b.aside(self.archive)

    def run(self, users, prefix=(), probe=False):
        env = None
        if probe:
            env = dict(os.environ, MAILSTOW_LOOP_PROBE="1")
        if prefix:
            # LeakSanitizer cannot run under ptrace (strace): a SANITIZE=1
            # build would fail at exit.
            env = dict(env or os.environ)
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                                   ":detect_leaks=0").lstrip(":")
        s = measure(list(prefix) + self.argv(users), self.dir, env=env)
        s.protocols = parse_protocols(s.out)
        return s


def parse_protocols(out):
    """The JSON protocols `mailstow run --json P...` printed, in order."""
    dec, text, i, res = json.JSONDecoder(), out.decode("utf-8", "replace"), \
        0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return res
        try:
            obj, i = dec.raw_decode(text, i)
        except ValueError:
            return res
        res.append(obj)


class Mbsync:
    """mbsync pulling the whole account into a Maildir, FSync on."""

    def __init__(self, bench, name, user):
        self.b = bench
        self.dir = bench.work / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.near = self.dir / "maildir"
        self.rc = self.dir / "mbsyncrc"
        self.last_end = 0.0
        dc = bench.dc
        pw = self.dir / "password"
        pw.write_text(dc.users[user].password + "\n")
        os.chmod(pw, 0o600)
        tpl = (HERE / "mbsyncrc.in").read_text()
        # mbsync checks only DNS names in the certificate: localhost.
        self.rc.write_text(tpl.replace("@HOST@", "localhost")
                           .replace("@PORT@", str(dc.ports["imaps"]))
                           .replace("@USER@", user)
                           .replace("@PASSFILE@", str(pw))
                           .replace("@CAFILE@", str(dc.ca_file))
                           .replace("@NEAR@", str(self.near)))
        os.chmod(self.rc, 0o600)

    def wipe(self):
        self.b.aside(self.near)
        self.near.mkdir()

    def argv(self):
        return ["mbsync", "-c", self.rc, "-a", "-q"]

    def run(self):
        # mbsync sleeps into the next second when its Maildir changed in
        # the current one (it cannot trust the directory's mtime then);
        # scheduled runs are minutes apart, so give it that second.
        pause = self.last_end + 1.1 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        s = measure(self.argv(), self.dir)
        self.last_end = time.monotonic()
        return s

    def count(self):
        return sum(1 for p in self.near.rglob("*")
                   if p.parent.name in ("cur", "new") and p.is_file())


class Mpop:
    """mpop retrieving the inbox over POP3S into a Maildir, keeping the
    messages on the server."""

    def __init__(self, bench, name, user):
        self.b = bench
        self.dir = bench.work / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.md = self.dir / "maildir"
        self.uidls = self.dir / "uidls"
        self.rc = self.dir / "mpoprc"
        dc = bench.dc
        pw = self.dir / "password"
        pw.write_text(dc.users[user].password + "\n")
        os.chmod(pw, 0o600)
        tpl = (HERE / "mpoprc.in").read_text()
        self.rc.write_text(tpl.replace("@HOST@", "127.0.0.1")
                           .replace("@PORT@", str(dc.ports["pop3s"]))
                           .replace("@USER@", user)
                           .replace("@PASSFILE@", str(pw))
                           .replace("@CAFILE@", str(dc.ca_file))
                           .replace("@MAILDIR@", str(self.md))
                           .replace("@UIDLS@", str(self.uidls)))
        os.chmod(self.rc, 0o600)

    def wipe(self):
        self.b.aside(self.md)
        for d in ("cur", "new", "tmp"):
            (self.md / d).mkdir(parents=True)
        if self.uidls.exists():
            self.uidls.unlink()

    def run(self):
        s = measure(["mpop", "-C", self.rc, "-a", "-q"], self.dir)
        return s

    def count(self):
        return sum(1 for d in ("cur", "new") for _ in (self.md / d).iterdir())


# ---- checks ---------------------------------------------------------------


class BenchError(Exception):
    pass


def check_ok(s, what):
    if s.rc != 0:
        raise BenchError("%s failed\n%s" % (what, s))


def check_protocols(s, expect, what):
    """expect: [(profile, found, archived, skipped)] (None: any)."""
    check_ok(s, what)
    if len(s.protocols) != len(expect):
        raise BenchError("%s printed %d protocols, expected %d\n%s"
                         % (what, len(s.protocols), len(expect), s))
    for p, (name, found, archived, skipped) in zip(s.protocols, expect):
        c = p["counts"]
        bad = p["profile"] != name or p["status"] != "succeeded" or \
            c["failed"] != 0 or \
            (found is not None and c["found"] != found) or \
            (archived is not None and c["archived"] != archived) or \
            (skipped is not None and c["skipped"] != skipped) or \
            c["found"] != c["archived"] + c["skipped"]
        if bad:
            raise BenchError("%s: profile %s: expected found %s archived %s "
                             "skipped %s, got %s %s\n%s"
                             % (what, name, found, archived, skipped,
                                p["status"], c, s))


def archive_files(archive):
    """{sha256: path} of the archive's messages/ab/<sha256> files."""
    out = {}
    top = archive / "messages"
    if top.exists():
        for p in top.glob("*/*"):
            if len(p.name) == 64:
                out[p.name] = p
    return out


def verify_archive(archive, manifest, full=False):
    """Every message of the manifest is in the archive under its sha256,
    with its size (full: with its bytes, hashed again)."""
    files = archive_files(archive)
    want = {h: size for _, h, size in manifest}
    missing = [h for h in want if h not in files]
    if missing:
        raise BenchError("archive %s lacks %d of %d messages, e.g. %s"
                         % (archive, len(missing), len(want), missing[0]))
    for h, size in want.items():
        p = files[h]
        if p.stat().st_size != size:
            raise BenchError("%s has %d bytes, not %d"
                             % (p, p.stat().st_size, size))
        if full:
            d = hashlib.sha256()
            with open(p, "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    d.update(b)
            if d.hexdigest() != h:
                raise BenchError("%s does not hash to its name" % p)
    return len(files)


# ---- the bench --------------------------------------------------------------


class Bench:
    def __init__(self, a):
        self.a = a
        self.mailstow = build_dir() / "mailstow"
        if a.workdir:
            self.work = pathlib.Path(a.workdir).resolve()
            self.work.mkdir(parents=True, exist_ok=True)
        else:
            self.work = pathlib.Path(tempfile.mkdtemp(
                prefix="mailstow-bench-"))
        os.chmod(self.work, 0o755)
        self.trash = self.work / "trash"	# emptied at the end
        self.n_trash = 0
        self.dc = None
        self.samples = {}		# name -> [Sample]
        self.notes = []
        self.manifest = {}		# user -> [(folder, sha256, size)]
        self.corpus_stats = None
        self.n_many, self.many_size = (int(x) for x in a.many.split("x"))
        self.have_mbsync = shutil.which("mbsync") is not None
        self.have_mpop = shutil.which("mpop") is not None

    # -- setup --

    def start(self):
        if not os.access(self.mailstow, os.X_OK):
            raise BenchError("%s is not built (make)" % self.mailstow)
        # A reused --workdir starts from an empty server.
        harness.Dovecot.stop_leftover(self.work / "dovecot")
        self.aside(self.work / "dovecot")
        self.dc = BenchDovecot(self.work / "dovecot")
        users = ["bench", "big0", "big1"] + self.many_users()
        for u in users:
            self.dc.add_user(u)
        self.dc.start()
        log("dovecot up in %.1fs (imaps %d, pop3s %d)",
            self.dc.startup_seconds, self.dc.ports["imaps"],
            self.dc.ports["pop3s"])
        t0 = time.monotonic()
        self.manifest["bench"] = corpus.write(
            self.dc.mail_root("bench"),
            corpus.Generator(self.a.messages, self.a.seed),
            self.dc.owner())
        self.corpus_stats = corpus.stats(self.manifest["bench"])
        log("corpus: %d messages, %.1f MB in %.1fs", self.a.messages,
            self.corpus_stats["bytes"] / 1e6, time.monotonic() - t0)
        t0 = time.monotonic()
        warm_server(self.dc, "bench")
        self.check_server_count("bench", self.a.messages)
        log("server index built and files cached in %.1fs",
            time.monotonic() - t0)

    def many_users(self):
        return ["m%02d" % i for i in range(self.n_many)]

    def check_server_count(self, user, n):
        c = self.dc.imap_connect(user)
        try:
            total = 0
            for f in self.dc.folders(user, c):
                typ, data = c.status(harness.imap_mailbox(f), "(MESSAGES)")
                total += int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
        finally:
            c.logout()
        if total != n:
            raise BenchError("Dovecot shows %d messages for %s, %d were "
                             "written" % (total, user, n))

    def stop(self):
        if self.dc is not None:
            self.dc.stop()

    def aside(self, path):
        """Move a previous run's output out of the way, to be deleted at
        the end.  Deleting it now would slow the next run down: ext4
        without a journal (this machine) skips recently freed inodes when
        it allocates new ones, and that search showed up as the largest
        kernel cost of a cold run that followed an rm -rf."""
        if os.path.lexists(path):
            self.trash.mkdir(exist_ok=True)
            self.n_trash += 1
            os.rename(path, self.trash / ("%d.%d.%s" % (
                time.time_ns(), self.n_trash, pathlib.Path(path).name)))

    def empty_trash(self):
        shutil.rmtree(self.trash, ignore_errors=True)

    def add(self, name, s):
        self.samples.setdefault(name, []).append(s)
        return s

    def med(self, name, attr="seconds"):
        return median(getattr(s, attr) for s in self.samples.get(name, []))

    # -- IMAP: cold, warm, new --

    def imap(self):
        n = self.a.messages
        uniq = self.corpus_stats["unique"]
        ms = Mailstow(self, "mailstow-imap")
        ms.write_config(["bench"])
        mb = Mbsync(self, "mbsync-imap", "bench") if self.have_mbsync \
            else None
        self.ms, self.mb = ms, mb
        for rep in range(self.a.reps):
            order = [ms, mb] if rep % 2 == 0 else [mb, ms]
            for tool in order:
                if tool is None:
                    continue
                tool.wipe()
                if tool is ms:
                    s = self.add("cold.mailstow", ms.run(["bench"]))
                    check_protocols(s, [("bench", n, uniq, n - uniq)],
                                    "cold mailstow run")
                    verify_archive(ms.archive, self.manifest["bench"],
                                   full=rep == self.a.reps - 1)
                else:
                    s = self.add("cold.mbsync", mb.run())
                    check_ok(s, "cold mbsync run")
                    if mb.count() != n:
                        raise BenchError("mbsync pulled %d of %d messages"
                                         % (mb.count(), n))
                log("cold %-8s rep %d: %.2fs, %.1f MB, cpu %.2fs",
                    "mailstow" if tool is ms else "mbsync", rep + 1,
                    s.seconds, s.rss_mb, s.cpu)
        for rep in range(self.a.reps):
            order = [ms, mb] if rep % 2 == 0 else [mb, ms]
            for tool in order:
                if tool is None:
                    continue
                if tool is ms:
                    s = self.add("warm.mailstow", ms.run(["bench"]))
                    check_protocols(s, [("bench", n, 0, n)],
                                    "warm mailstow run")
                elif tool is mb:
                    s = self.add("warm.mbsync", mb.run())
                    check_ok(s, "warm mbsync run")
        log("warm: mailstow %.3fs, mbsync %s", self.med("warm.mailstow"),
            self.med("warm.mbsync"))
        self.round_trips(ms, mb)
        total = n
        for rep in range(self.a.reps):
            new = list(corpus.Generator(NEW_MESSAGES,
                                        self.a.seed * 1000 + rep + 1,
                                        start=10 ** 6 * (rep + 1)))
            md = corpus.Maildir(self.dc.mail_root("bench"), self.dc.owner())
            for m in new:
                md.add(m, tag="n%d" % rep)
            total += len(new)
            new_uniq = len({m.sha256 for m in new})
            order = [ms, mb] if rep % 2 == 0 else [mb, ms]
            for tool in order:
                if tool is None:
                    continue
                if tool is ms:
                    s = self.add("new.mailstow", ms.run(["bench"]))
                    check_protocols(s, [("bench", total, new_uniq, None)],
                                    "warm mailstow run after new mail")
                    self.manifest["bench"] += [(m.folder, m.sha256,
                                                len(m.raw)) for m in new]
                elif tool is mb:
                    s = self.add("new.mbsync", mb.run())
                    check_ok(s, "mbsync run after new mail")
                    if mb.count() != total:
                        raise BenchError("mbsync has %d of %d messages"
                                         % (mb.count(), total))
        verify_archive(ms.archive, self.manifest["bench"])
        log("new: mailstow %.3fs, mbsync %s", self.med("new.mailstow"),
            self.med("new.mbsync"))

    def round_trips(self, ms, mb):
        """Count commands and round trips of one warm run of each tool in
        Dovecot's rawlog (on only for these runs)."""
        nf = len(self.dc.folders("bench"))
        self.rtt = {"folders": nf}
        for name, tool in (("mailstow", ms), ("mbsync", mb)):
            if tool is None:
                continue
            d = self.dc.rawlog_on("bench")
            try:
                s = tool.run(["bench"]) if tool is ms else tool.run()
                check_ok(s, "warm %s run with rawlog" % name)
                cmds, trips, ftrips = rawlog_round_trips(d)
            finally:
                self.dc.rawlog_off("bench")
            self.rtt[name] = (cmds, trips, ftrips)
            log("round trips %s: %d commands, %d round trips, %d about "
                "folders, over %d folders", name, cmds, trips, ftrips, nf)

    # -- POP3 --

    def pop3_wired(self):
        src = (REPO / "lib" / "source" / "source.c").read_text()
        return src.count("pop3_client") > 0

    def pop3(self):
        inbox = self.inbox_count()
        self.pop3_inbox = inbox
        mp = Mpop(self, "mpop", "bench") if self.have_mpop else None
        ms = None
        if self.pop3_wired():
            ms = Mailstow(self, "mailstow-pop3")
            ms.write_config(["bench"], protocol="pop3s")
        else:
            self.notes.append("POP3: lib/source/source.c does not start "
                              "pop3_client yet, so mailstow's POP3 row is "
                              "n/a.")
        for rep in range(self.a.reps):
            order = [ms, mp] if rep % 2 == 0 else [mp, ms]
            for tool in order:
                if tool is None:
                    continue
                tool.wipe()
                if tool is ms:
                    s = self.add("pop3.mailstow", ms.run(["bench"]))
                    try:
                        check_protocols(s, [("bench", inbox, None, None)],
                                        "cold mailstow POP3 run")
                    except BenchError as e:
                        self.notes.append("mailstow POP3 run failed: %s"
                                          % " / ".join(
                                              str(e).splitlines()[-3:]))
                        self.samples.pop("pop3.mailstow", None)
                        ms = None
                        continue
                else:
                    s = self.add("pop3.mpop", mp.run())
                    check_ok(s, "cold mpop run")
                    if mp.count() != inbox:
                        raise BenchError("mpop retrieved %d of %d"
                                         % (mp.count(), inbox))
        log("pop3: mailstow %s, mpop %s", self.med("pop3.mailstow"),
            self.med("pop3.mpop"))

    def inbox_count(self):
        c = self.dc.imap_connect("bench")
        try:
            typ, data = c.status("INBOX", "(MESSAGES)")
            return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
        finally:
            c.logout()

    # -- one 100 MB message --

    def big(self):
        size = self.a.big_mb << 20
        base = list(corpus.Generator(1000 if self.a.messages >= 1000 else
                                     self.a.messages // 2, self.a.seed + 7))
        big = corpus.big_message(size)
        for user, msgs in (("big0", base), ("big1", base + [big])):
            self.manifest[user] = corpus.write(self.dc.mail_root(user), msgs,
                                               self.dc.owner())
            warm_server(self.dc, user)
        self.big_count = len(base)
        for user in ("big0", "big1"):
            ms = Mailstow(self, "mailstow-" + user)
            ms.write_config([user])
            mb = Mbsync(self, "mbsync-" + user, user) if self.have_mbsync \
                else None
            n = len(self.manifest[user])
            uniq = len({h for _, h, _ in self.manifest[user]})
            for rep in range(self.a.reps):
                ms.wipe()
                s = self.add("%s.mailstow" % user, ms.run([user]))
                check_protocols(s, [(user, n, uniq, n - uniq)],
                                "mailstow run of %s" % user)
                if mb is not None:
                    mb.wipe()
                    s = self.add("%s.mbsync" % user, mb.run())
                    check_ok(s, "mbsync run of %s" % user)
            verify_archive(ms.archive, self.manifest[user], full=True)
        log("big: mailstow %.1f -> %.1f MB", self.med("big0.mailstow",
                                                      "rss_mb"),
            self.med("big1.mailstow", "rss_mb"))

    # -- many mailboxes --

    def many(self):
        users = self.many_users()
        t0 = time.monotonic()
        per = {}
        for i, u in enumerate(users):
            per[u] = corpus.write(self.dc.mail_root(u),
                                  corpus.Generator(self.many_size,
                                                   self.a.seed + 100 + i),
                                  self.dc.owner())
            self.manifest[u] = per[u]
        for u in users:
            warm_server(self.dc, u)
        self.many_bytes = sum(s for u in users for _, _, s in per[u])
        log("many: %d mailboxes, %.1f MB written in %.1fs", len(users),
            self.many_bytes / 1e6, time.monotonic() - t0)
        ms = Mailstow(self, "mailstow-many")
        # A batch profile (all mailboxes in one profile, max_parallel
        # sessions at once) when this mailstow has them; else one
        # profile per mailbox, which `mailstow run` archives in turn.
        ms.write_batch_config("many", users, self.a.many_parallel)
        ok, why = ms.config_ok()
        if ok and self.a.many_parallel > 0:
            self.many_mode = "one batch profile, max_parallel %d" \
                % self.a.many_parallel
            profiles = ["many"]
            expect = [("many", sum(len(per[u]) for u in users),
                       sum(len({h for _, h, _ in per[u]}) for u in users),
                       None)]
        else:
            if self.a.many_parallel > 0:
                self.notes.append("batch profile refused (%s); one "
                                  "profile per mailbox instead" % why)
            self.many_mode = "%d profiles, one after another" % len(users)
            ms.write_config(users)
            profiles = users
            expect = [(u, len(per[u]), len({h for _, h, _ in per[u]}),
                       None) for u in users]
        self.probes = []
        for rep in range(self.a.many_reps):
            ms.wipe()
            s = self.add("many.mailstow", ms.run(profiles, probe=True))
            p = parse_probe(s.err)
            if p is not None:
                self.probes.append(p)
            check_protocols(s, expect, "mailstow run of %d mailboxes"
                            % len(users))
            log("many rep %d: %.1fs, %.1f MB", rep + 1, s.seconds, s.rss_mb)
        verify_archive(ms.archive, [x for u in users for x in per[u]])
        self.stall = None
        if shutil.which("strace"):
            ms.wipe()
            trace = ms.dir / "epoll.trace"
            s = ms.run(profiles, prefix=["strace", "-f", "--seccomp-bpf",
                                      "-ttt", "-T", "-o", trace, "-e",
                                      "trace=epoll_wait,epoll_pwait,"
                                      "epoll_pwait2"])
            check_protocols(s, expect, "traced run of %d mailboxes"
                            % len(users))
            self.stall = loop_stalls(trace)
            log("many: longest event-loop stall %.1f ms",
                self.stall[0] * 1000)

    # -- the report --

    def report(self):
        return write_results(self)


def parse_probe(err):
    """The figures of `mailstow: loop probe: ...` (MAILSTOW_LOOP_PROBE=1):
    how late a 10 ms timer of the loop fired at worst, and how much of
    that stretch the loop thread itself spent on a CPU."""
    m = re.search(rb"loop probe: (\d+) ticks; longest late ([\d.]+) ms "
                  rb"\(loop thread on CPU ([\d.]+) ms of it, (\d+) "
                  rb"involuntary and (\d+) voluntary switches\); most CPU "
                  rb"in one tick ([\d.]+) ms; p99 late under ([\d.]+) ms; "
                  rb"(\d+) over 50 ms", err)
    if m is None:
        return None
    keys = ("ticks", "late_ms", "cpu_ms", "nivcsw", "nvcsw", "cpu_max_ms",
            "p99_ms", "over50")
    return {k: float(v) for k, v in zip(keys, m.groups())}


def loop_stalls(trace):
    """(longest, 99th percentile, count over 50 ms) of the gaps between
    one epoll_wait returning and the next one starting: the time the loop
    spent in callbacks, during which no other event could be served."""
    by_tid = {}
    for line in pathlib.Path(trace).read_text().splitlines():
        m = re.match(r"(\d+)\s+(\d+\.\d+) epoll_p?wait2?\(.*<(\d+\.\d+)>$",
                     line)
        if m:
            start, dur = float(m.group(2)), float(m.group(3))
            by_tid.setdefault(m.group(1), []).append((start, start + dur))
    # The loop is the thread that waits most often; worker threads that
    # run loops of their own are not the one that serves the sessions.
    calls = max(by_tid.values(), key=len) if by_tid else []
    gaps = sorted(calls[i + 1][0] - calls[i][1]
                  for i in range(len(calls) - 1))
    if not gaps:
        return (0.0, 0.0, 0)
    return (gaps[-1], gaps[int(len(gaps) * 0.99)],
            sum(1 for g in gaps if g > 0.05))


# ---- results.md -----------------------------------------------------------


def _ver(argv, pattern=r"(.*)"):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        m = re.search(pattern, (r.stdout + r.stderr).strip())
        return m.group(1).strip() if m else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def machine(work):
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = [int(x.split()[1]) for x in open("/proc/meminfo")
               if x.startswith("MemTotal")][0] // 1024
    except (OSError, IndexError):
        mem = 0
    fs = _ver(["findmnt", "-no", "FSTYPE,SOURCE", "-T", str(work)])
    df = shutil.disk_usage(work)
    rev = _ver(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _ver(["git", "-C", str(REPO), "status", "--porcelain", "--",
                  "lib", "daemon"], r"([\s\S]*)")
    return {
        "cpu": cpu, "nproc": os.cpu_count(), "mem_mb": mem,
        "disk": "%s, %.0f GB free" % (fs, df.free / 1e9),
        "kernel": platform.release(),
        "mailstow": rev + (" + uncommitted changes in lib/ or daemon/"
                           if dirty.strip() else ""),
        "mbsync": _ver(["mbsync", "--version"]),
        "mpop": _ver(["mpop", "--version"], r"(mpop version \S+)"),
        "dovecot": _ver(["dovecot", "--version"]),
        "openssl": _ver(["openssl", "version"]),
        "python": platform.python_version(),
    }


def fmt_s(x):
    if x is None:
        return "n/a"
    return "%.3f s" % x if x < 10 else "%.1f s" % x


def fmt_mb(x):
    return "n/a" if x is None else "%.1f MB" % x


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_r(x):
    return "n/a" if x is None else "%.2f" % x


def verdict(ok):
    return "n/a" if ok is None else ("**pass**" if ok else "**FAIL**")


def table_rows(b):
    r = []
    cm, cb = b.med("cold.mailstow"), b.med("cold.mbsync")
    rc = ratio(cm, cb)
    r.append(("cold IMAPS, %d messages" % b.a.messages, fmt_s(cm),
              "mbsync " + fmt_s(cb), fmt_r(rc), TARGETS["cold"],
              verdict(None if rc is None else rc <= 0.5)))
    wm, wb = b.med("warm.mailstow"), b.med("warm.mbsync")
    rw = ratio(wm, wb)
    r.append(("warm, nothing new", fmt_s(wm), "mbsync " + fmt_s(wb),
              fmt_r(rw), TARGETS["warm"],
              verdict(None if rw is None else rw <= 1.0)))
    rt = getattr(b, "rtt", {})
    if "mailstow" in rt:
        nf = rt["folders"]
        per = rt["mailstow"][2] / nf
        peer = "mbsync %.2f" % (rt["mbsync"][2] / nf) if "mbsync" in rt \
            else "n/a"
        r.append(("round trips per unchanged folder (%d folders)" % nf,
                  "%.2f" % per, peer, "", TARGETS["rtt"],
                  verdict(per <= 1.0)))
    nm, nb = b.med("new.mailstow"), b.med("new.mbsync")
    r.append(("warm, %d new messages" % NEW_MESSAGES, fmt_s(nm),
              "mbsync " + fmt_s(nb), fmt_r(ratio(nm, nb)), TARGETS["new"],
              verdict(None if nm is None else nm < 1.0)))
    pm, pp = b.med("pop3.mailstow"), b.med("pop3.mpop")
    inbox = getattr(b, "pop3_inbox", None)
    r.append(("cold POP3S, inbox (%s messages)" % inbox,
              fmt_s(pm) if pm is not None else
              ("n/a: POP3 not wired yet" if not b.pop3_wired()
               else "n/a: failed"),
              "mpop " + fmt_s(pp), fmt_r(ratio(pm, pp)), TARGETS["pop3"],
              verdict(None if pm is None or pp is None else pm < pp)))
    for name, label in (("cold", "cold"), ("warm", "warm"), ("new", "new")):
        rm = b.med(name + ".mailstow", "rss_mb")
        r.append(("peak RSS, %s run" % label, fmt_mb(rm),
                  "mbsync " + fmt_mb(b.med(name + ".mbsync", "rss_mb")), "",
                  TARGETS["rss"] if name == "cold" else "",
                  verdict(None if rm is None else rm <= 32)
                  if name == "cold" else ""))
    b0, b1 = b.med("big0.mailstow", "rss_mb"), b.med("big1.mailstow",
                                                     "rss_mb")
    if b0 is not None:
        d = b1 - b0
        m0, m1 = b.med("big0.mbsync", "rss_mb"), b.med("big1.mbsync",
                                                       "rss_mb")
        r.append(("peak RSS, %d messages + one %d MB message"
                  % (b.big_count, b.a.big_mb),
                  "%s (+%.1f MB over %s)" % (fmt_mb(b1), d, fmt_mb(b0)),
                  "mbsync %s (+%.1f MB)" % (fmt_mb(m1), (m1 or 0) - (m0 or 0))
                  if m1 is not None else "n/a", "", TARGETS["big"],
                  verdict(d <= 8)))
        r.append(("time, %d messages + one %d MB message"
                  % (b.big_count, b.a.big_mb),
                  fmt_s(b.med("big1.mailstow")),
                  "mbsync " + fmt_s(b.med("big1.mbsync")),
                  fmt_r(ratio(b.med("big1.mailstow"), b.med("big1.mbsync"))),
                  "", ""))
    mt = b.med("many.mailstow")
    if mt is not None:
        mr = b.med("many.mailstow", "rss_mb")
        msgs = b.n_many * b.many_size
        r.append(("%d mailboxes x %d messages, one `mailstow run` (%s)"
                  % (b.n_many, b.many_size, b.many_mode),
                  "%s (%.0f msg/s)" % (fmt_s(mt), msgs / mt), "", "", "", ""))
        r.append(("peak RSS, %d mailboxes" % b.n_many, fmt_mb(mr), "", "",
                  TARGETS["many_rss"], verdict(mr <= 64)))
        st = getattr(b, "stall", None)
        r.append(("longest event-loop stall, %d mailboxes" % b.n_many,
                  "%.1f ms (p99 %.1f ms, %d over 50 ms)"
                  % (st[0] * 1000, st[1] * 1000, st[2]) if st else "n/a",
                  "", "", TARGETS["stall"],
                  verdict(st[0] <= 0.05) if st else "n/a"))
        pr = max(getattr(b, "probes", []), key=lambda x: x["late_ms"],
                 default=None)
        r.append(("latest 10 ms loop timer, %d mailboxes (in-process probe)"
                  % b.n_many,
                  "%.1f ms late (loop thread on CPU %.1f ms of it, %d "
                  "involuntary switches); p99 < %.0f ms; %d over 50 ms"
                  % (pr["late_ms"], pr["cpu_ms"], pr["nivcsw"],
                     pr["p99_ms"], pr["over50"]) if pr else "n/a",
                  "", "", TARGETS["stall"],
                  verdict(pr["late_ms"] <= 50) if pr else "n/a"))
    for tool, name in (("mailstow", "cold.mailstow"),
                       ("mbsync", "cold.mbsync")):
        c = b.med(name, "cpu")
        if c is not None and tool == "mailstow":
            cpb = b.med("cold.mbsync", "cpu")
            r.append(("CPU (user+sys) per 1,000 messages, cold",
                      "%.3f s" % (c / b.a.messages * 1000),
                      "mbsync %.3f s" % (cpb / b.a.messages * 1000)
                      if cpb is not None else "n/a",
                      fmt_r(ratio(c, cpb)), "", ""))
    return r


def write_results(b):
    m = machine(b.work)
    st = b.corpus_stats
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        "# mailstow benchmark results",
        "",
        "Written by `make bench` (tests/bench/bench.py); see README.md in "
        "this directory for what each figure means.",
        "",
        "- date: %s" % now.strftime("%Y-%m-%d %H:%M UTC"),
        "- machine: %s, %d CPUs (nproc), %d MB memory, disk %s, "
        "Linux %s" % (m["cpu"], m["nproc"], m["mem_mb"], m["disk"],
                      m["kernel"]),
        "- versions: mailstow %s; %s; %s; dovecot %s; %s; Python %s"
        % (m["mailstow"], m["mbsync"], m["mpop"], m["dovecot"], m["openssl"],
           m["python"]),
        "- corpus: %d messages (seed %d; %d distinct, %d duplicates across "
        "folders), %.1f MB, median %.1f KB, p90 %.1f KB, p99 %.0f KB, "
        "largest %.1f MB, %d over 1 MB; %d folders"
        % (st["messages"], b.a.seed, st["unique"],
           st["messages"] - st["unique"], st["bytes"] / 1e6,
           st["median"] / 1024, st["p90"] / 1024, st["p99"] / 1024,
           st["max"] / 2 ** 20, st["over_1mb"], len(corpus.FOLDERS)),
        "- method: medians of %d repetitions (64-mailbox run: %d); "
        "mailstow and the peer alternate within each repetition; "
        "Dovecot on 127.0.0.1 over TLS (imaps, pop3s), index built and "
        "mail files read into the page cache before the first timed run"
        % (b.a.reps, b.a.many_reps),
        "",
        "**Figures were taken on a shared machine** (other work was running "
        "on the same cores), so absolute times carry noise; the ratios come "
        "from runs interleaved in the same session. The page cache cannot "
        "be dropped reliably here, so every run reads the server's files "
        "from memory; writes and fsyncs go to the real disk.",
        "",
        "| figure | mailstow | peer | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    for row in table_rows(b):
        lines.append("| " + " | ".join(str(x) for x in row) + " |")
    lines += ["", "## Every sample", "",
              "| run | wall s | user s | sys s | peak RSS MB |",
              "|---|---|---|---|---|"]
    for name, ss in b.samples.items():
        for s in ss:
            lines.append("| %s | %.3f | %.2f | %.2f | %.1f |"
                         % (name, s.seconds, s.user, s.sys, s.rss_mb))
    rt = getattr(b, "rtt", {})
    if rt:
        lines += ["", "Round trips of one warm run, from Dovecot's rawlog "
                  "(%d folders): " % rt["folders"] + "; ".join(
                      "%s %d commands, %d round trips, %d of them about a "
                      "folder" % ((k,) + v) for k, v in rt.items()
                      if k != "folders")]
    if b.notes:
        lines += ["", "Notes:", ""] + ["- " + n for n in b.notes]
    lines += ["", "The event-loop stall is measured on `mailstow run` of "
              "the %s mailboxes (%s): strace, seccomp-filtered to "
              "epoll_wait only, records when each epoll_wait of the loop "
              "thread returns and the next one starts; the gap is time "
              "spent in callbacks, during which no other session was "
              "served. The in-process probe (MAILSTOW_LOOP_PROBE=1, "
              "untraced runs) arms a 10 ms timer on the loop and records "
              "how late it fires, with the loop thread's own CPU time "
              "(CLOCK_THREAD_CPUTIME_ID) and context switches over that "
              "stretch: CPU time well below the lateness, with involuntary "
              "switches, means the thread was runnable but waiting for a "
              "CPU (here shared with the server's processes), not "
              "running callbacks." % (b.n_many,
                                      getattr(b, "many_mode", "not run")),
              ""]
    text = "\n".join(lines)
    out = pathlib.Path(b.a.results)
    out.write_text(text)
    return text


# ---- profiling ------------------------------------------------------------


def profile(b):
    """Where a cold mailstow run spends its time: syscalls (strace -c
    -f -w), fsync counts, CPU by function (perf if it can sample, else
    callgrind).  Prints a report and leaves the raw files in the workdir."""
    ms = Mailstow(b, "mailstow-profile")
    ms.write_config(["bench"])
    out = []
    ms.wipe()
    s = ms.run(["bench"])
    check_protocols(s, [("bench", b.a.messages, b.corpus_stats["unique"],
                         None)], "profile: plain cold run")
    out.append("plain cold run: %.2fs wall, %.2fs user, %.2fs sys, "
               "%.1f MB peak RSS" % (s.seconds, s.user, s.sys, s.rss_mb))
    if shutil.which("strace"):
        for flags, name in ((["-c", "-w"], "strace-wall.txt"),
                            (["-c"], "strace-cpu.txt")):
            ms.wipe()
            p = ms.dir / name
            s = ms.run(["bench"], prefix=["strace", "-f", "-o", p] + flags)
            check_ok(s, "strace run")
            out.append("== strace %s (cold run, %.2fs under strace)\n%s"
                       % (" ".join(flags), s.seconds,
                          "\n".join(p.read_text().splitlines()[:22])))
    perf_ok = shutil.which("perf") and subprocess.run(
        ["perf", "record", "-e", "cpu-clock", "-o", os.devnull, "true"],
        capture_output=True).returncode == 0
    if perf_ok:
        ms.wipe()
        data = ms.dir / "perf.data"
        s = ms.run(["bench"], prefix=["perf", "record", "-e", "cpu-clock",
                                      "-F", "2000", "-g", "-o", data])
        check_ok(s, "perf run")
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children",
                              "--sort", "dso,symbol", "--stdio", "-g",
                              "none", "--percent-limit", "0.7"],
                             capture_output=True, text=True).stdout
        (ms.dir / "perf.txt").write_text(rep)
        out.append("== perf (cpu-clock samples, self time)\n" + "\n".join(
            x for x in rep.splitlines() if x and not x.startswith("#"))[:6000])
        inc = subprocess.run(["perf", "report", "-i", data, "--children",
                              "--sort", "symbol", "--stdio", "-g", "none"],
                             capture_output=True, text=True).stdout
        keep = re.compile(r"__x64_sys_\w+|ext4_(create|mkdir|sync_file|"
                          r"fsync\w*|rename\w*)\b|__ext4_new_inode|"
                          r"sha256\w*|SHA256\w*|EVP_DecryptUpdate|SSL_read|"
                          r"sqlite3_step|imap_parser_feed|pop3_\w+_feed|"
                          r"store_commit|store_blob_write|mime_\w+|"
                          r"event_base_loop")
        out.append("== perf (cpu-clock samples, inclusive, selected)\n" +
                   "\n".join(x for x in inc.splitlines()
                             if keep.search(x) and not x.startswith("#"))
                   [:6000])
    if shutil.which("valgrind") and b.a.callgrind:
        ms.wipe()
        cg = ms.dir / "callgrind.out"
        s = ms.run(["bench"], prefix=["valgrind", "--tool=callgrind",
                                      "--callgrind-out-file=%s" % cg])
        check_ok(s, "callgrind run")
        rep = subprocess.run(["callgrind_annotate", "--inclusive=yes", cg],
                             capture_output=True, text=True).stdout
        (ms.dir / "callgrind.txt").write_text(rep)
        out.append("== callgrind (inclusive Ir)\n" +
                   "\n".join(rep.splitlines()[:70]))
    text = "\n\n".join(out) + "\n"
    (b.work / "profile.txt").write_text(text)
    print(text)


# ---- main -----------------------------------------------------------------


def install_tools(a):
    """mbsync and mpop from Debian when root and missing."""
    want = {"mbsync": "isync", "mpop": "mpop", GNU_TIME: "time",
            "strace": "strace"}
    missing = [pkg for prog, pkg in want.items() if not shutil.which(prog)]
    if not missing or a.no_install:
        return
    if os.geteuid() != 0:
        log("not root: cannot install %s; those rows will be n/a",
            " ".join(missing))
        return
    log("installing %s", " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq",
                    "--no-install-recommends"] + missing, env=env,
                   stdout=subprocess.DEVNULL)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--many-reps", type=int, default=1,
                    help="repetitions of the 64-mailbox run (default 1: "
                    "each takes over a minute)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--many", default="64x1000",
                    help="MAILBOXESxMESSAGES, 0x0 to skip")
    ap.add_argument("--many-parallel", type=int, default=64,
                    help="max_parallel of the batch profile (0: one "
                    "profile per mailbox, run one after another)")
    ap.add_argument("--big-mb", type=int, default=100)
    ap.add_argument("--workdir")
    ap.add_argument("--results", default=str(HERE / "results.md"))
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory")
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--profile", action="store_true",
                    help="profile a cold mailstow run instead")
    ap.add_argument("--no-callgrind", dest="callgrind", action="store_false")
    a = ap.parse_args(argv)
    if not re.fullmatch(r"\d+x\d+", a.many):
        ap.error("--many wants MAILBOXESxMESSAGES, e.g. 64x1000")
    return a


def run(argv, keep_server=False):
    """The whole bench; returns the Bench, its Dovecot stopped unless
    keep_server (then the caller stops it: the smoke test reads back
    what the server holds)."""
    a = parse_args(argv)
    install_tools(a)
    b = Bench(a)
    t0 = time.monotonic()
    try:
        b.start()
        if a.profile:
            profile(b)
            return b
        b.imap()
        b.pop3()
        if a.big_mb > 0:
            b.big()
        if b.n_many > 0 and b.many_size > 0:
            b.many()
        text = b.report()
        print(text)
        log("done in %.0fs; results in %s", time.monotonic() - t0, a.results)
    except BaseException:
        keep_server = False
        raise
    finally:
        b.empty_trash()
        if not keep_server:
            b.stop()
        if not a.keep and not a.workdir and not keep_server:
            shutil.rmtree(b.work, ignore_errors=True)
        elif a.keep:
            log("work directory kept: %s", b.work)
    return b


def main(argv):
    try:
        run(argv)
    except BenchError as e:
        log("FAILED: %s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
