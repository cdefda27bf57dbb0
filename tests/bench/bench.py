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
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
# The bench's parts; every name stays reachable as bench.X.
from bench_measure import (  # noqa: E402,F401
    HERE, REPO, RUN_TIMEOUT, GNU_TIME, Sample, measure, _poll_hwm, median,
    rawlog_round_trips, parse_protocols, parse_probe)
from bench_tools import (  # noqa: E402,F401
    BenchDovecot, warm_server, yaml_str, Mailstow, Mbsync, Mpop, BenchError,
    check_ok, check_protocols, archive_files, verify_archive)
from bench_results import (  # noqa: E402,F401
    NEW_MESSAGES, TARGETS, _ver, machine, fmt_s, fmt_mb, ratio, fmt_r,
    verdict, table_rows, write_results)
import corpus  # noqa: E402
import dovecot as harness  # noqa: E402


def log(fmt, *args):
    sys.stderr.write("bench: " + (fmt % args if args else fmt) + "\n")
    sys.stderr.flush()


def build_dir():
    b = os.environ.get("MAILSTOW_BUILD") or os.environ.get("BUILD") or \
        "build"
    b = pathlib.Path(b)
    return b if b.is_absolute() else REPO / b



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

    # -- the report --

    def report(self):
        return write_results(self)



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
