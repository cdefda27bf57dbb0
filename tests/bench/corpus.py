#!/usr/bin/python3
"""
corpus.py - the deterministic benchmark mailbox: COUNT messages from SEED,
over a dozen folders (nested and non-ASCII names, one empty), with a
long-tailed size distribution (median near 8 KB, a few of several MB),
about 10% with a base64 attachment and about 2% duplicates: the same bytes
in a second folder, as an IMAP COPY leaves them.  The same COUNT and SEED
always give the same bytes, folders and flags.

The messages are written straight into a Dovecot maildir (much faster than
APPEND): each file goes to tmp/ and is renamed into cur/ under a unique
name carrying ,S=<size>,W=<size> (the file is CRLF already, so the
physical and the virtual size agree) and its flags; the file time is the
message's INTERNALDATE.  Dovecot assigns UIDs on its next sync.

Command line:
    corpus.py COUNT SEED --stats            size distribution, no files
    corpus.py COUNT SEED --maildir DIR      write into DIR (a Maildir root)
"""

import argparse
import base64
import bisect
import dataclasses
import datetime
import email.utils
import hashlib
import math
import os
import pathlib
import random
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "system"))
import dovecot as harness  # noqa: E402
import mailgen  # noqa: E402

CRLF = b"\r\n"
VERSION = 1		# bump when the bytes for a (count, seed) change

# (folder, share of the messages).  "Projects" and "Kunden" are only
# parents; "Archive" holds messages and children; "Drafts" stays empty.
FOLDERS = [
    ("INBOX", 30), ("Sent", 12), ("Drafts", 0), ("Archive", 5),
    ("Archive/2022", 10), ("Archive/2023", 10), ("Archive/2024", 10),
    ("Projects/Alpha", 6), ("Projects/Beta/Specs", 4),
    ("Lists/dovecot", 6), ("Lists/ietf", 5), ("Kunden/Müller", 2),
]
ATTACH_SHARE = 0.10
DUP_SHARE = 0.02
HUGE_SHARE = 0.001	# messages of 2-8 MB (about 20 in 20,000)
FLAGS = ["S", "S", "S", "", "FS", "RS", "S"]
BASE_TIME = 1640995200		# 2022-01-01T00:00:00Z


@dataclasses.dataclass
class Message:
    folder: str
    raw: bytes
    mtime: int
    flags: str
    duplicate: bool = False	# a copy of an earlier message's bytes

    @property
    def sha256(self):
        return hashlib.sha256(self.raw).hexdigest()


def _text_pool(rng, size=1 << 18):
    """CRLF lines of words, sliced for the bodies (fast, deterministic)."""
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(mailgen.WORDS)
                        for _ in range(rng.randint(6, 14))).encode() + CRLF
        out.append(line)
        n += len(line)
    return b"".join(out)


class Generator:
    """Messages of one corpus, in order.  Everything comes from one
    random.Random(seed), so the stream is a function of (count, seed)."""

    def __init__(self, count, seed, start=0):
        self.count = count
        self.seed = seed
        self.rng = random.Random("mailstow-bench-%d" % seed)
        self.pool = _text_pool(self.rng)
        self.pool_lines = [0] + [i + 2 for i in range(len(self.pool) - 2)
                                 if self.pool[i:i + 2] == CRLF]
        names = [f for f, w in FOLDERS if w > 0]
        acc, self.cum = 0, []
        for f, w in FOLDERS:
            if w > 0:
                acc += w
                self.cum.append(acc)
        self.names = names
        self.n = start

    def _folder(self):
        return self.names[bisect.bisect_right(self.cum,
                                              self.rng.random() *
                                              self.cum[-1])]

    def _text(self, size):
        """About `size` bytes of whole CRLF lines from the pool."""
        pool, out, n = self.pool, [], 0
        while n < size:
            i = self.pool_lines[self.rng.randrange(len(self.pool_lines))]
            take = min(size - n, len(pool) - i)
            j = pool.find(CRLF, i + take - 2)
            chunk = pool[i:j + 2] if j >= 0 else pool[i:]
            out.append(chunk)
            n += len(chunk)
        return b"".join(out)

    def _sizes(self):
        """(body text bytes, attachment bytes before base64)."""
        rng = self.rng
        if rng.random() < HUGE_SHARE:
            return 2000, rng.randint(2 << 20, 8 << 20) * 3 // 4
        if rng.random() < ATTACH_SHARE:
            att = int(math.exp(rng.gauss(math.log(40000), 1.2)))
            return (int(math.exp(rng.gauss(math.log(2500), 0.6))),
                    max(200, min(att, 6 << 20)))
        text = int(math.exp(rng.gauss(math.log(6800), 0.75)))
        return max(200, min(text, 400000)), 0

    def message(self):
        rng = self.rng
        self.n += 1
        n = self.n
        text_len, att_len = self._sizes()
        frm = rng.choice(mailgen.PEOPLE)
        to = rng.choice(mailgen.PEOPLE)
        mtime = BASE_TIME + n * 1733 + rng.randrange(600)
        date = datetime.datetime.fromtimestamp(
            mtime - rng.randrange(30, 900), datetime.timezone.utc)
        if rng.random() < 0.2:
            subj = mailgen._encode_subject(
                rng.choice(mailgen.NON_ASCII_SUBJECTS), rng.choice("bq"))
        else:
            subj = "%s #%d" % (rng.choice(mailgen.SUBJECTS), n)
        hdr = [
            "Return-Path: <%s>" % frm[1],
            "Received: from mx.example.net (mx.example.net [192.0.2.7]) "
            "by mail.example.org with ESMTPS id %08x; %s"
            % (rng.getrandbits(32), email.utils.format_datetime(date)),
            "Message-ID: <bench.%d.%d.%08x@example.org>"
            % (self.seed, n, rng.getrandbits(32)),
            "Date: %s" % email.utils.format_datetime(date),
            "From: %s" % mailgen._fmt_addr(*frm),
            "To: %s" % mailgen._fmt_addr(*to),
            "Subject: %s" % subj,
            "MIME-Version: 1.0",
        ]
        text = self._text(text_len)
        if att_len == 0:
            hdr.append("Content-Type: text/plain; charset=us-ascii")
            body = text
        else:
            b = ("=_bench_%d_%08x" % (n, rng.getrandbits(32))).encode()
            hdr.append('Content-Type: multipart/mixed; boundary="%s"'
                       % b.decode())
            data = base64.encodebytes(rng.randbytes(att_len)) \
                .replace(b"\n", CRLF)
            name = b"scan-%d.pdf" % n
            body = b"".join([
                b"This is a multi-part message in MIME format.", CRLF,
                b"--", b, CRLF,
                b"Content-Type: text/plain; charset=us-ascii", CRLF, CRLF,
                text,
                b"--", b, CRLF,
                b'Content-Type: application/pdf; name="', name, b'"', CRLF,
                b"Content-Transfer-Encoding: base64", CRLF,
                b'Content-Disposition: attachment; filename="', name, b'"',
                CRLF, CRLF, data,
                b"--", b, b"--", CRLF])
        raw = CRLF.join(h.encode() for h in hdr) + CRLF + CRLF + body
        return Message(self._folder(), raw, mtime, rng.choice(FLAGS))

    def __iter__(self):
        """count messages; DUP_SHARE of them copy an earlier message's
        bytes into another folder."""
        rng = self.rng
        recent = []
        made = 0
        while made < self.count:
            if recent and rng.random() < DUP_SHARE:
                src = recent[rng.randrange(len(recent))]
                others = [f for f in self.names if f != src.folder]
                made += 1
                yield Message(rng.choice(others), src.raw, src.mtime,
                              src.flags, duplicate=True)
                continue
            m = self.message()
            made += 1
            # Copies come from a window of small recent messages, so a
            # duplicate never doubles a multi-megabyte one.
            if len(m.raw) < 200000:
                recent.append(m)
                if len(recent) > 64:
                    recent.pop(0)
            yield m


def big_message(size, seed=7):
    """One message of about `size` bytes (a base64 attachment)."""
    rng = random.Random("mailstow-bench-big-%d" % seed)
    att = max(1, (size - 1000) * 57 // 78)
    data = base64.encodebytes(rng.randbytes(att)).replace(b"\n", CRLF)
    b = b"=_bench_big"
    raw = b"".join([
        b"Message-ID: <bench.big.%d@example.org>\r\n" % size,
        b"Date: Fri, 01 Mar 2024 08:00:00 +0000\r\n",
        b"From: Alice Example <alice@example.org>\r\n",
        b"To: Bob Beispiel <bob@example.net>\r\n",
        b"Subject: one very large message\r\n",
        b"MIME-Version: 1.0\r\n",
        b'Content-Type: multipart/mixed; boundary="', b, b'"\r\n\r\n',
        b"--", b, b"\r\nContent-Type: text/plain\r\n\r\nSee attachment.\r\n",
        b"--", b, b"\r\nContent-Type: application/octet-stream\r\n",
        b"Content-Transfer-Encoding: base64\r\n\r\n", data,
        b"--", b, b"--\r\n"])
    return Message("INBOX", raw, BASE_TIME, "S")


# ---- the maildir --------------------------------------------------------


class Maildir:
    """A Dovecot maildir root (mail_location maildir:~/Maildir:LAYOUT=fs):
    INBOX is the root itself, folder A/B is A/B/ with cur, new, tmp; names
    on disk are modified UTF-7.  Files get the owner Dovecot runs the
    user's processes as."""

    def __init__(self, root, owner=None):
        self.root = pathlib.Path(root)
        self.owner = owner
        self.seq = 0
        self.made = set()

    def _chown(self, p):
        if self.owner is not None:
            os.chown(p, *self.owner)

    def folder_dir(self, folder):
        if folder.upper() == "INBOX":
            return self.root
        return self.root / harness.mutf7_encode(folder)

    def ensure(self, folder):
        d = self.folder_dir(folder)
        if d in self.made:
            return d
        p = self.root
        for part in ("",) + d.relative_to(self.root).parts:
            p = p / part if part else p
            if not p.exists():
                p.mkdir(mode=0o700)
                self._chown(p)
        for sub in ("cur", "new", "tmp"):
            p = d / sub
            if not p.exists():
                p.mkdir(mode=0o700)
                self._chown(p)
        self.made.add(d)
        return d

    def add(self, m, tag="b"):
        """Write one message into its folder's cur/; returns the path."""
        d = self.ensure(m.folder)
        self.seq += 1
        size = len(m.raw)
        base = "%d.M%dP%d%s.bench,S=%d,W=%d" % (m.mtime, self.seq,
                                                  os.getpid(), tag, size,
                                                  size)
        tmp = d / "tmp" / base
        with open(tmp, "wb") as f:
            f.write(m.raw)
        self._chown(tmp)
        os.utime(tmp, (m.mtime, m.mtime))
        final = d / "cur" / (base + ":2," + m.flags)
        os.rename(tmp, final)
        return final


def write(maildir, messages, owner=None, tag="b"):
    """Write messages into a maildir root; returns the manifest
    [(folder, sha256, size)] in order."""
    md = Maildir(maildir, owner)
    for f, w in FOLDERS:
        md.ensure(f)
    manifest = []
    for m in messages:
        md.add(m, tag)
        manifest.append((m.folder, m.sha256, len(m.raw)))
    return manifest


def stats(manifest):
    sizes = sorted(s for _, _, s in manifest)
    n = len(sizes)
    per = {}
    for f, _, _ in manifest:
        per[f] = per.get(f, 0) + 1
    return {
        "messages": n,
        "unique": len({h for _, h, _ in manifest}),
        "bytes": sum(sizes),
        "median": sizes[n // 2] if n else 0,
        "p90": sizes[n * 9 // 10] if n else 0,
        "p99": sizes[n * 99 // 100] if n else 0,
        "max": sizes[-1] if n else 0,
        "over_1mb": sum(1 for s in sizes if s > 1 << 20),
        "folders": per,
    }


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("count", type=int)
    ap.add_argument("seed", type=int)
    ap.add_argument("--maildir")
    ap.add_argument("--stats", action="store_true")
    a = ap.parse_args(argv)
    msgs = Generator(a.count, a.seed)
    if a.maildir:
        man = write(a.maildir, msgs)
    else:
        man = [(m.folder, m.sha256, len(m.raw)) for m in msgs]
    st = stats(man)
    print("%(messages)d messages (%(unique)d distinct), %(bytes)d bytes, "
          "median %(median)d, p90 %(p90)d, p99 %(p99)d, max %(max)d, "
          "%(over_1mb)d over 1 MB" % st)
    for f, n in sorted(st["folders"].items()):
        print("  %-22s %d" % (f, n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
