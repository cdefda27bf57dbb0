"""
test_bench_smoke.py - the benchmark harness (tests/bench) in small, so
`make check` keeps it from rotting: a few hundred messages, one
repetition of every figure, then checks of what was archived (every
message the server holds is in the archive under its SHA-256, byte for
byte, and the protocols count right).  It never asserts a time.
"""

import collections
import hashlib
import os
import pathlib
import re
import shutil
import sys
import tempfile

import pytest

from conftest import require_mailstow

BENCH_DIR = pathlib.Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH_DIR))
import bench  # noqa: E402
import corpus  # noqa: E402

MESSAGES = 300


def sha(b):
    return hashlib.sha256(b).hexdigest()


# ---- the corpus generator -------------------------------------------------


def test_corpus_is_deterministic_and_shaped():
    a = [(m.folder, m.sha256, m.flags) for m in corpus.Generator(400, 5)]
    b = [(m.folder, m.sha256, m.flags) for m in corpus.Generator(400, 5)]
    c = [(m.folder, m.sha256, m.flags) for m in corpus.Generator(400, 6)]
    assert a == b, "same count and seed must give the same corpus"
    assert a != c, "another seed must give another corpus"
    assert len(a) == 400
    msgs = list(corpus.Generator(400, 5))
    dups = [m for m in msgs if m.duplicate]
    assert dups, "about 2% duplicates expected, got none"
    for d in dups:
        first = next(m for m in msgs if m.raw == d.raw and not m.duplicate)
        assert first.folder != d.folder, "a duplicate lands in another folder"
    assert len({m.folder for m in msgs}) >= 8
    assert any("/" in m.folder for m in msgs), "nested folder names"
    assert any(not m.folder.isascii() for m in msgs), "a non-ASCII folder"
    attached = sum(1 for m in msgs if b"Content-Disposition: attachment"
                   in m.raw)
    assert 15 <= attached <= 80, "about 10%% with attachments, got %d" \
        % attached
    for m in msgs:
        assert b"\r\n\r\n" in m.raw and b"\n" not in m.raw.replace(
            b"\r\n", b""), "CRLF only, as Dovecot serves it"
    sizes = sorted(len(m.raw) for m in msgs)
    assert 4000 < sizes[len(sizes) // 2] < 14000, "median near 8 KB"


def test_big_message_size():
    m = corpus.big_message(3 << 20)
    assert abs(len(m.raw) - (3 << 20)) < 64 << 10


# ---- the measuring helpers, on inputs with known answers ------------------


def test_rawlog_round_trips(tmp_path):
    # Two commands pipelined, then one after the answer, then a FETCH and
    # LOGOUT sent together: 3 round trips, each about a folder.
    (tmp_path / "s.in").write_bytes(
        b"1.000001 a2 LIST \"\" \"*\"\r\n"
        b"1.000002 a3 EXAMINE INBOX\r\n"
        b"1.300000 a4 EXAMINE Sent\r\n"
        b"1.500000 a5 UID FETCH 1:* (UID)\r\n"
        b"1.500001 a6 LOGOUT\r\n")
    (tmp_path / "s.out").write_bytes(
        b"1.100000 * LIST (\\HasNoChildren) \"/\" INBOX\r\n"
        b"1.200000 a3 OK done\r\n"
        b"1.400000 a4 OK done\r\n"
        b"1.600000 a6 OK bye\r\n")
    assert bench.rawlog_round_trips(tmp_path) == (5, 3, 3)


def test_measure_reports_child_rss(tmp_path):
    # Our own RSS must not leak into the child's figure (see measure()).
    ballast = b"x" * (96 << 20)
    s = bench.measure(["/bin/true"], tmp_path)
    assert s.rc == 0
    assert s.rss_mb < 48, "child RSS %.1f MB includes the parent's" \
        % s.rss_mb
    del ballast


# ---- the whole bench, small -------------------------------------------------


@pytest.fixture(scope="module")
def small_bench():
    require_mailstow()
    # Not under pytest's tmp_path: Dovecot's unprivileged processes must
    # reach the maildirs, and pytest's base directory is private.
    work = pathlib.Path(tempfile.mkdtemp(prefix="mailstow-bench-smoke-"))
    os.chmod(work, 0o755)
    results = work / "results.md"
    b = bench.run(["--messages", str(MESSAGES), "--reps", "1",
                   "--many", "3x40", "--big-mb", "3", "--seed", "3",
                   "--workdir", str(work / "w"), "--results", str(results),
                   "--no-install"], keep_server=True)
    try:
        b.server = b.dc.fetch_all("bench")
        b.server_big1 = b.dc.fetch_all("big1")
        yield b, results
    finally:
        b.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_bench_writes_results(small_bench):
    b, results = small_bench
    text = results.read_text()
    assert "| figure | mailstow | peer | ratio | target | result |" in text
    row = [x for x in text.splitlines()
           if x.startswith("| cold IMAPS, %d messages |" % MESSAGES)]
    assert row and re.fullmatch(r" [\d.]+ s ", row[0].split("|")[2]), row
    assert "shared machine" in text
    assert "dovecot 2." in text


def test_manifest_is_what_the_server_serves(small_bench):
    """The corpus written into the maildir comes back unchanged over IMAP:
    same bytes, same folders."""
    b, _ = small_bench
    served = collections.Counter((f, sha(raw)) for f, msgs in b.server.items()
                                 for raw in msgs.values())
    written = collections.Counter((f, h) for f, h, _ in b.manifest["bench"])
    assert served == written
    assert sum(served.values()) == MESSAGES + bench.NEW_MESSAGES


def test_every_server_message_is_archived(small_bench):
    b, _ = small_bench
    files = bench.archive_files(b.ms.archive)
    want = {sha(raw): raw for msgs in b.server.values()
            for raw in msgs.values()}
    assert set(files) == set(want), "archive holds exactly the distinct " \
        "messages of the server"
    for h, raw in want.items():
        assert files[h].read_bytes() == raw


def test_protocol_counts(small_bench):
    b, _ = small_bench
    uniq = len({h for _, h, _ in b.manifest["bench"][:MESSAGES]})
    assert uniq < MESSAGES, "the corpus has duplicates"
    (cold,) = b.samples["cold.mailstow"]
    (p,) = cold.protocols
    assert p["status"] == "succeeded"
    assert p["counts"]["found"] == MESSAGES
    assert p["counts"]["archived"] == uniq
    assert p["counts"]["skipped"] == MESSAGES - uniq
    assert p["counts"]["failed"] == 0
    per = collections.Counter(f for f, _, _ in b.manifest["bench"][:MESSAGES])
    got = {f["folder"]: f["found"] for f in p["folders"]}
    for folder, n in per.items():
        assert got.get(folder) == n, folder
    (warm,) = b.samples["warm.mailstow"]
    assert warm.protocols[0]["counts"]["archived"] == 0
    assert warm.protocols[0]["counts"]["found"] == MESSAGES
    (new,) = b.samples["new.mailstow"]
    c = new.protocols[0]["counts"]
    assert c["found"] == MESSAGES + bench.NEW_MESSAGES
    assert c["archived"] + c["skipped"] == c["found"]
    assert c["archived"] >= bench.NEW_MESSAGES - 5
    assert b.rtt["mailstow"][0] > 0, "rawlog recorded no command"


def test_big_message_archived(small_bench):
    b, _ = small_bench
    files = bench.archive_files(b.work / "mailstow-big1" / "archive")
    for msgs in b.server_big1.values():
        for raw in msgs.values():
            assert sha(raw) in files
    assert max(len(raw) for msgs in b.server_big1.values()
               for raw in msgs.values()) > (3 << 20) - 65536


def test_many_mailboxes_archived(small_bench):
    b, _ = small_bench
    (s,) = b.samples["many.mailstow"]
    # One batch protocol, or one protocol per mailbox (older mailstow).
    assert {f["mailbox"] for p in s.protocols for f in p["folders"]} == \
        {"m00", "m01", "m02"}
    assert sum(p["counts"]["found"] for p in s.protocols) == 3 * 40
    assert all(p["status"] == "succeeded" for p in s.protocols)
    files = bench.archive_files(b.work / "mailstow-many" / "archive")
    for u in ("m00", "m01", "m02"):
        assert {h for _, h, _ in b.manifest[u]} <= set(files), u
    # MAILSTOW_LOOP_PROBE=1 made `mailstow run` report its loop's timer.
    (pr,) = b.probes
    assert pr["ticks"] >= 1, s.err
    assert pr["late_ms"] >= pr["p99_ms"] - 1


def test_parse_probe():
    err = (b"x\nmailstow: loop probe: 812 ticks; longest late 61.3 ms "
           b"(loop thread on CPU 11.9 ms of it, waiting for a CPU 40.2 "
           b"ms, 13 involuntary and 0 voluntary switches); most CPU in one "
           b"tick 30.2 ms; p99 late under 32 ms; 1 over 50 ms; longest late "
           b"not waiting for a CPU 21.1 ms\n")
    p = bench.parse_probe(err)
    assert p == {"ticks": 812, "late_ms": 61.3, "cpu_ms": 11.9,
                 "runq_ms": 40.2, "nivcsw": 13, "nvcsw": 0,
                 "cpu_max_ms": 30.2, "p99_ms": 32, "over50": 1,
                 "own_ms": 21.1}
    assert bench.parse_probe(b"no probe here") is None


def test_peers_pulled_everything(small_bench):
    b, _ = small_bench
    if b.mb is None:
        pytest.skip("mbsync (isync) not installed")
    assert b.mb.count() == MESSAGES + bench.NEW_MESSAGES


def test_pop3_archive(small_bench):
    b, _ = small_bench
    if not b.pop3_wired():
        pytest.skip("lib/source/source.c does not start pop3_client yet")
    assert "pop3.mailstow" in b.samples, b.notes
    (s,) = b.samples["pop3.mailstow"]
    assert s.protocols[0]["counts"]["found"] == len(b.server["INBOX"])
    files = bench.archive_files(b.work / "mailstow-pop3" / "archive")
    for raw in b.server["INBOX"].values():
        assert sha(raw) in files
