"""
mailgen.py - deterministic test messages for the system tests and the demo.

Everything comes from a seeded random.Random, so a given seed always yields
the same bytes: failures are reproducible and hashes are stable between
runs.  Messages use CRLF line endings (what an IMAP server hands out), have
Message-ID, Date, From, To and Subject (some RFC 2047 encoded), and come as
plain text, multipart/alternative or multipart/mixed with a base64 binary
attachment.  standard_mailbox() is the folder layout the tests seed.
"""

import base64
import dataclasses
import datetime
import email.utils
import random

CRLF = b"\r\n"

PEOPLE = [
    ("Alice Example", "alice@example.org"),
    ("Bob Beispiel", "bob@example.net"),
    ("Carla Muñoz", "carla@example.com"),
    ("Dörte Weiß", "doerte@example.de"),
    ("山田 太郎", "yamada@example.jp"),
    ("", "noreply@example.org"),
    ("Eve \"the auditor\" Smith", "eve@example.com"),
]

SUBJECTS = [
    "Quarterly report",
    "Re: lunch on Friday?",
    "Invoice 2024-0042",
    "Fwd: minutes of the board meeting",
    "Your order has shipped",
    "Meeting notes",
    "Holiday schedule",
    "Password reset (not really)",
]

# Subjects that need RFC 2047 encoding, with the text a reader should see.
NON_ASCII_SUBJECTS = [
    "Grüße aus München",
    "Réunion: ordre du jour",
    "会議の議事録",
    "Ελληνικά δοκιμή",
    "Entwurf: Übersicht ÄÖÜ",
]

WORDS = ("archive mailbox message folder server client protocol record "
         "ledger invoice meeting report budget schedule draft review "
         "quarter figure table column summary attachment detail note "
         "the a of and to in is for on with as by at from").split()

FLAG_CHOICES = [
    (),
    ("\\Seen",),
    ("\\Seen", "\\Flagged"),
    ("\\Answered", "\\Seen"),
    ("$Forwarded",),
    ("\\Flagged", "$label1"),
    ("\\Draft",),
]


@dataclasses.dataclass
class Msg:
    """One generated message: its exact bytes and what a reader sees."""
    raw: bytes
    message_id: str		# without the angle brackets
    subject: str		# decoded
    date: datetime.datetime
    flags: tuple = ()


def _fmt_addr(name, addr):
    if not name:
        return addr
    if name.isascii():
        return email.utils.formataddr((name, addr))
    enc = base64.b64encode(name.encode()).decode()
    return "=?UTF-8?B?%s?= <%s>" % (enc, addr)


def _encode_subject(text, style):
    """RFC 2047 encoded-word(s) for `text` in the given style."""
    if style == "q" and all(ord(c) < 256 for c in text):
        out = []
        for b in text.encode("latin-1"):
            c = chr(b)
            if c == " ":
                out.append("_")
            elif c.isalnum() and b < 128:
                out.append(c)
            else:
                out.append("=%02X" % b)
        return "=?ISO-8859-1?Q?%s?=" % "".join(out)
    enc = base64.b64encode(text.encode()).decode()
    return "=?UTF-8?B?%s?=" % enc


def _wrap(data, width):
    return [data[i:i + width] for i in range(0, len(data), width)]


class MailGen:
    """A stream of distinct messages; the same seed gives the same stream."""

    def __init__(self, seed, domain="mailgen.test"):
        self.seed = seed
        self.rng = random.Random(seed)
        self.domain = domain
        self.count = 0
        self.base = datetime.datetime(2024, 3, 1, 8, 0, 0,
                                      tzinfo=datetime.timezone.utc)

    def _text(self, lines):
        out = []
        for _ in range(lines):
            n = self.rng.randint(4, 12)
            out.append(" ".join(self.rng.choice(WORDS) for _ in range(n)))
        return out

    def _date(self):
        dt = self.base + datetime.timedelta(hours=7 * self.count,
                                            minutes=13 * self.count)
        offset = self.rng.choice([0, 60, 120, -300, 540])
        tz = datetime.timezone(datetime.timedelta(minutes=offset))
        return dt.astimezone(tz)

    def message(self, subject=None, encoded=None, kind="plain",
                attachment=0, final_newline=True, lines=None,
                sender=None, recipient=None, flags=None, extra_headers=()):
        """
        Build one message.  kind: "plain", "utf8" (8bit UTF-8 body),
        "alternative" (text + html) or "mixed" (text + a base64 binary
        attachment of `attachment` bytes, at least 1).  encoded: None
        (plain subject), "b" or "q" (RFC 2047).
        """
        self.count += 1
        n = self.count
        rng = self.rng
        if subject is None:
            pool = NON_ASCII_SUBJECTS if encoded else SUBJECTS
            subject = "%s #%d" % (rng.choice(pool), n)
        if encoded:
            subj_hdr = _encode_subject(subject, encoded)
        else:
            subj_hdr = subject
        frm = sender or rng.choice(PEOPLE)
        to = recipient or rng.choice(PEOPLE)
        date = self._date()
        mid = "%d.%d.%08x@%s" % (self.seed, n, rng.getrandbits(32),
                                 self.domain)
        if flags is None:
            flags = rng.choice(FLAG_CHOICES)
        hdr = [
            "Message-ID: <%s>" % mid,
            "Date: %s" % email.utils.format_datetime(date),
            "From: %s" % _fmt_addr(*frm),
            "To: %s" % _fmt_addr(*to),
            "Subject: %s" % subj_hdr,
            "MIME-Version: 1.0",
        ]
        hdr.extend(extra_headers)
        body_lines = self._text(lines if lines is not None
                                else rng.randint(3, 25))
        head, body = self._body(kind, body_lines, attachment)
        raw = CRLF.join(x.encode() for x in hdr + head) + CRLF + CRLF + body
        if final_newline and not raw.endswith(CRLF):
            raw += CRLF
        elif not final_newline:
            raw = raw.rstrip(b"\r\n")
        return Msg(raw=raw, message_id=mid, subject=subject, date=date,
                   flags=tuple(flags))

    def _body(self, kind, lines, attachment):
        rng = self.rng
        if kind == "plain":
            return (["Content-Type: text/plain; charset=us-ascii"],
                    CRLF.join(x.encode() for x in lines) + CRLF)
        if kind == "utf8":
            lines = lines + ["Grüße, Dörte — 山田さんへ"]
            return (["Content-Type: text/plain; charset=utf-8",
                     "Content-Transfer-Encoding: 8bit"],
                    CRLF.join(x.encode() for x in lines) + CRLF)
        boundary = "=_mailgen_%d_%08x" % (self.count, rng.getrandbits(32))
        text = CRLF.join(x.encode() for x in lines)
        parts = [b"Content-Type: text/plain; charset=us-ascii" + CRLF +
                 CRLF + text + CRLF]
        if kind == "alternative":
            ctype = "multipart/alternative"
            html = b"<html><body><p>" + b"</p><p>".join(
                x.encode() for x in lines) + b"</p></body></html>"
            parts.append(b"Content-Type: text/html; charset=us-ascii" +
                         CRLF + CRLF + html + CRLF)
        elif kind == "mixed":
            ctype = "multipart/mixed"
            blob = rng.randbytes(max(attachment, 1))
            b64 = base64.b64encode(blob)
            name = "data-%d.bin" % self.count
            parts.append(
                b"Content-Type: application/octet-stream; name=\"" +
                name.encode() + b"\"" + CRLF +
                b"Content-Transfer-Encoding: base64" + CRLF +
                b"Content-Disposition: attachment; filename=\"" +
                name.encode() + b"\"" + CRLF + CRLF +
                CRLF.join(_wrap(b64, 76)) + CRLF)
        else:
            raise ValueError("unknown kind %r" % kind)
        body = b"This is a multi-part message in MIME format." + CRLF
        for p in parts:
            body += b"--" + boundary.encode() + CRLF + p
        body += b"--" + boundary.encode() + b"--" + CRLF
        head = ['Content-Type: %s; boundary="%s"' % (ctype, boundary)]
        return head, body

    def varied(self):
        """One message of a kind chosen by the stream (for bulk seeding)."""
        kind = self.rng.choice(["plain", "plain", "utf8", "alternative",
                                "mixed"])
        encoded = self.rng.choice([None, None, "b", "q"])
        att = self.rng.randint(100, 20000) if kind == "mixed" else 0
        return self.message(kind=kind, encoded=encoded, attachment=att)


@dataclasses.dataclass
class Layout:
    """Messages per folder plus copies: (src folder, index, dst folder)."""
    folders: dict
    copies: list

    def messages(self):
        for folder, msgs in self.folders.items():
            for m in msgs:
                yield folder, m


def standard_mailbox(seed=1, big=5 * 1024 * 1024, trash=True):
    """
    The folder layout the archive tests seed: nested and non-ASCII folder
    names, multipart and binary attachments, one message of about `big`
    bytes (0: none), messages with and without a final newline, encoded
    subjects, mixed flags, and INBOX's first message copied to
    Archive/2024 (the same bytes in two folders).
    """
    g = MailGen(seed)
    inbox = [g.message(kind="plain", subject="Welcome to the archive",
                       flags=("\\Seen",))]
    inbox += [g.varied() for _ in range(6)]
    inbox.append(g.message(kind="mixed", attachment=40000,
                           subject="Scan of the contract", flags=()))
    inbox.append(g.message(kind="plain", final_newline=False,
                           subject="No newline at the end", flags=()))
    inbox.append(g.message(encoded="b", subject="Grüße aus München",
                           flags=("\\Seen", "\\Flagged")))
    if big:
        inbox.append(g.message(kind="mixed", attachment=big * 3 // 4,
                               subject="Large attachment", flags=()))
    folders = {
        "INBOX": inbox,
        "Sent": [g.varied() for _ in range(4)],
        "Archive": [g.varied() for _ in range(2)],
        "Archive/2024": [g.varied() for _ in range(4)],
        "Entwürfe": [g.message(encoded="q", subject="Entwurf: Übersicht",
                               flags=("\\Draft",)),
                     g.varied(), g.varied()],
        "日本語": [g.message(encoded="b", subject="会議の議事録",
                            kind="utf8"), g.varied()],
    }
    if trash:
        folders["Trash"] = [g.varied() for _ in range(2)]
    return Layout(folders=folders, copies=[("INBOX", 0, "Archive/2024")])
