"""
bench_measure.py - running one program for the bench and measuring it
(wall time, CPU, peak RSS), and reading the figures out of what a run
left behind: Dovecot's rawlog, the loop probe on stderr, the JSON protocols on stdout.
"""

import json
import os
import pathlib
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "system"))

RUN_TIMEOUT = 900


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


def parse_probe(err):
    """The figures of `mailstow: loop probe: ...` (MAILSTOW_LOOP_PROBE=1):
    how late a 10 ms timer of the loop fired at worst, how much of that
    stretch the loop thread itself spent on a CPU and how long it waited,
    runnable, for one; and the longest lateness not spent waiting for a
    CPU (the loop's own: callbacks and blocking calls)."""
    m = re.search(rb"loop probe: (\d+) ticks; longest late ([\d.]+) ms "
                  rb"\(loop thread on CPU ([\d.]+) ms of it, "
                  rb"waiting for a CPU ([\d.]+) ms, (\d+) "
                  rb"involuntary and (\d+) voluntary switches\); most CPU "
                  rb"in one tick ([\d.]+) ms; p99 late under ([\d.]+) ms; "
                  rb"(\d+) over 50 ms; longest late not waiting for a CPU "
                  rb"([\d.]+) ms", err)
    if m is None:
        return None
    keys = ("ticks", "late_ms", "cpu_ms", "runq_ms", "nivcsw", "nvcsw",
            "cpu_max_ms", "p99_ms", "over50", "own_ms")
    return {k: float(v) for k, v in zip(keys, m.groups())}
