"""
bench_results.py - results.md: the targets, the machine and versions, the
table of figures and every sample.
"""

import datetime
import os
import pathlib
import platform
import re
import shutil
import subprocess

from bench_measure import REPO  # sets sys.path
import corpus  # noqa: E402

# Messages added before each "new" run; the table names the figure by it.
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
        pr = max(getattr(b, "probes", []), key=lambda x: x["late_ms"],
                 default=None)
        r.append(("latest 10 ms loop timer, %d mailboxes (in-process probe)"
                  % b.n_many,
                  "%.1f ms late (loop thread on CPU %.1f ms of it, "
                  "waiting for a CPU %.1f ms, %d involuntary switches); "
                  "p99 < %.0f ms; %d over 50 ms"
                  % (pr["late_ms"], pr["cpu_ms"], pr["runq_ms"], pr["nivcsw"],
                     pr["p99_ms"], pr["over50"]) if pr else "n/a",
                  "", "", TARGETS["stall"],
                  verdict(pr["late_ms"] <= 50) if pr else "n/a"))
        own = max((p["own_ms"] for p in getattr(b, "probes", [])),
                  default=None)
        r.append(("... of which the loop's own (lateness not spent "
                  "waiting for a CPU), %d mailboxes" % b.n_many,
                  "%.1f ms" % own if own is not None else "n/a", "", "",
                  TARGETS["stall"],
                  verdict(own <= 50) if own is not None else "n/a"))
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
              "the %s mailboxes (%s) by the in-process probe "
              "(MAILSTOW_LOOP_PROBE=1): a 10 ms timer on the loop, and how "
              "late it fires, with the loop thread's own CPU time "
              "(CLOCK_THREAD_CPUTIME_ID), its wait on the run queue "
              "(/proc/thread-self/schedstat) and context switches over "
              "that stretch. Run-queue wait means the thread was runnable "
              "but other processes had the CPUs (here the server's, on the "
              "same 2 CPUs); the rest of the lateness, the loop's own, is "
              "callbacks and blocking system calls. (An strace of "
              "epoll_wait, used before, inflated the gaps under CPU "
              "contention: every ptrace stop waits for the tracer to be "
              "scheduled.)" % (b.n_many, getattr(b, "many_mode", "not run")),
              ""]
    text = "\n".join(lines)
    out = pathlib.Path(b.a.results)
    out.write_text(text)
    return text
